"""Benchmark: the reminder sweep through a real Celery worker, next to a no-op task through the same
worker and broker (issue goals: sweep >= 0.25 of the no-op rate; due-to-sent lag p95 <= tick + 30 s).

On PostgreSQL when DATABASE_URL is set (in a throwaway database, ldnclinic_bench_<pid>, created and
dropped here, so two runs on one server cannot drop each other's), else on a temporary SQLite file;
on Redis when REDIS_URL is set (a private queue), else on the embedded filesystem broker. Sending is
real SMTP to an aiosmtpd server on loopback that counts each Message-ID (so the run also checks
exactly-once); BENCH_MAILER=console swaps in Django's console backend (into the worker's log,
deleted afterwards) to see what the sweep costs without SMTP.

BENCH_REMINDERS rows (default 100,000) are bulk-created, then made due over the last tick interval,
as if they fell due since beat's previous tick; the bench then sends reminder_tick every
REMINDER_TICK_SECONDS (default 60) the way beat would, and the tick chains itself while it has a
full batch. The worker is the Procfile's (prefork, concurrency 2) unless BENCH_POOL or
BENCH_CONCURRENCY say otherwise; REMINDER_SMTP_CONNECTIONS sets how many reminders go side by side.
Not a test: `make bench` runs it.
"""

import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
BENCH_DATABASE = f"ldnclinic_bench_{os.getpid()}"
RATIO_GOAL = 0.25
LAG_SLACK_SECONDS = 30
PATIENTS = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


class CountingSMTP:
    """aiosmtpd handler: accepts everything and counts Message-IDs (parsing 100k messages would cost
    more than sending them)."""

    message_id = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)

    def __init__(self):
        self.ids: Counter = Counter()

    async def handle_DATA(self, server, session, envelope):
        found = self.message_id.search(envelope.content)
        self.ids[found.group(1) if found else b"?"] += 1
        return "250 OK"


def prepare_database(tmp: Path) -> tuple[str, str | None]:
    """Point this process (and the worker, which inherits the environment) at a throwaway database."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        os.environ["LDN_VAR_DIR"] = str(tmp)  # the embedded SQLite file (WAL) and cache go here
        return "sqlite", None
    import psycopg

    parsed = urlparse(url)
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    os.environ["DATABASE_URL"] = parsed._replace(path=f"/{BENCH_DATABASE}").geturl()
    os.environ["LDN_VAR_DIR"] = str(tmp)
    return "postgresql", admin_url


def drop_database(admin_url: str | None) -> None:
    if admin_url is None:
        return
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


def create_reminders(count: int, tick: float, far: dt.datetime) -> None:
    """``count`` pending email reminders, due ``far`` minus a spread of one tick interval (shifted
    to now when the sweep starts). Washout reminders render without queries, so what is measured is
    the outbox: claim, build, send, mark."""
    from patients.models import Clinic, Patient
    from titration.models import Reminder

    clinic = Clinic.objects.create(name="Bench clinic", slug="bench")
    patients = Patient.objects.bulk_create(
        Patient(
            clinic=clinic,
            mrn=f"B{i:06d}",
            first_name="Bench",
            last_name=f"Patient {i}",
            date_of_birth=dt.date(1980, 1, 1),
            email=f"bench{i}@patients.example.test",
        )
        for i in range(min(PATIENTS, count))
    )
    batch = []
    for i in range(count):
        due = far - dt.timedelta(seconds=tick * (i % 1000) / 1000)
        batch.append(
            Reminder(
                clinic=clinic,
                patient=patients[i % len(patients)],
                kind="washout",
                channel="email",
                local_date=dt.date(2026, 1, 1),
                due_at=due,
                next_attempt_at=due,
                idempotency_key=f"bench-{i}",
            )
        )
        if len(batch) == 5000:
            Reminder.objects.bulk_create(batch)
            batch = []
    Reminder.objects.bulk_create(batch)


class Worker:
    def __init__(self, tmp: Path, queue: str, env: dict):
        self.log = tmp / "worker.log"
        self.concurrency = concurrency = os.environ.get("BENCH_CONCURRENCY", "2")  # as in the Procfile
        command = [sys.executable, "-m", "celery", "-A", "ldnclinic", "worker", "--loglevel", "INFO"]
        command += ["-Q", queue, "-n", f"{queue}@%h", "--concurrency", concurrency]
        command += ["--pool", os.environ.get("BENCH_POOL", "prefork")]
        command += ["--without-mingle", "--without-gossip"]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while "ready" not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def wait_for_label(label: str, timeout: float) -> None:
    from django.core.cache import cache

    from ldnclinic.tasks import HEARTBEAT_CACHE_KEY

    deadline = time.monotonic() + timeout
    while (cache.get(HEARTBEAT_CACHE_KEY) or {}).get("label") != label:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sentinel task did not run within {timeout}s")
        time.sleep(0.02)


def noop_rate(app, queue: str, count: int) -> float:
    """Tasks a second, from the first publish until the worker has run them all (a sentinel task
    queued behind them writes the cache)."""
    from ldnclinic.tasks import heartbeat

    def run(n: int) -> float:
        label = uuid.uuid4().hex
        start = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(n):
                app.send_task("celery.accumulate", queue=queue, producer=producer)
        heartbeat.apply_async(args=[label], queue=queue)
        wait_for_label(label, timeout=600)
        return n / (time.perf_counter() - start)

    run(min(200, count))  # warm-up: connections, imports in the pool processes
    return run(count)


def sweep(app, queue: str, count: int, tick: float, far: dt.datetime, timeout: float) -> dict:
    from django.db.models import F
    from django.utils import timezone

    from titration.models import Reminder
    from titration.tasks import reminder_tick

    t0 = timezone.now()
    shift = far - t0
    Reminder.objects.update(due_at=F("due_at") - shift, next_attempt_at=F("next_attempt_at") - shift)
    start = time.monotonic()
    next_tick = start
    sent = last_progress = 0
    last_change = start
    while sent < count:
        now = time.monotonic()
        if now >= next_tick:  # beat
            reminder_tick.apply_async(queue=queue)
            next_tick += tick
        time.sleep(0.5)
        sent = Reminder.objects.filter(status="sent").count()
        if sent != last_progress:
            last_progress, last_change = sent, time.monotonic()
        if time.monotonic() - start > timeout or time.monotonic() - last_change > max(120, 2 * tick):
            break
    rows = list(Reminder.objects.filter(status="sent").values_list("due_at", "sent_at"))
    lags = sorted((sent_at - due_at).total_seconds() for due_at, sent_at in rows)
    finished = max((sent_at for _, sent_at in rows), default=t0)
    seconds = max((finished - t0).total_seconds(), 1e-6)
    return {
        "sent": len(rows),
        "sweep_seconds": round(seconds, 1),
        "reminders_per_second": len(rows) / seconds,
        "lag_p95_seconds": lags[int(0.95 * (len(lags) - 1))] if lags else None,
        "lag_max_seconds": lags[-1] if lags else None,
        "not_sent": dict(Counter(Reminder.objects.exclude(status="sent").values_list("status", flat=True))),
    }


def main() -> int:
    count = env_int("BENCH_REMINDERS", 100_000)
    # The filesystem broker polls (tens of tasks a second): 10,000 no-ops would take minutes there.
    noops = env_int("BENCH_NOOP_TASKS", 10_000 if os.environ.get("REDIS_URL") else 1_000)
    timeout = env_int("BENCH_TIMEOUT", 900)
    mailer = os.environ.get("BENCH_MAILER", "smtp")
    tmp = Path(tempfile.mkdtemp(prefix="ldnclinic-bench-"))
    os.environ.pop("LDN_FAULT", None)
    database, admin_url = prepare_database(tmp)
    smtp = None
    if mailer == "smtp":
        from aiosmtpd.controller import Controller

        handler = CountingSMTP()
        smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
        smtp.start()
        os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{smtp.port}"
    else:
        os.environ["EMAIL_URL"] = "consolemail://"

    import django

    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    from django.conf import settings
    from django.core.management import call_command

    from ldnclinic.celery import app

    tick = float(settings.CELERY_BEAT_SCHEDULE["reminder-tick"]["schedule"].total_seconds())
    broker = "redis" if settings.REDIS_URL else "filesystem"
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    worker = None
    try:
        call_command("migrate", verbosity=0)
        far = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        started = time.monotonic()
        create_reminders(count, tick, far)
        created_seconds = time.monotonic() - started
        print(f"# {database} + {broker} broker, {mailer} mailer: {count} reminders created in {created_seconds:.0f}s")
        worker = Worker(tmp, queue, dict(os.environ))
        noop = noop_rate(app, queue, noops)
        print(f"# no-op tasks: {noop:.0f}/s; sweeping, first tick now, then every {tick:.0f}s")
        result = sweep(app, queue, count, tick, far, timeout)
    finally:
        if worker is not None:
            worker.stop()
        if smtp is not None:
            smtp.stop()
        if settings.REDIS_URL:
            with app.connection_for_write() as connection:
                connection.default_channel.queue_delete(queue)
        drop_database(admin_url)
        shutil.rmtree(tmp, ignore_errors=True)
    duplicates = sum(n - 1 for n in handler.ids.values() if n > 1) if smtp is not None else None
    ratio = result["reminders_per_second"] / noop
    lag_goal = tick + LAG_SLACK_SECONDS
    out = {
        "benchmark": "reminder_sweep",
        "database": database,
        "broker": broker,
        "mailer": mailer,
        "reminders": count,
        "sent": result["sent"],
        "not_sent": result["not_sent"],
        "smtp_messages": sum(handler.ids.values()) if smtp is not None else None,
        "smtp_duplicates": duplicates,
        "sweep_seconds": result["sweep_seconds"],
        "reminders_per_second": round(result["reminders_per_second"], 1),
        "noop_tasks": noops,
        "noop_tasks_per_second": round(noop, 1),
        "ratio": round(ratio, 3),
        "ratio_goal": RATIO_GOAL,
        "tick_seconds": tick,
        "worker_concurrency": int(worker.concurrency),
        "smtp_connections": settings.REMINDER_SMTP_CONNECTIONS,
        "lag_p95_seconds": round(result["lag_p95_seconds"], 1) if result["lag_p95_seconds"] is not None else None,
        "lag_max_seconds": round(result["lag_max_seconds"], 1) if result["lag_max_seconds"] is not None else None,
        "lag_p95_goal_seconds": lag_goal,
    }
    out["meets_goal"] = bool(
        result["sent"] == count
        and not duplicates
        and ratio >= RATIO_GOAL
        and out["lag_p95_seconds"] is not None
        and out["lag_p95_seconds"] <= lag_goal
    )
    print(json.dumps(out))
    return 0 if out["meets_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
