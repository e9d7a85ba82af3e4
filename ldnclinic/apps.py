from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_delete, post_save, pre_save


class LdnclinicConfig(AppConfig):
    name = "ldnclinic"
    verbose_name = "ldnclinic"

    def ready(self) -> None:
        from . import lockout, sessions, stamps

        # Every model: a written row with a clinic renews that clinic's change stamp (ldnclinic/stamps.py).
        post_save.connect(stamps.row_written, dispatch_uid="stamps-save")
        post_delete.connect(stamps.row_written, dispatch_uid="stamps-delete")
        user_logged_in.connect(sessions.logged_in, dispatch_uid="session-clock")
        pre_save.connect(sessions.user_saving, sender=settings.AUTH_USER_MODEL, dispatch_uid="user-tokens-pre")
        post_save.connect(sessions.user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="user-tokens-post")
        user_login_failed.connect(lockout.login_failed, dispatch_uid="address-lockout")
