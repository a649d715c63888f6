"""System checks: what makes every sidecast connection fail, found before the first one does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import settings_problems

SESAME_BACKEND = "sesame.backends.ModelBackend"


@register(Tags.security)
def check_settings(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if SESAME_BACKEND not in getattr(settings, "AUTHENTICATION_BACKENDS", []):
        messages.append(
            Error(
                f"{SESAME_BACKEND} is not in AUTHENTICATION_BACKENDS.",
                hint=f'Add "{SESAME_BACKEND}" after Django\'s ModelBackend.',
                id="sidecast.E001",
            )
        )
    if not hasattr(settings, "SESAME_MAX_AGE"):
        messages.append(
            Error(
                "SESAME_MAX_AGE is not set: tokens rendered into pages would never expire.",
                hint="Set SESAME_MAX_AGE = 30 (seconds): a token only has to open a connection.",
                id="sidecast.E002",
            )
        )
    if not hasattr(settings, "SIDECAST"):
        messages.append(
            Error(
                "SIDECAST is not set: which Redis and channel sidecast reads is a guess.",
                hint='Set SIDECAST = {"REDIS_URL": ..., "BUS": "redis", "CHANNEL": "events"}.',
                id="sidecast.E003",
            )
        )
    else:
        for problem in settings_problems(settings.SIDECAST):
            messages.append(Error(problem, id="sidecast.E004"))
    return messages


@register(Tags.security, deploy=True)
def check_deploy(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "SIDECAST", {})
    if isinstance(raw, dict) and raw.get("ALLOWED_ORIGINS"):
        return []
    return [
        Warning(
            'SIDECAST["ALLOWED_ORIGINS"] is not set: sidecast falls back to its development'
            " default (localhost only), or is given an origin list nobody checks.",
            hint='List the origins of your pages, e.g. ["https://example.com"]; sidecast_env'
            " passes them to sidecast as SIDECAST_ALLOWED_ORIGINS.",
            id="sidecast.W010",
        )
    ]
