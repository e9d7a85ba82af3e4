"""Routes of the clinic pages' chart area (see clinic/urls.py for ACCESS)."""

from django.urls import path

from . import views_chart

ACCESS: dict[str, str] = {
    "patient": "staff_object",
    "patient-timeline": "staff_object",
    "wallet-card": "staff_object",
}
urlpatterns: list = [
    path("patients/<int:pk>/", views_chart.patient_chart, name="patient"),
    path("patients/<int:pk>/timeline/", views_chart.patient_timeline, name="patient-timeline"),
    path("patients/<int:pk>/wallet-card/", views_chart.wallet_card, name="wallet-card"),
]
