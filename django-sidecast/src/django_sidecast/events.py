"""Events as sidecast forwards them: JSON objects with an integer content_type_id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Imported where used: `import django_sidecast` must work before the app registry is ready.
if TYPE_CHECKING:
    from django.contrib.admin.models import LogEntry
    from django.db.models import Model


def event_for(instance: Model, action: str, user: object | None = None) -> dict[str, Any]:
    """The event for `action` ("created", "updated", "deleted", or your own word) on `instance`.

    Users who may view or change the instance's model receive it. `user` is whoever acted, if
    anyone did; it is sent as text, as the admin events send it.
    """
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(instance)
    return {
        "model": content_type.name,
        "object": str(instance),
        "action": action,
        "user": None if user is None else str(user),
        "content_type_id": content_type.id,
        "object_id": None if instance.pk is None else str(instance.pk),
    }


def admin_event(entry: LogEntry) -> dict[str, Any]:
    """The websockets guide's event for an admin LogEntry, key for key."""
    return {
        "model": entry.content_type.name if entry.content_type else None,
        "object": entry.object_repr,
        "message": entry.get_change_message(),
        "timestamp": entry.action_time.isoformat(),
        "user": str(entry.user),
        "content_type_id": entry.content_type_id,
        # Django 5.1+ hands over the raw pk (an int, or a UUID that json cannot encode) until the
        # row is reloaded; the column holds text, so send text, as Django <= 5.0 also sent it.
        "object_id": None if entry.object_id is None else str(entry.object_id),
    }
