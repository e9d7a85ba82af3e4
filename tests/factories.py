import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from patients.models import (
    Clinic,
    ClinicianTask,
    ConflictFlag,
    LabResult,
    MedicationStatement,
    Membership,
    Patient,
    PatientCondition,
    Role,
    SafetyGateEvent,
    User,
)
from symptoms.calendar_feeds import token_hash as calendar_token_hash
from symptoms.models import (
    CalendarFeed,
    CheckInInvitation,
    InstrumentLicence,
    InstrumentScore,
    SideEffectReport,
    SideEffectReview,
    SymptomCheckIn,
)
from titration.models import (
    CompoundedPrescription,
    Pharmacy,
    PlanOutlook,
    PrescriberCredential,
    Reminder,
    TitrationPlan,
    TitrationStep,
)

PASSWORD = "correct-horse-battery-9"
ZONE = "Europe/London"  # the test patients' time zone: their "today" is not the server's UTC date


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(self, create, extracted, **kwargs):
        if create:
            self.save()


class StaffFactory(UserFactory):
    is_staff = True


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(StaffFactory)
    clinic = factory.SubFactory(ClinicFactory)
    role = Role.PRESCRIBER


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    mrn = factory.Sequence(lambda n: f"MRN{n:05d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    date_of_birth = dt.date(1980, 5, 17)
    sex = "female"
    email = factory.LazyAttribute(lambda p: f"{p.mrn.lower()}@patients.example.test")
    time_zone = ZONE


class PatientConditionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientCondition

    patient = factory.SubFactory(PatientFactory)
    condition = "fibromyalgia"
    diagnosed_on = dt.date(2020, 1, 1)


class MedicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MedicationStatement

    patient = factory.SubFactory(PatientFactory)
    name = "Sertraline 50 mg"
    route = "oral"
    release = "IR"


class LabResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabResult

    patient = factory.SubFactory(PatientFactory)
    test = "ESR"
    value = Decimal("18")
    unit = "mm/h"
    ref_low = Decimal("0")
    ref_high = Decimal("20")
    collected_at = factory.LazyFunction(timezone.now)


class PharmacyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pharmacy

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Compounding Pharmacy {n}")
    phone = "020 7946 0000"


class PrescriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CompoundedPrescription

    patient = factory.SubFactory(PatientFactory)
    form = "capsule"
    strength_value = Decimal("1.5")
    strength_unit = "mg/capsule"
    filler = "mcc"
    release = "IR"
    quantity = Decimal("30")
    quantity_unit = "capsules"
    days_supply = 30
    refills = 2
    sig = "Take 1 capsule by mouth at bedtime"
    pharmacy = factory.LazyAttribute(lambda rx: PharmacyFactory(clinic=rx.patient.clinic))
    prescriber = factory.LazyAttribute(
        lambda rx: MembershipFactory(clinic=rx.patient.clinic, role=Role.PRESCRIBER).user
    )
    written_on = dt.date(2026, 1, 5)
    start_on = dt.date(2026, 1, 10)
    status = "active"


class PrescriberCredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PrescriberCredential

    clinic = factory.SubFactory(ClinicFactory)
    user = factory.LazyAttribute(lambda c: MembershipFactory(clinic=c.clinic, role=Role.PRESCRIBER).user)
    credentials = "MD"
    licence_numbers = factory.Sequence(lambda n: f"State licence MD{n:06d}\nNPI 12345{n:05d}")


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TitrationPlan

    patient = factory.SubFactory(PatientFactory)
    target_dose_mg = Decimal("4.5")
    start_date = dt.date(2026, 1, 10)
    status = "active"


class PlanOutlookFactory(factory.django.DjangoModelFactory):
    """A stored outlook row, for the scoping suites. Saving an active plan writes the real one already
    (titration/signals.py); this one hangs off a draft plan, so it never takes the patient's one active plan."""

    class Meta:
        model = PlanOutlook
        django_get_or_create = ("plan",)

    patient = factory.SubFactory(PatientFactory)
    plan = factory.SubFactory(PlanFactory, patient=factory.SelfAttribute("..patient"), status="draft")


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TitrationStep

    plan = factory.SubFactory(PlanFactory)
    sequence = factory.Sequence(lambda n: n + 1)
    dose_mg = Decimal("1.5")
    planned_start = dt.date(2026, 1, 10)
    min_days = 7


class ReminderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reminder

    patient = factory.SubFactory(PatientFactory)
    kind = "checkin_due"
    channel = "email"
    local_date = dt.date(2026, 1, 17)
    due_at = factory.LazyFunction(timezone.now)
    next_attempt_at = factory.LazyAttribute(lambda r: r.due_at)
    idempotency_key = factory.Sequence(lambda n: f"test-reminder-{n}")


class CheckInInvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CheckInInvitation

    patient = factory.SubFactory(PatientFactory)
    for_date = factory.Sequence(lambda n: dt.date(2026, 1, 1) + dt.timedelta(days=n))
    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=72))


class CalendarFeedFactory(factory.django.DjangoModelFactory):
    """A live calendar subscription. Only the token's hash is stored: a test that fetches the feed
    makes it with ``symptoms.calendar_feeds.calendar_feed_create``, which returns the token."""

    class Meta:
        model = CalendarFeed

    patient = factory.SubFactory(PatientFactory)
    token_hash = factory.Sequence(lambda n: calendar_token_hash(f"test-calendar-feed-{n}"))


class CheckInFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SymptomCheckIn

    patient = factory.SubFactory(PatientFactory)
    recorded_at = factory.LazyFunction(timezone.now)
    pain = 6
    fatigue = 5
    sleep_quality = 4
    mood = 5
    took_dose_as_prescribed = True


class SideEffectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SideEffectReport

    checkin = factory.SubFactory(CheckInFactory)
    effect = "headache"
    severity = 1


class SideEffectReviewFactory(factory.django.DjangoModelFactory):
    """A clinician's "side effects reviewed" mark (symptoms.services.side_effects_mark_reviewed)."""

    class Meta:
        model = SideEffectReview

    patient = factory.SubFactory(PatientFactory)
    reviewed_by = factory.LazyAttribute(lambda r: MembershipFactory(clinic=r.patient.clinic, role=Role.NURSE).user)
    reviewed_at = factory.LazyFunction(timezone.now)
    up_to = factory.LazyAttribute(lambda r: r.reviewed_at)


class InstrumentScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstrumentScore

    patient = factory.SubFactory(PatientFactory)
    checkin = factory.SubFactory(CheckInFactory, patient=factory.SelfAttribute("..patient"))
    recorded_at = factory.SelfAttribute("checkin.recorded_at")
    instrument = "PGIC"
    answers = factory.LazyFunction(lambda: {"pgic": 3})
    total = Decimal(3)


class InstrumentLicenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstrumentLicence
        django_get_or_create = ("clinic", "instrument")  # one licence per clinic and instrument

    clinic = factory.SubFactory(ClinicFactory)
    instrument = "BPI"
    holder = "MD Anderson Cancer Center (C. Cleeland)"
    reference = factory.Sequence(lambda n: f"BPI-LIC-{n:04d}")
    scope = "institutional"
    valid_from = dt.date(2026, 1, 1)


class ConflictFlagFactory(factory.django.DjangoModelFactory):
    """A conflict flag on an opioid the patient is taking (no last dose: no earliest start)."""

    class Meta:
        model = ConflictFlag
        django_get_or_create = ("medication", "kind")  # saving the medication already evaluated it

    patient = factory.SubFactory(PatientFactory)
    medication = factory.LazyAttribute(lambda f: MedicationFactory(patient=f.patient, name="Norco 5/325"))
    kind = "conflict"
    severity = "high"
    medication_text = "Norco 5/325"
    ingredients = ["acetaminophen", "hydrocodone"]
    evidence = ['"norco" -> norco (acetaminophen+hydrocodone; product)']
    catalog_version = "test"
    washout_days = 10
    evaluated_at = factory.LazyFunction(timezone.now)


class ClinicianTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicianTask

    patient = factory.SubFactory(PatientFactory)
    kind = "opioid_plan"
    key = factory.Sequence(lambda n: f"test-task-{n}")
    title = "Opioid while on LDN: Norco 5/325"


class SafetyGateEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SafetyGateEvent

    patient = factory.SubFactory(PatientFactory)
    action = "activate_prescription"
    outcome = "blocked"
    summary = "Opioid conflict: Norco 5/325"


# --- One row of any clinic model (used by the privacy and role suites) -------------------------


def factory_for(model):
    """The factory in this module that builds ``model``; a model without one fails loudly."""
    for candidate in list(globals().values()):
        if (
            isinstance(candidate, type)
            and issubclass(candidate, factory.django.DjangoModelFactory)
            and candidate._meta.model is model
        ):
            return candidate
    raise LookupError(
        f"tests/factories.py has no factory for {model._meta.label}: add one, so the privacy and "
        "role suites build a row of it for each clinic and prove it is scoped."
    )


def row_for(model, patient):
    """One row of ``model`` owned by ``patient``, or by the patient's clinic for clinic-level models.

    Reads the same ``scope_clinic_path``/``scope_patient_path`` attributes as ldnclinic.scoping, so a
    new clinic model with a factory is covered without editing this function.
    """
    if getattr(model, "scope_clinic_path", "clinic") == "pk":
        return patient.clinic
    path = getattr(model, "scope_patient_path", "patient")
    if path == "pk":
        return patient
    build = factory_for(model)
    if path is None:
        return build(clinic=patient.clinic)
    head, _, rest = path.partition("__")
    if rest:  # reached through a parent (step -> plan -> patient): reuse the patient's parent row
        parent_model = model._meta.get_field(head).related_model
        parent = parent_model._default_manager.filter(**{rest: patient}).first() or row_for(parent_model, patient)
        return build(**{head: parent})
    return build(**{path: patient})
