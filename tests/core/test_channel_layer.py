"""The Redis channel layer (real Redis or embedded Valkey) and the websocket stack."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from contactcenter.asgi import application
from contactcenter.core.consumers import PingConsumer


def test_the_channel_layer_is_redis_with_no_socket_timeout():
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host["socket_timeout"] is None
    assert host["max_connections"] == 1000  # redis-py 8 defaults to 100


@pytest.mark.slow
def test_an_idle_receiver_survives_longer_than_redis_py_default_timeout():
    """REFERENCE.md 9: with redis-py 8's 5 s socket timeout an idle consumer dies."""

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        receiver = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(11)
        assert not receiver.done(), receiver.exception() if receiver.done() else None
        await layer.send(channel, {"type": "late.hello", "n": 1})
        message = await asyncio.wait_for(receiver, timeout=5)
        await layer.flush()
        return message

    assert asyncio.run(scenario()) == {"type": "late.hello", "n": 1}


@pytest.fixture
def session_cookie(agent1, client):
    client.force_login(agent1)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _communicator(cookie: str | None, origin: bytes = b"http://localhost"):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/ping/", headers=headers)


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_user_pings_and_receives_a_group_broadcast(session_cookie, agent1):
    async def scenario():
        communicator = _communicator(session_cookie)
        connected, _ = await communicator.connect()
        assert connected
        ping_id = uuid.uuid4().hex
        await communicator.send_json_to({"type": "ping", "id": ping_id})
        assert await communicator.receive_json_from() == {"type": "pong", "id": ping_id}
        group = PingConsumer.group_for(agent1.pk)
        await get_channel_layer().group_send(group, {"type": "broadcast", "payload": "hi"})
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "broadcast",
            "payload": "hi",
        }
        await communicator.disconnect()

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_anonymous_websockets_are_closed():
    async def scenario():
        communicator = _communicator(None)
        connected, code = await communicator.connect()
        assert (connected, code) == (False, 4401)

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_foreign_origin_is_refused(session_cookie):
    async def scenario():
        communicator = _communicator(session_cookie, origin=b"https://evil.example")
        connected, _ = await communicator.connect()
        assert not connected

    asyncio.run(scenario())


def test_the_cache_is_stored_in_redis():
    import redis
    from django.core.cache import cache

    key = f"probe-{uuid.uuid4().hex}"
    cache.set(key, {"n": 1}, timeout=30)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert client.exists(cache.make_and_validate_key(key)) == 1
    finally:
        cache.delete(key)
        client.close()
