"""`make run` as a new user meets it: one command sets up and starts web, worker and beat on the
embedded defaults with demo data, prints the staff and patient addresses and serves both, beat ticks
reach the worker, Ctrl-C stops all.
"""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.celery_worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout}s; output:\n{log.read_text()[-4000:]}")


def _get(opener, url):
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return None, ""


@pytest.fixture
def make_run(tmp_path):
    port = _free_port()
    log = tmp_path / "make-run.log"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(LDN_VAR_DIR=str(tmp_path / "var"), HEARTBEAT_SECONDS="2", SECRET_KEY="", DEBUG="")
    env.pop("SECRET_KEY")
    env.pop("DEBUG")
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield proc, port, log
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_make_run_serves_the_demo_clinic_and_ctrl_c_stops_everything(make_run):
    proc, port, log = make_run
    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    _wait(lambda: _get(opener, f"{base}/clinic/login/")[0] == 200, 240, "the staff login page", log)
    output = log.read_text()
    staff_url, patient_url = f"{base}/clinic/", f"{base}/me/login/"
    # Printed by make run, and again by seed_demo beside the logins (SITE_URL follows HOST and PORT).
    assert f"staff:    {staff_url}\n" in output and f"patients: {patient_url}\n" in output
    assert re.search(rf"^Staff \(.*\): +{re.escape(staff_url)}$", output, re.MULTILINE), output[-2000:]
    assert re.search(rf"^Patient portal \(.*\): +{re.escape(patient_url)}$", output, re.MULTILINE), output[-2000:]
    assert "/admin/" not in output  # clinicians are not sent to the admin
    logins = dict(re.findall(r"^\s+(demo-\w+)\s+(\S+)\s+", output, re.MULTILINE))
    assert {"demo-prescriber", "demo-nurse", "demo-admin"} <= set(logins)

    # Both printed addresses answer: the staff one asks an anonymous visitor to log in.
    with opener.open(staff_url, timeout=5) as response:
        assert response.url == f"{base}/clinic/login/?next=/clinic/" and response.status == 200
    status, portal = _get(opener, patient_url)
    assert status == 200 and 'name="password"' in portal

    # Log in at the staff address as the demo prescriber, as a person would: the worklist opens.
    _, page = _get(opener, f"{base}/clinic/login/?next=/clinic/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "demo-prescriber", "password": logins["demo-prescriber"], "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(f"{base}/clinic/login/?next=/clinic/", data=form, headers={"Referer": base})
    with opener.open(request, timeout=10) as response:
        assert response.url == staff_url and response.status == 200
    status, patients = _get(opener, f"{base}/admin/patients/patient/")  # the demo data is all there
    assert status == 200
    count = int(re.search(r"(\d+) patients", patients).group(1))
    assert count >= 25

    # The demo's due reminders are delivered to the console within a minute of starting.
    # Email and SMS go out in the same tick, side by side: whichever is printed first, both are.
    _wait(lambda: "Subject: LDN tonight" in log.read_text(), 60, "a demo reminder on the console", log)
    _wait(lambda: "SMS to 07700" in log.read_text(), 30, "a demo text message on the console", log)

    # Beat -> worker -> shared cache -> web: /healthz shows a recent tick, and the worker logs it.
    _wait(lambda: "beat tick beat" in log.read_text(), 120, "a beat tick in the worker log", log)
    health = json.loads(_get(opener, f"{base}/healthz")[1])
    assert health["database"] == "ok" and health["last_beat"]

    # Ctrl-C in the terminal signals the whole foreground group; all three must stop.
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)

    def group_gone():
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait(group_gone, 30, "every process of make run to exit", log)
    assert _get(opener, f"{base}/clinic/login/")[0] is None
