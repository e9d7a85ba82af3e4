"""Login, logout and the role matrix. The other areas have their own view modules."""

from django.contrib.auth import views as auth_views
from django.shortcuts import render

from ldnclinic.admin import clinic_roles
from patients.models import Clinic

from .access import ACTIONS, ROLE_NAMES, staff_view


class StaffLoginView(auth_views.LoginView):
    """Staff log in here and land on the worklist (django-axes counts failures, as on every login)."""

    template_name = "clinic/login.html"
    redirect_authenticated_user = False

    def get_default_redirect_url(self):
        from django.urls import reverse

        return reverse("clinic:worklist")


class StaffLogoutView(auth_views.LogoutView):
    next_page = "clinic:login"


@staff_view
def roles(request):
    names = {c.pk: c.name for c in Clinic.objects.filter(pk__in=clinic_roles(request.user))}
    mine = [
        (names.get(cid, cid), sorted(ROLE_NAMES[r] for r in roles)) for cid, roles in clinic_roles(request.user).items()
    ]
    order = list(ROLE_NAMES)
    matrix = [(words, [role in roles for role in order]) for roles, words in ACTIONS.values()]
    context = {"mine": mine, "role_names": [ROLE_NAMES[r] for r in order], "matrix": matrix, "nav": "roles"}
    return render(request, "clinic/roles.html", context)
