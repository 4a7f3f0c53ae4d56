"""The desk's REST endpoints and the services behind them, on the demo's routing."""

import json

import pytest
from django.test import Client

from contactcenter.desk.models import Disposition, Handoff, Note
from messaging.models import Message
from routing.models import Reservation, Task, TaskQueue, WorkerChannel

CUSTOMER = "whatsapp:+34600000001"


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def _post(client, path, data=None):
    return client.post(path, json.dumps(data or {}), content_type="application/json")


@pytest.fixture
def agent(world):
    world.available("agent1")
    return _client(world.users["agent1"])


def test_state_lists_the_workers_offer_with_its_conversation(world, agent):
    handoff = world.hand_off(CUSTOMER, language="es", name="Lucía")
    state = agent.get("/desk/api/state").json()
    assert state["worker"]["name"] == "agent1"
    assert state["worker"]["activity_name"] == "Available"
    [offer] = state["offers"]
    assert offer["conversation_sid"] == handoff.conversation.sid
    assert offer["customer_name"] == "Lucía"
    assert offer["channel"] == "whatsapp"
    assert offer["queue_name"] == "Spanish support"
    stream = f"agent:{world.workers['agent1'].sid}"
    assert set(state["streams"]) == {stream}
    assert state["streams"][stream]["seq"] >= 1  # the offer was published on it
    assert {d["code"] for d in state["dispositions"]} >= {"resolved", "follow-up"}
    assert any(c["shortcut"] == "greeting" for c in state["canned_responses"])


def test_accept_opens_the_conversation_with_its_whole_history(world, agent):
    handoff = world.hand_off(CUSTOMER, language="en", name="Ann")
    reservation = world.pending_reservation(handoff, "agent1")
    answer = _post(agent, f"/desk/api/reservations/{reservation.sid}/accept")
    assert answer.status_code == 200, answer.content
    sid = handoff.conversation.sid
    assert answer.json() == {"conversation_sid": sid}
    [summary] = agent.get("/desk/api/state").json()["conversations"]
    assert (summary["sid"], summary["status"], summary["unread"]) == (sid, "accepted", 1)

    detail = agent.get(f"/desk/api/conversations/{sid}").json()
    assert detail["readonly"] is False
    assert [m["body"] for m in detail["messages"]] == ["I want a person"]
    assert detail["messages"][0]["author"] == "customer"
    assert detail["conversation"]["customer"]["name"] == "Ann"
    assert detail["conversation"]["attributes"]["language"] == "en"
    assert detail["conversation"]["window"] == {
        "applies": True,
        "open": True,
        "ends_at": detail["conversation"]["window"]["ends_at"],
    }
    assert detail["variables"]["customer.name"] == "Ann"
    # Reading the snapshot is not reading the conversation; opening it (POST read) is.
    [summary] = agent.get("/desk/api/state").json()["conversations"]
    assert summary["unread"] == 1
    assert _post(agent, f"/desk/api/conversations/{sid}/read").json() == {"unread": 0}
    [summary] = agent.get("/desk/api/state").json()["conversations"]
    assert summary["unread"] == 0


def test_an_agent_replies_and_the_reply_is_tagged_as_theirs(world, agent):
    handoff = world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    answer = _post(agent, f"/desk/api/conversations/{sid}/messages", {"body": "Hello, I am here"})
    assert answer.status_code == 201, answer.content
    message = Message.objects.get(sid=answer.json()["message"]["sid"])
    assert (message.to_address, message.from_address) == (CUSTOMER, world.sender.address)
    assert message.tags["desk_agent"] == "agent1"
    assert answer.json()["message"]["author"] == "agent"
    assert answer.json()["message"]["encoding"] == "GSM-7"


def test_another_agent_may_not_read_or_write_the_conversation(world, agent):
    handoff = world.held_by("agent1", CUSTOMER)
    other = _client(world.users["agent2"])
    sid = handoff.conversation.sid
    assert other.get(f"/desk/api/conversations/{sid}").status_code == 403
    answer = _post(other, f"/desk/api/conversations/{sid}/messages", {"body": "hi"})
    assert answer.status_code == 403
    assert answer.json()["code"] == 20403
    assert not Message.objects.filter(body="hi").exists()


def test_a_supervisor_monitors_read_only(world, agent):
    handoff = world.held_by("agent1", CUSTOMER)
    supervisor = _client(world.users["supervisor"])
    sid = handoff.conversation.sid
    detail = supervisor.get(f"/desk/api/conversations/{sid}").json()
    assert detail["readonly"] is True
    answer = _post(supervisor, f"/desk/api/conversations/{sid}/messages", {"body": "psst"})
    assert answer.status_code == 403
    assert "read-only" in answer.json()["message"]


def test_bad_input_gets_a_clear_error(world, agent):
    handoff = world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    path = f"/desk/api/conversations/{sid}/messages"
    not_json = agent.post(path, "{", content_type="application/json")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]
    empty = _post(agent, path, {"body": "  "})
    assert empty.status_code == 400 and empty.json()["field"] == "body"
    wrong_type = _post(agent, path, {"body": 12})
    assert wrong_type.status_code == 400 and wrong_type.json()["code"] == 20001
    assert Message.objects.filter(direction__startswith="outbound").count() == 0
    missing = agent.get("/desk/api/conversations/CH" + "0" * 32)
    assert missing.status_code == 404 and missing.json()["code"] == 20404


def test_notes_are_private_and_listed(world, agent):
    handoff = world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    answer = _post(agent, f"/desk/api/conversations/{sid}/notes", {"body": "VIP, be nice"})
    assert answer.status_code == 201
    assert Note.objects.get().body == "VIP, be nice"
    detail = agent.get(f"/desk/api/conversations/{sid}").json()
    assert [n["body"] for n in detail["notes"]] == ["VIP, be nice"]
    assert not Message.objects.filter(body="VIP, be nice").exists()


def test_wrap_up_needs_a_disposition_then_complete_frees_capacity(world, agent):
    handoff = world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    channel = WorkerChannel.objects.get(
        worker=world.workers["agent1"], task_channel__unique_name="whatsapp"
    )
    assert channel.assigned_tasks == 1
    early = _post(agent, f"/desk/api/conversations/{sid}/complete")
    assert early.status_code == 409
    no_code = _post(agent, f"/desk/api/conversations/{sid}/wrapup", {"notes": "done"})
    assert no_code.status_code == 400 and no_code.json()["field"] == "disposition"
    needs_notes = _post(
        agent, f"/desk/api/conversations/{sid}/wrapup", {"disposition": "follow-up"}
    )
    assert needs_notes.status_code == 400 and needs_notes.json()["field"] == "notes"

    done = _post(
        agent,
        f"/desk/api/conversations/{sid}/wrapup",
        {"disposition": "resolved", "notes": "Moved to Tuesday"},
    )
    assert done.status_code == 200, done.content
    handoff.refresh_from_db()
    assert handoff.disposition == Disposition.objects.get(code="resolved")
    assert handoff.wrapup_notes == "Moved to Tuesday"
    assert Task.objects.get(pk=handoff.task_id).assignment_status == "wrapping"
    channel.refresh_from_db()
    assert channel.assigned_tasks == 1  # wrapping still holds capacity

    complete = _post(agent, f"/desk/api/conversations/{sid}/complete")
    assert complete.status_code == 200
    assert Task.objects.get(pk=handoff.task_id).assignment_status == "completed"
    channel.refresh_from_db()
    assert channel.assigned_tasks == 0
    assert agent.get("/desk/api/state").json()["conversations"] == []


def test_transfer_to_another_agent_routes_a_new_task_to_them(world, agent):
    world.available("agent2")
    handoff = world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    with world.run_commit():
        answer = _post(
            agent,
            f"/desk/api/conversations/{sid}/transfer",
            {"worker_sid": world.workers["agent2"].sid},
        )
    assert answer.status_code == 200, answer.content
    old = Task.objects.get(pk=handoff.task_id)
    assert (old.assignment_status, old.reason[:22]) == ("completed", "transferred to agent2 ")
    new = Handoff.objects.get(task__sid=answer.json()["task_sid"])
    assert new.conversation_id == handoff.conversation_id
    assert new.transferred_from_id == handoff.pk
    offer = Reservation.objects.get(task=new.task)
    assert (offer.worker.friendly_name, offer.status) == ("agent2", "pending")
    assert Note.objects.get(system=True).body == "Transferred to agent2."
    assert agent.get("/desk/api/state").json()["conversations"] == []


def test_transfer_to_a_queue(world, agent):
    handoff = world.held_by("agent1", CUSTOMER, language="en")
    sid = handoff.conversation.sid
    vip = TaskQueue.objects.get(workspace=world.workspace, friendly_name="VIP")
    answer = _post(agent, f"/desk/api/conversations/{sid}/transfer", {"queue_sid": vip.sid})
    assert answer.status_code == 200, answer.content
    new = Task.objects.get(sid=answer.json()["task_sid"])
    assert new.queue == vip
    bad = _post(agent, f"/desk/api/conversations/{sid}/transfer", {"queue_sid": "WQnope"})
    assert bad.status_code == 403  # no longer theirs


def test_activity_switch(world, agent):
    state = agent.get("/desk/api/state").json()
    offline = next(a for a in state["activities"] if a["name"] == "Offline")
    answer = _post(agent, "/desk/api/activity", {"activity_sid": offline["sid"]})
    assert answer.status_code == 200
    assert answer.json()["activity_name"] == "Offline"
    bad = _post(agent, "/desk/api/activity", {"activity_sid": "WAnope"})
    assert bad.status_code == 400 and bad.json()["field"] == "activity_sid"


def test_encoding_preview(world, agent):
    plain = agent.get("/desk/api/encoding", {"body": "Hola, ¿qué tal?"}).json()
    assert plain["encoding"] == "GSM-7" and plain["segments"] == 1
    smart = agent.get("/desk/api/encoding", {"body": "“Quoted” — text"}).json()
    assert smart["encoding"] == "UCS-2"
    assert smart["smart_encoding"]["encoding"] == "GSM-7"
    assert smart["smart_encoding"]["body"] == '"Quoted" - text'


def test_the_pages_need_their_roles(world):
    anonymous = Client()
    assert anonymous.get("/desk/api/state").status_code == 401
    outsider_like = _client(world.users["admin"])
    assert outsider_like.get("/desk/api/state").status_code == 403
    assert _client(world.users["agent1"]).get("/supervisor/api/state").status_code == 403


def test_the_supervisor_state_shows_queues_agents_and_live_tasks(world, agent):
    handoff = world.held_by("agent1", CUSTOMER, language="es")
    waiting = world.hand_off("whatsapp:+34600000009", language="es")
    supervisor = _client(world.users["supervisor"])
    state = supervisor.get("/supervisor/api/state").json()
    assert set(state["streams"]) == {"supervisor"}
    spanish = next(q for q in state["queues"] if q["name"] == "Spanish support")
    assert spanish["assigned"] == 1
    agent1 = next(a for a in state["agents"] if a["name"] == "agent1")
    assert (agent1["held"], agent1["offered"]) == (1, 1)
    tasks = {t["task_sid"]: t for t in state["tasks"]}
    assert tasks[handoff.task.sid]["agent_name"] == "agent1"
    assert tasks[waiting.task.sid]["status"] == "reserved"
    assert len(state["charts"]["volume_per_hour"]) == 24
    analytics = supervisor.get("/supervisor/api/analytics", {"days": "7"}).json()
    assert "services" in analytics and "tags" in analytics
    assert supervisor.get("/supervisor/api/analytics", {"days": "5"}).status_code == 400


def test_a_supervisor_changes_an_agents_activity_and_reassigns_a_waiting_task(world, agent):
    world.available("agent2")
    waiting = world.hand_off("whatsapp:+34600000010", language="en")
    supervisor = _client(world.users["supervisor"])
    worker = world.workers["agent1"]
    offline = world.activity("Offline")
    with world.run_commit():
        answer = _post(
            supervisor,
            f"/supervisor/api/workers/{worker.sid}/activity",
            {"activity_sid": offline.sid},
        )
    assert answer.status_code == 200 and answer.json()["activity_name"] == "Offline"
    with world.run_commit():
        moved = _post(
            supervisor,
            f"/supervisor/api/tasks/{waiting.task.sid}/transfer",
            {"worker_sid": world.workers["agent2"].sid},
        )
    assert moved.status_code == 200, moved.content
    assert Task.objects.get(pk=waiting.task_id).assignment_status == "canceled"
    new = Task.objects.get(sid=moved.json()["task_sid"])
    assert Reservation.objects.get(task=new).worker.friendly_name == "agent2"
    # The moved task is not counted as abandoned in the queue it left.
    rows = _client(world.users["supervisor"]).get("/supervisor/api/state").json()["queues"]
    assert sum(q["abandoned"] for q in rows) == 0


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def test_an_attachment_is_sent_with_a_public_unguessable_url(world, agent):
    from django.core.files.uploadedfile import SimpleUploadedFile

    handoff = world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    upload = SimpleUploadedFile("x-ray scan.png", PNG, content_type="image/png")
    answer = agent.post(
        f"/desk/api/conversations/{sid}/messages", {"body": "Here it is", "file": upload}
    )
    assert answer.status_code == 201, answer.content
    message = Message.objects.get(sid=answer.json()["message"]["sid"])
    [media] = message.media.all()
    assert "/desk/attachments/" in media.url and media.url.endswith("/x-ray-scan.png")
    path = media.url.split("testserver", 1)[1]
    served = Client().get(path)  # providers fetch it without signing in
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == PNG
    assert Client().get(path.replace(path.split("/")[-2], "0" * 32)).status_code == 404

    script = SimpleUploadedFile("run.sh", b"#!/bin/sh", content_type="application/x-sh")
    refused = agent.post(f"/desk/api/conversations/{sid}/messages", {"file": script})
    assert refused.status_code == 400 and refused.json()["field"] == "file"
    assert message.media.count() == 1 and Message.objects.filter(body="").count() == 0


def test_with_the_whatsapp_window_closed_only_templates_are_sent(world, agent):
    from datetime import timedelta

    from django.utils import timezone

    from messaging.models import Conversation

    handoff = world.held_by("agent1", CUSTOMER)
    sid = handoff.conversation.sid
    Conversation.objects.filter(pk=handoff.conversation_id).update(
        last_inbound_at=timezone.now() - timedelta(hours=25)
    )
    detail = agent.get(f"/desk/api/conversations/{sid}").json()
    assert detail["conversation"]["window"]["applies"] is True
    assert detail["conversation"]["window"]["open"] is False
    [template] = [t for t in detail["templates"] if t["name"] == "Appointment reminder"]
    assert template["placeholders"] == ["1", "2", "3"]

    free_text = _post(agent, f"/desk/api/conversations/{sid}/messages", {"body": "Hello?"})
    assert free_text.status_code == 400
    assert free_text.json()["code"] == 63016
    sent = _post(
        agent,
        f"/desk/api/conversations/{sid}/messages",
        {
            "content_sid": template["sid"],
            "content_variables": {"1": "Dave", "2": "Tuesday", "3": "10:30"},
        },
    )
    assert sent.status_code == 201, sent.content
    body = sent.json()["message"]["body"]
    assert "Dave" in body and "Tuesday" in body
