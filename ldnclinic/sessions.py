"""Sessions that end: ``SESSION_IDLE_MINUTES`` (30) after the last request, and ``SESSION_MAX_HOURS`` (8)
after logging in, whichever comes first, for staff and patients alike. Django gives a new session id at
login and ends a user's other sessions when their password changes (the session holds a hash of it)
or when they are deactivated (an inactive user is never authenticated); here a password change or a
deactivation also deletes the user's API tokens, which would otherwise outlive both.
"""

import time
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, get_user_model, logout
from django.http import HttpResponseRedirect, JsonResponse
from django_htmx.http import HttpResponseClientRedirect

LOGIN_AT, SEEN_AT = "ldn_login_at", "ldn_seen_at"
TOUCH_SECONDS = 60  # the last request's time is saved at most once a minute, not on every request
ENDED = "Your session ended after a time without activity, or after a long day: log in again."


def logged_in(sender, request, user, **kwargs) -> None:
    """user_logged_in: the session's clock starts."""
    if getattr(request, "session", None) is not None:
        now = int(time.time())
        request.session[LOGIN_AT] = request.session[SEEN_AT] = now


def _login_url(path: str) -> str:
    if path.startswith("/admin/"):
        return "/admin/login/"
    if path.startswith(("/me/", "/c/")):
        return "/me/login/"
    return "/clinic/login/"


def _ended(now: int, login_at: int, seen_at: int) -> bool:
    idle = now - seen_at > settings.SESSION_IDLE_MINUTES * 60
    return idle or now - login_at > settings.SESSION_MAX_HOURS * 3600


class SessionLimitsMiddleware:
    """After AuthenticationMiddleware: a session past either limit is ended before the view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session and request.user.is_authenticated:
            now = int(time.time())
            login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
            if login_at is None or seen_at is None:  # a session from before these limits: they start now
                session[LOGIN_AT] = session[SEEN_AT] = now
            elif _ended(now, login_at, seen_at):
                logout(request)
                return self._ended(request)
            elif now - seen_at >= TOUCH_SECONDS:
                session[SEEN_AT] = now
        return self.get_response(request)

    def _ended(self, request):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": ENDED}, status=401)
        messages.info(request, ENDED)
        target = f"{_login_url(request.path)}?next={quote(request.get_full_path())}"
        if request.headers.get("HX-Request") == "true":  # before django-htmx's middleware has run
            return HttpResponseClientRedirect(target)  # the whole page goes to the login, not a fragment of it
        return HttpResponseRedirect(target)


def user_saving(sender, instance, raw: bool = False, **kwargs) -> None:
    """pre_save of the user model: note whether the password or the active flag changes."""
    if raw or instance.pk is None:
        return
    before = get_user_model()._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    instance._ends_tokens = before is not None and (
        before["password"] != instance.password or (before["is_active"] and not instance.is_active)
    )


def user_saved(sender, instance, raw: bool = False, **kwargs) -> None:
    """post_save: a new password or a deactivation ends the user's API tokens."""
    if getattr(instance, "_ends_tokens", False):
        from rest_framework.authtoken.models import Token

        Token.objects.filter(user=instance).delete()
        instance._ends_tokens = False
