"""Fault injection for the crash tests: die at a named point, the way kill -9 would.

Off unless ``settings.FAULT_INJECTION`` is True (only ldnclinic.test_settings sets it) AND the process
was started with ``LDN_FAULT=<name>``. A test starts a worker with that variable to kill it at one
exact step of the reminder protocol, which a timed ``kill -9`` from outside could never hit reliably.
"""

import logging
import os
import signal

from django.conf import settings

logger = logging.getLogger(__name__)


def fault_point(name: str) -> None:
    if not getattr(settings, "FAULT_INJECTION", False) or os.environ.get("LDN_FAULT") != name:
        return
    logger.warning("fault injection: SIGKILL at %s (pid %s)", name, os.getpid())
    for handler in logging.getLogger().handlers:  # the test reads the log to know where it died
        handler.flush()
    os.kill(os.getpid(), signal.SIGKILL)
