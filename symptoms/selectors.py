"""Reads for check-ins: which condition modules (PRO-2) and licensed instruments (PRO-3) are due now.

The schedule itself is ``instruments.due_instruments`` (pure); this module gathers its inputs for one
patient (conditions, weeks on LDN, the clinic's current licences) and leaves out what the patient has
already answered in the same due week.

Weeks on LDN (PRO-2): week 0 is the seven days starting on the first dose (``hooks.treatment_dates``),
week n starts on first dose + 7n days, in the patient's own calendar. Before the first dose (screening,
or a plan not started) the patient is treated as in week 0: the condition modules are due as the
baseline RESP-4..RESP-6 compare against, and PGIC (change since starting) is not.

Asking once per due week. An instrument already answered (in a check-in that is not archived) since
its window opened is not asked again:
- on LDN, the window opens on the first day of the current week (so a second check-in in the same
  week does not ask the weekly HBI or a 4-weekly MFIS twice);
- in week 0, a 4-weekly instrument answered in the 14 days before the first dose (the BASE-1 baseline
  window) already is the baseline, so it is not asked again in week 0;
- before the first dose there is no week to anchor to, so the window is rolling: the last 7 days for
  the weekly HBI, the last 4 weeks for a 4-weekly instrument. A patient screening for months answers
  MFIS/FIQR once a month, not every week.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from patients.models import LabResult, LabTest, PatientCondition

from . import hooks, instruments, lab_context
from .instrument_models import InstrumentLicence, InstrumentScore

# Instruments whose items ldnclinic ships and the check-in form can show. BPI and PROMIS item text is
# copyrighted and not bundled: a recorded licence switches them on in the schedule, but there is
# nothing to show (PRO-3), so they are reported as ``enabled_not_shown``.
SHOWN_INSTRUMENTS = (instruments.HBI, instruments.MFIS, instruments.FIQR, instruments.PGIC)  # form order
WEEKLY_INSTRUMENTS = frozenset({instruments.HBI})
BASELINE_WINDOW_DAYS = 14  # BASE-1: the 14 days before the first dose
# A module due in a week the patient did not check in stays due for this many more weeks [POLICY]: the
# week-12 PGIC (RESP-7) or a 4-weekly MFIS is asked at the next check-in instead of being lost to one
# missed week. Weekly modules (HBI) are not carried: next week's asks the same. Nor is week 0's
# baseline: a baseline must be answered before week 1.
CARRY_WEEKS = 2


@dataclass(frozen=True)
class ModulesDue:
    week: int | None  # weeks on LDN; None before the first dose (scheduled as week 0)
    shown: tuple[str, ...]  # instruments the check-in form asks now, in form order
    enabled_not_shown: frozenset[str]  # due by licence but without bundled items (BPI, PROMIS)
    answered: frozenset[str]  # due by the schedule but already answered in this due week


def weeks_on_ldn(first_dose: dt.date | None, today: dt.date) -> int | None:
    """Whole weeks since the first dose (week 0 = its first 7 days); None before the first dose."""
    if first_dose is None or first_dose > today:
        return None
    return (today - first_dose).days // 7


def window_start(instrument: str, first_dose: dt.date | None, today: dt.date, due_week: int | None = None) -> dt.date:
    """The first day from which an earlier answer to ``instrument`` counts as its due week's (module
    doc): this week's, or ``due_week``'s for a module carried over from a missed week."""
    weekly = instrument in WEEKLY_INSTRUMENTS
    week = weeks_on_ldn(first_dose, today) if due_week is None else due_week
    if week is None:
        return today - dt.timedelta(days=(7 if weekly else 7 * instruments.MODULE_EVERY_WEEKS) - 1)
    start = first_dose + dt.timedelta(days=7 * week)
    if week == 0 and not weekly:
        start -= dt.timedelta(days=BASELINE_WINDOW_DAYS)
    return start


def checkin_modules_due(*, patient, today: dt.date) -> ModulesDue:
    """What the check-in asks ``patient`` on their local date ``today`` besides the PRO-1 items.

    Called on GET to build the form and again on POST, so what is stored never depends on what the
    browser says it was shown. Four or five queries, whatever the patient's history.
    """
    conditions = set(PatientCondition.objects.filter(patient=patient).values_list("condition", flat=True))
    licences = {
        licence.instrument
        for licence in InstrumentLicence.objects.filter(clinic_id=patient.clinic_id)
        if licence.is_current(today)
    }
    first_dose = hooks.treatment_dates(patient)["first_dose"]
    week = weeks_on_ldn(first_dose, today)
    due = instruments.due_instruments(conditions, 0 if week is None else week, licences)
    due_week = dict.fromkeys(due, week)
    for back in range(1, CARRY_WEEKS + 1) if week is not None else ():
        if week - back < 1:
            break  # not week 0: a baseline answered in week 1 would not be a baseline (rules.instrument_pair)
        for name in instruments.due_instruments(conditions, week - back, licences) - WEEKLY_INSTRUMENTS:
            due_week.setdefault(name, week - back)  # the latest due week it was missed in
    due = set(due_week)

    answered = set()
    if due:
        starts = {name: window_start(name, first_dose, today, due_week[name]) for name in due}
        zone = patient.zone
        earliest = dt.datetime.combine(min(starts.values()), dt.time.min, tzinfo=zone)
        recent = InstrumentScore.objects.filter(
            patient=patient, instrument__in=due, recorded_at__gte=earliest, checkin__deleted_at__isnull=True
        ).values_list("instrument", "recorded_at")
        for name, recorded_at in recent:
            if recorded_at.astimezone(zone).date() >= starts[name]:
                answered.add(name)
    still_due = due - answered
    return ModulesDue(
        week=week,
        shown=tuple(name for name in SHOWN_INSTRUMENTS if name in still_due),
        enabled_not_shown=frozenset(still_due - set(SHOWN_INSTRUMENTS)),
        answered=frozenset(answered),
    )


def esr_results_for(
    patients: Iterable, *, rows: Iterable[tuple] | None = None
) -> dict[int, list[lab_context.EsrResult]]:
    """The ESRs of already-scoped patients in one query, dated in each patient's zone, oldest first.

    Archived results are left out (the default manager), and so is any row whose clinic is not its patient's:
    a result filed under another clinic never shows, even if a bad import put it there.

    A page that has read the patients' ESRs (not archived, with a value) passes them as ``rows``:
    (patient_id, clinic_id, value, unit, ref_high, collected_at), oldest first; no query is made.
    """
    by_id = {patient.pk: patient for patient in patients}
    found: dict[int, list[lab_context.EsrResult]] = defaultdict(list)
    if not by_id:
        return found
    if rows is None:
        rows = (
            LabResult.objects.filter(
                patient_id__in=list(by_id),
                clinic_id__in={patient.clinic_id for patient in by_id.values()},
                test=LabTest.ESR,
                value__isnull=False,
            )
            .order_by("patient_id", "collected_at", "pk")
            .values_list("patient_id", "clinic_id", "value", "unit", "ref_high", "collected_at")
        )
    for patient_id, clinic_id, value, unit, ref_high, collected_at in rows:
        patient = by_id.get(patient_id)
        if patient is not None and clinic_id == patient.clinic_id:
            local = collected_at.astimezone(patient.zone).date()
            found[patient_id].append(lab_context.EsrResult(value, unit, local, ref_high))
    return found
