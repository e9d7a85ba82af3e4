"""The reminder outbox sends a group of reminders side by side, one SMTP connection each, and marks
the group sent with one compare-and-set statement before the dots (ldnclinic.messaging.TwoPhaseSMTP).

What a group adds, checked here with a real SMTP server on loopback: one message of a group refused
(at RCPT, or at its final dot) or abandoned (its claim was lost) leaves the others delivered once and
puts back only its own row; a worker killed between the group's mark and its dots loses that group
and never sends anything twice; messages are encoded as Django's SMTP mailer would put them.
"""

import datetime as dt
import email.header
from collections import Counter

import pytest
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ldnclinic import messaging
from tests.smtp import Recorder, SMTPServer
from tests.titration.test_reminder_faults import (  # noqa: F401 - servers is a fixture
    N,
    all_sent,
    assert_exactly_once,
    delivered,
    due_reminders,
    killed_at,
    needs_redis_server,
    servers,
    settle,
    wait_until,
)
from titration import reminders
from titration.models import Reminder

WIDTH = 4


@pytest.fixture
def width(settings):
    settings.REMINDER_SMTP_CONNECTIONS = WIDTH
    return WIDTH


class PickyRecorder(Recorder):
    """Refuses some recipients: at RCPT TO (``refuse_rcpt``) or at the end of their data (``refuse_data``)."""

    def __init__(self):
        super().__init__()
        self.refuse_rcpt: dict[str, str] = {}
        self.refuse_data: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            if address in self.refuse_data:
                return self.refuse_data[address]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def picky_smtp(settings):
    server = SMTPServer()
    server.recorder = PickyRecorder()
    server.controller.handler = server.recorder
    with server:
        settings.MAILERS = {"default": server.mailer}
        yield server


def statuses(rows: list[Reminder]) -> dict[str, str]:
    return dict(Reminder.objects.filter(pk__in=[r.pk for r in rows]).values_list("idempotency_key", "status"))


# --- Groups ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, WIDTH, 3 * WIDTH + 1])
def test_each_group_is_marked_by_one_statement_on_as_many_connections(db, smtp_server, width, count):
    rows = due_reminders(count)
    with CaptureQueriesContext(transaction.get_connection()) as queries:
        assert reminders.tick() == count
    marks = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "VALUES" in q["sql"]]
    assert len(marks) == -(-count // width)
    assert_exactly_once(smtp_server, rows)


def test_one_refusal_at_the_dot_puts_back_only_that_reminder(db, picky_smtp, width):
    rows = due_reminders(width)
    refused, fine = rows[1], [r for i, r in enumerate(rows) if i != 1]
    picky_smtp.recorder.refuse_data = {refused.patient.email: "452 4.2.2 mailbox full"}
    assert reminders.tick() == width - 1
    assert_exactly_once(picky_smtp, fine)
    refused.refresh_from_db()
    assert (refused.status, refused.sent_at) == ("pending", None)
    assert "452" in refused.last_error and "end of data" in refused.last_error
    picky_smtp.recorder.refuse_data = {}
    reminders.tick(now=refused.next_attempt_at + dt.timedelta(seconds=1))  # its retry
    assert_exactly_once(picky_smtp, rows)


def test_a_permanent_refusal_at_the_dot_fails_only_that_reminder(db, picky_smtp, width):
    rows = due_reminders(width)
    picky_smtp.recorder.refuse_data = {rows[0].patient.email: "554 5.7.1 rejected"}
    assert reminders.tick() == width - 1
    assert_exactly_once(picky_smtp, rows[1:])
    assert statuses(rows)[rows[0].idempotency_key] == "failed"


def test_an_address_refused_at_rcpt_fails_only_that_reminder(db, picky_smtp, width):
    rows = due_reminders(width)
    picky_smtp.recorder.refuse_rcpt = {rows[2].patient.email: "550 5.1.1 no such mailbox"}
    assert reminders.tick() == width - 1
    assert_exactly_once(picky_smtp, [r for i, r in enumerate(rows) if i != 2])
    rows[2].refresh_from_db()
    assert rows[2].status == "failed" and "550" in rows[2].last_error


@pytest.mark.parametrize("one_statement", [True, False], ids=["update-from-values", "orm-per-row"])
def test_a_lost_claim_in_a_group_abandons_only_that_message(db, smtp_server, width, monkeypatch, one_statement):
    """While the group's data is with the server, one row's lease lapses and another worker claims it:
    the mark skips that row, its message never gets its dot, and its new claimant sends it once."""
    monkeypatch.setattr(reminders, "_has_update_from_returning", lambda connection: one_statement)
    rows = due_reminders(width)
    first_claim = timezone.now()
    assert sorted(reminders._claim(first_claim, 10)) == sorted(r.pk for r in rows)
    group = list(Reminder.objects.filter(pk__in=[r.pk for r in rows]).select_related("patient").order_by("pk"))
    taken = group[1]
    later = first_claim + dt.timedelta(minutes=10)
    real_mark = reminders._mark_sent

    def another_worker_takes_one_then_mark(ready):
        Reminder.objects.filter(pk=taken.pk).update(status="pending", next_attempt_at=later)  # its lease lapsed
        assert reminders._claim(later, 1) == [taken.pk]
        return real_mark(ready)

    monkeypatch.setattr(reminders, "_mark_sent", another_worker_takes_one_then_mark)
    assert reminders.deliver_group(group, first_claim) == width - 1
    monkeypatch.setattr(reminders, "_mark_sent", real_mark)
    by_id, _ = delivered(smtp_server)
    assert messaging.message_id(taken.idempotency_key) not in by_id
    assert statuses(rows)[taken.idempotency_key] == "sending"  # the new claimant's
    fresh = Reminder.objects.select_related("patient").get(pk=taken.pk)
    assert reminders.deliver(fresh, later) == 1
    assert_exactly_once(smtp_server, rows)


def test_a_database_failure_at_the_mark_abandons_the_whole_group(db, smtp_server, width, monkeypatch):
    rows = due_reminders(width)

    def broken(ready):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(reminders, "_mark_sent", broken)
    with pytest.raises(RuntimeError):
        reminders.tick()
    assert smtp_server.recorder.messages == []
    assert set(statuses(rows).values()) == {"sending"}  # taken back after the lease


def test_only_the_first_of_a_patients_check_in_reminders_shares_a_group_REM_3(db):
    """REM-3 counts the check-in reminders already sent, so a patient's second check-in reminder is
    rendered after the first is marked; other kinds of one patient's reminders may share a group."""
    one, other = 1, 2
    rows = [
        Reminder(pk=1, patient_id=one, kind="washout"),
        Reminder(pk=2, patient_id=one, kind="washout"),
        Reminder(pk=3, patient_id=other, kind="checkin_due"),
        Reminder(pk=4, patient_id=one, kind="checkin_due"),
        Reminder(pk=5, patient_id=other, kind="checkin_due"),
        Reminder(pk=6, patient_id=one, kind="nightly_dose"),
    ]
    groups = [[r.pk for r in g] for g in reminders._groups(rows, 8)]
    assert groups == [[1, 2, 3], [4, 5, 6]]
    assert [[r.pk for r in g] for g in reminders._groups(rows[:3], 2)] == [[1, 2], [3]]


# --- What goes on the wire ---------------------------------------------------------------------------


def test_non_ascii_and_long_lines_are_encoded_as_7bit_and_arrive_unchanged(db, smtp_server):
    subject = "LDN: étape suivante — 3.0 mg ce soir, " + "très " * 12
    body = "Ce soir, prenez 3,0 mg de LDN (2 gélules de 1,5 mg).\n" + "long line " * 30 + "\n.point\n"
    message = messaging.Outgoing(to="pat@example.test", subject=subject, body=body, key="intl")
    with messaging.Outbox() as outbox:
        envelope = outbox.smtp.envelope(message)
        assert envelope.data.isascii()
        assert all(len(line) <= 78 for line in envelope.data.split(b"\r\n"))
        assert outbox.send(message, "email", lambda: True) == ""
    (received,) = smtp_server.recorder.messages
    assert str(email.header.make_header(email.header.decode_header(received["Subject"]))) == subject
    assert received.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n") == body
    assert received["Message-ID"] == messaging.message_id("intl")
    assert received["Auto-Submitted"] == "auto-generated"


def test_an_international_domain_is_sent_as_punycode(db, smtp_server):
    message = messaging.Outgoing(to="pat@exämple.test", subject="LDN", body="hello", key="idn")
    with messaging.Outbox() as outbox:
        outbox.send(message, "email", lambda: True)
    (received,) = smtp_server.recorder.messages
    assert received["X-Envelope-To"] == "pat@xn--exmple-cua.test"
    assert received["To"] == "pat@xn--exmple-cua.test"


@pytest.mark.parametrize("to", ["pät@example.test", "two@example.test, three@example.test", "a@b@example.test"])
def test_an_address_that_cannot_be_sent_to_is_a_permanent_failure(db, smtp_server, to):
    message = messaging.Outgoing(to=to, subject="LDN", body="hello", key="bad")
    with messaging.Outbox() as outbox, pytest.raises(messaging.PermanentSendError):
        outbox.send(message, "email", lambda: True)
    assert smtp_server.recorder.messages == []


def test_a_line_break_in_a_header_is_refused(db, smtp_server):
    message = messaging.Outgoing(to="pat@example.test", subject="LDN\r\nBcc: x@example.test", body="b", key="inj")
    with messaging.Outbox() as outbox, pytest.raises(messaging.PermanentSendError):
        outbox.send(message, "email", lambda: True)
    assert smtp_server.recorder.messages == []


# --- A real worker killed between the group's mark and its dots -------------------------------------


@pytest.mark.celery_worker
@needs_redis_server
def test_worker_killed_between_the_mark_and_the_dots_loses_its_group_and_repeats_nothing(servers):  # noqa: F811
    """The documented loss window: the group's rows say sent, the server discarded their unfinished
    data. Nothing else is lost (the rest of the claim goes out after the lease) and nothing is sent
    twice."""
    broker, smtp, cluster = servers
    rows = due_reminders()
    cluster.env["REMINDER_SMTP_CONNECTIONS"] = str(WIDTH)
    doomed, doomed_log = cluster.worker("doomed", "--pool", "solo", LDN_FAULT="after_mark")
    cluster.beat()
    killed_at(doomed, doomed_log, "after_mark")
    assert smtp.recorder.messages == []
    lost = set(Reminder.objects.filter(pk__in=[r.pk for r in rows], status="sent").values_list("pk", flat=True))
    assert len(lost) == WIDTH
    _, log = cluster.worker("clean", "--concurrency", "1")
    wait_until(lambda: all_sent(rows), "the rest of the claim sent after the lease lapsed")
    settle(log)
    by_id, _ = delivered(smtp)
    expected = Counter(messaging.message_id(r.idempotency_key) for r in rows if r.pk not in lost)
    assert by_id == expected
    assert sum(expected.values()) == N - WIDTH
