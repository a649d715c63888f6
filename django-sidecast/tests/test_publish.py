"""publish() against real Redis and a real sidecast: after the commit, to the right users only."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import override_settings

from django_sidecast import InvalidEvent, PublishError, apublish, event_for, publish
from django_sidecast.conf import sidecast_settings
from django_sidecast.signals import connect_model_events, publish_deleted, publish_saved

from .conftest import content_type_id, make_user, running_sidecast, sidecast_env, unique

# Nothing listens here: a Redis that is down.
REDIS_DOWN = "redis://127.0.0.1:1/0"


def group_event(**fields: Any) -> dict[str, Any]:
    return {"content_type_id": content_type_id("auth", "group"), **fields}


def test_an_event_published_in_a_transaction_reaches_the_users_who_may_see_it_after_commit(
    live_client: Any,
) -> None:
    reader = live_client(make_user("auth.view_group"))
    other = live_client(make_user("auth.view_permission"))
    with transaction.atomic():
        publish(group_event(n=1))
        # Still in the transaction: sent at commit, so the first frame is the next event.
        publish({"content_type_id": content_type_id("auth", "permission"), "n": 2}, immediate=True)
        assert other.next_event() == {
            "content_type_id": content_type_id("auth", "permission"),
            "n": 2,
        }
    assert reader.next_event() == group_event(n=1)
    # `other` may not see groups: the next thing it receives is its own next event.
    publish({"content_type_id": content_type_id("auth", "permission"), "n": 3})
    assert other.next_event()["n"] == 3


def test_a_rolled_back_transaction_publishes_nothing(live_client: Any) -> None:
    reader = live_client(make_user("auth.view_group"))
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(group_event(n="rolled back"))
        raise RuntimeError("roll back")
    publish(group_event(n="committed"))
    assert reader.next_event() == group_event(n="committed")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([1, 2], "must be a dict"),
        ({"model": "book"}, "integer content_type_id"),
        ({"content_type_id": "7"}, "integer content_type_id"),
        ({"content_type_id": True}, "integer content_type_id"),
        ({"content_type_id": 1, "when": object()}, "not JSON-serialisable"),
        ({"content_type_id": 1, "x": float("nan")}, "not JSON-serialisable"),
        ({"content_type_id": 1, "body": "x" * 1048576}, "over sidecast's limit"),
    ],
)
def test_an_invalid_event_raises_before_anything_is_sent(event: Any, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        publish(event, immediate=True)


def test_an_invalid_event_reaches_nobody(live_client: Any) -> None:
    reader = live_client(make_user("auth.view_group"))
    with pytest.raises(InvalidEvent):
        publish(group_event(bad=object()), immediate=True)
    publish(group_event(n="valid"))
    assert reader.next_event() == group_event(n="valid")


def test_redis_down_raises_a_clear_error_for_an_immediate_publish() -> None:
    with (
        override_settings(SIDECAST={"REDIS_URL": REDIS_DOWN, "CHANNEL": "events"}),
        pytest.raises(
            PublishError,
            match=r'cannot publish to Redis at redis://127\.0\.0\.1:1/0, channel "events"',
        ),
    ):
        publish(group_event(), immediate=True)


def test_redis_down_is_logged_and_dropped_when_configured(caplog: pytest.LogCaptureFixture) -> None:
    settings = {"REDIS_URL": REDIS_DOWN, "PUBLISH_ON_ERROR": "log"}
    with override_settings(SIDECAST=settings), caplog.at_level(logging.ERROR, "django_sidecast"):
        publish(group_event(), immediate=True)
    assert "sidecast event dropped" in caplog.text


def test_redis_down_after_commit_never_breaks_the_transaction_that_triggered_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        override_settings(SIDECAST={"REDIS_URL": REDIS_DOWN}),
        caplog.at_level(logging.ERROR, "django_sidecast"),
    ):
        with transaction.atomic():
            group = Group.objects.create(name=unique("committed"))
            publish(group_event(), using="default")
        assert Group.objects.filter(pk=group.pk).exists()
    assert "sidecast event dropped after commit" in caplog.text
    assert "cannot publish to Redis at redis://127.0.0.1:1/0" in caplog.text


def test_apublish_validates_and_delivers_from_async_code(live_client: Any) -> None:
    reader = live_client(make_user("auth.view_group"))

    async def main() -> None:
        with pytest.raises(InvalidEvent):
            await apublish({"content_type_id": None})
        await apublish(group_event(n="async"))

    asyncio.run(main())
    assert reader.next_event() == group_event(n="async")


def test_event_for_describes_an_instance_and_an_action(live_client: Any) -> None:
    reader = live_client(make_user("auth.view_group"))
    actor = make_user()
    group = Group.objects.create(name=unique("editors"))
    publish(event_for(group, "renamed", user=actor))
    assert reader.next_event() == {
        "model": "group",
        "object": group.name,
        "action": "renamed",
        "user": actor.username,
        "content_type_id": content_type_id("auth", "group"),
        "object_id": str(group.pk),
    }


def test_chosen_models_publish_on_save_and_delete(live_client: Any) -> None:
    from django.db.models.signals import post_delete, post_save

    reader = live_client(make_user("auth.view_group"))
    connect_model_events(("auth.Group",))
    try:
        group = Group.objects.create(name=unique("shop"))
        pk = str(group.pk)
        group.name = unique("shop staff")
        group.save()
        group.delete()
    finally:
        post_save.disconnect(publish_saved, sender=Group, dispatch_uid="sidecast-save-auth.Group")
        post_delete.disconnect(
            publish_deleted, sender=Group, dispatch_uid="sidecast-delete-auth.Group"
        )
    received = [reader.next_event() for _ in range(3)]
    assert [(event["action"], event["object_id"]) for event in received] == [
        ("created", pk),
        ("updated", pk),
        ("deleted", pk),
    ]
    assert received[1]["object"] == group.name


def test_the_streams_bus_receives_events_with_xadd_maxlen() -> None:
    from .conftest import LiveClient

    config = sidecast_settings()
    stream = unique("sidecast-pytest-stream")
    env = sidecast_env(SIDECAST_BUS="redis-streams", SIDECAST_STREAM=stream)
    streams = {"REDIS_URL": config.redis_url, "BUS": "redis-streams", "STREAM": stream}
    client = redis.Redis.from_url(config.redis_url)
    try:
        with running_sidecast(env) as server, override_settings(SIDECAST=streams):
            reader = LiveClient(server.url, make_user("auth.view_group"))
            try:
                for n in range(200):
                    publish(group_event(n=n))
                received = [reader.next_event()["n"] for _ in range(200)]
            finally:
                reader.close()
        assert received == list(range(200))
        newest: Any = client.xrevrange(stream, count=1)
        assert json.loads(newest[0][1][b"payload"]) == group_event(n=199)
        assert client.xlen(stream) == 200
        with override_settings(SIDECAST={**streams, "HISTORY_MAX_ENTRIES": 5}):
            for n in range(300):
                publish(group_event(n=n))
        # MAXLEN ~ 5: Redis trims whole nodes, so more than 5 are kept, but far from all 500.
        assert 5 <= client.xlen(stream) < 200
    finally:
        client.delete(stream, f"{stream}:epoch")
        client.close()


def test_admin_events_are_the_guides_payload_after_the_admins_transaction(
    live_client: Any,
) -> None:
    from django.contrib.admin.models import LogEntry
    from django.db.models.signals import post_save
    from django.test import Client

    from django_sidecast.signals import connect_admin_events, publish_admin_action

    reader = live_client(make_user("auth.view_group"))
    admin = make_user(superuser=True)
    admin.is_staff = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    connect_admin_events()
    try:
        name = unique("readers")
        response = browser.post("/admin/auth/group/add/", {"name": name, "_save": "Save"})
        assert response.status_code == 302, response.content.decode()[:2000]
    finally:
        post_save.disconnect(publish_admin_action, sender=LogEntry, dispatch_uid="sidecast-admin")
    entry = LogEntry.objects.get(object_repr=name)
    frame = reader.socket.recv(timeout=5)
    expected = {
        "model": "group",
        "object": name,
        "message": "Added.",
        "timestamp": entry.action_time.isoformat(),
        "user": str(admin),
        "content_type_id": content_type_id("auth", "group"),
        "object_id": str(entry.object_id),
    }
    # The bytes the guide's signals.py sends: json.dumps of the keys in this order.
    assert json.dumps(expected) in str(frame)
