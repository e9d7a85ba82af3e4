"""The patient's check-in: from a reminder's link (no password) or from the portal (logged in)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from patients.today import patient_today

from . import calendar_feeds, hooks, invitations, selectors, services
from .forms import CheckInForm

NEW_LINK_HELP = "Ask your clinic for a new link, or log in to your patient page to check in."
JUST_SENT = "checkin-link-sent"  # the session's last check-in sent by link: its thank-you page is theirs


def _checkin_form(request, patient) -> CheckInForm:
    """The check-in form with the modules due for ``patient`` today, worked out again on every request:
    what was shown is never taken from the browser (PRO-2, PRO-3)."""
    due = selectors.checkin_modules_due(patient=patient, today=patient_today(patient))
    return CheckInForm(request.POST or None, modules=due.shown)


def _context(patient, form, **extra):
    today = patient_today(patient)
    return {"patient": patient, "form": form, "dose": hooks.dose_summary(patient, today), **extra}


def _problem(request, title: str, message: str, status: int = 410):
    return render(
        request,
        "symptoms/link_problem.html",
        {"title": title, "message": message, "help": NEW_LINK_HELP},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def checkin_by_link(request, token: str):
    invitation = invitations.find(token)
    if invitation is None or invitation.patient.deleted_at is not None:
        return _problem(request, "This link does not work", "The link is not complete or has been changed.", 404)
    signed_in = getattr(request.user, "patient_profile", None) if request.user.is_authenticated else None
    if signed_in is not None and signed_in.pk != invitation.patient_id:
        # A patient logged in on this device opened someone else's link (a shared phone, a forwarded
        # email): neither check-in nor its details are shown to the wrong person.
        return _problem(
            request, "This link is for someone else", "You are logged in as a different patient: log out first.", 404
        )
    if invitation.used_at is not None:
        # The thank-you page, with the name and tonight's dose, only to the browser that has just sent this
        # check-in, and only while the link is valid. Anyone else who opens it (a forwarded email, a shared
        # phone, the reminder opened again next week) learns only that it was used.
        if request.method == "GET" and not invitation.expired and request.session.get(JUST_SENT) == invitation.pk:
            return render(request, "symptoms/thanks.html", _context(invitation.patient, None, already=True))
        return _problem(request, "This check-in is done", "This link has already been used to check in.")
    if invitation.expired:
        return _problem(request, "This link has expired", "Check-in links work for a few days only.")
    patient = invitation.patient
    form = _checkin_form(request, patient)
    if request.method == "POST" and form.is_valid():
        try:
            services.checkin_submit(
                patient=patient,
                data=form.cleaned_data,
                side_effects=form.side_effects(),
                invitation=invitation,
                modules=form.module_answers(),
            )
        except services.AlreadyUsed:
            return _problem(request, "This check-in is done", "This link has already been used to check in.")
        request.session[JUST_SENT] = invitation.pk
        return redirect("checkin-link", token=token)  # GET on a used link: the thank-you page, for this browser
    return render(request, "symptoms/checkin_form.html", _context(patient, form, for_date=invitation.for_date))


def _patient_of(request):
    patient = getattr(request.user, "patient_profile", None)
    if patient is None or patient.deleted_at is not None:
        raise Http404("This page is for patients.")
    return patient


@never_cache
@login_required(login_url="portal-login")
@require_http_methods(["GET", "POST"])
def portal_checkin(request):
    patient = _patient_of(request)
    form = _checkin_form(request, patient)
    if request.method == "POST" and form.is_valid():
        services.checkin_submit(
            patient=patient, data=form.cleaned_data, side_effects=form.side_effects(), modules=form.module_answers()
        )
        return redirect("portal-thanks")
    return render(request, "symptoms/checkin_form.html", _context(patient, form))


@never_cache
@login_required(login_url="portal-login")
def portal_thanks(request):
    return render(request, "symptoms/thanks.html", _context(_patient_of(request), None))


@never_cache
@login_required(login_url="portal-login")
def portal_home(request):
    patient = _patient_of(request)
    recent = list(patient.checkins.order_by("-recorded_at")[:26])
    today = patient_today(patient)
    plan = hooks.calendar(patient, today)
    doses = sorted(plan["doses"])
    chart = []
    for checkin in reversed(recent):  # oldest first, each with the dose taken that day
        day = checkin.recorded_at.astimezone(patient.zone).date()
        dose = next((float(mg) for start, mg in reversed(doses) if start <= day), None)
        chart.append(
            {
                "date": day.isoformat(),
                "pain": checkin.pain,
                "fatigue": checkin.fatigue,
                "sleep": checkin.sleep_quality,
                "mood": checkin.mood,
                "dose_mg": dose,
            }
        )
    next_checkin = next((d for d, text in plan["events"] if "check-in" in text), None)
    context = _context(patient, None, recent=recent[:12], chart=chart, next_checkin=next_checkin)
    return render(request, "symptoms/portal_home.html", context)


@login_required(login_url="portal-login")
def portal_calendar(request):
    """The titration calendar as an iCalendar file for the patient's phone (RFC 5545)."""
    patient = _patient_of(request)
    body = calendar_feeds.calendar_ics(patient, today=patient_today(patient))
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-ldn.ics"'
    return response
