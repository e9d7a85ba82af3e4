"""Writes for check-ins: one transaction for the check-in, its side effects and its condition modules
(whose commit lets titration steer the plan and the opioid answer reach the medication list)."""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from patients.models import Membership, Role

from . import instruments
from .instrument_models import InstrumentScore
from .invitations import CheckInInvitation
from .models import SideEffectReport, SymptomCheckIn
from .review_models import SideEffectReview


class AlreadyUsed(Exception):
    pass


@dataclass(frozen=True)
class ScoredModule:
    """One instrument's answers as given and what its scoring function made of them."""

    instrument: str
    answers: dict
    total: Decimal
    subscores: dict = field(default_factory=dict)
    partial: bool = False


def _answer(answers: Mapping, key: str, instrument: str):
    try:
        return answers[key]
    except KeyError:
        raise ValueError(f"{instrument} answers have no {key!r}.") from None


def score_module(instrument: str, answers: Mapping) -> ScoredModule:
    """Score one module's answers with the instrument's own function (symptoms.instruments).

    Answers: HBI ``{"well_being", "abdominal_pain", "liquid_stools", "abdominal_mass", "complications"}``
    (the patient form leaves ``abdominal_mass`` None: clinician-examined, so the score is partial, PRO-2);
    MFIS and FIQR ``{"items": [21 answers in form order]}`` (FIQR: None for an item left blank);
    PGIC ``{"pgic": 1..7}``. Raises ValueError, with the scoring function's message, for anything it refuses.
    BPI and PROMIS have no bundled items (PRO-3), so there is nothing to score here.
    """
    if instrument == instruments.HBI:
        complications = sorted(_answer(answers, "complications", instrument))
        given = {
            "well_being": _answer(answers, "well_being", instrument),
            "abdominal_pain": _answer(answers, "abdominal_pain", instrument),
            "liquid_stools": _answer(answers, "liquid_stools", instrument),
            "abdominal_mass": answers.get("abdominal_mass"),
            "complications": complications,
        }
        hbi = instruments.hbi_score(**given)
        return ScoredModule(instrument, given, Decimal(hbi.total), {"band": hbi.band}, hbi.partial)
    if instrument == instruments.MFIS:
        items = list(_answer(answers, "items", instrument))
        mfis = instruments.mfis_score(items)
        subscores = {
            "physical": mfis.physical,
            "cognitive": mfis.cognitive,
            "psychosocial": mfis.psychosocial,
            "short_form": mfis.short_form,
        }
        return ScoredModule(instrument, {"items": items}, Decimal(mfis.total), subscores)
    if instrument == instruments.FIQR:
        items = list(_answer(answers, "items", instrument))
        fiqr = instruments.fiqr_score(items)
        subscores = {  # JSON has no Decimal: the one-decimal values as strings
            "function": str(fiqr.function),
            "overall": str(fiqr.overall),
            "symptoms": str(fiqr.symptoms),
            "missing": fiqr.missing,
        }
        return ScoredModule(instrument, {"items": items}, fiqr.total, subscores)
    if instrument == instruments.PGIC:
        value = instruments.validate_pgic(_answer(answers, "pgic", instrument))
        return ScoredModule(instrument, {"pgic": value}, Decimal(value), {"label": instruments.pgic_label(value)})
    raise ValueError(f"{instrument} has no items in ldnclinic to answer or score.")


def instrument_score_store(*, checkin: SymptomCheckIn, module: ScoredModule) -> InstrumentScore:
    """Keep one scored module with the check-in it came in (the caller holds the transaction)."""
    return InstrumentScore.objects.create(
        checkin=checkin,
        patient=checkin.patient,
        instrument=module.instrument,
        recorded_at=checkin.recorded_at,
        answers=module.answers,
        total=module.total,
        subscores=module.subscores,
        partial=module.partial,
    )


def checkin_submit(
    *,
    patient,
    data: dict,
    side_effects: list[tuple[str, int, str]],
    invitation: CheckInInvitation | None = None,
    modules: Mapping[str, Mapping] | None = None,
) -> SymptomCheckIn:
    """Store one check-in. The same submission (``submission_id``) or a used link stores nothing new.

    ``modules`` maps an instrument (PRO-2) to its answers (see ``score_module``); each is scored and
    stored as one InstrumentScore in the same transaction. The caller decides which modules were due
    (``selectors.checkin_modules_due``), never the browser. Invalid answers raise ValueError before
    anything is written.
    """
    existing = SymptomCheckIn.objects.filter(submission_id=data["submission_id"], patient=patient).first()
    if existing is not None:
        return existing
    scored = [score_module(instrument, answers) for instrument, answers in (modules or {}).items()]
    try:
        with transaction.atomic():
            checkin = SymptomCheckIn(
                patient=patient,
                recorded_at=timezone.now(),
                **{
                    k: data[k]
                    for k in (
                        "pain",
                        "fatigue",
                        "sleep_quality",
                        "mood",
                        "took_dose_as_prescribed",
                        "nights_missed",
                        "opioid_use",
                        "notes",
                        "submission_id",
                    )
                },
            )
            checkin.full_clean()
            checkin.save()
            for effect, severity, description in side_effects:
                SideEffectReport.objects.create(
                    checkin=checkin, effect=effect, severity=severity, description=description
                )
            for module in scored:
                instrument_score_store(checkin=checkin, module=module)
            if invitation is not None:  # compare-and-set: a link is used once; a second submit rolls back
                claimed = CheckInInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(
                    used_at=timezone.now(), checkin=checkin
                )
                if claimed != 1:
                    raise AlreadyUsed
    except IntegrityError:  # the same submission raced itself: the first one stands
        existing = SymptomCheckIn.objects.filter(submission_id=data["submission_id"], patient=patient).first()
        if existing is None:
            raise
        return existing
    return checkin


def side_effects_mark_reviewed(*, actor, patient, up_to: dt.datetime) -> SideEffectReview:
    """A clinician has looked at the side effects ``patient`` reported in check-ins recorded up to
    ``up_to`` (the newest one they were shown, so a check-in arriving meanwhile stays on the worklist).

    A prescriber or nurse of the patient's clinic only. A mark never moves backwards: one older than the
    patient's latest changes nothing and returns the latest.
    """
    if not Membership.objects.filter(
        user_id=getattr(actor, "pk", None),
        clinic_id=patient.clinic_id,
        is_active=True,
        role__in=[Role.PRESCRIBER, Role.NURSE],
    ).exists():
        raise PermissionDenied("Only a prescriber or nurse of the patient's clinic can review side effects.")
    now = timezone.now()
    if up_to is None or timezone.is_naive(up_to):
        raise ValidationError({"up_to": "Say up to which check-in (a date and time with its zone) was reviewed."})
    if up_to > now:
        raise ValidationError({"up_to": "A check-in that has not been recorded yet cannot be reviewed."})
    with transaction.atomic():
        latest = SideEffectReview.objects.select_for_update().filter(patient=patient).order_by("-up_to", "-pk").first()
        if latest is not None and latest.up_to >= up_to:
            return latest
        review = SideEffectReview(patient=patient, reviewed_by=actor, reviewed_at=now, up_to=up_to)
        review._history_user = actor
        review._change_reason = "side effects reviewed"
        review.save()
    return review
