"""A patient's response to LDN as clinicians read it: BASE-1 baselines, RESP-1..RESP-3 change on the NRS items,
the condition-specific responders RESP-4..RESP-7, and whether week 12 on the maintenance dose has been reached.

Reads only. The rules are symptoms.rules (pure); this module gathers their inputs from the database and says
in plain sentences what they found. It never decides a threshold itself.

- Dates are the patient's local dates (``Patient.zone``); ``today`` is the date the outcome is read on, and
  nothing recorded after it counts. Archived (soft-deleted) check-ins and the instrument scores that came in
  them are ignored.
- Current NRS value (RESP-1): the mean of the last 2 check-ins on or after the first dose. A blank item in
  either leaves the change undefined (symptoms.rules.item_change), it does not reach back further.
- Instrument baselines and current scores: symptoms.rules.instrument_pair. PGIC (RESP-7) is the latest answer
  since the first dose.
- The responder status (what EFF-2 reads) is symptoms.rules.responder_status; before week 12 on the
  maintenance dose it is provisional.

``patient_outcomes`` reads any number of patients in three queries (check-ins, instrument scores, conditions)
when given their treatment dates; titration's admin passes them, read in bulk. Without them each patient costs
the queries of ``hooks.treatment_dates`` too.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from patients.models import PatientCondition
from patients.services import patient_today

from . import hooks, instruments, rules
from .instrument_models import InstrumentScore
from .models import NRS_FIELDS, SymptomCheckIn

ITEM_LABELS = {"pain": "Pain", "fatigue": "Fatigue", "sleep_quality": "Sleep quality", "mood": "Mood"}
PROVISIONAL, EVALUATED = "provisional", "evaluated"
MINUS, number = rules.MINUS, rules.number  # as the pages and reports print them


@dataclass(frozen=True)
class ItemOutcome:
    """One NRS item: its BASE-1 baseline and its RESP-1..RESP-3 change (``change.reason`` says why when the
    change is undefined)."""

    item: str
    baseline: rules.Baseline | None  # value (exact mean), n (entries), weak
    baseline_text: str
    current_dates: tuple[dt.date, ...]  # the check-ins read as "current" (RESP-1), oldest first
    change: rules.Response

    @property
    def label(self) -> str:
        return ITEM_LABELS[self.item]

    @property
    def weak_baseline(self) -> bool:
        return self.baseline is not None and self.baseline.weak

    @property
    def entries(self) -> int:
        return self.baseline.n if self.baseline is not None else 0

    @property
    def baseline_display(self) -> Decimal | None:
        return self.baseline.display if self.baseline is not None else None

    @property
    def current_display(self) -> Decimal | None:
        current = self.change.current
        return instruments.round_half_up(current) if current is not None else None

    @property
    def change_display(self) -> str:
        """The change as a clinician writes it, in the item's own direction: "−35.7% (−2.5 points)"."""
        return _signed_change(self.change)


@dataclass(frozen=True)
class ConditionResult:
    """A condition-specific or global responder result (RESP-4..RESP-7)."""

    rule: str  # "RESP-4" .. "RESP-7"
    title: str
    responder: bool | None  # None: undefined (the text says why)
    text: str


@dataclass(frozen=True)
class PatientOutcome:
    patient_id: int
    today: dt.date
    first_dose: dt.date | None
    maintenance_started: dt.date | None
    evaluated: bool  # RESP-1: week 12 on the maintenance dose reached
    items: tuple[ItemOutcome, ...]  # pain, fatigue, sleep quality, mood
    results: tuple[ConditionResult, ...]  # RESP-4..RESP-7 where they apply
    responder: bool | None  # symptoms.rules.responder_status; provisional unless ``evaluated``
    reasons: tuple[str, ...]  # plain sentences citing the rule ids, in reading order

    @property
    def status(self) -> str:
        return EVALUATED if self.evaluated else PROVISIONAL

    @property
    def evaluation_date(self) -> dt.date | None:
        """The day the response is read (RESP-1: 12 weeks on the maintenance dose)."""
        if self.maintenance_started is None:
            return None
        return self.maintenance_started + dt.timedelta(days=rules.RESPONSE_EVALUATION_DAYS)

    def item(self, name: str) -> ItemOutcome:
        return next(item for item in self.items if item.item == name)

    @property
    def pain(self) -> rules.Response:
        return self.item("pain").change

    @property
    def summary(self) -> str:
        """A list column: "moderate (−35.7%) provisional", "undefined: baseline 0", "—"."""
        pain = self.pain
        if self.first_dose is None:
            return "—"
        if pain.grade is not None:
            text = f"{pain.grade} ({_signed_percent(pain)})"
        elif pain.baseline == 0 and pain.current is not None:
            text = "undefined: baseline 0"
        else:
            return "—"
        return text if self.evaluated else f"{text} {PROVISIONAL}"


def _sign(value: Decimal) -> str:
    return "+" if value > 0 else MINUS if value < 0 else ""


def _signed_percent(change: rules.Response) -> str:
    """Percent improvement shown as the direction the item moved: pain down 35.7% -> "−35.7%"."""
    moved = -change.percent_change if instruments.check_nrs_item(change.item) else change.percent_change
    return f"{_sign(moved)}{number(abs(moved))}%"


def _signed_change(change: rules.Response) -> str:
    if change.absolute_change is None:
        return "—"
    points = -change.absolute_change if instruments.check_nrs_item(change.item) else change.absolute_change
    shown = f"{_sign(points)}{number(abs(points))} point{'' if abs(points) == 1 else 's'}"
    return f"{_signed_percent(change)} ({shown})" if change.percent_change is not None else shown


# --- reading --------------------------------------------------------------------------------------------------


def outcomes_on_own_dates(
    patients: Iterable, *, dates: Mapping[int, Mapping]
) -> dict[int, tuple[PatientOutcome, dt.date]]:
    """{patient id: (outcome, date)}, each read on the patient's own local date (week counts and review
    dates are in their days): ``patient_outcomes`` once per distinct date, usually once."""
    by_day: dict[dt.date, list] = {}
    for patient in patients:
        by_day.setdefault(patient_today(patient), []).append(patient)
    found = {}
    for today, group in by_day.items():
        for patient_id, outcome in patient_outcomes(group, today=today, dates=dates).items():
            found[patient_id] = (outcome, today)
    return found


def patient_outcome(
    patient,
    *,
    today: dt.date,
    dates: Mapping | None = None,
    checkins: list[tuple] | None = None,
    conditions: set[str] | None = None,
) -> PatientOutcome:
    """The outcome of one patient on their local date ``today`` (see the module doc); ``checkins`` and
    ``conditions`` as ``patient_outcomes`` takes them, for this patient."""
    given = {}  # only what the caller read, so patient_outcomes is called as before otherwise
    if checkins is not None:
        given["checkins"] = {patient.pk: checkins}
    if conditions is not None:
        given["conditions"] = {patient.pk: conditions}
    dated = {patient.pk: dates} if dates is not None else None
    return patient_outcomes([patient], today=today, dates=dated, **given)[patient.pk]


def patient_outcomes(
    patients: Iterable,
    *,
    today: dt.date,
    dates: Mapping[int, Mapping] | None = None,
    checkins: Mapping[int, list[tuple]] | None = None,
    conditions: Mapping[int, set[str]] | None = None,
) -> dict[int, PatientOutcome]:
    """Outcomes by patient id, in three queries whatever the number of patients.

    ``dates`` maps a patient id to {"first_dose": date | None, "maintenance_started": date | None} as
    hooks.treatment_dates gives it; a patient missing from it is asked through the hook (its own queries).
    The patients are taken as given: the caller has already scoped them to what its user may see.

    A page that has read them already passes ``checkins`` ({patient id: [(recorded_at, {NRS field: value})]},
    oldest first, not archived: at least every one before the first dose and the last two on or after it up
    to ``today``) and ``conditions`` ({patient id: condition values}); those queries are then not made.
    """
    by_id = {patient.pk: patient for patient in patients}
    if not by_id:
        return {}
    ids = list(by_id)
    if checkins is None:
        checkins = defaultdict(list)
        rows = SymptomCheckIn.objects.filter(patient_id__in=ids).order_by("patient_id", "recorded_at", "pk")
        for patient_id, recorded_at, *values in rows.values_list("patient_id", "recorded_at", *NRS_FIELDS):
            checkins[patient_id].append((recorded_at, dict(zip(NRS_FIELDS, values, strict=True))))
    scores: dict[int, list[tuple]] = defaultdict(list)
    score_rows = (
        InstrumentScore.objects.filter(patient_id__in=ids, checkin__deleted_at__isnull=True)
        .order_by("patient_id", "recorded_at", "pk")
        .values_list("patient_id", "instrument", "recorded_at", "total", "partial")
    )
    for patient_id, instrument, recorded_at, total, partial in score_rows:
        scores[patient_id].append((instrument, recorded_at, total, partial))
    if conditions is None:
        conditions = defaultdict(set)
        for patient_id, condition in PatientCondition.objects.filter(patient_id__in=ids).values_list(
            "patient_id", "condition"
        ):
            conditions[patient_id].add(condition)
    dates = dates or {}
    return {
        pk: _outcome(
            patient,
            dates.get(pk) or hooks.treatment_dates(patient),
            checkins.get(pk, []),
            scores[pk],
            conditions.get(pk, set()),
            today,
        )
        for pk, patient in by_id.items()
    }


# --- deciding, with the rules ---------------------------------------------------------------------------------


def _outcome(patient, dates: Mapping, checkins, scores, conditions: set[str], today: dt.date) -> PatientOutcome:
    zone = patient.zone
    first_dose, maintenance = dates.get("first_dose"), dates.get("maintenance_started")
    dated = [(at.astimezone(zone).date(), values) for at, values in checkins]
    dated = [(day, values) for day, values in dated if day <= today]
    current_rows = [(day, values) for day, values in dated if first_dose is not None and day >= first_dose][-2:]
    evaluated = rules.evaluated_at_week_12_on_maintenance(maintenance, today)

    items = tuple(_item(name, first_dose, dated, current_rows) for name in NRS_FIELDS)
    by_name = {item.item: item for item in items}
    pain = by_name["pain"].change

    results: tuple[ConditionResult, ...] = ()
    if first_dose is not None:
        local_scores = [
            (instrument, at.astimezone(zone).date(), total, partial)
            for instrument, at, total, partial in scores
            if at.astimezone(zone).date() <= today
        ]
        results = _condition_results(conditions, by_name, local_scores, first_dose)
    responder = rules.responder_status(pain.responder, [r.responder for r in results])

    reasons = [_timing(first_dose, maintenance, today, evaluated)]
    if first_dose is not None:
        reasons.append(f"Pain baseline: {by_name['pain'].baseline_text}.")
        reasons.append(_sentence(pain.reason))
        if pain.absolute_change is not None:
            reasons.append(_important(pain))
        for name in ("fatigue", "sleep_quality"):
            reasons.append(_sentence(by_name[name].change.reason))
        reasons += [_sentence(r.text) for r in results]
        reasons.append(_responder_sentence(responder, pain, results, evaluated))
    return PatientOutcome(
        patient_id=patient.pk,
        today=today,
        first_dose=first_dose,
        maintenance_started=maintenance,
        evaluated=evaluated,
        items=items,
        results=results,
        responder=responder,
        reasons=tuple(reasons),
    )


def _item(name: str, first_dose: dt.date | None, dated, current_rows) -> ItemOutcome:
    words = name.replace("_", " ")
    if first_dose is None:
        change = rules.item_change(name, None, [])
        return ItemOutcome(name, None, "no baseline: no first dose recorded yet (BASE-1)", (), change)
    base = rules.baseline([(day, values[name]) for day, values in dated], first_dose)
    if base is None:
        text = (
            f"no baseline: no check-in in the 14 days before the first dose ({first_dose.isoformat()}), "
            f"or earlier, recorded {words} (BASE-1)"
        )
    elif base.weak:
        text = (
            f"{base.display}, weak baseline: a single {words} value before the first dose, where BASE-1 "
            f"asks for at least {rules.BASELINE_MIN_ENTRIES} in the 14 days before it"
        )
    else:
        text = (
            f"{base.display}, the mean of {base.n} entries in the 14 days before the first dose "
            f"({first_dose.isoformat()}) (BASE-1)"
        )
    last_two = [values[name] for _, values in current_rows]
    change = rules.item_change(name, base, last_two)
    return ItemOutcome(name, base, text, tuple(day for day, _ in current_rows), change)


def _timing(first_dose, maintenance, today: dt.date, evaluated: bool) -> str:
    if first_dose is None:
        return "No first dose recorded: LDN has not started, so there is no baseline or response yet (BASE-1, RESP-1)."
    started = f"First dose {first_dose.isoformat()}"
    if maintenance is None:
        return f"{started}; not yet on the maintenance dose, so the response is provisional (RESP-1)."
    week_12 = maintenance + dt.timedelta(days=rules.RESPONSE_EVALUATION_DAYS)
    on = f"{started}; on the maintenance dose since {maintenance.isoformat()}"
    if evaluated:
        return f"{on}: week 12 on it was reached on {week_12.isoformat()}, so the response is evaluated (RESP-1)."
    return f"{on}: the response is provisional until week 12 on it, {week_12.isoformat()} (RESP-1)."


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _important(change: rules.Response) -> str:
    words = change.item.replace("_", " ").capitalize()
    points = change.absolute_change
    better = "better" if points >= 0 else "worse"
    verdict = "at least" if change.important_change else "less than"
    return (
        f"{words} {number(abs(points))} point{'' if abs(points) == 1 else 's'} {better} than baseline: {verdict} the "
        f"{rules.IMPORTANT_POINTS} points of an important change (RESP-3)."
    )


def _responder_sentence(responder, pain: rules.Response, results, evaluated: bool) -> str:
    when = "" if evaluated else ", provisionally (before week 12 on the maintenance dose)"
    if responder is True:
        met = (["pain (RESP-1)"] if pain.responder else []) + [
            f"{r.title} ({r.rule})" for r in results if r.responder is True
        ]
        return f"Responder{when}: {', '.join(met)}."
    if responder is False:
        return f"Not a responder{when}: pain not improved by 30% (RESP-1) and no other responder definition met."
    return f"Responder status unknown{when}: the pain response (RESP-1) is undefined and no other definition is met."


def _condition_results(conditions: set[str], items, scores, first_dose: dt.date) -> tuple[ConditionResult, ...]:
    def of(instrument: str):
        return [(day, (total, partial)) for name, day, total, partial in scores if name == instrument]

    results = []
    if "fibromyalgia" in conditions:
        results.append(_fibromyalgia(items, of(instruments.FIQR), first_dose))
    if "crohns" in conditions:
        results.append(_crohns(of(instruments.HBI), first_dose))
    if "multiple_sclerosis" in conditions:
        results.append(_ms(of(instruments.MFIS), first_dose))
    pgic = [(day, total) for day, (total, _) in of(instruments.PGIC) if day >= first_dose]
    if pgic:
        results.append(_pgic(*pgic[-1]))
    return tuple(results)


def _on(entry) -> str:
    day, (total, _) = entry
    return f"{number(total)} on {day.isoformat()}"


def _fibromyalgia(items, fiqr, first_dose: dt.date) -> ConditionResult:
    flag, fiqr_text = None, ""
    if fiqr:
        pair = rules.instrument_pair(fiqr, first_dose)
        if pair.baseline is not None and pair.current is not None:
            base, now = pair.baseline[1][0], pair.current[1][0]
            flag = rules.fiqr_improved(base, now)
            if flag is None:
                fiqr_text = f"FIQR baseline {_on(pair.baseline)} is 0: no percent change (RESP-4)"
            else:
                drop = rules.truncate((Fraction(base) - Fraction(now)) / Fraction(base) * 100, "0.1")
                moved = f"down {number(drop)}%" if drop >= 0 else f"up {number(-drop)}%"
                verdict = "improved" if flag else "not improved"
                fiqr_text = (
                    f"FIQR {_on(pair.baseline)} -> {_on(pair.current)}, {moved}: {verdict} by the 14% secondary "
                    "measure (RESP-4)"
                )
            if pair.weak_baseline:
                fiqr_text += "; the FIQR baseline is from before the 14 days before the first dose"
        elif pair.current is not None:
            fiqr_text = f"FIQR {_on(pair.current)}, no baseline FIQR to compare with (RESP-4)"
        else:
            fiqr_text = f"FIQR baseline {_on(pair.baseline)}, none since week 1 to compare with (RESP-4)"
    composite = rules.fibromyalgia_response(
        items["pain"].change, items["fatigue"].change, items["sleep_quality"].change, flag
    )
    text = composite.reason + (f"; {fiqr_text}" if fiqr_text else "")
    return ConditionResult("RESP-4", "fibromyalgia composite", composite.responder, text)


PARTIAL_HBI = "HBI from the patient form is partial (no abdominal mass): not compared with HBI thresholds (PRO-2)"


def _hbi(entry) -> instruments.HBIScore:
    _, (total, partial) = entry
    total = int(total)
    return instruments.HBIScore(total=total, partial=partial, band=None if partial else instruments.hbi_band(total))


def _crohns(hbi, first_dose: dt.date) -> ConditionResult:
    title = "Crohn's HBI"
    if not hbi:
        return ConditionResult("RESP-5", title, None, "no HBI recorded (RESP-5)")
    full = [entry for entry in hbi if not entry[1][1]]
    full_pair = rules.instrument_pair(full, first_dose)
    any_pair = rules.instrument_pair(hbi, first_dose)
    if full_pair.current is None:
        text = PARTIAL_HBI if any_pair.current is not None else "no HBI since week 1 to compare (RESP-5)"
        return ConditionResult("RESP-5", title, None, text)
    baseline_entry = full_pair.baseline or any_pair.baseline  # a partial baseline: the rule says it is partial
    result = rules.crohns_response(
        _hbi(baseline_entry) if baseline_entry is not None else None, _hbi(full_pair.current)
    )
    text = f"{result.reason}; full HBI on {full_pair.current[0].isoformat()}"
    if any_pair.current is not full_pair.current:  # newer patient-form HBI exist
        text += f"; later {PARTIAL_HBI}"
    values = [result.response, result.remission]
    responder = True if True in values else False if False in values else None
    return ConditionResult("RESP-5", title, responder, text)


def _ms(mfis, first_dose: dt.date) -> ConditionResult:
    title = "MS fatigue (MFIS)"
    if not mfis:
        return ConditionResult("RESP-6", title, None, "no MFIS recorded (RESP-6)")
    pair = rules.instrument_pair(mfis, first_dose)
    if pair.baseline is None or pair.current is None:
        missing = "no baseline MFIS" if pair.baseline is None else "no MFIS since week 1"
        return ConditionResult("RESP-6", title, None, f"{missing} to compare (RESP-6)")
    base, now = int(pair.baseline[1][0]), int(pair.current[1][0])
    responder = rules.mfis_responder(base, now)
    moved = f"down {base - now}" if base >= now else f"up {now - base}"
    verdict = "at least" if responder else "less than"
    text = (
        f"MFIS {_on(pair.baseline)} -> {_on(pair.current)}, {moved} points: {verdict} the "
        f"{rules.MFIS_IMPORTANT_DROP}-point drop of a responder (RESP-6)"
    )
    if pair.weak_baseline:
        text += "; the MFIS baseline is from before the 14 days before the first dose"
    return ConditionResult("RESP-6", title, responder, text)


def _pgic(day: dt.date, total: Decimal) -> ConditionResult:
    value = int(total)
    responder = rules.pgic_responder(value)
    verdict = "much or very much improved" if responder else "not much or very much improved"
    text = f"PGIC {value} ({instruments.pgic_label(value).lower()}) on {day.isoformat()}: {verdict} (RESP-7)"
    return ConditionResult("RESP-7", "global impression (PGIC)", responder, text)
