"""The patient chart: the banner, the cards below it, the timeline's older windows and the wallet card.

Reads only: every number comes from clinic/chart.py and clinic/chart_timeline.py; the actions the chart
links to live in the other areas' views, each calling its service.
"""

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache

from ldnclinic import stamps
from patients import services as patient_services

from . import chart, chart_timeline, chart_timeline_sql
from .access import require, staff_view, visible_or_404


def _patient(request, pk: int):
    patient = visible_or_404(request.user, chart.chart_patients(), pk=pk)
    require(request.user, patient.clinic_id, "view")
    return patient


# What a kept chart was drawn by: a chart kept by other code or templates is never shown.
CHART_CODE = stamps.code_digest(
    chart,
    chart_timeline,
    chart_timeline_sql,
    *sorted((Path(settings.BASE_DIR) / "templates/clinic/chart").glob("*.html")),
)
CACHE_SECONDS = 120  # a kept chart outlives no write to its clinic, and no more than this


@never_cache
@staff_view
def patient_chart(request, pk: int):
    """The chart, drawn once and kept until a row of the patient's clinic is written (ldnclinic.stamps) or
    the patient's day changes: for this user, whose role chooses the actions it offers."""
    patient = _patient(request, pk)
    today = patient_services.patient_today(patient)

    def draw() -> dict:
        data = chart.patient_chart(patient=patient, user=request.user)
        context = {
            "chart": data,
            "patient": patient,
            "timeline": chart_timeline.timeline(patient, today=data.today),
            "nav": "patients",
        }
        page = "clinic/chart/patient.html"
        return {
            "title": f"{data.banner.name} ({data.banner.mrn})",
            "body": render_to_string(f"{page}#body", context, request),
            "scripts": render_to_string(f"{page}#scripts", context, request),
        }

    parts = (CHART_CODE, patient.pk, request.user.pk, today.isoformat())
    drawn = stamps.cached("chart", [patient.clinic_id], parts, draw, CACHE_SECONDS)
    return render(request, "clinic/chart/patient.html", {"patient": patient, "nav": "patients", **drawn})


def _before(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@never_cache
@staff_view
def patient_timeline(request, pk: int):
    """An older window of the timeline: rows for htmx to append, or a page of its own without it."""
    patient = _patient(request, pk)
    today = patient_services.patient_today(patient)
    window = chart_timeline.timeline(patient, today=today, before=_before(request.GET.get("before", "")))
    context = {"patient": patient, "timeline": window, "nav": "patients"}
    if request.htmx:
        return render(request, "clinic/chart/timeline.html#entries", context)
    return render(request, "clinic/chart/timeline.html", context)


@never_cache
@staff_view
def wallet_card(request, pk: int):
    patient = _patient(request, pk)
    return render(request, "clinic/chart/wallet_card.html", {"patient": patient, "card": chart.wallet_card(patient)})
