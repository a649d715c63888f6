"""Turn one database URL into a Django DATABASES entry.

The same URL is handed to sidecast (SIDECAST_DJANGO_DB), so both sides are
guaranteed to read the same database. Accepted forms:

    postgres://USER[:PASSWORD]@HOST[:PORT]/NAME
    mysql://USER[:PASSWORD]@HOST[:PORT]/NAME      (MySQL and MariaDB)
    sqlite:///ABSOLUTE/PATH

Query parameters become backend OPTIONS, e.g. ?sslmode=require.
"""
from urllib.parse import parse_qsl, unquote, urlsplit

ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "mariadb": "django.db.backends.mysql",
    "sqlite": "django.db.backends.sqlite3",
}


def parse_database_url(url):
    parts = urlsplit(url)
    engine = ENGINES.get(parts.scheme)
    if engine is None:
        raise ValueError(
            f"unsupported database URL scheme {parts.scheme!r}; "
            f"expected one of {', '.join(sorted(ENGINES))}"
        )
    options = dict(parse_qsl(parts.query))

    if engine.endswith("sqlite3"):
        # sqlite:///abs/path has an empty host and the absolute path after it.
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError("a SQLite URL must look like sqlite:///ABSOLUTE/PATH")
        return {"ENGINE": engine, "NAME": unquote(parts.path), "OPTIONS": options}

    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ValueError(f"the database URL {url!r} names no database")
    if engine.endswith("mysql"):
        # Django's default "utf8" is utf8mb3 on MariaDB; usernames may hold emoji.
        options.setdefault("charset", "utf8mb4")
    return {
        "ENGINE": engine,
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
    }
