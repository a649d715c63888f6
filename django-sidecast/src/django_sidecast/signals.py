"""Opt-in publishing: the admin's LogEntry events and save/delete events of chosen models."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from .events import admin_event, event_for
from .publishing import publish


def publish_admin_action(sender: type[LogEntry], instance: LogEntry, **kwargs: Any) -> None:
    # The guide publishes as the LogEntry is saved; after the commit is the same moment for the
    # admin's own requests (ATOMIC views aside) and keeps rolled-back actions quiet.
    publish(admin_event(instance))


def publish_saved(sender: type[Model], instance: Model, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return  # loaddata: fixtures are not news
    publish(event_for(instance, "created" if created else "updated"))


def publish_deleted(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    publish(event_for(instance, "deleted"))


def connect_admin_events() -> None:
    post_save.connect(publish_admin_action, sender=LogEntry, dispatch_uid="sidecast-admin")


def connect_model_events(labels: tuple[str, ...]) -> None:
    for label in labels:
        model = apps.get_model(label)
        post_save.connect(publish_saved, sender=model, dispatch_uid=f"sidecast-save-{label}")
        post_delete.connect(publish_deleted, sender=model, dispatch_uid=f"sidecast-delete-{label}")
