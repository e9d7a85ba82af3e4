"""Laboratory monitoring (domain.md section 5): LAB-2 liver thresholds as a pure rule, as clinician
tasks, and as a block on step-ups; a positive urine drug screen as an opioid CONFLICT."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from patients import lab_rules, labs
from patients import services as patient_services
from patients.flag_models import ClinicianTask, ConflictFlag
from patients.lab_rules import ALERT, BLOCK, OK, LiverResult, liver_check, liver_finding
from patients.models import LabResult
from patients.today import patient_today
from tests import factories as f
from tests.test_privacy import assert_not_found, assert_redirected_to_login
from tests.titration.test_reminders import active_patient, send_due, titrating
from titration import content, services
from titration.services import StepUpNotAllowed

D = Decimal
DAY = dt.date(2026, 11, 30)


def alt(value, uln="40", *, result_id=1, test="ALT", day=DAY):
    return LiverResult(result_id, test, D(value), "U/L", None if uln is None else D(uln), day)


# --- The rule -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "uln", "level"),
    [
        ("40", "40", None),  # at the limit
        ("120", "40", None),  # exactly 3x: not above it
        ("120.01", "40", ALERT),
        ("200", "40", ALERT),  # exactly 5x: an alert, not yet a block
        ("200.01", "40", BLOCK),
        ("1000", "40", BLOCK),
        ("0", "40", None),
        ("50", None, BLOCK),  # no ULN on file: cannot be checked, so it is not passed
        ("50", "0", BLOCK),
    ],
)
def test_liver_thresholds_are_above_3x_and_5x_uln_LAB2(value, uln, level):
    finding = liver_finding(alt(value, uln))
    assert (finding.level if finding else None) == level


def test_a_finding_says_the_value_the_multiple_and_the_rule_LAB2():
    finding = liver_finding(alt("250", "40", result_id=7))
    assert finding.text == (
        "ALT 250 U/L on 2026-11-30 is 6.3× the upper limit of normal (40): step-ups blocked pending review (LAB-2)"
    )
    assert finding.key == "lab2-review:7"
    alert = liver_finding(alt("160", "40", result_id=8, test="AST"))
    assert alert.key == "lab2-alert:8" and "AST 160 U/L" in alert.text and "4×" in alert.text
    assert "just over 5×" in liver_finding(alt("200.01", "40")).text  # not "5×", which is not above 5×
    assert "just over 3×" in liver_finding(alt("120.01", "40")).text


def test_a_result_without_a_uln_says_review_manually_LAB2():
    finding = liver_finding(alt("50", None))
    assert finding.level == BLOCK and "review manually" in finding.text and "reference range" in finding.text


def test_only_each_tests_latest_result_counts_LAB2():
    older_high = alt("400", result_id=1, day=DAY - dt.timedelta(days=30))
    newer_normal = alt("35", result_id=2, day=DAY)
    ast_high = alt("130", result_id=3, test="AST")
    check = liver_check([newer_normal, older_high, ast_high], severe_hepatic_impairment=False, patient_id=9)
    assert check.level == ALERT
    assert [x.key for x in check.findings] == ["lab2-alert:3"]
    assert check.missing == ()


def test_severe_hepatic_impairment_blocks_whatever_the_results_LAB2():
    check = liver_check([alt("20")], severe_hepatic_impairment=True, patient_id=9)
    assert check.level == BLOCK and check.findings[0].key == "lab2-hepatic:9"
    assert "severe hepatic impairment" in check.findings[0].text


def test_no_liver_results_is_ok_but_says_the_baseline_is_missing_LAB2():
    check = liver_check([], severe_hepatic_impairment=False, patient_id=9)
    assert (check.level, check.missing) == (OK, ("ALT", "AST"))
    assert liver_check([alt("20")], severe_hepatic_impairment=False, patient_id=9).missing == ("AST",)


def test_the_rule_refuses_other_tests_LAB2():
    with pytest.raises(ValueError, match="ALT and AST"):
        liver_finding(alt("20", test="ESR"))
    with pytest.raises(ValueError, match="ALT and AST"):
        liver_check([alt("20", test="CRP")], severe_hepatic_impairment=False, patient_id=1)


# --- In the record -------------------------------------------------------------------------------------


def liver(patient, value, *, test="ALT", uln="40", days_ago=0):
    return f.LabResultFactory(
        patient=patient,
        test=test,
        value=D(value),
        unit="U/L",
        ref_low=D("0"),
        ref_high=None if uln is None else D(uln),
        collected_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def tasks(patient, kind=None):
    rows = ClinicianTask.objects.filter(patient=patient)
    return rows.filter(kind=kind) if kind else rows


def decision(plan, step):
    return content.step_up_decision(plan, step, patient_today(plan.patient))


def test_alt_above_5x_uln_blocks_the_step_up_with_its_reason_until_reviewed_LAB2(clinic, prescriber):
    patient = active_patient(clinic)
    today = patient_today(patient)
    plan, step = titrating(patient, today)
    assert decision(plan, step).allowed
    result = liver(patient, "250")
    liver(patient, "250").save()  # saved again (another result, same level): one task per result
    result.save()
    (task,) = tasks(patient, "lab_review").filter(key=f"lab2-review:{result.pk}")
    assert task.status == "open" and "6.3×" in task.title
    held = decision(plan, step)
    assert not held.allowed
    assert [r.rule for r in held.reasons] == ["LAB-2", "LAB-2"]
    assert "step-ups blocked pending review (LAB-2)" in held.reasons[0].text
    with pytest.raises(StepUpNotAllowed):
        services.plan_advance(actor=prescriber, plan=plan, on=today)
    # A later normal result does not clear a review by itself: a clinician closes it.
    liver(patient, "30")
    assert not decision(plan, step).allowed
    for task in tasks(patient, "lab_review"):
        task.status = "done"
        task.completed_by = prescriber
        task.completed_note = "repeat ALT normal; hepatology agrees to continue"
        task.save()
    assert decision(plan, step).allowed
    assert services.plan_advance(actor=prescriber, plan=plan, on=today).dose_mg == D("3.0")


def test_a_prescriber_may_step_up_over_a_liver_block_with_a_reason_LAB2(clinic, prescriber):
    patient = active_patient(clinic)
    today = patient_today(patient)
    plan, step = titrating(patient, today)
    liver(patient, "300", test="AST")
    moved = services.plan_advance(actor=prescriber, plan=plan, on=today, override_reason="hepatologist agrees")
    assert moved.pk == step.pk
    assert "hepatologist agrees" in moved.history.first().history_change_reason


def test_alt_between_3x_and_5x_alerts_without_blocking_LAB2(clinic):
    patient = active_patient(clinic)
    plan, step = titrating(patient, patient_today(patient))
    liver(patient, "150")
    assert tasks(patient, "lab_alert").count() == 1
    assert not tasks(patient, "lab_review").exists()
    assert decision(plan, step).allowed


def test_a_liver_result_without_a_uln_blocks_for_manual_review_LAB2(clinic):
    patient = active_patient(clinic)
    plan, step = titrating(patient, patient_today(patient))
    liver(patient, "45", uln=None)
    held = decision(plan, step)
    assert not held.allowed and "review manually" in held.reasons[0].text


def test_archiving_a_result_entered_in_error_cancels_its_review_LAB2(clinic):
    patient = active_patient(clinic)
    plan, step = titrating(patient, patient_today(patient))
    result = liver(patient, "900")
    assert not decision(plan, step).allowed
    result.delete()
    (task,) = tasks(patient, "lab_review")
    assert task.status == "cancelled" and "archived" in task.completed_note
    assert decision(plan, step).allowed
    assert LabResult.all_objects.filter(pk=result.pk).exists()  # soft: nothing is lost


def test_severe_hepatic_impairment_on_the_record_blocks_step_ups_until_reviewed_LAB2(clinic):
    patient = active_patient(clinic)
    plan, step = titrating(patient, patient_today(patient))
    patient.severe_hepatic_impairment = True
    patient.save()
    patient.save()
    (task,) = tasks(patient, "lab_review")
    assert "severe hepatic impairment" in task.detail
    assert not decision(plan, step).allowed
    patient.severe_hepatic_impairment = False
    patient.save()
    task.refresh_from_db()
    assert task.status == "cancelled"
    assert decision(plan, step).allowed


def test_the_step_up_reminder_says_stay_on_the_current_dose_while_a_liver_review_is_open_LAB2(clinic, smtp_server):
    patient = active_patient(clinic)
    today = patient_today(patient)
    titrating(patient, today)
    liver(patient, "500")
    send_due(today, patient)
    (message,) = [m for m in smtp_server.recorder.to("pat@example.test") if "1.5 mg" in m.get_payload()]
    assert "stay" in message.get_payload().lower() and "3.0 mg" not in message["Subject"]
    assert "ALT" not in message.get_payload()  # reminders carry no clinical findings


def test_a_rolled_back_lab_result_leaves_no_task_LAB2(clinic):
    patient = active_patient(clinic)
    with pytest.raises(RuntimeError), transaction.atomic():
        liver(patient, "900")
        raise RuntimeError("the request failed")
    assert not tasks(patient).exists()


def test_evaluating_again_changes_nothing_LAB2(clinic):
    patient = active_patient(clinic)
    liver(patient, "900")
    liver(patient, "150", test="AST")
    before = list(tasks(patient).order_by("pk").values_list("key", "status"))
    for _ in range(2):
        assert labs.labs_evaluate(patient=patient).level == lab_rules.BLOCK
    assert list(tasks(patient).order_by("pk").values_list("key", "status")) == before
    assert len(before) == 2


# --- Urine drug screen -----------------------------------------------------------------------------------


def screen(patient, result):
    return f.LabResultFactory(
        patient=patient, test="UDS", value=None, unit="", ref_low=None, ref_high=None, result=result
    )


def conflicts(patient):
    return ConflictFlag.objects.filter(patient=patient, kind="conflict")


def test_a_positive_urine_drug_screen_is_an_opioid_conflict(clinic):
    patient = f.PatientFactory(clinic=clinic, status="screening")
    result = screen(patient, "positive")
    (flag,) = conflicts(patient)
    assert flag.status == "open" and "urine drug screen" in flag.medication_text
    assert flag.medication.source == "lab"
    assert flag.earliest_safe_start is None and "which opioid" in flag.earliest_start_note
    result.save()
    assert conflicts(patient).count() == 1


def test_a_negative_urine_drug_screen_adds_nothing(clinic):
    patient = f.PatientFactory(clinic=clinic, status="screening")
    screen(patient, "negative")
    assert not ConflictFlag.objects.filter(patient=patient).exists()
    assert not patient.medications.exists()


def test_a_screen_corrected_to_negative_resolves_its_conflict_and_keeps_the_history(clinic):
    patient = f.PatientFactory(clinic=clinic, status="screening")
    result = screen(patient, "positive")
    result.result = "negative"
    result.save()
    (flag,) = conflicts(patient)
    assert flag.status == "resolved" and "archived" in flag.resolved_reason
    assert patient.medications.model.all_objects.filter(patient=patient, source="lab").count() == 1
    result.result = "positive"
    result.save()
    flag.refresh_from_db()
    assert flag.status == "open"


def test_correcting_a_positive_screens_date_keeps_one_entry_and_one_conflict(clinic):
    patient = f.PatientFactory(clinic=clinic, status="screening")
    result = screen(patient, "positive")
    result.collected_at -= dt.timedelta(days=2)
    result.save()
    (entry,) = patient.medications.model.all_objects.filter(patient=patient, source="lab")
    assert entry.deleted_at is None and f"{result.collected_at:%Y-%m-%d}" in entry.name
    (flag,) = conflicts(patient).filter(status="open")
    assert flag.medication_id == entry.pk


def test_a_screen_has_a_result_and_a_measured_test_has_a_value(clinic):
    patient = f.PatientFactory(clinic=clinic)
    bad = [
        LabResult(patient=patient, test="UDS", value=D("1"), result="positive"),
        LabResult(patient=patient, test="UDS"),
        LabResult(patient=patient, test="ALT", unit="U/L"),
        LabResult(patient=patient, test="ALT", value=D("20"), unit="U/L", result="positive"),
        LabResult(patient=patient, test="ALT", value=D("20"), unit=" "),
    ]
    fields = [{"value"}, {"result"}, {"value"}, {"result"}, {"unit"}]
    for row, expected in zip(bad, fields, strict=True):
        with pytest.raises(ValidationError) as caught:
            row.clean()
        assert set(caught.value.message_dict) == expected
    with pytest.raises(IntegrityError), transaction.atomic():
        LabResult.objects.create(
            patient=patient, clinic=clinic, test="UDS", value=D("1"), result="positive", collected_at=timezone.now()
        )
    assert not LabResult.objects.filter(patient=patient).exists()


# --- As the clinic sees it in the admin --------------------------------------------------------------------


def lab_form(patient, **values):
    data = {"patient": patient.pk, "test": "ALT", "test_name": "", "value": "", "unit": "", "ref_low": "0"}
    data |= {"ref_high": "", "result": "", "collected_at_0": "2026-11-29", "collected_at_1": "09:00", "lab_source": ""}
    return data | values


def shown(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_admin_entering_a_high_alt_says_step_ups_are_blocked_LAB2(client, prescriber, patient):
    client.force_login(prescriber)
    response = client.post(
        reverse("admin:patients_labresult_add"),
        lab_form(patient, value="260", unit="U/L", ref_high="40"),
        follow=True,
    )
    assert response.status_code == 200
    assert any("6.5× the upper limit of normal" in m and "blocked" in m for m in shown(response)), shown(response)
    assert any("No AST on file" in m for m in shown(response))
    page = client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    assert any("step-ups blocked pending review (LAB-2)" in m for m in shown(page))
    assert "known severe hepatic impairment" in page.content.decode().lower()


def test_admin_refuses_a_screen_with_a_value_and_saves_nothing(client, prescriber, patient):
    client.force_login(prescriber)
    response = client.post(
        reverse("admin:patients_labresult_add"), lab_form(patient, test="UDS", value="1", unit="ng/mL")
    )
    assert response.status_code == 200
    assert "A urine drug screen has a result, not a value." in response.content.decode()
    assert not LabResult.all_objects.filter(patient=patient).exists()


def test_admin_positive_screen_shows_the_conflict(client, prescriber, patient):
    client.force_login(prescriber)
    response = client.post(
        reverse("admin:patients_labresult_add"), lab_form(patient, test="UDS", result="positive"), follow=True
    )
    assert any(m.startswith("OPIOID CONFLICT: Opioid on urine drug screen") for m in shown(response)), shown(response)


def close_form(task, note):
    return {"status": "done", "completed_note": note}


def test_nobody_closes_a_liver_review_in_the_admin_LAB2(client, prescriber, nurse, operator, patient):
    # A liver review is closed on the clinic pages through patients.services.task_close (next test); the admin
    # shows the task read-only and refuses the POST, whoever sends it.
    liver(patient, "900")
    (task,) = tasks(patient, "lab_review")
    url = reverse("admin:patients_cliniciantask_change", args=[task.pk])
    for user in (nurse, prescriber, operator):
        client.force_login(user)
        page = client.get(url)
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert client.post(url, close_form(task, "repeat ALT 38 U/L; continue titration")).status_code == 403
    task.refresh_from_db()
    assert (task.status, task.completed_by) == ("open", None)


def test_only_a_prescriber_closes_a_liver_review_and_says_what_was_reviewed_LAB2(prescriber, nurse, patient):
    liver(patient, "900")
    (task,) = tasks(patient, "lab_review")
    with pytest.raises(PermissionDenied, match="Only a prescriber of this clinic can close this review"):
        patient_services.task_close(actor=nurse, task=task, note="looked at it")
    with pytest.raises(ValidationError, match="Say what you reviewed"):
        patient_services.task_close(actor=prescriber, task=task, note="  ")
    task.refresh_from_db()
    assert task.status == "open"
    patient_services.task_close(actor=prescriber, task=task, note="repeat ALT 38 U/L; continue titration")
    task.refresh_from_db()
    assert (task.status, task.completed_by) == ("done", prescriber)


def test_another_clinics_prescriber_cannot_see_or_close_the_review_LAB2(client, other_prescriber, patient):
    liver(patient, "900")
    (task,) = tasks(patient, "lab_review")
    client.force_login(other_prescriber)
    url = reverse("admin:patients_cliniciantask_change", args=[task.pk])
    assert_not_found(client.get(url))
    client.post(url, close_form(task, "not mine"))
    task.refresh_from_db()
    assert task.status == "open"


def test_the_patients_page_lists_their_labs_and_links_to_add_one_LAB2(client, prescriber, patient):
    liver(patient, "30", test="AST", days_ago=20)
    liver(patient, "420", days_ago=1)
    screen(patient, "negative")
    client.force_login(prescriber)
    page = client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    rows = page.context["inline_admin_formsets"][-1].formset.forms
    assert [form.instance.test for form in rows] == ["UDS", "ALT", "AST"]  # newest first
    html = page.content.decode()
    assert "420 U/L" in html and "Negative" in html and "0–40" in html
    add = f"{reverse('admin:patients_labresult_add')}?patient={patient.pk}"
    assert f'href="{add}"' in html
    form = client.get(add).context["adminform"].form
    assert form.initial["patient"] == str(patient.pk)


def test_the_add_a_lab_link_for_another_clinics_patient_shows_and_takes_nothing(
    client, other_prescriber, patient, patient_user
):
    add = f"{reverse('admin:patients_labresult_add')}?patient={patient.pk}"
    client.force_login(other_prescriber)
    page = client.get(add)
    form = page.context["adminform"].form
    assert patient.pk not in {p.pk for p in form.fields["patient"].queryset}
    assert patient.last_name not in page.content.decode() and patient.mrn not in page.content.decode()
    posted = client.post(add, lab_form(patient, value="900", unit="U/L", ref_high="40"))
    assert posted.status_code == 200 and "patient" in posted.context["adminform"].form.errors
    assert not LabResult.all_objects.filter(patient=patient).exists() and not tasks(patient).exists()
    client.force_login(patient_user)  # a patient login: the staff pages are not theirs
    assert_redirected_to_login(client.get(add))
