"""The desk's websocket on the Redis channel layer: who may watch what, event order, and
the sequence numbers that let a browser resync after a gap (docs/desk.md)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from contactcenter.asgi import application
from contactcenter.desk import events
from contactcenter.desk.selectors import conversation_detail
from messaging.delivery import store
from routing.services.reservations import reservation_accept
from routing.services.tasks import task_complete, task_wrapup

pytestmark = pytest.mark.django_db(transaction=True)
CUSTOMER = "whatsapp:+34600000002"


def _cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _socket(user=None, *, origin: bytes = b"http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={_cookie(user)}".encode()))
    return WebsocketCommunicator(application, "/ws/desk/", headers=headers)


async def _open(user) -> tuple[WebsocketCommunicator, dict]:
    socket = await sync_to_async(_socket)(user)
    connected, code = await socket.connect()
    assert connected, code
    welcome = await socket.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome"
    return socket, welcome


async def _subscribe(socket, stream: str) -> dict:
    await socket.send_json_to({"type": "subscribe", "stream": stream})
    return await socket.receive_json_from(timeout=5)


async def _events(socket, count: int) -> list[dict]:
    frames = [await socket.receive_json_from(timeout=5) for _ in range(count)]
    assert all(f["type"] == "event" for f in frames), frames
    return frames


def _run(scenario):
    asyncio.run(scenario())


def test_anonymous_and_roleless_users_are_refused(live_world, outsider):
    async def scenario():
        for user, code in ((None, 4401), (outsider, 4403)):
            socket = await sync_to_async(_socket)(user)
            connected, _ = await socket.connect()
            assert connected  # then closed with the code, which a browser can read
            assert await socket.receive_output(timeout=5) == {
                "type": "websocket.close",
                "code": code,
            }

    _run(scenario)


def test_a_foreign_origin_is_refused(live_world):
    async def scenario():
        socket = await sync_to_async(_socket)(
            live_world.users["agent1"], origin=b"https://evil.example"
        )
        connected, _code = await socket.connect()
        assert not connected

    _run(scenario)


def test_agents_watch_only_their_own_stream_and_supervisors_the_supervisor_stream(live_world):
    agent1, agent2 = live_world.workers["agent1"], live_world.workers["agent2"]

    async def scenario():
        socket, welcome = await _open(live_world.users["agent1"])
        assert welcome["streams"] == [f"agent:{agent1.sid}"]
        mine = await _subscribe(socket, f"agent:{agent1.sid}")
        assert (mine["type"], mine["stream"]) == ("subscribed", f"agent:{agent1.sid}")
        assert isinstance(mine["seq"], int) and mine["epoch"]
        theirs = await _subscribe(socket, f"agent:{agent2.sid}")
        assert (theirs["type"], theirs["code"]) == ("error", "forbidden")
        boss = await _subscribe(socket, "supervisor")
        assert boss["code"] == "forbidden"
        nonsense = await _subscribe(socket, "agent:../../etc")
        assert nonsense["code"] == "unknown_stream"
        await socket.send_to(text_data="not json")
        assert (await socket.receive_json_from())["code"] == "bad_request"
        await socket.disconnect()

        supervisor, _ = await _open(live_world.users["supervisor"])
        assert (await _subscribe(supervisor, "supervisor"))["type"] == "subscribed"
        await supervisor.disconnect()

    _run(scenario)


def test_an_offer_arrives_on_the_agents_stream_in_sequence(live_world):
    live_world.available("agent1")
    stream = f"agent:{live_world.workers['agent1'].sid}"

    async def scenario():
        socket, _ = await _open(live_world.users["agent1"])
        subscribed = await _subscribe(socket, stream)
        handoff = await sync_to_async(live_world.hand_off)(CUSTOMER, language="es", name="Lucía")
        [offer] = await _events(socket, 1)
        assert offer["event"] == "reservation.created"
        assert offer["seq"] == subscribed["seq"] + 1
        assert offer["epoch"] == subscribed["epoch"]
        assert offer["data"]["conversation_sid"] == handoff.conversation.sid
        assert offer["data"]["customer_name"] == "Lucía"
        assert offer["data"]["queue_name"] == "Spanish support"
        await socket.disconnect()

    _run(scenario)


def test_an_agent_joins_a_conversation_only_while_holding_it(live_world):
    live_world.available("agent1", "agent2")
    handoff = live_world.hand_off(CUSTOMER, language="es")
    stream = events.conversation_stream(handoff.conversation.sid)

    async def scenario():
        socket, _ = await _open(live_world.users["agent1"])
        before = await _subscribe(socket, stream)
        assert before["code"] == "forbidden"  # offered is not held
        reservation = await sync_to_async(live_world.pending_reservation)(handoff, "agent1")
        await sync_to_async(reservation_accept)(reservation)
        assert (await _subscribe(socket, stream))["type"] == "subscribed"

        other, _ = await _open(live_world.users["agent2"])
        assert (await _subscribe(other, stream))["code"] == "forbidden"
        supervisor, _ = await _open(live_world.users["supervisor"])
        assert (await _subscribe(supervisor, stream))["type"] == "subscribed"
        for s in (socket, other, supervisor):
            await s.disconnect()

    _run(scenario)


def test_customer_messages_arrive_in_order_with_contiguous_sequence_numbers(live_world):
    live_world.available("agent1")
    handoff = live_world.held_by("agent1", CUSTOMER)
    stream = events.conversation_stream(handoff.conversation.sid)

    async def scenario():
        socket, _ = await _open(live_world.users["agent1"])
        subscribed = await _subscribe(socket, stream)
        for n in range(5):
            await sync_to_async(live_world.customer_writes)(CUSTOMER, f"message {n}")
        frames = await _events(socket, 5)
        assert [f["seq"] for f in frames] == list(
            range(subscribed["seq"] + 1, subscribed["seq"] + 6)
        )
        assert [f["data"]["message"]["body"] for f in frames] == [f"message {n}" for n in range(5)]
        assert {f["data"]["message"]["author"] for f in frames} == {"customer"}
        await socket.disconnect()

    _run(scenario)


def test_after_a_gap_the_snapshot_holds_what_was_missed(live_world):
    """The socket drops; the customer writes twice; on reconnect the stream's position says
    two frames were missed, and the REST snapshot at that position holds both messages."""
    live_world.available("agent1")
    handoff = live_world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    stream = events.conversation_stream(sid)
    agent = live_world.users["agent1"]

    async def scenario():
        socket, _ = await _open(agent)
        await _subscribe(socket, stream)
        await sync_to_async(live_world.customer_writes)(CUSTOMER, "first")
        [seen] = await _events(socket, 1)
        await socket.disconnect()

        await sync_to_async(live_world.customer_writes)(CUSTOMER, "second")
        await sync_to_async(live_world.customer_writes)(CUSTOMER, "third")

        socket, _ = await _open(agent)
        again = await _subscribe(socket, stream)
        assert again["epoch"] == seen["epoch"]
        assert again["seq"] == seen["seq"] + 2  # a gap of two: the browser resyncs
        snapshot = await sync_to_async(conversation_detail)(agent, sid)
        assert snapshot["stream"] == {"epoch": again["epoch"], "seq": again["seq"]}
        bodies = [m["body"] for m in snapshot["messages"]]
        assert bodies[-3:] == ["first", "second", "third"]

        await sync_to_async(live_world.customer_writes)(CUSTOMER, "fourth")
        [after] = await _events(socket, 1)
        assert after["seq"] == again["seq"] + 1
        assert after["data"]["message"]["body"] == "fourth"
        await socket.disconnect()

    _run(scenario)


def test_lost_counters_start_a_new_epoch(live_world):
    """Redis restarted (or the keys expired): the next frame's epoch differs, which tells
    the browser its sequence numbers mean nothing any more."""
    live_world.available("agent1")
    handoff = live_world.held_by("agent1", CUSTOMER)
    stream = events.conversation_stream(handoff.conversation.sid)

    async def scenario():
        socket, _ = await _open(live_world.users["agent1"])
        subscribed = await _subscribe(socket, stream)
        await sync_to_async(store.client().delete)(
            store.key("desk", "epoch", stream), store.key("desk", "seq", stream)
        )
        await sync_to_async(live_world.customer_writes)(CUSTOMER, "after the restart")
        [frame] = await _events(socket, 1)
        assert frame["epoch"] != subscribed["epoch"]
        assert frame["seq"] == 1
        await socket.disconnect()

    _run(scenario)


def test_completing_revokes_the_agents_subscription(live_world):
    live_world.available("agent1")
    handoff = live_world.held_by("agent1", CUSTOMER)
    conversation = events.conversation_stream(handoff.conversation.sid)
    agent_stream = f"agent:{live_world.workers['agent1'].sid}"

    async def scenario():
        socket, _ = await _open(live_world.users["agent1"])
        await _subscribe(socket, agent_stream)
        await _subscribe(socket, conversation)
        await sync_to_async(task_wrapup)(handoff.task)
        await sync_to_async(task_complete)(handoff.task)
        frames = []
        while not any(f.get("type") == "revoked" for f in frames):
            frames.append(await socket.receive_json_from(timeout=5))
        kinds = [(f.get("stream"), f.get("event") or f["type"]) for f in frames]
        assert (agent_stream, "reservation.updated") in kinds
        assert (conversation, "conversation.updated") in kinds
        assert frames[-1] == {"type": "revoked", "stream": conversation}
        statuses = [f["data"]["status"] for f in frames if f.get("event") == "reservation.updated"]
        assert statuses == ["wrapping", "completed"]
        await sync_to_async(live_world.customer_writes)(CUSTOMER, "anyone there?")
        assert await socket.receive_nothing(timeout=0.5), await socket.receive_output()
        await socket.disconnect()

    _run(scenario)


def test_every_event_type_declares_json_fields():
    assert set(events.EVENT_TYPES) >= {
        "reservation.created",
        "reservation.updated",
        "worker.activity",
        "message.created",
        "message.status",
        "note.created",
        "conversation.updated",
        "routing.changed",
    }
    with pytest.raises(TypeError, match="not a JSON type"):

        @events.event("broken.example")
        class Broken(events.LiveEvent):
            when: object

    payload = events.MessageStatusChanged(
        sid="SM1", status="failed", error_code=30007, error_message="Filtered"
    ).payload()
    assert json.loads(json.dumps(payload)) == payload


def test_an_agents_reply_and_its_delivery_statuses_reach_the_conversation_stream(live_world):
    from contactcenter.desk.services import agent_message_send
    from messaging.services.messages import message_status_apply

    live_world.available("agent1")
    handoff = live_world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    agent = live_world.users["agent1"]

    async def scenario():
        socket, _ = await _open(agent)
        await _subscribe(socket, events.conversation_stream(sid))
        message = await sync_to_async(agent_message_send)(
            user=agent, conversation_sid=sid, body="On it"
        )
        [created] = await _events(socket, 1)
        assert created["event"] == "message.created"
        assert created["data"]["message"]["author"] == "agent"
        for status in ("sending", "sent", "failed"):
            await sync_to_async(message_status_apply)(
                message_id=message.pk,
                status=status,
                source="provider",
                error_code=30007 if status == "failed" else None,
            )
        frames = await _events(socket, 3)
        assert [(f["event"], f["data"]["status"]) for f in frames] == [
            ("message.status", "sending"),
            ("message.status", "sent"),
            ("message.status", "failed"),
        ]
        assert frames[-1]["data"]["error_code"] == 30007
        assert frames[-1]["data"]["error_message"]
        await socket.disconnect()

    _run(scenario)
