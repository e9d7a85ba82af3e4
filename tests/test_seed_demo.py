"""`manage.py seed_demo`: a believable demo clinic, written once, in one transaction."""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.flag_models import ClinicianTask, ConflictFlag
from patients.models import Clinic, LabResult, MedicationStatement, Membership, Patient, PatientStatus, Role, User
from patients.today import patient_today, zone_today
from symptoms.models import NRS_FIELDS, Severity, SideEffect, SideEffectReport, SymptomCheckIn
from titration import demo
from titration.management.commands import seed_demo as command
from titration.models import (
    CompoundedPrescription,
    PlanStatus,
    PrescriptionStatus,
    ReleaseType,
    StepStatus,
    TitrationPlan,
    TitrationStep,
)

pytestmark = pytest.mark.django_db
PASSWORD = demo.DEFAULT_PASSWORD
OPIOID_NAMES = {"Norco 5/325", "Tramadol HCl 50 mg", "Tylenol w/ Codeine #3", "kratom powder", "Butrans 10 mcg/hr"}
STAFF_ROLES = {"demo-prescriber": "Prescriber", "demo-nurse": "Nurse / staff", "demo-admin": "Clinic admin"}


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    """Rows of every model, history tables and soft-deleted rows included."""
    return {m._meta.label: m._base_manager.count() for m in apps.get_models(include_auto_created=True)}


@pytest.fixture(scope="class")
def demo_output(django_db_setup, django_db_blocker):
    """Seed once for the read-only tests of a class, and roll it back after them."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield seed()
        transaction.set_rollback(True)


def active_plans():
    return TitrationPlan.objects.filter(status=PlanStatus.ACTIVE).select_related("patient", "prescription")


def current_step(plan) -> TitrationStep:
    return plan.steps.exclude(actual_start=None).order_by("-sequence").first()


@pytest.mark.usefixtures("demo_output")
class TestDemoContents:
    def test_demo_clinic_has_a_prescriber_a_nurse_and_a_clinic_admin(self):
        clinic = Clinic.objects.get(slug="demo")
        members = Membership.objects.filter(clinic=clinic, is_active=True).select_related("user")
        assert sorted(m.role for m in members) == sorted([Role.PRESCRIBER, Role.NURSE, Role.CLINIC_ADMIN])
        assert all(m.user.is_staff and not m.user.is_superuser for m in members)

    def test_one_patient_has_a_portal_login_that_is_not_staff(self):
        patient = Patient.objects.get(user__isnull=False)
        assert patient.user.username == "demo-patient"
        assert not patient.user.is_staff and not patient.user.memberships.exists()
        assert patient.user.is_patient

    def test_at_least_25_patients_over_every_stage(self):
        assert Patient.objects.count() >= 25
        statuses = set(Patient.objects.values_list("status", flat=True))
        assert {PatientStatus.SCREENING, PatientStatus.ACTIVE, PatientStatus.DISCONTINUED} <= statuses

    def test_screening_patients_still_have_opioids_on_their_medication_list(self):
        meds = MedicationStatement.objects.filter(patient__status=PatientStatus.SCREENING)
        opioids = meds.filter(name__in=OPIOID_NAMES)
        assert set(opioids.values_list("name", flat=True)) == OPIOID_NAMES
        assert opioids.filter(last_dose_date__isnull=False).count() >= 4
        assert opioids.filter(last_dose_date__isnull=True).count() == 1
        assert meds.filter(name__startswith="Sertraline").exists() and meds.filter(name__startswith="Gabapentin")
        assert not TitrationPlan.objects.filter(patient__status=PatientStatus.SCREENING).exists()

    def test_titrating_patients_have_an_active_plan_with_steps_partly_done(self):
        titrating = [
            plan
            for plan in active_plans()
            if current_step(plan).status == StepStatus.ACTIVE and current_step(plan).dose_mg < plan.target_dose_mg
        ]
        assert len(titrating) >= 3
        for plan in titrating:
            statuses = list(plan.steps.values_list("status", flat=True))
            assert StepStatus.DONE in statuses and StepStatus.PLANNED in statuses

    def test_held_steps_give_a_reason_and_recent_moderate_headache_or_insomnia_SE2(self):
        held = TitrationStep.objects.filter(status=StepStatus.HELD).select_related("plan__patient")
        assert held.count() >= 2
        for step in held:
            assert step.plan.status == PlanStatus.ACTIVE
            assert "moderate" in step.note and "SE-2" in step.note
            latest = step.plan.patient.checkins.order_by("-recorded_at").first()
            assert latest.recorded_at.date() > step.actual_start
            assert latest.side_effects.filter(
                effect__in=[SideEffect.HEADACHE, SideEffect.INSOMNIA], severity=Severity.MODERATE
            ).exists()

    def test_patients_at_target_take_4_5_mg_on_an_active_plan(self):
        at_target = [plan for plan in active_plans() if current_step(plan).dose_mg == Decimal("4.5")]
        assert len(at_target) >= 3
        for plan in at_target:
            assert current_step(plan).status == StepStatus.ACTIVE
            assert current_step(plan).sequence == plan.steps.count()  # the last step: maintenance
            assert plan.patient.status == PatientStatus.ACTIVE

    def test_discontinued_patients_give_a_reason_and_their_plan_is_stopped(self):
        stopped = Patient.objects.filter(status=PatientStatus.DISCONTINUED)
        assert stopped.count() >= 2
        for patient in stopped:
            assert patient.discontinued_reason.strip()
            assert patient.titration_plans.get().status == PlanStatus.CANCELLED
            assert patient.prescriptions.get().status == PrescriptionStatus.CANCELLED

    def test_patients_have_conditions_with_diagnosis_dates_several_for_some(self):
        for patient in Patient.objects.prefetch_related("conditions"):
            conditions = list(patient.conditions.all())
            assert conditions and all(c.diagnosed_on and c.diagnosed_on < zone_today(demo.ZONE) for c in conditions)
        several = [p for p in Patient.objects.all() if p.conditions.count() > 1]
        assert len(several) >= 5

    def test_treated_patients_have_an_active_ir_prescription_from_the_demo_prescriber_RX1(self):
        prescriber = User.objects.get(username="demo-prescriber")
        pharmacies = set()
        for plan in active_plans():
            rx = plan.prescription
            assert rx.patient_id == plan.patient_id and rx.status == PrescriptionStatus.ACTIVE
            assert rx.release == ReleaseType.IR and rx.prescriber == prescriber
            assert (rx.form, rx.strength_unit) in {("capsule", "mg/capsule"), ("liquid", "mg/mL")}
            if rx.form == "liquid":
                assert rx.strength_value == 1
            pharmacies.add(rx.pharmacy_id)
        assert 2 <= len(pharmacies) <= 3

    def test_plan_steps_follow_the_protocol_min_days_from_the_plan_start_DOSE2(self):
        used = set()
        for plan in TitrationPlan.objects.select_related("protocol"):
            used.add(plan.protocol.key)
            template = list(plan.protocol.steps.order_by("sequence"))
            steps = list(plan.steps.order_by("sequence"))
            assert [(s.sequence, s.dose_mg, s.min_days) for s in steps] == [
                (t.sequence, t.dose_mg, t.min_days) for t in template
            ]
            planned = plan.start_date
            for step, later in zip(steps, steps[1:], strict=False):
                assert step.planned_start == planned
                planned += dt.timedelta(days=step.min_days)
                if later.actual_start:  # step-up rule 1.3 (1): never before actual_start + min_days
                    assert later.actual_start >= step.actual_start + dt.timedelta(days=step.min_days)
            assert steps[0].actual_start == plan.start_date
        assert used == {"STD_1_5", "SLOW_0_5", "TRIAL_1_0", "FIXED_4_5", "THYROID_0_25"}

    def test_treated_patients_have_12_weeks_of_weekly_checkins_after_a_baseline_BASE1(self):
        now = timezone.now()
        for plan in active_plans():
            days = [patient_today(plan.patient, c.recorded_at) for c in plan.patient.checkins.order_by("recorded_at")]
            before = [d for d in days if d < plan.start_date]
            after = [d for d in days if d >= plan.start_date]
            assert len(before) >= 2 and all((plan.start_date - d).days <= 14 for d in before)
            assert len(after) >= 12
            assert {(b - a).days for a, b in zip(after, after[1:], strict=False)} == {7}
            assert (patient_today(plan.patient) - after[-1]).days <= 7
        assert not SymptomCheckIn.objects.filter(recorded_at__gt=now).exists()

    def test_checkin_scores_are_all_recorded_and_within_0_to_10(self):
        for field in NRS_FIELDS:
            values = set(SymptomCheckIn.objects.values_list(field, flat=True))
            assert None not in values and values <= set(range(11)), field

    def test_pain_falls_for_responders_and_stays_flat_for_non_responders_RESP1(self):
        changes = []
        for plan in active_plans():
            if current_step(plan).dose_mg != Decimal("4.5"):
                continue
            pains = list(plan.patient.checkins.order_by("recorded_at").values_list("recorded_at", "pain"))
            baseline = [p for at, p in pains if at.date() < plan.start_date]
            current = [p for _, p in pains[-2:]]
            base = sum(baseline) / len(baseline)
            changes.append((base - sum(current) / len(current)) / base)
        assert any(c >= 0.3 for c in changes) and any(c < 0.3 for c in changes)

    def test_sleep_and_mood_rise_for_responders(self):
        rising = 0
        for plan in active_plans():
            scores = list(plan.patient.checkins.order_by("recorded_at").values_list("sleep_quality", "mood"))
            if sum(s + m for s, m in scores[-3:]) >= sum(s + m for s, m in scores[:3]) + 6:
                rising += 1
        assert rising >= 5

    def test_side_effects_are_mostly_mild_and_none_severe(self):
        mild = SideEffectReport.objects.filter(severity=Severity.MILD).count()
        worse = SideEffectReport.objects.filter(severity__gte=Severity.MODERATE).count()
        assert mild > 2 * worse > 0
        assert not SideEffectReport.objects.filter(severity=Severity.SEVERE).exists()
        for report in SideEffectReport.objects.select_related("checkin"):
            assert report.started_on <= report.checkin.recorded_at.date()

    def test_labs_include_esr_crp_alt_ast_with_reference_ranges(self):
        assert set(LabResult.objects.values_list("test", flat=True)) == {"ESR", "CRP", "ALT", "AST", "UDS"}
        measured = LabResult.objects.exclude(test="UDS")
        assert not measured.filter(ref_low=None).exists()
        assert not measured.filter(ref_high=None).exists()

    def test_the_demo_has_an_efficacy_review_task_for_each_patient_due_EFF1(self):
        from titration import content, demo, rules

        active = Patient.objects.filter(status="active", titration_plans__status="active").distinct()
        dates = content.treatment_dates_for(active.values_list("pk", flat=True))
        today = zone_today(demo.ZONE)  # the demo patients' own date
        due = {pk for pk, d in dates.items() if rules.efficacy_review_due(d["maintenance_started"], today)}
        assert due  # the demo has patients past 12 weeks on their maintenance dose
        raised = set(ClinicianTask.objects.filter(kind="efficacy_review").values_list("patient_id", flat=True))
        assert raised == due

    def test_the_demo_shows_a_liver_alert_and_a_positive_screen_LAB2(self):
        (alert,) = ClinicianTask.objects.filter(kind="lab_alert", status="open")
        assert "3.5× the upper limit of normal" in alert.detail and alert.patient.last_name == "Osei"
        assert not ClinicianTask.objects.filter(kind="lab_review").exists()  # no demo step-up is blocked by labs
        (flag,) = ConflictFlag.objects.filter(medication__source="lab")
        assert (flag.kind, flag.status, flag.patient.last_name) == ("conflict", "open", "Lopez")

    def test_demo_rows_pass_the_validation_a_user_faces(self):
        for model in (Patient, CompoundedPrescription, TitrationPlan, TitrationStep, MedicationStatement, LabResult):
            for obj in model.objects.all():
                obj.full_clean()

    def test_every_row_belongs_to_the_demo_clinic(self):
        clinic = Clinic.objects.get()
        checked = 0
        for model in apps.get_models():
            if any(f.name == "clinic" for f in model._meta.fields):
                assert not model._base_manager.exclude(clinic_id=clinic.pk).exists(), model._meta.label
                checked += model._base_manager.count()
        assert checked > 1000
        assert set(User.objects.values_list("username", flat=True)) == set(demo.USERNAMES)

    def test_output_lists_the_staff_logins_the_patient_login_and_where_each_logs_in(self, demo_output):
        for username, role in {**STAFF_ROLES, "demo-patient": "Patient portal"}.items():
            assert re.search(rf"^\s*{username}\s+{PASSWORD}\s+{re.escape(role)}", demo_output, re.MULTILINE)
            login_request = RequestFactory().post("/me/login/")  # a login form's request (django-axes needs one)
            assert authenticate(login_request, username=username, password=PASSWORD) is not None
        site = re.escape(settings.SITE_URL)  # http://127.0.0.1:8000 unless HOST, PORT or SITE_URL say otherwise
        assert re.search(rf"^Staff \(prescriber, nurse, clinic admin\): +{site}/clinic/$", demo_output, re.MULTILINE)
        assert re.search(rf"^Patient portal \(patient login\): +{site}/me/login/$", demo_output, re.MULTILINE)
        assert "/admin/" not in demo_output


def test_the_printed_addresses_follow_site_url(settings):
    settings.SITE_URL = "https://ldn.example.org"
    Clinic.objects.create(name=demo.CLINIC_NAME, slug=demo.CLINIC_SLUG)  # present: it only prints
    output = seed()
    assert re.search(r"^Staff .*: +https://ldn\.example\.org/clinic/$", output, re.MULTILINE)
    assert re.search(r"^Patient portal .*: +https://ldn\.example\.org/me/login/$", output, re.MULTILINE)


def test_second_run_writes_nothing_and_prints_the_logins_again():
    seed()
    before = row_counts()
    assert before["patients.HistoricalPatient"] >= 25 and before["symptoms.HistoricalSymptomCheckIn"] > 300
    with CaptureQueriesContext(connection) as queries:
        output = seed()
        other = seed("--password", "another-demo-pass-7")
    assert row_counts() == before
    writes = [q["sql"] for q in queries if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.IGNORECASE)]
    assert writes == []
    assert "already present" in output
    for username, role in STAFF_ROLES.items():
        assert re.search(rf"^\s*{username}\s+{PASSWORD}\s+{re.escape(role)}", output, re.MULTILINE)
    # A password the logins do not have is not printed as if it were theirs.
    assert "already present" in other and "another-demo-pass-7" not in other


def test_a_failure_halfway_leaves_nothing_written(monkeypatch):
    before = row_counts()

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(command, "_checkins", fail)
    with pytest.raises(RuntimeError):
        seed()
    assert row_counts() == before


def test_password_option_sets_every_demo_login():
    output = seed("--password", "another-demo-pass-7")
    for username in demo.USERNAMES:
        assert User.objects.get(username=username).check_password("another-demo-pass-7")
    assert re.search(r"demo-nurse\s+another-demo-pass-7\s+Nurse", output)


def test_weak_password_is_refused_before_anything_is_written():
    with pytest.raises(CommandError, match="--password"):
        seed("--password", "short")
    assert not Clinic.objects.exists() and not User.objects.exists()


def test_existing_login_with_a_demo_username_is_refused():
    User.objects.create(username="demo-nurse")
    with pytest.raises(CommandError, match="demo-nurse"):
        seed()
    assert not Clinic.objects.exists()


def test_runs_on_empty_databases_have_the_same_shape():
    def shape():
        return [
            (
                p.mrn,
                p.status,
                [(c.pain, c.fatigue, c.sleep_quality, c.mood) for c in p.checkins.order_by("recorded_at")],
            )
            for p in Patient.objects.order_by("mrn")
        ]

    shapes = []
    for _ in range(2):
        with transaction.atomic():
            seed()
            shapes.append(shape())
            transaction.set_rollback(True)
    assert shapes[0] == shapes[1]
