"""Who may open the clinic pages, and what each role may do there.

Every clinic view is wrapped in ``staff_view``: an anonymous visitor goes to the staff login, and a
login that is no clinic's active staff member (a patient login, a deactivated membership) is sent
there too. Objects are always fetched through ``ldnclinic.scoping.visible_to`` (404 otherwise), never
by an id filtered by hand.

The role matrix lives here, once: ``ACTIONS`` says which roles may take each action, the pages show
only the actions the user's role in *that patient's clinic* allows, and ``require`` refuses the rest
with a plain page that says why (the services refuse them again: a page is never the only check).
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from ldnclinic import scoping
from ldnclinic.admin import clinic_roles

PRESCRIBER, NURSE, CLINIC_ADMIN = "prescriber", "nurse", "clinic_admin"
ROLE_NAMES = {PRESCRIBER: "prescriber", NURSE: "nurse", CLINIC_ADMIN: "clinic admin"}
CLINICAL = frozenset({PRESCRIBER, NURSE})
PRESCRIBERS = frozenset({PRESCRIBER})
EVERYONE = frozenset({PRESCRIBER, NURSE, CLINIC_ADMIN})

# action -> (roles that may take it, what the action is, in words a refusal can use)
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "view": (EVERYONE, "see the clinic's patients"),
    "patient_edit": (CLINICAL, "add or change a patient's details, conditions and medications"),
    "patient_status": (CLINICAL, "change a patient's status"),
    "reminder_preferences": (CLINICAL, "change a patient's reminder preferences"),
    "lab_add": (CLINICAL, "record a lab result"),
    "prescribe": (PRESCRIBERS, "write, activate, complete or cancel a prescription"),
    "plan": (PRESCRIBERS, "create, start, complete or discontinue a titration plan"),
    "step_up": (PRESCRIBERS, "step up the dose or set a custom dose"),
    "hold": (PRESCRIBERS, "hold, resume, step back or skip a step"),
    "override": (PRESCRIBERS, "override a safety block"),
    "flag_acknowledge": (CLINICAL, "acknowledge a flag (an opioid conflict: prescribers only)"),
    "flag_conflict": (PRESCRIBERS, "acknowledge, override or resolve an opioid conflict"),
    "task_close": (CLINICAL, "close a task (a liver review: prescribers only)"),
    "task_assign": (CLINICAL, "take on a task or hand it back"),
    "side_effects_review": (CLINICAL, "mark a patient's side effects reviewed"),
    "liver_review_close": (PRESCRIBERS, "close a liver review, which lifts a step-up block (LAB-2)"),
    "reports": (EVERYONE, "see the clinic's reports"),
}


class Refused(PermissionDenied):
    """A role that may not take an action; the message says which role may."""


def roles_in(user, clinic_id: int) -> set[str]:
    if user.is_superuser:
        return set(EVERYONE)
    return set(clinic_roles(user).get(clinic_id, set()))


def can(user, clinic_id: int, action: str) -> bool:
    return bool(roles_in(user, clinic_id) & ACTIONS[action][0])


def allowed_actions(user, clinic_id: int) -> dict[str, bool]:
    """For templates: {action: may the user take it in this clinic}."""
    return {action: can(user, clinic_id, action) for action in ACTIONS}


def why_not(action: str) -> str:
    roles, words = ACTIONS[action]
    who = " or ".join(ROLE_NAMES[r] for r in sorted(roles))
    return f"Only a {who} of the patient's clinic can {words}."


def require(user, clinic_id: int, action: str) -> None:
    if not can(user, clinic_id, action):
        raise Refused(why_not(action))


def is_clinic_staff(user) -> bool:
    return user.is_authenticated and user.is_active and (user.is_superuser or bool(scoping.staff_clinic_ids(user)))


def staff_view(view):
    """Clinic staff only; a refusal (``Refused``/``PermissionDenied``) becomes the plain refusal page."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_clinic_staff(request.user):
            return redirect_to_login(request.get_full_path(), "clinic:login")
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            return refused(request, str(exc) or "Your role cannot do this.")

    return wrapped


def refused(request, reason: str, status: int = 403):
    return render(request, "clinic/refused.html", {"reason": reason}, status=status)


def visible_or_404(user, queryset, **lookup):
    """One object the user may see, or 404: the only way a clinic view loads a record."""
    return get_object_or_404(scoping.visible_to(user, queryset), **lookup)
