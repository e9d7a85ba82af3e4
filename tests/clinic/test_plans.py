"""The plan pages: a plan from a protocol or custom steps, previewed before anything is saved; a plan's
steps and its actions (an allow-list posting to the titration services), with the rules' refusals beside
the form, a prescriber's override, roles, privacy and a flat query count."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from clinic.views_titration import PLAN_ACTIONS
from tests import factories as f
from titration import rules, services
from titration.models import TitrationPlan, TitrationProtocol

D = Decimal
pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 3, 2)
STD = [rules.StepSpec(D("1.5"), 7), rules.StepSpec(D("3.0"), 7), rules.StepSpec(D("4.5"), 7)]


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def rx(patient, prescriber):
    return f.PrescriptionFactory(
        patient=patient,
        prescriber=prescriber,
        strength_value=D("1.5"),
        quantity=D("90"),
        written_on=TODAY,
        start_on=TODAY,
    )


def draft_plan(rx, steps=STD, start=TODAY):
    return services.plan_create(
        actor=rx.prescriber, patient=rx.patient, custom_steps=steps, start=start, prescription=rx
    )


def started_plan(rx, start=TODAY):
    plan = draft_plan(rx, start=start)
    services.plan_start(actor=rx.prescriber, plan=plan, start=start)
    return plan


def plan_url(plan) -> str:
    return reverse("clinic:plan", args=[plan.pk])


def action_url(plan, action: str) -> str:
    return reverse("clinic:plan-action", args=[plan.pk, action])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- A new plan: preview, then save ------------------------------------------------------------------------


def new_url(patient) -> str:
    return reverse("clinic:plan-new", args=[patient.pk])


def test_plan_form_offers_only_this_patients_prescriptions_each_told_apart(
    login, prescriber, patient, sibling_patient, other_patient, rx
):
    twin = f.PrescriptionFactory(patient=patient, written_on=TODAY, start_on=TODAY, status="draft")
    theirs = [f.PrescriptionFactory(patient=sibling_patient), f.PrescriptionFactory(patient=other_patient)]
    response = login(prescriber).get(new_url(patient))
    field = response.context["form"].fields["prescription"]
    assert set(field.queryset) == {rx, twin}
    labels = [label for value, label in field.choices if value]
    assert len(labels) == len(set(labels)) == 2  # two 1.5 mg capsule prescriptions, two different entries
    assert all(o.pk not in {c.pk for c in field.queryset} for o in theirs)


def test_preview_shows_every_step_and_saves_nothing(login, prescriber, patient, rx):
    protocol = TitrationProtocol.objects.get(key="STD_1_5")
    data = {"protocol": protocol.pk, "start": "2026-03-23", "prescription": rx.pk, "preview": "1"}
    response = login(prescriber).post(new_url(patient), data)
    assert response.status_code == 200
    html = response.content.decode()
    for text in ["Mon 23 Mar 2026", "Mon 30 Mar 2026", "Mon 6 Apr 2026", "1 capsule of 1.5 mg", "3 capsules of 1.5 mg"]:
        assert text in html, text
    assert "4.5 mg" in html
    assert not TitrationPlan.objects.exists()


def test_htmx_preview_swaps_the_form_and_saves_nothing(login, prescriber, patient, rx):
    data = {"custom_steps": "1.0 7\n2.0 7", "start": "2026-03-02", "prescription": rx.pk}
    response = login(prescriber).post(new_url(patient), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="plan-form"' in html
    assert "cannot be given from" in html and "RX-2" in html  # 1.0 mg from 1.5 mg capsules
    assert not TitrationPlan.objects.exists()


def test_save_draft_creates_the_plan_as_previewed(login, prescriber, patient, rx):
    data = {"custom_steps": "1.5\n3.0 10\n4.5", "start": "2026-03-02", "prescription": rx.pk, "save": "1"}
    response = login(prescriber).post(new_url(patient), data)
    plan = TitrationPlan.objects.get()
    assert response.status_code == 302 and response["Location"] == plan_url(plan)
    assert plan.status == "draft" and plan.created_by == prescriber
    assert [(str(s.dose_mg), s.planned_start, s.min_days) for s in plan.steps.order_by("sequence")] == [
        ("1.500", dt.date(2026, 3, 2), 7),
        ("3.000", dt.date(2026, 3, 9), 10),
        ("4.500", dt.date(2026, 3, 19), 7),
    ]


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"custom_steps": "one and a half"}, "custom_steps", "write the dose in mg"),
        ({}, "protocol", "Choose a protocol, or write custom steps"),
        ({"custom_steps": "3.0\n1.5"}, "__all__", "below the step before"),  # plan_preview's own rule (DOSE-2)
        ({"custom_steps": "1.5 2"}, "__all__", "3 to 14 days"),
    ],
    ids=["unreadable", "nothing", "decreasing", "min-days"],
)
def test_plan_errors_are_shown_and_what_was_typed_is_kept(data, field, text, login, prescriber, patient):
    response = login(prescriber).post(new_url(patient), {"start": "2026-03-02", "save": "1", **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(text in e for e in errors[field]), errors
    if data:
        assert data["custom_steps"].split("\n")[0] in response.content.decode()
    assert not TitrationPlan.objects.exists()


def test_another_patients_prescription_posted_is_refused(login, prescriber, patient, sibling_patient):
    theirs = f.PrescriptionFactory(patient=sibling_patient)
    data = {"custom_steps": "1.5", "start": "2026-03-02", "prescription": theirs.pk, "save": "1"}
    response = login(prescriber).post(new_url(patient), data)
    assert response.context["form"].errors["prescription"]
    assert not TitrationPlan.objects.exists()


def test_nurse_sees_the_plan_form_refused_and_cannot_post(login, nurse, patient):
    client = login(nurse)
    page = client.get(new_url(patient)).content.decode()
    assert "Only a prescriber" in page and 'id="plan-form"' not in page
    response = client.post(new_url(patient), {"custom_steps": "1.5", "start": "2026-03-02", "save": "1"})
    assert response.status_code == 403
    assert not TitrationPlan.objects.exists()


# --- The plan page ------------------------------------------------------------------------------------------


def test_plan_page_shows_steps_and_what_the_patient_measures(login, prescriber, rx):
    plan = started_plan(rx)
    html = login(prescriber).get(plan_url(plan)).content.decode()
    for text in [
        "1.5 mg",
        "1 capsule of 1.5 mg",
        "2 capsules of 1.5 mg",
        "3 capsules of 1.5 mg",
        "2 Mar 2026",
        "Active",
    ]:
        assert text in html, text
    for action in ["hold", "step_up", "step_back", "skip", "custom_dose", "complete", "discontinue"]:
        written = hasattr(services, PLAN_ACTIONS[action].service)  # the lead's services land one by one
        assert (f'action="{action_url(plan, action)}"' in html) == written, action
        assert f'id="action-{action}"' in html


@pytest.mark.parametrize("n", [5, 20])
def test_plan_page_query_count_does_not_grow_with_steps(n, login, prescriber, rx, django_assert_max_num_queries):
    plan = started_plan(rx)
    start = plan.steps.count()
    for i in range(start + 1, n + 1):
        f.StepFactory(plan=plan, sequence=i, dose_mg=D("4.5"), planned_start=TODAY + dt.timedelta(days=7 * i))
    assert plan.steps.count() == n
    client = login(prescriber)
    with django_assert_max_num_queries(12):
        response = client.get(plan_url(plan))
    assert response.status_code == 200
    assert response.content.decode().count('<tr class="step-') == n


def test_plan_page_shows_rx3_when_the_next_step_cannot_be_made(login, prescriber, patient, rx):
    plan = started_plan(rx.__class__.objects.get(pk=rx.pk))
    plan.steps.filter(sequence=2).update(dose_mg=D("2.0"))
    html = login(prescriber).get(plan_url(plan)).content.decode()
    assert "new prescription needed by" in html and "(RX-3)" in html


# --- Actions: the allow-list, refusals and overrides -------------------------------------------------------


def test_unknown_action_is_not_found_and_a_get_is_refused(login, prescriber, rx):
    plan = started_plan(rx)
    client = login(prescriber)
    assert client.post(action_url(plan, "delete"), {}).status_code == 404
    assert client.post(action_url(plan, "full_clean"), {}).status_code == 404
    assert client.get(action_url(plan, "hold")).status_code == 405


def test_start_makes_step_one_active(login, prescriber, rx):
    plan = draft_plan(rx)
    response = login(prescriber).post(action_url(plan, "start"), {"start-start": "2026-03-02"})
    assert response.status_code == 302 and response["Location"] == plan_url(plan)
    plan.refresh_from_db()
    assert plan.status == "active"
    assert plan.steps.get(sequence=1).status == "active"
    assert "Plan started: step 1 is active." in messages_of(response)


def test_opioid_gate_refusal_on_start_shows_reasons_then_a_prescriber_overrides(login, prescriber, patient, rx):
    f.MedicationFactory(patient=patient, name="Norco 5/325")
    plan = draft_plan(rx)
    client = login(prescriber)
    response = client.post(action_url(plan, "start"), {"start-start": "2026-03-02"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Blocked: " in html and "A prescriber may override with a reason." in html and "Norco 5/325" in html
    assert 'name="start-override_reason"' in html
    plan.refresh_from_db()
    assert plan.status == "draft"
    response = client.post(
        action_url(plan, "start"), {"start-start": "2026-03-02", "start-override_reason": "Norco stopped, UDS clear"}
    )
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.status == "active"


def test_hold_needs_a_reason_beside_the_field(login, prescriber, rx):
    plan = started_plan(rx)
    client = login(prescriber)
    response = client.post(action_url(plan, "hold"), {"hold-reason": ""})
    assert response.status_code == 200
    [hold] = [a for a in response.context["actions"] if a["name"] == "hold"]
    assert hold["form"].errors["reason"]
    assert plan.steps.get(sequence=1).status == "active"
    response = client.post(action_url(plan, "hold"), {"hold-reason": "mild headache, stay a week"})
    assert response.status_code == 302
    assert plan.steps.get(sequence=1).status == "held"


def test_step_up_too_early_shows_every_reason_with_its_rule_and_a_prescriber_may_override(login, prescriber, rx):
    plan = started_plan(rx)
    client = login(prescriber)
    response = client.post(action_url(plan, "step_up"), {"step_up-on": "2026-03-03"})
    assert response.status_code == 200
    [step_up] = [a for a in response.context["actions"] if a["name"] == "step_up"]
    assert ("1.3.1" in dict(step_up["form"].refusal_reasons)) and step_up["form"].show_override
    html = response.content.decode()
    assert "1.3.1" in html and "not before 2026-03-09" in html
    assert 'name="step_up-override_reason"' in html
    assert plan.steps.get(sequence=2).status == "planned"
    response = client.post(
        action_url(plan, "step_up"), {"step_up-on": "2026-03-03", "step_up-override_reason": "tolerating well"}
    )
    assert response.status_code == 302
    assert plan.steps.get(sequence=2).status == "active"


def test_skip_offers_the_plans_planned_steps_only(login, prescriber, rx):
    plan = started_plan(rx)
    other = started_plan(f.PrescriptionFactory(patient=f.PatientFactory(clinic=rx.patient.clinic)))
    foreign = other.steps.get(sequence=2)
    client = login(prescriber)
    response = client.post(action_url(plan, "skip"), {"skip-step": foreign.pk, "skip-reason": "x"})
    [skip] = [a for a in response.context["actions"] if a["name"] == "skip"]
    assert skip["form"].errors["step"]
    foreign.refresh_from_db()
    assert foreign.status == "planned"
    step = plan.steps.get(sequence=3)
    response = client.post(action_url(plan, "skip"), {"skip-step": step.pk, "skip-reason": "settled at 3.0 mg"})
    assert response.status_code == 302
    step.refresh_from_db()
    assert step.status == "skipped"


def test_custom_dose_above_the_maximum_is_refused_and_nothing_changes_DOSE_1(login, prescriber, rx):
    plan = started_plan(rx)
    response = login(prescriber).post(
        action_url(plan, "custom_dose"),
        {"custom_dose-dose_mg": "6.0", "custom_dose-on": "2026-03-03", "custom_dose-reason": "x"},
    )
    assert response.status_code == 200
    assert "not low-dose naltrexone" in response.content.decode()
    assert plan.steps.count() == 3


@pytest.mark.parametrize("action", ["step_up", "custom_dose", "hold", "start"])
def test_nurse_cannot_take_prescriber_actions(action, login, nurse, rx):
    plan = started_plan(rx) if action != "start" else draft_plan(rx)
    client = login(nurse)
    page = client.get(plan_url(plan)).content.decode()
    assert f'action="{action_url(plan, action)}"' not in page
    assert "Only a prescriber of the patient&#x27;s clinic can" in page
    before = [(s.pk, s.status, s.dose_mg) for s in plan.steps.order_by("sequence")]
    data = {
        f"{action}-on": "2026-03-20",
        f"{action}-start": "2026-03-02",
        f"{action}-reason": "r",
        f"{action}-dose_mg": "3",
    }
    response = client.post(action_url(plan, action), data)
    assert response.status_code == 403
    assert b"Only a prescriber" in response.content
    assert [(s.pk, s.status, s.dose_mg) for s in plan.steps.order_by("sequence")] == before


def test_a_service_not_written_yet_says_so(monkeypatch, login, prescriber, rx):
    plan = started_plan(rx)
    monkeypatch.delattr(services, "plan_discontinue", raising=False)
    client = login(prescriber)
    assert "Not available yet." in client.get(plan_url(plan)).content.decode()
    response = client.post(action_url(plan, "discontinue"), {"discontinue-reason": "moving away"})
    assert response.status_code == 302
    assert any("not available yet" in m for m in messages_of(response))


def test_a_service_refusing_the_role_gives_the_refusal_page(monkeypatch, login, prescriber, rx):
    plan = started_plan(rx)

    def refuse(**kwargs):
        raise PermissionDenied("Only a prescriber of this clinic can do this.")

    monkeypatch.setattr(services, "plan_hold", refuse)
    response = login(prescriber).post(action_url(plan, "hold"), {"hold-reason": "r"})
    assert response.status_code == 403
    assert b"Only a prescriber of this clinic can do this." in response.content


# --- Privacy -------------------------------------------------------------------------------------------------


def test_another_clinics_prescriber_gets_not_found(login, other_prescriber, patient, rx):
    plan = started_plan(rx)
    client = login(other_prescriber)
    for url in [plan_url(plan), new_url(patient)]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"Ashdown" not in response.content
    assert client.post(action_url(plan, "hold"), {"hold-reason": "x"}).status_code == 404
    assert plan.steps.get(sequence=1).status == "active"


def test_patient_login_is_sent_to_the_staff_login(client, patient_user, rx):
    plan = started_plan(rx)
    client.force_login(patient_user)
    for response in [client.get(plan_url(plan)), client.post(action_url(plan, "hold"), {"hold-reason": "x"})]:
        assert response.status_code == 302 and "login" in response["Location"]
    assert plan.steps.get(sequence=1).status == "active"


def test_after_a_hold_the_plan_page_shows_tonights_reminder_says_stay_on_your_dose_REM_1(login, prescriber, patient):
    with time_machine.travel(dt.datetime(2026, 6, 10, 13, 0, tzinfo=dt.UTC), tick=False):
        today = dt.date(2026, 6, 10)
        rx = f.PrescriptionFactory(
            patient=patient, prescriber=prescriber, written_on=dt.date(2026, 5, 1), start_on=dt.date(2026, 5, 1)
        )
        steps = [rules.StepSpec(D("1.5"), 7), rules.StepSpec(D("3.0"), 7)]
        plan = services.plan_create(
            actor=prescriber, patient=patient, custom_steps=steps, start=today - dt.timedelta(days=7), prescription=rx
        )
        services.plan_start(actor=prescriber, plan=plan, start=today - dt.timedelta(days=7))
        page = login(prescriber).get(reverse("clinic:plan", args=[plan.pk])).content.decode()
        assert "(tonight): LDN: step up tonight" in page
        services.plan_hold(actor=prescriber, plan=plan, reason="away")
        page = login(prescriber).get(reverse("clinic:plan", args=[plan.pk])).content.decode()
        assert "(tonight): LDN: stay on your dose tonight" in page
        assert "step up tonight" not in page
