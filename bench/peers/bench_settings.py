"""Django settings for the benchmark's Python peer: only what the guide's server needs.

The guide suggests a trimmed project with django.contrib.auth, django-sesame and the user model
when the websockets server should not import the whole site; this is that project. Every value
that points at a service comes from the environment, so the benchmark can aim it at the
database it creates for one run.
"""

import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["BENCH_DB_NAME"],
        "USER": os.environ.get("BENCH_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("BENCH_DB_PASSWORD", ""),
        "HOST": os.environ.get("BENCH_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_DB_PORT", "5432"),
    }
}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sesame.backends.ModelBackend",
]

SESAME_MAX_AGE = int(os.environ.get("SESAME_MAX_AGE", "30"))

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
