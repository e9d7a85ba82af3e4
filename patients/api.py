from rest_framework import serializers, viewsets

from . import selectors
from .models import Patient, PatientCondition


class ConditionOut(serializers.ModelSerializer):
    class Meta:
        model = PatientCondition
        fields = ["condition", "diagnosed_on"]


class PatientOut(serializers.ModelSerializer):
    conditions = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = [
            "id",
            "mrn",
            "first_name",
            "last_name",
            "date_of_birth",
            "sex",
            "time_zone",
            "dose_time",
            "status",
            "conditions",
        ]

    def get_conditions(self, obj: Patient) -> list[dict]:
        alive = [c for c in obj.conditions.all() if c.deleted_at is None]
        return ConditionOut(alive, many=True).data


class PatientViewSet(viewsets.ReadOnlyModelViewSet):
    """Patients of the caller's clinics (read-only here; writes arrive with the clinician UI)."""

    serializer_class = PatientOut
    filterset_fields = ["status"]

    def get_queryset(self):
        return selectors.patient_list(user=self.request.user)
