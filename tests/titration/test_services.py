"""Plan services: preview, create, start, advance, hold, step back, skip, custom dose, side effects."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from patients.models import ClinicianTask
from tests import factories as f
from titration import rules, services
from titration.models import Reminder, StepStatus, TitrationProtocol

D = Decimal


@pytest.fixture
def rx(patient):
    return f.PrescriptionFactory(
        patient=patient, strength_value=D("1.5"), written_on=dt.date(2026, 1, 1), start_on=dt.date(2026, 1, 1)
    )


STD_1_5 = [rules.StepSpec(D("1.5"), 7), rules.StepSpec(D("3.0"), 7), rules.StepSpec(D("4.5"), 7)]


def started_plan(rx, start):
    # Custom steps equal to STD_1_5: transactional tests flush the protocols the migration loaded.
    plan = services.plan_create(
        actor=rx.prescriber, patient=rx.patient, custom_steps=STD_1_5, start=start, prescription=rx
    )
    services.plan_start(actor=rx.prescriber, plan=plan, start=start)
    return plan


def statuses(plan):
    return [(s.sequence, str(s.dose_mg), s.status) for s in plan.steps.order_by("sequence")]


def test_preview_shows_dates_and_what_the_patient_measures_RX_2(rx):
    preview = services.plan_preview(
        protocol=TitrationProtocol.objects.get(key="STD_1_5"), start=dt.date(2026, 3, 23), prescription=rx
    )
    assert [(p.dose_mg, p.planned_start, p.measure) for p in preview] == [
        (D("1.5"), dt.date(2026, 3, 23), "1 capsule of 1.5 mg"),
        (D("3.0"), dt.date(2026, 3, 30), "2 capsules of 1.5 mg"),  # across the UK clock change: 7 calendar days
        (D("4.5"), dt.date(2026, 4, 6), "3 capsules of 1.5 mg"),
    ]


def test_preview_says_when_a_step_cannot_be_given_from_the_prescription_RX_2(rx):
    preview = services.plan_preview(
        protocol=TitrationProtocol.objects.get(key="TRIAL_1_0"), start=dt.date(2026, 1, 5), prescription=rx
    )
    assert "RX-2" in preview[0].measure  # 1.0 mg cannot be made from 1.5 mg capsules


def test_custom_step_above_hard_maximum_is_refused_DOSE_1(rx):
    with pytest.raises(ValidationError, match="5.0"):
        services.plan_preview(custom_steps=[rules.StepSpec(D("5.01"), 7)], start=dt.date(2026, 1, 5))


def test_only_a_prescriber_creates_a_plan(rx, nurse):
    with pytest.raises(PermissionDenied):
        services.plan_create(
            actor=nurse, patient=rx.patient, protocol=TitrationProtocol.objects.first(), start=dt.date(2026, 1, 5)
        )


def test_plan_changes_record_who_and_why(rx):
    plan = started_plan(rx, dt.date(2026, 1, 5))
    first = plan.steps.get(sequence=1)
    record = first.history.latest()
    assert record.history_user == rx.prescriber
    assert statuses(plan)[0] == (1, "1.500", "active")


def test_plan_start_needs_an_active_prescription(patient, prescriber):
    rx = f.PrescriptionFactory(patient=patient, status="draft")
    plan = services.plan_create(
        actor=rx.prescriber,
        patient=patient,
        protocol=TitrationProtocol.objects.get(key="STD_1_5"),
        start=dt.date(2026, 1, 5),
        prescription=rx,
    )
    with pytest.raises(ValidationError, match="prescription"):
        services.plan_start(actor=rx.prescriber, plan=plan, start=dt.date(2026, 1, 5))


def test_step_up_too_early_says_why_and_a_prescriber_may_override(rx):
    start = timezone.localdate() - dt.timedelta(days=3)
    plan = started_plan(rx, start)
    with pytest.raises(services.StepUpNotAllowed) as blocked:
        services.plan_advance(actor=rx.prescriber, plan=plan, on=timezone.localdate())
    assert "3 of 7 days" in str(blocked.value)
    step = services.plan_advance(
        actor=rx.prescriber, plan=plan, on=timezone.localdate(), override_reason="travelling; agreed by phone"
    )
    assert step.dose_mg == D("3.0")
    assert "travelling" in step.history.latest().history_change_reason


def test_hold_step_back_skip_and_custom_dose_keep_their_reasons(rx):
    today = timezone.localdate()
    plan = started_plan(rx, today - dt.timedelta(days=20))
    services.plan_advance(actor=rx.prescriber, plan=plan, on=today - dt.timedelta(days=10))
    services.plan_hold(actor=rx.prescriber, plan=plan, reason="patient away")
    assert plan.steps.get(sequence=2).note == "patient away"
    back = services.plan_step_back(actor=rx.prescriber, plan=plan, on=today, reason="headache")
    assert back.dose_mg == D("1.5")  # SE-2: the previous dose
    # SE-2: the troublesome dose is tried again after a longer interval, not skipped.
    assert statuses(plan) == [
        (1, "1.500", "done"),
        (2, "3.000", "stepped_back"),
        (3, "1.500", "active"),
        (4, "3.000", "planned"),
        (5, "4.500", "planned"),
    ]
    retry = plan.steps.get(sequence=4)
    assert retry.planned_start == today + dt.timedelta(days=14)
    assert plan.steps.get(sequence=5).planned_start == today + dt.timedelta(days=21)
    services.plan_skip(actor=rx.prescriber, plan=plan, step=plan.steps.get(sequence=5), reason="stop at 3 mg")
    # A custom dose above the current one is a step-up: the whole rule applies (1.3.1 min days, RX-2: 1.5 mg
    # capsules cannot make 2.25 mg), and only a prescriber's override with a reason passes it.
    with pytest.raises(services.StepUpNotAllowed) as refused:
        services.plan_set_dose(actor=rx.prescriber, plan=plan, dose_mg=D("2.25"), on=today, reason="compromise")
    assert {r.rule for r in refused.value.reasons} == {"1.3.1", "RX-2"}
    custom = services.plan_set_dose(
        actor=rx.prescriber, plan=plan, dose_mg=D("2.25"), on=today, reason="compromise", override_reason="liquid"
    )
    assert (custom.dose_mg, custom.status) == (D("2.25"), StepStatus.ACTIVE)
    assert "by override: liquid" in custom.history.latest().history_change_reason
    with pytest.raises(ValidationError):
        services.plan_set_dose(actor=rx.prescriber, plan=plan, dose_mg=D("5.01"), on=today, reason="no")
    with pytest.raises(ValidationError, match="why"):
        services.plan_hold(actor=rx.prescriber, plan=plan, reason=" ")


def test_step_back_from_the_first_step_halves_the_dose_SE_5(rx):
    plan = started_plan(rx, timezone.localdate() - dt.timedelta(days=5))
    assert services.plan_step_back(
        actor=rx.prescriber, plan=plan, on=timezone.localdate(), reason="nausea"
    ).dose_mg == D("0.75")


def _checkin(patient, days_ago, **effects):
    checkin = f.CheckInFactory(patient=patient, recorded_at=timezone.now() - dt.timedelta(days=days_ago))
    for effect, severity in effects.items():
        f.SideEffectFactory(checkin=checkin, effect=effect, severity=severity)
    return checkin


@pytest.mark.django_db(transaction=True)
def test_moderate_headache_steps_back_once_SE_2(clinic):
    patient = f.PatientFactory(clinic=clinic, status="active", email="p@example.test")
    rx = f.PrescriptionFactory(patient=patient, written_on=dt.date(2026, 1, 1), start_on=dt.date(2026, 1, 1))
    today = timezone.localdate()
    plan = started_plan(rx, today - dt.timedelta(days=20))
    services.plan_advance(actor=rx.prescriber, plan=plan, on=today - dt.timedelta(days=6))
    _checkin(patient, 1, headache=2)  # saved and committed: the receiver steps back
    assert statuses(plan)[1:4] == [(2, "3.000", "stepped_back"), (3, "1.500", "active"), (4, "3.000", "planned")]
    services.apply_side_effects(patient=patient, today=today)  # again: nothing more happens
    assert plan.steps.count() == 5


@pytest.mark.django_db(transaction=True)
def test_mild_effect_holds_the_step_SE_1(clinic):
    patient = f.PatientFactory(clinic=clinic, status="active")
    rx = f.PrescriptionFactory(patient=patient, written_on=dt.date(2026, 1, 1), start_on=dt.date(2026, 1, 1))
    plan = started_plan(rx, timezone.localdate() - dt.timedelta(days=5))
    _checkin(patient, 0, nausea=1)
    current = plan.steps.get(sequence=1)
    assert current.status == StepStatus.HELD
    assert "SE-1" in current.note


@pytest.mark.django_db(transaction=True)
def test_severe_effect_holds_tasks_the_clinician_and_pauses_step_reminders_SE_4(clinic):
    patient = f.PatientFactory(clinic=clinic, status="active", email="p@example.test")
    rx = f.PrescriptionFactory(patient=patient, written_on=dt.date(2026, 1, 1), start_on=dt.date(2026, 1, 1))
    plan = started_plan(rx, timezone.localdate() - dt.timedelta(days=5))
    assert Reminder.objects.filter(patient=patient, kind="step_up", status="pending").exists()
    _checkin(patient, 0, vomiting=3)
    assert plan.steps.get(sequence=1).status == StepStatus.HELD
    assert ClinicianTask.objects.filter(patient=patient, kind="side_effect").count() == 1
    assert not Reminder.objects.filter(patient=patient, kind="step_up", status="pending").exists()


@pytest.mark.django_db(transaction=True)
def test_vivid_dreams_suggest_a_morning_dose_SE_3(clinic):
    patient = f.PatientFactory(clinic=clinic, status="active")
    rx = f.PrescriptionFactory(patient=patient, written_on=dt.date(2026, 1, 1), start_on=dt.date(2026, 1, 1))
    started_plan(rx, timezone.localdate() - dt.timedelta(days=5))
    _checkin(patient, 0, vivid_dreams=1)
    task = ClinicianTask.objects.get(patient=patient, title__contains="morning")
    assert "suggest taking the dose in the morning (SE-3)" in task.detail
    assert task.detail.count("SE-3") == 1  # the rule's own reason names it, once


def test_admin_shows_the_plan_with_dates_quantities_and_why_it_is_held(client, rx):
    plan = started_plan(rx, timezone.localdate() - dt.timedelta(days=3))
    services.plan_hold(actor=rx.prescriber, plan=plan, reason="held: mild nausea reported today (SE-1)")
    client.force_login(rx.prescriber)
    listing = client.get("/admin/titration/titrationplan/").content.decode()
    assert "held: mild nausea reported today (SE-1)" in listing
    page = client.get(f"/admin/titration/titrationplan/{plan.pk}/change/").content.decode()
    for text in ("1 capsule of 1.5 mg", "2 capsules of 1.5 mg", "3 capsules of 1.5 mg"):
        assert text in page


def test_the_admin_has_no_plan_from_protocol_page_any_more(client, nurse, other_patient, rx):
    # Plans are made from a protocol on the clinic pages (preview, then save); the admin's page is gone (issue 10).
    url = "/admin/titration/titrationplan/from-protocol/"
    form = {
        "patient": rx.patient.pk,
        "protocol": TitrationProtocol.objects.get(key="STD_1_5").pk,
        "prescription": rx.pk,
        "start": "2026-03-23",
    }
    with pytest.raises(NoReverseMatch):
        reverse("admin:titration_titrationplan_from_protocol")
    for user in (rx.prescriber, nurse):
        client.force_login(user)
        for data in (form, {**form, "patient": other_patient.pk}):
            response = client.post(url, {**data, "save": "1"}, follow=True)  # ends on the admin index
            assert response.status_code == 200 and b'name="save"' not in response.content
    assert not rx.patient.titration_plans.exists() and not other_patient.titration_plans.exists()
