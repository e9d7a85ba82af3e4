"""Routes of the clinic pages' titration area: prescriptions, their print and PDF, plans and their actions
(see clinic/urls.py for ACCESS)."""

from django.urls import path

from . import views_titration as views

ACCESS: dict[str, str] = {
    "prescription-new": "staff_object",
    "prescription-supply": "staff_object",  # the live days-supply partial (htmx, GET)
    "prescription": "staff_object",  # also takes the activate / complete / cancel POSTs
    "prescription-print": "staff_object",
    "prescription-pdf": "staff_object",
    "plan-new": "staff_object",
    "plan": "staff_object",
    "plan-action": "staff_post",
}

urlpatterns = [
    path("patients/<int:pk>/prescriptions/new/", views.prescription_new, name="prescription-new"),
    path("patients/<int:pk>/prescriptions/supply/", views.prescription_supply, name="prescription-supply"),
    path("prescriptions/<int:pk>/", views.prescription_detail, name="prescription"),
    path("prescriptions/<int:pk>/print/", views.prescription_print, name="prescription-print"),
    path("prescriptions/<int:pk>/print.pdf", views.prescription_pdf_view, name="prescription-pdf"),
    path("patients/<int:pk>/plans/new/", views.plan_new, name="plan-new"),
    path("plans/<int:pk>/", views.plan_detail, name="plan"),
    path("plans/<int:pk>/<str:action>/", views.plan_action, name="plan-action"),
]
