"""Outbound media are fetched and checked before sending: JPEG/PNG/GIF up to 5 MB, other
accepted types up to 500 KB; the message is held until then, and fails before reaching any
provider when a URL is too large (11751), of a type we do not send (12300) or unreachable
(11200, after retries)."""

import pytest

from messaging.models import Media, Message
from messaging.providers.simulator import recorded_sends
from messaging.services import outbound_media
from messaging.services.messages import MessageRequest, message_create
from tests.support.delivery import deliver_now
from tests.support.http import FakeApi

LONG_CODE = "+14155550100"
CUSTOMER = "+14155550123"


@pytest.fixture
def files():
    api = FakeApi()
    yield api
    api.close()


def serve(api: FakeApi, path: str, content_type: str, size: int, status: int = 200) -> str:
    body = b"x" * size
    headers = {"Content-Type": content_type} if content_type else {}
    api.route("GET", path, lambda r: (status, headers, body))
    return f"{api.url}{path}"


def mms(world, *urls: str) -> Message:
    world.provider.settings = {"receipt_delay_seconds": None, "record_sends": True}
    world.provider.save()
    request = MessageRequest(to=CUSTOMER, from_=LONG_CODE, body="See", media_urls=list(urls))
    return message_create(account=world.account, request=request)


def test_a_message_with_media_waits_for_the_check_then_is_sent(world, files):
    message = mms(
        world,
        serve(files, "/cat.png", "image/png", 4 * 1024 * 1024),
        serve(files, "/card.vcf", "text/vcard", 400 * 1024),
    )
    deliver_now(seconds=1.5)
    assert Message.objects.get(id=message.id).status == "queued"  # held: nothing sent yet
    assert recorded_sends(world.provider.id) == []

    assert outbound_media.outbound_media_check(message_id=message.id) == "released"
    sizes = list(
        Media.objects.filter(message=message).order_by("id").values_list("size", "content_type")
    )
    assert sizes == [(4 * 1024 * 1024, "image/png"), (400 * 1024, "text/vcard")]
    deliver_now(seconds=1.5)
    assert Message.objects.get(id=message.id).status == "sent"
    assert len(recorded_sends(world.provider.id)) == 1


@pytest.mark.parametrize(
    ("content_type", "size", "code"),
    [
        ("image/jpeg", 5 * 1024 * 1024 + 1, 11751),
        ("application/pdf", 500 * 1024 + 1, 11751),
        ("text/html", 10, 12300),
        ("", 10, 12300),  # no type and nothing in the URL to guess from
    ],
)
def test_media_over_the_limit_or_of_another_type_fail_the_message(
    world, files, content_type, size, code
):
    message = mms(world, serve(files, "/file", content_type, size))
    assert outbound_media.outbound_media_check(message_id=message.id) == "failed"
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", code)
    item = Media.objects.get(message=message)
    assert item.state == "failed" and item.error
    deliver_now(seconds=1)
    assert recorded_sends(world.provider.id) == []


def test_the_type_is_guessed_from_the_url_when_the_server_says_nothing(world, files):
    message = mms(world, serve(files, "/photo.gif", "application/octet-stream", 100))
    assert outbound_media.outbound_media_check(message_id=message.id) == "released"
    assert Media.objects.get(message=message).content_type == "image/gif"


def test_an_unreachable_url_is_retried_then_fails_with_11200(world, files):
    message = mms(world, serve(files, "/down.png", "image/png", 10, status=503))
    assert outbound_media.outbound_media_check(message_id=message.id, final_attempt=False) == (
        "retry"
    )
    assert Message.objects.get(id=message.id).status == "queued"
    assert outbound_media.outbound_media_check(message_id=message.id) == "failed"
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 11200)
    assert "503" in Media.objects.get(message=message).error


def test_a_404_is_not_worth_retrying(world, files):
    message = mms(world, f"{files.url}/missing.png")
    assert outbound_media.outbound_media_check(message_id=message.id, final_attempt=False) == (
        "failed"
    )
    assert Message.objects.get(id=message.id).error_code == 11200


def test_a_message_without_media_is_not_held(world):
    request = MessageRequest(to=CUSTOMER, from_=LONG_CODE, body="plain")
    message = message_create(account=world.account, request=request)
    assert message.not_before is None
