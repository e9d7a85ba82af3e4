"""Inviting a patient to the patient portal from the clinic pages (the same service as the admin action)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from patients.models import Patient
from symptoms import accounts

from .access import require, staff_view, visible_or_404


@staff_view
@require_POST
def portal_invite(request, pk: int):
    patient = visible_or_404(request.user, Patient.objects.select_related("clinic", "user"), pk=pk)
    require(request.user, patient.clinic_id, "patient_edit")
    try:
        invitation = accounts.patient_account_invite(actor=request.user, patient=patient)
    except accounts.InviteRefused as refused:
        messages.error(request, str(refused))
    except PermissionDenied:
        messages.error(request, f"You cannot invite {patient.full_name} to the patient portal.")
    else:
        what = "Invitation" if invitation.created else "A new invitation"
        if invitation.sent is False:
            messages.error(request, f"{what} could not be emailed (the mail server did not take it). Try again later.")
        else:
            messages.success(request, f"{what} to the patient portal was sent to {invitation.user.email}.")
    return redirect("clinic:patient-edit", pk=patient.pk)
