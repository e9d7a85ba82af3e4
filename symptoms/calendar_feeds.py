"""The patient's titration calendar: the .ics file, and a subscription link a phone calendar polls.

A subscription (``CalendarFeed``) is reached by a long random token in its URL, without a session:
phone calendars cannot log in. As with check-in links, only a hash of the token is stored, so the
link is shown to the patient once, when it is made. A patient has at most one live link; making a
new one revokes the old, and "stop sharing" revokes it. A revoked or unknown token, an archived or
discontinued patient, or a turned-off login gets a plain 404 and nothing else.
"""

import datetime as dt
import hashlib
import secrets

import icalendar
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from ldnclinic.db import ClinicOwned
from patients.models import Patient, PatientStatus

from . import hooks

# A phone that polls every few minutes does not need a write on every fetch.
FETCH_MARK_EVERY = dt.timedelta(minutes=15)
# Asked of subscribing calendars (RFC 7986 REFRESH-INTERVAL; X-PUBLISHED-TTL for Apple and Outlook).
FEED_REFRESH = dt.timedelta(hours=6)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CalendarFeedQuerySet(models.QuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True)


class CalendarFeed(ClinicOwned):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="calendar_feeds")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)

    objects = CalendarFeedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"], condition=Q(revoked_at__isnull=True), name="one_live_calendar_feed_per_patient"
            ),
        ]

    def __str__(self) -> str:
        state = f"revoked {self.revoked_at:%Y-%m-%d}" if self.revoked_at else "live"
        return f"Calendar link ({state})"


def calendar_ics(patient, *, today: dt.date, refresh: dt.timedelta | None = None) -> bytes:
    """The patient's coming LDN dates (step-ups, check-ins, refills) as iCalendar (RFC 5545).

    The download and the subscription serve the same events; ``refresh`` tells a subscribing
    calendar how often to poll.
    """
    plan = hooks.calendar(patient, today)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//ldnclinic//titration calendar//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "My LDN")
    if refresh is not None:
        cal.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", refresh)
    now = timezone.now()
    for day, summary in plan["events"]:
        event = icalendar.Event()
        digest = hashlib.sha1(summary.encode(), usedforsecurity=False).hexdigest()[:12]  # stable across downloads
        event.add("uid", f"{patient.pk}-{day.isoformat()}-{digest}@ldnclinic")
        event.add("summary", summary)
        event.add("dtstart", day)
        event.add("dtend", day + dt.timedelta(days=1))
        event.add("dtstamp", now)
        cal.add_component(event)
    return cal.to_ical()


def calendar_feed_create(*, actor, patient) -> tuple[CalendarFeed, str]:
    """A new subscription link for ``patient``; any live one stops working. Returns the feed and
    its token, which is never stored and cannot be shown again."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        # Serialise per patient: two taps at once must not leave two live links (the constraint would refuse).
        Patient.all_objects.select_for_update().filter(pk=patient.pk).first()
        CalendarFeed.objects.filter(patient=patient).live().update(revoked_at=now, updated_at=now)
        feed = CalendarFeed.objects.create(patient=patient, token_hash=token_hash(token))
    return feed, token


def calendar_feed_revoke(*, actor, patient) -> int:
    """Stop sharing: the patient's live subscription link stops working. Returns how many were revoked."""
    now = timezone.now()
    return CalendarFeed.objects.filter(patient=patient).live().update(revoked_at=now, updated_at=now)


def feed_for(token: str) -> CalendarFeed | None:
    """The live feed behind ``token`` when its patient may still be served, else None."""
    if not token or len(token) > 100:
        return None
    feed = (
        CalendarFeed.objects.live()
        .select_related("patient", "patient__user")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if feed is None:
        return None
    patient = feed.patient
    login = patient.user
    if patient.deleted_at is not None or patient.status == PatientStatus.DISCONTINUED:
        return None
    if login is None or not login.is_active:  # the clinic turned the portal login off: the link goes with it
        return None
    return feed


def mark_fetched(feed: CalendarFeed) -> None:
    now = timezone.now()
    if feed.last_fetched_at is None or now - feed.last_fetched_at >= FETCH_MARK_EVERY:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_fetched_at=now)
