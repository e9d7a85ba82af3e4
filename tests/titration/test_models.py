"""Titration and prescription constraints (DOSE-1, DOSE-2, RX-1, domain.md 1.2): the database
refuses bad rows even when full_clean is bypassed; full_clean says why in words."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from patients.models import Role
from titration.models import (
    SLOW_RELEASE_MESSAGE,
    CompoundedPrescription,
    Filler,
    ProtocolStep,
    StepStatus,
    TitrationPlan,
    TitrationProtocol,
    TitrationStep,
)
from titration.rules import check_dose

from .. import factories as f

D = Decimal


def refused_by_database(queryset, **values) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset.update(**values)


def clean_errors(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        obj.full_clean()
    return exc.value.message_dict


@pytest.fixture
def protocol(db):
    return TitrationProtocol.objects.create(key="TEST_PROTOCOL", name="Test protocol")


# Each DOSE-1 field: (a saved row, the field name).
@pytest.fixture(params=["TitrationStep.dose_mg", "ProtocolStep.dose_mg", "TitrationPlan.target_dose_mg"])
def dose_field(request, patient, protocol):
    if request.param == "TitrationStep.dose_mg":
        return f.StepFactory(plan__patient=patient), "dose_mg"
    if request.param == "ProtocolStep.dose_mg":
        return ProtocolStep.objects.create(protocol=protocol, sequence=1, dose_mg=D("1.5")), "dose_mg"
    return f.PlanFactory(patient=patient), "target_dose_mg"


# --- DOSE-1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dose", ["5.001", "5.01", "50"])
def test_dose_above_hard_max_refused_by_database_DOSE_1(dose_field, dose):
    obj, field = dose_field
    refused_by_database(type(obj).objects.filter(pk=obj.pk), **{field: D(dose)})


@pytest.mark.parametrize("dose", ["0", "-0.5"])
def test_dose_zero_or_negative_refused_by_database_DOSE_1(dose_field, dose):
    obj, field = dose_field
    refused_by_database(type(obj).objects.filter(pk=obj.pk), **{field: D(dose)})


def test_dose_above_hard_max_refused_by_full_clean_DOSE_1(dose_field):
    obj, field = dose_field
    setattr(obj, field, D("5.01"))
    assert clean_errors(obj)[field] == ["5.01 mg is above 5.0 mg: that is not low-dose naltrexone."]


def test_dose_zero_refused_by_full_clean_DOSE_1(dose_field):
    obj, field = dose_field
    setattr(obj, field, D("0"))
    assert clean_errors(obj)[field] == ["A dose must be more than 0 mg."]


def test_dose_at_hard_max_accepted_with_a_warning_DOSE_1(dose_field):
    obj, field = dose_field
    setattr(obj, field, D("5.0"))
    obj.full_clean()
    obj.save()
    obj.refresh_from_db()
    assert getattr(obj, field) == D("5.000")
    assert check_dose(getattr(obj, field)) == ["5.000 mg is above the usual maximum of 4.5 mg."]


def test_quarter_mg_stored_and_read_back_exactly_DOSE_1(dose_field):
    obj, field = dose_field
    setattr(obj, field, D("0.25"))
    obj.full_clean()
    obj.save()
    stored = type(obj).objects.values_list(field, flat=True).get(pk=obj.pk)
    assert isinstance(stored, Decimal)
    assert str(stored) == "0.250"  # exact, not 0.2499999 or 0.25 as a float
    assert check_dose(stored) == ["0.250 mg is in the very-low-dose range (below 0.5 mg)."]


def test_dose_field_is_decimal_5_3_DOSE_1():
    for model, name in [(TitrationStep, "dose_mg"), (ProtocolStep, "dose_mg"), (TitrationPlan, "target_dose_mg")]:
        field = model._meta.get_field(name)
        assert (field.get_internal_type(), field.max_digits, field.decimal_places) == ("DecimalField", 5, 3)


# --- DOSE-2 ------------------------------------------------------------------------------------


def test_step_has_the_dose_2_fields_DOSE_2():
    names = {fl.name for fl in TitrationStep._meta.get_fields()}
    assert {"plan", "sequence", "dose_mg", "planned_start", "min_days", "actual_start", "status"} <= names


def test_step_status_values_are_exactly_the_dose_2_set_DOSE_2():
    assert set(StepStatus.values) == {"planned", "active", "held", "stepped_back", "skipped", "done"}


def test_unknown_step_status_refused_by_database_and_full_clean_DOSE_2(patient):
    step = f.StepFactory(plan__patient=patient)
    refused_by_database(TitrationStep.objects.filter(pk=step.pk), status="paused")
    step.status = "paused"
    assert clean_errors(step)["status"] == ["Value 'paused' is not a valid choice."]


@pytest.mark.parametrize("min_days", [0, 2, 15, 30])
def test_step_min_days_outside_3_to_14_refused_by_database(patient, protocol, min_days):
    step = f.StepFactory(plan__patient=patient)
    refused_by_database(TitrationStep.objects.filter(pk=step.pk), min_days=min_days)
    template = ProtocolStep.objects.create(protocol=protocol, sequence=1, dose_mg=D("1.5"))
    refused_by_database(ProtocolStep.objects.filter(pk=template.pk), min_days=min_days)


def test_step_sequence_unique_within_a_plan_unless_archived_DOSE_2(patient):
    step = f.StepFactory(plan__patient=patient, sequence=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        f.StepFactory(plan=step.plan, sequence=1)
    step.delete()
    f.StepFactory(plan=step.plan, sequence=1)


# --- Protocols loaded by the data migration (domain.md 1.2) --------------------------------------


def _doses(key: str) -> list[Decimal]:
    return list(ProtocolStep.objects.filter(protocol__key=key).order_by("sequence").values_list("dose_mg", flat=True))


@pytest.mark.parametrize(
    ("key", "doses"),
    [
        ("STD_1_5", ["1.5", "3.0", "4.5"]),
        ("SLOW_0_5", ["0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5"]),
        ("TRIAL_1_0", ["1.0", "2.0", "3.0", "4.5"]),
        ("FIXED_4_5", ["4.5"]),
    ],
)
def test_protocol_template_steps_match_domain_1_2(db, key, doses):
    assert _doses(key) == [D(d) for d in doses]
    assert TitrationProtocol.objects.get(key=key).target_dose_mg == D("4.5")


def test_thyroid_protocol_starts_at_quarter_mg_and_ends_at_4_5_rising_weekly(db):
    doses = _doses("THYROID_0_25")
    assert str(doses[0]) == "0.250"
    assert doses[-1] == D("4.5")
    assert doses == sorted(set(doses))  # strictly rising
    steps = [b - a for a, b in zip(doses, doses[1:5], strict=False)]
    assert all(D("0.25") <= s <= D("0.5") for s in steps)  # +0.25-0.5 mg weekly at first
    assert set(ProtocolStep.objects.filter(protocol__key="THYROID_0_25").values_list("min_days", flat=True)) == {7}


def test_every_protocol_of_domain_1_2_is_loaded_and_valid(db):
    keys = {"STD_1_5", "SLOW_0_5", "TRIAL_1_0", "FIXED_4_5", "THYROID_0_25"}
    assert keys <= set(TitrationProtocol.objects.values_list("key", flat=True))
    for step in ProtocolStep.objects.filter(protocol__key__in=keys):
        step.full_clean()


# --- Plans -------------------------------------------------------------------------------------


def test_one_active_plan_per_patient_refused_by_database(patient):
    f.PlanFactory(patient=patient, status="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        f.PlanFactory(patient=patient, status="active")


def test_second_active_plan_refused_by_full_clean(patient):
    f.PlanFactory(patient=patient, status="active")
    second = f.PlanFactory.build(patient=patient, status="active")
    second.clinic_id = patient.clinic_id
    assert clean_errors(second) == {
        "__all__": ["The patient already has an active plan: complete or discontinue it first."]
    }


def test_paused_or_archived_plan_does_not_block_a_new_active_plan(patient, other_patient):
    f.PlanFactory(patient=patient, status="paused")
    archived = f.PlanFactory(patient=patient, status="active")
    archived.delete()
    f.PlanFactory(patient=patient, status="active")
    f.PlanFactory(patient=other_patient, status="active")  # per patient, not per clinic
    assert TitrationPlan.objects.filter(patient=patient, status="active").count() == 1


def test_plan_prescription_of_another_patient_refused(patient, sibling_patient):
    plan = f.PlanFactory(patient=patient, prescription=f.PrescriptionFactory(patient=sibling_patient))
    assert clean_errors(plan)["prescription"] == ["The prescription belongs to another patient."]


def test_step_of_a_plan_with_another_clinic_refused_on_save(patient, other_clinic):
    step = f.StepFactory.build(plan=f.PlanFactory(patient=patient))
    step.clinic = other_clinic
    with pytest.raises(ValidationError, match="different clinic than its patient"):
        step.save()
    step.clinic = None
    step.save()
    assert step.clinic_id == patient.clinic_id


# --- RX-1 --------------------------------------------------------------------------------------


@pytest.fixture
def rx(patient):
    return f.PrescriptionFactory(patient=patient)


def test_slow_release_refused_with_the_reason_RX_1(rx):
    rx.release = "SR"
    message = clean_errors(rx)["release"]
    assert message == [SLOW_RELEASE_MESSAGE]
    assert "immediate release" in message[0] and "absorbed" in message[0]


def test_slow_release_refused_by_database_RX_1(rx):
    refused_by_database(CompoundedPrescription.objects.filter(pk=rx.pk), release="SR")


@pytest.mark.parametrize(
    ("form", "unit"),
    [("capsule", "mg/mL"), ("liquid", "mg/capsule"), ("tablet", "mg/capsule"), ("eye_drops", "mg/mL")],
)
def test_strength_unit_must_match_the_form_RX_1(rx, form, unit):
    rx.form, rx.strength_unit = form, unit
    assert "is measured in" in clean_errors(rx)["strength_unit"][0]


@pytest.mark.parametrize(("form", "unit"), [("liquid", "mg/mL"), ("sublingual_drops", "mg/drop"), ("cream", "mg/g")])
def test_strength_unit_matching_the_form_accepted_RX_1(rx, form, unit):
    rx.form, rx.strength_unit, rx.quantity_unit = form, unit, "mL"
    rx.full_clean()


def test_capsule_strength_above_5_mg_refused_RX_1(rx):
    rx.strength_value = D("5.5")
    assert clean_errors(rx)["strength_value"] == ["5.5 mg per unit is above 5.0 mg: that is not low-dose naltrexone."]
    refused_by_database(CompoundedPrescription.objects.filter(pk=rx.pk), strength_value=D("50"))
    rx.strength_value = D("4.5")
    rx.full_clean()


def test_liquid_concentration_is_not_a_per_unit_dose_RX_1(rx):
    # 1 mg/mL is typical; a stronger concentration is still dosed in small volumes.
    CompoundedPrescription.objects.filter(pk=rx.pk).update(form="liquid", strength_unit="mg/mL", strength_value=D("6"))
    rx.refresh_from_db()
    rx.quantity_unit = "mL"
    rx.full_clean()
    assert rx.strength_value == D("6")


@pytest.mark.parametrize(
    ("named", "reason"),
    [
        ("Calcium carbonate", "Calcium carbonate reduces naltrexone absorption"),
        ("methylcellulose", "immediate release"),
        ("Hypromellose (HPMC)", "immediate release"),
    ],
)
def test_refused_fillers_RX_1(rx, named, reason):
    rx.filler, rx.filler_other = Filler.OTHER, named
    assert reason in clean_errors(rx)["filler_other"][0]


def test_filler_choices_offer_no_refused_filler_RX_1():
    labels = " ".join(label.lower() for label in Filler.labels)
    assert "calcium" not in labels and "methylcellulose" not in labels


def test_other_filler_must_be_named_RX_1(rx):
    rx.filler, rx.filler_other = Filler.OTHER, ""
    assert clean_errors(rx)["filler_other"] == ["Name the filler."]


def test_prescriber_must_be_an_active_prescriber_of_the_patients_clinic_RX_1(rx, nurse, other_prescriber):
    expected = ["The prescriber must be an active prescriber at the patient's clinic."]
    for not_allowed in (nurse, other_prescriber):
        rx.prescriber = not_allowed
        assert clean_errors(rx)["prescriber"] == expected
    lapsed = f.MembershipFactory(clinic=rx.patient.clinic, role=Role.PRESCRIBER, is_active=False).user
    rx.prescriber = lapsed
    assert clean_errors(rx)["prescriber"] == expected


def test_pharmacy_of_another_clinic_refused_RX_1(rx, other_clinic):
    rx.pharmacy = f.PharmacyFactory(clinic=other_clinic)
    assert clean_errors(rx)["pharmacy"] == ["Choose one of your clinic's pharmacies."]


@pytest.mark.parametrize(
    "values",
    [
        {"quantity": D("0")},
        {"days_supply": 0},
        {"refills": 13},
        {"strength_value": D("0")},
        {"start_on": dt.date(2026, 1, 1)},  # before written_on
        {"status": "sent"},
    ],
    ids=lambda v: next(iter(v)),
)
def test_prescription_bad_values_refused_by_database_RX_1(rx, values):
    refused_by_database(CompoundedPrescription.objects.filter(pk=rx.pk), **values)


def test_prescription_of_another_clinics_patient_refused_on_save(rx, other_clinic):
    rx.clinic = other_clinic
    with pytest.raises(ValidationError, match="different clinic than its patient"):
        rx.save()


# --- Soft delete -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [CompoundedPrescription, TitrationPlan, TitrationStep], ids=lambda m: m.__name__)
def test_delete_keeps_the_row_and_hides_it(model, patient):
    one = f.row_for(model, patient)
    one.delete()
    two = f.row_for(model, patient)  # an archived active plan does not block a new one
    model.objects.filter(pk=two.pk).delete()
    for row in (one, two):
        assert model.all_objects.get(pk=row.pk).deleted_at is not None
        assert not model.objects.filter(pk=row.pk).exists()


# --- History -----------------------------------------------------------------------------------


def test_prescription_change_records_who_and_what_and_the_admin_makes_none(admin_change, prescriber, rx):
    # Prescriptions are read-only in the admin (issue 10): the POST is refused and nothing is recorded.
    assert admin_change(prescriber, rx, refills="5", prescriber=str(prescriber.pk)).status_code == 403
    assert rx.history.count() == 1
    rx._history_user = prescriber  # a change made by a service, with its user
    rx.refills, rx.prescriber = 5, prescriber
    rx.save()
    latest, previous = rx.history.all()[:2]
    assert (latest.history_type, latest.history_user) == ("~", prescriber)
    assert set(latest.diff_against(previous).changed_fields) == {"refills", "prescriber"}


def test_plan_and_step_changes_record_who_and_what_and_the_admin_makes_none(admin_change, prescriber, patient):
    step = f.StepFactory(plan__patient=patient, dose_mg=D("1.5"))
    plan = step.plan
    response = admin_change(prescriber, plan, target_dose_mg="3.000", **{"steps-0-dose_mg": "0.750"})
    assert response.status_code == 403  # plans and steps are read-only in the admin (issue 10)
    assert (plan.history.count(), step.history.count()) == (1, 1)
    plan._history_user = step._history_user = prescriber  # changes made by a service, with its user
    plan.target_dose_mg, step.dose_mg = D("3.000"), D("0.750")
    plan.save()
    step.save()
    plan_latest, plan_previous = plan.history.all()[:2]
    assert plan_latest.history_user == prescriber
    assert plan_latest.diff_against(plan_previous).changed_fields == ["target_dose_mg"]
    step_latest, step_previous = step.history.all()[:2]
    assert step_latest.history_user == prescriber
    assert step_latest.diff_against(step_previous).changed_fields == ["dose_mg"]
    assert str(step_latest.dose_mg) == "0.750"


def test_nurse_cannot_change_a_step_through_the_plan_DOSE_1(admin_change, nurse, patient):
    step = f.StepFactory(plan__patient=patient, dose_mg=D("1.5"))
    response = admin_change(nurse, step.plan, **{"steps-0-dose_mg": "4.500"})
    assert response.status_code == 403
    step.refresh_from_db()
    assert step.dose_mg == D("1.5")


def test_a_step_above_hard_max_is_refused_with_the_reason_DOSE_1(admin_change, prescriber, patient):
    from django.forms import modelform_factory

    step = f.StepFactory(plan__patient=patient, dose_mg=D("1.5"))
    assert admin_change(prescriber, step.plan, **{"steps-0-dose_mg": "5.010"}).status_code == 403  # read-only
    fields = ["sequence", "dose_mg", "planned_start", "min_days", "status"]
    form = modelform_factory(TitrationStep, fields=fields)(
        {"sequence": 1, "dose_mg": "5.010", "planned_start": "2026-01-05", "min_days": 7, "status": "planned"},
        instance=step,
    )
    assert form.errors == {"dose_mg": ["5.010 mg is above 5.0 mg: that is not low-dose naltrexone."]}
    step.refresh_from_db()
    assert step.dose_mg == D("1.5")


def test_prescription_constraints_match_the_committed_migrations_RX_1(db):
    """The constraints the database enforces are the ones in models.py, in every process: a set in a
    constraint made its SQL, and so `makemigrations --check`, depend on string hashing."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    state = MigrationLoader(connection).project_state()
    migrated = state.models["titration", "compoundedprescription"].options["constraints"]
    assert [c.deconstruct() for c in migrated] == [c.deconstruct() for c in CompoundedPrescription._meta.constraints]
