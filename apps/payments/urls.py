from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("", views.PaymentCollectionView.as_view(), name="collection"),
    path("<str:payment_id>/", views.PaymentDetailView.as_view(), name="detail"),
]
