"""Routes of the worklist and the patient list (see clinic/urls.py for ACCESS)."""

from django.http import HttpResponse
from django.urls import path

from .access import staff_view


@staff_view
def _placeholder(request):  # replaced by the worklist and patient list views
    return HttpResponse("worklist")


ACCESS: dict[str, str] = {"worklist": "staff", "patients": "staff"}
urlpatterns: list = [
    path("", _placeholder, name="worklist"),
    path("patients/", _placeholder, name="patients"),
]
