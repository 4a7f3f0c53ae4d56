"""The demo's appointments API (`/demo/appointments/<document>/`, flows/demo_api.py): the
bearer token, reading an appointment, cancelling it once, refusing the past, the unknown and
other methods, and the registered function that calls it (demo_functions.py)."""

from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.utils import timezone

from contactcenter.flows import demo_functions
from contactcenter.flows.functions import FunctionCall, FunctionFailed
from contactcenter.flows.models import DemoAppointment
from tests.support.http import FakeApi, json_answer

DOCUMENT = "1020304050"


@pytest.fixture
def token(settings):
    assert settings.DEMO_APPOINTMENTS_TOKEN
    return settings.DEMO_APPOINTMENTS_TOKEN


@pytest.fixture
def booked(db):
    return DemoAppointment.objects.create(
        document=DOCUMENT, patient="Ana Gómez", starts_at=timezone.now() + timedelta(days=2)
    )


@pytest.fixture
def past(db):
    return DemoAppointment.objects.create(
        document="999", patient="Old Patient", starts_at=timezone.now() - timedelta(hours=1)
    )


def url(document: str) -> str:
    return f"/demo/appointments/{document}/"


def call(client, method: str, document: str, auth: str | None):
    headers = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    return getattr(client, method)(url(document), **headers)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def state_of(appointment: DemoAppointment) -> str:
    appointment.refresh_from_db()
    return appointment.state


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["message"]


# ---------------------------------------------------------------- the token


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(None, id="no-header"),
        pytest.param("", id="empty-header"),
        pytest.param("Bearer ", id="empty-token"),
        pytest.param("Bearer not-the-token", id="wrong-token"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Bearer café", id="non-ascii-token"),
    ],
)
@pytest.mark.parametrize("method", ["get", "delete"])
def test_without_the_right_bearer_token_401_and_nothing_changes(
    client, booked, token, auth, method
):
    client.raise_request_exception = False
    response = call(client, method, DOCUMENT, auth)
    assert_error(response, 401, "unauthorized")
    assert "patient" not in response.json()
    assert state_of(booked) == DemoAppointment.State.BOOKED


def test_a_token_for_a_longer_or_shorter_value_is_refused(client, booked, token):
    for wrong in (token + "x", token[:-1], token.upper() if token != token.upper() else "x"):
        response = call(client, "delete", DOCUMENT, bearer(wrong))
        assert_error(response, 401, "unauthorized")
    assert state_of(booked) == DemoAppointment.State.BOOKED


def test_no_configured_token_refuses_everyone(client, booked, settings):
    settings.DEMO_APPOINTMENTS_TOKEN = ""
    for auth in ("Bearer ", "Bearer", ""):
        assert_error(call(client, "delete", DOCUMENT, auth), 401, "unauthorized")
    assert state_of(booked) == DemoAppointment.State.BOOKED


def test_unknown_documents_are_not_revealed_without_the_token(client, db):
    assert_error(call(client, "get", "nobody", None), 401, "unauthorized")


# ---------------------------------------------------------------- reading and cancelling


def test_get_returns_the_appointment_and_changes_nothing(client, booked, token):
    response = call(client, "get", DOCUMENT, bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "document": DOCUMENT,
        "patient": "Ana Gómez",
        "starts_at": booked.starts_at.isoformat(),
        "state": "booked",
    }
    assert state_of(booked) == DemoAppointment.State.BOOKED


def test_delete_cancels_once_then_409(client, booked, token):
    response = call(client, "delete", DOCUMENT, bearer(token))
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "canceled"
    assert response.json()["document"] == DOCUMENT
    assert state_of(booked) == DemoAppointment.State.CANCELED
    again = call(client, "delete", DOCUMENT, bearer(token))
    assert_error(again, 409, "already_canceled")
    assert state_of(booked) == DemoAppointment.State.CANCELED
    # Reading it still works and shows the cancellation.
    read = call(client, "get", DOCUMENT, bearer(token))
    assert read.status_code == 200 and read.json()["state"] == "canceled"


def test_delete_cancels_only_that_document(client, booked, token):
    other = DemoAppointment.objects.create(
        document="5550001", patient="Ben", starts_at=timezone.now() + timedelta(days=3)
    )
    assert call(client, "delete", DOCUMENT, bearer(token)).status_code == 200
    assert state_of(other) == DemoAppointment.State.BOOKED


def test_an_unknown_document_is_404(client, booked, token):
    for method in ("get", "delete"):
        response = call(client, method, "0000000", bearer(token))
        assert_error(response, 404, "not_found")
        assert "0000000" in response.json()["message"]
    assert DemoAppointment.objects.count() == 1
    assert state_of(booked) == DemoAppointment.State.BOOKED


def test_a_past_appointment_cannot_be_canceled(client, past, token):
    response = call(client, "delete", past.document, bearer(token))
    assert_error(response, 409, "in_the_past")
    assert state_of(past) == DemoAppointment.State.BOOKED
    assert call(client, "get", past.document, bearer(token)).json()["state"] == "booked"


@pytest.mark.parametrize("method", ["post", "put", "patch", "options"])
def test_other_methods_are_405_and_change_nothing(client, booked, token, method):
    response = call(client, method, DOCUMENT, bearer(token))
    assert_error(response, 405, "method_not_allowed")
    assert state_of(booked) == DemoAppointment.State.BOOKED


def test_post_is_not_blocked_by_csrf_but_still_405(booked, token):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(url(DOCUMENT), HTTP_AUTHORIZATION=bearer(token))
    assert_error(response, 405, "method_not_allowed")
    response = client.delete(url(DOCUMENT), HTTP_AUTHORIZATION=bearer(token))
    assert response.status_code == 200
    assert state_of(booked) == DemoAppointment.State.CANCELED


# ---------------------------------------------------------------- the function that calls it


@pytest.fixture
def appointments_api():
    """A local server in the appointments API's place, recording what the function sends."""
    server = FakeApi()
    server.answer_with = (200, {"document": DOCUMENT, "state": "canceled"})

    def respond(request):
        status, body = server.answer_with
        return json_answer(body, status=status)(request)

    server.route("DELETE", r"/demo/appointments/.*", respond)
    yield server
    server.close()


def _call(document: str, environment: dict | None = None, *, api=None) -> FunctionCall:
    if environment is None:
        environment = {"APPOINTMENTS_API_URL": f"{api.url}/demo/appointments/"}
    environment.setdefault("APPOINTMENTS_API_TOKEN", "tok-123")
    return FunctionCall(context={}, parameters={"documento": document}, environment=environment)


def test_the_function_sends_the_document_and_the_token(appointments_api):
    result = demo_functions.cancel_appointment(_call(f"  {DOCUMENT} ", api=appointments_api))
    assert result == {"canceled": True, "document": DOCUMENT, "state": "canceled"}
    (sent,) = appointments_api.received
    assert (sent.method, sent.path) == ("DELETE", f"/demo/appointments/{DOCUMENT}/")
    assert sent.headers["Authorization"] == "Bearer tok-123"


def test_the_function_fails_with_the_apis_message(appointments_api):
    appointments_api.answer_with = (409, {"code": "in_the_past", "message": "Already taken place."})
    with pytest.raises(FunctionFailed) as failed:
        demo_functions.cancel_appointment(_call(DOCUMENT, api=appointments_api))
    assert "Already taken place." in str(failed.value)


def test_the_function_refuses_an_empty_document_or_missing_url(appointments_api):
    with pytest.raises(FunctionFailed):
        demo_functions.cancel_appointment(_call("   ", api=appointments_api))
    with pytest.raises(FunctionFailed):
        demo_functions.cancel_appointment(_call(DOCUMENT, {"APPOINTMENTS_API_URL": ""}))
    assert appointments_api.received == []


@pytest.mark.parametrize("document", ["../../admin", "12?x=1", "12#frag", "12/34", "1 2"])
def test_the_customers_text_stays_one_path_segment(appointments_api, document):
    """The document is what the customer typed: it must not change the URL's path, query
    or fragment (it is percent-encoded as one segment)."""
    base = f"{appointments_api.url}/demo/appointments"
    demo_functions.cancel_appointment(_call(document, {"APPOINTMENTS_API_URL": base}))
    (sent,) = appointments_api.received  # the raw request line's target, as sent
    prefix = "/demo/appointments/"
    assert sent.path.startswith(prefix) and sent.path.endswith("/"), sent.path
    segment = sent.path[len(prefix) : -1]
    assert "/" not in segment and "?" not in segment and "#" not in segment, sent.path
    assert unquote(segment) == document
