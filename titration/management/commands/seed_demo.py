"""``manage.py seed_demo``: a demo clinic with staff and patient logins and 36 patients at every stage.

The cast is titration/demo.py. This module turns it into a timetable (what happens to whom, on which day,
relative to today; values from a seeded random.Random, so every run has the same shape) and then lives
through it in order, in one transaction: every clinical change is made by the service a clinician's page
calls (prescription_activate, plan_create, plan_start, plan_advance, plan_hold, plan_resume,
plan_discontinue, flag and task services, patient_set_status) and every check-in by the patient's
service (symptoms.services.checkin_submit), whose side effects steer the plan through the rules as they
would in life. Services that read the clock run with the clock at that moment (time-machine), so the
record's who-when-why is the story's. A second run writes nothing: when the demo clinic exists it prints
the logins again.
"""

import datetime as dt
import random
import uuid
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from unittest import mock

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from patients import record
from patients import services as patient_services
from patients.flag_models import AcknowledgeReason, ClinicianTask, FlagKind, TaskKind, TaskStatus
from patients.models import (
    Clinic,
    DoseTime,
    Membership,
    Patient,
    PatientStatus,
    User,
)
from patients.today import zone_today
from symptoms.services import checkin_submit
from titration import demo, efficacy, prescribing, reminders, rules, services
from titration.demo import MEDS, SPECS, Spec
from titration.models import (
    CompoundedPrescription,
    Pharmacy,
    PrescriberCredential,
    StepStatus,
    TitrationPlan,
    TitrationProtocol,
)

ZONE = zoneinfo.ZoneInfo(demo.ZONE)


class Command(BaseCommand):
    help = "Create a demo LDN clinic: three staff logins, a patient login and 36 patients at every stage."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=demo.DEFAULT_PASSWORD,
            help=f"password for every demo login (default {demo.DEFAULT_PASSWORD!r})",
        )

    def handle(self, *args, password: str, **options) -> None:
        clinic = Clinic.objects.filter(slug=demo.CLINIC_SLUG).first()
        if clinic is not None:
            self.stdout.write(f"The demo data is already present ({clinic.name}); nothing was written.")
            self._print_logins(clinic, password)
            return
        self._check_can_seed(password)
        with transaction.atomic():
            clinic = seed(password=password, now=timezone.now(), rng=random.Random(demo.SEED))
        self.stdout.write(
            self.style.SUCCESS(f"Created {clinic.name} with {Patient.objects.filter(clinic=clinic).count()} patients.")
        )
        self._print_logins(clinic, password)

    def _check_can_seed(self, password: str) -> None:
        taken = list(User.objects.filter(username__in=demo.USERNAMES).values_list("username", flat=True))
        if taken:
            raise CommandError(
                f"Login(s) {', '.join(sorted(taken))} already exist but the demo clinic does not; "
                "rename or remove them first."
            )
        missing = demo.PROTOCOL_KEYS - set(TitrationProtocol.objects.values_list("key", flat=True))
        if missing:
            raise CommandError(f"Titration protocols {', '.join(sorted(missing))} are missing: run migrate first.")
        for username, first, last, _role in demo.STAFF:
            try:
                validate_password(password, User(username=username, first_name=first, last_name=last))
            except ValidationError as exc:
                raise CommandError(f"--password: {' '.join(exc.messages)}") from None

    def _print_logins(self, clinic: Clinic, password: str) -> None:
        members = Membership.objects.filter(clinic=clinic, is_active=True).select_related("user").order_by("pk")
        logins = [(m.user, m.get_role_display()) for m in members]
        logins += [
            (p.user, f"Patient portal ({p.full_name})")
            for p in Patient.objects.filter(clinic=clinic, user__isnull=False).select_related("user")
        ]
        # A later run may be given another --password than the first; only show one that works.
        # hashers.check_password, not user.check_password: that one may re-hash and save.
        shown = password if logins and check_password(password, logins[0][0].password) else "(set on first run)"
        self.stdout.write("\nDemo logins:")
        for user, role in logins:
            self.stdout.write(f"  {user.username:<16}  {shown:<18}  {role}")
        self.stdout.write(f"\nStaff (prescriber, nurse, clinic admin): {settings.SITE_URL}{reverse('clinic:worklist')}")
        self.stdout.write(f"Patient portal (patient login):         {settings.SITE_URL}{reverse('portal-login')}")


def seed(*, password: str, now: dt.datetime, rng: random.Random) -> Clinic:
    """Write the demo clinic. The caller owns the transaction."""
    import time_machine  # a demo tool's dependency: only this command travels in time

    story = Story(now=now)
    for number, spec in enumerate(SPECS, start=1):
        story.cast(number, spec, rng)
    story.nightly_efficacy_reviews()
    clinic = story.open_clinic(password)
    # While the story is in the past, the reminder outbox is not planned: every row would fall due before
    # today and never be sent (the worker would send weeks of them on its first tick). Each patient's
    # reminders are planned once, today, in ``close``, as beat's planner would.
    with mock.patch.object(reminders, "plan_patient", _not_planned_in_the_past):
        for when, _number, _order, action, args in sorted(story.events, key=lambda e: e[:3]):
            if when > now:
                continue  # later today: it has not happened yet
            with time_machine.travel(when, tick=False):
                action(*args)
    story.close(clinic)
    return clinic


def _not_planned_in_the_past(patient, **kwargs) -> dict:
    return {"created": 0, "cancelled": 0, "revived": 0}


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE)


@dataclass
class Chart:
    """One demo patient as the story writes them."""

    number: int
    spec: Spec
    patient: Patient | None = None
    rx: CompoundedPrescription | None = None
    plan: TitrationPlan | None = None
    maintenance: dt.date | None = None  # first day on the target dose, when reached

    @property
    def mrn(self) -> str:
        return f"DEMO-{self.number:04d}"


class Story:
    """The timetable (``cast``), then the writes (the methods the events name), then ``close``."""

    def __init__(self, *, now: dt.datetime):
        self.now = now
        self.today = zone_today(ZONE, now)
        self.events: list[tuple] = []
        self.charts: list[Chart] = []
        self.protocols = {p.key: p for p in TitrationProtocol.objects.prefetch_related("steps")}

    def at(self, when: dt.datetime, chart: Chart | None, action, *args) -> None:
        self.events.append((when, chart.number if chart else 0, len(self.events), action, args))

    # --- The timetable -----------------------------------------------------------------------------

    def _template(self, spec: Spec) -> list[rules.StepSpec]:
        if spec.steps:
            return [rules.StepSpec(Decimal(dose), days) for dose, days in spec.steps]
        steps = sorted(self.protocols[spec.protocol].steps.all(), key=lambda s: s.sequence)
        return [rules.StepSpec(s.dose_mg, s.min_days) for s in steps]

    def cast(self, number: int, spec: Spec, rng: random.Random) -> None:
        chart = Chart(number, spec)
        self.charts.append(chart)
        details = {
            "date_of_birth": dt.date(spec.born, rng.randint(1, 12), rng.randint(1, 28)),
            "diagnosed": [
                self.today - dt.timedelta(days=rng.randint(400, 4000) + 200 * i) for i in range(len(spec.conditions))
            ],
        }
        if spec.stage not in demo.TREATED:
            self._screening(chart, details, rng)
            return
        template = self._template(spec)
        course = demo.course(spec, [s.min_days for s in template], rng)
        stopped = spec.stage == "discontinued"
        end = self.today - dt.timedelta(days=rng.randint(14, 60)) if stopped else self.today
        start = end - dt.timedelta(days=course.end)
        registered = start - dt.timedelta(days=14 + rng.randint(0, 6))
        self.at(_at(registered, 10), chart, self.register, chart, details, start, rng)
        self._labs(chart, registered, start, rng)

        def day(offset: int) -> dt.date:
            return start + dt.timedelta(days=offset)

        pharmacy = 0 if spec.stage == "new_start" else rng.randrange(len(demo.PHARMACIES))
        lead = demo.PHARMACIES[pharmacy][2]
        written = start - dt.timedelta(days=lead + rng.randint(1, 5))
        rx = demo.prescription(spec, template[0].dose_mg, rng) | {"written_on": written, "start_on": start}
        self.at(_at(written, 11), chart, self.make_plan, chart, start)
        self.at(_at(written, 11, 5), chart, self.prescribe, chart, rx | {"pharmacy": pharmacy})
        self.at(_at(start, 18), chart, self.start_plan, chart, start)
        # The doses taken, day by day (the step-back's lower dose included), for the supply to follow.
        schedule = [(day(offset), template[i].dose_mg) for i, offset in enumerate(course.steps)]
        if course.stepped_back is not None:
            schedule.append((day(course.stepped_back), template[len(course.steps) - 2].dose_mg))
        for renewal in demo.renewals(rx, schedule, end, lead, template[-1].dose_mg, rng):
            self.at(_at(renewal["written_on"], 11, 30), chart, self.renew, chart, renewal | {"pharmacy": pharmacy})
        for offset in course.steps[1:]:
            self.at(_at(day(offset), 18), chart, self.step_up, chart, day(offset))
        if len(course.steps) == len(template):
            chart.maintenance = day(course.steps[-1])
        for offset in course.resumes:  # reviewing the evening's check-ins (it is always in the past)
            self.at(_at(day(offset), 22, 30), chart, self.resume, chart, day(offset))
        if course.morning is not None:
            self.at(_at(day(course.morning), 22, 30), chart, self.morning_dose, chart)
        if course.hold is not None:
            self.at(_at(day(course.hold), 12), chart, self.hold, chart, spec.reason)
        self._checkins(chart, start, course, rng)
        if stopped:
            self.at(_at(end, 12), chart, self.discontinue, chart, spec.reason)

    def _screening(self, chart: Chart, details: dict, rng: random.Random) -> None:
        spec = chart.spec
        last_doses = [MEDS[m].last_dose_days_before for m in spec.meds if MEDS[m].last_dose_days_before is not None]
        if spec.stage == "declined":
            registered = self.today - dt.timedelta(days=40 + rng.randint(0, 5))
        else:  # after the last opioid dose recorded at the visit
            registered = self.today - dt.timedelta(days=min([rng.randint(2, 6), *last_doses]))
        self.at(_at(registered, 10), chart, self.register, chart, details, self.today, rng)
        self._labs(chart, registered, self.today, rng)
        baseline = demo.scores(spec, rng)
        for days in (rng.randint(9, 13), rng.randint(2, 5)):
            checkin_day = self.today - dt.timedelta(days=days)
            if checkin_day > registered:
                values = {k: min(max(round(v + rng.gauss(0, 0.6)), 0), 10) for k, v in baseline[0].items()}
                self._checkin(chart, checkin_day, values, None, [], {}, rng)
        if spec.stage == "declined":
            declined = registered + dt.timedelta(days=14 + rng.randint(0, 3))
            self.at(_at(declined, 12), chart, self.decline, chart, spec.reason)
        elif spec.protocol:  # drafted for the earliest safe start, not activated while the conflict is open
            yesterday = self.today - dt.timedelta(days=1)
            rx = demo.prescription(spec, self._template(spec)[0].dose_mg, rng)
            rx |= {"pharmacy": rng.randrange(len(demo.PHARMACIES)), "written_on": yesterday}
            rx["start_on"] = self.today + dt.timedelta(days=1)
            self.at(_at(yesterday, 11), chart, self.prepare, chart, rx)

    def _labs(self, chart: Chart, registered: dt.date, anchor: dt.date, rng: random.Random) -> None:
        """Baseline labs before the first dose (or today while screening), brought in at registration when
        taken before it; the week-12 repeat for patients at target; the section 5 findings."""
        spec = chart.spec
        good = spec.responder if spec.stage in demo.TREATED else rng.random() < 0.5
        # A higher baseline ESR went with a better response in the fibromyalgia pilot (LAB-1, [S1]).
        esr = rng.randint(22, 38) if good else rng.randint(6, 16)
        crp = Decimal(rng.randint(20, 90 if good else 40)) / 10
        baseline = anchor - dt.timedelta(days=rng.randint(7, 25))
        labs = [(t, Decimal(v), baseline) for t, v in [("ESR", esr), ("CRP", crp)]]
        labs += [("ALT", Decimal(rng.randint(12, 40)), baseline), ("AST", Decimal(rng.randint(14, 35)), baseline)]
        week12 = anchor + dt.timedelta(days=84 + rng.randint(0, 5))
        if spec.stage == "target" and week12 < self.today:
            drop = Decimal(rng.randint(20, 35) if good else rng.randint(0, 8)) / 100
            labs += [("ESR", Decimal(esr) * (1 - drop), week12), ("CRP", crp * (1 - drop), week12)]
        finding = demo.LAB_FINDINGS.get((spec.first, spec.last))
        if finding:
            test, shown, days_ago = finding
            labs.append((test, shown if test == "UDS" else Decimal(shown), self.today - dt.timedelta(days=days_ago)))
        for test, value, day in labs:
            taken = _at(day, 9, rng.randint(0, 59))
            entered = max(taken, _at(registered, 10, 30))
            self.at(entered, chart, self.lab, chart, test, value, taken)

    def _checkins(self, chart: Chart, start: dt.date, course: demo.Course, rng: random.Random) -> None:
        """Two baseline check-ins in the 14 days before the first dose (BASE-1), then weekly (PRO-1)."""
        spec = chart.spec
        base, gain = demo.scores(spec, rng)
        days = [(-rng.randint(10, 13), None), (-rng.randint(3, 6), None)] + [(d, d) for d in course.checkins]
        modules_rng, asked = random.Random(f"{chart.mrn}-modules"), set()  # as before: its own generator
        for offset, on_ldn in days:
            ramp = min(max((offset - 14) / 70, 0.0), 1.0)  # onset 2-4 weeks, full effect by week 12
            effects = course.effects.get(offset, []) if on_ldn is not None else []
            values = {k: base[k] + gain[k] * ramp + rng.gauss(0, 0.6) for k in base}
            values["sleep_quality"] -= max((s for e, s in effects if e == demo.INSOMNIA), default=0)
            values = {k: min(max(round(v), 0), 10) for k, v in values.items()}
            week = offset // 7 if on_ldn is not None else None
            modules = demo.modules(spec, week, ramp, modules_rng, asked)
            self._checkin(chart, start + dt.timedelta(days=offset), values, week, effects, modules, rng)

    def _checkin(self, chart, day, values, week, effects, modules, rng) -> None:
        missed = rng.choice([0] * 9 + [1, 2]) if week is not None else 0
        data = values | {
            "took_dose_as_prescribed": (missed == 0) if week is not None else None,
            "nights_missed": missed,
            "opioid_use": "no",
            "notes": rng.choice(demo.CHECKIN_NOTES) if rng.random() < 0.15 else "",
            "submission_id": uuid.uuid5(uuid.NAMESPACE_URL, f"ldn-demo:{chart.mrn}:{day.isoformat()}"),
        }
        reported = [(effect, severity, demo.effect_text(effect, severity)) for effect, severity in effects]
        self.at(
            _at(day, rng.randint(19, 21), rng.randint(0, 59)), chart, self.checkin, chart, day, data, reported, modules
        )

    def nightly_efficacy_reviews(self) -> None:
        """EFF-1: beat's nightly run on each night a patient reaches 12 weeks on the target dose; the
        prescriber closes the review within the week, except for those due in the last week."""
        for chart in self.charts:
            if chart.maintenance is None:
                continue
            due = chart.maintenance + dt.timedelta(days=rules.EFFICACY_REVIEW_DAYS)
            if due <= self.today:
                self.at(_at(due, 2), None, self.efficacy_run)
            if due <= self.today - dt.timedelta(days=7):
                self.at(_at(due + dt.timedelta(days=2 + chart.number % 5), 11), chart, self.efficacy_close, chart)

    # --- The writes, in the order they happen -----------------------------------------------------------

    def open_clinic(self, password: str) -> Clinic:
        import time_machine

        first = min(when for when, *_ in self.events) - dt.timedelta(days=1)
        with time_machine.travel(first, tick=False):
            clinic = Clinic.objects.create(
                name=demo.CLINIC_NAME, slug=demo.CLINIC_SLUG, time_zone=demo.ZONE, email="hello@example.com"
            )
            # One hash for every demo login: the password is printed anyway, and hashing it four times
            # at the production work factor would dominate the run time.
            self.encoded = make_password(password)
            staff = []
            for username, first_name, last_name, role in demo.STAFF:
                staff.append(_login(username, first_name, last_name, self.encoded, is_staff=True))
                Membership.objects.create(user=staff[-1], clinic=clinic, role=role)
            self.prescriber, self.nurse = staff[0], staff[1]
            # What the printed prescription names under the signature line (clinic configuration).
            PrescriberCredential.objects.create(
                clinic=clinic,
                user=self.prescriber,
                credentials=demo.PRESCRIBER_CREDENTIALS,
                licence_numbers=demo.LICENCES,
            )
            self.pharmacies = [
                Pharmacy.objects.create(
                    clinic=clinic, name=name, phone=phone, lead_time_days=lead, email="rx@example.com"
                )
                for name, phone, lead in demo.PHARMACIES
            ]
        self.clinic = clinic
        self.portal = next(c for c in self.charts if c.spec.stage == "target" and c.spec.responder)
        return clinic

    def register(self, chart: Chart, details: dict, anchor: dt.date, rng: random.Random) -> None:
        """The nurse records the patient, their conditions and medicines (patients.record.patient_create;
        anchor: the first LDN dose, or today while screening: the last opioid doses count back from it)."""
        spec = chart.spec
        medications = []
        for key in spec.meds:
            med = MEDS[key]._asdict()
            last_days = med.pop("last_dose_days_before")
            medications.append(
                med
                | {
                    "start_date": anchor - dt.timedelta(days=rng.randint(200, 2000)),
                    "last_dose_date": None if last_days is None else anchor - dt.timedelta(days=last_days),
                }
            )
        conditions = zip(spec.conditions, details["diagnosed"], strict=True)
        chart.patient = record.patient_create(
            actor=self.nurse,
            clinic=self.clinic,
            mrn=chart.mrn,
            first_name=spec.first,
            last_name=spec.last,
            date_of_birth=details["date_of_birth"],
            sex=spec.sex,
            email=f"{spec.first}.{spec.last}@example.com".lower().replace("'", ""),
            mobile=f"07700 900{chart.number:03d}",
            address=f"{10 + chart.number} Demo Street, London E1 {chart.number % 9 + 1}AA",
            time_zone=demo.ZONE,
            conditions=[{"condition": c, "diagnosed_on": d} for c, d in conditions],
            medications=medications,
        )
        if chart is self.portal:
            # The demo's one portal login, with the published password (a real patient is invited by email:
            # symptoms.accounts.patient_account_invite).
            patient = chart.patient
            patient.user = _login(demo.PATIENT_USERNAME, spec.first, spec.last, self.encoded)
            patient._history_user, patient._change_reason = self.nurse, "portal login: the demo patient's"
            patient.save(update_fields=["user", "updated_at"])

    def lab(self, chart: Chart, test: str, value, taken: dt.datetime) -> None:
        """Entered by the nurse (patients.record.lab_add): saving runs LAB-2 and the urine screen."""
        if test == "UDS":
            fields = {"result": value}
        else:
            unit, low, high = demo.LAB_RANGES[test]
            fields = {"value": value.quantize(Decimal("0.1")), "unit": unit}
            fields |= {"ref_low": Decimal(low), "ref_high": Decimal(high)}
        record.lab_add(
            actor=self.nurse,
            patient=chart.patient,
            test=test,
            collected_at=taken,
            lab_source="Demo Pathology Lab",
            **fields,
        )

    def checkin(self, chart: Chart, day: dt.date, data: dict, effects: list, modules: dict) -> None:
        """The patient's weekly check-in. Its side effects steer the plan (titration.signals does it after
        commit; the whole demo is one transaction, so the rules are applied here, on the check-in's day)."""
        # One Patient object per chart, refreshed in place: the after-commit receivers of every check-in
        # read it (report.checkin.patient) when the demo commits, so it must be the patient as they are then.
        chart.patient.refresh_from_db()
        checkin_submit(patient=chart.patient, data=data, side_effects=effects, modules=modules)
        if effects:
            services.apply_side_effects(patient=chart.patient, today=day)

    def prescribe(self, chart: Chart, fields: dict) -> None:
        """The first prescription, written for the drafted plan (titration.prescribing.prescription_create
        computes its days supply over the plan's doses, RX-2) and activated through the opioid gate, once
        the prescriber has checked what the engine asked to verify."""
        patient_services.patient_evaluate(patient=chart.patient)
        for flag in patient_services.open_flags(chart.patient):
            if flag.kind != FlagKind.CONFLICT:
                note = demo.VERIFIED[flag.medication.name]
                patient_services.flag_acknowledge(
                    actor=self.prescriber, flag=flag, reason=AcknowledgeReason.OTHER, note=note
                )
        chart.rx = self._write(chart, fields)
        services.prescription_activate(actor=self.prescriber, prescription=chart.rx)

    def prepare(self, chart: Chart, fields: dict) -> None:
        """A screening patient with an open conflict: the prescriber drafts the prescription for its earliest
        safe start and leaves it unactivated, as the gate would refuse it (OPI-W1)."""
        patient_services.patient_evaluate(patient=chart.patient)
        conflicts = [f for f in patient_services.open_flags(chart.patient) if f.kind == FlagKind.CONFLICT]
        safe = [f.earliest_safe_start for f in conflicts if f.earliest_safe_start]
        fields = fields | {"start_on": max([fields["start_on"], *safe])}
        chart.rx = self._write(chart, fields, for_dose_mg=self._template(chart.spec)[0].dose_mg)

    def renew(self, chart: Chart, fields: dict) -> None:
        """RX-3: a new prescription before the supply runs out; the one it replaces is completed."""
        old, chart.rx = chart.rx, self._write(chart, fields)
        services.prescription_activate(actor=self.prescriber, prescription=chart.rx)
        why = f"replaced by the prescription from {chart.rx.start_on:%d %b %Y}"
        services.prescription_complete(actor=self.prescriber, prescription=old, reason=why)

    def _write(self, chart: Chart, fields: dict, for_dose_mg: Decimal | None = None) -> CompoundedPrescription:
        """A draft (RX-2's warnings, such as a later step the strength cannot make, are RX-3's to show)."""
        fields = fields | {"pharmacy": self.pharmacies[fields["pharmacy"]]}
        rx, _warnings = prescribing.prescription_create(
            actor=self.prescriber, patient=chart.patient, for_dose_mg=for_dose_mg, **fields
        )
        return rx

    def make_plan(self, chart: Chart, start: dt.date) -> None:
        spec = chart.spec
        protocol = self.protocols.get(spec.protocol)
        custom = None if protocol else self._template(spec)
        chart.plan = services.plan_create(
            actor=self.prescriber,
            patient=chart.patient,
            start=start,
            protocol=protocol,
            custom_steps=custom,
            prescription=chart.rx,
            note=spec.note or f"{protocol.name}.",
        )

    def start_plan(self, chart: Chart, start: dt.date) -> None:
        services.plan_start(actor=self.prescriber, plan=chart.plan, start=start)

    def step_up(self, chart: Chart, on: dt.date) -> None:
        try:
            services.plan_advance(actor=self.prescriber, plan=chart.plan, on=on)
        except services.StepUpNotAllowed as exc:  # the timetable is built to pass 1.3: a rule changed
            raise CommandError(f"The demo story of {chart.spec.first} {chart.spec.last} on {on}: {exc}") from None

    def resume(self, chart: Chart, clear_on: dt.date) -> None:
        """When a check-in no longer reports the mild effect, the prescriber ends the side-effect hold (SE-1)
        and the nurse closes the morning-dose suggestion (SE-3) it raised."""
        current = self._current(chart)
        if current is not None and current.status == StepStatus.HELD and not current.held_by_clinician:
            services.plan_resume(
                actor=self.prescriber,
                plan=chart.plan,
                reason=f"the side effect had gone by the check-in on {clear_on:%d %b}: "
                "the step-up rule applies again (SE-1)",
            )
        note = "Offered morning dosing (SE-3); the effect settled, so bedtime dosing continues."
        self._close_tasks(chart, self.nurse, note, key="morning-dose:")

    def morning_dose(self, chart: Chart) -> None:
        """SE-3: the patient agrees to take LDN in the morning."""
        record.patient_update(
            actor=self.nurse, patient=chart.patient, dose_time=DoseTime.MORNING, reason="vivid dreams (SE-3)"
        )
        self._close_tasks(
            chart, self.nurse, "Moved LDN to the morning for the vivid dreams (SE-3).", key="morning-dose:"
        )

    def hold(self, chart: Chart, reason: str) -> None:
        services.plan_hold(actor=self.prescriber, plan=chart.plan, reason=reason)

    def discontinue(self, chart: Chart, reason: str) -> None:
        services.plan_discontinue(actor=self.prescriber, plan=chart.plan, reason=reason)
        services.prescription_cancel(actor=self.prescriber, prescription=chart.rx, reason=f"LDN stopped: {reason}")
        self._close_tasks(chart, self.prescriber, "LDN discontinued.", status=TaskStatus.CANCELLED)

    def decline(self, chart: Chart, reason: str) -> None:
        patient_services.patient_set_status(
            actor=self.nurse, patient=chart.patient, status=PatientStatus.DISCONTINUED, reason=reason
        )

    def efficacy_run(self) -> None:
        efficacy.raise_efficacy_reviews()

    def efficacy_close(self, chart: Chart) -> None:
        if chart.spec.responder:
            note = "Reviewed at 12 weeks: responding (EFF-2). Continue 4.5 mg nightly; next review in 3 months."
        else:
            note = "Not a responder at 12 weeks (EFF-2): discussed; four more weeks at 4.5 mg, then decide."
        self._close_tasks(chart, self.prescriber, note, kind=TaskKind.EFFICACY_REVIEW)

    def _current(self, chart: Chart):
        return chart.plan.steps.filter(status__in=[StepStatus.ACTIVE, StepStatus.HELD]).order_by("-sequence").first()

    def _close_tasks(self, chart, actor, note, *, kind="", key="", status=TaskStatus.DONE) -> None:
        """Close the patient's open tasks (of ``kind``, or whose key starts with ``key``) with the note."""
        tasks = ClinicianTask.objects.filter(patient=chart.patient, status=TaskStatus.OPEN, key__startswith=key)
        if kind:
            tasks = tasks.filter(kind=kind)
        for task in tasks.order_by("pk"):
            patient_services.task_close(actor=actor, task=task, status=status, note=note)

    def close(self, clinic: Clinic) -> None:
        """Back in the present: every patient's reminders are planned from today, as beat's planner would,
        and the nightly EFF-1 run catches anyone due today."""
        for chart in self.charts:  # as the services left them
            chart.patient.refresh_from_db()
        portal = self.portal.patient
        # The portal patient asked for nightly reminders by email and text, early: today's is already
        # due whenever `make run` starts (after 00:05), so the worker log shows one delivered at once.
        record.reminder_preferences_set(
            actor=portal.user,
            patient=portal,
            reminders_by_email=True,
            reminders_by_sms=True,
            nightly_dose_reminders=True,
            reminder_time=dt.time(0, 5),
            quiet_hours_start=dt.time(0, 0),  # no quiet hours
            quiet_hours_end=dt.time(0, 0),
            dose_time=portal.dose_time,
        )
        portal.refresh_from_db()
        for chart in self.charts:
            reminders.plan_patient(chart.patient)
        efficacy.raise_efficacy_reviews()  # what beat's first nightly run would raise (EFF-1)


def _login(username: str, first: str, last: str, encoded: str, is_staff: bool = False) -> User:
    email = f"{username}@example.com"
    return User.objects.create(
        username=username, first_name=first, last_name=last, email=email, password=encoded, is_staff=is_staff
    )
