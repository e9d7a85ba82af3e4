"""From the demo data, in headless Chromium at phone size: a check-in reminder's link opens the form,
submitting shows a thank-you with tonight's dose, a moderate headache holds that patient's next step
with the reason, and the clinician sees the check-in and the hold."""

import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from patients.models import Patient
from titration import content
from titration.models import Reminder, StepStatus, TitrationPlan

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still
    # synchronous, so Django's async-safety guard is relaxed for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


def reminder_link(patient, settings, live_server) -> str:
    """The link exactly as a weekly check-in reminder would carry it."""
    settings.SITE_URL = live_server.url
    plan = TitrationPlan.objects.get(patient=patient, status="active")
    reminder = Reminder(
        patient=patient, plan=plan, kind="checkin_due", channel="email", local_date=timezone.localdate()
    )
    _, body = content.prepare(reminder, today=reminder.local_date)
    return re.search(r"Check in: (\S+)", body).group(1)


def test_phone_checkin_from_a_reminder_link_to_the_clinicians_hold(browser, live_server, settings, protocols):
    call_command("seed_demo", stdout=StringIO())
    # A demo patient who is titrating and not held: their next step is what the headache should stop.
    patient = next(
        p
        for p in Patient.objects.filter(status="active")
        if (current := content.current_step(TitrationPlan.objects.get(patient=p, status="active"))) is not None
        and current.status == StepStatus.ACTIVE
        and content.dose_summary(p, timezone.localdate())["next_step"] is not None
    )
    link = reminder_link(patient, settings, live_server)
    tonight_before = content.dose_summary(patient, timezone.localdate())["tonight"]

    phone = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Weekly check-in")
    assert tonight_before in page.inner_text(".dose")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 320  # readable at 320 px, no sideways scroll

    for name, value in (("pain", "6"), ("fatigue", "5"), ("sleep_quality", "4"), ("mood", "5")):
        page.locator(f"label[for=id_{name}_{value}]").tap()
    page.locator("label[for=id_effect_headache_2]").tap()  # Moderate
    page.locator("label[for=id_took_dose_as_prescribed_0]").tap()
    page.locator("label[for=id_opioid_use_0]").tap()
    if page.locator("#module-pgic").count():  # PGIC is due at weeks 4, 8, 12, 24... (PRO-2)
        page.locator("label[for=id_pgic_3]").tap()  # "No change"
    page.get_by_role("button", name="Send my check-in").tap()

    page.wait_for_selector("text=Thank you")
    thanks = page.inner_text("main")
    after = content.dose_summary(patient, timezone.localdate())
    # SE-2: back to the previous dose tonight; the next step waits (the same dose, two weeks on).
    assert f"Tonight: {after['tonight']}" in thanks
    assert after["tonight"] != tonight_before
    assert after["next_dose"] == tonight_before
    assert (after["next_step"] - timezone.localdate()).days == 14

    plan = TitrationPlan.objects.get(patient=patient, status="active")
    assert "moderate headache" in content.current_step(plan).note.lower()
    phone.close()

    # The clinician, on a desktop, sees the check-in and the step back with its reason on the patient's chart.
    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    chart = desk.new_page()
    chart.goto(f"{live_server.url}/clinic/login/")
    chart.fill("#id_username", "demo-prescriber")
    chart.fill("#id_password", "ldn-demo-2026")
    chart.get_by_role("button", name="Log in").click()
    chart.wait_for_url(f"{live_server.url}/clinic/")
    chart.goto(f"{live_server.url}/clinic/patients/{patient.pk}/")
    page_text = chart.inner_text("main").lower()
    assert "moderate headache" in page_text
    assert "weekly check-in" in page_text or "check-in" in page_text
    desk.close()


def test_patient_pages_fit_a_phone_and_the_calendar_subscription_works(browser, live_server, settings, protocols):
    """The demo patient logs in on a 320 px phone: every portal page fits without sideways scrolling,
    and the calendar subscription link serves the calendar to a client without the login's cookie."""
    import urllib.request

    import icalendar

    settings.SITE_URL = live_server.url  # links the site gives out (the subscription address) point here
    call_command("seed_demo", stdout=StringIO())
    phone = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(f"{live_server.url}/me/login/")
    page.fill("input[name=username]", "demo-patient")
    page.fill("input[name=password]", "ldn-demo-2026")
    page.get_by_role("button", name=re.compile("log in", re.I)).tap()
    page.wait_for_url(f"{live_server.url}/me/")
    for path in ["/me/", "/me/checkin/", "/me/calendar/link/", "/me/password/change/"]:
        page.goto(f"{live_server.url}{path}")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 320, f"{path} is {width} px wide at 320 px"

    page.goto(f"{live_server.url}/me/")
    page.get_by_role("button", name="Subscribe on your phone").tap()
    feed = page.locator("#feed-address").input_value()
    assert re.fullmatch(rf"{re.escape(live_server.url)}/me/calendar/[\w-]+\.ics", feed), feed
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 320
    table = page.goto(f"{live_server.url}/me/") and page.locator("table.scores")
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth"), (
        "the scores table fits without scrolling"
    )
    with urllib.request.urlopen(feed) as response:  # a phone's calendar: no session cookie
        calendar = icalendar.Calendar.from_ical(response.read())
    summaries = [str(event["summary"]) for event in calendar.walk("VEVENT")]
    assert any("check-in" in s for s in summaries), summaries
    phone.close()
