"""Outgoing messages: email through Django's mailers, SMS through a small backend interface.

Every failure is sorted into transient (try again later: the server is down, busy or slow) or
permanent (this message can never go: no address, address refused), so the outbox knows whether to
retry or to mark the reminder failed and show it to the clinic.
"""

import json
import logging
import smtplib
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SendError(Exception):
    permanent = False


class TransientSendError(SendError):
    pass


class PermanentSendError(SendError):
    permanent = True


@dataclass(frozen=True)
class Outgoing:
    to: str
    subject: str
    body: str
    key: str  # the reminder's idempotency key: the Message-ID, so a repeat is recognisable downstream


def message_id(key: str) -> str:
    domain = getattr(settings, "MESSAGE_ID_DOMAIN", "ldnclinic.local")
    return f"<{uuid.uuid5(uuid.NAMESPACE_URL, key)}@{domain}>"


def send_email(message: Outgoing) -> None:
    if not message.to:
        raise PermanentSendError("the patient has no email address")
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        headers={"Message-ID": message_id(message.key), "Auto-Submitted": "auto-generated"},
    )
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentSendError(f"address refused: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        raise (PermanentSendError if 500 <= exc.smtp_code < 600 else TransientSendError)(error) from exc
    except (smtplib.SMTPException, OSError) as exc:  # includes timeouts and refused connections
        raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc


class SMSBackend:
    """Send one text message. Raise TransientSendError or PermanentSendError on failure."""

    def send(self, to: str, body: str, key: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ConsoleSMSBackend(SMSBackend):
    """Development default: the text goes to the log."""

    def send(self, to: str, body: str, key: str) -> None:
        logger.info("SMS to %s [%s]: %s", to, key, body)


class FileSMSBackend(SMSBackend):
    """One JSON line per text in SMS_FILE_PATH (default var/sms.jsonl): for demos and tests."""

    def send(self, to: str, body: str, key: str) -> None:
        path = Path(getattr(settings, "SMS_FILE_PATH", settings.VAR_DIR / "sms.jsonl"))
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"to": to, "body": body, "key": key, "at": timezone.now().isoformat()})
        with path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


def sms_backend() -> SMSBackend:
    path = getattr(settings, "SMS_BACKEND", "ldnclinic.messaging.ConsoleSMSBackend")
    try:
        backend = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"SMS_BACKEND={path!r} cannot be imported: {exc}") from exc
    return backend()


def send_sms(message: Outgoing) -> None:
    if not message.to:
        raise PermanentSendError("the patient has no mobile number")
    sms_backend().send(message.to, message.body, message.key)
