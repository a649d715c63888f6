from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="live:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("live/", include("live.urls")),
    # The token view of the browser client (GET /sidecast/token/).
    path("sidecast/", include("django_sidecast.urls")),
]
