"""Enqueueing Celery tasks from request code, safely.

Tasks are sent only after the transaction commits (a rolled-back change enqueues nothing), and a
broker that is down never fails the user's save: the work is logged as not enqueued and the
periodic sweeps, which read the database, pick it up.
"""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, **kwargs) -> None:
    def send() -> None:
        try:
            task.apply_async(args=args, kwargs=kwargs, retry=False)
        except Exception:  # noqa: BLE001 - the broker's failure must not become the user's
            logger.exception("could not enqueue %s%r; the periodic sweep will catch up", task.name, args)

    transaction.on_commit(send)
