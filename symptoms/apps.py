from django.apps import AppConfig


class SymptomsConfig(AppConfig):
    name = "symptoms"
    verbose_name = "Symptom check-ins"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - the opioid answer reaches the medication list
        from .account_admin import install

        install()  # "Invite to patient portal" on PatientAdmin (patients cannot import symptoms)
