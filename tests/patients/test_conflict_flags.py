"""Opioid conflict flags in the record (domain.md section 2; issue: flags, washout, gate, sweep)."""

import datetime as dt
import threading
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from patients import opioids, services, tasks
from patients.flag_models import ClinicianTask, ConflictFlag, FlagKind, FlagStatus, GateOutcome, SafetyGateEvent
from patients.models import MedicationStatement, PatientStatus
from tests import factories as f
from titration import services as titration_services
from titration.models import PrescriptionStatus

TODAY = dt.date(2026, 11, 22)


def flags_of(medication):
    return list(ConflictFlag.objects.filter(medication=medication))


def test_saving_an_opioid_creates_an_open_conflict_at_once_OPI_1(patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325")  # the save itself runs the check
    (flag,) = flags_of(med)
    assert (flag.kind, flag.status, flag.severity) == (FlagKind.CONFLICT, FlagStatus.OPEN, "high")
    assert flag.ingredients == ["acetaminophen", "hydrocodone"]
    assert flag.catalog_version == opioids.get_catalog().version
    assert any("norco" in e for e in flag.evidence)
    assert flag.earliest_safe_start is None
    assert "unknown" in flag.earliest_start_note  # still taking: no date, and it says so


@pytest.mark.parametrize(
    ("name", "release", "last_dose", "expected_start"),
    [
        ("Percocet 5/325", "IR", dt.date(2026, 11, 20), dt.date(2026, 11, 30)),
        ("Methadone 10 mg", "IR", dt.date(2026, 11, 20), dt.date(2026, 12, 4)),
        ("oxycodone 10 mg", "ER", dt.date(2026, 11, 20), dt.date(2026, 12, 4)),  # the record says ER
        ("Butrans 10 mcg/hr", "unknown", dt.date(2026, 11, 20), dt.date(2026, 12, 4)),
    ],
)
def test_earliest_safe_start_is_last_dose_plus_slowest_washout_OPI_W1(
    patient, name, release, last_dose, expected_start
):
    med = f.MedicationFactory(patient=patient, name=name, release=release, last_dose_date=last_dose)
    (flag,) = flags_of(med)
    assert flag.earliest_safe_start == expected_start


def test_depot_buprenorphine_gets_no_date_and_needs_manual_clearance_OPI_W1(patient):
    med = f.MedicationFactory(patient=patient, name="Sublocade 300 mg", last_dose_date=dt.date(2026, 10, 1))
    (flag,) = flags_of(med)
    assert flag.earliest_safe_start is None
    assert "manually" in flag.earliest_start_note


def test_evaluating_twice_keeps_one_flag(patient):
    med = f.MedicationFactory(patient=patient, name="Tramadol 50 mg")
    services.medication_evaluate(medication=med)
    services.medication_evaluate(medication=med)
    assert ConflictFlag.objects.filter(medication=med).count() == 1


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Vivitrol 380 mg", FlagKind.DUPLICATE_ANTAGONIST),
        ("Relistor 12 mg", FlagKind.OPIOID_CONTEXT),
        ("unknown opioid pill", FlagKind.CAUTION),
        ("Imodium A-D", FlagKind.CAUTION),
    ],
)
def test_other_findings_raise_their_own_flags_OPI_3(patient, name, kind):
    med = f.MedicationFactory(patient=patient, name=name)
    assert [flag.kind for flag in flags_of(med)] == [kind]


@pytest.mark.parametrize("name", ["Narcan 4 mg nasal spray", "oxybutynin 5 mg", "hydroxyzine 25 mg"])
def test_rescue_naloxone_and_look_alikes_raise_no_flag_OPI_2(patient, name):
    assert flags_of(f.MedicationFactory(patient=patient, name=name)) == []


def test_correcting_the_name_resolves_the_flag_with_the_reason(patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325")
    med.name = "Nexium 20 mg"
    med.save()
    (flag,) = flags_of(med)
    assert flag.status == FlagStatus.RESOLVED
    assert "no longer" in flag.resolved_reason


def test_archiving_the_medication_resolves_its_flag_and_keeps_it(patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325")
    med.delete()
    (flag,) = flags_of(med)
    assert flag.status == FlagStatus.RESOLVED
    assert "archived" in flag.resolved_reason
    med.restore()  # back on the list: the conflict is back
    assert flags_of(med)[0].status == FlagStatus.OPEN


def test_nightly_sweep_resolves_an_elapsed_washout_with_the_reason_OPI_W1(patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=timezone.localdate())
    assert flags_of(med)[0].status == FlagStatus.OPEN
    MedicationStatement.objects.filter(pk=med.pk).update(last_dose_date=timezone.localdate() - dt.timedelta(days=11))
    assert tasks.opioid_sweep.run() >= 1
    flag = flags_of(med)[0]
    assert flag.status == FlagStatus.RESOLVED
    assert "washout complete" in flag.resolved_reason
    assert flag.history.filter(status=FlagStatus.RESOLVED).exists()


def test_sweep_skips_discontinued_patients(patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325")
    patient.status, patient.discontinued_reason = PatientStatus.DISCONTINUED, "moved away"
    patient.save()
    ConflictFlag.objects.filter(medication=med).update(catalog_version="old")
    tasks.opioid_sweep.run()
    assert flags_of(med)[0].catalog_version == "old"


def test_a_new_last_dose_reopens_an_acknowledged_flag(patient, prescriber):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=dt.date(2026, 11, 1))
    services.flag_acknowledge(actor=prescriber, flag=flags_of(med)[0], reason="not_taking")
    med.last_dose_date = timezone.localdate()
    med.save()
    assert flags_of(med)[0].status == FlagStatus.OPEN


def test_acknowledgement_expires_and_the_sweep_reopens_the_flag(patient, prescriber):
    med = f.MedicationFactory(patient=patient, name="Tramadol 50 mg")
    flag = services.flag_acknowledge(
        actor=prescriber,
        flag=flags_of(med)[0],
        reason="clinical_judgement",
        note="reviewed with the pain team",
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    assert flag.status == FlagStatus.ACKNOWLEDGED
    ConflictFlag.objects.filter(pk=flag.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    tasks.opioid_sweep.run()
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN
    assert any("expired" in note for note in flag.notes)
    assert flag.history.filter(status=FlagStatus.ACKNOWLEDGED, acknowledged_by=prescriber).exists()


def test_only_a_prescriber_acknowledges_a_conflict(patient, nurse, prescriber):
    flag = flags_of(f.MedicationFactory(patient=patient, name="Norco 5/325"))[0]
    with pytest.raises(PermissionDenied):
        services.flag_acknowledge(actor=nurse, flag=flag, reason="not_taking")
    with pytest.raises(ValidationError):
        services.flag_acknowledge(actor=prescriber, flag=flag, reason="other", note=" ")
    caution = flags_of(f.MedicationFactory(patient=patient, name="unknown opioid"))[0]
    assert services.flag_acknowledge(actor=nurse, flag=caution, reason="not_an_opioid").status == "acknowledged"


def test_prescriber_shortens_washout_to_seven_days_with_reason_OPI_W2(patient, prescriber):
    med = f.MedicationFactory(patient=patient, name="Methadone 10 mg", last_dose_date=TODAY)
    flag = flags_of(med)[0]
    with pytest.raises(ValidationError, match="7 days"):
        services.flag_acknowledge(
            actor=prescriber, flag=flag, reason="uds_negative", shortened_washout_days=6, shortened_reason="UDS"
        )
    flag = services.flag_acknowledge(
        actor=prescriber, flag=flag, reason="uds_negative", shortened_washout_days=7, shortened_reason="UDS negative"
    )
    assert flag.earliest_safe_start == TODAY + dt.timedelta(days=7)
    assert "UDS negative" in flag.earliest_start_note


def test_unloadable_catalog_flags_review_manually_and_blocks(monkeypatch, patient, prescriber):
    def broken():
        raise opioids.CatalogError("catalog file missing")

    monkeypatch.setattr(opioids, "get_catalog", broken)
    med = f.MedicationFactory(patient=patient, name="sertraline 50 mg")
    (flag,) = flags_of(med)
    assert (flag.kind, flag.severity, flag.status) == (FlagKind.UNAVAILABLE, "high", FlagStatus.OPEN)
    assert "review manually" in flag.notes[0]
    rx = f.PrescriptionFactory(patient=patient, status=PrescriptionStatus.DRAFT)
    with pytest.raises(services.ConflictBlocked):
        titration_services.prescription_activate(actor=rx.prescriber, prescription=rx)
    monkeypatch.undo()
    services.medication_evaluate(medication=med)
    assert flags_of(med)[0].status == FlagStatus.RESOLVED  # the catalog is back and sertraline is fine


def test_open_conflict_blocks_activation_and_the_block_is_recorded(patient):
    f.MedicationFactory(patient=patient, name="Norco 5/325")
    rx = f.PrescriptionFactory(patient=patient, status=PrescriptionStatus.DRAFT)
    with pytest.raises(services.ConflictBlocked, match="Norco"):
        titration_services.prescription_activate(actor=rx.prescriber, prescription=rx)
    rx.refresh_from_db()
    assert rx.status == PrescriptionStatus.DRAFT
    event = SafetyGateEvent.objects.get(patient=patient)
    assert (event.outcome, event.action, event.actor) == (GateOutcome.BLOCKED, "activate_prescription", rx.prescriber)
    assert event.flags.count() == 1


def test_prescriber_override_with_reason_activates_and_is_recorded(patient, nurse):
    f.MedicationFactory(patient=patient, name="Norco 5/325")
    rx = f.PrescriptionFactory(patient=patient, status=PrescriptionStatus.DRAFT)
    titration_services.prescription_activate(
        actor=rx.prescriber, prescription=rx, override_reason="stopped 3 weeks ago, UDS negative"
    )
    rx.refresh_from_db()
    assert rx.status == PrescriptionStatus.ACTIVE
    event = SafetyGateEvent.objects.get(patient=patient, outcome=GateOutcome.OVERRIDDEN)
    assert event.reason == "stopped 3 weeks ago, UDS negative"


def test_a_nurse_cannot_override_the_gate(patient, nurse):
    f.MedicationFactory(patient=patient, name="Norco 5/325")
    with pytest.raises(services.ConflictBlocked):
        services.opioid_gate(actor=nurse, patient=patient, action="start_plan", override_reason="please")
    assert SafetyGateEvent.objects.get(patient=patient).outcome == GateOutcome.BLOCKED


def test_open_conflict_blocks_plan_start_and_step_up(patient):
    rx = f.PrescriptionFactory(patient=patient)
    plan = f.PlanFactory(patient=patient, prescription=rx, status="draft")
    f.StepFactory(plan=plan, sequence=1, dose_mg="1.5")
    f.StepFactory(plan=plan, sequence=2, dose_mg="3.0")
    titration_services.plan_start(actor=rx.prescriber, plan=plan, start=TODAY)
    f.MedicationFactory(patient=patient, name="kratom capsules")
    with pytest.raises(services.ConflictBlocked):
        titration_services.plan_advance(actor=rx.prescriber, plan=plan, on=TODAY + dt.timedelta(days=7))
    assert list(plan.steps.values_list("status", flat=True)) == ["active", "planned"]


def test_admin_cannot_activate_a_prescription_even_with_an_override(client, patient):
    # Activation goes through titration.services.prescription_activate (the gate, blocked then overridden: the tests
    # above); the admin shows the prescription read-only and refuses the POST a browser would send.
    f.MedicationFactory(patient=patient, name="Norco 5/325")
    rx = f.PrescriptionFactory(patient=patient, status=PrescriptionStatus.DRAFT)
    client.force_login(rx.prescriber)
    url = reverse("admin:titration_compoundedprescription_change", args=[rx.pk])
    from tests.conftest import admin_form_data

    page = client.get(url)
    assert b'name="_save"' not in page.content
    data = {**admin_form_data(page), "status": "active", "_save": "Save"}
    assert client.post(url, data).status_code == 403
    assert client.post(url, {**data, "override_reason": "washout confirmed by phone"}).status_code == 403
    rx.refresh_from_db()
    assert rx.status == PrescriptionStatus.DRAFT
    assert not SafetyGateEvent.objects.exists()  # not even reached: nothing to record


def test_admin_shows_the_conflict_loudly_when_a_medication_is_saved(client, prescriber, patient):
    client.force_login(prescriber)
    response = client.post(
        reverse("admin:patients_medicationstatement_add"),
        {"patient": patient.pk, "name": "Norco 5/325", "route": "oral", "release": "IR", "source": "clinician"},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    assert any(m.startswith("OPIOID CONFLICT: Norco 5/325") for m in shown), shown


def test_broker_down_does_not_lose_the_save_or_the_flag(monkeypatch, patient, django_capture_on_commit_callbacks):
    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.evaluate_medication, "apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        med = f.MedicationFactory(patient=patient, name="Norco 5/325")
    assert flags_of(med)[0].status == FlagStatus.OPEN


def test_demo_screening_patients_show_their_conflicts_with_earliest_dates(db):
    call_command("seed_demo", stdout=StringIO())
    flags = ConflictFlag.objects.filter(patient__status=PatientStatus.SCREENING, kind=FlagKind.CONFLICT)
    assert flags.filter(status=FlagStatus.OPEN).count() >= 4
    assert flags.filter(earliest_safe_start__isnull=False).exists()
    assert flags.filter(status=FlagStatus.RESOLVED, resolved_reason__contains="washout complete").exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_evaluating_at_once_create_one_flag(clinic):
    patient = f.PatientFactory(clinic=clinic)
    (med,) = MedicationStatement.objects.bulk_create(  # no signal: nothing evaluated yet
        [MedicationStatement(patient=patient, clinic=clinic, name="Norco 5/325", route="oral", release="IR")]
    )
    barrier = threading.Barrier(2)
    errors = []

    def evaluate():
        try:
            barrier.wait(timeout=10)
            services.medication_evaluate(medication=MedicationStatement.objects.get(pk=med.pk))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert ConflictFlag.objects.filter(medication=med).count() == 1


def test_medication_keeps_the_ingredients_the_engine_found_OPI_4(patient):
    med = f.MedicationFactory(patient=patient, name="APAP/HYDROCODONE BITARTRATE 325-5 MG", route="oral")
    med.refresh_from_db()
    assert med.ingredients == ["acetaminophen", "hydrocodone"]
    assert (med.route, med.release, med.source) == ("oral", "IR", "clinician")


def test_opioid_while_on_ldn_raises_an_opioid_plan_task_and_no_date_OPI_W3(patient):
    patient.status = PatientStatus.ACTIVE
    patient.save()
    med = f.MedicationFactory(patient=patient, name="oxycodone 5 mg after surgery", last_dose_date=timezone.localdate())
    (flag,) = flags_of(med)
    assert flag.status == FlagStatus.OPEN
    assert flag.earliest_safe_start is None
    assert "OPI-W3" in flag.earliest_start_note
    (task,) = ClinicianTask.objects.filter(patient=patient, kind="opioid_plan")
    assert "Hold LDN" in task.detail
    services.medication_evaluate(medication=med)  # idempotent: still one task
    assert ClinicianTask.objects.filter(patient=patient, kind="opioid_plan").count() == 1


def test_old_opioid_history_on_ldn_resolves_without_a_task_OPI_W3(patient):
    patient.status = PatientStatus.ACTIVE
    patient.save()
    med = f.MedicationFactory(patient=patient, name="codeine 30 mg", last_dose_date=dt.date(2019, 5, 1))
    assert flags_of(med)[0].status == FlagStatus.RESOLVED
    assert not ClinicianTask.objects.filter(patient=patient).exists()


@pytest.mark.parametrize("answer", ["yes", "unsure"])
def test_checkin_opioid_answer_adds_a_medication_to_verify_and_flags_it(patient, answer):
    checkin = f.CheckInFactory(patient=patient, opioid_use=answer)
    med = MedicationStatement.objects.get(patient=patient, source="check_in")
    assert f"#{checkin.pk}" in med.name
    (flag,) = flags_of(med)
    assert (flag.kind, flag.status) == (FlagKind.CAUTION, FlagStatus.OPEN)
    checkin.save()  # saved again: still one entry
    assert MedicationStatement.objects.filter(patient=patient, source="check_in").count() == 1


def test_checkin_answering_no_adds_nothing(patient):
    f.CheckInFactory(patient=patient, opioid_use="no")
    assert not MedicationStatement.objects.filter(patient=patient).exists()


def test_the_prescription_page_shows_open_conflicts_and_saves_nothing(client, patient):
    rx = f.PrescriptionFactory(patient=patient, status=PrescriptionStatus.DRAFT, sig="1 capsule at bedtime")
    med = f.MedicationFactory(patient=patient, name="Dilaudid 2 mg", route="oral")  # checked as it is saved
    client.force_login(rx.prescriber)
    url = reverse("admin:titration_compoundedprescription_change", args=[rx.pk])
    from tests.conftest import admin_form_data

    page = client.get(url)
    shown = [str(m) for m in page.context["messages"]]
    assert any(m.startswith("OPIOID CONFLICT: Dilaudid") for m in shown), shown
    response = client.post(url, {**admin_form_data(page), "sig": "1 capsule at night"})
    assert response.status_code == 403
    rx.refresh_from_db()
    assert rx.sig == "1 capsule at bedtime"
    assert flags_of(med)[0].status == FlagStatus.OPEN
