"""Routes of the clinic pages' titration area (see clinic/urls.py for ACCESS)."""

ACCESS: dict[str, str] = {}
urlpatterns: list = []
