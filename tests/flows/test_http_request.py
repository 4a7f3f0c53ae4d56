"""The make-http-request widget's I/O, against a real local HTTP server (no database)."""

import json
import socket
import time

import httpx
import pytest

from contactcenter.flows.http_request import FORM, JSON, HttpCall, host_allowed, http_call
from tests.support.http import FakeApi, json_answer


@pytest.fixture(scope="module")
def server():
    # One server for the module: stopping one costs half a second (serve_forever's poll).
    server = FakeApi()
    # The client hangs up on purpose (timeouts, oversized bodies): not worth a traceback.
    server.server.handle_error = lambda *_args: None
    yield server
    server.close()


@pytest.fixture
def api(server):
    """The shared server with no routes and nothing received yet."""
    server.routes.clear()
    server.received.clear()
    return server


def allowed(api: FakeApi) -> list[str]:
    return [f"127.0.0.1:{api.server.server_port}"]


def get(url: str, parameters=()) -> HttpCall:
    return HttpCall(method="GET", url=url, content_type=FORM, parameters=list(parameters))


def text_answer(body: bytes, status: int = 200, content_type: str = "text/plain"):
    return lambda _request: (status, {"Content-Type": content_type}, body)


# ---------------------------------------------------------------- the allow-list


@pytest.mark.parametrize(
    ("url", "entries", "expected"),
    [
        ("https://api.example.com/x", ["api.example.com"], True),
        ("http://api.example.com/x", ["api.example.com"], True),
        ("https://API.Example.COM/x", ["api.EXAMPLE.com"], True),
        ("https://api.example.com:443/x", ["api.example.com"], True),
        # Without a port an entry means the scheme's default port, not any port.
        ("https://api.example.com:8443/x", ["api.example.com"], False),
        ("http://api.example.com:443/x", ["api.example.com"], False),
        ("https://api.example.com:8443/x", ["api.example.com:8443"], True),
        ("https://api.example.com/x", ["api.example.com:8443"], False),
        ("http://127.0.0.1:8001/", ["127.0.0.1:8001"], True),
        ("http://127.0.0.1:8002/", ["127.0.0.1:8001"], False),
        ("http://[::1]:8001/", ["[::1]:8001"], True),
        ("https://a.example.com/", ["*.example.com"], True),
        ("https://a.b.example.com/", ["*.example.com"], True),
        ("https://example.com/", ["*.example.com"], False),
        ("https://badexample.com/", ["*.example.com"], False),
        ("https://a.example.com:8443/", ["*.example.com:8443"], True),
        ("https://other.com/", ["api.example.com", "other.com"], True),
        ("https://api.example.com.evil.com/", ["api.example.com"], False),
        ("https://api.example.com/", [], False),
        ("ftp://api.example.com/", ["api.example.com"], False),
        ("file:///etc/passwd", ["api.example.com"], False),
        ("http://user:pass@api.example.com/", ["api.example.com"], False),
        ("http://api.example.com\\@evil.com/", ["api.example.com", "evil.com"], False),
        ("not a url", ["api.example.com"], False),
        ("https://api.example.com/", ["api.example.com:notaport"], False),
    ],
)
def test_host_allowed(url, entries, expected):
    assert host_allowed(url, entries) is expected


def test_a_host_off_the_list_is_never_requested(api):
    api.route("GET", "/.*", json_answer({}))

    result = http_call(get(f"{api.url}/x"), allowed_hosts=["api.example.com", "127.0.0.1"])

    assert not result.ok
    assert result.status_code is None
    port = api.server.server_port
    assert result.error == f"The host 127.0.0.1:{port} is not on the flows' HTTP allow-list."
    assert api.received == []


def test_a_url_with_credentials_is_refused(api):
    url = f"http://user:secret@127.0.0.1:{api.server.server_port}/x"

    result = http_call(get(url), allowed_hosts=allowed(api))

    assert not result.ok
    assert "user name or password" in result.error
    assert api.received == []


# ---------------------------------------------------------------- requests


def test_get_sends_the_parameters_as_the_query_string(api):
    api.route("GET", "/lookup", json_answer({"found": True}))

    result = http_call(
        get(f"{api.url}/lookup?a=1", [("q", "x y&z"), ("a", "2")]), allowed_hosts=allowed(api)
    )

    assert result.ok, result.error
    (request,) = api.received
    assert request.method == "GET"
    assert request.path == "/lookup?a=1&q=x+y%26z&a=2"
    assert request.headers["User-Agent"] == "contactcenter-flows/1"
    assert request.body == b""


def test_post_form_sends_an_urlencoded_body(api):
    api.route("POST", "/orders", json_answer({"id": 7}, status=201))
    call = HttpCall(
        method="POST",
        url=f"{api.url}/orders",
        content_type=FORM,
        parameters=[("name", "Zoë Ünal"), ("note", "a&b=c")],
    )

    result = http_call(call, allowed_hosts=allowed(api))

    assert result.ok
    assert result.status_code == 201
    assert result.parsed == {"id": 7}
    (request,) = api.received
    assert request.path == "/orders"
    assert request.headers["Content-Type"] == FORM
    assert request.form == {"name": "Zoë Ünal", "note": "a&b=c"}
    assert request.headers["User-Agent"] == "contactcenter-flows/1"


def test_post_json_sends_the_body_as_is(api):
    api.route("POST", "/hook", json_answer({"ok": True}))
    body = '{"order": "A-1", "items": [1, 2],  "name": "Zoë"}'
    call = HttpCall(
        method="POST", url=f"{api.url}/hook", content_type=JSON, parameters=[], body=body
    )

    result = http_call(call, allowed_hosts=allowed(api))

    assert result.ok
    (request,) = api.received
    assert request.body == body.encode()
    assert request.headers["Content-Type"].startswith("application/json")


def test_post_json_with_an_invalid_body_is_not_sent(api):
    call = HttpCall(
        method="POST", url=f"{api.url}/hook", content_type=JSON, parameters=[], body='{"a": }'
    )

    result = http_call(call, allowed_hosts=allowed(api))

    assert not result.ok
    assert result.error.startswith("The request body is not valid JSON: Expecting value")
    assert "column 7" in result.error
    assert api.received == []


def test_an_unsupported_method_is_not_sent(api):
    call = HttpCall(method="DELETE", url=f"{api.url}/x", content_type=FORM, parameters=[])

    result = http_call(call, allowed_hosts=allowed(api))

    assert not result.ok
    assert "DELETE" in result.error
    assert api.received == []


# ---------------------------------------------------------------- responses


def test_a_json_object_response_is_parsed(api):
    api.route("GET", "/customer", json_answer({"name": "Ada", "tier": {"level": 2}}))

    result = http_call(get(f"{api.url}/customer"), allowed_hosts=allowed(api))

    assert result.ok
    assert result.status_code == 200
    assert result.parsed == {"name": "Ada", "tier": {"level": 2}}
    assert json.loads(result.body) == result.parsed
    assert result.content_type == "application/json"
    assert result.error == ""
    assert result.elapsed_ms > 0


def test_a_json_array_is_parsed_but_a_scalar_is_not(api):
    api.route("GET", "/list", json_answer([1, 2]))
    api.route("GET", "/number", json_answer(3))

    listed = http_call(get(f"{api.url}/list"), allowed_hosts=allowed(api))
    number = http_call(get(f"{api.url}/number"), allowed_hosts=allowed(api))

    assert listed.parsed == [1, 2]
    assert number.ok
    assert number.body == "3"
    assert number.parsed is None


def test_a_non_json_body_is_kept_as_text(api):
    api.route("GET", "/page", text_answer("<p>Hé</p>".encode() + b"\xff", content_type="text/html"))

    result = http_call(get(f"{api.url}/page"), allowed_hosts=allowed(api))

    assert result.ok
    assert result.body == "<p>Hé</p>\ufffd"
    assert result.parsed is None
    assert result.content_type == "text/html"


def test_a_server_error_fails_but_keeps_status_and_body(api):
    api.route("GET", "/broken", json_answer({"error": "database down"}, status=500))

    result = http_call(get(f"{api.url}/broken"), allowed_hosts=allowed(api))

    assert not result.ok
    assert result.status_code == 500
    assert result.error == "The server answered HTTP 500."
    assert json.loads(result.body) == {"error": "database down"}
    assert result.parsed == {"error": "database down"}


def test_a_redirect_is_not_followed(api):
    api.route("GET", "/old", lambda _r: (302, {"Location": f"{api.url}/new"}, b""))
    api.route("GET", "/new", json_answer({"moved": True}))

    result = http_call(get(f"{api.url}/old"), allowed_hosts=allowed(api))

    assert not result.ok
    assert result.status_code == 302
    assert "redirects are not followed" in result.error
    assert [r.path for r in api.received] == ["/old"]


def test_a_response_over_64_kb_is_refused(api):
    api.route("GET", "/big", text_answer(b"x" * (64 * 1024 + 1)))
    api.route("GET", "/exact", text_answer(b"x" * (64 * 1024)))

    big = http_call(get(f"{api.url}/big"), allowed_hosts=allowed(api))
    exact = http_call(get(f"{api.url}/exact"), allowed_hosts=allowed(api))

    assert not big.ok
    assert big.error == "The response is larger than 64 KB."
    assert big.status_code == 200
    assert big.body == ""
    assert exact.ok
    assert len(exact.body) == 64 * 1024


def test_a_body_without_length_stops_being_read_at_the_cap():
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b"y" * 16 * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())

    result = http_call(
        get("https://api.example.com/stream"),
        allowed_hosts=["api.example.com"],
        transport=httpx.MockTransport(handler),
    )

    assert not result.ok
    assert result.error == "The response is larger than 64 KB."
    assert len(sent) < 10


def test_a_slow_server_times_out(api):
    def slow(_request):
        time.sleep(1.5)
        return 200, {}, b"late"

    api.route("GET", "/slow", slow)
    started = time.monotonic()

    result = http_call(get(f"{api.url}/slow"), allowed_hosts=allowed(api), timeout=0.3)

    assert not result.ok
    assert result.status_code is None
    assert result.error == "The request timed out after 0.3 s."
    assert time.monotonic() - started < 1.2


def test_a_body_that_dribbles_in_past_the_deadline_times_out():
    def dribble():
        for _ in range(20):
            time.sleep(0.1)
            yield b"."

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=dribble())

    started = time.monotonic()
    result = http_call(
        get("https://api.example.com/drip"),
        allowed_hosts=["api.example.com"],
        timeout=0.3,
        transport=httpx.MockTransport(handler),
    )

    assert not result.ok
    assert result.error == "The request timed out after 0.3 s."
    assert time.monotonic() - started < 1.0


def test_a_refused_connection_fails_with_the_reason():
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = http_call(get(f"http://127.0.0.1:{port}/x"), allowed_hosts=[f"127.0.0.1:{port}"])

    assert not result.ok
    assert result.status_code is None
    assert result.error.startswith("The request to 127.0.0.1 failed: ")
    assert "refused" in result.error.lower()
