from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("c/<str:token>/", views.checkin_by_link, name="checkin-link"),
    path("me/", views.portal_home, name="portal-home"),
    path("me/checkin/", views.portal_checkin, name="checkin-start"),
    path("me/thanks/", views.portal_thanks, name="portal-thanks"),
    path("me/calendar.ics", views.portal_calendar, name="portal-calendar"),
    path(
        "me/login/",
        auth_views.LoginView.as_view(template_name="symptoms/login.html", redirect_authenticated_user=True),
        name="portal-login",
    ),
    path("me/logout/", auth_views.LogoutView.as_view(next_page="portal-login"), name="portal-logout"),
]
