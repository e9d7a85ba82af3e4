"""The reminder outbox (domain.md section 6: REM-1..REM-5, RX-3) with a real SMTP server on loopback."""

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from patients.models import ClinicianTask
from patients.today import patient_today, zone_today
from tests import factories as f
from titration import reminders
from titration.models import Reminder, StepStatus
from titration.schedule import local_to_utc

UTC = dt.UTC
CONDITION_WORDS = ("fibromyalgia", "crohn", "sclerosis", "covid", "hashimoto", "pain")


def active_patient(clinic, **prefs):
    return f.PatientFactory(clinic=clinic, status="active", email="pat@example.test", **prefs)


def titrating(patient, today, *, current_started=None, next_in_days=0, form="capsule"):
    """A plan on 1.5 mg (started current_started) with a 3.0 mg step planned next_in_days from today."""
    rx = f.PrescriptionFactory(
        patient=patient, written_on=today - dt.timedelta(days=30), start_on=today - dt.timedelta(days=30)
    )
    plan = f.PlanFactory(patient=patient, prescription=rx, start_date=today - dt.timedelta(days=30), status="active")
    started = current_started or today - dt.timedelta(days=10)
    f.StepFactory(
        plan=plan, sequence=1, dose_mg=Decimal("1.5"), planned_start=started, actual_start=started, status="active"
    )
    step = f.StepFactory(
        plan=plan, sequence=2, dose_mg=Decimal("3.0"), planned_start=today + dt.timedelta(days=next_in_days)
    )
    return plan, step


def send_due(day: dt.date, patient) -> int:
    """Run the tick at the patient's reminder time on ``day`` (a minute after)."""
    when = local_to_utc(day, patient.local_reminder_time, patient.zone) + dt.timedelta(minutes=1)
    return reminders.tick(now=when)


def test_step_up_evening_sends_the_dose_in_mg_and_capsules_REM_1(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    plan, step = titrating(patient, today)
    (row,) = Reminder.objects.filter(patient=patient, kind="step_up")
    assert (row.local_date, row.status) == (today, "pending")
    assert row.due_at == local_to_utc(today, dt.time(21, 0), patient.zone)
    assert send_due(today, patient) >= 1
    (message,) = [m for m in smtp_server.recorder.to("pat@example.test") if "step up" in m["Subject"]]
    body = message.get_payload(decode=True).decode()
    assert "3.0 mg (2 capsules of 1.5 mg)" in body
    assert not any(word in body.lower() for word in CONDITION_WORDS)  # no diagnosis in a reminder
    assert message["Message-ID"].startswith("<")
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_held_step_up_says_stay_on_current_dose_REM_1(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    titrating(patient, today)
    checkin = f.CheckInFactory(patient=patient, recorded_at=timezone.now() - dt.timedelta(days=1))
    f.SideEffectFactory(checkin=checkin, effect="headache", severity=2)
    send_due(today, patient)
    (message,) = [m for m in smtp_server.recorder.to("pat@example.test") if "LDN" in m["Subject"]]
    assert message["Subject"] == "LDN: stay on your dose tonight"
    assert "stay on 1.5 mg (1 capsule of 1.5 mg)" in message.get_payload(decode=True).decode()


def test_hold_past_fourteen_days_raises_a_clinician_task_REM_1(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    # The step was due two weeks ago (the current one started three weeks ago): the weekly re-ask is tonight.
    titrating(patient, today, current_started=today - dt.timedelta(days=21), next_in_days=-14)
    checkin = f.CheckInFactory(patient=patient, recorded_at=timezone.now() - dt.timedelta(days=1))
    f.SideEffectFactory(checkin=checkin, effect="nausea", severity=2)
    assert Reminder.objects.get(patient=patient, kind="step_up").local_date == today
    send_due(today, patient)
    task = ClinicianTask.objects.get(patient=patient, kind="hold_review")
    assert "moderate nausea" in task.detail


@pytest.mark.parametrize(
    ("zone", "days", "utc_hours"),
    [
        ("Europe/London", [dt.date(2026, 3, 28), dt.date(2026, 3, 29)], [21, 20]),
        ("Europe/London", [dt.date(2026, 10, 24), dt.date(2026, 10, 25)], [20, 21]),
        ("America/New_York", [dt.date(2026, 3, 7), dt.date(2026, 3, 8)], [2, 1]),
    ],
)
def test_nightly_reminder_fires_once_at_local_time_across_clock_changes_REM_2(clinic, zone, days, utc_hours):
    patient = active_patient(clinic, time_zone=zone, nightly_dose_reminders=True)
    titrating(patient, days[0], next_in_days=30)
    reminders.plan_patient(patient, today=days[0], horizon=1)
    rows = list(Reminder.objects.filter(patient=patient, kind="nightly_dose", local_date__in=days).order_by("due_at"))
    assert [r.local_date for r in rows] == days
    assert [r.due_at.astimezone(UTC).hour for r in rows] == utc_hours
    assert all(r.due_at.astimezone(patient.zone).time() == dt.time(21, 0) for r in rows)


def test_nightly_reminder_is_opt_in_REM_2(clinic):
    patient = active_patient(clinic)
    titrating(patient, patient_today(patient), next_in_days=30)
    assert not Reminder.objects.filter(patient=patient, kind="nightly_dose").exists()


def test_quiet_hours_move_a_late_reminder_before_they_start(clinic):
    patient = active_patient(clinic, reminder_time=dt.time(23, 30), nightly_dose_reminders=True)
    today = patient_today(patient)
    titrating(patient, today, next_in_days=30)
    row = Reminder.objects.filter(patient=patient, kind="nightly_dose").first()
    assert row.due_at.astimezone(patient.zone).time() == dt.time(21, 45)


def test_skipping_the_step_cancels_its_reminder_in_the_same_transaction(clinic):
    patient = active_patient(clinic)
    plan, step = titrating(patient, patient_today(patient), next_in_days=2)
    row = Reminder.objects.get(patient=patient, kind="step_up")
    step.status = StepStatus.SKIPPED
    step.save()
    row.refresh_from_db()
    assert row.status == "cancelled"
    assert "plan" in row.cancelled_reason


def test_a_rolled_back_plan_leaves_no_reminder(clinic):
    patient = active_patient(clinic)
    with pytest.raises(RuntimeError), transaction.atomic():
        titrating(patient, patient_today(patient), next_in_days=2)
        assert Reminder.objects.filter(patient=patient).exists()
        raise RuntimeError("the plan's transaction fails")
    assert not Reminder.objects.filter(patient=patient).exists()


def test_opting_out_before_sending_cancels_instead_of_sending(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    titrating(patient, today)
    type(patient).objects.filter(pk=patient.pk).update(reminders_by_email=False)  # no replan: the send re-checks
    send_due(today, patient)
    assert smtp_server.recorder.messages == []
    assert set(Reminder.objects.filter(patient=patient).values_list("status", flat=True)) <= {"cancelled", "pending"}
    assert Reminder.objects.get(patient=patient, kind="step_up").status == "cancelled"


def test_transient_smtp_failure_retries_with_backoff_then_sends(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    titrating(patient, today)
    smtp_server.recorder.respond = "451 4.3.0 try again later"
    send_due(today, patient)
    row = Reminder.objects.get(patient=patient, kind="step_up")
    assert (row.status, row.attempts) == ("pending", 1)
    assert "transient" in row.last_error and "451" in row.last_error
    assert row.next_attempt_at > row.due_at
    smtp_server.recorder.respond = None
    reminders.tick(now=row.next_attempt_at + dt.timedelta(seconds=1))
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert len([m for m in smtp_server.recorder.messages if "step up" in m["Subject"]]) == 1


def test_permanent_smtp_failure_is_marked_failed_for_the_clinic(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    titrating(patient, today)
    smtp_server.recorder.respond = "550 5.1.1 no such mailbox"
    send_due(today, patient)
    row = Reminder.objects.get(patient=patient, kind="step_up")
    assert row.status == "failed"
    assert "permanent" in row.last_error


def test_a_claim_left_by_a_dead_worker_is_taken_back_and_sent_once(clinic, smtp_server, settings):
    patient = active_patient(clinic)
    today = patient_today(patient)
    titrating(patient, today)
    row = Reminder.objects.get(patient=patient, kind="step_up")
    Reminder.objects.filter(pk=row.pk).update(status="sending", claimed_at=row.due_at, attempts=1)  # then killed
    later = row.due_at + dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS + 60)
    reminders.tick(now=later)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert len([m for m in smtp_server.recorder.messages if "step up" in m["Subject"]]) == 1


@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_send_each_reminder_once(clinic, smtp_server):
    patients = [active_patient(clinic, nightly_dose_reminders=True) for _ in range(6)]
    today = patient_today(patients[0])  # all in the factory's zone
    for p in patients:
        titrating(p, today, next_in_days=30)
    due = Reminder.objects.filter(local_date=today, status="pending").count()
    now = local_to_utc(today, dt.time(21, 1), patients[0].zone)
    barrier = threading.Barrier(2)

    def run():
        barrier.wait(timeout=10)
        try:
            reminders.tick(now=now)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert due >= 6
    ids = [m["Message-ID"] for m in smtp_server.recorder.messages]
    assert len(ids) == len(set(ids)) == due


def test_sms_goes_through_the_sms_backend(clinic, settings, tmp_path):
    settings.SMS_BACKEND = "ldnclinic.messaging.FileSMSBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    patient = active_patient(clinic, reminders_by_email=False, reminders_by_sms=True, mobile="+447700900123")
    today = patient_today(patient)
    titrating(patient, today)
    send_due(today, patient)
    lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    step_up = [line for line in lines if "3.0 mg" in line["body"]]
    assert [line["to"] for line in step_up] == ["+447700900123"]


def test_two_missed_checkins_escalate_to_the_clinic_REM_3(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    plan, _ = titrating(patient, today, next_in_days=30)
    for week in (1, 2, 3):
        day = plan.start_date + dt.timedelta(weeks=week)
        Reminder.objects.create(
            patient=patient,
            plan=plan,
            kind="checkin_due",
            channel="email",
            local_date=day,
            due_at=timezone.now() - dt.timedelta(days=30 - week),
            next_attempt_at=timezone.now() - dt.timedelta(days=30 - week),
            idempotency_key=f"test-checkin-{week}",
        )
    reminders.tick(now=timezone.now())
    assert ClinicianTask.objects.filter(patient=patient, kind="missed_checkins").count() == 1


def test_washout_countdown_on_the_earliest_start_date_REM_5(clinic):
    patient = f.PatientFactory(clinic=clinic, status="screening", email="s@example.test")
    last = patient_today(patient) - dt.timedelta(days=3)
    f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=last)
    (row,) = Reminder.objects.filter(patient=patient, kind="washout")
    assert row.local_date == last + dt.timedelta(days=10)


def test_queries_per_batch_are_bounded(clinic, smtp_server, django_assert_max_num_queries):
    today = zone_today(f.ZONE)  # the patients' own date
    for _ in range(5):
        p = active_patient(clinic, nightly_dose_reminders=True)
        titrating(p, today, next_in_days=30)
    now = local_to_utc(today, dt.time(21, 1), p.zone)
    due = Reminder.objects.filter(status="pending", due_at__lte=now).count()
    with django_assert_max_num_queries(8 + 14 * due):
        assert reminders.tick(now=now) == due


def test_open_opioid_conflict_suspends_step_reminders_REM_4(clinic):
    patient = active_patient(clinic)
    titrating(patient, patient_today(patient), next_in_days=2)
    assert Reminder.objects.get(patient=patient, kind="step_up").status == "pending"
    f.MedicationFactory(patient=patient, name="Tramadol 50 mg")  # the flag's save replans
    assert Reminder.objects.get(patient=patient, kind="step_up").status == "cancelled"
    assert ClinicianTask.objects.filter(patient=patient, kind="opioid_plan").exists()  # the prescriber is told
