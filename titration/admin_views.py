"""Admin page: plan a titration from a protocol, see the schedule and the per-step quantities, then save."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from ldnclinic import scoping
from patients.models import Patient

from . import services
from .models import CompoundedPrescription, PrescriptionStatus, TitrationProtocol


class PlanFromProtocolForm(forms.Form):
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())
    protocol = forms.ModelChoiceField(queryset=TitrationProtocol.objects.filter(is_active=True))
    prescription = forms.ModelChoiceField(queryset=CompoundedPrescription.objects.none(), required=False)
    start = forms.DateField(initial=timezone.localdate, help_text="YYYY-MM-DD")
    target_mg = forms.DecimalField(
        max_digits=5, decimal_places=3, required=False, help_text="Default: the protocol's last dose"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = scoping.visible_to(user, Patient.objects.all())
        self.fields["prescription"].queryset = scoping.visible_to(
            user, CompoundedPrescription.objects.exclude(status=PrescriptionStatus.CANCELLED)
        )

    def clean(self):
        data = super().clean()
        rx, patient = data.get("prescription"), data.get("patient")
        if rx and patient and rx.patient_id != patient.pk:
            self.add_error("prescription", "Choose a prescription of this patient.")
        return data


def plan_from_protocol(model_admin, request):
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = PlanFromProtocolForm(
        request.POST or None, user=request.user, initial={"patient": request.GET.get("patient")}
    )
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = {
            "protocol": data["protocol"],
            "start": data["start"],
            "target_mg": data["target_mg"],
            "prescription": data["prescription"],
        }
        try:
            preview = services.plan_preview(**options)
            if "save" in request.POST:
                plan = services.plan_create(actor=request.user, patient=data["patient"], **options)
                messages.success(
                    request, f"Saved a draft plan for {data['patient']}: start it when the prescription is active."
                )
                return redirect("admin:titration_titrationplan_change", plan.pk)
        except ValidationError as exc:
            form.add_error(None, exc)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Plan a titration from a protocol",
        "form": form,
        "preview": preview,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/titration/plan_from_protocol.html", context)
