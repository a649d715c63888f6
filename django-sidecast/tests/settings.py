"""Settings of the package's test project; conftest.py picks the database and the names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SECRET_KEY = os.environ.get("SIDECAST_TEST_SECRET_KEY", "django-sidecast-tests")
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sidecast",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"


def _database(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path}
    if parts.scheme == "mysql":
        # PyMySQL stands in for mysqlclient, which needs a compiler and the client headers.
        import pymysql

        pymysql.install_as_MySQLdb()
    engine = "mysql" if parts.scheme == "mysql" else "postgresql"
    return {
        "ENGINE": f"django.db.backends.{engine}",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "HOST": parts.hostname or "",
        "PORT": parts.port or "",
    }


# conftest.py sets both; the defaults only serve tools that import the settings (mypy's plugin).
DATABASE_URL = os.environ.get("SIDECAST_TEST_DATABASE_URL", "sqlite:///unused.sqlite3")
CHANNEL = os.environ.get("SIDECAST_TEST_CHANNEL", "sidecast-pytest")
DATABASES = {"default": _database(DATABASE_URL)}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sesame.backends.ModelBackend",
]
SESAME_MAX_AGE = 30

SIDECAST = {
    "REDIS_URL": os.environ.get("SIDECAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/1"),
    "CHANNEL": CHANNEL,
    "STREAM": CHANNEL,
    "CONTROL_CHANNEL": f"{CHANNEL}:control",
    "ALLOWED_ORIGINS": ["http://127.0.0.1:*"],
}
