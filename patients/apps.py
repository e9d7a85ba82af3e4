from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients and clinics"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - registers the medication check
