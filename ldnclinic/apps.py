from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class LdnclinicConfig(AppConfig):
    name = "ldnclinic"
    verbose_name = "ldnclinic"

    def ready(self) -> None:
        from . import stamps

        # Every model: a written row with a clinic renews that clinic's change stamp (ldnclinic/stamps.py).
        post_save.connect(stamps.row_written, dispatch_uid="stamps-save")
        post_delete.connect(stamps.row_written, dispatch_uid="stamps-delete")
