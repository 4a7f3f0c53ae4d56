"""The make-http-request widget's I/O: one outgoing HTTP call, limited to an allow-list.

No database here: the engine passes the rendered call and the account's allow-list, and
stores the `HttpResult` in the execution's context (`widgets.<name>.status_code/body/parsed`).

Limits (REFERENCE.md 8): 10 s and 64 KB. Redirects are never followed, since the target of
a redirect could be off the allow-list. The URL is parsed once, by httpx, and that same
parsed URL is both checked and requested, so no parser disagreement can slip a host past
the allow-list.
"""

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from contactcenter.flows.definition import CONTENT_TYPE_FORM, CONTENT_TYPE_JSON

# The widget's two content types, as the definition catalogue names them.
FORM = CONTENT_TYPE_FORM
JSON = CONTENT_TYPE_JSON
USER_AGENT = "contactcenter-flows/1"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HttpCall:
    method: str  # GET or POST
    url: str
    content_type: str  # FORM or JSON (only used by POST)
    parameters: list[tuple[str, str]]  # form fields (POST form) or query parameters (GET)
    body: str = ""  # JSON text (POST json)


@dataclass(frozen=True)
class HttpResult:
    ok: bool
    status_code: int | None
    body: str
    parsed: Any | None  # the JSON object or array the body holds, else None
    content_type: str
    error: str
    elapsed_ms: float


class _Refused(Exception):
    """The call is not made: the message says why."""


class _DeadlinePassed(Exception):
    """The body was still arriving when the call's total time ran out."""


# ---------------------------------------------------------------- the allow-list


def host_allowed(url: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether `url` is an http(s) URL without userinfo whose host (and port) is allowed."""
    try:
        _checked_url(url, allowed_hosts)
    except _Refused:
        return False
    return True


def _checked_url(url: str, allowed_hosts: Iterable[str]) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise _Refused(f"The URL {url!r} is not valid: {error}.") from error
    if parsed.scheme not in DEFAULT_PORTS or not parsed.host:
        raise _Refused(f"The URL {url!r} must start with http:// or https:// and name a host.")
    if parsed.userinfo:
        raise _Refused("The URL must not contain a user name or password.")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    if not any(_entry_matches(entry, parsed, port) for entry in allowed_hosts):
        shown = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        raise _Refused(f"The host {shown} is not on the flows' HTTP allow-list.")
    return parsed


def _entry_matches(entry: str, url: httpx.URL, port: int) -> bool:
    parsed = _parse_entry(entry)
    if parsed is None:
        return False
    pattern, entry_port = parsed
    # An entry without a port means the scheme's default port only, never "any port".
    if port != (entry_port or DEFAULT_PORTS[url.scheme]):
        return False
    # Both spellings of an internationalised name: the entry may be written either way.
    hosts = {url.host.rstrip("."), url.raw_host.decode("ascii").rstrip(".")}
    if pattern.startswith("*."):
        return any(host.endswith(pattern[1:]) for host in hosts)
    return pattern in hosts


def _parse_entry(entry: str) -> tuple[str, int | None] | None:
    """("host", port or None) from "host", "host:port", "*.host", "[v6]:port"; None if bad."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            return None
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:  # a plain name, or a bare IPv6 address
        host, port_text = entry, None
    host = host.rstrip(".")
    if not host or host == "*.":
        return None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


# ---------------------------------------------------------------- the call


def http_call(
    call: HttpCall,
    *,
    allowed_hosts: Iterable[str],
    timeout: float = 10.0,
    max_bytes: int = 65536,
    transport: httpx.BaseTransport | None = None,
) -> HttpResult:
    """Make the call and describe its outcome; never raises for network or HTTP problems.

    `timeout` bounds each phase (connect, write, each read) and the whole call is abandoned
    at the first body chunk after the deadline.
    """
    started = time.perf_counter()
    try:
        url, headers, content = _request_parts(call, allowed_hosts)
    except _Refused as refused:
        return _failure(str(refused), started)
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client,
            client.stream(call.method.upper(), url, headers=headers, content=content) as response,
        ):
            return _result(response, max_bytes=max_bytes, deadline=deadline, started=started)
    except (httpx.TimeoutException, _DeadlinePassed):
        return _failure(f"The request timed out after {timeout:g} s.", started)
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        return _failure(f"The request to {url.host} failed: {reason}.", started)


def _request_parts(
    call: HttpCall, allowed_hosts: Iterable[str]
) -> tuple[httpx.URL, dict[str, str], bytes | None]:
    """The URL, headers and body to send, or _Refused when nothing may be sent."""
    url = _checked_url(call.url, allowed_hosts)
    headers = {"User-Agent": USER_AGENT}
    method = call.method.upper()
    if method == "GET":
        return _with_query(url, call.parameters), headers, None
    if method != "POST":
        raise _Refused(f"The method {call.method!r} is not supported (GET or POST).")
    kind = call.content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        headers["Content-Type"] = call.content_type
        return url, headers, urlencode(call.parameters).encode()
    if kind == "application/json":
        try:
            json.loads(call.body or "")
        except ValueError as error:
            raise _Refused(f"The request body is not valid JSON: {error}.") from error
        headers["Content-Type"] = call.content_type
        return url, headers, (call.body or "").encode()
    raise _Refused(f"The content type {call.content_type!r} is not supported (form or JSON).")


def _with_query(url: httpx.URL, parameters: list[tuple[str, str]]) -> httpx.URL:
    # Appended, not merged by key: a repeated name in the URL or the parameters is kept.
    if not parameters:
        return url
    extra = urlencode(parameters).encode()
    return url.copy_with(query=url.query + b"&" + extra if url.query else extra)


def _result(
    response: httpx.Response, *, max_bytes: int, deadline: float, started: float
) -> HttpResult:
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    raw = _read_capped(response, max_bytes, deadline)
    if raw is None:
        # Nothing partial is kept: a truncated JSON body would mislead the flow.
        return _failure(
            f"The response is larger than {_size_text(max_bytes)}.",
            started,
            status_code=status,
            content_type=content_type,
        )
    body = raw.decode("utf-8", errors="replace")
    return HttpResult(
        ok=200 <= status < 300,
        status_code=status,
        body=body,
        parsed=_parsed(body),
        content_type=content_type,
        error=_status_error(response),
        elapsed_ms=_elapsed_ms(started),
    )


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes | None:
    """The body, or None as soon as it is known to exceed `max_bytes` (the rest is unread)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            return None
        if time.monotonic() > deadline:
            raise _DeadlinePassed
        chunks.append(chunk)
    return b"".join(chunks)


def _status_error(response: httpx.Response) -> str:
    status = response.status_code
    if 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        target = f" (to {location})" if location else ""
        return f"The server answered HTTP {status}, a redirect{target}; redirects are not followed."
    return f"The server answered HTTP {status}."


def _parsed(body: str) -> Any | None:
    """The JSON object or array in `body`: Studio exposes only those as `parsed`."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _failure(
    error: str,
    started: float,
    *,
    status_code: int | None = None,
    content_type: str = "",
) -> HttpResult:
    return HttpResult(
        ok=False,
        status_code=status_code,
        body="",
        parsed=None,
        content_type=content_type,
        error=error,
        elapsed_ms=_elapsed_ms(started),
    )


def _size_text(size: int) -> str:
    return f"{size // 1024} KB" if size % 1024 == 0 else f"{size} bytes"


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
