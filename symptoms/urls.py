from django.contrib.auth import views as auth_views
from django.urls import path

from . import account_views, preference_views, views

urlpatterns = [
    path("c/<str:token>/", views.checkin_by_link, name="checkin-link"),
    path("me/", views.portal_home, name="portal-home"),
    path("me/checkin/", views.portal_checkin, name="checkin-start"),
    path("me/thanks/", views.portal_thanks, name="portal-thanks"),
    path("me/calendar.ics", views.portal_calendar, name="portal-calendar"),
    path("me/reminders/", preference_views.portal_reminders, name="portal-reminders"),
    path(
        "me/login/",
        auth_views.LoginView.as_view(template_name="symptoms/login.html", redirect_authenticated_user=True),
        name="portal-login",
    ),
    path("me/logout/", auth_views.LogoutView.as_view(next_page="portal-login"), name="portal-logout"),
    # The patient's account (symptoms.account_views): passwords and the calendar subscription.
    path("me/password/reset/", account_views.PasswordResetView.as_view(), name="portal-password-reset"),
    path("me/password/reset/sent/", account_views.PasswordResetDoneView.as_view(), name="portal-password-reset-done"),
    path(
        "me/password/set/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="portal-password-reset-confirm",
    ),
    path(
        "me/password/set/done/",
        account_views.PasswordResetCompleteView.as_view(),
        name="portal-password-reset-complete",
    ),
    path("me/password/change/", account_views.PasswordChangeView.as_view(), name="portal-password-change"),
    path(
        "me/password/change/done/",
        account_views.PasswordChangeDoneView.as_view(),
        name="portal-password-change-done",
    ),
    path("me/calendar/link/", account_views.calendar_link, name="portal-calendar-link"),
    path("me/calendar/stop/", account_views.calendar_stop, name="portal-calendar-stop"),
    path("me/calendar/<str:token>.ics", account_views.calendar_feed, name="portal-calendar-feed"),
]
