"""Every request gets an id, echoed in X-Request-ID and written in its log lines."""

import contextvars
import logging

from contactcenter.core.requestid import OneLineFormatter, RequestIdFilter


def test_a_new_id_is_made_for_each_request(client, db):
    first = client.get("/accounts/login/")["X-Request-ID"]
    second = client.get("/accounts/login/")["X-Request-ID"]
    assert len(first) == 32 and len(second) == 32
    assert first != second


def test_a_proxys_id_is_kept_when_it_is_plain(client, db):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert response["X-Request-ID"] == "lb-7f3a.42"


def test_a_hostile_id_is_replaced(client, db):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="x\r\nSet-Cookie: a=b")
    assert response["X-Request-ID"] != "x\r\nSet-Cookie: a=b"
    assert len(response["X-Request-ID"]) == 32


def test_log_lines_written_during_a_request_carry_its_id(client, db, caplog):
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 404
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all(r.request_id == "req-123" for r in records)


def test_outside_a_request_the_id_is_a_dash():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    contextvars.Context().run(RequestIdFilter().filter, record)
    assert record.request_id == "-"


def test_a_multi_line_message_stays_on_one_line():
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "first\nsecond", None, None)
    assert formatter.format(record) == "ERROR first\\nsecond"
