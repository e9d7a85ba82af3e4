"""Routes of the patient record forms (see clinic/urls.py for ACCESS)."""

from django.http import HttpResponse
from django.urls import path

from .access import staff_view


@staff_view
def _placeholder(request):  # replaced by the new-patient form
    return HttpResponse("new patient")


ACCESS: dict[str, str] = {"patient-new": "staff"}
urlpatterns: list = [path("patients/new/", _placeholder, name="patient-new")]
