"""What a runtime answers for one invocation, read off the Runtime API and passed on.

- streamed (`Lambda-Runtime-Function-Response-Mode: streaming`): prelude JSON up to 8 NUL
  bytes within the first 16 KB, then the body, each piece written to the invocation's sink the
  moment it is received; `Lambda-Runtime-Function-Error-Type`/`-Body` trailers fail it;
- buffered: a Lambda proxy response (`statusCode`, headers, `body`, `isBase64Encoded`);
- `/error` and `/init/error` documents.
(docs: lambda/latest/dg/runtimes-custom.html "Implementing response streaming",
apigateway response-streaming-lambda-configure.html.)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any, Protocol

from emulator.http11 import BodyTooLarge, Headers, ServerConnection
from emulator.invocation import Invocation

DELIMITER = b"\x00" * 8
PRELUDE_LIMIT = 16 * 1024
MAX_BUFFERED_RESPONSE = 6_291_556  # Lambda's synchronous payload limit, bytes
MAX_STREAMED_RESPONSE = 200 * 1024 * 1024
ERROR_TYPE_TRAILER = "lambda-runtime-function-error-type"
ERROR_BODY_TRAILER = "lambda-runtime-function-error-body"


class Complete(Protocol):
    """Ends an invocation once (RuntimeApi._complete): False if it had already ended."""

    def __call__(
        self,
        inv: Invocation,
        *,
        error: dict[str, Any] | None = None,
        status: int = 502,
        done_at: float | None = None,
    ) -> bool: ...


def read_streamed(ex: ServerConnection, inv: Invocation, complete: Complete) -> None:
    """Parse the prelude, then forward each body chunk the moment it is received."""
    trailers: Headers = []
    pieces = ex.relay_body(trailers)
    started = _read_prelude(ex, inv, pieces, complete)
    for piece in pieces:  # the body, or what is left of a failed response
        if started:
            inv.bytes += len(piece)
            _forward(inv, piece, ex.last_recv_at, complete)
    done_at = ex.last_recv_at
    fields = dict(trailers)  # names lower-cased
    if ERROR_TYPE_TRAILER in fields:
        error = _decode_error_body(fields.get(ERROR_BODY_TRAILER, ""))
        error.setdefault("errorType", fields[ERROR_TYPE_TRAILER])
        error["trailerErrorType"] = fields[ERROR_TYPE_TRAILER]
        complete(inv, error=error, status=502, done_at=done_at)
    elif started is None:
        _invalid_prelude(inv, "the stream ended before the 8-byte NUL delimiter", complete)
    else:
        complete(inv, done_at=done_at)


def _read_prelude(
    ex: ServerConnection, inv: Invocation, pieces: Iterator[memoryview], complete: Complete
) -> bool | None:
    """Read through the delimiter and start the client's response with the prelude (and the
    bytes after it). True if it started; False if the invocation failed; None if the body
    ended first."""
    buf = bytearray()
    for piece in pieces:
        if inv.finished:
            return False  # it timed out while the runtime was still writing its prelude
        before = len(buf)
        buf += piece[: PRELUDE_LIMIT + len(DELIMITER) - before]
        idx = buf.find(DELIMITER, max(0, before - len(DELIMITER) + 1))
        if idx >= 0:
            inv.prelude_at = ex.last_recv_at
            rest = piece[idx + len(DELIMITER) - before :]
            return _start_body(inv, bytes(buf[:idx]), rest, ex.last_recv_at, complete)
        if len(buf) >= PRELUDE_LIMIT + len(DELIMITER):
            _invalid_prelude(inv, "no 8-byte NUL delimiter within the first 16 KB", complete)
            return False
    return None


def _start_body(
    inv: Invocation, raw_prelude: bytes, first: memoryview, arrived: float, complete: Complete
) -> bool:
    """Send status and headers (with the first body bytes); False if the prelude is bad."""
    prelude = _parse_prelude(raw_prelude)
    if isinstance(prelude, str):
        _invalid_prelude(inv, prelude, complete)
        return False
    inv.prelude = prelude
    if first:
        inv.first_body_byte_at = arrived
    inv.bytes = len(first)
    try:
        inv.sink.start(prelude, first)
    except ValueError as exc:
        inv.first_body_byte_at = None
        _invalid_prelude(inv, str(exc), complete)
        return False
    return True


def _forward(inv: Invocation, piece: memoryview, arrived: float, complete: Complete) -> None:
    if inv.finished:
        return
    if inv.first_body_byte_at is None:
        inv.first_body_byte_at = arrived
    if inv.bytes > MAX_STREAMED_RESPONSE:
        complete(inv, error=_too_large(MAX_STREAMED_RESPONSE))
        return
    inv.sink.write(piece)


def _invalid_prelude(inv: Invocation, reason: str, complete: Complete) -> None:
    complete(
        inv, error={"errorType": "Emulator.InvalidPrelude", "errorMessage": reason}, status=500
    )


def read_buffered(ex: ServerConnection, inv: Invocation, complete: Complete) -> bool:
    """A non-streaming response: Lambda proxy JSON. False if it was refused (too large)."""
    try:
        raw = ex.read_body(MAX_BUFFERED_RESPONSE)
    except BodyTooLarge:
        complete(inv, error=_too_large(MAX_BUFFERED_RESPONSE))
        message = f"Exceeded maximum allowed payload size ({MAX_BUFFERED_RESPONSE} bytes)."
        ex.reply_json(
            413, {"errorMessage": message, "errorType": "RequestEntityTooLarge"}, close=True
        )
        return False
    arrived = ex.last_recv_at
    inv.prelude_at = arrived
    parsed = _parse_proxy_response(raw)
    if isinstance(parsed, str):
        error = {"errorType": "Emulator.MalformedProxyResponse", "errorMessage": parsed}
        complete(inv, error=error, done_at=arrived)
        return True
    prelude, body = parsed
    inv.prelude = prelude
    if body:
        inv.first_body_byte_at = arrived
    try:
        inv.sink.start(prelude, body)
    except ValueError as exc:
        error = {"errorType": "Emulator.MalformedProxyResponse", "errorMessage": str(exc)}
        complete(inv, error=error, done_at=arrived)
        return True
    inv.bytes = len(body)
    complete(inv, done_at=arrived)
    return True


def read_error(ex: ServerConnection) -> dict[str, Any]:
    """An /error or /init/error body as a dict (raw text kept if it is not JSON)."""
    try:
        raw = ex.read_body(MAX_BUFFERED_RESPONSE)
    except BodyTooLarge:
        raw = b'{"errorMessage": "error body too large"}'
    error: Any
    try:
        error = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        error = {"errorMessage": raw.decode("utf-8", "replace")}
    result: dict[str, Any] = error if isinstance(error, dict) else {"errorMessage": error}
    error_type = ex.header(b"lambda-runtime-function-error-type")
    if error_type:
        result.setdefault("errorType", error_type)
    return result


def _too_large(limit: int) -> dict[str, Any]:
    return {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": f"The response is larger than {limit} bytes.",
    }


def _parse_prelude(raw: bytes) -> dict[str, Any] | str:
    """The prelude dict, or a sentence saying why it is not one."""
    try:
        prelude = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"the prelude before the NUL delimiter is not valid JSON ({exc})"
    if not isinstance(prelude, dict):
        return "the prelude must be a JSON object"
    return prelude


def _parse_proxy_response(raw: bytes) -> tuple[dict[str, Any], bytes] | str:
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        return f"the buffered response is not valid JSON ({exc})"
    if not isinstance(data, dict) or "statusCode" not in data:
        return "the buffered response is not a Lambda proxy response (no statusCode)"
    prelude = {
        k: data[k] for k in ("statusCode", "headers", "multiValueHeaders", "cookies") if k in data
    }
    body = data.get("body")
    if body is None:
        return prelude, b""
    if not isinstance(body, str):
        return "the buffered response's body must be a string"
    if data.get("isBase64Encoded"):
        try:
            return prelude, base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "the buffered response's body is not valid base64"
    return prelude, body.encode("utf-8")


def _decode_error_body(value: str) -> dict[str, Any]:
    decoded: Any
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {"errorMessage": value, "rawErrorBody": value}
    return decoded if isinstance(decoded, dict) else {"errorMessage": decoded}
