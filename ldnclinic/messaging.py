"""Outgoing messages: email through Django's mailers, SMS through a small backend interface.

Every failure is sorted into transient (try again later: the server is down, busy or slow) or
permanent (this message can never go: no address, address refused), so the outbox knows whether to
retry or to mark the reminder failed and show it to the clinic.

``Outbox`` sends a batch for the reminder outbox. With Django's SMTP mailer it speaks SMTP itself so the
outbox can mark rows sent *between* the messages' data and the dots that end them (see
``TwoPhaseSMTP``): that is what makes each reminder reach the mail server exactly once even when a
worker is killed mid-send (short of a kill in the instant between the mark and the dots, which loses
the messages instead of repeating them).
"""

import base64
import binascii
import contextlib
import datetime as dt
import email.policy
import email.utils
import json
import logging
import re
import smtplib
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Collection
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
    except ValueError as exc:  # Django refuses a header or address with a line break, or a bad address
        raise PermanentSendError(f"bad address or header: {exc}") from exc
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
# A plain ASCII addr-spec (dot-atom local part and domain): Django's prep_address returns it unchanged,
# so it can skip the header parser. Anything else (IDN domains, quoted local parts, display names)
# goes through prep_address.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_SHORT_LINES = re.compile(r"[^\n]{79}")


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


def _header(name: str, value: str) -> bytes:
    """One header line, folded and RFC 2047-encoded as needed (the way Django's SMTP policy writes it)."""
    if "\n" in value or "\r" in value:
        raise PermanentSendError(f"the {name} header contains a line break")
    line = f"{name}: {value}\r\n"
    if value.isascii() and len(line) <= 80:
        return line.encode("ascii")
    return email.policy.SMTP.fold(name, value).encode("ascii")


@dataclass(frozen=True)
class Envelope:
    sender: str  # addr-spec for MAIL FROM (as prepared by Django's backend: ASCII, no angle brackets)
    recipients: tuple[str, ...]  # addr-specs for RCPT TO, prepared the same way
    data: bytes  # the DATA section, dot-stuffed and CRLF-terminated, without the final dot


@dataclass
class Result:
    """What became of one message of a group: delivered (``note`` says when the server's reply to the
    dot was lost), refused (``error``), or abandoned before its dot because its commit was refused."""

    error: SendError | None = None
    abandoned: bool = False
    note: str = ""


class TwoPhaseSMTP:
    """Send over SMTP and commit the outbox rows in the middle of the DATA phase.

    A mail server takes responsibility for a message only when it reads the dot that ends the data
    (RFC 5321 4.1.1.4); a connection that drops before it leaves nothing delivered. So, for a group of
    messages, each on its own connection: MAIL FROM, RCPT TO, DATA and the dot-stuffed payload on
    every connection; then ONE ``commit(indexes)`` for the group (the caller marks those rows sent with
    one compare-and-set per row, in one statement, and returns the indexes whose claim it still held);
    then the dots, then the replies. Each step is written on every connection before any reply is
    read, so a group waits for one round trip per step instead of one per message, and for one
    database commit instead of one per message. A worker killed anywhere before the commit has
    delivered nothing and its rows are retried after their lease; a message whose claim was lost is
    abandoned (its connection closed without the dot) instead of being sent a second time.

    What is left, and is not exactly-once:
    - The loss window: between the commit and writing the group's ``.\\r\\n``s (the database reply,
      then one small socket write per message). A kill there leaves those rows 'sent' and their
      messages abandoned by the server: lost, never duplicated. It spans up to ``connections`` messages.
    - The reply to a dot cannot be read (timeout, connection dropped) although the dot was written:
      the server had the whole message and may have accepted it, so sending it again would most
      likely deliver it twice. The row stays 'sent' and the result carries a note for the caller.
    - A 4xx/5xx reply to a dot: nothing of that message was delivered; its result carries the error
      with ``committed=True`` so the caller puts the row back (pending to retry, or failed). The
      other messages of the group are unaffected.
    The commit must be durable when it returns, so call this outside ``transaction.atomic``.

    The connections (opened with the mailer's OPTIONS by Django's backend: host, port, TLS/SSL, login,
    timeout) serve a whole batch, group after group; any error closes that one connection and its next
    message opens a new one.
    """

    def __init__(self, backends: list[SMTPEmailBackend]):
        self.backends = backends
        self._senders: dict[str, tuple[str, bytes]] = {}

    def close(self) -> None:
        for backend in self.backends:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                backend.close()

    @staticmethod
    def drop(backend: SMTPEmailBackend) -> None:
        """Close the socket without QUIT: an unfinished DATA is discarded by the server."""
        connection, backend.connection = backend.connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    # The message ----------------------------------------------------------------------------

    def _address(self, address: str) -> str:
        if _PLAIN_ADDRESS.fullmatch(address):
            return address
        try:
            return self.backends[0].prep_address(address)
        except ValueError as exc:
            raise PermanentSendError(f"bad address: {exc}") from exc

    def _sender(self) -> tuple[str, bytes]:
        """The envelope sender and the From header, worked out once per sender."""
        from_email = settings.DEFAULT_FROM_EMAIL
        if from_email not in self._senders:
            self._senders[from_email] = (self._address(from_email), _header("From", from_email))
        return self._senders[from_email]

    def envelope(self, message: Outgoing) -> Envelope:
        """A plain-text message as Django's SMTP mailer would put it on the wire (7bit: headers
        RFC 2047-encoded when not ASCII, the body quoted-printable when not ASCII or longer than
        78 characters a line), built without the email package's header parser, which cost more than
        the rest of sending a reminder."""
        if not message.to:
            raise PermanentSendError("the patient has no email address")
        sender, from_header = self._sender()
        to = self._address(message.to)
        text = message.body if message.body.endswith("\n") else message.body + "\n"
        if text.isascii() and not _SHORT_LINES.search(text):
            encoding, body = b"7bit", text.encode("ascii")
        else:
            encoding, body = b"quoted-printable", binascii.b2a_qp(text.encode("utf-8"), istext=True)
        head = b"".join(
            (
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: " + encoding + b"\r\n",
                b"MIME-Version: 1.0\r\n",
                _header("Subject", message.subject),
                from_header,
                _header("To", to),
                _header("Date", email.utils.format_datetime(timezone.now().astimezone(dt.UTC))),
                _header("Message-ID", message_id(message.key)),
                b"Auto-Submitted: auto-generated\r\n",
                b"\r\n",
            )
        )
        return Envelope(sender, (to,), head + dot_stuffed(body))

    # The protocol ---------------------------------------------------------------------------

    def _open(self, backend: SMTPEmailBackend) -> smtplib.SMTP:
        if backend.connection is None:
            backend.open()
            # The dot goes out alone after the commit: without NODELAY, Nagle holds it back until the
            # server's delayed ACK of the data (40 ms per message on Linux).
            backend.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            backend.connection.ehlo_or_helo_if_needed()
        return backend.connection

    def _fail(self, sending: dict, results: list, index: int, error: SendError) -> None:
        self.drop(sending.pop(index)[0])
        results[index] = Result(error=error)

    def _step(
        self,
        sending: dict,
        results: list,
        step: str,
        command: Callable[[Envelope], tuple[str, ...] | None],
        ok: tuple[int, ...],
    ) -> None:
        """Write one command (``command(envelope)``: smtplib's putcmd arguments, or None to skip that
        connection) on every connection, then read every reply."""
        written = []
        for index, (backend, envelope) in list(sending.items()):
            argument = command(envelope)
            if argument is None:
                continue
            try:
                backend.connection.putcmd(*argument)
                written.append(index)
            except (smtplib.SMTPException, OSError) as exc:
                self._fail(sending, results, index, TransientSendError(f"{step}: {type(exc).__name__}: {exc}"))
        for index in written:
            try:
                code, reply = sending[index][0].connection.getreply()
            except (smtplib.SMTPException, OSError) as exc:
                self._fail(sending, results, index, TransientSendError(f"{step}: {type(exc).__name__}: {exc}"))
                continue
            if code not in ok:
                self._fail(sending, results, index, _refused(code, reply, step))

    def _mail_from(self, sending: dict, results: list) -> None:
        """MAIL FROM on every connection. A connection kept from an earlier group that the server
        closed while it was idle (disconnected, or 421) is reopened: nothing of its message was sent."""
        reused = {index for index, (backend, _) in sending.items() if backend.connection is not None}
        for index, (backend, _) in list(sending.items()):
            try:
                self._open(backend)
            except smtplib.SMTPResponseException as exc:  # greeting, EHLO, STARTTLS or login refused
                self._fail(sending, results, index, _refused(exc.smtp_code, exc.smtp_error, "connect"))
            except (smtplib.SMTPException, OSError) as exc:  # refused, timed out
                self._fail(sending, results, index, TransientSendError(f"connect: {type(exc).__name__}: {exc}"))
        unwritten = set()
        for index, (backend, envelope) in sending.items():
            try:
                backend.connection.putcmd("mail", f"FROM:<{envelope.sender}>")
            except (smtplib.SMTPException, OSError):
                unwritten.add(index)
        stale = []
        for index, (backend, _) in list(sending.items()):
            try:
                if index in unwritten:
                    raise smtplib.SMTPServerDisconnected("the connection was closed before MAIL FROM")
                code, reply = backend.connection.getreply()
            except (smtplib.SMTPException, OSError) as exc:
                if index in reused:
                    stale.append(index)
                else:
                    self._fail(sending, results, index, TransientSendError(f"MAIL FROM: {type(exc).__name__}: {exc}"))
                continue
            if code == 421 and index in reused:
                stale.append(index)
            elif code != 250:
                self._fail(sending, results, index, _refused(code, reply, "MAIL FROM"))
        for index in stale:
            backend, envelope = sending[index]
            self.drop(backend)
            try:
                code, reply = self._open(backend).mail(envelope.sender)
            except smtplib.SMTPResponseException as exc:
                self._fail(sending, results, index, _refused(exc.smtp_code, exc.smtp_error, "connect"))
                continue
            except (smtplib.SMTPException, OSError) as exc:
                self._fail(sending, results, index, TransientSendError(f"MAIL FROM: {type(exc).__name__}: {exc}"))
                continue
            if code != 250:
                self._fail(sending, results, index, _refused(code, reply, "MAIL FROM"))

    def send_group(self, messages: list[Outgoing], commit: Callable[[list[int]], Collection[int]]) -> list[Result]:
        """Send up to ``connections`` messages; ``commit`` gets the indexes of the messages whose data
        the server holds and returns those it marked sent. Returns one Result per message."""
        if len(messages) > len(self.backends):
            raise ValueError(f"{len(messages)} messages for {len(self.backends)} connections")
        results: list[Result | None] = [None] * len(messages)
        sending: dict[int, tuple[SMTPEmailBackend, Envelope]] = {}
        for index, message in enumerate(messages):
            try:
                sending[index] = (self.backends[index], self.envelope(message))
            except SendError as exc:
                results[index] = Result(error=exc)
        self._mail_from(sending, results)
        most = max((len(envelope.recipients) for _, envelope in sending.values()), default=0)
        for n in range(most):

            def rcpt(envelope: Envelope, n: int = n) -> tuple[str, str] | None:
                if n >= len(envelope.recipients):
                    return None
                return "rcpt", f"TO:<{envelope.recipients[n]}>"

            self._step(sending, results, "RCPT TO (address refused)", rcpt, (250, 251))
        self._step(sending, results, "DATA", lambda envelope: ("data",), (354,))
        for index, (backend, envelope) in list(sending.items()):
            try:
                backend.connection.send(envelope.data)
            except (smtplib.SMTPException, OSError) as exc:
                self._fail(sending, results, index, TransientSendError(f"data: {type(exc).__name__}: {exc}"))
        if sending:
            try:
                marked = set(commit(sorted(sending)))
            except BaseException:
                for backend, _ in sending.values():  # the database failed: abandon the group, retried after the lease
                    self.drop(backend)
                raise
            for index in [i for i in sending if i not in marked]:
                self.drop(sending.pop(index)[0])
                results[index] = Result(abandoned=True)
        # The dots first, all of them, right after the commit: the loss window is these writes.
        for index, (backend, _) in list(sending.items()):
            try:
                backend.connection.send(b".\r\n")
            except (smtplib.SMTPException, OSError) as exc:
                error = TransientSendError(f"the end of data could not be written: {type(exc).__name__}: {exc}")
                error.committed = True
                self._fail(sending, results, index, error)
        for index, (backend, _) in list(sending.items()):
            try:
                code, reply = backend.connection.getreply()
            except (smtplib.SMTPException, OSError) as exc:
                self.drop(sending.pop(index)[0])
                note = f"unconfirmed: the server did not answer the end of data ({type(exc).__name__}: {exc})"
                logger.warning("%s for %s; kept as sent", note, message_id(messages[index].key))
                results[index] = Result(note=note)
                continue
            if code != 250:
                self._fail(sending, results, index, _refused(code, reply, "end of data", committed=True))
            else:
                results[index] = Result()
        return results


class Outbox:
    """Send a batch of outbox messages, each followed (or, over SMTP, interleaved) by its commit.

    ``send_group([(message, channel), ...], commit)``: with Django's SMTP mailer, email goes through
    ``TwoPhaseSMTP``, ``width`` messages at a time on as many connections kept for the batch, with one
    commit for the group. Other mailers (console, locmem, file) and SMS send each message and then
    commit it alone: a worker killed between the two sends that message again after the lease.
    """

    def __init__(self, *, connections: int | None = None):
        width = connections or getattr(settings, "REMINDER_SMTP_CONNECTIONS", 1)
        backend = mailers.default
        self.smtp = None
        if isinstance(backend, SMTPEmailBackend):
            self.smtp = TwoPhaseSMTP([backend] + [mailers.default for _ in range(width - 1)])
        self.width = width

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.smtp is not None:
            self.smtp.close()

    def two_phase(self, channel: str) -> bool:
        return channel == "email" and self.smtp is not None

    def send_group(
        self, items: list[tuple[Outgoing, str]], commit: Callable[[list[int]], Collection[int]]
    ) -> list[Result]:
        """Up to ``width`` messages; ``commit(indexes)`` marks those rows sent and returns the indexes
        it marked. Returns one Result per item, in order."""
        results: list[Result | None] = [None] * len(items)
        grouped = [i for i, (_, channel) in enumerate(items) if self.two_phase(channel)]
        if grouped:

            def commit_grouped(sub: list[int]) -> list[int]:
                marked = set(commit([grouped[j] for j in sub]))
                return [j for j in sub if grouped[j] in marked]

            sent = self.smtp.send_group([items[i][0] for i in grouped], commit_grouped)
            for i, result in zip(grouped, sent, strict=True):
                results[i] = result
        for i, (message, channel) in enumerate(items):
            if results[i] is not None:
                continue
            try:
                if channel == "email":
                    send_email(message)
                else:
                    send_sms(message)
            except SendError as exc:
                results[i] = Result(error=exc)
                continue
            if not commit([i]):
                logger.warning("%s was sent but its claim had lapsed (another worker may send it too)", message.key)
            results[i] = Result()
        return results

    def send(self, message: Outgoing, channel: str, commit: Callable[[], bool]) -> str:
        """One message: returns "" when it was delivered, or a note when the server's reply to its end
        of data was lost; raises SendError, or CommitRefused when ``commit()`` said no."""
        (result,) = self.send_group([(message, channel)], lambda indexes: indexes if commit() else [])
        if result.error is not None:
            raise result.error
        if result.abandoned:
            raise CommitRefused(message.key)
        return result.note
