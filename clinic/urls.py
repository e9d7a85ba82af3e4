"""The clinic pages, under /clinic/. Each area keeps its routes, and who may open each one, in its own
module: ``urlpatterns`` and ``ACCESS`` ({route name: "staff" | "staff_object" | "staff_post"}), which
tests/test_routes.py reads so that no route is added without that decision."""

from django.urls import path

from . import chart_urls, record_urls, titration_urls, views, worklist_urls

app_name = "clinic"

urlpatterns = [
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path("logout/", views.StaffLogoutView.as_view(), name="logout"),
    path("roles/", views.roles, name="roles"),
    *worklist_urls.urlpatterns,
    *chart_urls.urlpatterns,
    *record_urls.urlpatterns,
    *titration_urls.urlpatterns,
]

# public: anyone may open it. staff: a page of the clinic's own (200 for its staff). staff_object: a page
# about one record, by id (200 or 404 for a sample id). staff_post: an action, POST only (405 to a GET).
ACCESS = {
    "login": "public",
    "logout": "public",  # POST only
    "roles": "staff",
    **worklist_urls.ACCESS,
    **chart_urls.ACCESS,
    **record_urls.ACCESS,
    **titration_urls.ACCESS,
}
