"""URL configuration."""

from django.contrib import admin
from django.urls import path

from apps.delivery.console import dead_letter_detail, dead_letter_list, overview, retries
from config.api import api

urlpatterns = [
    path("admin/console/", overview, name="console"),
    path("admin/console/retries/", retries, name="console-retries"),
    path("admin/dead-letters/", dead_letter_list, name="dead-letters"),
    path("admin/dead-letters/<str:letter_id>/", dead_letter_detail, name="dead-letter"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]

# Errors: problem details under /api/ (apps/api/problems.py), Django's pages elsewhere.
handler400 = "apps.api.problems.bad_request"
handler403 = "apps.api.problems.permission_denied"
handler404 = "apps.api.problems.page_not_found"
handler500 = "apps.api.problems.server_error"
