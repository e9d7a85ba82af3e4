from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from . import opioids, selectors
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


class MedicationCheckIn(serializers.Serializer):
    name = serializers.CharField(max_length=300, trim_whitespace=True)


class MedicationCheckOut(serializers.Serializer):
    name = serializers.CharField()
    klass = serializers.ChoiceField(
        choices=["conflict", "caution", "antagonist", "opioid_context", "none", "unavailable"]
    )
    ingredients = serializers.ListField(child=serializers.CharField())
    washout_days = serializers.IntegerField(allow_null=True)
    washout_group = serializers.CharField(allow_null=True)
    release = serializers.CharField(allow_null=True)
    evidence = serializers.ListField(child=serializers.CharField())
    notes = serializers.ListField(child=serializers.CharField())
    catalog_version = serializers.CharField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["class"] = data.pop("klass")
        return data


class MedicationCheckView(APIView):
    """Check one medicine name against the opioid catalog (domain.md section 2). Clinic staff only."""

    @extend_schema(request=MedicationCheckIn, responses=MedicationCheckOut)
    def post(self, request):
        incoming = MedicationCheckIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        result = opioids.match(incoming.validated_data["name"])
        data = result.as_dict()
        data["klass"] = data.pop("class")
        return Response(MedicationCheckOut(data).data)
