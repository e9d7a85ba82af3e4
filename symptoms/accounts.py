"""Patient logins for the portal at /me/: invitations from the clinic and who may reset a password.

A prescriber or nurse of the patient's clinic invites the patient from the admin. The invitation
creates the patient's login (email as username when it is free; no password until the patient sets
one; never staff) and emails a single-use link to set a password, built with Django's password-reset
tokens: the link stops working once a password is set, when the patient logs in, when a newer
invitation is sent to a patient who has not set a password yet, or after PASSWORD_RESET_TIMEOUT.

Who invited whom and when is kept in the patient's history (django-simple-history: a history row
with the inviter as ``history_user`` and the reason "Invited to the patient portal"), and logged.

The patient pages' password reset only ever reaches the logins this module calls patient logins
(``patient_logins``): a staff login, a superuser, or a login whose patient is archived is never
emailed through it.
"""

import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from ldnclinic import throttle
from patients.models import Membership, Patient, Role, User

logger = logging.getLogger(__name__)

INVITERS = frozenset({Role.PRESCRIBER, Role.NURSE})
INVITED = "Invited to the patient portal"
REINVITED = "Sent a new patient portal invitation"


class InviteRefused(Exception):
    """The invitation cannot be sent; the message says why, for the clinician."""


@dataclass
class Invitation:
    patient: Patient
    user: User
    created: bool
    sent: bool | None = None  # None until the email has been handed to the mailer after commit


def patient_logins() -> QuerySet:
    """Logins that belong to a patient of the portal: active, linked to a patient who is not
    archived, and never staff (no staff flags, no clinic membership)."""
    return User.objects.filter(
        is_active=True,
        is_staff=False,
        is_superuser=False,
        memberships__isnull=True,
        patient_profile__isnull=False,
        patient_profile__deleted_at__isnull=True,
    )


def may_invite(actor, patient: Patient) -> bool:
    if not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return False
    if actor.is_superuser:
        return True
    return Membership.objects.filter(
        user=actor, clinic_id=patient.clinic_id, is_active=True, role__in=INVITERS
    ).exists()


def set_password_link(user: User) -> str:
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("portal-password-reset-confirm", kwargs={"uidb64": uidb64, "token": token})
    return f"{settings.SITE_URL}{path}"


def _free_username(email: str) -> str:
    """The patient's email when it is free as a username (so "username or email" both work), else a
    generated one; the invitation email names it either way."""
    candidate = email.lower()
    try:
        UnicodeUsernameValidator()(candidate)
        valid = len(candidate) <= User._meta.get_field("username").max_length
    except ValidationError:
        valid = False
    if valid and not User.objects.filter(username__iexact=candidate).exists():
        return candidate
    while True:
        candidate = f"patient-{secrets.token_hex(4)}"
        if not User.objects.filter(username=candidate).exists():
            return candidate


def _new_login(email: str) -> User:
    user = User(username=_free_username(email), email=email)
    user.set_unusable_password()
    try:
        with transaction.atomic():  # a savepoint: another invitation may have just taken the name
            user.save()
    except IntegrityError:
        user.username = f"patient-{secrets.token_hex(6)}"
        user.save()
    return user


def _send_invitation(invitation: Invitation) -> None:
    user, patient = invitation.user, invitation.patient
    context = {
        "first_name": patient.first_name,
        "clinic": patient.clinic.name,
        "username": user.get_username(),
        "link": set_password_link(user),
        "login_url": f"{settings.SITE_URL}{reverse('portal-login')}",
        "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
        "again": not invitation.created,
    }
    subject = "".join(render_to_string("symptoms/email/invitation_subject.txt", context).splitlines())
    body = render_to_string("symptoms/email/invitation.txt", context)
    message = EmailMessage(subject=subject, body=body, to=[user.email], headers={"Auto-Submitted": "auto-generated"})
    try:
        message.send(fail_silently=False)
    except Exception:  # the mail server is down or refused it: say so to the clinician, keep the login
        logger.exception("Portal invitation email for patient %s (login %s) was not sent", patient.pk, user.pk)
        invitation.sent = False
    else:
        invitation.sent = True


def patient_account_invite(*, actor, patient: Patient) -> Invitation:
    """Create the patient's portal login, or reuse it, and email a link to set a password (after commit).

    Raises PermissionDenied unless ``actor`` is a prescriber or nurse of the patient's clinic (or the
    platform operator), and InviteRefused when the patient cannot be invited (no email address,
    archived, the linked login is turned off or is a staff login). Nothing changes when it raises.
    """
    if not may_invite(actor, patient):
        raise PermissionDenied("Only a prescriber or nurse of the patient's clinic can invite them.")
    with transaction.atomic():
        # Lock the patient: two clicks at once must not create two logins for one patient.
        patient = Patient.all_objects.select_for_update().select_related("clinic").get(pk=patient.pk)
        if patient.deleted_at is not None:
            raise InviteRefused(f"{patient} is archived and cannot be invited to the patient portal.")
        email = patient.email.strip()
        if not email:
            raise InviteRefused(
                f"{patient} has no email address. Add one under Contact, save, then send the invitation."
            )
        sent = throttle.hit("portal-invite", str(patient.pk), limit=settings.PORTAL_INVITES_PER_HOUR, seconds=3600)
        if not sent.allowed:  # a button pressed again and again must not flood the patient's inbox
            minutes = sent.retry_minutes
            raise InviteRefused(
                f"{patient} has been sent {settings.PORTAL_INVITES_PER_HOUR} invitations in the last hour. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}; the latest link still works."
            )
        user = patient.user
        created = user is None
        if created:
            user = _new_login(email)
            patient.user = user
        else:
            if user.is_staff or user.is_superuser or user.memberships.exists():
                raise InviteRefused(f"{patient}'s login is a staff login; ask the platform operator to fix it.")
            if not user.is_active:
                raise InviteRefused(f"{patient}'s portal login is turned off; the platform operator can turn it on.")
            fields = []
            if user.email != email:  # the record's address is the one the link goes to
                user.email = email
                fields.append("email")
            if not user.has_usable_password():
                user.set_unusable_password()  # a fresh marker: an older invitation's link stops working
                fields.append("password")
            if fields:
                user.save(update_fields=fields)
        # The history row says who invited the patient and when, also when nothing else changed.
        patient._history_user = actor
        patient._change_reason = INVITED if created else REINVITED
        patient.save(update_fields=["user", "updated_at"])
        invitation = Invitation(patient=patient, user=user, created=created)
        logger.info(
            "Patient %s %s by user %s (login %s)",
            patient.pk,
            "invited to the portal" if created else "sent a new portal invitation",
            actor.pk,
            user.pk,
        )
        transaction.on_commit(lambda: _send_invitation(invitation))
    return invitation
