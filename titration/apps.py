from django.apps import AppConfig


class TitrationConfig(AppConfig):
    name = "titration"
    verbose_name = "Prescriptions and titration"

    def ready(self) -> None:
        from symptoms.hooks import register_calendar_provider, register_dose_provider, register_treatment_provider

        # signals: plan changes reschedule reminders in their transaction; credential_admin registers
        # PrescriberCredential (titration/admin.py is the clinical admin, kept by another area).
        from . import content, credential_admin, signals  # noqa: F401

        register_dose_provider(content.dose_summary)
        register_calendar_provider(content.calendar)
        register_treatment_provider(content.treatment_dates)
