"""The worklist (the staff home page), the patient list, and the worklist's two buttons: "Mark
reviewed" for side effects and "Assign to me" for tasks. Reads come from clinic/worklist.py and
clinic/patient_list.py; the buttons call one service each."""

from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from ldnclinic import scoping, stamps
from patients import task_services
from patients.flag_models import ClinicianTask
from patients.models import Patient
from symptoms import services as symptom_services

from . import patient_list
from .access import staff_view, visible_or_404
from .worklist import ASSIGNEES, EVERYONE, KIND_LABELS, KINDS, PAGE_SIZE, worklist_page

# The drawing of the rows is kept (clinic.worklist.worklist_page): a kept one of another template is never shown.
PAGE_CODE = stamps.code_digest(Path(settings.BASE_DIR) / "templates" / "clinic" / "worklist.html")


class WorklistFilterForm(forms.Form):
    kind = forms.ChoiceField(label="Show", required=False, choices=[("", "Everything"), *KINDS])
    assignee = forms.ChoiceField(label="Tasks of", required=False, choices=ASSIGNEES)


def _worklist_filters(request) -> tuple[str, str]:
    """The filters asked for; an unknown value is ignored (everything, everyone), never an error."""
    kind = request.GET.get("kind", "")
    assignee = request.GET.get("assignee", EVERYONE)
    return (kind if kind in KIND_LABELS else ""), (assignee if assignee in dict(ASSIGNEES) else EVERYONE)


def _page(request) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@staff_view
@require_GET
def worklist(request):
    kind, assignee = _worklist_filters(request)
    page = _page(request) if kind else 1
    here = reverse("clinic:worklist")  # where the rows' buttons come back to, from the filters as read
    if kind or assignee != EVERYONE:
        here += "?" + urlencode(
            {**({"kind": kind} if kind else {}), "assignee": assignee, **({"page": page} if kind else {})}
        )
    get_token(request)  # the form token's secret exists before the drawing that holds its tokens is kept

    def context_of(found) -> dict:
        queries = {key: urlencode({"kind": key, "assignee": assignee}) for key, _, _ in found.counts}
        for section in found.sections:
            section.query = queries[section.key]
        return {
            "nav": "worklist",
            "form": WorklistFilterForm(initial={"kind": kind, "assignee": assignee}),
            "worklist": found,
            "counts": [
                {"kind": key, "label": label, "count": count, "query": queries[key]}
                for key, label, count in found.counts
            ],
            "kind_query": queries.get(kind, ""),
            "page_size": PAGE_SIZE,
            "all_query": urlencode({"assignee": assignee}),
            "kind": kind,
            "assignee": assignee,
            "here": here,
        }

    found, results = worklist_page(
        user=request.user,
        kind=kind,
        assignee=assignee,
        page=page,
        render=lambda found: render_to_string("clinic/worklist.html#results", context_of(found), request),
        key=(PAGE_CODE, request.META.get("CSRF_COOKIE", ""), here),
    )
    if request.htmx:
        return HttpResponse(results)
    return render(request, "clinic/worklist.html", {**context_of(found), "results": results})


def _back(request):
    """Back to the page the button was on (its filters kept), never to another site."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False)
    return redirect(target if safe and target.startswith("/clinic/") else "clinic:worklist")


def _say(request, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@staff_view
@require_POST
def side_effects_reviewed(request, pk: int):
    patient = visible_or_404(request.user, Patient.objects.all(), pk=pk)
    try:
        up_to = parse_datetime(request.POST.get("up_to", ""))
    except ValueError:
        up_to = None
    try:
        symptom_services.side_effects_mark_reviewed(actor=request.user, patient=patient, up_to=up_to)
    except ValidationError as exc:
        _say(request, exc)
    else:
        messages.success(request, f"Side effects reported by {patient.full_name} marked reviewed.")
    return _back(request)


@staff_view
@require_POST
def task_assign(request, pk: int):
    task = visible_or_404(request.user, ClinicianTask.objects.select_related("patient"), pk=pk)
    to = request.POST.get("to")
    if to not in ("me", "nobody"):
        messages.error(request, "Say who takes the task: you, or nobody.")
        return _back(request)
    try:
        task_services.task_assign(actor=request.user, task=task, assignee=request.user if to == "me" else None)
    except ValidationError as exc:
        _say(request, exc)
    else:
        done = "is yours now" if to == "me" else "is nobody's now"
        messages.success(request, f"“{task.title}” ({task.patient.full_name}) {done}.")
    return _back(request)


def _query(request, **changes) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    for key, value in changes.items():
        params[key] = value
    return params.urlencode()


@staff_view
@require_GET
def patients(request):
    form = patient_list.PatientSearchForm(request.GET)
    form.is_valid()  # a field that does not validate shows its error and is left out of the search
    data = form.cleaned_data
    sort = patient_list.sort_key(request.GET.get("sort"))
    page, rows = patient_list.patient_page(user=request.user, data=data, sort=sort, page=request.GET.get("page"))
    columns = []
    for key, (label, _) in patient_list.SORTS.items():
        current = sort.removeprefix("-") == key
        descending = sort.startswith("-")
        columns.append(
            {
                "key": key,
                "label": label,
                "query": _query(request, sort=f"-{key}" if current and not descending else key),
                "aria_sort": ("descending" if descending else "ascending") if current else "",
            }
        )
    context = {
        "nav": "patients",
        "form": form,
        "page": page,
        "rows": rows,
        "columns": {c["key"]: c for c in columns},
        "sort": sort,
        "page_query": _query(request),
        "multi_clinic": request.user.is_superuser or len(scoping.staff_clinic_ids(request.user)) > 1,
        "searched": any(data.get(k) for k in ("q", "dob", "status", "condition", "stage")),
    }
    template = "clinic/patient_list.html#results" if request.htmx else "clinic/patient_list.html"
    return render(request, template, context)
