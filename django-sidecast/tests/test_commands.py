"""sidecast_env, sidecast_check and the system checks, against real sidecast processes."""

from __future__ import annotations

import io
import os
import shlex
import socket
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from websockets.sync.client import connect as real_connect

from django_sidecast import check as check_module
from django_sidecast import publish

from .conftest import (
    REPO_ROOT,
    SIDECAST_BIN,
    LiveClient,
    SidecastProcess,
    content_type_id,
    make_user,
    running_sidecast,
    sidecast_env,
)


def run(command: str, *args: str, **options: Any) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


# sidecast_env -------------------------------------------------------------------


def test_sidecast_env_writes_an_env_file_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "sidecast.env"
    path.write_text("old")
    path.chmod(0o644)
    output = run("sidecast_env", output=str(path))
    assert f"to {path} (mode 0600)" in output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert f"DJANGO_SECRET_KEY={shlex.quote(settings.SECRET_KEY)}\n" in text
    for name in (
        "DJANGO_SECRET_KEY_FALLBACKS",
        "SIDECAST_DJANGO_DB",
        "AUTH_USER_MODEL",
        "USE_TZ",
        "TIME_ZONE",
        "SESAME_MAX_AGE",
        "SESAME_SIGNATURE_SIZE",
        "SESAME_ONE_TIME",
        "SIDECAST_BUS",
        "SIDECAST_REDIS",
        "SIDECAST_CHANNEL",
        "SIDECAST_STREAM",
        "SIDECAST_CONTROL_CHANNEL",
        "SIDECAST_ALLOWED_ORIGINS",
    ):
        assert f"\n{name}=" in text, name
    assert "\nSESAME_MAX_AGE=30\n" in text
    assert f"\nSIDECAST_CHANNEL={settings.SIDECAST['CHANNEL']}\n" in text
    assert "\nSIDECAST_ALLOWED_ORIGINS='http://127.0.0.1:*'\n" in text


def test_sidecast_env_prints_no_secret_unless_asked(tmp_path: Path) -> None:
    fallbacks = ["an-old-secret-key"]
    with override_settings(SECRET_KEY_FALLBACKS=fallbacks, SESAME_KEY="sesame-extra-key"):
        hidden = run_stdout()
        shown = run_stdout("--show-secrets")
    for secret in (settings.SECRET_KEY, "an-old-secret-key", "sesame-extra-key"):
        assert secret not in hidden
        assert secret in shown
    assert "# DJANGO_SECRET_KEY is a secret: --show-secrets prints it" in hidden


def run_stdout(*flags: str) -> str:
    out = io.StringIO()
    call_command("sidecast_env", "--print", *flags, stdout=out)
    return out.getvalue()


def test_the_env_file_fed_to_sidecast_serve_gives_a_working_server(tmp_path: Path) -> None:
    path = tmp_path / "sidecast.env"
    run("sidecast_env", output=str(path))
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SESAME_", "SIDECAST_"))
    }
    # As a deployment would: the file exported into the environment of sidecast serve.
    serve = (
        f"exec node {shlex.quote(str(SIDECAST_BIN))} serve --port 0 --workers 1 --log-level warn"
    )
    script = f"set -a; . {shlex.quote(str(path))}; set +a; {serve}"
    process = subprocess.Popen(
        ["bash", "-c", script],
        env=inherited,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )
    server = SidecastProcess(process, "")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("sidecast listening on "), line + process.stdout.read()
        server.url = line.removeprefix("sidecast listening on ").strip()
        reader = LiveClient(server.url, make_user("auth.view_group"))
        try:
            publish({"content_type_id": content_type_id("auth", "group"), "via": "env file"})
            assert reader.next_event()["via"] == "env file"
        finally:
            reader.close()
    finally:
        server.stop()


# sidecast_check -----------------------------------------------------------------


def check(server_url: str, username: str, timeout: float = 3.0) -> str:
    return run("sidecast_check", username, url=server_url, timeout=timeout)


def test_sidecast_check_passes_against_a_correctly_configured_sidecast(
    sidecast: SidecastProcess,
) -> None:
    user = make_user("auth.view_group")
    output = check(sidecast.url, user.username)
    assert output.startswith(
        f"OK: sidecast at {sidecast.url} delivered a test event for auth.group"
    )


def test_sidecast_check_reports_an_unreachable_sidecast() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    user = make_user("auth.view_group")
    with pytest.raises(CommandError, match=rf"cannot reach sidecast at ws://127\.0\.0\.1:{port}/"):
        check(f"ws://127.0.0.1:{port}/", user.username)


def test_sidecast_check_reports_a_different_secret_key_as_1011() -> None:
    user = make_user("auth.view_group")
    with running_sidecast(sidecast_env(DJANGO_SECRET_KEY="not-the-django-secret-key")) as server:
        with pytest.raises(CommandError, match=r"\(1011\): the secret key or database differ"):
            check(server.url, user.username)


def test_sidecast_check_reports_a_different_channel_as_no_event() -> None:
    user = make_user("auth.view_group")
    with running_sidecast(sidecast_env(SIDECAST_CHANNEL="some-other-channel")) as server:
        with pytest.raises(
            CommandError,
            match=r"did not arrive within 1 s: Django and sidecast use a different Redis database"
            r" or channel",
        ):
            check(server.url, user.username, timeout=1.0)


@contextmanager
def database_stops_answering() -> Iterator[None]:
    """Holds a lock that makes every read of the user table wait, from a connection of its own."""
    if connection.vendor == "sqlite":
        locker = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
    elif connection.vendor == "mysql":
        import pymysql

        database = settings.DATABASES["default"]["NAME"]
        with pymysql.connect(host="127.0.0.1", user="root", database=database) as my_locker:
            with my_locker.cursor() as cursor:
                cursor.execute("LOCK TABLES auth_user WRITE")
                try:
                    yield
                finally:
                    cursor.execute("UNLOCK TABLES")
    else:
        import psycopg

        with psycopg.connect(os.environ["SIDECAST_TEST_DATABASE_URL"]) as pg_locker:
            pg_locker.execute("LOCK TABLE auth_user IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                pg_locker.rollback()


def test_sidecast_check_reports_a_database_sidecast_cannot_reach_as_1013(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = make_user("auth.view_group")
    with running_sidecast(sidecast_env(), "--auth-timeout", "1") as server, ExitStack() as lock:

        def connect_with_the_database_locked(*args: Any, **kwargs: Any) -> Any:
            # The check has read the user and minted the token: from here on only sidecast's
            # queries meet the lock.
            lock.enter_context(database_stops_answering())
            return real_connect(*args, **kwargs)

        monkeypatch.setattr(check_module, "connect", connect_with_the_database_locked)
        with pytest.raises(
            CommandError, match=r"\(1013 try again later\): sidecast cannot reach its database"
        ):
            # SQLite makes sidecast wait out its busy timeout (5 s) before it answers 1013.
            check(server.url, user.username, timeout=10.0)


def test_sidecast_check_needs_a_user_who_may_see_something(sidecast: SidecastProcess) -> None:
    user = make_user()
    with pytest.raises(CommandError, match="may not view or change any model"):
        check(sidecast.url, user.username)
    with pytest.raises(CommandError, match="no user 'nobody-at-all'"):
        check(sidecast.url, "nobody-at-all")


# System checks ------------------------------------------------------------------


def check_ids(deploy: bool = False) -> list[str]:
    return sorted(
        message.id or ""
        for message in run_checks(include_deployment_checks=deploy)
        if (message.id or "").startswith("sidecast.")
    )


def test_the_test_settings_pass_every_check() -> None:
    assert check_ids(deploy=True) == []


def test_a_missing_sesame_backend_is_an_error() -> None:
    with override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]):
        assert check_ids() == ["sidecast.E001"]


def test_a_missing_sesame_max_age_is_an_error() -> None:
    with override_settings():
        del settings.SESAME_MAX_AGE
        assert check_ids() == ["sidecast.E002"]


def test_missing_or_wrong_bus_settings_are_errors() -> None:
    with override_settings():
        del settings.SIDECAST
        assert check_ids() == ["sidecast.E003"]
    with override_settings(SIDECAST={"BUS": "kafka", "CHANEL": "events"}):
        messages = [m for m in run_checks() if (m.id or "").startswith("sidecast.")]
        assert [m.id for m in messages] == ["sidecast.E004", "sidecast.E004"]
        assert 'SIDECAST["CHANEL"] is not a sidecast setting' in messages[0].msg
        assert 'SIDECAST["BUS"] must be one of redis, redis-streams' in messages[1].msg


def test_deploy_checks_want_an_explicit_allowed_origin_list() -> None:
    with override_settings(SIDECAST={**settings.SIDECAST, "ALLOWED_ORIGINS": None}):
        assert check_ids() == []
        assert check_ids(deploy=True) == ["sidecast.W010"]
