"""Login lockout, with django-axes: a username is locked after ``LOGIN_FAILURE_LIMIT`` wrong passwords
from any address (axes), and a client address after ``LOGIN_ADDRESS_FAILURE_LIMIT`` wrong passwords for
any usernames (here: password spraying, one guess at many accounts, is stopped too). The address limit is
higher, because one office or one mobile network can be many people. Both last ``LOGIN_LOCKOUT_MINUTES``
and answer with the same lockout page (429), on every login: clinic, portal, admin and API token.

The client address is ``client_ip``: behind ``TRUSTED_PROXIES`` reverse proxies that each append the
address they saw to X-Forwarded-For, the one the nearest of them saw; addresses further left were
written by the client and are not believed. Without the setting the proxy's own address would stand for
every client, and one person's wrong passwords would lock everyone out.
"""

import ipaddress

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from . import throttle

SCOPE = "login-failures-by-address"


def client_ip(request) -> str | None:
    """axes' AXES_CLIENT_IP_CALLABLE."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    chain = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(chain) < proxies:  # it did not come through every proxy: what is nearest is the client
        return remote
    candidate = chain[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _window() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def address_locked(request) -> bool:
    address = client_ip(request)
    if not address:
        return False
    return throttle.count(SCOPE, address) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT


def login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    """user_login_failed: one more wrong password from this address."""
    if request is not None and (address := client_ip(request)):
        throttle.hit(SCOPE, address, limit=settings.LOGIN_ADDRESS_FAILURE_LIMIT, seconds=_window())


def locked(request, username: str | None) -> bool:
    """Whether a login from this request, for this username, would be refused by either lockout."""
    if not settings.AXES_ENABLED:
        return False
    return address_locked(request) or not AxesProxyHandler.is_allowed(request, {"username": username})


class LockedTokenView(ObtainAuthToken):
    """The API's password-for-token exchange: a locked account or address gets 429 and says so, rather
    than the "unable to log in" a wrong password gets."""

    def post(self, request, *args, **kwargs):
        if locked(request, request.data.get("username")):
            minutes = _window() // 60
            detail = f"Too many failed logins for this account or from this address: try again in {minutes} minutes."
            return Response({"detail": detail}, status=429, headers={"Retry-After": str(_window())})
        return super().post(request, *args, **kwargs)


class LockoutBackend(AxesStandaloneBackend):
    """axes' first backend, refusing an address past its limit the way axes refuses a locked username."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if settings.AXES_ENABLED and request is not None and address_locked(request):
            request.axes_locked_out = True  # axes' middleware answers with the lockout page
            raise AxesBackendPermissionDenied("too many failed logins from this address")
        return super().authenticate(request, username=username, password=password, **kwargs)
