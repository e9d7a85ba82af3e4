"""A real Celery worker and beat, as separate processes, on the configured broker.

With REDIS_URL set (CI) this runs on Redis; without it, on the embedded filesystem broker that
`make run` uses. Nothing is mocked: the test process enqueues, another process executes.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ldnclinic.tasks import heartbeat

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.celery_worker


def _wait_for(path: Path, text: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.25)
    raise AssertionError(f"{text!r} did not appear in {path.name} within {timeout}s:\n{content[-3000:]}")


class Processes:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.running: list[subprocess.Popen] = []
        self.env = dict(os.environ, DJANGO_SETTINGS_MODULE="ldnclinic.test_settings", HEARTBEAT_SECONDS="1")

    def celery(self, name: str, *args: str) -> Path:
        log = self.tmp_path / f"{name}.log"
        handle = log.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ldnclinic", *args],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(proc)
        return log

    def stop(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.running:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop()


def test_worker_process_runs_a_task_enqueued_by_another_process(processes):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    log = processes.celery(
        "worker", "worker", "--loglevel", "INFO", "--concurrency", "1", "-Q", queue, "-n", f"{queue}@%h"
    )
    _wait_for(log, "ready")
    label = uuid.uuid4().hex
    heartbeat.apply_async(args=[label], queue=queue)
    _wait_for(log, f"beat tick {label}")


def test_beat_process_schedules_heartbeats_that_the_worker_logs(processes, tmp_path):
    # Beat sends to the default queue, where the suite's earlier tests leave tasks their commits enqueued
    # (medication checks for databases long gone): empty it first, so the worker's first task is beat's.
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "ldnclinic", "purge", "-f", "-Q", "celery"],
        cwd=ROOT,
        env=processes.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker_log = processes.celery(
        "worker", "worker", "--loglevel", "INFO", "--concurrency", "1", "-Q", f"celery,{queue}", "-n", f"{queue}@%h"
    )
    _wait_for(worker_log, "ready")
    beat_log = processes.celery("beat", "beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "schedule"))
    _wait_for(beat_log, "Scheduler: Sending due task heartbeat")
    content = _wait_for(worker_log, "beat tick beat")
    # Beat keeps ticking: at least two ticks reach the worker.
    deadline = time.monotonic() + 60
    while content.count("beat tick beat") < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        content = worker_log.read_text(errors="replace")
    assert content.count("beat tick beat") >= 2
