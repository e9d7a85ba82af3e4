from django.apps import AppConfig


class TitrationConfig(AppConfig):
    name = "titration"
    verbose_name = "Prescriptions and titration"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - plan changes reschedule reminders in their transaction
