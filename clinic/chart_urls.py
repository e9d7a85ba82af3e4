"""Routes of the clinic pages' chart area (see clinic/urls.py for ACCESS)."""

ACCESS: dict[str, str] = {}
urlpatterns: list = []
