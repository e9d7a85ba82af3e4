"""Routes of the patient record forms (see clinic/urls.py for ACCESS)."""

from django.urls import path

from . import views_invite
from . import views_record as views

ACCESS: dict[str, str] = {
    "patient-new": "staff",
    "patient-edit": "staff_object",
    "condition-add": "staff_post",
    "condition-archive": "staff_post",
    "medication-add": "staff_object",
    "medication-check": "staff",
    "medication-edit": "staff_object",
    "medication-archive": "staff_post",
    "lab-add": "staff_object",
    "reminder-preferences": "staff_object",
    "patient-status": "staff_object",
    "flag": "staff_object",
    "task": "staff_object",
    "portal-invite": "staff_post",
}
urlpatterns: list = [
    path("patients/new/", views.patient_new, name="patient-new"),
    path("patients/<int:pk>/edit/", views.patient_edit, name="patient-edit"),
    path("patients/<int:pk>/conditions/new/", views.condition_add, name="condition-add"),
    path("conditions/<int:pk>/archive/", views.condition_archive, name="condition-archive"),
    path("patients/<int:pk>/medications/new/", views.medication_add, name="medication-add"),
    path("medications/check/", views.medication_check, name="medication-check"),
    path("medications/<int:pk>/edit/", views.medication_edit, name="medication-edit"),
    path("medications/<int:pk>/archive/", views.medication_archive, name="medication-archive"),
    path("patients/<int:pk>/labs/new/", views.lab_add, name="lab-add"),
    path("patients/<int:pk>/reminders/", views.reminder_preferences, name="reminder-preferences"),
    path("patients/<int:pk>/status/", views.patient_status, name="patient-status"),
    path("flags/<int:pk>/", views.flag, name="flag"),
    path("tasks/<int:pk>/", views.task, name="task"),
    path("patients/<int:pk>/portal-invite/", views_invite.portal_invite, name="portal-invite"),
]
