"""Publish every admin action on the Redis event bus.

The admin records each add, change and delete as a LogEntry. Saving one
triggers this receiver, which sends a JSON description of the action to the
pub/sub channel that sidecast listens to. sidecast forwards the payload
unchanged to the users allowed to view or change that content type.
"""
import json

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_redis import get_redis_connection


@receiver(post_save, sender=LogEntry)
def publish_admin_action(sender, instance, **kwargs):
    entry = instance  # the LogEntry that was just saved
    event = {
        "model": entry.content_type.name,
        "object": entry.object_repr,
        "message": entry.get_change_message(),
        "timestamp": entry.action_time.isoformat(),
        "user": str(entry.user),
        "content_type_id": entry.content_type_id,
        # Django 5.1+ hands over the raw pk (an int, or a UUID that json cannot
        # encode) until the row is reloaded; the column holds text, so send text,
        # as every Django version stores it and as Django <= 5.0 also sent it.
        "object_id": None if entry.object_id is None else str(entry.object_id),
    }
    redis = get_redis_connection("default")
    redis.publish(settings.SIDECAST_CHANNEL, json.dumps(event))
