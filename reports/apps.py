from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Admin reporting: reads every app below it, writes nothing (no models, no migrations)."""

    name = "reports"
    verbose_name = "Reports"
