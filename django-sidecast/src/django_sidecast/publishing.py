"""publish(): validate an event, then hand it to the bus sidecast reads, after the commit."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.db import transaction

from .conf import SidecastSettings, sidecast_settings

logger = logging.getLogger("django_sidecast")

# Bounded so that a Redis that does not answer costs a request a few seconds, not forever.
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0


class InvalidEvent(ValueError):
    """The event cannot be sent: sidecast would drop it, so nothing is sent at all."""


class PublishError(RuntimeError):
    """The bus did not take the event (Redis unreachable, refused the command, or timed out)."""


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client(url: str) -> redis.Redis:
    """One client (and connection pool) per Redis URL per process."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                socket_timeout=COMMAND_TIMEOUT_SECONDS,
            )
            _clients[url] = client
        return client


def _forget_clients(*, setting: str, **kwargs: object) -> None:
    if setting == "SIDECAST":
        with _clients_lock:
            for client in _clients.values():
                client.close()
            _clients.clear()


setting_changed.connect(_forget_clients)


def encode_event(event: object, max_bytes: int | None = None) -> str:
    """The JSON text of a valid event; InvalidEvent says what sidecast would refuse."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"an event must be a dict, not {type(event).__name__}")
    content_type_id = event.get("content_type_id")
    if not isinstance(content_type_id, int) or isinstance(content_type_id, bool):
        raise InvalidEvent(
            "an event needs an integer content_type_id (ContentType.objects.get_for_model(...).id),"
            f" got {content_type_id!r}"
        )
    try:
        text = json.dumps(dict(event), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidEvent(f"the event is not JSON-serialisable: {error}") from error
    limit = sidecast_settings().max_event_bytes if max_bytes is None else max_bytes
    size = len(text.encode())
    if size > limit:
        raise InvalidEvent(
            f"the event is {size} bytes, over sidecast's limit of {limit}"
            ' (SIDECAST["MAX_EVENT_BYTES"], sidecast --max-event-bytes): publish an id instead'
        )
    return text


def describe_bus(config: SidecastSettings) -> str:
    if config.bus == "redis-streams":
        return f'Redis at {config.redis_url}, stream "{config.stream}"'
    return f'Redis at {config.redis_url}, channel "{config.channel}"'


def send_text(text: str, config: SidecastSettings) -> None:
    """Sends one encoded event now; PublishError when the bus does not take it."""
    client = redis_client(config.redis_url)
    try:
        if config.bus == "redis-streams":
            # As sidecast's own publish: the stream trims itself to about HISTORY_MAX_ENTRIES.
            client.xadd(
                config.stream,
                {"payload": text},
                maxlen=config.history_max_entries,
                approximate=True,
            )
        else:
            client.publish(config.channel, text)
    except redis.RedisError as error:
        raise PublishError(f"cannot publish to {describe_bus(config)}: {error}") from error


def send_control_text(text: str, config: SidecastSettings) -> None:
    """Control messages go on pub/sub whichever bus carries the events, as sidecast reads them."""
    try:
        redis_client(config.redis_url).publish(config.control_channel, text)
    except redis.RedisError as error:
        raise PublishError(
            f'cannot publish to Redis at {config.redis_url}, channel "{config.control_channel}":'
            f" {error}"
        ) from error


def _after_commit(send: Any, text: str, config: SidecastSettings, using: str | None) -> None:
    def deliver() -> None:
        # The transaction is committed and the response may already be on its way: an exception
        # here would turn a saved change into an error page, so a failure is logged, never raised.
        try:
            send(text, config)
        except PublishError:
            logger.exception("sidecast event dropped after commit")

    transaction.on_commit(deliver, using=using)


def _deliver_now(send: Any, text: str, config: SidecastSettings) -> None:
    try:
        send(text, config)
    except PublishError:
        if config.publish_on_error == "raise":
            raise
        logger.exception("sidecast event dropped")


def publish(event: Mapping[str, Any], *, immediate: bool = False, using: str | None = None) -> None:
    """Publishes `event` for sidecast to forward to the users who may see its content type.

    The event is checked first (InvalidEvent, nothing sent). By default it is sent once the
    transaction of `using` commits, and not at all if it rolls back; outside a transaction, at
    once. A bus failure after the commit is logged and the event dropped; with `immediate=True`
    it is sent at once and a failure raises PublishError, or is logged when
    SIDECAST["PUBLISH_ON_ERROR"] is "log".
    """
    config = sidecast_settings()
    text = encode_event(event, config.max_event_bytes)
    if immediate:
        _deliver_now(send_text, text, config)
    else:
        _after_commit(send_text, text, config, using)


async def apublish(
    event: Mapping[str, Any], *, immediate: bool = False, using: str | None = None
) -> None:
    """publish() for async code. It runs in the thread where sync_to_async runs the ORM, so an
    event published while a transaction opened there is open waits for its commit; async code
    outside any transaction publishes at once."""
    await sync_to_async(publish, thread_sensitive=True)(event, immediate=immediate, using=using)


def publish_control(message: Mapping[str, Any], *, using: str | None = None) -> None:
    """Sends a control message ({"type": "users", "ids": [...]}, ...) after the commit."""
    config = sidecast_settings()
    _after_commit(send_control_text, json.dumps(dict(message)), config, using)
