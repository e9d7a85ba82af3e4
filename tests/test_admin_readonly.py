"""The admin edits no clinical state (issue 10): each unsafe path from the issue, driven the way a browser
does (load the page, post what the old form posted), is refused and the database is unchanged; history
pages answer only GET; a tampered inline, the flag page and a constraint never give a 500 or a raw message.

The rules themselves (hold, step back, step up, washout, start) are tested through the services that apply
them (tests/titration/test_services.py, tests/patients/test_conflict_flags.py) and the clinic pages.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.forms import modelform_factory
from django.urls import reverse
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from patients.flag_models import ConflictFlag, FlagStatus, SafetyGateEvent
from patients.models import LabResult, MedicationStatement, Patient, PatientStatus
from titration import rules, services
from titration.models import (
    SLOW_RELEASE_MESSAGE,
    CompoundedPrescription,
    Pharmacy,
    PrescriptionStatus,
    Reminder,
    TitrationPlan,
    TitrationProtocol,
    TitrationStep,
)
from titration.reminder_models import ReminderStatus

from . import factories as f
from .conftest import admin_form_data

D = Decimal
STEPS = [rules.StepSpec(D("1.5"), 7), rules.StepSpec(D("3.0"), 7), rules.StepSpec(D("4.5"), 7)]
WRITERS_BEFORE = ["prescriber", "operator"]  # who could write these through the admin before issue 10


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def field_value(obj, name: str) -> str:
    field = obj._meta.get_field(name)
    value = getattr(obj, field.attname)
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


PLAN_FIELDS = ["patient", "protocol", "prescription", "target_dose_mg", "start_date", "status", "created_by", "notes"]
STEP_FIELDS = ["sequence", "dose_mg", "planned_start", "min_days", "actual_start", "status", "note"]


def old_plan_form(plan, steps: dict[int, dict] | None = None, **plan_changes) -> dict:
    """What the plan's admin form, with its steps inline, posted before issue 10, with ``plan_changes`` and
    ``steps`` ({sequence: {field: value}}) applied."""
    data = {name: field_value(plan, name) for name in PLAN_FIELDS} | plan_changes
    rows = list(plan.steps.order_by("sequence"))
    data |= {"steps-TOTAL_FORMS": len(rows), "steps-INITIAL_FORMS": len(rows), "steps-MIN_NUM_FORMS": 0}
    data["steps-MAX_NUM_FORMS"] = 1000
    for i, step in enumerate(rows):
        data |= {f"steps-{i}-id": step.pk, f"steps-{i}-plan": plan.pk}
        data |= {f"steps-{i}-{name}": field_value(step, name) for name in STEP_FIELDS}
        data |= {f"steps-{i}-{name}": value for name, value in (steps or {}).get(step.sequence, {}).items()}
    return data | {"_save": "Save"}


def snapshot(patient) -> dict:
    """Everything an admin save of a plan, step, prescription or flag could have changed, with its history."""
    return {
        "plans": list(TitrationPlan.all_objects.filter(patient=patient).order_by("pk").values()),
        "steps": list(TitrationStep.all_objects.filter(plan__patient=patient).order_by("pk").values()),
        "prescriptions": list(CompoundedPrescription.all_objects.filter(patient=patient).order_by("pk").values()),
        "flags": list(ConflictFlag.objects.filter(patient=patient).order_by("pk").values()),
        "reminders": list(Reminder.objects.filter(patient=patient).order_by("pk").values("pk", "kind", "status")),
        "gate events": SafetyGateEvent.objects.filter(patient=patient).count(),
        "history": [
            model.history.filter(**{path: patient}).count()
            for model, path in [
                (TitrationPlan, "patient"),
                (TitrationStep, "plan__patient"),
                (CompoundedPrescription, "patient"),
                (ConflictFlag, "patient"),
                (Reminder, "patient"),
            ]
        ],
    }


def post_as_browser(client, obj, data: dict):
    """Load the change page (it must show, read-only) and post ``data`` on top of what the page holds."""
    url = admin_url(type(obj), "change", obj.pk)
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # nothing to submit: the page is read-only
    return client.post(url, {**admin_form_data(page), **data})


@pytest.fixture
def titrating(clinic, prescriber):
    """A patient 10 days into a started plan: step 1 (1.5 mg) active since day 0, step-up reminders pending."""
    patient = f.PatientFactory(clinic=clinic, status=PatientStatus.ACTIVE, email="pat@example.test")
    rx = f.PrescriptionFactory(
        patient=patient, prescriber=prescriber, strength_value=D("1.5"), written_on=dt.date(2026, 1, 1)
    )
    start = timezone.localdate() - dt.timedelta(days=10)
    plan = services.plan_create(actor=prescriber, patient=patient, custom_steps=STEPS, start=start, prescription=rx)
    services.plan_start(actor=prescriber, plan=plan, start=start)
    return plan


# --- The unsafe paths at the top of the issue, through the admin -----------------------------------------


@pytest.mark.parametrize("role", WRITERS_BEFORE)
@pytest.mark.parametrize(
    ("what", "steps"),
    [
        ("hold: the current step set to Held", {1: {"status": "held", "note": "away"}}),
        ("step back by hand", {1: {"status": "stepped_back"}, 2: {"status": "active"}}),
        ("step-up: a later step made active", {1: {"status": "done"}, 2: {"status": "active"}}),
        ("step-up: the current step's dose edited", {1: {"dose_mg": "4.5"}}),
        ("a step's minimum days shortened", {2: {"min_days": "3"}}),
    ],
)
def test_a_step_cannot_be_changed_in_the_admin(what, steps, role, request, login, titrating):
    patient = titrating.patient
    before = snapshot(patient)
    assert any(r["kind"] == "step_up" and r["status"] == ReminderStatus.PENDING for r in before["reminders"])
    response = post_as_browser(login(request.getfixturevalue(role)), titrating, old_plan_form(titrating, steps))
    assert response.status_code == 403, what
    assert snapshot(patient) == before, what


@pytest.mark.parametrize("role", WRITERS_BEFORE)
def test_a_plan_cannot_be_set_active_in_the_admin(role, request, login, prescriber, patient):
    rx = f.PrescriptionFactory(patient=patient, prescriber=prescriber, status=PrescriptionStatus.DRAFT)
    start = timezone.localdate()
    plan = services.plan_create(actor=prescriber, patient=patient, custom_steps=STEPS, start=start, prescription=rx)
    before = snapshot(patient)
    data = old_plan_form(plan, status="active", override_reason="agreed with the patient")
    response = post_as_browser(login(request.getfixturevalue(role)), plan, data)
    assert response.status_code == 403
    assert snapshot(patient) == before
    plan.refresh_from_db()
    assert plan.status == "draft"  # and no step active, no reminder, the patient still screening
    assert patient.prescriptions.get().status == PrescriptionStatus.DRAFT


@pytest.mark.parametrize("role", WRITERS_BEFORE)
def test_no_plan_is_added_in_the_admin_active_or_not(role, request, login, prescriber, patient):
    client = login(request.getfixturevalue(role))
    assert client.get(admin_url(TitrationPlan, "add")).status_code == 403
    plan = {"patient": patient.pk, "target_dose_mg": "4.5", "start_date": timezone.localdate().isoformat()}
    rows = {"steps-TOTAL_FORMS": 1, "steps-INITIAL_FORMS": 0, "steps-0-sequence": 1, "steps-0-dose_mg": "4.5"}
    rows |= {"steps-0-planned_start": plan["start_date"], "steps-0-min_days": 7, "steps-0-status": "active"}
    for status in ("draft", "active"):
        response = client.post(admin_url(TitrationPlan, "add"), {**plan, **rows, "status": status, "_save": "Save"})
        assert response.status_code == 403
    assert not TitrationPlan.all_objects.exists() and not TitrationStep.all_objects.exists()


@pytest.mark.parametrize("role", WRITERS_BEFORE)
def test_a_prescription_cannot_be_activated_or_edited_in_the_admin(role, request, login, prescriber, patient):
    f.MedicationFactory(patient=patient, name="Norco 5/325")  # an open conflict: the gate would block
    rx = f.PrescriptionFactory(patient=patient, prescriber=prescriber, status=PrescriptionStatus.DRAFT)
    before = snapshot(patient)
    client = login(request.getfixturevalue(role))
    fields = [fl.name for fl in CompoundedPrescription._meta.fields if fl.editable and fl.name != "id"]
    old_form = {name: field_value(rx, name) for name in fields}
    for changes in (
        {"status": "active"},
        {"status": "active", "override_reason": "washout confirmed by phone"},
        {"strength_value": "0"},
        {"release": "SR"},
    ):
        response = post_as_browser(client, rx, {**old_form, **changes, "_save": "Save"})
        assert response.status_code == 403, changes
    assert client.post(admin_url(CompoundedPrescription, "add"), {**old_form, "_save": "Save"}).status_code == 403
    assert snapshot(patient) == before


ACK_FORM = {  # the flag's old acknowledge form
    "acknowledged_note": "",
    "expires_at_0": "",
    "expires_at_1": "",
    "shortened_washout_days": "",
    "shortened_reason": "",
    "uds_result": "",
    "naloxone_challenge": "",
}


@pytest.mark.parametrize("role", ["prescriber", "nurse", "operator"])
@pytest.mark.parametrize(
    "ack",
    [
        {"acknowledged_reason": "washout_confirmed"},  # two days after the last Norco dose
        {"acknowledged_reason": "other"},  # reason "Other" and no note: a 500 before issue 10
        {"acknowledged_reason": "clinical_judgement", "acknowledged_note": "fine"},
        {"acknowledged_reason": "uds_negative", "shortened_washout_days": "3", "shortened_reason": "UDS"},
        {"acknowledged_reason": "", "uds_result": "negative"},
    ],
)
def test_a_flag_cannot_be_acknowledged_in_the_admin_and_nothing_500s(ack, role, request, login, patient):
    med = f.MedicationFactory(
        patient=patient, name="Norco 5/325", last_dose_date=timezone.localdate() - dt.timedelta(days=2)
    )
    flag = ConflictFlag.objects.get(medication=med)
    assert flag.status == FlagStatus.OPEN and flag.earliest_safe_start > timezone.localdate()
    before = snapshot(patient)
    response = post_as_browser(login(request.getfixturevalue(role)), flag, {**ACK_FORM, **ack, "_save": "Save"})
    assert response.status_code == 403
    assert snapshot(patient) == before
    assert not admin.site._registry[ConflictFlag].has_add_permission(response.wsgi_request)


@pytest.mark.parametrize("role", ["prescriber", "nurse", "operator"])
def test_tasks_gate_events_reminders_and_checkins_cannot_be_changed(role, request, login, patient):
    client = login(request.getfixturevalue(role))
    task = f.ClinicianTaskFactory(patient=patient)
    event = f.SafetyGateEventFactory(patient=patient)
    reminder = f.ReminderFactory(patient=patient)
    checkin = f.CheckInFactory(patient=patient, pain=6)
    effect = f.SideEffectFactory(checkin=checkin, severity=1)
    posts = [
        (task, {"status": "done", "completed_note": "done"}),
        (event, {"outcome": "overridden", "reason": "x"}),
        (reminder, {"status": "cancelled"}),
        (checkin, {"pain": "2", "side_effects-0-id": effect.pk, "side_effects-0-severity": "3"}),
    ]
    for obj, data in posts:
        history = obj.history.count()
        assert post_as_browser(client, obj, {**data, "_save": "Save"}).status_code == 403
        assert obj.history.count() == history
    task.refresh_from_db()
    reminder.refresh_from_db()
    checkin.refresh_from_db()
    effect.refresh_from_db()
    assert (task.status, reminder.status, checkin.pain, effect.severity) == ("open", "pending", 6, 1)


# --- History pages ------------------------------------------------------------------------------------


def test_a_cancelled_reminder_stays_cancelled_after_posting_an_older_version(login, operator, prescriber, patient):
    reminder = f.ReminderFactory(patient=patient, kind="step_up")
    reminder.status = ReminderStatus.CANCELLED
    reminder.save()
    pending = reminder.history.earliest()
    assert pending.status == ReminderStatus.PENDING
    url = admin_url(Reminder, "simple_history", reminder.pk, pending.history_id)
    for user in (prescriber, operator):
        client = login(user)
        page = client.get(url)
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert client.post(url, {"_save": "Revert"}).status_code == 405  # all the old page needed to revert
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.CANCELLED
    assert reminder.history.count() == 2


def test_an_open_conflict_flag_stays_open_after_posting_its_resolved_version(login, operator, prescriber, patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325")
    med.name = "Nexium 20 mg"  # corrected: the flag resolves
    med.save()
    med.name = "Norco 5/325"  # and back: open again
    med.save()
    flag = ConflictFlag.objects.get(medication=med)
    assert flag.status == FlagStatus.OPEN
    resolved = flag.history.filter(status=FlagStatus.RESOLVED).latest()
    url = admin_url(ConflictFlag, "simple_history", flag.pk, resolved.history_id)
    count = flag.history.count()
    for user in (prescriber, operator):
        client = login(user)
        assert client.get(url).status_code == 200
        assert client.post(url, {**ACK_FORM, "acknowledged_reason": "", "_save": "Revert"}).status_code == 405
    flag.refresh_from_db()
    assert (flag.status, flag.history.count()) == (FlagStatus.OPEN, count)


def _row(model, patient):
    if model is TitrationProtocol:  # loaded by a data migration, which writes no history
        protocol = TitrationProtocol.objects.get(key="STD_1_5")
        protocol.save()
        return protocol
    return f.row_for(model, patient)


HISTORY_ADMINS = sorted(
    (m for m, a in admin.site._registry.items() if isinstance(a, SimpleHistoryAdmin)), key=lambda m: m._meta.label
)


def test_every_admin_with_history_pages_refuses_posts_through_scoped_admin():
    """One place refuses the POST (ldnclinic.admin.ScopedAdmin); an admin that does not inherit it would
    bring simple_history's saving history pages back."""
    from ldnclinic.admin import ScopedAdmin

    assert HISTORY_ADMINS
    for model in HISTORY_ADMINS:
        assert isinstance(admin.site._registry[model], ScopedAdmin), model._meta.label


@pytest.mark.parametrize("model", HISTORY_ADMINS, ids=lambda m: m._meta.label)
def test_every_history_page_answers_a_post_with_405_and_saves_nothing(model, login, operator, patient):
    obj = _row(model, patient)
    version = obj.history.latest()
    count = obj.history.count()
    client = login(operator)  # a superuser: the widest rights the admin gives
    version_url = admin_url(model, "simple_history", obj.pk, version.history_id)
    page = client.get(version_url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content and b'name="_change_history"' not in page.content
    assert page.context["adminform"].form.fields == {}  # shown as text, not as inputs
    assert client.post(version_url, {"_save": "Revert", "_change_history": "1"}).status_code == 405
    assert client.post(admin_url(model, "history", obj.pk), {"_save": "Save"}).status_code == 405
    assert obj.history.count() == count


# --- Patients stay editable, their status does not --------------------------------------------------------


def test_the_patients_status_is_read_only_and_the_rest_still_saves(login, nurse, patient):
    client = login(nurse)
    url = admin_url(Patient, "change", patient.pk)
    page = client.get(url)
    assert "status" not in page.context["adminform"].form.fields
    data = {**admin_form_data(page), "mobile": "07700 900123", "_save": "Save"}
    data |= {"status": "discontinued", "discontinued_reason": "moved away"}  # as a tampered form would post
    assert client.post(url, data).status_code == 302
    patient.refresh_from_db()
    assert (patient.mobile, patient.status, patient.discontinued_reason) == ("07700 900123", "screening", "")


def test_a_new_patient_starts_in_screening_whatever_is_posted(login, nurse, clinic):
    client = login(nurse)
    page = client.get(admin_url(Patient, "add"))
    data = {**admin_form_data(page), "clinic": clinic.pk, "mrn": "A-777", "first_name": "Eve", "last_name": "Ely"}
    data |= {"date_of_birth": "1980-05-05", "status": "active", "_save": "Save"}
    assert client.post(admin_url(Patient, "add"), data).status_code == 302
    assert Patient.objects.get(mrn="A-777").status == PatientStatus.SCREENING


# --- A tampered lab inline on the patient's page: ignored, never a 500 -----------------------------------


@pytest.mark.parametrize(
    "tampered",
    [
        {"lab_results-TOTAL_FORMS": "2", "lab_results-1-test": "ALT", "lab_results-1-value": "900"},
        {"lab_results-INITIAL_FORMS": "2", "lab_results-TOTAL_FORMS": "2"},  # a row with no id
        {"lab_results-INITIAL_FORMS": "2", "lab_results-TOTAL_FORMS": "2", "lab_results-1-id": "99999"},
        {"lab_results-INITIAL_FORMS": "2", "lab_results-TOTAL_FORMS": "2", "lab_results-1-id": "abc"},
        {"lab_results-0-id": "99999", "lab_results-0-value": "1"},
        {"lab_results-0-id": ""},
        {"lab_results-0-DELETE": "on"},
        {"lab_results-TOTAL_FORMS": "x"},
        {"lab_results-TOTAL_FORMS": "2", "lab_results-1-id": "THEIRS", "lab_results-1-patient": "MINE"},
        {"lab_results-0-value": "900", "lab_results-0-unit": "U/L", "lab_results-0-test": "ALT"},
    ],
)
@pytest.mark.parametrize("patient_form_valid", [True, False], ids=["saved", "form-error"])
def test_a_tampered_lab_inline_is_ignored_and_never_a_500(
    tampered, patient_form_valid, login, prescriber, patient, other_patient
):
    mine = f.LabResultFactory(patient=patient, value=D("12"))
    theirs = f.LabResultFactory(patient=other_patient, value=D("30"))
    before = list(LabResult.all_objects.order_by("pk").values())
    client = login(prescriber)
    url = admin_url(Patient, "change", patient.pk)
    data = {**admin_form_data(client.get(url)), "_save": "Save"}
    ids = {"THEIRS": str(theirs.pk), "MINE": str(patient.pk)}
    data |= {name: ids.get(value, value) for name, value in tampered.items()}
    if not patient_form_valid:
        data["mrn"] = ""
    response = client.post(url, data)
    if patient_form_valid:
        assert response.status_code == 302
    else:
        assert response.status_code == 200
        assert "mrn" in response.context["adminform"].form.errors  # the error beside the field
        assert "12 mm/h" in response.content.decode() and "30 mm/h" not in response.content.decode()
    assert list(LabResult.all_objects.order_by("pk").values()) == before
    assert mine.history.count() == 1 and theirs.history.count() == 1


# --- Constraint messages in words, beside the field, in any ModelForm (RX-1, DOSE-1, LAB, OPI-4) ----------


def _rx_data(patient, prescriber, pharmacy, **changes) -> dict:
    return {
        "patient": patient.pk,
        "form": "capsule",
        "strength_value": "1.5",
        "strength_unit": "mg/capsule",
        "filler": "mcc",
        "release": "IR",
        "quantity": "30",
        "quantity_unit": "capsules",
        "days_supply": "30",
        "refills": "0",
        "sig": "1 capsule at bedtime",
        "pharmacy": pharmacy.pk,
        "prescriber": prescriber.pk,
        "written_on": "2026-02-01",
        "status": "draft",
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"strength_value": "0"}, "strength_value", "Strength must be more than 0."),
        ({"quantity": "0"}, "quantity", "Quantity must be more than 0."),
        ({"days_supply": "0"}, "days_supply", "Days supply must be at least 1 day."),
        ({"refills": "13"}, "refills", "At most 12 refills."),
        (
            {"start_on": "2026-01-31"},
            "start_on",
            "The start date cannot be before the date the prescription was written.",
        ),
        ({"release": "SR"}, "release", SLOW_RELEASE_MESSAGE),
        ({"strength_value": "6"}, "strength_value", "6 mg per unit is above 5.0 mg: that is not low-dose naltrexone."),
    ],
)
def test_prescription_form_says_what_is_wrong_beside_the_field_RX_1(changes, field, message, prescriber, patient):
    pharmacy = f.PharmacyFactory(clinic=patient.clinic)
    form = modelform_factory(CompoundedPrescription, exclude=[])(_rx_data(patient, prescriber, pharmacy, **changes))
    assert not form.is_valid()
    assert form.errors == {field: [message]}  # once, beside the field; nothing at the top
    assert "violated" not in str(form.errors)


def test_a_form_without_the_field_is_not_broken_by_its_constraint(prescriber, patient):
    """A ModelForm that leaves a field out (a days supply computed by RX-2, say) gets no error for it, and no
    500: the constraint is checked where its fields are in the form, and the database still refuses the row."""
    pharmacy = f.PharmacyFactory(clinic=patient.clinic)
    rx = CompoundedPrescription(days_supply=0)
    Form = modelform_factory(CompoundedPrescription, exclude=["days_supply"])
    form = Form(_rx_data(patient, prescriber, pharmacy), instance=rx)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize(
    ("model", "build", "changes", "field", "message"),
    [
        (
            TitrationStep,
            lambda p: f.StepFactory(plan__patient=p),
            {"min_days": 2},
            "min_days",
            "A step lasts at least 3 and at most 14 days.",
        ),
        (
            LabResult,
            lambda p: f.LabResultFactory(patient=p),
            {"ref_low": D("10"), "ref_high": D("5")},
            "ref_high",
            "The upper limit of the reference range cannot be below the lower limit.",
        ),
        (
            LabResult,
            lambda p: f.LabResultFactory(patient=p),
            {"test": "other", "test_name": ""},
            "test_name",
            "Name the test.",
        ),
        (
            MedicationStatement,
            lambda p: f.MedicationFactory(patient=p),
            {"start_date": dt.date(2026, 3, 1), "last_dose_date": dt.date(2026, 2, 1)},
            "last_dose_date",
            "The last dose cannot be before the start date.",
        ),
        (
            Patient,
            lambda p: p,
            {"status": "discontinued", "discontinued_reason": ""},
            "discontinued_reason",
            "Say why the patient was discontinued.",
        ),
    ],
    ids=["step-min-days", "lab-range", "lab-other-name", "medication-dates", "patient-discontinued"],
)
def test_record_forms_say_what_is_wrong_beside_the_field(model, build, changes, field, message, patient):
    obj = build(patient)
    for name, value in changes.items():
        setattr(obj, name, value)
    fields = [fl.name for fl in model._meta.fields if fl.editable and fl.name != "id"]
    data = {
        name: field_value(obj, name) for name in fields if getattr(obj, model._meta.get_field(name).attname) is not None
    }
    form = modelform_factory(model, fields=fields)(data, instance=model._default_manager.get(pk=obj.pk))
    assert not form.is_valid()
    assert form.errors == {field: [message]}
    with pytest.raises(Exception) as caught:  # and outside a form, full_clean says the same, by field
        obj.full_clean()
    assert caught.value.message_dict[field] == [message]


def test_a_second_pharmacy_of_the_same_name_is_refused_beside_the_name(login, clinic_admin, clinic):
    f.PharmacyFactory(clinic=clinic, name="Bell Compounding")
    data = {"clinic": clinic.pk, "name": "Bell Compounding", "lead_time_days": 5, "_save": "Save"}
    response = login(clinic_admin).post(admin_url(Pharmacy, "add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"name": ["The clinic already has a pharmacy of this name."]}
    assert Pharmacy.objects.filter(clinic=clinic).count() == 1


def test_a_condition_already_on_the_record_is_refused_beside_the_field(login, nurse, patient):
    f.PatientConditionFactory(patient=patient, condition="fibromyalgia")
    client = login(nurse)
    url = admin_url(Patient, "change", patient.pk)
    data = {**admin_form_data(client.get(url)), "_save": "Save"}
    total = int(data["conditions-TOTAL_FORMS"])
    data |= {"conditions-TOTAL_FORMS": total + 2, f"conditions-{total}-condition": "fibromyalgia"}
    response = client.post(url, data)
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][1].formset.errors[total]
    assert errors == {"condition": ["This condition is already on the patient's record."]}
    data |= {f"conditions-{total}-condition": "crohns", f"conditions-{total + 1}-condition": "crohns"}  # twice at once
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Crohn" in str(response.context["inline_admin_formsets"][1].formset.non_form_errors())
    assert list(patient.conditions.values_list("condition", flat=True)) == ["fibromyalgia"]
