"""The patient's own account: setting, resetting and changing the password, and the calendar link.

Password pages are Django's auth views with patient templates, restricted to patient logins
(``accounts.patient_logins``): a reset asked for a staff address, or an unknown one, sends nothing
and shows the same "if an account exists" page, and a set-password link for a staff login does not
open. The calendar subscription (``calendar_feeds``) is made, replaced and stopped here.
"""

import logging
import unicodedata

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from ldnclinic import throttle
from patients.today import patient_today

from . import accounts, calendar_feeds

logger = logging.getLogger(__name__)

FEED_LINK_SESSION_KEY = "ldn_calendar_feed_token"


def _normal_email(address: str) -> str:
    return unicodedata.normalize("NFKC", address).casefold()


def _same_email(a: str, b: str) -> bool:
    return _normal_email(a) == _normal_email(b)


class PatientPasswordResetForm(auth_forms.PasswordResetForm):
    def get_users(self, email):
        # Unlike Django's default, a login that has no password yet is included: that is an invited
        # patient whose invitation link expired, and this is how they get a fresh one.
        return (u for u in accounts.patient_logins().filter(email__iexact=email) if _same_email(email, u.email))


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PatientPasswordResetForm
    template_name = "symptoms/password_reset_form.html"
    subject_template_name = "symptoms/email/password_reset_subject.txt"
    email_template_name = "symptoms/email/password_reset.txt"
    success_url = reverse_lazy("portal-password-reset-done")
    title = "Forgot your password?"

    @property
    def extra_email_context(self):
        # Links are built from SITE_URL, never from the request's Host header.
        return {"site_url": settings.SITE_URL, "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)}

    def form_valid(self, form):
        """At most PASSWORD_RESETS_PER_CLIENT requests an hour from one client (past that, a plain
        "try again later" page) and PASSWORD_RESETS_PER_ADDRESS emails an hour to one address (past
        that, the usual "check your email" page and no email, so the answer never tells whether an
        account exists)."""
        client = get_client_ip_address(self.request) or "unknown"
        by_client = throttle.hit("reset-client", client, limit=settings.PASSWORD_RESETS_PER_CLIENT, seconds=3600)
        if not by_client.allowed:
            context = {"title": "Too many requests", "minutes": by_client.retry_minutes}
            response = render(self.request, "symptoms/password_reset_throttled.html", context, status=429)
            response["Retry-After"] = str(by_client.retry_after)
            return response
        limit = settings.PASSWORD_RESETS_PER_ADDRESS
        if not throttle.hit(
            "reset-address", _normal_email(form.cleaned_data["email"]), limit=limit, seconds=3600
        ).allowed:
            logger.warning("password reset email not sent: over %s an hour for one address", limit)
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "symptoms/password_reset_done.html"
    title = "Check your email"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "symptoms/password_reset_confirm.html"
    success_url = reverse_lazy("portal-password-reset-complete")
    title = "Choose your password"

    def get_user(self, uidb64):
        try:
            pk = int(urlsafe_base64_decode(uidb64).decode())
        except (TypeError, ValueError, OverflowError, ValidationError, UnicodeDecodeError):
            return None
        return accounts.patient_logins().filter(pk=pk).first()

    def render_to_response(self, context, **response_kwargs):
        if not context.get("validlink"):  # used, expired, altered, or not a patient's link
            response_kwargs.setdefault("status", 404)
        return super().render_to_response(context, **response_kwargs)


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "symptoms/password_reset_complete.html"
    title = "Your password is set"


def _patient_login_only(view):
    def wrapped(request, *args, **kwargs):
        _patient_of(request)
        return view(request, *args, **kwargs)

    return wrapped


@method_decorator(login_required(login_url="portal-login"), name="dispatch")
@method_decorator(_patient_login_only, name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "symptoms/password_change_form.html"
    success_url = reverse_lazy("portal-password-change-done")
    title = "Change your password"


@method_decorator(login_required(login_url="portal-login"), name="dispatch")
@method_decorator(_patient_login_only, name="dispatch")
class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "symptoms/password_change_done.html"
    title = "Password changed"


# --- Calendar subscription -----------------------------------------------------------------------


def _patient_of(request):
    patient = getattr(request.user, "patient_profile", None)
    if patient is None or patient.deleted_at is not None or request.user.is_staff or request.user.is_superuser:
        raise Http404("This page is for patients.")
    return patient


def feed_urls(token: str) -> dict:
    https = f"{settings.SITE_URL}{reverse('portal-calendar-feed', kwargs={'token': token})}"
    return {"https": https, "webcal": "webcal://" + https.split("://", 1)[1]}


@never_cache
@login_required(login_url="portal-login")
@require_http_methods(["GET", "POST"])
def calendar_link(request):
    """POST makes a new subscription link (the old one stops working) and shows it once (GET after)."""
    patient = _patient_of(request)
    if request.method == "POST":
        _, token = calendar_feeds.calendar_feed_create(actor=request.user, patient=patient)
        request.session[FEED_LINK_SESSION_KEY] = token  # shown on the next page, then forgotten
        return redirect("portal-calendar-link")
    token = request.session.pop(FEED_LINK_SESSION_KEY, None)
    live = calendar_feeds.CalendarFeed.objects.filter(patient=patient).live().first()
    if token is not None and (live is None or live.token_hash != calendar_feeds.token_hash(token)):
        token = None  # stopped or replaced since (another tab)
    context = {"patient": patient, "feed": live, "urls": feed_urls(token) if token else None}
    return render(request, "symptoms/calendar_link.html", context)


@never_cache
@login_required(login_url="portal-login")
@require_POST
def calendar_stop(request):
    patient = _patient_of(request)
    request.session.pop(FEED_LINK_SESSION_KEY, None)
    if calendar_feeds.calendar_feed_revoke(actor=request.user, patient=patient):
        messages.success(request, "Your calendar link no longer works. Your phone will stop showing new LDN dates.")
    return redirect("portal-home")


def _no_feed() -> HttpResponse:
    response = HttpResponseNotFound("Not found.\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "HEAD"])
def calendar_feed(request, token: str):
    """The subscription a phone calendar polls, without a session: the same events as the download."""
    feed = calendar_feeds.feed_for(token)
    if feed is None:
        return _no_feed()
    patient = feed.patient
    body = calendar_feeds.calendar_ics(patient, today=patient_today(patient), refresh=calendar_feeds.FEED_REFRESH)
    calendar_feeds.mark_fetched(feed)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="my-ldn.ics"'
    response["Cache-Control"] = "private, no-store"  # never kept by a proxy or shared cache
    response["X-Robots-Tag"] = "noindex"
    return response
