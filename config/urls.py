"""URL configuration."""

from django.contrib import admin
from django.urls import include, path

from apps.delivery.views import dead_letter_list

urlpatterns = [
    path("admin/dead-letters/", dead_letter_list, name="dead-letters"),
    path("admin/", admin.site.urls),
    path("api/payments/", include("apps.payments.urls")),
]
