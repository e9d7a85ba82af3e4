"""The application's routes plus the benchmark's baseline: a plain logged-in Django view that renders the
clinic's base template (session, user, one template), for bench_clinic_pages to measure beside."""

from django.shortcuts import render
from django.urls import include, path

from clinic.access import staff_view


@staff_view
def plain(request):
    return render(request, "clinic/refused.html", {"reason": "baseline"})


urlpatterns = [path("bench/plain/", plain, name="bench-plain"), path("", include("ldnclinic.urls"))]
