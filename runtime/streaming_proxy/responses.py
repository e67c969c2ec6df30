"""Upstream responses to what API Gateway's streaming integration takes (events.py's converse).

A response goes out as a JSON prelude (status and headers) and the body as it comes: the
prelude is checked here before anything is sent, so a response API Gateway would reject
becomes a clean 502 naming the problem instead of a broken stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from streaming_proxy.errors import RequestError
from streaming_proxy.http11 import HOP_BY_HOP

# API Gateway needs the 8 NUL delimiter within the first 16 KB of the stream.
MAX_PRELUDE = 16 * 1024 - 8

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Head:
    """How one response goes out: its prelude, and how its body is to be relayed."""

    prelude: bytes
    sized: bool  # the body's length is known up front (Content-Length, or no body at all)
    sse: bool  # an uncompressed event stream: keep-alive comments may be inserted


def head(method: str, status: int, headers: Headers) -> Head:
    """Map the upstream's response head; RequestError (502) if API Gateway could not take it."""
    if not 200 <= status <= 599:
        raise RequestError(
            502,
            f"the upstream answered with status {status}; an HTTP response needs "
            "a status from 200 to 599",
        )
    mapped = prelude(status, headers)
    if len(mapped) > MAX_PRELUDE:
        names = sorted({k.decode("latin-1").lower() for k, _ in headers})
        raise RequestError(
            502,
            f"the upstream's response headers need a {len(mapped)}-byte prelude; API Gateway "
            f"accepts at most {MAX_PRELUDE} (header names: {', '.join(names)})",
        )
    return Head(mapped, has_sized_body(method, status, headers), is_plain_sse(headers))


def error(
    status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[bytes, bytes]:
    """The runtime's own JSON error response: its prelude and its body."""
    body = json.dumps({"message": message}).encode()
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(body)).encode()),
        *extra,
    ]
    return prelude(status, headers), body


def has_sized_body(method: str, status: int, headers: Headers) -> bool:
    """Whether the body's length is known up front (Content-Length, or no body at all)."""
    if method == "HEAD" or status in (204, 304) or status < 200:
        return True
    sized = False
    for name, _ in headers:
        lower = name.lower()
        if lower == b"transfer-encoding":
            return False  # it wins over Content-Length (RFC 9112 6.3)
        sized = sized or lower == b"content-length"
    return sized


def is_plain_sse(headers: Headers) -> bool:
    """An uncompressed event stream: only there may keep-alive comments be inserted."""
    sse = encoded = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-type":
            sse = value.lower().startswith(b"text/event-stream")
        elif lower == b"content-encoding":
            encoded = value.strip().lower() not in {b"", b"identity"}
    return sse and not encoded


def prelude(status: int, headers: Headers) -> bytes:
    """The JSON prelude: repeated headers and every Set-Cookie in multiValueHeaders.

    Content-Length goes when Transfer-Encoding came too: the chunked framing is the one
    that was read (RFC 9112 6.3), and the client would stop at the stated length.
    """
    connection_tokens = {
        t.strip().lower()
        for k, v in headers
        if k.lower() == b"connection"
        for t in v.decode("latin-1").split(",")
    }
    grouped: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    chunked = False
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1")
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in connection_tokens:
            chunked = chunked or lower == "transfer-encoding"
            continue
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")
        names.setdefault(lower, name)
        grouped.setdefault(lower, []).append(value)
    if chunked:
        grouped.pop("content-length", None)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for lower, values in grouped.items():
        if len(values) > 1 or lower == "set-cookie":
            multi[names[lower]] = values
        else:
            single[names[lower]] = values[0]
    return json.dumps(
        {"statusCode": status, "headers": single, "multiValueHeaders": multi}, separators=(",", ":")
    ).encode()
