"""The SIDECAST setting: one dict, read through sidecast_settings() with the defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Bus = Literal["redis", "redis-streams"]
OnError = Literal["raise", "log"]

BUSES: tuple[Bus, ...] = ("redis", "redis-streams")
ON_ERROR: tuple[OnError, ...] = ("raise", "log")

# The defaults match sidecast serve's own, so a project that changes nothing talks to a sidecast
# started with no options.
DEFAULTS: dict[str, Any] = {
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "BUS": "redis",
    "CHANNEL": "events",
    "STREAM": "events",
    "HISTORY_MAX_ENTRIES": 10000,
    "CONTROL_CHANNEL": "sidecast:control",
    "PERMISSION_EVENTS": True,
    "ADMIN_EVENTS": False,
    "MODELS": [],
    "URL": "ws://127.0.0.1:8888/",
    "PROTOCOL": "guide",
    "SCOPE": "",
    "ALLOWED_ORIGINS": None,
    "PUBLISH_ON_ERROR": "raise",
    "MAX_EVENT_BYTES": 1048576,
    "DATABASE": "default",
}


@dataclass(frozen=True)
class SidecastSettings:
    redis_url: str
    bus: Bus
    channel: str
    stream: str
    history_max_entries: int
    control_channel: str
    permission_events: bool
    admin_events: bool
    models: tuple[str, ...]
    url: str
    protocol: str
    scope: str
    allowed_origins: tuple[str, ...] | None
    publish_on_error: OnError
    max_event_bytes: int
    database: str


def settings_problems(raw: object) -> list[str]:
    """What is wrong with a SIDECAST value, one sentence each (the system checks report them)."""
    if not isinstance(raw, dict):
        return [f"SIDECAST must be a dict, not {type(raw).__name__}"]
    problems = [
        f'SIDECAST["{key}"] is not a sidecast setting (known: {", ".join(DEFAULTS)})'
        for key in raw
        if key not in DEFAULTS
    ]
    merged = {**DEFAULTS, **raw}
    if merged["BUS"] not in BUSES:
        problems.append(f'SIDECAST["BUS"] must be one of {", ".join(BUSES)}, not {merged["BUS"]!r}')
    if merged["PUBLISH_ON_ERROR"] not in ON_ERROR:
        value = merged["PUBLISH_ON_ERROR"]
        problems.append(f'SIDECAST["PUBLISH_ON_ERROR"] must be "raise" or "log", not {value!r}')
    if merged["PROTOCOL"] not in ("guide", "v1"):
        problems.append(f'SIDECAST["PROTOCOL"] must be "guide" or "v1", not {merged["PROTOCOL"]!r}')
    for key in ("REDIS_URL", "CHANNEL", "STREAM", "CONTROL_CHANNEL", "URL", "DATABASE"):
        if not isinstance(merged[key], str) or merged[key] == "":
            problems.append(f'SIDECAST["{key}"] must be a non-empty string')
    for key in ("HISTORY_MAX_ENTRIES", "MAX_EVENT_BYTES"):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f'SIDECAST["{key}"] must be a positive integer')
    origins = merged["ALLOWED_ORIGINS"]
    if origins is not None and (
        isinstance(origins, str)
        or not all(isinstance(origin, str) and origin for origin in origins)
    ):
        problems.append(
            'SIDECAST["ALLOWED_ORIGINS"] must be a list of origins such as "https://example.com"'
        )
    models = merged["MODELS"]
    if isinstance(models, str) or not all(
        isinstance(label, str) and label.count(".") == 1 for label in models
    ):
        problems.append('SIDECAST["MODELS"] must be a list of "app_label.ModelName"')
    return problems


def sidecast_settings() -> SidecastSettings:
    """The SIDECAST setting with its defaults; ImproperlyConfigured names every problem."""
    raw = getattr(settings, "SIDECAST", {})
    problems = settings_problems(raw)
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
    merged = {**DEFAULTS, **raw}
    origins = merged["ALLOWED_ORIGINS"]
    return SidecastSettings(
        redis_url=merged["REDIS_URL"],
        bus=merged["BUS"],
        channel=merged["CHANNEL"],
        stream=merged["STREAM"],
        history_max_entries=merged["HISTORY_MAX_ENTRIES"],
        control_channel=merged["CONTROL_CHANNEL"],
        permission_events=bool(merged["PERMISSION_EVENTS"]),
        admin_events=bool(merged["ADMIN_EVENTS"]),
        models=tuple(merged["MODELS"]),
        url=merged["URL"],
        protocol=merged["PROTOCOL"],
        scope=merged["SCOPE"],
        allowed_origins=None if origins is None else tuple(origins),
        publish_on_error=merged["PUBLISH_ON_ERROR"],
        max_event_bytes=merged["MAX_EVENT_BYTES"],
        database=merged["DATABASE"],
    )
