"""Outgoing messages: email through Django's mailers, SMS through a small backend interface.

Every failure is sorted into transient (try again later: the server is down, busy or slow) or
permanent (this message can never go: no address, address refused), so the outbox knows whether to
retry or to mark the reminder failed and show it to the clinic.

``Outbox`` sends a batch for the reminder outbox. With Django's SMTP mailer it speaks SMTP itself so the
outbox can mark a row sent *between* the message's data and the dot that ends it (see
``TwoPhaseSMTP``): that is what makes each reminder reach the mail server exactly once even when a
worker is killed mid-send.
"""

import base64
import contextlib
import email.policy
import json
import logging
import re
import smtplib
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, mailers
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SendError(Exception):
    permanent = False
    # True when the failure came after the outbox had already marked the row sent (the server refused
    # the message at its final dot): the caller must take the mark back.
    committed = False


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


def _email(message: Outgoing) -> EmailMessage:
    if not message.to:
        raise PermanentSendError("the patient has no email address")
    return EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        headers={"Message-ID": message_id(message.key), "Auto-Submitted": "auto-generated"},
    )


def send_email(message: Outgoing) -> None:
    email = _email(message)
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


class TwilioSMSBackend(SMSBackend):
    """Twilio's Messages API (off unless configured: SMS_BACKEND names it and the three settings are
    set). 429, 5xx and network failures are transient; other 4xx (a bad number) are permanent."""

    def __init__(self):
        self.sid = getattr(settings, "SMS_TWILIO_ACCOUNT_SID", "")
        self.token = getattr(settings, "SMS_TWILIO_AUTH_TOKEN", "")
        self.sender = getattr(settings, "SMS_FROM_NUMBER", "")
        missing = [
            n
            for n, v in (
                ("SMS_TWILIO_ACCOUNT_SID", self.sid),
                ("SMS_TWILIO_AUTH_TOKEN", self.token),
                ("SMS_FROM_NUMBER", self.sender),
            )
            if not v
        ]
        if missing:
            raise ImproperlyConfigured(f"TwilioSMSBackend needs {', '.join(missing)}")
        self.base = getattr(settings, "SMS_TWILIO_BASE_URL", "https://api.twilio.com").rstrip("/")

    def send(self, to: str, body: str, key: str) -> None:
        url = f"{self.base}/2010-04-01/Accounts/{urllib.parse.quote(self.sid)}/Messages.json"
        data = urllib.parse.urlencode({"To": to, "From": self.sender, "Body": body}).encode()
        auth = base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}"}
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - https or a configured test URL
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            error = f"SMS provider HTTP {exc.code}: {detail}"
            raise (TransientSendError if exc.code == 429 or exc.code >= 500 else PermanentSendError)(error) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TransientSendError(f"SMS provider unreachable: {exc}") from exc


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


# --- Sending a batch for the outbox ------------------------------------------------------------


class CommitRefused(Exception):  # noqa: N818 - not an error: another worker owns the row now
    """The commit callback said no (the claim was lost): the message was abandoned before its dot."""


_NEWLINES = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def dot_stuffed(payload: bytes) -> bytes:
    """The DATA section as sent (RFC 5321 4.5.2), CRLF-terminated, without the final ``.\\r\\n``."""
    data = _LEADING_DOT.sub(b"..", _NEWLINES.sub(b"\r\n", payload))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _refused(code: int, reply: bytes | str, step: str, *, committed: bool = False) -> SendError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    error = f"SMTP {code} at {step}: {text!r}"
    exc = (PermanentSendError if 500 <= code < 600 else TransientSendError)(error)
    exc.committed = committed
    return exc


class TwoPhaseSMTP:
    """Send over SMTP and commit the outbox row in the middle of the DATA phase.

    A mail server takes responsibility for a message only when it reads the dot that ends the data
    (RFC 5321 4.1.1.4); a connection that drops before it leaves nothing delivered. So, per message:
    MAIL FROM, RCPT TO, DATA, the dot-stuffed payload; then ``commit()`` (the caller marks the row
    sent with a compare-and-set and returns whether it still held the claim); then the dot, then the
    reply. A worker killed anywhere before the commit has delivered nothing and its row is retried
    after its lease; killed after the commit, the row is sent and the server gets its dot only if the
    kernel had already written it.

    What is left, and is not exactly-once:
    - The loss window: between the commit and writing ``.\\r\\n`` to the socket (two system calls, the
      database reply read and the socket write). A kill there leaves the row 'sent' and the message
      abandoned by the server: lost, never duplicated.
    - The reply to the dot cannot be read (timeout, connection dropped) although the dot was written:
      the server had the whole message and may have accepted it, so sending it again would most
      likely deliver it twice. The row stays 'sent' and the note is returned for the caller to record.
    - A 4xx/5xx reply to the dot: nothing was delivered; raised with ``committed=True`` so the caller
      puts the row back (pending to retry, or failed).
    The commit must be durable when it returns, so call this outside ``transaction.atomic``.

    One connection serves a whole batch (opened with the mailer's OPTIONS by Django's backend: host,
    port, TLS/SSL, login, timeout); any error closes it and the next message opens a new one.
    """

    def __init__(self, backend: SMTPEmailBackend):
        self.backend = backend

    def _connection(self) -> smtplib.SMTP:
        if self.backend.connection is None:
            self.backend.open()
            # The dot goes out alone after the commit: without NODELAY, Nagle holds it back until the
            # server's delayed ACK of the data (40 ms per message on Linux).
            self.backend.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.backend.connection

    def close(self) -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.backend.close()

    def drop(self) -> None:
        """Close the socket without QUIT: an unfinished DATA is discarded by the server."""
        connection, self.backend.connection = self.backend.connection, None
        if connection is not None:
            connection.close()

    def _mail_from(self, sender: str) -> tuple[smtplib.SMTP, int, bytes]:
        """MAIL FROM, on a new connection if the batch's one was closed by the server while idle."""
        reused = self.backend.connection is not None
        try:
            smtp = self._connection()
            smtp.ehlo_or_helo_if_needed()
            code, reply = smtp.mail(sender)
        except smtplib.SMTPServerDisconnected:
            if not reused:
                raise
            code = 421
        if code == 421 and reused:  # nothing of this message was sent yet: reconnecting is safe
            self.drop()
            smtp = self._connection()
            smtp.ehlo_or_helo_if_needed()
            code, reply = smtp.mail(sender)
        return smtp, code, reply

    def send(self, message: Outgoing, commit: Callable[[], bool]) -> str:
        """Returns "" when the server said 250 to the dot, or a note when its reply was lost."""
        email_message = _email(message)
        try:
            sender = self.backend.prep_address(email_message.from_email)
            recipients = [self.backend.prep_address(a) for a in email_message.recipients()]
        except ValueError as exc:
            raise PermanentSendError(f"bad address: {exc}") from exc
        payload = dot_stuffed(email_message.message(policy=email.policy.SMTP).as_bytes())
        try:
            smtp, code, reply = self._mail_from(sender)
            if code != 250:
                raise _refused(code, reply, "MAIL FROM")
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    raise _refused(code, reply, f"RCPT TO (address refused: {recipient})")
            code, reply = smtp.docmd("DATA")
            if code != 354:
                raise _refused(code, reply, "DATA")
            smtp.send(payload)
        except SendError:
            self.drop()
            raise
        except smtplib.SMTPResponseException as exc:  # greeting, EHLO, STARTTLS or login refused
            self.drop()
            raise _refused(exc.smtp_code, exc.smtp_error, "connect") from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, disconnected
            self.drop()
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc
        try:
            committed = commit()
        except BaseException:
            self.drop()  # the database failed: abandon the message, the row is retried after its lease
            raise
        if not committed:
            self.drop()
            raise CommitRefused(message.key)
        try:
            smtp.send(b".\r\n")
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            error = TransientSendError(f"the end of data could not be written: {type(exc).__name__}: {exc}")
            error.committed = True
            raise error from exc
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            note = f"unconfirmed: the server did not answer the end of data ({type(exc).__name__}: {exc})"
            logger.warning("%s for %s; kept as sent", note, message_id(message.key))
            return note
        if code != 250:
            self.drop()
            raise _refused(code, reply, "end of data", committed=True)
        return ""


class Outbox:
    """Send a batch of outbox messages, each followed (or, over SMTP, interleaved) by its commit.

    ``send(message, channel, commit)``: with Django's SMTP mailer, email goes through ``TwoPhaseSMTP``
    on one connection for the batch. Other mailers (console, locmem, file) and SMS send first and
    then call ``commit``: a worker killed between the two sends that message again after the lease.
    """

    def __init__(self):
        backend = mailers.default
        self.smtp = TwoPhaseSMTP(backend) if isinstance(backend, SMTPEmailBackend) else None

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.smtp is not None:
            self.smtp.close()

    def send(self, message: Outgoing, channel: str, commit: Callable[[], bool]) -> str:
        if channel == "email" and self.smtp is not None:
            return self.smtp.send(message, commit)
        if channel == "email":
            send_email(message)
        else:
            send_sms(message)
        if not commit():
            logger.warning("%s was sent but its claim had lapsed (another worker may send it too)", message.key)
        return ""
