"""Admin plumbing: every clinical ModelAdmin sees only what ldnclinic.scoping lets its user see.

Permissions come from the user's clinic role, not Django's per-model permission table, so the
role matrix lives in one place (each admin lists the roles that may write). Nothing is deleted
from the admin: rows are archived (soft delete) and their history stays.

The admin is for configuration. Clinical state (prescriptions, plans and steps, flags, gate events,
tasks, reminders, check-ins, scores) is read-only here for every role, superusers included: its
changes are actions with rules, reasons and a record, made through the services from the clinic
pages. History pages show old versions and never save one.
"""

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponseNotAllowed
from simple_history.admin import SimpleHistoryAdmin

from . import scoping

PRESCRIBER, NURSE, CLINIC_ADMIN = "prescriber", "nurse", "clinic_admin"
CLINICAL_WRITERS = frozenset({PRESCRIBER, NURSE})
PRESCRIBERS_ONLY = frozenset({PRESCRIBER})
READ_METHODS = ["GET", "HEAD"]  # all a history page answers


def clinic_roles(user) -> dict[int, set[str]]:
    """{clinic id: the user's active roles there}, read once per request."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, "_ldn_clinic_roles", None)
    if cached is None:
        cached = {}
        for clinic_id, role in user.memberships.filter(is_active=True).values_list("clinic_id", "role"):
            cached.setdefault(clinic_id, set()).add(role)
        user._ldn_clinic_roles = cached
    return cached


def user_roles(user) -> set[str]:
    """Every role the user holds in any clinic (what a page may offer; a write checks the row's clinic)."""
    return set().union(*clinic_roles(user).values())


def clinic_id_of(obj) -> int | None:
    """The clinic a row belongs to (a clinic is its own), or None for shared rows (protocols)."""
    if getattr(type(obj), "scope_clinic_path", "clinic") == "pk":
        return obj.pk
    clinic_id = getattr(obj, "clinic_id", None)
    if clinic_id is None and hasattr(obj, "owning_clinic_id"):
        clinic_id = obj.owning_clinic_id()  # a row not saved yet takes its patient's clinic
    return clinic_id


class RoleScopedMixin:
    """Role-based permissions, scoped querysets and scoped foreign-key choices."""

    write_roles: frozenset[str] = CLINICAL_WRITERS
    # Foreign keys whose choices are limited to what the user may see.
    scoped_foreign_keys: tuple[str, ...] = ("patient", "pharmacy", "plan", "checkin", "prescription", "clinic")

    def _is_member(self, request) -> bool:
        return request.user.is_superuser or bool(scoping.staff_clinic_ids(request.user))

    def _can_write(self, request, obj=None) -> bool:
        """Without a row: may the user write this kind of record in any clinic. With a row: in the row's
        own clinic (a prescriber in one clinic who is a nurse in another writes plans in the first only)."""
        if request.user.is_superuser:
            return True
        clinic_id = None if obj is None else clinic_id_of(obj)
        if clinic_id is None:
            return bool(user_roles(request.user) & self.write_roles)
        return bool(clinic_roles(request.user).get(clinic_id, set()) & self.write_roles)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and self._is_member(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args) -> bool:
        return self._can_write(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # archive instead: nothing clinical is hard-deleted through the app

    def get_queryset(self, request):
        return scoping.visible_to(request.user, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.scoped_foreign_keys:
            kwargs["queryset"] = scoping.visible_to(request.user, db_field.remote_field.model._default_manager.all())
        elif db_field.name in {"prescriber", "created_by"}:
            # Staff of the user's clinics; a prescriber field offers prescribers only.
            members = {
                "memberships__clinic_id__in": scoping.staff_clinic_ids(request.user),
                "memberships__is_active": True,
            }
            if db_field.name == "prescriber":
                members["memberships__role"] = PRESCRIBER
            kwargs["queryset"] = db_field.remote_field.model._default_manager.filter(**members).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ScopedInline(RoleScopedMixin, admin.TabularInline):
    extra = 0
    show_change_link = True


class DisplayOnlyFormSet(BaseInlineFormSet):
    """The rows of a read-only inline, as they are in the database. Whatever is posted for it (a row
    added, an id changed, a management form altered by hand) is ignored: never validated, never saved.
    Otherwise a tampered row is validated against a model whose fields the inline does not show."""

    def __init__(self, data=None, files=None, **kwargs):
        super().__init__(None, None, **kwargs)  # never bound to the request's data
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []

    def is_valid(self) -> bool:
        return True

    def has_changed(self) -> bool:
        return False

    def save(self, commit=True):
        return []


class ReadOnlyInline(ScopedInline):
    """An inline that shows rows and writes none."""

    formset = DisplayOnlyFormSet
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.action(description="Archive selected (soft delete; history is kept)")
def archive_selected(modeladmin, request, queryset):
    if not modeladmin._can_write(request):
        modeladmin.message_user(request, "Your role cannot archive these records.", messages.ERROR)
        return
    count, refused = 0, 0
    for obj in queryset:  # one by one so each archive is a history row with its user
        if not modeladmin._can_write(request, obj):  # the role must be held in this row's clinic
            refused += 1
            continue
        obj.delete()
        count += 1
    if refused:
        modeladmin.message_user(
            request, f"{refused} record(s) not archived: your role in their clinic cannot archive them.", messages.ERROR
        )
    modeladmin.message_user(request, f"Archived {count} record(s).", messages.SUCCESS if count else messages.WARNING)


class ScopedAdmin(RoleScopedMixin, SimpleHistoryAdmin):
    """Base for every clinic-data ModelAdmin."""

    actions = [archive_selected]
    list_per_page = 50

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location=action_location)
        if not hasattr(self.model, "deleted_at"):
            actions.pop("archive_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        # The add page offers the rows of every clinic the user belongs to; the role that may write must
        # be held in the clinic this row ends up in.
        if not self._can_write(request, obj):
            raise PermissionDenied("Your role in this record's clinic cannot save it.")
        super().save_model(request, obj, form, change)

    def _ensure_visible(self, request, object_id) -> None:
        # simple_history's history pages fall back to history rows for objects the queryset hides,
        # which would show another clinic's record; refuse anything scoping does not allow.
        try:
            visible = self.get_queryset(request).filter(pk=unquote(object_id)).exists()
        except (ValueError, ValidationError):  # a malformed id is a missing record, not a server error
            visible = False
        if not visible:
            raise Http404("No such record.")

    def history_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        if request.method not in READ_METHODS:
            return HttpResponseNotAllowed(READ_METHODS)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple_history saves a POST to this page as the old version, whatever SIMPLE_HISTORY_REVERT_DISABLED
        # says (a cancelled reminder pending again, an open conflict "resolved"): only reading is allowed.
        self._ensure_visible(request, object_id)
        if request.method not in READ_METHODS:
            return HttpResponseNotAllowed(READ_METHODS)
        # Shown as text, as a read-only change page is: no inputs that look editable.
        request._ldn_version_fields = flatten_fieldsets(
            self.get_fieldsets(request, self.get_object(request, object_id))
        )
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + [f for f in getattr(request, "_ldn_version_fields", ()) if f not in fields]

    def has_view_history_permission(self, request, obj=None) -> bool:
        return self.has_view_permission(request, obj)

    def has_change_history_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ScopedAdmin):
    """Clinical state, shown with its history and never written here, by any role (superusers too): no
    add, no change, no archive. Its changes are actions through the services, from the clinic pages."""

    actions = []

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        raise PermissionDenied("Clinical records are changed from the clinic pages, not the admin.")
