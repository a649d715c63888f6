from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"
    verbose_name = "Live notifications"

    def ready(self):
        # Connecting the receiver is a side effect of importing the module.
        from . import signals  # noqa: F401
