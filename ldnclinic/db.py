"""Abstract bases shared by every app's clinical models.

``ClinicOwned``: every row of patient data carries its clinic, and a row that belongs to a patient
always carries the patient's clinic (checked on save), so one filter on ``clinic`` scopes it.
``SoftDeletable``: nothing clinical is hard-deleted through the app; ``delete()`` marks the row.
"""

from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.utils import timezone


class SoftDeleteQuerySet(models.QuerySet):
    def delete(self):  # type: ignore[override]
        """Bulk delete through the app marks rows deleted; it never removes them.

        Row by row, not one UPDATE: each archive must leave a history row (who, when) like
        ``Model.delete()`` does, and an UPDATE sends no signals to django-simple-history.
        """
        count = 0
        with transaction.atomic(using=self.db):
            for obj in self.filter(deleted_at__isnull=True):
                obj.delete()
                count += 1
        return count, ({self.model._meta.label: count} if count else {})

    def alive(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)


class AliveManager(models.Manager.from_queryset(SoftDeleteQuerySet)):
    """Default manager: hides soft-deleted rows."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


AllObjectsManager = models.Manager.from_queryset(SoftDeleteQuerySet)


class SoftDeletable(models.Model):
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    objects = AliveManager()
    all_objects = AllObjectsManager()

    class Meta:
        abstract = True
        # Related lookups (patient.medications...) must not hide rows from history or admin checks;
        # the base manager sees everything, the default manager hides deleted rows.
        base_manager_name = "all_objects"

    def delete(self, using=None, keep_parents=False):  # type: ignore[override]
        if self.deleted_at is None:
            self.deleted_at = timezone.now()
            self.save(update_fields=["deleted_at"])
        return 1, {self._meta.label: 1}

    def restore(self) -> None:
        self.deleted_at = None
        self.save(update_fields=["deleted_at"])

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ConstraintErrorsBesideFields:
    """A violated constraint's message goes beside its field in a form, not above the form.

    Django puts a CheckConstraint's message at the top of a ModelForm. Here a check constraint on one
    field is shown beside that field, and ``constraint_fields`` names the field for any other constraint
    (``{"lab_reference_range_ordered": "ref_high"}``). Safe for any ModelForm: a constraint is only
    checked when none of its fields is excluded (not in the form, or already in error), so the field
    named is one the form shows, and a field already in error is not told twice.
    """

    constraint_fields: ClassVar[dict[str, str]] = {}

    def validate_constraints(self, exclude=None):
        # A form never has ``deleted_at`` (the app sets it), which made Django skip every "unique among
        # live rows" constraint in forms and the database refuse the save instead (a 500). The row's own
        # value is the right one to check with.
        exclude = set(exclude or ()) - {"deleted_at"}
        using = router.db_for_write(type(self), instance=self)
        errors: dict = {}
        for model_class, constraints in self.get_constraints():
            for constraint in constraints:
                try:
                    constraint.validate(model_class, self, exclude=exclude, using=using)
                except ValidationError as exc:
                    field = _constraint_field(model_class, constraint, exc)
                    if field and field not in exclude:
                        exc = ValidationError({field: exc})
                    errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)


def _constraint_field(model, constraint, exc: ValidationError) -> str | None:
    named = getattr(model, "constraint_fields", {}).get(constraint.name)
    if named:
        return named
    if getattr(exc, "code", None) == "unique" and len(getattr(constraint, "fields", ())) == 1:
        return constraint.fields[0]  # what Django itself does for a one-field unique constraint
    if isinstance(constraint, models.CheckConstraint):
        fields = getattr(constraint.condition, "referenced_base_fields", set())  # a Q; not an expression
        if len(fields) == 1:
            return next(iter(fields))
    return None


class ClinicOwned(ConstraintErrorsBesideFields, TimeStamped):
    """A row of clinic data. ``scope_patient_path`` names the lookup to the owning Patient
    (None when the row is clinic-level, e.g. a pharmacy), for ldnclinic.scoping."""

    clinic = models.ForeignKey("patients.Clinic", on_delete=models.PROTECT, related_name="+", editable=False)

    scope_patient_path: str | None = "patient"

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        expected = self.owning_clinic_id()
        if expected is not None:
            if self.clinic_id is None:
                self.clinic_id = expected
            elif self.clinic_id != expected:
                raise ValidationError("This record belongs to a different clinic than its patient.")
        if self.clinic_id is None:
            raise ValidationError("A clinic is required.")
        super().save(*args, **kwargs)

    def owning_clinic_id(self) -> int | None:
        """The clinic this row must belong to, derived from its parent (patient, plan...)."""
        path = self.scope_patient_path
        if not path:
            return None
        obj = self
        for part in path.split("__"):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj.clinic_id


def save_with_history(obj, actor, why: str, **kwargs) -> None:
    """Save a clinical row with who and why on its history row (django-simple-history's ``_history_user``
    and ``_change_reason``, which keeps 100 characters): the one way the services record a change."""
    obj._history_user = actor
    obj._change_reason = why[:100]
    obj.save(**kwargs)
