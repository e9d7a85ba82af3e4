from django.apps import AppConfig


class ClinicConfig(AppConfig):
    """The clinicians' pages: worklist, patient chart and actions. The top of the stack: it imports the
    domain apps' services and selectors; nothing imports it."""

    name = "clinic"
    verbose_name = "Clinic workspace"
