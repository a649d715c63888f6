"""Control messages on the control channel (real Redis) when permissions change, after commit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import transaction
from django.test import Client
from django.utils import timezone
from websockets.exceptions import ConnectionClosed

from django_sidecast import publish
from django_sidecast.conf import sidecast_settings
from django_sidecast.publishing import publish_control

from .conftest import (
    LiveClient,
    SidecastProcess,
    content_type_id,
    make_user,
    running_sidecast,
    sidecast_env,
    unique,
)


class ControlChannel:
    def __init__(self) -> None:
        config = sidecast_settings()
        self.client = redis.Redis.from_url(config.redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(config.control_channel)
        # Subscribed once Redis confirms it; messages published before would be lost.
        deadline = time.monotonic() + 5
        while self.pubsub.get_message(timeout=0.1) is None and not self.pubsub.subscribed:
            assert time.monotonic() < deadline, "no subscription confirmation"

    def messages(self, wait: float = 0.3) -> list[Any]:
        received = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message is not None:
                received.append(json.loads(message["data"]))
        return received

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def control() -> Iterator[ControlChannel]:
    channel = ControlChannel()
    yield channel
    channel.close()


def permission(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


def test_a_user_permission_change_names_the_user_after_commit(control: ControlChannel) -> None:
    user = make_user()
    control.messages()
    with transaction.atomic():
        user.user_permissions.add(permission("view_group"))
        assert control.messages(0.2) == [], "sent before the commit"
    assert control.messages() == [{"type": "users", "ids": [str(user.pk)]}]


def test_a_rolled_back_change_sends_nothing(control: ControlChannel) -> None:
    user = make_user()
    control.messages()
    with pytest.raises(RuntimeError), transaction.atomic():
        user.user_permissions.add(permission("view_group"))
        raise RuntimeError("roll back")
    assert control.messages() == []


def test_group_membership_and_group_permissions(control: ControlChannel) -> None:
    first, second = make_user(), make_user()
    group = Group.objects.create(name=unique("staff"))
    control.messages()
    group.user_set.add(first, second)
    [message] = control.messages()
    assert message["type"] == "users"
    assert sorted(message["ids"]) == sorted([str(first.pk), str(second.pk)])
    first.groups.remove(group)
    assert control.messages() == [{"type": "users", "ids": [str(first.pk)]}]
    group.permissions.add(permission("view_group"))
    assert control.messages() == [{"type": "groups", "ids": [str(group.pk)]}]
    group.user_set.clear()
    assert control.messages() == [{"type": "users", "ids": [str(second.pk)]}]
    group.user_set.add(first)
    control.messages()
    group.delete()
    assert control.messages() == [{"type": "users", "ids": [str(first.pk)]}]


def test_a_deleted_permission_changes_everything(control: ControlChannel) -> None:
    content_type = ContentType.objects.get_by_natural_key("auth", "group")
    extra = Permission.objects.create(
        codename=unique("audit"), name="Can audit", content_type=content_type
    )
    control.messages()
    extra.delete()
    assert control.messages() == [{"type": "all"}]


def test_a_login_is_not_a_permission_change(control: ControlChannel) -> None:
    user = make_user()
    control.messages()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert control.messages() == []
    user.is_active = False
    user.save()
    assert control.messages() == [{"type": "users", "ids": [str(user.pk)]}]
    pk = user.pk
    User.objects.filter(pk=pk).get().delete()
    assert control.messages() == [{"type": "users", "ids": [str(pk)]}]


def test_logging_out_ends_the_session_before_naming_the_user(
    control: ControlChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    client = Client()
    client.force_login(user)
    key = client.session.session_key
    assert Session.objects.filter(session_key=key).exists()
    # What sidecast would find in the database when the message reaches it.
    found_when_sent: list[bool] = []
    send = publish_control

    def recording(message: dict[str, Any]) -> None:
        found_when_sent.append(Session.objects.filter(session_key=key).exists())
        send(message)

    monkeypatch.setattr("django_sidecast.permissions.publish_control", recording)
    control.messages()
    client.logout()
    assert control.messages() == [{"type": "users", "ids": [str(user.pk)]}]
    assert found_when_sent == [False]
    # Logging out with no one logged in names nobody.
    Client().logout()
    assert control.messages() == []


# Against a real sidecast that only learns of changes from these messages (no schedule).


@pytest.fixture
def sidecast_without_schedule() -> Iterator[SidecastProcess]:
    with running_sidecast(sidecast_env(), "--permissions-refresh", "0") as server:
        yield server


def receives_group_events(client: LiveClient, marker: str) -> bool:
    """Whether `client` gets a group event now: a permission event it may always see follows,
    so that the answer comes without waiting for a timeout."""
    publish({"content_type_id": content_type_id("auth", "group"), "marker": marker})
    publish({"content_type_id": content_type_id("auth", "permission"), "marker": f"{marker}-end"})
    first = client.next_event()
    if first["marker"] == marker:
        assert client.next_event()["marker"] == f"{marker}-end"
        return True
    assert first["marker"] == f"{marker}-end", first
    return False


def eventually(condition: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sidecast_applies_a_granted_and_a_revoked_permission_to_an_open_connection(
    sidecast_without_schedule: SidecastProcess,
) -> None:
    user = make_user("auth.view_permission")
    client = LiveClient(sidecast_without_schedule.url, user)
    try:
        assert not receives_group_events(client, "before")
        user.user_permissions.add(permission("view_group"))
        eventually(lambda: receives_group_events(client, "granted"), "the grant never applied")
        user.user_permissions.remove(permission("view_group"))
        eventually(lambda: not receives_group_events(client, "revoked"), "still sees groups")
    finally:
        client.close()


def test_sidecast_closes_the_connection_of_a_deactivated_user(
    sidecast_without_schedule: SidecastProcess,
) -> None:
    user = make_user("auth.view_group")
    client = LiveClient(sidecast_without_schedule.url, user)
    try:
        user.is_active = False
        user.save()
        with pytest.raises(ConnectionClosed) as closed:
            client.socket.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "access revoked")
    finally:
        client.close()
