"""The Python peer: the notification server of the websockets Django guide, for the benchmark.

Behaviour follows the guide's notifications.py: the first message is a django-sesame token
checked with get_user in a thread; the user's visible content types are computed once, in a
thread, with the guide's get_content_types; every Redis message is decoded, parsed, and its
original text broadcast to the connections whose set holds its content_type_id. Addresses come
from the environment so that the benchmark can point it at its own database, Redis channel
and port; nothing else differs from the guide.
"""

import asyncio
import json
import os

import django

django.setup()

from django.contrib.contenttypes.models import ContentType  # noqa: E402
from redis import asyncio as aioredis  # noqa: E402
from sesame.utils import get_user  # noqa: E402
from websockets.asyncio.server import broadcast, serve  # noqa: E402
from websockets.frames import CloseCode  # noqa: E402

# Open connection -> {"content_type_ids": set of ids it may see}.
CONNECTIONS = {}


def get_content_types(user):
    """Ids of the content types the user may view or change (three queries: has_perm caches)."""
    visible = set()
    for content_type in ContentType.objects.all():
        label = f"{content_type.app_label}.%s_{content_type.model}"
        if user.has_perm(label % "view") or user.has_perm(label % "change"):
            visible.add(content_type.id)
    return visible


async def handler(websocket):
    token = await websocket.recv()
    user = await asyncio.to_thread(get_user, token)
    if user is None:
        await websocket.close(CloseCode.INTERNAL_ERROR, "authentication failed")
        return
    content_type_ids = await asyncio.to_thread(get_content_types, user)
    CONNECTIONS[websocket] = {"content_type_ids": content_type_ids}
    try:
        await websocket.wait_closed()
    finally:
        del CONNECTIONS[websocket]


async def process_events(redis_url, channel):
    redis = aioredis.from_url(redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel)
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        payload = message["data"].decode()
        event = json.loads(payload)
        wanted = event["content_type_id"]
        broadcast(
            (
                websocket
                for websocket, connection in CONNECTIONS.items()
                if wanted in connection["content_type_ids"]
            ),
            payload,
        )


async def main():
    host = os.environ.get("BENCH_HOST", "127.0.0.1")
    port = int(os.environ.get("BENCH_PORT", "8888"))
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
    channel = os.environ.get("BENCH_CHANNEL", "events")
    async with serve(handler, host, port):
        await process_events(redis_url, channel)


if __name__ == "__main__":
    asyncio.run(main())
