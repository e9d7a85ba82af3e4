"""``manage.py seed_demo``: a demo clinic with staff and patient logins and 26 patients at every stage.

The cast is titration/demo.py; this module writes it, in one transaction. Dates are relative to today
and values come from a seeded random.Random, so every run has the same shape. Rows go through save()
(each row takes its clinic from its patient), and patients, prescriptions, plans and steps through
full_clean(), so the demo meets the validation a user meets. A second run writes nothing: when the
demo clinic exists it prints the logins again.
"""

import datetime as dt
import math
import random
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse

from patients.models import (
    Clinic,
    DoseTime,
    LabResult,
    LabTest,
    MedicationStatement,
    Membership,
    Patient,
    PatientCondition,
    PatientStatus,
    User,
)
from patients.today import zone_today
from symptoms import instruments
from symptoms.models import Severity, SideEffect, SideEffectReport, SymptomCheckIn
from symptoms.services import instrument_score_store, score_module
from titration import demo, efficacy
from titration.demo import DREAMS, HEADACHE, INSOMNIA, MEDS, SPECS
from titration.models import (
    CompoundedPrescription,
    Filler,
    Form,
    Pharmacy,
    PlanStatus,
    PrescriptionStatus,
    QuantityUnit,
    StepStatus,
    StrengthUnit,
    TitrationPlan,
    TitrationProtocol,
    TitrationStep,
)

MIN_TREATED_DAYS = 85  # weekly check-ins on S+7 ... S+84 give 12 weeks on LDN


class Command(BaseCommand):
    help = "Create a demo LDN clinic: three staff logins, a patient login and 26 patients at every stage."

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
            clinic = seed(password=password, today=zone_today(demo.ZONE), rng=random.Random(demo.SEED))
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


def seed(*, password: str, today: dt.date, rng: random.Random) -> Clinic:
    """Write the demo clinic. The caller owns the transaction."""
    protocols = {p.key: (p, list(p.steps.order_by("sequence"))) for p in TitrationProtocol.objects.all()}
    clinic = Clinic.objects.create(
        name=demo.CLINIC_NAME, slug=demo.CLINIC_SLUG, time_zone=demo.ZONE, email="hello@example.com"
    )
    # One hash for every demo login: the password is printed anyway, and hashing it four times
    # at the production work factor would dominate the run time.
    encoded = make_password(password)
    staff = []  # prescriber first
    for username, first, last, role in demo.STAFF:
        staff.append(_login(username, first, last, encoded, is_staff=True))
        Membership.objects.create(user=staff[-1], clinic=clinic, role=role)
    prescriber = staff[0]
    pharmacies = [
        Pharmacy.objects.create(clinic=clinic, name=name, phone=phone, lead_time_days=lead, email="rx@example.com")
        for name, phone, lead in demo.PHARMACIES
    ]
    portal = next(s for s in SPECS if s.stage == "target" and s.responder)  # a patient doing well
    for number, spec in enumerate(SPECS, start=1):
        login = _login(demo.PATIENT_USERNAME, spec.first, spec.last, encoded) if spec is portal else None
        patient = _patient(clinic, number, spec, login, today, rng)
        if spec.stage == "screening":
            _background(patient, spec, today, today, rng)
            continue
        protocol, template = protocols[spec.protocol]
        plan, steps, end = _plan(patient, spec, protocol, template, today, rng, prescriber, rng.choice(pharmacies))
        _background(patient, spec, plan.start_date, today, rng)
        _checkins(patient, spec, plan.start_date, end, steps, rng)
    efficacy.raise_efficacy_reviews()  # what beat's first nightly run would raise (EFF-1)
    return clinic


def _login(username: str, first: str, last: str, encoded: str, is_staff: bool = False) -> User:
    email = f"{username}@example.com"
    return User.objects.create(
        username=username, first_name=first, last_name=last, email=email, is_staff=is_staff, password=encoded
    )


def _saved(obj):
    """Validate as a form would (field checks, clean(), constraints), then save."""
    obj.full_clean()
    obj.save()
    return obj


def _mg(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _patient(clinic, number, spec, login, today, rng) -> Patient:
    patient = Patient(
        clinic=clinic,
        mrn=f"DEMO-{number:04d}",
        first_name=spec.first,
        last_name=spec.last,
        date_of_birth=dt.date(spec.born, rng.randint(1, 12), rng.randint(1, 28)),
        sex=spec.sex,
        email=f"{spec.first}.{spec.last}@example.com".lower().replace("'", ""),
        mobile=f"07700 900{number:03d}",
        time_zone=demo.ZONE,
        dose_time=DoseTime.MORNING if spec.past_hold else DoseTime.BEDTIME,  # SE-3
        status=demo.PATIENT_STATUS.get(spec.stage, PatientStatus.ACTIVE),
        discontinued_reason=spec.reason,
        user=login,
    )
    if login is not None:
        # The portal patient asked for nightly reminders by email and text, early: today's is already
        # due whenever `make run` starts (after 00:05), so the worker log shows one delivered at once.
        patient.nightly_dose_reminders = patient.reminders_by_sms = True
        patient.reminder_time = dt.time(0, 5)
        patient.quiet_hours_start = patient.quiet_hours_end = dt.time(0, 0)  # no quiet hours
    _saved(patient)
    for i, condition in enumerate(spec.conditions):
        diagnosed = today - dt.timedelta(days=rng.randint(400, 4000) + 200 * i)
        PatientCondition.objects.create(patient=patient, condition=condition, diagnosed_on=diagnosed)
    return patient


def _background(patient, spec, anchor, today, rng) -> None:
    """Medicines and baseline labs; anchor = first LDN dose, or today while screening."""
    for key in spec.meds:
        med = MEDS[key]._asdict()
        last_days = med.pop("last_dose_days_before")
        MedicationStatement.objects.create(
            patient=patient,
            **med,
            start_date=anchor - dt.timedelta(days=rng.randint(200, 2000)),
            last_dose_date=None if last_days is None else anchor - dt.timedelta(days=last_days),
        )
    # A higher baseline ESR went with a better response in the fibromyalgia pilot (LAB-1, [S1]).
    good = spec.responder if spec.stage != "screening" else rng.random() < 0.5
    esr = rng.randint(22, 38) if good else rng.randint(6, 16)
    crp = Decimal(rng.randint(20, 90 if good else 40)) / 10
    baseline = anchor - dt.timedelta(days=rng.randint(7, 25))
    for test, value in [("ESR", esr), ("CRP", crp), ("ALT", rng.randint(12, 40)), ("AST", rng.randint(14, 35))]:
        _lab(patient, test, Decimal(value), baseline, rng)
    if (spec.first, spec.last) in demo.LAB_FINDINGS:
        test, shown, days_ago = demo.LAB_FINDINGS[spec.first, spec.last]
        day = today - dt.timedelta(days=days_ago)
        if test == "UDS":
            LabResult.objects.create(
                patient=patient,
                test=LabTest.UDS,
                result=shown,
                lab_source="Demo Pathology Lab",
                collected_at=_at(patient, day, 9, rng),
            )
        else:
            _lab(patient, test, Decimal(shown), day, rng)
    week12 = anchor + dt.timedelta(days=84 + rng.randint(0, 5))
    if spec.stage == "target" and week12 < today:
        drop = Decimal(rng.randint(20, 35) if good else rng.randint(0, 8)) / 100
        _lab(patient, "ESR", Decimal(esr) * (1 - drop), week12, rng)
        _lab(patient, "CRP", crp * (1 - drop), week12, rng)


def _lab(patient, test, value, day, rng) -> None:
    unit, low, high = demo.LAB_RANGES[test]
    LabResult.objects.create(
        patient=patient,
        test=LabTest(test),
        value=value.quantize(Decimal("0.1")),
        unit=unit,
        ref_low=Decimal(low),
        ref_high=Decimal(high),
        lab_source="Demo Pathology Lab",
        collected_at=_at(patient, day, 9, rng),
    )


def _at(patient, day, hour, rng) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, rng.randint(0, 59)), tzinfo=zoneinfo.ZoneInfo(patient.time_zone))


def _plan(patient, spec, protocol, template, today, rng, prescriber, pharmacy):
    """The plan, its steps and the last day on LDN. Planned dates follow the protocol's min_days (DOSE-2);
    actual starts lag by each patient's own pace, longer for a held step."""
    mins = [t.min_days for t in template]
    current = spec.step or len(template)
    days_on = {"titrating": (2, 12), "held": (15, 20), "target": (60, 130), "discontinued": (10, 14)}[spec.stage]
    days_on_current = rng.randint(*days_on)
    if spec.stage == "discontinued" and current == len(template):
        days_on_current = 112 if not spec.responder else rng.randint(50, 70)
    durations = [m + rng.randint(0, 4) for m in mins[: current - 1]]
    if spec.stage != "discontinued":  # on treatment: at least 12 weeks of check-ins (S+7 ... S+84)
        short = MIN_TREATED_DAYS + rng.randint(0, 20) - sum(durations) - days_on_current
        for _ in range(max(short, 0)):
            if durations:
                durations[rng.randrange(len(durations))] += 1
            else:
                days_on_current += 1
    if spec.past_hold:
        durations[-2] += 10
    on_ldn = sum(durations) + days_on_current
    end = today - dt.timedelta(days=rng.randint(14, 60)) if spec.stage == "discontinued" else today
    start = end - dt.timedelta(days=on_ldn)
    stopped = spec.stage == "discontinued"

    dose_now = template[current - 1].dose_mg
    rx = _prescription(patient, spec, dose_now, start, rng, prescriber, pharmacy)
    plan = TitrationPlan(
        clinic=patient.clinic,
        patient=patient,
        protocol=protocol,
        prescription=rx,
        target_dose_mg=protocol.target_dose_mg,
        start_date=start,
        created_by=prescriber,
        status=PlanStatus.CANCELLED if stopped else PlanStatus.ACTIVE,
        notes=f"{protocol.name}. {'Stopped: ' + spec.reason if stopped else ''}".strip(),
    )
    _saved(plan)
    steps, planned, actual = [], start, start
    for i, tmpl in enumerate(template, start=1):
        status, note = StepStatus.PLANNED, ""
        if i < current:
            status = StepStatus.DONE
        elif i == current:
            status = {"held": StepStatus.HELD, "discontinued": StepStatus.DONE}.get(spec.stage, StepStatus.ACTIVE)
        elif stopped:
            status, note = StepStatus.SKIPPED, "Not started: LDN stopped."
        if spec.past_hold and i == current - 2:
            note = "Held 10 extra days for mild vivid dreams (SE-1); moved the dose to the morning (SE-3)."
        if status == StepStatus.HELD:
            note = _held_note(spec.effect, tmpl.dose_mg, template[i - 2].dose_mg, actual)
        if stopped and i == current:
            note = f"LDN stopped on {end:%d %b %Y}."
        step = _saved(
            TitrationStep(
                clinic=patient.clinic,
                plan=plan,
                sequence=i,
                dose_mg=tmpl.dose_mg,
                min_days=tmpl.min_days,
                planned_start=planned,
                actual_start=actual if i <= current else None,
                status=status,
                note=note,
            )
        )
        steps.append(step)
        planned += dt.timedelta(days=tmpl.min_days)
        if i < current:
            actual += dt.timedelta(days=durations[i - 1])
    return plan, steps, end


def _held_note(effect, dose, previous, since) -> str:
    what = SideEffect(effect).label.lower()
    return (
        f"Step-up held: moderate {what} since starting {_mg(dose)} mg on {since:%d %b}. Stay on {_mg(dose)} mg "
        f"and review at the next check-in; step back to {_mg(previous)} mg if it has not settled (SE-2)."
    )


PER_PLAN = "Change the dose as your titration plan directs."


def _prescription(patient, spec, dose_now, start, rng, prescriber, pharmacy) -> CompoundedPrescription:
    """RX-1: capsules where every step is a whole number of capsules, otherwise 1 mg/mL liquid (RX-2)."""
    when = "in the morning" if spec.past_hold else "at bedtime"
    then = "" if spec.protocol == "FIXED_4_5" else " " + PER_PLAN
    if spec.protocol in ("STD_1_5", "FIXED_4_5"):
        strength = Decimal("1.5") if spec.protocol == "STD_1_5" else Decimal("4.5")
        form, unit, qty_unit, filler, quantity = Form.CAPSULE, StrengthUnit.MG_PER_CAPSULE, "capsules", Filler.MCC, 90
        if spec.protocol == "FIXED_4_5":
            quantity = 30
        count = _mg(dose_now / strength)
        sig = f"Take {count} capsule{'s' * (count != '1')} ({_mg(dose_now)} mg) by mouth {when}.{then}"
    else:
        strength, form, unit, qty_unit, filler = Decimal(1), Form.LIQUID, StrengthUnit.MG_PER_ML, "mL", Filler.NONE
        quantity = rng.choice([100, 150])
        sig = f"Take {_mg(dose_now)} mL ({_mg(dose_now)} mg) by mouth {when} with the oral syringe.{then}"
    rx = CompoundedPrescription(
        clinic=patient.clinic,
        patient=patient,
        form=form,
        strength_value=strength,
        strength_unit=unit,
        filler=filler,
        quantity=quantity,
        quantity_unit=QuantityUnit(qty_unit),
        days_supply=math.floor(quantity * strength / dose_now),  # RX-2
        refills=rng.randint(2, 5),
        sig=sig,
        pharmacy=pharmacy,
        prescriber=prescriber,
        written_on=start - dt.timedelta(days=pharmacy.lead_time_days + rng.randint(1, 5)),
        start_on=start,
        status=PrescriptionStatus.CANCELLED if spec.stage == "discontinued" else PrescriptionStatus.ACTIVE,
    )
    return _saved(rx)


def _checkins(patient, spec, start, end, steps, rng) -> None:
    """Two baseline check-ins in the 14 days before the first dose (BASE-1), then weekly (PRO-1) to `end`."""
    base = {k: rng.randint(6, 8) for k in ("pain", "fatigue")} | {
        k: rng.randint(3, 5) for k in ("sleep_quality", "mood")
    }
    # Change at full effect: pain and fatigue fall, sleep and mood rise; little of either for non-responders.
    gain = {
        "pain": -base["pain"] * (rng.uniform(0.38, 0.55) if spec.responder else rng.uniform(0.0, 0.1)),
        "fatigue": -base["fatigue"] * (rng.uniform(0.25, 0.45) if spec.responder else rng.uniform(0.0, 0.1)),
        "sleep_quality": rng.uniform(2.0, 3.5) if spec.responder else rng.uniform(0.0, 0.5),
        "mood": rng.uniform(1.5, 3.0) if spec.responder else rng.uniform(0.0, 0.5),
    }
    days = [start - dt.timedelta(days=rng.randint(10, 13)), start - dt.timedelta(days=rng.randint(3, 6))]
    # A patient still on LDN checked in yesterday at the latest: no check-in lies in the future.
    last = end if spec.stage == "discontinued" else end - dt.timedelta(days=1)
    days += [start + dt.timedelta(days=7 * week) for week in range(1, (last - start).days // 7 + 1)]
    current = next(s for s in reversed(steps) if s.actual_start)
    previous = start
    # The condition modules draw from their own generator, so adding them left the rest of the demo as it was.
    modules_rng, asked = random.Random(f"{patient.mrn}-modules"), set()
    for day in days:
        on_ldn = day >= start
        ramp = min(max(((day - start).days - 14) / 70, 0.0), 1.0)  # onset 2-4 weeks, full effect by week 12
        effects = _side_effects(spec, steps, current, previous, day, rng) if on_ldn else {}
        scores = {k: base[k] + gain[k] * ramp + rng.gauss(0, 0.6) for k in base}
        scores["sleep_quality"] -= max((s for e, (s, _) in effects.items() if e == INSOMNIA), default=0)
        missed = rng.choice([0] * 9 + [1, 2]) if on_ldn else 0
        checkin = SymptomCheckIn.objects.create(
            patient=patient,
            recorded_at=_at(patient, day, rng.randint(19, 21), rng),
            **{k: min(max(round(v), 0), 10) for k, v in scores.items()},
            took_dose_as_prescribed=(missed == 0) if on_ldn else None,
            nights_missed=missed,
            notes=rng.choice(demo.CHECKIN_NOTES) if rng.random() < 0.15 else "",
        )
        for effect, (severity, started) in effects.items():
            SideEffectReport.objects.create(checkin=checkin, effect=effect, severity=severity, started_on=started)
        _modules(patient, spec, checkin, (day - start).days // 7 if on_ldn else None, ramp, modules_rng, asked)
        previous = day


def _modules(patient, spec, checkin, week, ramp, rng, asked) -> None:
    """PRO-2 condition modules answered with the check-in, on their schedule (``due_instruments``; no
    licences, so no FIQR): HBI weekly for Crohn's (patient part: partial), MFIS every 4 weeks for MS,
    PGIC from week 4. ``week`` is None before the first dose: the modules once, as the baseline."""
    due = instruments.due_instruments(set(spec.conditions), week or 0, set())
    if week is None:
        due -= {instruments.PGIC} | (asked & {instruments.MFIS})  # one baseline MFIS; PGIC needs a start
    asked.update(due)
    effect = ramp if spec.responder else ramp * 0.15  # 0 before LDN works, 1 at full effect

    def level(before: float, after: float, high: int) -> int:
        return min(max(round(before + (after - before) * effect + rng.gauss(0, 0.4)), 0), high)

    answers = {
        instruments.HBI: lambda: {
            "well_being": level(2.4, 0.6, 4),
            "abdominal_pain": level(2.0, 0.5, 3),
            "liquid_stools": level(5.5, 1.5, 30),
            "complications": ["arthralgia"] if rng.random() < 0.6 - 0.4 * effect else [],
        },
        instruments.MFIS: lambda: {"items": [level(2.6, 1.5, 4) for _ in range(instruments.MFIS_ITEMS)]},
        instruments.PGIC: lambda: {"pgic": level(4.0, 1.6, 7) or 1},
    }
    for instrument in sorted(due & set(answers)):
        instrument_score_store(checkin=checkin, module=score_module(instrument, answers[instrument]()))


def _side_effects(spec, steps, current, previous, day, rng) -> dict[str, tuple[int, dt.date]]:
    """Mild, transient effects after a step-up; the held and stopped patients' effects on their last step."""
    effects: dict[str, tuple[int, dt.date]] = {}
    stepped = [s for s in steps if s.actual_start and previous < s.actual_start <= day]
    if stepped and rng.random() < 0.5:
        effect = rng.choices([DREAMS, HEADACHE, INSOMNIA, SideEffect.NAUSEA], weights=[4, 2, 2, 1])[0]
        effects[effect] = (Severity.MILD, min(stepped[-1].actual_start + dt.timedelta(days=rng.randint(0, 2)), day))
    elif not stepped and rng.random() < 0.04:
        effects[DREAMS] = (Severity.MILD, day - dt.timedelta(days=rng.randint(1, 5)))
    if spec.past_hold:
        held = steps[current.sequence - 3]
        if held.actual_start < day <= held.actual_start + dt.timedelta(days=17):
            effects[DREAMS] = (Severity.MILD, held.actual_start + dt.timedelta(days=1))
    if spec.effect:
        began = current.actual_start + dt.timedelta(days=2)
        if day >= began:
            effects[spec.effect] = (Severity.MODERATE, began)
            if spec.effect == DREAMS:
                effects[INSOMNIA] = (Severity.MODERATE, began)
    return effects
