"""Change stamps: a token per clinic that changes whenever a row of that clinic is written, so a read that
is costly to compute (the worklist) can be kept in the shared cache until the clinic's data changes.

- Every save or delete of a row that has a clinic bumps that clinic (a receiver on every model, below),
  and the few bulk updates that touch what a cached read shows call ``bump`` themselves (the reminder
  outbox marking a send failed or sent).
- A bump writes a new token at once when this process has cached something under the old one (so its own
  next read, inside the same transaction, misses), and again once the transaction commits (so another
  process that read the data before the commit, and cached it under the token it then saw, misses too).
- ``cached`` keys an entry by its own parts and the current tokens of its clinics; an entry also expires
  after its timeout, so nothing outlives a missed bump by more than that.
"""

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from django.core.cache import caches
from django.db import connection, transaction

# Part of every key: tests give each test its own (tests/conftest.py), so entries never leak between them.
NAMESPACE = ""
TOKEN_TIMEOUT = 7 * 24 * 3600  # a clinic's token outlives any entry keyed by it

_local = threading.local()


def _cache():
    """Its own cache (settings.CACHES): many entries, never crowding out the throttle counts."""
    return caches["pages"]


logger = logging.getLogger(__name__)


def _stored() -> set[int]:
    """The clinics this thread has cached an entry for under their current token."""
    if not hasattr(_local, "stored"):
        _local.stored = set()
    return _local.stored


def _key(clinic_id: int) -> str:
    return f"stamp:{NAMESPACE}:{clinic_id}"


def _renew(clinic_ids: Iterable[int]) -> None:
    """New tokens. With the cache down the write that asked goes on (the database is the truth, and losing
    Redis loses nothing): what was cached under the old tokens expires by its own timeout."""
    ids = set(clinic_ids)
    if not ids:
        return
    _stored().difference_update(ids)
    try:
        _cache().set_many({_key(pk): uuid.uuid4().hex for pk in ids}, TOKEN_TIMEOUT)
    except Exception:
        logger.exception("could not renew the change stamps of clinics %s: cached reads expire by timeout", sorted(ids))


def _pending() -> set[int]:
    """The clinics written in this thread's open transaction, renewed when it commits."""
    if not hasattr(_local, "pending"):
        _local.pending = set()
    return _local.pending


def _flush() -> None:
    pending = _pending()
    ids = set(pending)
    pending.clear()
    _renew(ids)


def bump(clinic_ids: Iterable[int]) -> None:
    """The data of these clinics changed (or is changing in the open transaction)."""
    ids = {pk for pk in clinic_ids if pk is not None}
    if not ids:
        return
    _renew(ids & _stored())
    if not connection.in_atomic_block:
        _renew(ids)
        return
    # After commit too; a rolled-back transaction leaves its clinics here, renewed at the next commit.
    _pending().update(ids)
    transaction.on_commit(_flush)


def tokens(clinic_ids: Iterable[int]) -> tuple[str, ...]:
    """The clinics' current tokens, in id order; a clinic with none gets one."""
    ids = sorted(set(clinic_ids))
    found = _cache().get_many([_key(pk) for pk in ids])
    missing = [pk for pk in ids if _key(pk) not in found]
    for pk in missing:
        _cache().add(_key(pk), uuid.uuid4().hex, TOKEN_TIMEOUT)  # another process may have added one first
    if missing:
        found.update(_cache().get_many([_key(pk) for pk in missing]))
    return tuple(found.get(_key(pk), "") for pk in ids)


def code_digest(*sources) -> str:
    """A digest of these modules' (or template files') source: part of a cached entry's key, so a deploy
    that changes how a read is computed or drawn never reads back what the old code kept."""
    found = hashlib.sha256()
    for source in sources:
        found.update(Path(getattr(source, "__file__", source)).read_bytes())
    return found.hexdigest()[:16]


def cached(name: str, clinic_ids: Iterable[int], parts: tuple, compute: Callable[[], object], timeout: int):
    """``compute()``, kept under ``name``, ``parts`` and the clinics' tokens for ``timeout`` seconds. With
    the cache down, or an entry that cannot be read back, computed."""
    ids = sorted(set(clinic_ids))
    try:
        digest = hashlib.sha256(repr((parts, ids, tokens(ids))).encode()).hexdigest()[:32]
        key = f"{name}:{NAMESPACE}:{digest}"
        found = _cache().get(key)
    except Exception:
        logger.exception("the cache is unavailable, or its entry unreadable: %s computed without it", name)
        return compute()
    if found is not None:
        return found
    value = compute()
    try:
        _cache().set(key, value, timeout)
    except Exception:
        logger.exception("the cache is unavailable: %s not kept", name)
        return value
    _stored().update(ids)
    return value


def row_written(sender, instance, raw: bool = False, **kwargs) -> None:
    """post_save and post_delete of every model: a row with a clinic bumps it (a clinic row bumps itself)."""
    meta = getattr(sender, "_meta", None)
    if meta is None:
        return
    if meta.label == "patients.Clinic":
        bump([instance.pk])
        return
    clinic_id = getattr(instance, "clinic_id", None)
    if clinic_id is not None:
        bump([clinic_id])
