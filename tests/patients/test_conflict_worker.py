"""The conflict engine through a real Celery worker process on the configured broker and database."""

import time
import uuid

import pytest
from django.db import connection

from patients.flag_models import ConflictFlag, FlagStatus
from patients.models import MedicationStatement
from patients.tasks import evaluate_medication
from tests import factories as f
from tests.test_celery import Processes, _wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def database_url_of_this_run() -> str:
    """The URL of the database this test run uses, for the worker process to use the same one."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    procs = Processes(tmp_path)
    procs.env["DATABASE_URL"] = database_url_of_this_run()
    queue = f"test-{uuid.uuid4().hex[:8]}"
    log = procs.celery("worker", "worker", "--loglevel", "INFO", "--concurrency", "1", "-Q", queue, "-n", f"{queue}@%h")
    _wait_for(log, "ready")
    yield queue, log
    procs.stop()


def test_worker_flags_a_medication_added_to_an_active_patient_within_a_minute(worker, clinic):
    queue, log = worker
    patient = f.PatientFactory(clinic=clinic, status="active")
    # Inserted without the save signal, so only the worker can raise the flag.
    (med,) = MedicationStatement.objects.bulk_create(
        [MedicationStatement(patient=patient, clinic=clinic, name="Norco 5/325", route="oral", release="IR")]
    )
    assert not ConflictFlag.objects.filter(medication=med).exists()
    evaluate_medication.apply_async(args=[med.pk], queue=queue)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ConflictFlag.objects.filter(medication=med).exists():
        time.sleep(0.5)
    flag = ConflictFlag.objects.get(medication=med)
    assert (flag.kind, flag.status) == ("conflict", FlagStatus.OPEN)
    # Delivered twice (acks_late redelivery, or a second enqueue): still one flag.
    evaluate_medication.apply_async(args=[med.pk], queue=queue)
    _wait_for(log, "succeeded", timeout=60)
    time.sleep(2)
    assert ConflictFlag.objects.filter(medication=med).count() == 1
