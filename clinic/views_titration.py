"""The prescription and plan pages (issue 10, sections 1 RX-2/RX-3 and 2 "Forms").

Thin views: load the record through the scoping function (404 otherwise), check the role, validate a
form, call one service, and render its refusals beside the fields. Nothing here writes a model.
Prescribers act; nurses and clinic admins read the same pages, with the refusal text where they would act.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from patients.models import Patient
from patients.services import ConflictBlocked, patient_today
from titration import content, prescribing, rules, services
from titration.models import (
    CompoundedPrescription,
    PlanStatus,
    PrescriberCredential,
    PrescriptionStatus,
    StepStatus,
    TitrationPlan,
)

from . import forms_titration as forms
from . import prescription_pdf
from .access import allowed_actions, can, require, staff_view, visible_or_404, why_not

NOT_YET = "{label}: not available yet (the service is being written). Nothing was changed."


def _patient(request, pk: int) -> Patient:
    return visible_or_404(request.user, Patient.objects.select_related("clinic"), pk=pk)


def _refuse(form, exc: Exception, user, clinic_id: int) -> None:
    """A rule's or the opioid gate's refusal as the form's error: every reason with its rule id, and for a
    prescriber the override-reason field to try again with."""
    if isinstance(exc, services.StepUpNotAllowed):
        form.refusal = "The step-up rule (domain.md 1.3) says not now:"
        form.refusal_reasons = [(r.rule, r.text) for r in exc.reasons]
    else:  # ConflictBlocked
        form.refusal = exc.message
        form.refusal_reasons = list(zip(exc.rules, exc.reasons, strict=True))
    form.show_override = getattr(form, "overridable", False) and can(user, clinic_id, "override")
    form.add_error(None, "Not done: see the reasons below.")


# --- Prescriptions -------------------------------------------------------------------------------------------


def _estimate(form, patient) -> prescribing.SupplyEstimate | None:
    if form.is_bound:  # only what validated so far (the view has called is_valid)
        data = getattr(form, "cleaned_data", {})
    else:
        data = {name: form[name].value() for name in ("form", "strength_unit", "quantity_unit")}
    return prescribing.supply_estimate(
        patient=patient,
        form=data.get("form") or "",
        strength_value=data.get("strength_value"),
        strength_unit=data.get("strength_unit") or "",
        quantity=data.get("quantity"),
        quantity_unit=data.get("quantity_unit") or "",
        written_on=data.get("written_on"),
        start_on=data.get("start_on"),
        for_dose_mg=data.get("for_dose_mg"),
    )


def _supply_context(form, patient) -> dict:
    estimate = _estimate(form, patient)
    typed = (getattr(form, "cleaned_data", None) or {}).get("days_supply")
    mismatch = prescribing.mismatch_warning(typed, estimate) if estimate else None
    dose = prescribing.default_dose(patient)
    return {"estimate": estimate, "mismatch": mismatch, "default_dose": rules.fmt_mg(dose) if dose else None}


@staff_view
def prescription_new(request, pk: int):
    patient = _patient(request, pk)
    may = can(request.user, patient.clinic_id, "prescribe")
    if request.method == "POST":
        require(request.user, patient.clinic_id, "prescribe")
        form = forms.PrescriptionForm(request.POST, patient=patient)
        if form.is_valid() and "calculate" not in request.POST:
            try:
                rx, warnings = prescribing.prescription_create(
                    actor=request.user, patient=patient, **form.service_kwargs()
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(
                    request, f"Draft prescription written: {forms.rx_label(rx)}; {rx.days_supply} days supply (RX-2)."
                )
                for warning in warnings:
                    messages.warning(request, warning)
                return redirect("clinic:prescription", pk=rx.pk)
    else:
        form = forms.PrescriptionForm(
            patient=patient,
            initial={
                "written_on": patient_today(patient),
                "form": "capsule",
                "strength_unit": "mg/capsule",
                "quantity_unit": "capsules",
                "release": "IR",
                "filler": "mcc",
                "refills": 0,
                "sig": "Take by mouth at bedtime as directed by your titration schedule.",
            },
        )
    context = {"patient": patient, "form": form, "may": may, "refusal": why_not("prescribe"), "nav": "patients"}
    return render(request, "clinic/titration/prescription_new.html", context | _supply_context(form, patient))


@staff_view
@require_GET
def prescription_supply(request, pk: int):
    """The live days-supply line beside the quantity (htmx partial; read only)."""
    patient = _patient(request, pk)
    form = forms.PrescriptionForm(request.GET, patient=patient)
    form.is_valid()  # only the fields that are valid so far reach the estimate
    context = {"patient": patient, "form": form} | _supply_context(form, patient)
    return render(request, "clinic/titration/prescription_new.html#supply", context)


@dataclass(frozen=True)
class RxAction:
    label: str
    form: type
    service: str
    done: str


RX_ACTIONS = {
    "activate": RxAction("Activate", forms.PrescriptionActivateForm, "prescription_activate", "Prescription active."),
    "complete": RxAction("Complete", forms.ReasonForm, "prescription_complete", "Prescription completed."),
    "cancel": RxAction("Cancel", forms.ReasonForm, "prescription_cancel", "Prescription cancelled."),
}
RX_ACTIONS_BY_STATUS = {
    PrescriptionStatus.DRAFT: ("activate", "cancel"),
    PrescriptionStatus.ACTIVE: ("complete", "cancel"),
}


def _rx(request, pk: int) -> CompoundedPrescription:
    queryset = CompoundedPrescription.objects.select_related("patient", "pharmacy", "prescriber", "clinic")
    return visible_or_404(request.user, queryset, pk=pk)


@staff_view
def prescription_detail(request, pk: int):
    rx = _rx(request, pk)
    bound = None
    if request.method == "POST":
        name = request.POST.get("action", "")
        action = RX_ACTIONS.get(name)
        if action is None:
            raise Http404("No such action.")
        require(request.user, rx.clinic_id, "prescribe")
        service = getattr(services, action.service, None)
        if service is None:
            messages.error(request, NOT_YET.format(label=action.label))
            return redirect("clinic:prescription", pk=rx.pk)
        bound = action.form(request.POST, prefix=name)
        if bound.is_valid():
            try:
                service(actor=request.user, prescription=rx, **bound.cleaned_data)
            except ConflictBlocked as exc:
                _refuse(bound, exc, request.user, rx.clinic_id)
            except ValidationError as exc:
                bound.add_service_errors(exc)
            else:
                messages.success(request, action.done)
                return redirect("clinic:prescription", pk=rx.pk)
        rx = _rx(request, pk)  # as stored: a refused action changed nothing
    actions = []
    for name in RX_ACTIONS_BY_STATUS.get(rx.status, ()):
        action = RX_ACTIONS[name]
        form = bound if bound is not None and bound.prefix == name else action.form(prefix=name)
        actions.append({"name": name, "action": action, "form": form, "available": hasattr(services, action.service)})
    context = _amounts(rx) | {
        "rx": rx,
        "patient": rx.patient,
        "label": forms.rx_label(rx),
        "actions": actions,
        "may": can(request.user, rx.clinic_id, "prescribe"),
        "refusal": why_not("prescribe"),
        "plans": list(rx.plans.filter(deleted_at__isnull=True).order_by("-start_date")),
        "nav": "patients",
    }
    return render(request, "clinic/titration/prescription_detail.html", context)


def _amounts(rx: CompoundedPrescription) -> dict:
    return {
        "strength": f"{rules.fmt_mg(rx.strength_value)} {rx.strength_unit}",
        "quantity": f"{rules.fmt_mg(rx.quantity).removesuffix('.0')} {rx.quantity_unit}",
        "filler": rx.filler_other if rx.filler == "other" else rx.get_filler_display(),
    }


def _print_context(rx: CompoundedPrescription) -> dict:
    credential = PrescriberCredential.objects.filter(user_id=rx.prescriber_id, clinic_id=rx.clinic_id).first()
    return _amounts(rx) | {
        "rx": rx,
        "patient": rx.patient,
        "pharmacy": rx.pharmacy,
        "clinic": rx.clinic,
        "prescriber_name": rx.prescriber.get_full_name() or rx.prescriber.get_username(),
        "credential": credential,
        "licences": credential.licence_numbers.splitlines() if credential else [],
        "draft": rx.status == PrescriptionStatus.DRAFT,
    }


@staff_view
def prescription_print(request, pk: int):
    rx = _rx(request, pk)
    return render(request, "clinic/titration/prescription_print.html", _print_context(rx))


@staff_view
def prescription_pdf_view(request, pk: int):
    rx = _rx(request, pk)
    response = HttpResponse(prescription_pdf.render(_print_context(rx)), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="prescription-{rx.pk}.pdf"'
    response["Cache-Control"] = "no-store"  # patient data: not kept in shared caches
    return response


# --- Plans ---------------------------------------------------------------------------------------------------


@staff_view
def plan_new(request, pk: int):
    patient = _patient(request, pk)
    may = can(request.user, patient.clinic_id, "plan")
    preview = None
    if request.method == "POST":
        require(request.user, patient.clinic_id, "plan")
        form = forms.PlanForm(request.POST, patient=patient)
        wants_preview = bool(request.htmx) or "preview" in request.POST
        if form.is_valid():
            try:
                if wants_preview:
                    preview = [
                        {"step": step, "dose": rules.fmt_mg(step.dose_mg)}
                        for step in services.plan_preview(**form.service_kwargs())
                    ]
                else:
                    plan = services.plan_create(
                        actor=request.user, patient=patient, note=form.cleaned_data["note"], **form.service_kwargs()
                    )
                    messages.success(request, "Draft plan saved. Start it when the prescription is active.")
                    return redirect("clinic:plan", pk=plan.pk)
            except ValidationError as exc:
                form.add_service_errors(exc)
    else:
        active = (
            CompoundedPrescription.objects.filter(patient=patient, status=PrescriptionStatus.ACTIVE)
            .order_by("-written_on", "-pk")
            .first()
        )
        form = forms.PlanForm(patient=patient, initial={"start": patient_today(patient), "prescription": active})
    context = {
        "patient": patient,
        "form": form,
        "preview": preview,
        "may": may,
        "refusal": why_not("plan"),
        "nav": "patients",
    }
    if request.htmx and request.method == "POST":
        return render(request, "clinic/titration/plan_new.html#planform", context)
    return render(request, "clinic/titration/plan_new.html", context)


@dataclass(frozen=True)
class PlanAction:
    label: str
    form: type
    permission: str  # clinic.access ACTIONS key
    service: str  # titration.services function
    done: str
    kwargs: Any  # cleaned data -> the service's keyword arguments


def _with_override(data: dict, **kwargs) -> dict:
    return kwargs | {"override_reason": (data.get("override_reason") or "").strip()}


PLAN_ACTIONS: dict[str, PlanAction] = {
    "start": PlanAction(
        "Start the plan",
        forms.StartForm,
        "plan",
        "plan_start",
        "Plan started: step 1 is active.",
        lambda d: _with_override(d, start=d["start"]),
    ),
    "hold": PlanAction(
        "Hold",
        forms.HoldForm,
        "hold",
        "plan_hold",
        "Held: the patient stays on this dose.",
        lambda d: {"reason": d["reason"]},
    ),
    "resume": PlanAction(
        "Resume", forms.ResumeForm, "hold", "plan_resume", "Resumed.", lambda d: {"reason": d["reason"]}
    ),
    "step_up": PlanAction(
        "Step up",
        forms.StepUpForm,
        "step_up",
        "plan_advance",
        "Stepped up.",
        lambda d: _with_override(d, on=d["on"]),
    ),
    "step_back": PlanAction(
        "Step back",
        forms.StepBackForm,
        "hold",
        "plan_step_back",
        "Stepped back to the previous dose (SE-2, SE-5).",
        lambda d: {"on": d["on"], "reason": d["reason"]},
    ),
    "skip": PlanAction(
        "Skip a step",
        forms.SkipForm,
        "hold",
        "plan_skip",
        "Step skipped.",
        lambda d: {"step": d["step"], "reason": d["reason"]},
    ),
    "custom_dose": PlanAction(
        "Custom dose",
        forms.CustomDoseForm,
        "step_up",
        "plan_set_dose",
        "Dose set.",
        lambda d: _with_override(d, dose_mg=d["dose_mg"], on=d["on"], reason=d["reason"]),
    ),
    "complete": PlanAction(
        "Complete the plan",
        forms.CompleteForm,
        "plan",
        "plan_complete",
        "Plan completed.",
        lambda d: {"reason": d["reason"]},
    ),
    "discontinue": PlanAction(
        "Discontinue",
        forms.DiscontinueForm,
        "plan",
        "plan_discontinue",
        "Plan discontinued.",
        lambda d: {"reason": d["reason"]},
    ),
}


def _applicable(plan: TitrationPlan, steps: list) -> list[str]:
    """The actions that make sense in the plan's state (the services check again)."""
    if plan.status == PlanStatus.DRAFT:
        return ["start", "discontinue"]
    if plan.status not in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        return []
    current = next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
    held = plan.status == PlanStatus.PAUSED or (current is not None and current.status == StepStatus.HELD)
    names = ["resume"] if held else ["hold"]
    names += ["step_up", "step_back"]
    if any(s.status == StepStatus.PLANNED for s in steps):
        names.append("skip")
    return [*names, "custom_dose", "complete", "discontinue"]


def _render_plan(request, plan: TitrationPlan, bound=None):
    steps = list(plan.steps.filter(deleted_at__isnull=True).order_by("sequence"))
    rx = content.active_prescription(plan)
    today = patient_today(plan.patient)
    allowed = allowed_actions(request.user, plan.clinic_id)
    rows = [{"step": s, "dose": rules.fmt_mg(s.dose_mg), "measure": content.measured(s.dose_mg, rx)} for s in steps]
    actions = []
    for name in _applicable(plan, steps):
        spec = PLAN_ACTIONS[name]
        form = bound if bound is not None and bound.prefix == name else spec.form(plan=plan, today=today, prefix=name)
        actions.append(
            {
                "name": name,
                "spec": spec,
                "form": form,
                "may": allowed[spec.permission],
                "refusal": why_not(spec.permission),
                "available": hasattr(services, spec.service),
            }
        )
    context = {
        "plan": plan,
        "patient": plan.patient,
        "rx": rx,
        "rx_label": forms.rx_label(rx) if rx else None,
        "target": rules.fmt_mg(plan.target_dose_mg),
        "rows": rows,
        "actions": actions,
        "rx3": prescribing.rx3_for_patient(plan.patient, today) if plan.status == PlanStatus.ACTIVE else [],
        "coming": content.coming_dose_messages(plan, today) if plan.status == PlanStatus.ACTIVE else [],
        "today": today,
        "nav": "patients",
    }
    return render(request, "clinic/titration/plan_detail.html", context)


def _plan(request, pk: int) -> TitrationPlan:
    queryset = TitrationPlan.objects.select_related("patient", "protocol", "prescription__pharmacy")
    return visible_or_404(request.user, queryset, pk=pk)


@staff_view
def plan_detail(request, pk: int):
    return _render_plan(request, _plan(request, pk))


@staff_view
@require_POST
def plan_action(request, pk: int, action: str):
    spec = PLAN_ACTIONS.get(action)
    if spec is None:  # an allow-list: no other name reaches a service
        raise Http404("No such action.")
    plan = _plan(request, pk)
    require(request.user, plan.clinic_id, spec.permission)
    service = getattr(services, spec.service, None)
    if service is None:
        messages.error(request, NOT_YET.format(label=spec.label))
        return redirect("clinic:plan", pk=plan.pk)
    form = spec.form(request.POST, plan=plan, today=patient_today(plan.patient), prefix=action)
    if form.is_valid():
        try:
            service(actor=request.user, plan=plan, **spec.kwargs(form.cleaned_data))
        except (services.StepUpNotAllowed, ConflictBlocked) as exc:
            _refuse(form, exc, request.user, plan.clinic_id)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, spec.done)
            return redirect("clinic:plan", pk=plan.pk)
    return _render_plan(request, _plan(request, pk), bound=form)
