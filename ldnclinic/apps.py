from django.apps import AppConfig


class LdnclinicConfig(AppConfig):
    name = "ldnclinic"
    verbose_name = "ldnclinic"
