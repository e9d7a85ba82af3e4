"""The calendar subscription: a link a phone calendar polls without a session, made, replaced and
stopped by the patient from their page."""

import datetime as dt
import re
from decimal import Decimal
from urllib.parse import urlsplit

import icalendar
import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from symptoms.calendar_feeds import CalendarFeed, calendar_feed_create, token_hash
from tests import factories as f
from titration import rules, services

CONDITION_WORDS = ("fibromyalgia", "crohn", "sclerosis", "covid", "hashimoto")
FEED_LINK = re.compile(r'value="(https?://[^"]+/me/calendar/([A-Za-z0-9_-]+)\.ics)"')


def start_ldn(patient, steps=2):
    """An active plan started three days ago: step-ups, weekly check-ins and refills ahead."""
    patient.status = "active"
    patient.save()
    rx = f.PrescriptionFactory(patient=patient, written_on=dt.date(2026, 1, 1), start_on=dt.date(2026, 1, 1))
    today = timezone.localdate()
    doses = [Decimal("1.5"), Decimal("3.0"), Decimal("4.5"), Decimal("4.5")]
    specs = [rules.StepSpec(doses[min(i, 3)] if i < 3 else Decimal("4.5"), 7) for i in range(steps)]
    plan = services.plan_create(
        actor=rx.prescriber, patient=patient, custom_steps=specs, start=today - dt.timedelta(days=3), prescription=rx
    )
    services.plan_start(actor=rx.prescriber, plan=plan, start=today - dt.timedelta(days=3))
    return plan


@pytest.fixture
def on_ldn(patient):
    return start_ldn(patient)


def feed_path(token: str) -> str:
    return reverse("portal-calendar-feed", kwargs={"token": token})


def events(content: bytes) -> set[tuple[str, str, dt.date]]:
    cal = icalendar.Calendar.from_ical(content)
    return {(str(e["uid"]), str(e["summary"]), e.decoded("dtstart")) for e in cal.walk("VEVENT")}


def fetch(token: str):
    """What a phone calendar does: a plain GET, no cookies."""
    return Client().get(feed_path(token))


def subscribe(client) -> str:
    """Press "Subscribe on your phone" on /me/ and read the link shown once; returns the token."""
    response = client.post(reverse("portal-calendar-link"))
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    https, token = FEED_LINK.search(page).groups()
    assert f'href="webcal://{https.split("://", 1)[1]}"' in page
    return token


def test_subscribing_from_the_portal_shows_a_webcal_and_an_https_link_once(client, on_ldn, patient, patient_user):
    client.force_login(patient_user)
    home = client.get(reverse("portal-home")).content.decode()
    assert "Subscribe on your phone" in home
    assert f'action="{reverse("portal-calendar-link")}"' in home
    token = subscribe(client)
    assert len(token) >= 40
    (feed,) = CalendarFeed.objects.filter(patient=patient)
    assert feed.token_hash == token_hash(token) != token  # only the hash is kept
    again = client.get(reverse("portal-calendar-link")).content.decode()
    assert token not in again  # shown once
    assert "Stop sharing" in again
    assert "Stop sharing" in client.get(reverse("portal-home")).content.decode()


def test_the_feed_works_without_a_session_and_serves_the_download_s_events(client, on_ldn, patient_user):
    client.force_login(patient_user)
    token = subscribe(client)
    download = client.get(reverse("portal-calendar"))
    response = fetch(token)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert "private" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies  # no session made for a calendar's poll
    served = events(response.content)
    assert served == events(download.content)
    assert any(summary.startswith("LDN: step up to 3.0 mg") for _, summary, _ in served)
    cal = icalendar.Calendar.from_ical(response.content)
    assert cal.get("refresh-interval") is not None  # a subscribing calendar polls, the file does not
    assert CalendarFeed.objects.get().last_fetched_at is not None


def test_stop_sharing_makes_the_link_404_and_a_new_link_works(client, on_ldn, patient_user):
    client.force_login(patient_user)
    old = subscribe(client)
    assert fetch(old).status_code == 200
    response = client.post(reverse("portal-calendar-stop"))
    assert response.url == reverse("portal-home")
    assert any("no longer works" in str(m) for m in get_messages(response.wsgi_request))
    gone = fetch(old)
    assert gone.status_code == 404
    assert gone.content == b"Not found.\n"
    assert gone["Content-Type"].startswith("text/plain")
    new = subscribe(client)
    assert fetch(new).status_code == 200
    assert fetch(old).status_code == 404


def test_a_new_link_replaces_the_old_one(client, on_ldn, patient, patient_user):
    client.force_login(patient_user)
    first = subscribe(client)
    second = subscribe(client)
    assert fetch(first).status_code == 404
    assert fetch(second).status_code == 200
    assert CalendarFeed.objects.filter(patient=patient).live().count() == 1


@pytest.mark.parametrize("token", ["nope", "x" * 43, "x" * 500, "%2e%2e"])
def test_an_unknown_token_is_a_plain_404(db, token):
    response = fetch(token)
    assert response.status_code == 404
    assert response.content == b"Not found.\n"


def test_the_stored_hash_is_not_a_token(on_ldn, patient, patient_user):
    feed, _ = calendar_feed_create(actor=None, patient=patient)
    assert fetch(feed.token_hash).status_code == 404


def test_another_patients_token_never_shows_this_patients_events(on_ldn, patient, patient_user, sibling_patient):
    start_ldn(sibling_patient)
    sibling_patient.user = f.UserFactory(username="carol")
    sibling_patient.save()
    _, mine = calendar_feed_create(actor=None, patient=patient)
    _, theirs = calendar_feed_create(actor=None, patient=sibling_patient)
    my_uids = {uid for uid, _, _ in events(fetch(mine).content)}
    their_uids = {uid for uid, _, _ in events(fetch(theirs).content)}
    assert my_uids and their_uids
    assert all(uid.startswith(f"{patient.pk}-") for uid in my_uids)
    assert all(uid.startswith(f"{sibling_patient.pk}-") for uid in their_uids)


def test_the_feed_carries_no_diagnosis_or_other_medicines(on_ldn, patient, patient_user):
    f.PatientConditionFactory(patient=patient, condition="fibromyalgia")
    f.MedicationFactory(patient=patient, name="Sertraline 50 mg")
    _, token = calendar_feed_create(actor=None, patient=patient)
    text = fetch(token).content.decode().lower()
    assert not any(word in text for word in CONDITION_WORDS)
    assert "sertraline" not in text
    assert patient.last_name.lower() not in text


@pytest.mark.parametrize("change", ["archived", "discontinued", "login turned off"])
def test_an_archived_or_discontinued_patients_feed_is_404(on_ldn, patient, patient_user, change):
    _, token = calendar_feed_create(actor=None, patient=patient)
    assert fetch(token).status_code == 200
    if change == "archived":
        patient.delete()
    elif change == "discontinued":
        patient.status, patient.discontinued_reason = "discontinued", "Stopped LDN"
        patient.save()
    else:
        patient_user.is_active = False
        patient_user.save()
    assert fetch(token).status_code == 404


def test_feed_pages_are_for_patients_only(client, prescriber, patient_user):
    assert client.post(reverse("portal-calendar-link")).status_code == 302  # to the login page
    assert urlsplit(client.get(reverse("portal-calendar-link")).url).path == reverse("portal-login")
    client.force_login(prescriber)
    assert client.post(reverse("portal-calendar-link")).status_code == 404
    assert client.post(reverse("portal-calendar-stop")).status_code == 404
    assert not CalendarFeed.objects.exists()


def test_stopping_needs_a_post(client, on_ldn, patient_user):
    client.force_login(patient_user)
    token = subscribe(client)
    assert client.get(reverse("portal-calendar-stop")).status_code == 405
    assert fetch(token).status_code == 200


@pytest.mark.parametrize("steps", [2, 12])
def test_queries_per_fetch_are_bounded(patient, patient_user, django_assert_max_num_queries, steps):
    start_ldn(patient, steps=steps)
    _, token = calendar_feed_create(actor=None, patient=patient)
    client = Client()
    # The feed lookup, titration's calendar provider (9 queries today, not one per step), the fetch mark.
    with django_assert_max_num_queries(12):
        assert client.get(feed_path(token)).status_code == 200
