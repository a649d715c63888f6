"""sidecast_check: a token, a WebSocket, a test event, and what went wrong in plain words."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from sesame.utils import get_token
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from .conf import sidecast_settings
from .publishing import PublishError, describe_bus, encode_event, send_text


class CheckFailed(Exception):
    """The check failed; the message says what is wrong and what to compare."""


@dataclass(frozen=True)
class CheckResult:
    url: str
    content_type: str
    milliseconds: float


def visible_content_type(user: Model) -> ContentType:
    """A content type whose events sidecast forwards to `user`: view or change permission."""
    if getattr(user, "is_superuser", False):
        content_type = ContentType.objects.order_by("id").first()
    else:
        codenames = set()
        for permission in user.get_all_permissions():  # type: ignore[attr-defined]
            app_label, codename = permission.split(".", 1)
            action, _, model = codename.partition("_")
            if action in ("view", "change"):
                codenames.add((app_label, model))
        content_type = next(
            (
                ContentType.objects.get_by_natural_key(app_label, model)
                for app_label, model in sorted(codenames)
            ),
            None,
        )
    if content_type is None:
        raise CheckFailed(
            f"{user} may not view or change any model, so sidecast would send them nothing:"
            " check with a user who holds a view_ or change_ permission"
        )
    return content_type


def _closed_reason(close: ConnectionClosed, url: str) -> str:
    received = close.rcvd
    code = received.code if received else None
    if code == 1011:
        return (
            f"sidecast at {url} refused the token (1011): the secret key or database differ"
            " between Django and sidecast (compare DJANGO_SECRET_KEY, SIDECAST_DJANGO_DB,"
            " AUTH_USER_MODEL and the SESAME_* settings: manage.py sidecast_env writes them)"
        )
    if code == 1013:
        return (
            f"sidecast at {url} could not check the token (1013 try again later): sidecast cannot"
            " reach its database"
        )
    reason = received.reason if received else "no close frame"
    return f"sidecast at {url} closed the connection: {code} {reason}"


def run_check(username: str, *, url: str | None = None, timeout: float = 5.0) -> CheckResult:
    config = sidecast_settings()
    target = url or config.url
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise CheckFailed(f"no user {username!r} in the Django database") from None
    content_type = visible_content_type(user)
    token = get_token(user, scope=config.scope)
    started = time.monotonic()
    try:
        # v1 answers a good token with a welcome, so "authenticated" is something we can wait for.
        socket = connect(target, subprotocols=[Subprotocol("sidecast.v1")], open_timeout=timeout)
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
        raise CheckFailed(f"cannot reach sidecast at {target}: {error}") from error
    with socket:
        try:
            socket.send(json.dumps({"token": token}))
            try:
                welcome = json.loads(socket.recv(timeout=timeout))
            except TimeoutError:
                raise CheckFailed(
                    f"sidecast at {target} did not answer the token within {timeout:g} s: it may"
                    " be waiting for its database (see its --auth-timeout)"
                ) from None
            if welcome.get("type") != "welcome":
                raise CheckFailed(f"sidecast at {target} answered {welcome!r} instead of a welcome")
            nonce = secrets.token_hex(8)
            event = {
                "type": "sidecast.check",
                "check": nonce,
                "model": content_type.name,
                "content_type_id": content_type.id,
            }
            try:
                send_text(encode_event(event), config)
            except PublishError as error:
                raise CheckFailed(f"Django cannot publish: {error}") from error
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                frame = json.loads(socket.recv(timeout=remaining))
                received = frame.get("event") if frame.get("type") == "event" else None
                if isinstance(received, dict) and received.get("check") == nonce:
                    break
        except ConnectionClosed as close:
            raise CheckFailed(_closed_reason(close, target)) from close
        except TimeoutError:
            raise CheckFailed(
                f"the test event did not arrive within {timeout:g} s: Django and sidecast use a"
                f" different Redis database or channel (Django publishes to {describe_bus(config)};"
                " compare sidecast's --bus, --redis, --channel and --stream)"
            ) from None
    return CheckResult(
        target,
        f"{content_type.app_label}.{content_type.model}",
        (time.monotonic() - started) * 1000,
    )
