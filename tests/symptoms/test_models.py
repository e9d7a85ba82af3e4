"""Check-in (PRO-1) and side-effect (domain.md 1.4) constraints, soft delete and history."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from symptoms.models import NOTES_MAX_LENGTH, NRS_FIELDS, Severity, SideEffect, SideEffectReport, SymptomCheckIn

from .. import factories as f


def refused_by_database(queryset, **values) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset.update(**values)


@pytest.fixture
def checkin(patient):
    return f.CheckInFactory(patient=patient)


# --- NRS 0-10 (PRO-1) ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [11, 12, 100, -1])
@pytest.mark.parametrize("field", NRS_FIELDS)
def test_nrs_outside_0_to_10_refused_by_database_PRO_1(checkin, field, value):
    refused_by_database(SymptomCheckIn.objects.filter(pk=checkin.pk), **{field: value})


@pytest.mark.parametrize("field", NRS_FIELDS)
def test_nrs_outside_0_to_10_refused_by_full_clean_PRO_1(checkin, field):
    setattr(checkin, field, 11)
    with pytest.raises(ValidationError):
        checkin.full_clean()


@pytest.mark.parametrize("value", [0, 10, None])
@pytest.mark.parametrize("field", NRS_FIELDS)
def test_nrs_edges_and_blank_accepted_PRO_1(checkin, field, value):
    SymptomCheckIn.objects.filter(pk=checkin.pk).update(**{field: value})
    checkin.refresh_from_db()
    assert getattr(checkin, field) == value
    checkin.full_clean()


def test_nights_missed_over_a_week_refused_by_database(checkin):
    refused_by_database(SymptomCheckIn.objects.filter(pk=checkin.pk), nights_missed=8)


def test_unknown_opioid_answer_refused_by_database_PRO_1(checkin):
    refused_by_database(SymptomCheckIn.objects.filter(pk=checkin.pk), opioid_use="maybe")


# --- Notes -------------------------------------------------------------------------------------


def test_notes_over_the_limit_refused_by_full_clean(checkin):
    checkin.notes = "x" * (NOTES_MAX_LENGTH + 1)
    with pytest.raises(ValidationError) as exc:
        checkin.full_clean()
    assert exc.value.message_dict["notes"] == [
        f"Ensure this value has at most {NOTES_MAX_LENGTH} characters (it has {NOTES_MAX_LENGTH + 1})."
    ]
    checkin.notes = "x" * NOTES_MAX_LENGTH
    checkin.full_clean()


# --- Side effects (domain.md 1.4) ----------------------------------------------------------------


def test_severity_scale_is_none_mild_moderate_severe_0_to_3():
    assert dict(Severity.choices) == {0: "None", 1: "Mild", 2: "Moderate", 3: "Severe"}


@pytest.mark.parametrize("severity", [4, 9, -1])
def test_side_effect_severity_outside_0_to_3_refused_by_database(checkin, severity):
    report = f.SideEffectFactory(checkin=checkin)
    refused_by_database(SideEffectReport.objects.filter(pk=report.pk), severity=severity)


def test_side_effect_severity_outside_0_to_3_refused_on_insert(checkin):
    with pytest.raises(IntegrityError), transaction.atomic():
        SideEffectReport.objects.bulk_create(
            [SideEffectReport(checkin=checkin, clinic=checkin.clinic, effect="nausea", severity=4)]
        )


def test_side_effect_tracked_list_matches_domain_1_4():
    assert set(SideEffect.values) == {
        "vivid_dreams",
        "insomnia",
        "headache",
        "nausea",
        "fatigue",
        "vomiting",
        "decreased_appetite",
        "other",
    }


def test_unknown_side_effect_refused_by_database(checkin):
    report = f.SideEffectFactory(checkin=checkin)
    refused_by_database(SideEffectReport.objects.filter(pk=report.pk), effect="hair_loss")


def test_same_side_effect_twice_in_one_checkin_refused_but_other_may_repeat(checkin):
    f.SideEffectFactory(checkin=checkin, effect="headache")
    with pytest.raises(IntegrityError), transaction.atomic():
        f.SideEffectFactory(checkin=checkin, effect="headache")
    f.SideEffectFactory(checkin=checkin, effect="other", description="Tingling")
    f.SideEffectFactory(checkin=checkin, effect="other", description="Dry mouth")
    assert checkin.side_effects.count() == 3


# --- Clinic follows the patient ------------------------------------------------------------------


def test_checkin_with_a_clinic_other_than_its_patients_refused_on_save(patient, other_clinic):
    stray = f.CheckInFactory.build(patient=patient)
    stray.clinic = other_clinic
    with pytest.raises(ValidationError, match="different clinic than its patient"):
        stray.save()


def test_side_effect_with_a_clinic_other_than_its_patients_refused_on_save(checkin, other_clinic):
    stray = f.SideEffectFactory.build(checkin=checkin)
    stray.clinic = other_clinic
    with pytest.raises(ValidationError, match="different clinic than its patient"):
        stray.save()
    ok = f.SideEffectFactory(checkin=checkin)
    assert ok.clinic_id == checkin.patient.clinic_id


# --- Soft delete and history ---------------------------------------------------------------------


def test_checkin_delete_keeps_the_row_and_hides_it(patient, checkin):
    other = f.CheckInFactory(patient=patient)
    checkin.delete()
    SymptomCheckIn.objects.filter(pk=other.pk).delete()
    for row in (checkin, other):
        assert SymptomCheckIn.all_objects.get(pk=row.pk).deleted_at is not None
        assert not SymptomCheckIn.objects.filter(pk=row.pk).exists()
    assert list(patient.checkins.all()) == []


def test_checkin_is_not_changed_through_the_admin_and_a_change_records_who_and_what(admin_change, nurse, patient):
    # What the patient reported is read-only in the admin (issue 10): the page shows it, a save is refused.
    checkin = f.CheckInFactory(patient=patient, recorded_at=timezone.now().replace(microsecond=0), pain=6)
    response = admin_change(nurse, checkin, pain="3")
    assert response.status_code == 403
    checkin.refresh_from_db()
    assert (checkin.pain, checkin.history.count()) == (6, 1)
    checkin._history_user = nurse  # a change made by a service, with its user
    checkin.pain = 3
    checkin.save()
    latest, previous = checkin.history.all()[:2]
    assert (latest.history_user, latest.pain) == (nurse, 3)
    assert latest.diff_against(previous).changed_fields == ["pain"]
