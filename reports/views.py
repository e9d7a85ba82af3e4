"""Reports for a clinic's staff: an index page, the clinic report (counts only) and CSV exports. Reads only;
every export and every clinic report is logged.

Who may export: every active staff role of the clinic (prescriber, nurse, clinic admin). The role
matrix (ldnclinic.admin, tests/test_roles.py) already lets each of them view every clinical record
of their clinic, and nurses write patients and check-ins and work the safety worklist, so an export
shows no one anything they cannot already open; the export log records who took what. Patient
logins, staff logins without an active membership and superusers without one are refused (403);
anonymous callers go to the login page, as everywhere in the admin.
"""

import datetime as dt
import functools
import logging
import re

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ldnclinic.admin import CLINIC_ADMIN, NURSE, PRESCRIBER, user_roles
from patients.today import clinic_today, zone_today

from . import csvfile, selectors, summary, summary_tables
from .exports import EXPORTS, Export
from .periods import InvalidPeriod, period

audit = logging.getLogger("ldnclinic.audit")

EXPORT_ROLES = frozenset({PRESCRIBER, NURSE, CLINIC_ADMIN})


def export_access(view):
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not user.is_active or not (user_roles(user) & EXPORT_ROLES):
            raise PermissionDenied("Reports are for the clinic's staff.")
        return view(request, *args, **kwargs)

    return wrapped


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(request, template, {**admin.site.each_context(request), **context}, status=status)


@never_cache
@require_GET
@export_access
def index(request: HttpRequest) -> HttpResponse:
    clinics = list(selectors.clinic_list(user=request.user))
    return _page(request, "reports/index.html", {"title": "Reports", "clinics": clinics, "exports": EXPORTS.values()})


SUMMARY_TITLE = "Clinic report"


def _today(clinics) -> dt.date:
    """Today in the (first) clinic's time zone, as the export file names have it."""
    return clinic_today(clinics[0]) if clinics else zone_today(dt.UTC)  # no clinic, no rows: UTC


@never_cache
@require_GET
@export_access
def summary_page(request: HttpRequest) -> HttpResponse:
    """Cohort, outcome and safety counts for each of the user's clinics over a period: no names, no rows."""
    try:
        start, end = period(request.GET)
    except InvalidPeriod as exc:
        context = {
            "title": "The dates are not valid",
            "errors": exc.messages,
            "export": {"title": SUMMARY_TITLE},
            "back_url": reverse("reports:summary"),
        }
        return _page(request, "reports/bad_request.html", context, status=400)
    clinics = list(selectors.clinic_list(user=request.user))
    today = _today(clinics)
    start, end = summary.report_period(start, end, today)
    reports = summary.clinic_reports(user=request.user, clinics=clinics, start=start, end=end, today=today)
    audit.info(
        "report summary by user %s (id %s): clinics %s, from %s to %s",
        request.user.get_username(),
        request.user.pk,
        ",".join(c.slug for c in clinics),
        start or "-",
        end,
        extra={"report": "summary", "user_id": request.user.pk, "clinics": [c.slug for c in clinics]},
    )
    sections = [
        {
            "clinic": report.clinic,
            "cohort": summary_tables.cohort_tables(report),
            "outcomes": summary_tables.outcome_tables(report),
            "safety": summary_tables.safety_tables(report),
        }
        for report in reports
    ]
    context = {
        "title": SUMMARY_TITLE,
        "start": start,
        "end": end,
        "as_of": min(end, today),
        "today": today,
        "default_days": summary.DEFAULT_DAYS,
        "min_denominator": summary_tables.MIN_DENOMINATOR,
        "reports": reports,
        "sections": sections,
    }
    return _page(request, "reports/summary.html", context)


def _filename(export: Export, slugs: list[str], today) -> str:
    clinic = "+".join(re.sub(r"[^A-Za-z0-9_-]", "", s) for s in slugs)[:120] or "clinic"
    return f"ldn-{export.key}-{clinic}-{today:%Y-%m-%d}.csv"


class _Audited:
    """The rows of an export, counted; when the stream ends (finished, failed or abandoned, even
    before its first row), one log line says who took which export and how many rows went out."""

    def __init__(self, rows, *, user, export: Export, slugs: list[str], start, end):
        self.rows, self.user, self.export = iter(rows), user, export
        self.slugs, self.start, self.end = slugs, start, end
        self.count, self.logged = 0, False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            row = next(self.rows)
        except StopIteration:
            self._log(complete=True)
            raise
        self.count += 1
        return row

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()
        self._log(complete=False)

    def _log(self, *, complete: bool) -> None:
        if self.logged:
            return
        self.logged = True
        audit.info(
            "report export %s by user %s (id %s): clinics %s, from %s to %s, %d rows%s",
            self.export.key,
            self.user.get_username(),
            self.user.pk,
            ",".join(self.slugs),
            self.start or "-",
            self.end or "-",
            self.count,
            "" if complete else " (incomplete: the download stopped)",
            extra={
                "export": self.export.key,
                "user_id": self.user.pk,
                "clinics": self.slugs,
                "rows": self.count,
                "complete": complete,
                "at": timezone.now().isoformat(),
            },
        )


@never_cache
@require_GET
@export_access
def export_csv(request: HttpRequest, key: str) -> HttpResponse:
    export = EXPORTS.get(key)
    if export is None:
        raise Http404("No such report.")
    start = end = None
    if export.dated:
        try:
            start, end = period(request.GET)
        except InvalidPeriod as exc:
            context = {"title": "The dates are not valid", "errors": exc.messages, "export": export}
            return _page(request, "reports/bad_request.html", context, status=400)
    clinics = list(selectors.clinic_list(user=request.user))
    slugs = [c.slug for c in clinics]
    today = _today(clinics)
    rows = export.rows(request.user, {c.pk: c.slug for c in clinics}, start, end)
    body = _Audited(rows, user=request.user, export=export, slugs=slugs, start=start, end=end)
    return csvfile.response(_filename(export, slugs, today), export.header, body)
