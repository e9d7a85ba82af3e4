from django.urls import path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("patients", api.PatientViewSet, basename="patient")

urlpatterns = [
    path("medications/check/", api.MedicationCheckView.as_view(), name="medication-check"),
    *router.urls,
]
