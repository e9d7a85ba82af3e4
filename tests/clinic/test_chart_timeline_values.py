"""The timeline reads every source's changes in one statement, values passing through JSON: each kind of
value (text, choice, yes/no, date, time, instant, decimal, whole number) reads as the field shows it."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from tests import factories as f
from tests.clinic.test_chart import NOW, text_of, timeline_entries

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_every_kind_of_value_reads_as_the_field_shows_it(client, prescriber, patient):
    patient.reminders_by_sms = True
    patient.reminder_time = dt.time(21, 30)
    patient.date_of_birth = dt.date(1980, 5, 18)
    patient.dose_time = "morning"
    patient._change_reason = "corrected at the visit"
    patient.save()
    rx = f.PrescriptionFactory(patient=patient, prescriber=prescriber, quantity=Decimal("90"), refills=0)
    rx.quantity, rx.refills, rx.sig = Decimal("60.5"), 2, "1 capsule at bedtime, with water"
    rx.save()
    lab = f.LabResultFactory(patient=patient, test="ALT", value=Decimal("20"), unit="U/L", ref_high=Decimal("40"))
    lab.collected_at = NOW - dt.timedelta(hours=3)
    lab.save()
    client.force_login(prescriber)
    entries = timeline_entries(client.get(reverse("clinic:patient", args=[patient.pk])).content.decode())
    record = next(e for e in entries if e.startswith("2 Mar 2026 12:00 Patient Patient record changed"))
    for shown in (
        "Date of birth: 1980-05-17 → 1980-05-18",
        "Dose time: Bedtime → Morning",
        "Reminders by sms: no → yes",
        "Reminder time: — → 21:30",
        "why: corrected at the visit",
    ):
        assert shown in record, (shown, record)
    changed = next(e for e in entries if "Prescription" in e and "changed" in e)
    assert "Quantity: 90 → 60.5" in changed and "Refills: 0 → 2" in changed
    assert "Directions (sig): Take 1 capsule by mouth at bedtime → 1 capsule at bedtime, with water" in changed
    added = next(e for e in entries if e.startswith("2 Mar 2026 12:00 Lab ALT added"))
    assert "Value: 20; Unit: U/L" in added and "Ref high: 40" in added
    moved = next(e for e in entries if e.startswith("2 Mar 2026 12:00 Lab ALT changed"))
    assert "2026-03-02 09:00" in text_of(moved)


def test_gate_events_check_ins_and_reminders_read_from_the_same_statement(client, prescriber, patient):
    from patients.flag_models import SafetyGateEvent

    SafetyGateEvent.objects.create(
        clinic=patient.clinic,
        patient=patient,
        action="start_plan",
        outcome="overridden",
        summary="Open conflict: Norco 5/325",
        reason="washout confirmed by phone",
        actor=prescriber,
    )
    c = f.CheckInFactory(
        patient=patient, recorded_at=NOW - dt.timedelta(days=2), pain=3, took_dose_as_prescribed=False, nights_missed=2
    )
    f.SideEffectFactory(checkin=c, effect="other", description="odd taste", severity=1)
    f.ReminderFactory(patient=patient, status="sent", sent_at=NOW - dt.timedelta(hours=1), subject="LDN tonight")
    client.force_login(prescriber)
    entries = timeline_entries(client.get(reverse("clinic:patient", args=[patient.pk])).content.decode())
    gate = next(e for e in entries if "Safety gate" in e)
    assert "Start a titration plan overridden by a prescriber" in gate
    assert "Open conflict: Norco 5/325" in gate and "why: washout confirmed by phone" in gate
    checked = next(e for e in entries if "Weekly check-in" in e)
    assert "Scores: pain 3" in checked and "Side effect: Other (odd taste): mild" in checked
    assert "Dose not taken as prescribed; nights missed: 2" in checked and "by patient" in checked
    sent = next(e for e in entries if e.startswith("2 Mar 2026 11:00 Reminder"))
    assert "sent" in sent and "LDN tonight" in sent and "by system" in sent
