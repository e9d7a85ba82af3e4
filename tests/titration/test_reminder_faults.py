"""The reminder outbox under faults, with real servers: every due reminder reaches the SMTP server
exactly once (counted by Message-ID and by recipient) and ends 'sent'.

Each worker test starts its own redis-server on a free port (never the machine's shared one), a real
SMTP server on loopback (aiosmtpd), and real Celery worker and beat processes on this run's database.
The worker is killed with SIGKILL at an exact step of the protocol by ldnclinic.faults (LDN_FAULT).
The first tests check the same protocol in-process, without a worker.
"""

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ldnclinic import messaging
from tests import factories as f
from tests.patients.test_conflict_worker import database_url_of_this_run
from tests.smtp import Recorder, SMTPServer, free_port
from tests.test_celery import _wait_for
from titration import reminders
from titration.models import Reminder

ROOT = Path(__file__).resolve().parents[2]
N = 20
LEASE_SECONDS = 2
TIMEOUT = 120


def due_reminders(count: int = N, *, tag: str = "") -> list[Reminder]:
    """``count`` washout reminders (no plan needed to render), due a minute ago, one patient each.

    Dated yesterday (a backlog): beat's planner keeps its hands off past days, so it does not cancel
    rows that no conflict flag asked for."""
    tag = tag or uuid.uuid4().hex[:8]
    clinic = f.ClinicFactory()
    past = timezone.now() - dt.timedelta(minutes=1)
    rows = []
    for i in range(count):
        patient = f.PatientFactory(clinic=clinic, email=f"p{i}-{tag}@faults.example.test")
        rows.append(
            f.ReminderFactory(
                patient=patient,
                kind="washout",
                local_date=timezone.localdate() - dt.timedelta(days=1),
                due_at=past,
                next_attempt_at=past,
                idempotency_key=f"fault-{tag}-{i}",
            )
        )
    return rows


def delivered(server: SMTPServer) -> tuple[Counter, Counter]:
    with server.recorder.lock:
        messages = list(server.recorder.messages)
    return Counter(m["Message-ID"] for m in messages), Counter(m["X-Envelope-To"] for m in messages)


def assert_exactly_once(server: SMTPServer, rows: list[Reminder]) -> None:
    by_id, by_recipient = delivered(server)
    assert by_id == Counter(messaging.message_id(r.idempotency_key) for r in rows)
    assert by_recipient == Counter(r.patient.email for r in rows)
    statuses = Counter(Reminder.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True))
    assert statuses == Counter({"sent": len(rows)})


def wait_until(predicate, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.25)


def all_sent(rows: list[Reminder]) -> bool:
    return Reminder.objects.filter(pk__in=[r.pk for r in rows], status="sent").count() == len(rows)


# --- The protocol in-process ---------------------------------------------------------------------


def test_a_message_abandoned_before_its_dot_never_reaches_the_server(db, smtp_server):
    first = messaging.Outgoing(to="a@example.test", subject="one", body="first", key="abandon-1")
    second = messaging.Outgoing(to="b@example.test", subject="two", body="second", key="abandon-2")
    with messaging.Outbox() as outbox:
        with pytest.raises(messaging.CommitRefused):
            outbox.send(first, "email", lambda: False)
        assert outbox.send(second, "email", lambda: True) == ""  # a new connection after the abandoned one
    assert [m["Message-ID"] for m in smtp_server.recorder.messages] == [messaging.message_id("abandon-2")]


def test_a_connection_dropped_between_two_messages_is_reopened_for_the_second(db, smtp_server):
    first = messaging.Outgoing(to="a@example.test", subject="one", body="first", key="idle-1")
    second = messaging.Outgoing(to="b@example.test", subject="two", body="second", key="idle-2")
    with messaging.Outbox() as outbox:
        outbox.send(first, "email", lambda: True)
        outbox.smtp.backends[0].connection.sock.shutdown(socket.SHUT_RDWR)  # as if the server timed it out
        assert outbox.send(second, "email", lambda: True) == ""
    ids = [m["Message-ID"] for m in smtp_server.recorder.messages]
    assert ids == [messaging.message_id("idle-1"), messaging.message_id("idle-2")]


def test_the_payload_is_dot_stuffed_and_arrives_unchanged(db, smtp_server):
    body = ".starts with a dot\n.\n..two dots\nlast line"
    with messaging.Outbox() as outbox:
        outbox.send(
            messaging.Outgoing(to="a@example.test", subject="dots", body=body, key="dots"), "email", lambda: True
        )
    (message,) = smtp_server.recorder.messages
    assert message.get_payload(decode=True).decode().replace("\r\n", "\n").rstrip("\n") == body
    assert message["Message-ID"] == messaging.message_id("dots")


def test_a_worker_that_outlived_its_lease_abandons_its_message(db, smtp_server, settings):
    (row,) = due_reminders(1)
    first_claim = timezone.now()
    assert reminders._claim(first_claim, 10) == [row.pk]
    stale = Reminder.objects.select_related("patient").get(pk=row.pk)  # the slow worker's copy
    later = first_claim + dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS + 1)
    assert reminders.release_lapsed_claims(later) == 1
    assert reminders._claim(later, 10) == [row.pk]  # another worker holds it now
    fresh = Reminder.objects.select_related("patient").get(pk=row.pk)
    assert reminders.deliver(stale, first_claim) == 0
    assert smtp_server.recorder.messages == []
    assert reminders.deliver(fresh, later) == 1
    assert_exactly_once(smtp_server, [row])
    row.refresh_from_db()
    assert row.attempts == 2


def test_a_refusal_at_the_final_dot_takes_the_sent_mark_back(db, smtp_server):
    (row,) = due_reminders(1)
    smtp_server.recorder.respond = "452 4.3.1 insufficient storage"
    assert reminders.tick() == 0
    row.refresh_from_db()
    assert (row.status, row.sent_at) == ("pending", None)
    assert "transient" in row.last_error and "452" in row.last_error


def test_no_reply_to_the_final_dot_keeps_the_row_sent_and_says_so(db, settings):
    """The server has the whole message: sending it again would most likely deliver it twice."""
    (row,) = due_reminders(1)
    with SlowSMTPServer() as server:
        server.recorder.delay = 1.5
        settings.MAILERS = {"default": server.mailer | {"OPTIONS": server.mailer["OPTIONS"] | {"timeout": 0.5}}}
        assert reminders.tick() == 1
        assert_exactly_once(server, [row])
    row.refresh_from_db()
    assert row.status == "sent"
    assert row.last_error.startswith("unconfirmed")


@pytest.mark.parametrize("count", [5, 50, 150])
def test_queries_per_tick_are_constant_plus_one_per_group(db, smtp_server, settings, count):
    """The outbox's own cost (release, claim, load, mark), without content queries (a washout
    reminder renders from nothing): a fixed number per claimed chunk, and one statement marking each
    group of REMINDER_SMTP_CONNECTIONS reminders sent, the same bound at 5 rows, 50, and past one
    claim chunk."""
    due_reminders(count)
    chunk, width = reminders.CHUNK, settings.REMINDER_SMTP_CONNECTIONS
    chunks = -(-count // chunk)
    groups = sum(-(-min(chunk, count - n * chunk) // width) for n in range(chunks))
    with CaptureQueriesContext(transaction.get_connection()) as queries:
        assert reminders.tick() == count
    assert len(queries) <= 6 * (chunks + 1) + groups, [q["sql"][:120] for q in queries]


# --- Real servers: redis-server, SMTP, Celery worker and beat ------------------------------------

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed (apt-get install redis-server)"
)


class SlowRecorder(Recorder):
    """Takes the message, then ``delay`` seconds to say so: a queue of reminders takes a while to
    drain, or the client gives up waiting for a reply to a message the server already has."""

    delay = 0.0

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return reply


class SlowSMTPServer(SMTPServer):
    def __init__(self):
        super().__init__()
        self.recorder = SlowRecorder()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)


class RedisServer:
    """A throwaway redis-server of this test's own, on a free loopback port, without persistence."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.log = tmp_path / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--daemonize", "no", "--dir", str(self.log.parent)]
        self.proc = subprocess.Popen(command, stdout=self.log.open("a"), stderr=subprocess.STDOUT)

        def pong() -> bool:
            try:
                return self.client().ping()
            except redis.ConnectionError:
                return False

        wait_until(pong, f"redis-server on port {self.port} answers", timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Cluster:
    """Worker and beat processes pointed at this test's Redis, SMTP server and database."""

    def __init__(self, tmp_path: Path, broker: RedisServer, smtp: SMTPServer):
        self.tmp_path = tmp_path
        self.running: list[subprocess.Popen] = []
        env = {k: v for k, v in os.environ.items() if k != "LDN_FAULT"}
        self.env = env | {
            "DJANGO_SETTINGS_MODULE": "ldnclinic.test_settings",
            "DATABASE_URL": database_url_of_this_run(),
            "REDIS_URL": broker.url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
            "REMINDER_TICK_SECONDS": "1",
            "REMINDER_LEASE_SECONDS": str(LEASE_SECONDS),
            "HEARTBEAT_SECONDS": "3600",
        }

    def start(self, name: str, *args: str, **env: str) -> tuple[subprocess.Popen, Path]:
        log = self.tmp_path / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ldnclinic", *args],
            cwd=ROOT,
            env=self.env | env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(proc)
        return proc, log

    def worker(self, name: str, *args: str, **env: str) -> tuple[subprocess.Popen, Path]:
        proc, log = self.start(
            name, "worker", "--loglevel", "INFO", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--without-mingle",
            "--without-gossip", *args, **env,
        )  # fmt: skip
        _wait_for(log, "ready", timeout=TIMEOUT)
        return proc, log

    def beat(self, name: str = "beat") -> tuple[subprocess.Popen, Path]:
        proc, log = self.start(name, "beat", "--loglevel", "INFO", "--schedule", str(self.tmp_path / f"{name}.db"))
        _wait_for(log, "Sending due task reminder-tick", timeout=TIMEOUT)
        return proc, log

    def stop(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.running:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def ticks_done(log: Path) -> int:
    text = log.read_text(errors="replace") if log.exists() else ""
    return sum(1 for line in text.splitlines() if "titration.reminder_tick[" in line and "succeeded" in line)


def settle(log: Path, ticks: int = 3) -> None:
    """Let the worker run a few more ticks, so a second copy of anything would have been sent."""
    start = ticks_done(log)
    wait_until(lambda: ticks_done(log) >= start + ticks, f"{ticks} more reminder ticks in {log.name}")


@pytest.fixture
def servers(transactional_db, tmp_path):
    """(redis, smtp, cluster); stopped in reverse order, before the test database is flushed."""
    broker = RedisServer(tmp_path)
    broker.start()
    smtp = SlowSMTPServer().__enter__()
    cluster = Cluster(tmp_path, broker, smtp)
    try:
        yield broker, smtp, cluster
    finally:
        cluster.stop()
        smtp.__exit__(None, None, None)
        broker.stop()


def killed_at(proc: subprocess.Popen, log: Path, point: str) -> None:
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker was not killed at {point}:\n{log.read_text()[-3000:]}") from None
    assert proc.returncode == -signal.SIGKILL
    assert f"fault injection: SIGKILL at {point}" in log.read_text()


@pytest.mark.parametrize("point", ["after_claim", "after_send"])
@pytest.mark.celery_worker
@needs_redis_server
def test_worker_killed_mid_send_still_sends_each_reminder_once(servers, point):
    """(a) killed after claiming, before any SMTP; (b) after the message's data, before the mark."""
    broker, smtp, cluster = servers
    rows = due_reminders()
    doomed, doomed_log = cluster.worker("doomed", "--pool", "solo", LDN_FAULT=point)
    cluster.beat()
    killed_at(doomed, doomed_log, point)
    assert smtp.recorder.messages == []  # nothing was accepted: the data never got its final dot
    assert Reminder.objects.filter(pk__in=[r.pk for r in rows], status="sending").exists()
    _, log = cluster.worker("clean", "--concurrency", "1")
    wait_until(lambda: all_sent(rows), "every reminder sent after the lease lapsed")
    settle(log)
    assert_exactly_once(smtp, rows)
    assert Reminder.objects.filter(pk__in=[r.pk for r in rows], attempts__gte=2).exists()  # retried, not resent


@pytest.mark.parametrize("fault", ["restart", "flushall"])
@pytest.mark.celery_worker
@needs_redis_server
def test_redis_restarted_or_flushed_mid_queue_loses_and_repeats_nothing(servers, fault):
    """(c) redis-server stopped and started again; (d) FLUSHALL; both while ticks are draining the queue."""
    broker, smtp, cluster = servers
    rows = due_reminders()
    cluster.env["REMINDER_BATCH_SIZE"] = "2"
    # The queue takes several seconds to drain: ten ticks of two, the two sent side by side (one per
    # SMTP connection), each waiting half a second for the server's reply to its dot.
    smtp.recorder.delay = 0.5
    _, log = cluster.worker("worker", "--concurrency", "1")
    cluster.beat()
    wait_until(lambda: len(smtp.recorder.messages) >= 2, "the first reminders sent")
    if fault == "restart":
        broker.stop()
        assert not all_sent(rows)  # mid-queue
        time.sleep(3)  # a few ticks fall due while the broker is away
        broker.start()
    else:
        broker.client().flushall()
        assert not all_sent(rows)
    wait_until(lambda: all_sent(rows), "every reminder sent after the broker came back")
    settle(log)
    assert_exactly_once(smtp, rows)


SAVE_A_PLAN = r"""
import datetime as dt, json
from decimal import Decimal
import django
django.setup()
from django.db import transaction
from django.utils import timezone
from tests import factories as f

today = timezone.localdate()
with transaction.atomic():  # as a request would: the enqueue happens on commit, to a broker that is down
    clinic = f.ClinicFactory()
    screening = f.PatientFactory(clinic=clinic, status="screening", email="washout@faults.example.test")
    f.MedicationFactory(patient=screening, name="Norco 5/325", last_dose_date=today - dt.timedelta(days=8))
    active = f.PatientFactory(clinic=clinic, status="active", email="stepup@faults.example.test")
    rx = f.PrescriptionFactory(
        patient=active, written_on=today - dt.timedelta(days=30), start_on=today - dt.timedelta(days=30)
    )
    plan = f.PlanFactory(patient=active, prescription=rx, start_date=today - dt.timedelta(days=30), status="active")
    started = today - dt.timedelta(days=10)
    f.StepFactory(plan=plan, sequence=1, dose_mg=Decimal("1.5"), planned_start=started, actual_start=started,
                  status="active")
    f.StepFactory(plan=plan, sequence=2, dose_mg=Decimal("3.0"), planned_start=today)
print("SAVED " + json.dumps([screening.pk, active.pk]))
"""


@pytest.mark.celery_worker
@needs_redis_server
def test_redis_down_while_a_plan_is_saved_then_reminders_go_out_once(servers):
    """(e) The save succeeds with the broker down (the enqueue on commit fails and is logged), the
    reminder rows are written with it, and once Redis is back they go out exactly once."""
    broker, smtp, cluster = servers
    _, log = cluster.worker("worker", "--concurrency", "1")
    cluster.beat()
    broker.stop()
    web = subprocess.run(
        [sys.executable, "-c", SAVE_A_PLAN], cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert web.returncode == 0, web.stderr[-3000:]
    assert "could not enqueue patients.evaluate_medication" in web.stderr  # the broker really was down
    screening_pk, active_pk = json.loads(web.stdout.split("SAVED ", 1)[1])
    washout = Reminder.objects.filter(patient_id=screening_pk, kind="washout")
    step_up = Reminder.objects.filter(patient_id=active_pk, kind="step_up")
    assert washout.count() == 1 and step_up.count() == 1
    # Their evening comes (the clock moved forward, as far as the outbox can tell).
    past = timezone.now() - dt.timedelta(minutes=1)
    (washout | step_up).update(due_at=past, next_attempt_at=past)
    rows = list((washout | step_up).select_related("patient"))
    time.sleep(3)  # beat fails to publish a few ticks while the broker is down
    broker.start()
    wait_until(lambda: all_sent(rows), "the plan's reminders sent once Redis is back")
    settle(log)
    assert_exactly_once(smtp, rows)


@pytest.mark.celery_worker
@needs_redis_server
def test_two_beats_at_once_still_send_each_reminder_once(servers):
    """(f) Two beat processes (a deploy that started beat twice) and two worker processes ticking."""
    broker, smtp, cluster = servers
    rows = due_reminders()
    cluster.env["REMINDER_BATCH_SIZE"] = "3"
    smtp.recorder.delay = 0.1  # ticks overlap
    _, log = cluster.worker("worker", "--concurrency", "2")
    cluster.beat("beat-1")
    cluster.beat("beat-2")
    wait_until(lambda: all_sent(rows), "every reminder sent")
    settle(log)
    assert_exactly_once(smtp, rows)


@pytest.mark.celery_worker
@needs_redis_server
def test_a_rolled_back_plan_sends_nothing(servers):
    """(g) The plan's transaction fails: no reminder row, nothing sent, while a committed one goes."""
    broker, smtp, cluster = servers
    _, log = cluster.worker("worker", "--concurrency", "1")
    cluster.beat()
    today = timezone.localdate()
    patient = f.PatientFactory(status="active", email="rolled-back@faults.example.test")
    with pytest.raises(RuntimeError), transaction.atomic():
        month_ago = today - dt.timedelta(days=30)
        rx = f.PrescriptionFactory(patient=patient, written_on=month_ago, start_on=month_ago)
        plan = f.PlanFactory(patient=patient, prescription=rx, start_date=month_ago)
        started = today - dt.timedelta(days=10)
        f.StepFactory(plan=plan, sequence=1, planned_start=started, actual_start=started, status="active")
        f.StepFactory(plan=plan, sequence=2, dose_mg=Decimal("3.0"), planned_start=today)
        assert Reminder.objects.filter(patient=patient).exists()
        Reminder.objects.filter(patient=patient).update(due_at=timezone.now(), next_attempt_at=timezone.now())
        raise RuntimeError("the plan's transaction fails")
    assert not Reminder.objects.filter(patient=patient).exists()
    control = due_reminders(1)  # committed: proves the worker is sending
    wait_until(lambda: all_sent(control), "the committed reminder sent")
    settle(log)
    assert smtp.recorder.to("rolled-back@faults.example.test") == []
    assert_exactly_once(smtp, control)
