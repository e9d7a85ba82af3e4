from django.contrib import admin

from ldnclinic.admin import ScopedAdmin, ScopedInline

from .models import SideEffectReport, SymptomCheckIn


class SideEffectInline(ScopedInline):
    model = SideEffectReport
    fields = ["effect", "severity", "description", "started_on"]
    show_change_link = False


@admin.register(SymptomCheckIn)
class SymptomCheckInAdmin(ScopedAdmin):
    list_display = ["patient", "recorded_at", "pain", "fatigue", "sleep_quality", "mood", "opioid_use"]
    list_filter = ["opioid_use", "took_dose_as_prescribed"]
    date_hierarchy = "recorded_at"
    list_select_related = ["patient"]
    inlines = [SideEffectInline]
    search_fields = ["patient__mrn", "patient__last_name"]
