from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views
from .lockout import LockedTokenView

admin.site.site_header = "ldnclinic"
admin.site.site_title = "ldnclinic"
admin.site.index_title = "Clinic record"

api_v1 = [
    # Exchange a username and password for an API token (DRF's own view; a locked login gets 429).
    path("auth/token/", LockedTokenView.as_view(), name="token"),
    path("", include("patients.api_urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("symptoms.urls")),
    path("reports/", include("reports.urls")),
    path("clinic/", include("clinic.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
