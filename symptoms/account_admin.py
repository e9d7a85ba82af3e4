"""The "Invite to patient portal" admin action on patients.

The portal lives in symptoms and patients must not import symptoms, so symptoms adds the action to
patients' PatientAdmin at start-up (SymptomsConfig.ready). It is a changelist action; each patient's
page has a button for it (templates/admin/patients/patient/change_form.html) in its object tools,
outside the patient's form. Not Django 6.1's change-form actions: their "Run" button is the form's
first submit button, so pressing Enter in any field would run the action and drop the edits.
Only roles that may change patients (prescriber, nurse) get the action, and the service checks the
clinic of each patient again.
"""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from . import accounts

# The change page's button sends this, to come back to the patient's page afterwards.
FROM_CHANGE_PAGE = "_invite_from_change_page"


@admin.action(description="Invite to patient portal / send a new invitation", permissions=["change"])
def invite_to_portal(modeladmin, request, queryset):
    patients = list(queryset.select_related("clinic", "user"))
    selected = set(request.POST.getlist(ACTION_CHECKBOX_NAME))
    if request.POST.get("select_across") != "1" and len(patients) != len(selected):
        raise Http404("No such patient.")  # a patient this user may not see: as if it did not exist
    for patient in patients:
        try:
            invitation = accounts.patient_account_invite(actor=request.user, patient=patient)
        except accounts.InviteRefused as refused:
            modeladmin.message_user(request, str(refused), messages.ERROR)
            continue
        except PermissionDenied:
            modeladmin.message_user(request, f"You cannot invite {patient} to the patient portal.", messages.ERROR)
            continue
        what = "Invitation" if invitation.created else "A new invitation"
        if invitation.sent is False:
            modeladmin.message_user(
                request,
                f"{what} for {patient} could not be emailed (the mail server did not take it). Try again later.",
                messages.ERROR,
            )
        else:
            modeladmin.message_user(
                request,
                f"{what} to the patient portal was sent to {patient} at {invitation.user.email}.",
                messages.SUCCESS,
            )
    if FROM_CHANGE_PAGE in request.POST and len(patients) == 1:
        return HttpResponseRedirect(reverse("admin:patients_patient_change", args=[patients[0].pk]))
    return None


def install() -> None:
    from patients.admin import PatientAdmin

    if invite_to_portal not in PatientAdmin.actions:
        PatientAdmin.actions = [*PatientAdmin.actions, invite_to_portal]
