"""Writing a prescription with its days supply computed (RX-1, RX-2), and the RX-3 reads for the worklist."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories as f
from titration import prescribing
from titration.models import SLOW_RELEASE_MESSAGE, CompoundedPrescription

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def pharmacy(clinic):
    return f.PharmacyFactory(clinic=clinic, name="Meadow Compounding", lead_time_days=5)


def write(prescriber, patient, pharmacy, **changes):
    values = {
        "actor": prescriber,
        "patient": patient,
        "pharmacy": pharmacy,
        "form": "capsule",
        "strength_value": D("1.5"),
        "strength_unit": "mg/capsule",
        "quantity": D("60"),
        "quantity_unit": "capsules",
        "sig": "1 capsule at bedtime",
        "written_on": dt.date(2026, 1, 5),
    }
    return prescribing.prescription_create(**(values | changes))


def plan_with_steps(patient, steps, status="active"):
    """steps: (dose, planned start, status, actual start)."""
    plan = f.PlanFactory(patient=patient, status=status, start_date=steps[0][1])
    for n, (dose, planned, step_status, actual) in enumerate(steps, 1):
        f.StepFactory(
            plan=plan, sequence=n, dose_mg=D(dose), planned_start=planned, status=step_status, actual_start=actual
        )
    return plan


def messages(exc) -> dict:
    return exc.value.message_dict


# --- RX-2: the days supply is computed ---------------------------------------------------------------


def test_days_supply_is_quantity_times_strength_over_dose_RX_2(prescriber, patient, pharmacy):
    rx, warnings = write(prescriber, patient, pharmacy, for_dose_mg=D("1.5"))
    assert rx.days_supply == 60
    assert rx.status == "draft"
    assert warnings == []


def test_typed_days_supply_that_disagrees_is_warned_and_the_computed_one_stored_RX_2(prescriber, patient, pharmacy):
    rx, warnings = write(prescriber, patient, pharmacy, for_dose_mg=D("1.5"), days_supply=30)
    assert warnings == ["typed 30 days; quantity x strength / dose gives 60 days (RX-2)"]
    rx.refresh_from_db()
    assert rx.days_supply == 60


def test_typed_days_supply_that_agrees_gives_no_warning_RX_2(prescriber, patient, pharmacy):
    _, warnings = write(prescriber, patient, pharmacy, for_dose_mg=D("3.0"), days_supply=30)
    assert warnings == []


def test_liquid_days_supply_is_floored_RX_2(prescriber, patient, pharmacy):
    rx, _ = write(
        prescriber,
        patient,
        pharmacy,
        form="liquid",
        strength_value=D("1"),
        strength_unit="mg/mL",
        quantity=D("100"),
        quantity_unit="mL",
        for_dose_mg=D("4.5"),
    )
    assert rx.days_supply == 22  # 100 mg / 4.5 mg = 22.2


def test_without_a_dose_given_the_plans_schedule_is_followed_RX_2(prescriber, patient, pharmacy):
    # 30 x 1.5 mg = 45 mg: 7 days at 1.5 (10.5), 7 at 3.0 (21), then 13.5 mg lasts 3 days at 4.5.
    plan_with_steps(
        patient,
        [
            ("1.5", dt.date(2026, 1, 10), "active", dt.date(2026, 1, 10)),
            ("3.0", dt.date(2026, 1, 17), "planned", None),
            ("4.5", dt.date(2026, 1, 24), "planned", None),
        ],
    )
    rx, warnings = write(prescriber, patient, pharmacy, quantity=D("30"), start_on=dt.date(2026, 1, 10), days_supply=20)
    assert rx.days_supply == 17
    assert warnings == ["typed 20 days; quantity x strength over the plan's doses gives 17 days (RX-2)"]


def test_estimate_reads_the_current_dose_by_default(patient):
    plan_with_steps(
        patient,
        [
            ("1.5", dt.date(2026, 1, 3), "done", dt.date(2026, 1, 3)),
            ("3.0", dt.date(2026, 1, 10), "active", dt.date(2026, 1, 10)),
        ],
    )
    assert prescribing.default_dose(patient) == D("3.0")
    estimate = prescribing.supply_estimate(
        patient=patient,
        form="capsule",
        strength_value=D("1.5"),
        strength_unit="mg/capsule",
        quantity=D("60"),
        quantity_unit="capsules",
        start_on=dt.date(2026, 2, 1),
    )
    assert (estimate.days, estimate.dose_mg, estimate.measure) == (30, D("3.0"), "2 capsules of 1.5 mg")


def test_draft_plans_first_step_is_the_default_dose_and_unmakeable_steps_are_warned_RX_2(prescriber, patient, pharmacy):
    plan_with_steps(
        patient,
        [
            ("1.0", dt.date(2026, 2, 1), "planned", None),
            ("2.0", dt.date(2026, 2, 8), "planned", None),
            ("3.0", dt.date(2026, 2, 15), "planned", None),
        ],
        status="draft",
    )
    assert prescribing.default_dose(patient) == D("1.0")
    _, warnings = write(prescriber, patient, pharmacy)
    assert len(warnings) == 2
    assert warnings[0].startswith("step 1 (1.0 mg from 01 Feb 2026) cannot be made from 1.5 mg capsules")
    assert warnings[1].startswith("step 2 (2.0 mg from 08 Feb 2026) cannot be made")
    assert all(w.endswith("(RX-2)") for w in warnings)


def test_a_dose_the_strength_cannot_make_is_warned_RX_2(prescriber, patient, pharmacy):
    rx, warnings = write(prescriber, patient, pharmacy, for_dose_mg=D("2.0"))
    assert rx.days_supply == 45  # 90 mg / 2 mg: the mg count, as RX-2 defines it
    assert warnings == ["2.0 mg cannot be made from 1.5 mg capsules (RX-2)"]


def test_no_dose_and_no_typed_days_supply_is_refused(prescriber, patient, pharmacy):
    with pytest.raises(ValidationError) as exc:
        write(prescriber, patient, pharmacy)
    assert "days_supply" in messages(exc)
    assert not CompoundedPrescription.objects.exists()


def test_no_dose_keeps_a_typed_days_supply(prescriber, patient, pharmacy):
    rx, warnings = write(prescriber, patient, pharmacy, days_supply=40)
    assert rx.days_supply == 40
    assert any("no dose to reckon on" in w for w in warnings)


# --- RX-1: errors beside the field, nothing written -------------------------------------------------------


def test_zero_strength_is_an_error_beside_the_field_not_a_constraint_message(prescriber, patient, pharmacy):
    with pytest.raises(ValidationError) as exc:
        write(prescriber, patient, pharmacy, strength_value=D("0"), for_dose_mg=D("1.5"))
    errors = messages(exc)
    assert errors["strength_value"] == ["The strength must be more than 0 (RX-1)."]
    assert "Constraint" not in str(errors)
    assert not CompoundedPrescription.objects.exists()


def test_slow_release_is_refused_beside_the_release_field_RX_1(prescriber, patient, pharmacy):
    with pytest.raises(ValidationError) as exc:
        write(prescriber, patient, pharmacy, release="SR", for_dose_mg=D("1.5"))
    assert messages(exc)["release"] == [SLOW_RELEASE_MESSAGE]


def test_quantity_unit_must_fit_the_form_RX_1(prescriber, patient, pharmacy):
    with pytest.raises(ValidationError) as exc:
        write(prescriber, patient, pharmacy, quantity_unit="mL", for_dose_mg=D("1.5"))
    assert "capsules" in messages(exc)["quantity_unit"][0]


def test_another_clinics_pharmacy_is_refused(prescriber, patient, other_clinic):
    theirs = f.PharmacyFactory(clinic=other_clinic)
    with pytest.raises(ValidationError) as exc:
        write(prescriber, patient, theirs, for_dose_mg=D("1.5"))
    assert messages(exc)["pharmacy"] == ["Choose one of your clinic's pharmacies."]


@pytest.mark.parametrize("who", ["nurse", "clinic_admin", "other_prescriber"])
def test_only_a_prescriber_of_the_patients_clinic_writes_a_prescription(who, request, patient, pharmacy):
    with pytest.raises(PermissionDenied):
        write(request.getfixturevalue(who), patient, pharmacy, for_dose_mg=D("1.5"))
    assert not CompoundedPrescription.objects.exists()


def test_history_names_who_and_why(prescriber, patient, pharmacy):
    rx, _ = write(prescriber, patient, pharmacy, for_dose_mg=D("1.5"))
    record = rx.history.get()
    assert (record.history_user, record.history_change_reason) == (prescriber, "prescription written (draft)")
    assert (rx.prescriber, rx.clinic_id) == (prescriber, patient.clinic_id)


# --- RX-3 -------------------------------------------------------------------------------------------------


def rx3_setup(patient, *, lead_time=5, quantity="60", step2_on=dt.date(2026, 3, 15), refills=2):
    pharmacy = f.PharmacyFactory(clinic=patient.clinic, lead_time_days=lead_time)
    rx = f.PrescriptionFactory(
        patient=patient,
        pharmacy=pharmacy,
        strength_value=D("1.5"),
        quantity=D(quantity),
        refills=refills,
        written_on=dt.date(2026, 3, 1),
        start_on=dt.date(2026, 3, 1),
    )
    plan = plan_with_steps(
        patient,
        [
            ("1.5", dt.date(2026, 3, 1), "active", dt.date(2026, 3, 1)),
            ("2.0", step2_on, "planned", None),
        ],
    )
    plan.prescription = rx
    plan.save()
    return rx, plan


def test_next_step_the_capsules_cannot_make_needs_a_new_prescription_by_step_date_minus_lead_time_RX_3(patient):
    rx, plan = rx3_setup(patient)
    items = prescribing.rx3_for_patient(patient, dt.date(2026, 3, 2))
    [item] = [i for i in items if i.kind == prescribing.NEW_PRESCRIPTION]
    assert item.due_on == dt.date(2026, 3, 10)  # 15 March minus 5 days
    assert item.text.startswith("new prescription needed by 10 Mar 2026")
    assert "2.0 mg" in item.text and "1.5 mg capsules" in item.text
    assert (item.rule, item.plan_id, item.prescription_id) == ("RX-3", plan.pk, rx.pk)


def test_new_prescription_is_due_today_once_the_reorder_date_has_passed_RX_3(patient):
    rx3_setup(patient)
    [item] = [i for i in prescribing.rx3_for_patient(patient, dt.date(2026, 3, 12)) if i.kind == "new_prescription"]
    assert item.due_on == dt.date(2026, 3, 12)


def test_supply_running_out_within_7_days_is_reported_with_the_date_RX_3(patient):
    # 10 capsules at 1 a day from 1 March, no refills: the 11th is the first day not covered.
    rx3_setup(patient, quantity="10", step2_on=dt.date(2026, 4, 30), refills=0)
    items = prescribing.rx3_for_patient(patient, dt.date(2026, 3, 6))
    [low] = [i for i in items if i.kind == prescribing.SUPPLY_LOW]
    assert low.due_on == dt.date(2026, 3, 11)
    assert low.text == "supply runs out on 11 Mar 2026 (5 days left): a new prescription is due (RX-3)"
    assert not [i for i in prescribing.rx3_for_patient(patient, dt.date(2026, 3, 3)) if i.kind == "supply_low"]


def test_refills_the_pharmacy_still_holds_count_as_supply_RX_3(patient):
    """A new prescription is the clinic's to write once the refills are used: 10 capsules and 2 refills
    last 30 days, as the worklist counts them."""
    rx3_setup(patient, quantity="10", step2_on=dt.date(2026, 4, 30), refills=2)
    assert not [i for i in prescribing.rx3_for_patient(patient, dt.date(2026, 3, 6)) if i.kind == "supply_low"]
    [low] = [i for i in prescribing.rx3_for_patient(patient, dt.date(2026, 3, 26)) if i.kind == "supply_low"]
    assert low.due_on == dt.date(2026, 3, 31)


def test_a_plan_its_prescription_can_make_has_no_rx3_items(patient):
    rx = f.PrescriptionFactory(patient=patient, strength_value=D("1.5"), quantity=D("90"))
    plan = plan_with_steps(
        patient,
        [
            ("1.5", dt.date(2026, 1, 10), "active", dt.date(2026, 1, 10)),
            ("3.0", dt.date(2026, 1, 17), "planned", None),
        ],
    )
    plan.prescription = rx
    plan.save()
    assert prescribing.rx3_for_patient(patient, dt.date(2026, 1, 11)) == []


def test_no_active_prescription_needs_one_before_the_next_step_RX_3(patient):
    plan_with_steps(
        patient,
        [
            ("1.5", dt.date(2026, 1, 10), "active", dt.date(2026, 1, 10)),
            ("3.0", dt.date(2026, 1, 17), "planned", None),
        ],
    )
    [item] = prescribing.rx3_for_patient(patient, dt.date(2026, 1, 11))
    assert item.due_on == dt.date(2026, 1, 12)  # default lead time 5 days
    assert "no active prescription" in item.text


def test_rx3_items_for_many_patients_take_a_flat_number_of_queries(clinic):
    def queries_for(n):
        patients = [f.PatientFactory(clinic=clinic) for _ in range(n)]
        for p in patients:
            rx3_setup(p)
        with CaptureQueriesContext(connection) as ctx:
            today = {p.pk: dt.date(2026, 3, 2) for p in patients}
            items = prescribing.rx3_items(patients=patients, today_by_patient=today)
        assert all(len(items[p.pk]) == 1 for p in patients)
        return len(ctx.captured_queries)

    assert queries_for(3) == queries_for(12) <= 3
