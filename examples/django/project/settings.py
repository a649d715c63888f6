"""Settings of the sidecast example project.

Everything that differs between a laptop, CI and a test run comes from the
environment, so one checkout can serve many throw-away sites at once. The
variables that sidecast must share with Django (DJANGO_SECRET_KEY,
AUTH_USER_MODEL, USE_TZ, SESAME_*) use the names sidecast reads, so the same
environment can be exported to both processes. See README.md for the list.
"""
import json
import os
from pathlib import Path

from .database_url import parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off", "none"}


def env_bool(name, default):
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ValueError(f"{name}: expected True or False, got {raw!r}")


def env_list(name, default):
    """A comma-separated list, or a JSON list when the value starts with '['."""
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return list(default)
    if raw.startswith("["):
        return json.loads(raw)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_seconds(name, default):
    """Seconds as int or float, or None when the value is 'None'."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    raw = raw.strip()
    if raw.lower() == "none":
        return None
    return int(raw) if raw.lstrip("-").isdigit() else float(raw)


# Core ------------------------------------------------------------------------

# The development default only exists so `manage.py runserver` works out of the
# box; sidecast must be given the very same value to validate tokens.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-sidecast-example-change-me"
)
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])

DEBUG = env_bool("DJANGO_DEBUG", True)

# "testserver" is the host name of django.test.Client, which the test harness
# uses to drive the admin.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

AUTH_USER_MODEL = os.environ.get("AUTH_USER_MODEL", "auth.User")

# The two custom user apps only exist in the project that selects them, as a
# real project has exactly one user model.
OPTIONAL_USER_APPS = {"accounts_uuid", "accounts_big"}
USER_APP = AUTH_USER_MODEL.split(".")[0]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "catalog",
    "live",
    "django_sidecast",
]
if USER_APP in OPTIONAL_USER_APPS:
    INSTALLED_APPS.append(USER_APP)

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Events are translated into the language of the admin request that made them.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"

LOGIN_URL = "admin:login"

# Database ----------------------------------------------------------------------

DATABASE_URL = os.environ.get(
    "SIDECAST_DJANGO_DB", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
)
DATABASES = {"default": parse_database_url(DATABASE_URL)}

if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # PyMySQL stands in for mysqlclient, which needs a C compiler and client
    # headers; it reports a mysqlclient-compatible version to Django.
    import pymysql

    pymysql.install_as_MySQLdb()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's own hashers unless listed, e.g. to test tokens against other hash formats.
if os.environ.get("DJANGO_PASSWORD_HASHERS", "").strip():
    PASSWORD_HASHERS = env_list("DJANGO_PASSWORD_HASHERS", [])

# Internationalization ------------------------------------------------------------

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en-us")
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = env_bool("USE_TZ", True)

STATIC_URL = "static/"

# The browser client comes with django_sidecast, as static/sidecast/index.js.

# Authentication with django-sesame (as in the websockets Django guide) -----------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sesame.backends.ModelBackend",
    # A permission by rule, which only Django can compute (sidecast --permissions-url).
    "live.backends.LibrarianBackend",
]

# Tokens live 30 seconds unless SESAME_MAX_AGE says otherwise ("None" disables
# expiry). The other SESAME_* settings keep django-sesame's defaults unless set.
SESAME_MAX_AGE = env_seconds("SESAME_MAX_AGE", 30)

for _name in (
    "SESAME_ONE_TIME",
    "SESAME_INVALIDATE_ON_PASSWORD_CHANGE",
    "SESAME_INVALIDATE_ON_EMAIL_CHANGE",
):
    if os.environ.get(_name, "").strip():
        globals()[_name] = env_bool(_name, False)

for _name in ("SESAME_KEY", "SESAME_PACKER", "SESAME_PRIMARY_KEY_FIELD", "SESAME_TOKEN_NAME"):
    if _name in os.environ:
        globals()[_name] = os.environ[_name]

if os.environ.get("SESAME_SIGNATURE_SIZE", "").strip():
    SESAME_SIGNATURE_SIZE = int(os.environ["SESAME_SIGNATURE_SIZE"])

if os.environ.get("SESAME_TOKENS", "").strip():
    SESAME_TOKENS = env_list("SESAME_TOKENS", [])

# Sessions (sidecast --auth session reads them) ---------------------------------------

# The engines sidecast can read: db (the default), cached_db and signed_cookies.
SESSION_ENGINE = os.environ.get("SESSION_ENGINE", "django.contrib.sessions.backends.db")
SESSION_COOKIE_NAME = os.environ.get("SESSION_COOKIE_NAME", "sessionid")
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(60 * 60 * 24 * 7 * 2)))

# Access tokens of djangorestframework-simplejwt (sidecast --auth simplejwt) -------------

_SIMPLE_JWT_TEXT = ("ALGORITHM", "SIGNING_KEY", "VERIFYING_KEY", "ISSUER", "USER_ID_CLAIM",
                    "USER_ID_FIELD", "TOKEN_TYPE_CLAIM", "JTI_CLAIM", "REVOKE_TOKEN_CLAIM")
SIMPLE_JWT = {
    name: os.environ[f"SIMPLE_JWT_{name}"]
    for name in _SIMPLE_JWT_TEXT
    if os.environ.get(f"SIMPLE_JWT_{name}", "").strip()
}
if os.environ.get("SIMPLE_JWT_AUDIENCE", "").strip():
    SIMPLE_JWT["AUDIENCE"] = env_list("SIMPLE_JWT_AUDIENCE", [])
    if len(SIMPLE_JWT["AUDIENCE"]) == 1 and not os.environ["SIMPLE_JWT_AUDIENCE"].startswith("["):
        SIMPLE_JWT["AUDIENCE"] = SIMPLE_JWT["AUDIENCE"][0]
if os.environ.get("SIMPLE_JWT_LEEWAY", "").strip():
    SIMPLE_JWT["LEEWAY"] = float(os.environ["SIMPLE_JWT_LEEWAY"])
if os.environ.get("SIMPLE_JWT_CHECK_REVOKE_TOKEN", "").strip():
    SIMPLE_JWT["CHECK_REVOKE_TOKEN"] = env_bool("SIMPLE_JWT_CHECK_REVOKE_TOKEN", False)

# Event bus: django-redis as the default cache, as in the guide ---------------------

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("SIDECAST_REDIS", "redis://127.0.0.1:6379/1"),
    },
}

# What sidecast sends to live/sidecast_proxy.py's endpoints (SIDECAST_PROXY_SECRET on both sides).
SIDECAST_PROXY_SECRET = os.environ.get("SIDECAST_PROXY_SECRET", "")

# django-sidecast: where events and control messages go, and where the browser finds sidecast.
# Pub/sub channels are global to a Redis server (the /1 above does not separate them), so tests
# pick a unique channel per run.
SIDECAST = {
    "REDIS_URL": CACHES["default"]["LOCATION"],
    "CHANNEL": os.environ.get("SIDECAST_CHANNEL", "events"),
    "CONTROL_CHANNEL": os.environ.get("SIDECAST_CONTROL_CHANNEL", "sidecast:control"),
    "URL": os.environ.get("SIDECAST_URL", "ws://127.0.0.1:8888/"),
    # The guide's events: one per admin action, {model, object, message, timestamp, user,
    # content_type_id, object_id}.
    "ADMIN_EVENTS": True,
}
if os.environ.get("SIDECAST_ALLOWED_ORIGINS", "").strip():
    SIDECAST["ALLOWED_ORIGINS"] = env_list("SIDECAST_ALLOWED_ORIGINS", [])
