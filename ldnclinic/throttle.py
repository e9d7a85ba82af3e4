"""Counting requests in a fixed window, in the shared cache (Redis in production, a file cache on the
embedded default: the web processes see the same counts).

Used where a request sends email on someone's behalf (password reset, portal invitation), so that a
form or a button cannot be used to flood a patient's inbox or the mail server. Login guessing is
django-axes' business (settings AXES_*). Keys are hashed: no address or IP is stored in the cache.
"""

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import cache

# Part of every key: tests give each test its own (tests/conftest.py), so counts never leak between them.
NAMESPACE = ""


@dataclass(frozen=True)
class Window:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window ends

    @property
    def retry_minutes(self) -> int:
        """Whole minutes until the window ends, rounded up: what a person is told to wait."""
        return -(-self.retry_after // 60)


def _keys(scope: str, key: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{NAMESPACE}\0{scope}\0{key}".encode()).hexdigest()[:32]
    return f"throttle:{digest}:n", f"throttle:{digest}:t"


def count(scope: str, key: str) -> int:
    """The events counted for ``key`` in ``scope`` in the current window, without counting one."""
    return cache.get(_keys(scope, key)[0]) or 0


def hit(scope: str, key: str, *, limit: int, seconds: int) -> Window:
    """Count one event for ``key`` in ``scope``; allowed while the window's count is at most ``limit``.

    The window starts at the first event and lasts ``seconds`` (fixed, not sliding: simple, and the
    worst case is 2 x limit across a window boundary, which is acceptable for email flooding).
    """
    counter, started = _keys(scope, key)
    now = int(time.time())
    cache.add(started, now, seconds)
    if cache.add(counter, 1, seconds):
        count = 1
    else:
        try:
            count = cache.incr(counter)
        except ValueError:  # expired between add and incr: a new window
            cache.set(counter, 1, seconds)
            cache.set(started, now, seconds)
            count = 1
    began = cache.get(started) or now
    return Window(count <= limit, count, max(1, began + seconds - now))
