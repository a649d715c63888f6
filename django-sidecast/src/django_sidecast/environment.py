"""The environment sidecast serve needs, derived from the Django settings (sidecast_env)."""

from __future__ import annotations

import datetime
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from .conf import sidecast_settings

SCHEMES = {
    "django.db.backends.postgresql": ("postgres", 5432),
    "django.db.backends.postgresql_psycopg2": ("postgres", 5432),
    "django.db.backends.mysql": ("mysql", 3306),
    "django.db.backends.sqlite3": ("sqlite", None),
}

# The SESAME_* settings sidecast reads, with django-sesame's defaults.
SESAME_DEFAULTS: dict[str, Any] = {
    "SESAME_MAX_AGE": None,
    "SESAME_KEY": "",
    "SESAME_SIGNATURE_SIZE": 10,
    "SESAME_ONE_TIME": False,
    "SESAME_INVALIDATE_ON_PASSWORD_CHANGE": True,
    "SESAME_INVALIDATE_ON_EMAIL_CHANGE": False,
    "SESAME_PRIMARY_KEY_FIELD": "pk",
    "SESAME_PACKER": None,
}


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    secret: bool = False


def database_url(alias: str) -> tuple[str, bool]:
    """sidecast's --django-db URL for DATABASES[alias], and whether it holds a password."""
    db = connections.databases[alias]
    engine = db.get("ENGINE", "")
    if engine not in SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] uses {engine!r}: sidecast reads PostgreSQL, MySQL/MariaDB or"
            " SQLite"
        )
    scheme, default_port = SCHEMES[engine]
    if scheme == "sqlite":
        return f"sqlite:///{Path(str(db['NAME'])).resolve().as_posix().lstrip('/')}", False
    user = quote(str(db.get("USER") or ""), safe="")
    password = str(db.get("PASSWORD") or "")
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    # An empty HOST is a local socket to Django; sidecast connects over TCP.
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or default_port
    at = f"{credentials}@" if credentials else ""
    return f"{scheme}://{at}{host}:{port}/{quote(str(db['NAME']), safe='')}", bool(password)


def _setting_text(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
        return str(int(seconds)) if seconds.is_integer() else str(seconds)
    return str(value)


def _redis_has_password(url: str) -> bool:
    return urlsplit(url).password is not None


def sidecast_environment() -> list[Variable]:
    config = sidecast_settings()
    db_url, db_secret = database_url(config.database)
    user_model = get_user_model()
    variables = [
        Variable("DJANGO_SECRET_KEY", str(settings.SECRET_KEY), secret=True),
        Variable(
            "DJANGO_SECRET_KEY_FALLBACKS",
            json.dumps([str(key) for key in getattr(settings, "SECRET_KEY_FALLBACKS", [])]),
            secret=True,
        ),
        Variable("SIDECAST_DJANGO_DB", db_url, secret=db_secret),
        Variable("AUTH_USER_MODEL", settings.AUTH_USER_MODEL),
        Variable("AUTH_USER_DB_TABLE", user_model._meta.db_table),
        Variable("USERNAME_FIELD", user_model.USERNAME_FIELD),
        Variable("EMAIL_FIELD", user_model.get_email_field_name()),
        Variable("USE_TZ", _setting_text(settings.USE_TZ)),
        Variable("TIME_ZONE", str(settings.TIME_ZONE or "UTC")),
    ]
    for name, default in SESAME_DEFAULTS.items():
        value = getattr(settings, name, default)
        if name == "SESAME_PACKER" and value is None:
            continue  # sidecast picks the packer from the field type, as django-sesame does
        variables.append(Variable(name, _setting_text(value), secret=name == "SESAME_KEY"))
    variables += [
        Variable("SIDECAST_BUS", config.bus),
        Variable("SIDECAST_REDIS", config.redis_url, secret=_redis_has_password(config.redis_url)),
        Variable("SIDECAST_CHANNEL", config.channel),
        Variable("SIDECAST_STREAM", config.stream),
        Variable("SIDECAST_HISTORY_MAX_ENTRIES", str(config.history_max_entries)),
        Variable("SIDECAST_CONTROL_CHANNEL", config.control_channel),
        Variable("SIDECAST_SCOPE", config.scope),
        Variable("SIDECAST_MAX_EVENT_BYTES", str(config.max_event_bytes)),
    ]
    if config.allowed_origins is not None:
        variables.append(Variable("SIDECAST_ALLOWED_ORIGINS", ",".join(config.allowed_origins)))
    return variables


def env_file_text(variables: list[Variable], *, show_secrets: bool) -> str:
    """NAME=value lines, quoted for a shell (`set -a; . ./sidecast.env`) and systemd alike."""
    lines = []
    for variable in variables:
        if variable.secret and not show_secrets:
            lines.append(f"# {variable.name} is a secret: --show-secrets prints it")
        else:
            lines.append(f"{variable.name}={shlex.quote(variable.value)}")
    return "\n".join(lines) + "\n"
