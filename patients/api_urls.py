from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("patients", api.PatientViewSet, basename="patient")

urlpatterns = router.urls
