"""Routes of the worklist and the patient list (see clinic/urls.py for ACCESS)."""

from django.urls import path

from . import views_worklist as views

ACCESS: dict[str, str] = {
    "worklist": "staff",
    "patients": "staff",
    "side-effects-reviewed": "staff_post",
    "task-assign": "staff_post",
}
urlpatterns: list = [
    path("", views.worklist, name="worklist"),
    path("patients/", views.patients, name="patients"),
    path("patients/<int:pk>/side-effects/reviewed/", views.side_effects_reviewed, name="side-effects-reviewed"),
    path("tasks/<int:pk>/assign/", views.task_assign, name="task-assign"),
]
