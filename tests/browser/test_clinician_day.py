"""A prescriber's day from the demo data, in Debian's Chromium, without /admin/ (issue 10, section 4).

The pages are served with the strict Content-Security-Policy on, and any console error (a CSP refusal
included) fails the test. Screenshots go to the test output folder (BROWSER_OUTPUT, default
var/test-output/browser/). axe-core, vendored from the npm registry, checks the worklist, the chart, the
forms and the patient's check-in form for serious and critical violations.
"""

import datetime as dt
import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from patients.flag_models import ConflictFlag, FlagStatus
from patients.models import Patient
from patients.services import patient_today
from titration.models import CompoundedPrescription, TitrationPlan, TitrationProtocol

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
AXE = Path(__file__).with_name("vendor") / "axe-4.14.1.min.js"
OUTPUT = Path(os.environ.get("BROWSER_OUTPUT", Path(__file__).resolve().parents[2] / "var" / "test-output" / "browser"))
PASSWORD = "ldn-demo-2026"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]


@pytest.fixture
def chromium(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop shares this thread with the ORM
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def demo(live_server, settings, protocols):
    settings.SITE_URL = live_server.url
    call_command("seed_demo", stdout=StringIO())
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return live_server.url


class Desk:
    """A browser logged in as a demo user, collecting console errors: a clinician at 1280 px on the staff
    login, or (``patient``) the demo patient on a phone through the portal login."""

    def __init__(self, browser, base: str, *, patient: bool = False, axe: bool = False):
        self.base = base
        size = {"width": 360, "height": 740} if patient else {"width": 1280, "height": 900}
        # The accessibility checker is injected as an inline script, which the strict policy refuses.
        self.context = browser.new_context(viewport=size, bypass_csp=axe)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        login, home, username = (
            ("/me/login/", "/me/", "demo-patient") if patient else ("/clinic/login/", "/clinic/", "demo-prescriber")
        )
        self.page.goto(f"{base}{login}")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.get_by_role("button", name=re.compile("log in", re.I)).click()
        self.page.wait_for_url(f"{base}{home}")

    def go(self, path: str):
        response = self.page.goto(f"{self.base}{path}")
        assert response.status == 200, (path, response.status)
        return self.page

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)

    def no_console_errors(self) -> None:
        assert not self.errors, self.errors

    def close(self):
        self.context.close()

    def axe(self) -> list[str]:
        """Serious and critical axe-core violations on the page shown now."""
        self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [
            f"{v['id']} ({v['impact']}): {v['help']} - {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]


def landed(page, pattern: str) -> None:
    """After a submit: on the page ``pattern`` matches, or fail with the form's errors as the user sees them."""
    page.wait_for_load_state()
    if not re.search(pattern, page.url):
        errors = page.locator(".errorlist, .errors, .refusal").all_inner_texts()
        raise AssertionError(f"stayed on {page.url}: {errors}")


def _norco_patient() -> tuple[Patient, ConflictFlag]:
    flag = next(
        f
        for f in ConflictFlag.objects.filter(status=FlagStatus.OPEN, medication_text__icontains="norco")
        if f.earliest_safe_start and f.earliest_safe_start > patient_today(f.patient)
    )
    return flag.patient, flag


def test_the_worklist_is_where_a_prescriber_lands_and_every_row_leads_to_the_patient(chromium, demo):
    desk = Desk(chromium, demo)
    page = desk.page
    assert page.get_by_role("heading", level=1).inner_text() == "Worklist"
    assert "Open conflicts" in page.inner_text("main")
    desk.shot("worklist")
    # Filter by kind: only the conflicts remain, and a row opens the patient's chart.
    page.get_by_role("link", name=re.compile("Open conflicts")).first.click()
    page.wait_for_load_state()
    assert page.locator("h2", has_text="Steps due this week").count() == 0
    assert page.locator("h2", has_text="Open conflicts").count() == 1
    page.locator("main table a[href*='/clinic/patients/']").first.click()
    page.wait_for_load_state()
    assert re.search(r"/clinic/patients/\d+/$", page.url)
    assert "earliest safe LDN start" in page.inner_text("main")
    desk.shot("chart-from-worklist")
    desk.no_console_errors()
    desk.close()


def test_a_patient_on_norco_from_the_banner_to_a_plan_started_after_the_washout_OPI_W1(chromium, demo):
    patient, norco = _norco_patient()
    earliest = norco.earliest_safe_start
    today = patient_today(patient)
    desk = Desk(chromium, demo)
    page = desk.go(f"/clinic/patients/{patient.pk}/")
    banner = page.inner_text("header.banner")
    assert "Norco" in banner and earliest.strftime("%-d %b %Y") in banner
    assert "opioid pain relief" in page.inner_text("main").lower()  # the wallet-card text
    desk.shot("norco-chart")

    # "Washout confirmed" before the earliest safe start is refused, and says when it can be.
    page = desk.go(f"/clinic/flags/{norco.pk}/")
    page.select_option("select[name='ack-reason']", "washout_confirmed")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    assert "washout is not complete" in page.inner_text("main")
    assert earliest.strftime("%d %b %Y") in page.inner_text("main")
    norco.refresh_from_db()
    assert norco.status == FlagStatus.OPEN
    desk.shot("norco-washout-refused")
    # The patient confirms they stopped: acknowledged, and the earliest safe start still stands.
    page.select_option("select[name='ack-reason']", "not_taking")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    norco.refresh_from_db()
    assert norco.status == FlagStatus.ACKNOWLEDGED
    for other in ConflictFlag.objects.filter(patient=patient, status=FlagStatus.OPEN):  # e.g. the urine screen
        page = desk.go(f"/clinic/flags/{other.pk}/")
        page.fill("textarea[name='ovr-note']", "Positive screen explained by the Norco; stopped, agreed with patient")
        page.get_by_role("button", name="Override").click()
        page.wait_for_load_state()
        other.refresh_from_db()
        assert other.status == FlagStatus.ACKNOWLEDGED, page.inner_text("main")

    # Prescribe for the compounding pharmacy, and print it.
    page = desk.go(f"/clinic/patients/{patient.pk}/prescriptions/new/")
    page.select_option("select[name=pharmacy]", index=1)
    page.select_option("select[name=form]", "capsule")
    page.fill("input[name=strength_value]", "1.5")
    page.select_option("select[name=strength_unit]", "mg/capsule")
    page.check("input[name=release][value=IR]")
    page.fill("input[name=quantity]", "60")
    page.select_option("select[name=quantity_unit]", "capsules")
    page.fill("input[name=refills]", "1")
    page.fill("input[name=for_dose_mg]", "1.5")  # no plan yet: the days supply is reckoned on the first dose
    page.fill("textarea[name=sig]", "Take 1 capsule by mouth at bedtime, as directed by the titration plan")
    page.fill("input[name=written_on]", today.isoformat())
    page.fill("input[name=start_on]", earliest.isoformat())
    page.get_by_role("button", name="Save draft prescription").click()
    landed(page, r"/clinic/prescriptions/\d+/$")
    rx = CompoundedPrescription.objects.filter(patient=patient).latest("pk")
    page.get_by_role("link", name="Printable prescription").click()
    page.wait_for_load_state()
    printed = page.inner_text("body")
    assert patient.full_name in printed and patient.date_of_birth.strftime("%-d %b %Y") in printed
    assert "immediate release" in printed.lower() and "Take 1 capsule" in printed
    desk.shot("prescription-print")
    pdf = page.request.get(f"{demo}/clinic/prescriptions/{rx.pk}/print.pdf")
    assert pdf.ok and pdf.body()[:5] == b"%PDF-"
    page = desk.go(f"/clinic/prescriptions/{rx.pk}/")
    page.get_by_role("button", name=re.compile("^Activate")).click()
    page.wait_for_load_state()
    rx.refresh_from_db()
    assert rx.status == "active", page.inner_text("main")

    # A plan from a protocol, previewed, saved; its start is blocked before the washout ends, then allowed.
    page = desk.go(f"/clinic/patients/{patient.pk}/plans/new/")
    page.select_option("select[name=protocol]", str(TitrationProtocol.objects.get(key="STD_1_5").pk))
    page.fill("input[name=start]", earliest.isoformat())
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("table.preview, #plan-preview table, table")
    preview.first.wait_for(timeout=10000)
    desk.shot("plan-preview")
    assert "4.5" in page.inner_text("main"), page.locator(".errorlist, .errors").all_inner_texts()
    page.get_by_role("button", name="Save draft").click()
    landed(page, r"/clinic/plans/\d+/$")
    plan = TitrationPlan.objects.filter(patient=patient).latest("pk")
    page.fill("input[name='start-start']", today.isoformat())
    page.locator("#action-start").get_by_role("button").click()
    page.wait_for_load_state()
    assert "before the earliest safe start" in page.inner_text("main")
    plan.refresh_from_db()
    assert plan.status == "draft"
    desk.shot("plan-start-blocked")
    page.fill("input[name='start-start']", earliest.isoformat())
    page.locator("#action-start").get_by_role("button").click()
    page.wait_for_load_state()
    plan.refresh_from_db()
    assert plan.status == "active", page.inner_text("main")
    patient.refresh_from_db()
    assert patient.status == "active"
    desk.no_console_errors()
    desk.close()


def _washout_done_patient() -> Patient:
    """A screening patient whose only conflict resolved itself when its washout ended."""
    for patient in Patient.objects.filter(status="screening"):
        flags = list(patient.conflict_flags.all())
        if flags and all(f.status == FlagStatus.RESOLVED for f in flags) and patient.email:
            return patient
    raise AssertionError("the demo has no screening patient with a finished washout")


def test_start_hold_and_step_back_tell_the_patient_the_right_dose_REM_1_SE_2(chromium, demo):
    patient = _washout_done_patient()
    today = patient_today(patient)
    week_ago = today - dt.timedelta(days=7)
    desk = Desk(chromium, demo)
    page = desk.go(f"/clinic/patients/{patient.pk}/prescriptions/new/")
    page.select_option("select[name=pharmacy]", index=1)
    page.select_option("select[name=form]", "capsule")
    page.fill("input[name=strength_value]", "1.5")
    page.select_option("select[name=strength_unit]", "mg/capsule")
    page.check("input[name=release][value=IR]")
    page.fill("input[name=quantity]", "90")
    page.select_option("select[name=quantity_unit]", "capsules")
    page.fill("textarea[name=sig]", "1 to 3 capsules at bedtime as directed")
    page.fill("input[name=for_dose_mg]", "1.5")
    page.fill("input[name=written_on]", week_ago.isoformat())
    page.fill("input[name=start_on]", week_ago.isoformat())
    page.get_by_role("button", name="Save draft prescription").click()
    landed(page, r"/clinic/prescriptions/\d+/$")
    page.get_by_role("button", name=re.compile("^Activate")).click()
    page.wait_for_load_state()
    page = desk.go(f"/clinic/patients/{patient.pk}/plans/new/")
    page.select_option("select[name=protocol]", str(TitrationProtocol.objects.get(key="STD_1_5").pk))
    page.fill("input[name=start]", week_ago.isoformat())
    page.get_by_role("button", name="Save draft").click()
    landed(page, r"/clinic/plans/\d+/$")
    plan_url = page.url
    page.fill("input[name='start-start']", week_ago.isoformat())  # the patient took the first dose a week ago
    page.locator("#action-start").get_by_role("button").click()
    page.wait_for_load_state()
    assert "(tonight): LDN: step up tonight" in page.inner_text("main")

    # Hold: tonight's reminder becomes "stay on your dose".
    page.fill("textarea[name='hold-reason']", "Patient travelling this week")
    page.locator("#action-hold").get_by_role("button").click()
    page.wait_for_load_state()
    told = page.inner_text("main")
    assert "(tonight): LDN: stay on your dose tonight" in told and "step up tonight" not in told
    desk.shot("plan-held")

    # Resume, step up to 3 mg, then step back: the next step-up is the retry of 3 mg, never 4.5 mg.
    page.fill("textarea[name='resume-reason']", "Back home")
    page.locator("#action-resume").get_by_role("button").click()
    page.wait_for_load_state()
    page.fill("input[name='step_up-on']", today.isoformat())
    page.locator("#action-step_up").get_by_role("button").click()
    page.wait_for_load_state()
    assert "3 mg" in page.inner_text(".step-active") or "3.0" in page.inner_text(".step-active")
    page.fill("input[name='step_back-on']", today.isoformat())
    page.fill("textarea[name='step_back-reason']", "Moderate headache since the step-up")
    page.locator("#action-step_back").get_by_role("button").click()
    page.wait_for_load_state()
    assert page.url == plan_url
    active = page.inner_text(".step-active")
    next_planned = page.locator(".step-planned").first.inner_text()
    assert "1.5" in active
    assert "3" in next_planned.split()[1] and (today + dt.timedelta(days=14)).strftime("%-d %b %Y") in next_planned
    desk.shot("plan-stepped-back")
    desk.no_console_errors()
    desk.close()


def test_no_serious_accessibility_violations_on_the_clinic_pages_and_the_checkin_form(chromium, demo):
    patient, norco = _norco_patient()
    plan = TitrationPlan.objects.filter(status="active").first()
    rx = CompoundedPrescription.objects.filter(status="active").first()
    pages = [
        "/clinic/",
        "/clinic/patients/",
        f"/clinic/patients/{patient.pk}/",
        f"/clinic/patients/{plan.patient_id}/",
        "/clinic/patients/new/",
        f"/clinic/patients/{patient.pk}/medications/new/",
        f"/clinic/patients/{patient.pk}/prescriptions/new/",
        f"/clinic/patients/{patient.pk}/plans/new/",
        f"/clinic/patients/{patient.pk}/labs/new/",
        f"/clinic/patients/{patient.pk}/reminders/",
        f"/clinic/flags/{norco.pk}/",
        f"/clinic/plans/{plan.pk}/",
        f"/clinic/prescriptions/{rx.pk}/",
        f"/clinic/prescriptions/{rx.pk}/print/",
    ]
    desk = Desk(chromium, demo, axe=True)
    found = {path: bad for path in pages if (desk.go(path) and (bad := desk.axe()))}
    # On a 768 px tablet every page still fits: no sideways scrolling of the page itself.
    desk.page.set_viewport_size({"width": 768, "height": 1024})
    wide = {
        path: w
        for path in pages
        if desk.go(path) and (w := desk.page.evaluate("document.scrollingElement.scrollWidth")) > 768
    }
    desk.go(f"/clinic/patients/{patient.pk}/")
    desk.shot("chart-768")
    desk.close()
    assert not wide, f"pages wider than a 768 px tablet: {wide}"
    phone = Desk(chromium, demo, patient=True, axe=True)  # the check-in form, as the demo patient sees it
    phone.go("/me/checkin/")
    if bad := phone.axe():
        found["/me/checkin/"] = bad
    phone.close()
    (OUTPUT / "axe.txt").write_text(
        "axe-core 4.14.1, serious and critical violations:\n"
        + ("\n".join(f"{p}: {v}" for p, v in found.items()) or "none")
        + f"\npages checked: {len(pages) + 1}\n"
    )
    assert not found, found


FOCUSABLE = """() => {
  const all = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])')];
  // Inside a closed <details> only its summary is a control until it is opened (Enter on the summary).
  const folded = e => { const d = e.closest('details'); return d && !d.open && !e.closest('summary'); };
  const shown = all.filter(e => !e.disabled && e.getClientRects().length > 0 && !folded(e));
  shown.forEach((e, i) => { e.dataset.kbd = String(i); });
  return shown.map(e => (e.innerText || e.getAttribute('aria-label') || e.name || e.outerHTML).trim().slice(0, 120));
}"""


def tab_through(page) -> tuple[list[str], set[int]]:
    """Every visible control of the page, and the ones Tab reaches from the top, once round the page."""
    controls = page.evaluate(FOCUSABLE)
    page.evaluate("() => { window.scrollTo(0, 0); document.activeElement && document.activeElement.blur(); }")
    reached: set[int] = set()
    for _ in range(len(controls) + 10):
        page.keyboard.press("Tab")
        found = page.evaluate("() => document.activeElement && document.activeElement.dataset.kbd")
        if found is not None:
            reached.add(int(found))
    return controls, reached


def test_the_keyboard_alone_reaches_every_action_and_does_a_review(chromium, demo):
    """No mouse: the skip link, every control on the worklist and the chart, and a worklist button pressed
    with Enter ("Mark reviewed") that does what a click does."""
    desk = Desk(chromium, demo)
    page = desk.go("/clinic/")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    for path in ["/clinic/", f"/clinic/patients/{_norco_patient()[0].pk}/"]:
        controls, reached = tab_through(desk.go(path))
        missed = [controls[i] for i in range(len(controls)) if i not in reached]
        assert len(controls) >= 15 and not missed, (path, missed)
    # Tab to the first "Mark reviewed" button and press Enter: the side effects are marked reviewed.
    page = desk.go("/clinic/?kind=side_effects")
    before = int(page.locator("#wl-side_effects .badge").inner_text())
    for _ in range(400):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.startsWith('Mark reviewed')"):
            break
    else:
        raise AssertionError("Tab never reached a Mark reviewed button")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "marked reviewed" in page.locator(".messages").inner_text()
    assert int(page.locator("#wl-side_effects .badge").inner_text()) == before - 1
    desk.shot("keyboard-reviewed")
    desk.no_console_errors()
    desk.close()
