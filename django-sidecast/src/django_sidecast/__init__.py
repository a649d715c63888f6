"""The Django side of sidecast."""

from .events import admin_event, event_for
from .publishing import InvalidEvent, PublishError, apublish, publish

__all__ = ["InvalidEvent", "PublishError", "admin_event", "apublish", "event_for", "publish"]
