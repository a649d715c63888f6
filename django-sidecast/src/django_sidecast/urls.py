from django.urls import path

from . import views

app_name = "sidecast"

urlpatterns = [
    path("token/", views.token, name="token"),
]
