"""A real Django project on a throw-away database (SQLite, PostgreSQL or MariaDB/MySQL, chosen by
SIDECAST_TEST_DIALECT),
real Redis, and real `sidecast serve` processes started from this checkout's bin/sidecast.js."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SIDECAST_BIN = REPO_ROOT / "bin" / "sidecast.js"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RUN_ID = secrets.token_hex(4)

_state: dict[str, Any] = {}


def _mysql_admin() -> Any:
    import pymysql

    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")


def pytest_configure(config: pytest.Config) -> None:
    dialect = os.environ.get("SIDECAST_TEST_DIALECT", "sqlite")
    name = f"sidecast_pytest_{int(time.time())}_{RUN_ID}"
    if dialect == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
    elif dialect == "mysql":
        with _mysql_admin() as admin, admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        url = f"mysql://root@127.0.0.1:3306/{name}"
    elif dialect == "sqlite":
        directory = tempfile.mkdtemp(prefix="sidecast-pytest-")
        _state["directory"] = directory
        url = f"sqlite://{directory}/db.sqlite3"
    else:
        raise pytest.UsageError(
            f"SIDECAST_TEST_DIALECT must be sqlite, postgres or mysql, not {dialect}"
        )
    _state.update(dialect=dialect, name=name, url=url)
    os.environ["SIDECAST_TEST_DATABASE_URL"] = url
    os.environ["SIDECAST_TEST_CHANNEL"] = f"sidecast-pytest-{RUN_ID}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def pytest_unconfigure(config: pytest.Config) -> None:
    from django.db import connections

    connections.close_all()
    if _state.get("dialect") == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{_state["name"]}" WITH (FORCE)')
    if _state.get("dialect") == "mysql":
        with _mysql_admin() as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{_state['name']}`")
    if "directory" in _state:
        shutil.rmtree(_state["directory"], ignore_errors=True)


@pytest.fixture
def dialect() -> str:
    return str(_state["dialect"])


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class SidecastProcess:
    process: subprocess.Popen[str]
    url: str
    output: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def sidecast_env(**overrides: str) -> dict[str, str]:
    """What sidecast_env derives from the settings, as sidecast would read it from the file."""
    from django_sidecast.environment import sidecast_environment

    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SESAME_", "SIDECAST_"))
    }
    derived = {variable.name: variable.value for variable in sidecast_environment()}
    return {**inherited, **derived, **overrides}


def start_sidecast(env: dict[str, str], *args: str) -> SidecastProcess:
    """`sidecast serve` on a free port; returns once it listens, fails with its output if not."""
    command = ["node", str(SIDECAST_BIN), "serve", "--port", "0", "--workers", "1"]
    command += ["--drain-seconds", "0.1", "--log-level", "warn", *args]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None
    started = SidecastProcess(process, "")
    listening = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            started.output.append(line)
            if line.startswith("sidecast listening on "):
                started.url = line.removeprefix("sidecast listening on ").strip()
                listening.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while not listening.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            started.stop()
            raise AssertionError("sidecast serve did not start:\n" + "".join(started.output))
    return started


@contextmanager
def running_sidecast(env: dict[str, str], *args: str) -> Iterator[SidecastProcess]:
    started = start_sidecast(env, *args)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def sidecast() -> Iterator[SidecastProcess]:
    """A sidecast configured from the Django settings, shared by the tests of a module."""
    with running_sidecast(sidecast_env()) as started:
        yield started


def make_user(*perms: str, superuser: bool = False) -> Any:
    """A committed user (sidecast reads it from another process) with "app.codename" perms."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(unique("user"), is_superuser=superuser)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def content_type_id(app_label: str, model: str) -> int:
    from django.contrib.contenttypes.models import ContentType

    return int(ContentType.objects.get_by_natural_key(app_label, model).id)


class LiveClient:
    """A protocol v1 WebSocket client: authenticated once the welcome arrived."""

    def __init__(self, url: str, user: Any) -> None:
        from sesame.utils import get_token
        from websockets.sync.client import connect
        from websockets.typing import Subprotocol

        self._stack = ExitStack()
        self.socket = self._stack.enter_context(
            connect(url, subprotocols=[Subprotocol("sidecast.v1")])
        )
        self.socket.send(json.dumps({"token": get_token(user)}))
        welcome = json.loads(self.socket.recv(timeout=10))
        assert welcome["type"] == "welcome", welcome

    def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = json.loads(self.socket.recv(timeout=timeout))
        assert frame["type"] == "event", frame
        event: dict[str, Any] = frame["event"]
        return event

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def live_client(sidecast: SidecastProcess) -> Iterator[Any]:
    clients: list[LiveClient] = []

    def connect(user: Any) -> LiveClient:
        client = LiveClient(sidecast.url, user)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
