"""Condition modules in the weekly check-in (PRO-2) and the clinic's instrument licences (PRO-3): which
modules are due, how they are asked on the link and portal pages, what is stored, and the licence admin."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from patients.today import clinic_today, patient_today
from symptoms import instruments, selectors, services
from symptoms.forms import HBI_COMPLICATION_LABELS
from symptoms.instrument_models import InstrumentLicence, InstrumentScore
from symptoms.invitations import CheckInInvitation, invitation_for
from symptoms.models import SymptomCheckIn
from tests import factories as f
from tests.symptoms.test_checkin_pages import answers

D = dt.date(2026, 3, 2)  # a first dose, for schedules computed at a given date


# --- Helpers ---------------------------------------------------------------------------------------


def today_of(patient) -> dt.date:
    return patient_today(patient)


def first_dose(patient, on: dt.date) -> None:
    """The patient took their first LDN dose on ``on`` (what titration's treatment_dates reads)."""
    plan = f.PlanFactory(patient=patient, status="active", start_date=on)
    f.StepFactory(plan=plan, sequence=1, dose_mg=Decimal("1.5"), planned_start=on, actual_start=on, status="active")


def in_week(patient, week: int) -> None:
    """Put ``patient`` in ``week`` on LDN today (week 0 = the week of the first dose)."""
    first_dose(patient, today_of(patient) - dt.timedelta(days=7 * week + 2))


def has(patient, *conditions: str) -> None:
    for condition in conditions:
        f.PatientConditionFactory(patient=patient, condition=condition)


def licence(clinic, instrument: str = instruments.FIQR, **extra) -> InstrumentLicence:
    return f.InstrumentLicenceFactory(
        clinic=clinic, instrument=instrument, reference=f"{instrument}-2026", valid_from=dt.date(2026, 1, 1), **extra
    )


def shown(patient, today: dt.date) -> tuple[str, ...]:
    return selectors.checkin_modules_due(patient=patient, today=today).shown


def answered(patient, instrument: str, on: dt.date, *, archived: bool = False) -> InstrumentScore:
    """An earlier check-in on local date ``on`` in which ``instrument`` was answered."""
    when = dt.datetime.combine(on, dt.time(20, 0), tzinfo=patient.zone)
    checkin = f.CheckInFactory(patient=patient, recorded_at=when)
    if archived:
        checkin.delete()
    return f.InstrumentScoreFactory(patient=patient, checkin=checkin, instrument=instrument, recorded_at=when)


def hbi(well_being=1, pain=2, stools=3, complications=("arthralgia", "aphthous_ulcers")) -> dict:
    return {
        "hbi_well_being": str(well_being),
        "hbi_abdominal_pain": str(pain),
        "hbi_liquid_stools": str(stools),
        "hbi_complications": list(complications),
    }


MFIS_MIXED = [n % 5 for n in range(1, 22)]  # item k answers k mod 5


def mfis(values=MFIS_MIXED) -> dict:
    return {f"mfis_{n}": "" if v is None else str(v) for n, v in enumerate(values, start=1)}


def fiqr(values) -> dict:
    return {f"fiqr_{n}": "" if v is None else str(v) for n, v in enumerate(values, start=1)}


def pgic(value=2) -> dict:
    return {"pgic": str(value)}


@pytest.fixture
def link(patient):
    _, token = invitation_for(patient, today_of(patient))
    return f"/c/{token}/"


# --- PRO-2: what is due when ------------------------------------------------------------------------


def test_hbi_complication_choices_are_the_scoring_keys_PRO2():
    assert set(HBI_COMPLICATION_LABELS) == instruments.HBI_COMPLICATIONS


@pytest.mark.django_db
def test_crohns_patient_gets_partial_hbi_weekly_PRO2(client, patient, sibling_patient, link):
    has(sibling_patient, "crohns")
    first_dose(sibling_patient, D)
    for week in range(0, 14):
        assert instruments.HBI in shown(sibling_patient, D + dt.timedelta(days=7 * week + 3)), week

    has(patient, "crohns")
    in_week(patient, 1)
    html = client.get(link).content.decode()
    assert 'id="module-hbi"' in html
    assert "These questions are about yesterday." in html
    assert "abdominal mass" not in html.lower()  # clinician-examined: never asked of the patient
    response = client.post(link, answers(**hbi(well_being=1, pain=2, stools=3)))
    assert response.status_code == 302
    score = InstrumentScore.objects.get(patient=patient)
    assert (score.instrument, score.total, score.partial) == (instruments.HBI, Decimal(1 + 2 + 3 + 2), True)
    assert score.answers["abdominal_mass"] is None
    assert score.answers["complications"] == ["aphthous_ulcers", "arthralgia"]
    assert score.subscores == {"band": None}  # a partial total gets no severity band (RESP-5)
    assert score.checkin == SymptomCheckIn.objects.get(patient=patient)
    # Weekly means once a week: a second check-in in the same week does not ask it again; next week does.
    today = today_of(patient)
    assert shown(patient, today) == ()
    assert shown(patient, today + dt.timedelta(days=7)) == (instruments.HBI,)


@pytest.mark.django_db
@pytest.mark.parametrize("week", range(0, 13))
def test_mfis_every_four_weeks_PRO2(week, patient):
    has(patient, "multiple_sclerosis")
    first_dose(patient, D)
    for earlier in range(0, week, 4):  # answered in every earlier due week: nothing carried over
        answered(patient, instruments.MFIS, D + dt.timedelta(days=7 * earlier))
    due = instruments.MFIS in shown(patient, D + dt.timedelta(days=7 * week + 6))
    assert due == (week % 4 == 0)


@pytest.mark.django_db
@pytest.mark.parametrize("week", [*range(0, 14), 23, 24, 25, 36, 48])
def test_pgic_at_weeks_4_8_12_PRO2(week, patient):
    first_dose(patient, D)
    for earlier in (4, 8, 12, 24, 36):
        if earlier < week:
            answered(patient, instruments.PGIC, D + dt.timedelta(days=7 * earlier))
    due = instruments.PGIC in shown(patient, D + dt.timedelta(days=7 * week))
    assert due == (week in (4, 8, 12, 24, 36, 48))


@pytest.mark.django_db
@pytest.mark.parametrize(("week", "due"), [(12, True), (13, True), (14, True), (15, False), (23, False)])
def test_a_pgic_missed_in_its_week_is_asked_at_the_check_ins_of_the_next_two_weeks_PRO2(week, due, patient):
    first_dose(patient, D)
    for earlier in (4, 8):
        answered(patient, instruments.PGIC, D + dt.timedelta(days=7 * earlier + 3))
    assert (instruments.PGIC in shown(patient, D + dt.timedelta(days=7 * week + 2))) == due


@pytest.mark.django_db
def test_a_carried_module_answered_late_is_not_asked_again_and_week_0_is_not_carried_PRO2(patient):
    has(patient, "multiple_sclerosis")
    first_dose(patient, D)
    week = lambda n, day=0: D + dt.timedelta(days=7 * n + day)  # noqa: E731
    assert instruments.MFIS not in shown(patient, week(1))  # the missed week-0 baseline is not asked in week 1
    assert instruments.MFIS in shown(patient, week(5, 1))  # week 4 missed: asked in week 5
    answered(patient, instruments.MFIS, week(5, 1))
    assert instruments.MFIS not in shown(patient, week(6))  # answered late: it counts for week 4
    assert instruments.MFIS in shown(patient, week(8))


@pytest.mark.django_db
def test_mfis_page_asks_21_items_about_the_past_four_weeks_and_stores_subscores_PRO2(client, patient, link):
    has(patient, "multiple_sclerosis")
    in_week(patient, 4)
    html = client.get(link).content.decode()
    assert 'id="module-mfis"' in html
    assert "past 4 weeks" in html
    assert all(f'for="id_mfis_{n}_0"' in html for n in range(1, 22))  # every answer labelled
    assert "I have needed to rest more often or for longer periods." in html
    assert 'id="module-pgic"' in html  # week 4: PGIC too
    assert client.post(link, answers(**mfis(), **pgic(2))).status_code == 302
    scores = {s.instrument: s for s in InstrumentScore.objects.filter(patient=patient)}
    assert set(scores) == {instruments.MFIS, instruments.PGIC}
    # By hand from MFIS_MIXED (item k answers k mod 5): the subscale items' answers summed.
    assert scores[instruments.MFIS].total == Decimal(41)
    assert scores[instruments.MFIS].subscores == {"physical": 17, "cognitive": 17, "psychosocial": 7, "short_form": 11}
    assert scores[instruments.MFIS].answers == {"items": MFIS_MIXED}
    assert (scores[instruments.PGIC].total, scores[instruments.PGIC].partial) == (Decimal(2), False)


@pytest.mark.django_db
def test_before_the_first_dose_condition_modules_are_the_week_0_baseline_PRO2(patient):
    has(patient, "multiple_sclerosis", "crohns")
    today = today_of(patient)
    due = selectors.checkin_modules_due(patient=patient, today=today)
    assert (due.week, due.shown) == (None, (instruments.HBI, instruments.MFIS))  # no PGIC before starting
    # Screening for months: MFIS once in any 4 weeks, HBI once in any 7 days.
    answered(patient, instruments.MFIS, today - dt.timedelta(days=27))
    answered(patient, instruments.HBI, today - dt.timedelta(days=7))
    assert shown(patient, today) == (instruments.HBI,)


@pytest.mark.django_db
@pytest.mark.parametrize(("days_before_first_dose", "asked_again"), [(10, False), (14, False), (15, True)])
def test_a_baseline_in_the_14_days_before_the_first_dose_counts_for_week_0_PRO2(
    days_before_first_dose, asked_again, patient
):
    has(patient, "multiple_sclerosis")
    first_dose(patient, D)
    answered(patient, instruments.MFIS, D - dt.timedelta(days=days_before_first_dose))
    assert (instruments.MFIS in shown(patient, D + dt.timedelta(days=3))) is asked_again


@pytest.mark.django_db
def test_a_module_answered_in_this_due_week_is_not_asked_again_PRO2(patient):
    has(patient, "multiple_sclerosis")
    first_dose(patient, D)
    week_4 = D + dt.timedelta(days=28)

    def mfis_due(today):
        return instruments.MFIS in shown(patient, today)

    answered(patient, instruments.MFIS, week_4 - dt.timedelta(days=1))  # week 3: not this due week
    assert mfis_due(week_4 + dt.timedelta(days=2))
    answered(patient, instruments.MFIS, week_4, archived=True)  # an archived check-in does not count
    assert mfis_due(week_4 + dt.timedelta(days=2))
    answered(patient, instruments.MFIS, week_4)
    assert not mfis_due(week_4 + dt.timedelta(days=6))
    assert mfis_due(week_4 + dt.timedelta(days=28))  # week 8


# --- PRO-3: licences ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_fiqr_off_without_licence_PRO3(client, patient, link):
    has(patient, "fibromyalgia")
    in_week(patient, 0)
    licence(patient.clinic, instruments.BPI)  # another instrument's licence switches on nothing else
    assert instruments.FIQR not in shown(patient, today_of(patient))
    html = client.get(link).content.decode()
    assert 'id="module-fiqr"' not in html
    client.post(link, answers(**fiqr([5] * 21)))
    assert not InstrumentScore.objects.exists()  # answers to a module not asked are not stored


@pytest.mark.django_db
def test_fiqr_on_with_current_licence_PRO3(client, patient, link):
    has(patient, "fibromyalgia")
    in_week(patient, 0)
    licence(patient.clinic, instruments.FIQR)
    html = client.get(link).content.decode()
    assert 'id="module-fiqr"' in html
    assert "These questions are about the past 7 days." in html
    assert "Walk continuously for 20 minutes" in html
    assert 'for="id_fiqr_21_10"' in html
    values = [3] * 9 + [4, 6] + [5] * 9 + [None]  # item 21 left blank: pro-rated within its domain (4.1)
    assert client.post(link, answers(**fiqr(values))).status_code == 302
    score = InstrumentScore.objects.get(patient=patient)
    # function 27/3 = 9; overall 10; symptoms 45 * 10/9 / 2 = 25; total 44.
    assert (score.instrument, score.total) == (instruments.FIQR, Decimal("44.0"))
    assert score.subscores == {"function": "9.0", "overall": "10.0", "symptoms": "25.0", "missing": 1}
    assert score.answers == {"items": values}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "terms",
    [
        {"valid_until": dt.date(2026, 1, 31)},  # expired
        {"valid_from": dt.date(2999, 1, 1)},  # not yet valid
        "archived",
    ],
    ids=["expired", "not-yet-valid", "archived"],
)
def test_expired_licence_switches_it_off_PRO3(terms, client, patient, link):
    has(patient, "fibromyalgia")
    in_week(patient, 0)
    if terms == "archived":
        licence(patient.clinic).delete()
    else:
        f.InstrumentLicenceFactory(clinic=patient.clinic, instrument=instruments.FIQR, **terms)
    assert instruments.FIQR not in shown(patient, today_of(patient))
    assert 'id="module-fiqr"' not in client.get(link).content.decode()


@pytest.mark.django_db
def test_another_clinics_licence_switches_nothing_on_for_this_clinic_PRO3(client, patient, other_clinic, link):
    has(patient, "fibromyalgia")
    in_week(patient, 4)
    for instrument in (instruments.FIQR, instruments.BPI, instruments.PROMIS):
        licence(other_clinic, instrument)
    due = selectors.checkin_modules_due(patient=patient, today=today_of(patient))
    assert (due.shown, due.enabled_not_shown) == ((instruments.PGIC,), frozenset())


@pytest.mark.django_db
def test_bpi_and_promis_licences_enable_them_but_no_items_are_shown_PRO3(client, patient, link):
    in_week(patient, 0)
    licence(patient.clinic, instruments.BPI)
    licence(patient.clinic, instruments.PROMIS)
    due = selectors.checkin_modules_due(patient=patient, today=today_of(patient))
    assert due.enabled_not_shown == {instruments.BPI, instruments.PROMIS}
    assert due.shown == ()
    html = client.get(link).content.decode()
    assert "module-" not in html
    assert "Brief Pain" not in html and "PROMIS" not in html
    assert client.post(link, answers()).status_code == 302
    assert not InstrumentScore.objects.exists()


# --- The form: refusals beside the field, nothing saved --------------------------------------------


@pytest.fixture
def all_modules(patient):
    """A Crohn's, MS and fibromyalgia patient in week 4, clinic with a FIQR licence: every module is due."""
    has(patient, "crohns", "multiple_sclerosis", "fibromyalgia")
    in_week(patient, 4)
    licence(patient.clinic, instruments.FIQR)
    return patient


def all_answers(**changes) -> dict:
    return answers(**{**hbi(), **mfis(), **fiqr([5] * 21), **pgic(), **changes})


def assert_nothing_saved() -> None:
    assert not SymptomCheckIn.objects.exists()
    assert not InstrumentScore.objects.exists()
    assert CheckInInvitation.objects.get().used_at is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hbi_well_being", "5"),
        ("hbi_abdominal_pain", "4"),
        ("hbi_liquid_stools", "-1"),
        ("hbi_liquid_stools", "51"),
        ("hbi_liquid_stools", "three"),
        ("hbi_complications", ["abdominal_mass"]),
        ("mfis_3", "5"),
        ("fiqr_12", "11"),
        ("pgic", "8"),
        ("pgic", "0"),
    ],
)
def test_out_of_range_module_answer_is_refused_beside_the_field_and_nothing_saved(
    field, value, client, all_modules, link
):
    page = client.post(link, all_answers(**{field: value}))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="id_{field}_errors"' in html
    assert "Please check the answers marked below." in html
    assert_nothing_saved()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["hbi_well_being", "hbi_abdominal_pain", "hbi_liquid_stools", "pgic"])
def test_missing_module_answer_is_refused_and_nothing_saved(field, client, all_modules, link):
    data = all_answers()
    del data[field]
    page = client.post(link, data)
    assert page.status_code == 200
    assert f'id="id_{field}_errors"' in page.content.decode()
    assert_nothing_saved()


@pytest.mark.django_db
def test_a_missing_mfis_item_is_refused_with_the_scoring_message(client, all_modules, link):
    values = list(MFIS_MIXED)
    values[6] = values[10] = None  # items 7 and 11
    html = client.post(link, all_answers(**mfis(values))).content.decode()
    assert "MFIS item 7 is missing; every item must be answered." in html  # instruments.mfis_score's message
    assert 'id="id_mfis_errors"' in html
    assert 'id="id_mfis_7_errors"' in html and 'id="id_mfis_11_errors"' in html
    assert 'id="id_mfis_8_errors"' not in html
    assert_nothing_saved()


@pytest.mark.django_db
def test_a_fiqr_domain_left_blank_is_refused_with_the_scoring_message(client, all_modules, link):
    values = [5] * 9 + [None, None] + [5] * 10
    html = client.post(link, all_answers(**fiqr(values))).content.decode()
    assert "FIQR overall impact domain has no answered item: it cannot be scored." in html
    assert 'id="id_fiqr_10_errors"' in html and 'id="id_fiqr_11_errors"' in html
    assert "Please answer at least one question in this part." in html
    assert 'id="id_fiqr_9_errors"' not in html
    assert_nothing_saved()


@pytest.mark.django_db
def test_a_module_cannot_be_skipped_by_leaving_its_fields_out_of_the_post(client, all_modules, link):
    data = {k: v for k, v in all_answers().items() if not k.startswith(("hbi_", "mfis_", "pgic"))}
    page = client.post(link, data)
    assert page.status_code == 200
    assert 'id="id_hbi_well_being_errors"' in page.content.decode()
    assert_nothing_saved()


@pytest.mark.django_db
def test_all_modules_are_stored_with_the_checkin_in_one_go(client, all_modules, link):
    assert client.post(link, all_answers()).status_code == 302
    checkin = SymptomCheckIn.objects.get()
    assert sorted(checkin.instrument_scores.values_list("instrument", flat=True)) == ["FIQR", "HBI", "MFIS", "PGIC"]
    assert {s.recorded_at for s in checkin.instrument_scores.all()} == {checkin.recorded_at}
    assert {s.clinic_id for s in checkin.instrument_scores.all()} == {all_modules.clinic_id}


@pytest.mark.django_db
def test_invalid_module_answers_given_to_the_service_store_nothing(patient):
    data = {
        **{"pain": 6, "fatigue": 5, "sleep_quality": 4, "mood": 6, "nights_missed": 0, "opioid_use": "no"},
        **{"took_dose_as_prescribed": True, "notes": "", "submission_id": uuid.uuid4()},
    }
    with pytest.raises(ValueError, match="MFIS item 2 is missing"):
        services.checkin_submit(
            patient=patient, data=data, side_effects=[], modules={"MFIS": {"items": [1, None] + [0] * 19}}
        )
    with pytest.raises(ValueError, match="no items"):
        services.checkin_submit(patient=patient, data=data, side_effects=[], modules={"BPI": {}})
    assert not SymptomCheckIn.objects.exists()


# --- Once only: the same submission, and what the browser says was shown ----------------------------


@pytest.mark.django_db
def test_duplicate_submit_stores_one_score(client, patient, patient_user):
    has(patient, "crohns", "multiple_sclerosis")
    in_week(patient, 4)
    client.force_login(patient_user)
    data = answers(**hbi(), **mfis(), **pgic())
    assert client.post("/me/checkin/", data).status_code == 302
    assert client.post("/me/checkin/", data).status_code == 302
    assert SymptomCheckIn.objects.filter(patient=patient).count() == 1
    assert sorted(InstrumentScore.objects.values_list("instrument", flat=True)) == ["HBI", "MFIS", "PGIC"]


@pytest.mark.django_db
def test_modules_are_worked_out_again_on_post_not_taken_from_the_browser(client, patient, patient_user):
    client.force_login(patient_user)  # no conditions, week 0: nothing is due
    page = client.get("/me/checkin/").content.decode()
    assert "module-" not in page
    response = client.post("/me/checkin/", answers(**hbi(), **mfis(), **pgic(), modules="HBI,MFIS,PGIC"))
    assert response.status_code == 302
    assert SymptomCheckIn.objects.filter(patient=patient).count() == 1
    assert not InstrumentScore.objects.exists()


@pytest.mark.django_db
def test_portal_page_asks_the_same_modules_as_the_link(client, all_modules, patient_user):
    client.force_login(patient_user)
    html = client.get("/me/checkin/").content.decode()
    for key in ("hbi", "mfis", "fiqr", "pgic"):
        assert f'id="module-{key}"' in html
    assert html.index('id="id_opioid_use_legend"') < html.index('id="module-hbi"')  # below the PRO-1 items
    assert client.post("/me/checkin/", all_answers()).status_code == 302
    assert InstrumentScore.objects.filter(patient=all_modules).count() == 4


# --- Query counts and escaping ----------------------------------------------------------------------

CHECKIN_PAGE_MAX_QUERIES = 12  # 10 at the time of writing, with every module due; the same at 5 and 50


@pytest.mark.django_db
@pytest.mark.parametrize("history", [5, 50])
def test_checkin_page_renders_the_modules_at_a_bounded_query_count(
    history, client, all_modules, patient_user, link, django_assert_max_num_queries
):
    today = today_of(all_modules)
    for n in range(history):
        day = today - dt.timedelta(days=7 * (n + 1))
        for instrument in (instruments.HBI, instruments.MFIS):
            answered(all_modules, instrument, day)
    with django_assert_max_num_queries(CHECKIN_PAGE_MAX_QUERIES):
        page = client.get(link)
    assert 'id="module-fiqr"' in page.content.decode()
    client.force_login(patient_user)
    with django_assert_max_num_queries(CHECKIN_PAGE_MAX_QUERIES):
        page = client.get("/me/checkin/")
    assert len(page.context["form"].module_blocks()) == 4


@pytest.mark.django_db
def test_module_answers_echoed_back_are_escaped(client, all_modules, link):
    evil = '"><script>alert(1)</script>'
    html = client.post(link, all_answers(hbi_liquid_stools=evil, notes=evil)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_nothing_saved()


# --- The admin: scores read-only, licences for clinic admins and prescribers ------------------------


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.django_db
def test_checkin_admin_shows_its_module_scores_read_only_with_partial(client, all_modules, link, nurse, prescriber):
    client.post(link, all_answers(notes="<script>alert(1)</script>"))
    checkin = SymptomCheckIn.objects.get()
    hbi_score = checkin.instrument_scores.get(instrument=instruments.HBI)
    for user in (nurse, prescriber):
        client.force_login(user)
        page = client.get(admin_url(SymptomCheckIn, "change", checkin.pk))
        html = page.content.decode()
        assert "partial = HBI without the clinician-examined abdominal mass" in html
        inline = next(i for i in page.context["inline_admin_formsets"] if i.formset.model is InstrumentScore)
        assert not inline.has_add_permission and not inline.has_change_permission
        assert "<script>alert(1)</script>" not in html
    listing = client.get(admin_url(InstrumentScore, "changelist"))
    assert hbi_score in listing.context["cl"].result_list
    assert "partial" in listing.content.decode()
    assert client.get(admin_url(InstrumentScore, "add")).status_code == 403
    page = client.get(admin_url(InstrumentScore, "change", hbi_score.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def licence_post(clinic, **extra) -> dict:
    return {
        "clinic": clinic.pk,
        "instrument": "FIQR",
        "scope": "commercial",
        "holder": "Oregon Health & Science University",
        "reference": "OHSU-FIQR-2026-17",
        "valid_from": "2026-01-01",
        "valid_until": "",
        "notes": "",
        **extra,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "may"), [("clinic_admin", True), ("prescriber", True), ("nurse", False)])
def test_only_clinic_admins_and_prescribers_record_licences_PRO3(role, may, request, client, clinic):
    user = request.getfixturevalue(role)
    client.force_login(user)
    add = client.get(admin_url(InstrumentLicence, "add"))
    assert add.status_code == (200 if may else 403)
    response = client.post(admin_url(InstrumentLicence, "add"), licence_post(clinic))
    if not may:
        assert response.status_code == 403
        assert not InstrumentLicence.objects.exists()
        existing = licence(clinic)
        page = client.get(admin_url(InstrumentLicence, "change", existing.pk))
        assert page.status_code == 200 and b'name="_save"' not in page.content
        return
    assert response.status_code == 302, response.context["adminform"].form.errors
    saved = InstrumentLicence.objects.get()
    assert (saved.clinic, saved.recorded_by, saved.history.get().history_user) == (clinic, user, user)
    assert saved.is_current(clinic_today(clinic))
    html = add.content.decode()
    assert "BPI and PROMIS: ldnclinic includes none of their questions" in html  # stated plainly


@pytest.mark.django_db
def test_licence_clinic_choice_is_own_clinic_only_and_one_licence_per_instrument_PRO3(
    client, clinic_admin, clinic, other_clinic
):
    client.force_login(clinic_admin)
    form = client.get(admin_url(InstrumentLicence, "add")).context["adminform"].form
    assert list(form.fields["clinic"].queryset) == [clinic]
    response = client.post(admin_url(InstrumentLicence, "add"), licence_post(other_clinic))
    assert "clinic" in response.context["adminform"].form.errors
    licence(clinic)
    response = client.post(admin_url(InstrumentLicence, "add"), licence_post(clinic))
    assert "already has this instrument's licence" in response.context["adminform"].form.errors["instrument"][0]
    assert InstrumentLicence.objects.count() == 1


@pytest.mark.django_db
def test_a_prescriber_extends_a_licence_and_is_recorded_as_who_did_PRO3(admin_change, prescriber, clinic_admin, clinic):
    existing = licence(clinic, valid_until=dt.date(2026, 1, 31))
    existing.recorded_by = clinic_admin
    existing.save()
    response = admin_change(prescriber, existing, valid_until="2027-12-31")
    assert response.status_code == 302
    existing.refresh_from_db()
    assert (existing.valid_until, existing.recorded_by, existing.clinic) == (dt.date(2027, 12, 31), prescriber, clinic)
    assert existing.history.latest().history_user == prescriber


@pytest.mark.django_db
def test_a_prescriber_who_is_only_a_nurse_at_the_licences_clinic_cannot_change_it_PRO3(
    client, nurse, other_clinic, clinic
):
    f.MembershipFactory(user=nurse, clinic=other_clinic, role="prescriber")  # prescriber elsewhere
    mine = licence(clinic)
    client.force_login(nurse)
    page = client.get(admin_url(InstrumentLicence, "change", mine.pk))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert list(
        client.get(admin_url(InstrumentLicence, "add")).context["adminform"].form.fields["clinic"].queryset
    ) == [other_clinic]
