from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TitrationConfig(AppConfig):
    name = "titration"
    verbose_name = "Prescriptions and titration"

    def ready(self) -> None:
        from symptoms.hooks import register_calendar_provider, register_dose_provider, register_treatment_provider

        # signals: plan changes reschedule reminders in their transaction; credential_admin registers
        # PrescriberCredential (titration/admin.py is the clinical admin, kept by another area).
        from . import content, credential_admin, signals  # noqa: F401

        post_migrate.connect(_rebuild_outlooks, sender=self, dispatch_uid="outlook-after-migrate")
        register_dose_provider(content.dose_summary)
        register_calendar_provider(content.calendar)
        register_treatment_provider(content.treatment_dates)


def _rebuild_outlooks(sender, using: str = "default", **kwargs) -> None:
    """After each migrate (a deploy, a new machine): the worklist's stored plan outlooks, so an upgrade or a
    restored dump never shows an empty "steps due" until the nightly rebuild."""
    from . import outlook

    outlook.rebuild()
