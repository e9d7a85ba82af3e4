import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

HEARTBEAT_CACHE_KEY = "celery:last-heartbeat"


@shared_task(name="ldnclinic.tasks.heartbeat")
def heartbeat(label: str = "beat") -> str:
    """Beat's tick: proves beat schedules and a worker runs. Idempotent (overwrites one key)."""
    now = timezone.now().isoformat()
    cache.set(HEARTBEAT_CACHE_KEY, {"at": now, "label": label}, timeout=None)
    logger.info("beat tick %s at %s", label, now)
    return now
