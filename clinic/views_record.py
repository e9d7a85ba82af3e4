"""The patient record pages: new patient, details, conditions, medications (with the opioid check as
you type), labs, reminder preferences, status, and one flag or task with its actions.

Each view is thin: load the record through ``visible_or_404`` (another clinic's record is not found),
check the role (``require``: a plain refusal page that says why), validate a small form, call one
service, and show its refusal beside the field with what was typed kept. Views never write.
"""

import datetime as dt
import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.forms import MultipleChoiceField
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ldnclinic import scoping
from patients import labs, opioids, record, rules, services
from patients.flag_models import PRESCRIBER_KINDS, ClinicianTask, ConflictFlag, FlagStatus, TaskKind, TaskStatus
from patients.models import (
    Clinic,
    LabTest,
    MedicationSource,
    MedicationStatement,
    Patient,
    PatientCondition,
    PatientStatus,
    Release,
    Route,
    ScreenResult,
)
from symptoms.preference_views import ReminderPreferencesForm, save_preferences

from .access import Refused, allowed_actions, can, refused, require, staff_view, visible_or_404, why_not
from .forms_record import (
    AcknowledgeForm,
    ArchiveForm,
    ConditionForm,
    LabForm,
    MedicationForm,
    MedicationFormSet,
    NewPatientForm,
    OverrideForm,
    PatientForm,
    ResolveForm,
    StatusForm,
    TaskCloseForm,
)

LAB_ENTRY = "This entry comes from a positive urine drug screen: correct the lab result, or resolve its flag."
ROW_PREFIX = re.compile(r"^medications-\d{1,2}$")
ROW_ERROR = re.compile(r"^medications-(\d+)-(\w+)$")
CHECK_LABELS = {
    opioids.CONFLICT: "Opioid conflict",
    opioids.CAUTION: "Possible opioid: verify",
    opioids.OPIOID_CONTEXT: "Opioid context: ask",
    opioids.ANTAGONIST: "Opioid antagonist",
    opioids.NONE: "No opioid found",
    opioids.UNAVAILABLE: "Check unavailable: review manually",
}


# --- Shared pieces --------------------------------------------------------------------------------


def _patient(request, pk: int) -> Patient:
    return visible_or_404(request.user, Patient.objects.select_related("clinic"), pk=pk)


def chart_url(patient: Patient) -> str:
    """The chart (another area's page); the edit page until the chart exists."""
    try:
        return reverse("clinic:patient", args=[patient.pk])
    except NoReverseMatch:
        return reverse("clinic:patient-edit", args=[patient.pk])


def _age(patient: Patient) -> int:
    today = services.patient_today(patient)
    born = patient.date_of_birth
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _page(request, template: str, patient: Patient | None = None, **context):
    if patient is not None:
        context.update(
            patient=patient,
            age=_age(patient),
            can=allowed_actions(request.user, patient.clinic_id),
            chart_url=chart_url(patient),
        )
    return render(request, template, context)


def _flag_message(flag: ConflictFlag):
    """A flag as a message with a link to its page; the medication name is escaped."""
    if flag.earliest_safe_start:
        when = f"earliest LDN start {flag.earliest_safe_start:%d %b %Y}"
    else:
        when = flag.earliest_start_note or "; ".join(flag.notes)
    found = f" [{', '.join(flag.ingredients)}]" if flag.ingredients else ""
    washout = f", {flag.washout_days}-day washout" if flag.washout_days else ""
    return format_html(
        '{}: {}{}{} — {}. <a href="{}">Open the flag</a>',
        flag.get_kind_display().upper(),
        flag.medication_text,
        found,
        washout,
        when,
        reverse("clinic:flag", args=[flag.pk]),
    )


def announce_flags(request, flags) -> None:
    for flag in flags:
        level = messages.ERROR if flag.severity == "high" else messages.WARNING
        messages.add_message(request, level, _flag_message(flag))


# --- The opioid check, as you type (no writes) ----------------------------------------------------


def _choice(value: str, choices, default: str) -> str:
    return value if value in choices.values else default


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def live_check(
    *, name: str, route: str, release: str, last_dose: dt.date | None, patient: Patient | None
) -> dict | None:
    """What saving this medicine would find: the same matcher and washout rule as the save
    (services.check_medication, rules.earliest_safe_start), on an unsaved row."""
    name = (name or "").strip()[:200]
    if not name:
        return None
    draft = MedicationStatement(
        name=name, route=_choice(route, Route, Route.OTHER), release=_choice(release, Release, Release.UNKNOWN)
    )
    result = services.check_medication(draft)
    check = {
        "name": name,
        "klass": result.klass,
        "label": CHECK_LABELS.get(result.klass, result.klass),
        "ingredients": list(result.ingredients),
        "washout_days": result.washout_days,
        "release": result.release,
        "notes": list(result.notes),
        "evidence": [str(e) for e in result.evidence],
        "catalog_version": result.catalog_version,
        "last_dose": last_dose,
    }
    if result.klass == opioids.CONFLICT:
        washout = rules.earliest_safe_start(
            last_dose=last_dose, washout_days=result.washout_days, washout_group=result.washout_group or ""
        )
        check.update(earliest_start=washout.earliest_start, washout_note=washout.reason)
        if patient is not None and patient.status == PatientStatus.ACTIVE:
            check.update(earliest_start=None, washout_note="on LDN: hold LDN and make an opioid plan (OPI-W3)")
        elif patient is not None and washout.elapsed(services.patient_today(patient)):
            check["elapsed"] = True
    return check


@staff_view
@require_GET
def medication_check(request):
    """htmx partial: ?name=&route=&release=&last_dose_date= (or a formset row's, with ?prefix=)."""
    prefix = request.GET.get("prefix", "")
    key = (lambda field: f"{prefix}-{field}") if ROW_PREFIX.match(prefix) else (lambda field: field)
    patient = None
    if request.GET.get("patient", "").isdigit():
        patient = _patient(request, int(request.GET["patient"]))
    check = live_check(
        name=request.GET.get(key("name"), ""),
        route=request.GET.get(key("route"), ""),
        release=request.GET.get(key("release"), ""),
        last_dose=_date(request.GET.get(key("last_dose_date"), "")),
        patient=patient,
    )
    return render(request, "clinic/record/_medication_check.html", {"check": check})


# --- New patient and details ----------------------------------------------------------------------


def _clinics_for_new(user) -> list[Clinic]:
    ids = [cid for cid in scoping.staff_clinic_ids(user) if can(user, cid, "patient_edit")]
    return list(Clinic.objects.filter(pk__in=ids).order_by("name"))


def _carried(form_class, data, **kwargs):
    """An unbound form showing what was typed (adding a medication row is not a submission, so no
    "this field is required" yet)."""
    form = form_class(**kwargs)
    initial = {
        name: data.getlist(name) if isinstance(field, MultipleChoiceField) else data.get(name)
        for name, field in form.fields.items()
    }
    return form_class(initial=initial, **kwargs)


def _carried_rows(data) -> list[dict]:
    try:
        total = min(int(data.get("medications-TOTAL_FORMS", "0")), 29)
    except ValueError:
        total = 0
    names = list(MedicationForm.base_fields)
    return [{name: data.get(f"medications-{i}-{name}", "") for name in names} for i in range(max(total, 0))]


def _check_rows(formset, data) -> None:
    """Each typed row shown again with its opioid check, as it was before the page reloaded."""
    for form in formset.forms:
        key = f"{form.prefix}-{{}}".format
        form.check = live_check(
            name=data.get(key("name"), ""),
            route=data.get(key("route"), ""),
            release=data.get(key("release"), ""),
            last_dose=_date(data.get(key("last_dose_date"), "")),
            patient=None,
        )


def _apply_new_patient_errors(exc: ValidationError, form, formset, row_index: list[int]) -> None:
    if not hasattr(exc, "error_dict"):
        form.apply(exc)
        return
    for field, errors in exc.message_dict.items():
        row = ROW_ERROR.match(field)
        for error in errors:
            if row and int(row.group(1)) < len(row_index):
                target = formset.forms[row_index[int(row.group(1))]]
                name = row.group(2)
                target.add_error(name if name in target.fields else None, error)
            else:
                form.add_error(field if field in form.fields else None, error)


@staff_view
@require_http_methods(["GET", "POST"])
def patient_new(request):
    clinics = _clinics_for_new(request.user)
    if not clinics:
        raise Refused(why_not("patient_edit"))
    data = request.POST if request.method == "POST" else None
    if data is not None and "add_medication" in data:  # another medication row; nothing is submitted
        form = _carried(NewPatientForm, data, clinics=clinics)
        formset = MedicationFormSet(initial=_carried_rows(data), prefix="medications")
        formset.forms[-1].fields["name"].widget.attrs["autofocus"] = True  # htmx focuses it after the swap
        _check_rows(formset, data)
        context = {"form": form, "formset": formset, "clinics": clinics, "nav": "new", "added_row": True}
        template = "clinic/record/patient_new.html" + ("#medications" if request.htmx else "")
        return render(request, template, context)
    form = NewPatientForm(data, clinics=clinics)
    formset = MedicationFormSet(data, prefix="medications")
    if data is not None and all([form.is_valid(), formset.is_valid()]):
        values = dict(form.cleaned_data)
        clinic_id = values.pop("clinic", clinics[0].pk)
        clinic = next(c for c in clinics if c.pk == clinic_id)
        rows = [(i, f.cleaned_data) for i, f in enumerate(formset.forms) if f.has_changed() and f.cleaned_data]
        try:
            patient = record.patient_create(
                actor=request.user, clinic=clinic, medications=[row for _, row in rows], **values
            )
        except ValidationError as exc:
            _apply_new_patient_errors(exc, form, formset, [i for i, _ in rows])
        else:
            messages.success(request, f"{patient.full_name} added (MRN {patient.mrn}).")
            announce_flags(request, services.open_flags(patient))
            return redirect(chart_url(patient))
    if data is not None:
        _check_rows(formset, data)
    return render(
        request, "clinic/record/patient_new.html", {"form": form, "formset": formset, "clinics": clinics, "nav": "new"}
    )


def _edit_context(patient: Patient) -> dict:
    live_flags = Prefetch(
        "conflict_flags", queryset=ConflictFlag.objects.exclude(status=FlagStatus.RESOLVED), to_attr="live_flags"
    )
    medications = list(
        MedicationStatement.objects.filter(patient=patient).prefetch_related(live_flags).order_by("name")
    )
    for medication in medications:  # archiving one clears an opioid conflict: a prescriber's call
        medication.conflicted = any(flag.kind in PRESCRIBER_KINDS for flag in medication.live_flags)
    conditions = PatientCondition.objects.filter(patient=patient).order_by("condition")
    return {"medications": medications, "conditions": list(conditions)}


def _edit_page(request, patient, form=None, condition_form=None):
    return _page(
        request,
        "clinic/record/patient_edit.html",
        patient,
        form=form or PatientForm(initial={f: getattr(patient, f) for f in record.DEMOGRAPHICS}),
        condition_form=condition_form or ConditionForm(),
        archive_form=ArchiveForm(),
        **_edit_context(patient),
    )


@staff_view
@require_http_methods(["GET", "POST"])
def patient_edit(request, pk: int):
    patient = _patient(request, pk)
    require(request.user, patient.clinic_id, "patient_edit")
    if request.method == "GET":
        return _edit_page(request, patient)
    form = PatientForm(request.POST)
    if form.is_valid():
        try:
            record.patient_update(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            form.apply(exc)
        else:
            messages.success(request, "Details saved.")
            return redirect(chart_url(patient))
    return _edit_page(request, patient, form=form)


@staff_view
@require_POST
def condition_add(request, pk: int):
    patient = _patient(request, pk)
    require(request.user, patient.clinic_id, "patient_edit")
    form = ConditionForm(request.POST)
    if form.is_valid():
        try:
            row = record.condition_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            form.apply(exc)
        else:
            messages.success(request, f"{row.get_condition_display()} added.")
            return redirect("clinic:patient-edit", pk=patient.pk)
    return _edit_page(request, patient, condition_form=form)


def _archive(request, obj, patient, service, what: str, done: str):
    form = ArchiveForm(request.POST)
    if form.is_valid():
        try:
            service(actor=request.user, reason=form.cleaned_data["reason"], **{what: obj})
        except ValidationError as exc:
            form.apply(exc)
        else:
            messages.success(request, done)
            return redirect("clinic:patient-edit", pk=patient.pk)
    context = {"form": form, "thing": obj, "action": request.path}
    return _page(request, "clinic/record/archive.html", patient, **context)


@staff_view
@require_POST
def condition_archive(request, pk: int):
    condition = visible_or_404(request.user, PatientCondition.objects.select_related("patient__clinic"), pk=pk)
    require(request.user, condition.clinic_id, "patient_edit")
    done = f"{condition.get_condition_display()} archived."
    return _archive(request, condition, condition.patient, record.condition_archive, "condition", done)


# --- Medications ----------------------------------------------------------------------------------


def _medication_page(request, patient, form, medication=None, check=None):
    form.check = check
    return _page(request, "clinic/record/medication_form.html", patient, form=form, medication=medication, check=check)


def _check_of(form, patient):
    data = form.data
    return live_check(
        name=data.get("name", ""),
        route=data.get("route", ""),
        release=data.get("release", ""),
        last_dose=_date(data.get("last_dose_date", "")),
        patient=patient,
    )


def _saved(request, patient, medication, flags, verb: str):
    messages.success(request, format_html("{} {}.", medication.name, verb))
    if flags:
        announce_flags(request, flags)
    else:
        messages.info(request, "The opioid check found nothing to flag.")
    return redirect(chart_url(patient))


@staff_view
@require_http_methods(["GET", "POST"])
def medication_add(request, pk: int):
    patient = _patient(request, pk)
    require(request.user, patient.clinic_id, "patient_edit")
    if request.method == "GET":
        return _medication_page(request, patient, MedicationForm(patient_id=patient.pk))
    form = MedicationForm(request.POST, patient_id=patient.pk)
    if "check" in request.POST:  # the check without JavaScript: show it, save nothing
        return _medication_page(request, patient, form, check=_check_of(form, patient))
    if form.is_valid():
        try:
            medication, flags = record.medication_add(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            form.apply(exc)
        else:
            return _saved(request, patient, medication, flags, "added")
    return _medication_page(request, patient, form, check=_check_of(form, patient))


@staff_view
@require_http_methods(["GET", "POST"])
def medication_edit(request, pk: int):
    medication = visible_or_404(request.user, MedicationStatement.objects.select_related("patient__clinic"), pk=pk)
    patient = medication.patient
    require(request.user, patient.clinic_id, "patient_edit")
    if medication.source == MedicationSource.LAB:
        return refused(request, LAB_ENTRY)
    if request.method == "GET":
        form = MedicationForm(
            initial={f: getattr(medication, f) for f in record.MEDICATION_FIELDS}, patient_id=patient.pk
        )
        check = live_check(
            name=medication.name,
            route=medication.route,
            release=medication.release,
            last_dose=medication.last_dose_date,
            patient=patient,
        )
        return _medication_page(request, patient, form, medication, check=check)
    form = MedicationForm(request.POST, patient_id=patient.pk)
    if "check" in request.POST:
        return _medication_page(request, patient, form, medication, check=_check_of(form, patient))
    if form.is_valid():
        try:
            medication, flags = record.medication_update(actor=request.user, medication=medication, **form.cleaned_data)
        except ValidationError as exc:
            form.apply(exc)
        else:
            return _saved(request, patient, medication, flags, "saved")
    return _medication_page(request, patient, form, medication, check=_check_of(form, patient))


@staff_view
@require_POST
def medication_archive(request, pk: int):
    medication = visible_or_404(request.user, MedicationStatement.objects.select_related("patient__clinic"), pk=pk)
    require(request.user, medication.clinic_id, "patient_edit")
    done = format_html("{} archived; its flags are resolved.", medication.name)
    return _archive(request, medication, medication.patient, record.medication_archive, "medication", done)


# --- Labs -----------------------------------------------------------------------------------------


def _announce_lab(request, patient: Patient, result) -> None:
    """LAB-2 findings the save just raised, the range, the screen's conflict, and missing liver tests."""
    messages.success(request, f"{result.test_name or result.get_test_display()} {result.shown_result} saved.")
    if result.value is not None:
        if result.ref_high is not None and result.value > result.ref_high:
            messages.warning(request, f"Above the reference range ({result.reference_range}).")
        elif result.ref_low is not None and result.value < result.ref_low:
            messages.warning(request, f"Below the reference range ({result.reference_range}).")
    keys = [f"lab2-review:{result.pk}", f"lab2-alert:{result.pk}"]
    for task in ClinicianTask.objects.filter(key__in=keys, status=TaskStatus.OPEN).order_by("pk"):
        level = messages.ERROR if task.kind == TaskKind.LAB_REVIEW else messages.WARNING
        link = reverse("clinic:task", args=[task.pk])
        messages.add_message(request, level, format_html('{}. <a href="{}">Open the task</a>', task.detail, link))
    if result.test == LabTest.UDS and result.result == ScreenResult.POSITIVE:
        entry = MedicationStatement.objects.filter(
            patient=patient, source=MedicationSource.LAB, name__endswith=f" #{result.pk}: verify"
        )
        announce_flags(request, ConflictFlag.objects.filter(medication__in=entry, status=FlagStatus.OPEN))
    missing = labs.liver_check(patient).missing if result.test in ("ALT", "AST") else ()
    if missing:
        messages.info(request, f"No {' and '.join(missing)} on file yet: baseline liver tests are due (LAB-2).")


@staff_view
@require_http_methods(["GET", "POST"])
def lab_add(request, pk: int):
    patient = _patient(request, pk)
    require(request.user, patient.clinic_id, "lab_add")
    with timezone.override(patient.zone):  # "collected at" is typed and shown in the patient's time
        form = LabForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                result = record.lab_add(actor=request.user, patient=patient, **form.cleaned_data)
            except ValidationError as exc:
                form.apply(exc)
            else:
                _announce_lab(request, patient, result)
                return redirect(chart_url(patient))
        return _page(request, "clinic/record/lab_form.html", patient, form=form, zone=patient.time_zone)


# --- Reminder preferences and status ---------------------------------------------------------------


@staff_view
@require_http_methods(["GET", "POST"])
def reminder_preferences(request, pk: int):
    patient = _patient(request, pk)
    require(request.user, patient.clinic_id, "reminder_preferences")
    form = ReminderPreferencesForm.for_patient(patient, request.POST if request.method == "POST" else None)
    if request.method == "POST" and save_preferences(request, patient, form):
        return redirect(chart_url(patient))
    return _page(request, "clinic/record/reminder_form.html", patient, form=form)


@staff_view
@require_http_methods(["GET", "POST"])
def patient_status(request, pk: int):
    patient = _patient(request, pk)
    require(request.user, patient.clinic_id, "patient_status")
    form = StatusForm(request.POST if request.method == "POST" else None, initial={"status": patient.status})
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_set_status(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            form.apply(exc)
        else:
            messages.success(request, f"Status: {PatientStatus(form.cleaned_data['status']).label}.")
            return redirect(chart_url(patient))
    return _page(request, "clinic/record/status_form.html", patient, form=form)


# --- One flag, one task ---------------------------------------------------------------------------


def _flag_rights(user, flag: ConflictFlag) -> dict[str, bool]:
    prescriber_only = flag.kind in PRESCRIBER_KINDS
    settle = "flag_conflict" if prescriber_only else "flag_acknowledge"
    live = flag.status != FlagStatus.RESOLVED
    return {
        "acknowledge": live and can(user, flag.clinic_id, settle),
        "override": live and can(user, flag.clinic_id, "override"),
        "resolve": live and can(user, flag.clinic_id, settle),
        "prescriber": can(user, flag.clinic_id, "override"),
        "_settle": settle,
    }


def _acknowledge(request, flag, form) -> None:
    data = dict(form.cleaned_data)
    if data.get("shortened_washout_days") is None:
        data.pop("shortened_washout_days", None)
        data.pop("shortened_reason", None)
    services.flag_acknowledge(actor=request.user, flag=flag, **data)


@staff_view
@require_http_methods(["GET", "POST"])
def flag(request, pk: int):
    flag = visible_or_404(
        request.user, ConflictFlag.objects.select_related("patient__clinic", "medication", "acknowledged_by"), pk=pk
    )
    patient = flag.patient
    rights = _flag_rights(request.user, flag)
    post = request.POST if request.method == "POST" else None
    action = post.get("action") if post else None
    with timezone.override(patient.zone):
        forms = {
            "acknowledge": AcknowledgeForm(
                post if action == "acknowledge" else None, prefix="ack", prescriber=rights["prescriber"]
            ),
            "override": OverrideForm(post if action == "override" else None, prefix="ovr"),
            "resolve": ResolveForm(post if action == "resolve" else None, prefix="res"),
        }
        if post is not None:
            if action not in forms:
                return HttpResponse("Unknown action.", status=400)
            require(request.user, flag.clinic_id, "override" if action == "override" else rights["_settle"])
            if not rights[action]:  # a resolved flag, or an override of a flag that is no conflict
                done = flag.status == FlagStatus.RESOLVED
                messages.error(request, "This flag is resolved." if done else "This action does not apply here.")
                return redirect("clinic:flag", pk=flag.pk)
            form = forms[action]
            if form.is_valid():
                try:
                    if action == "acknowledge":
                        _acknowledge(request, flag, form)
                    elif action == "override":
                        services.flag_override(actor=request.user, flag=flag, **form.cleaned_data)
                    else:
                        services.flag_resolve(actor=request.user, flag=flag, **form.cleaned_data)
                except ValidationError as exc:
                    form.apply(exc)
                else:
                    messages.success(request, f"Flag {action}d." if action != "override" else "Flag overridden.")
                    return redirect("clinic:flag", pk=flag.pk)
        return _page(
            request,
            "clinic/record/flag.html",
            patient,
            flag=flag,
            forms=forms,
            rights=rights,
            refusal=why_not(rights["_settle"]),
        )


@staff_view
@require_http_methods(["GET", "POST"])
def task(request, pk: int):
    task = visible_or_404(request.user, ClinicianTask.objects.select_related("patient__clinic", "completed_by"), pk=pk)
    patient = task.patient
    action = "liver_review_close" if task.kind == TaskKind.LAB_REVIEW else "task_close"
    form = TaskCloseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        require(request.user, task.clinic_id, action)
        if task.status != TaskStatus.OPEN:
            messages.error(request, f"This task is already {task.get_status_display().lower()}.")
            return redirect("clinic:task", pk=task.pk)
        if form.is_valid():
            try:
                services.task_close(actor=request.user, task=task, **form.cleaned_data)
            except ValidationError as exc:
                form.apply(exc)
            else:
                messages.success(request, f"Task closed: {TaskStatus(form.cleaned_data['status']).label.lower()}.")
                return redirect(chart_url(patient))
    context = {
        "task": task,
        "form": form,
        "may_close": task.status == TaskStatus.OPEN and can(request.user, task.clinic_id, action),
        "refusal": why_not(action),
    }
    return _page(request, "clinic/record/task.html", patient, **context)
