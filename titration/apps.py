from django.apps import AppConfig


class TitrationConfig(AppConfig):
    name = "titration"
    verbose_name = "Prescriptions and titration"
