from django.urls import path

from . import sidecast_proxy, views

app_name = "live"

urlpatterns = [
    path("", views.index, name="index"),
    path("session/", views.session, name="session"),
    # sidecast --auth-url and --permissions-url.
    path("sidecast/auth/", sidecast_proxy.authenticate_client, name="sidecast-auth"),
    path("sidecast/permissions/", sidecast_proxy.permissions, name="sidecast-permissions"),
]
