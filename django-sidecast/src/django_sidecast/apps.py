from __future__ import annotations

from django.apps import AppConfig


class SidecastConfig(AppConfig):
    name = "django_sidecast"
    label = "sidecast"
    verbose_name = "sidecast"

    def ready(self) -> None:
        from django.conf import settings

        from . import checks  # noqa: F401  (registers the system checks)
        from .conf import settings_problems, sidecast_settings
        from .permissions import connect_permission_events
        from .signals import connect_admin_events, connect_model_events

        if settings_problems(getattr(settings, "SIDECAST", {})):
            return  # the system checks name the problems; start-up is not the place to crash
        config = sidecast_settings()
        if config.permission_events:
            connect_permission_events()
        if config.admin_events:
            connect_admin_events()
        connect_model_events(config.models)
