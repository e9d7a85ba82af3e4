from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", views.index, name="index"),
    path("summary/", views.summary_page, name="summary"),
    path("<slug:key>.csv", views.export_csv, name="export"),
]
