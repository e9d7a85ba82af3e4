from django.apps import AppConfig


class TitrationConfig(AppConfig):
    name = "titration"
    verbose_name = "Prescriptions and titration"

    def ready(self) -> None:
        from symptoms.hooks import register_calendar_provider, register_dose_provider, register_treatment_provider

        from . import content, signals  # noqa: F401 - plan changes reschedule reminders in their transaction

        register_dose_provider(content.dose_summary)
        register_calendar_provider(content.calendar)
        register_treatment_provider(content.treatment_dates)
