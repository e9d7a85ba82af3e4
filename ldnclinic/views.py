from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache

from . import scoping
from .tasks import HEARTBEAT_CACHE_KEY


def home(request: HttpRequest) -> HttpResponse:
    """Patients to their page; everyone else to the clinic worklist (which asks staff to log in)."""
    if scoping.patient_id_of(request.user) is not None:
        return redirect("portal-home")
    return redirect("clinic:worklist")


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and compose: the database answers; when beat last ticked."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - report any failure, never raise from a health check
        database = f"error: {type(exc).__name__}"
    tick = cache.get(HEARTBEAT_CACHE_KEY)
    status = 200 if database == "ok" else 503
    return JsonResponse({"database": database, "last_beat": tick["at"] if tick else None}, status=status)
