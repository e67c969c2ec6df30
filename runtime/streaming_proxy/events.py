"""API Gateway events (REST v1 proxy, HTTP API v2, Function URL) to upstream HTTP requests.

REST v1 and Function URL paths arrive percent-encoded as the client sent them and pass through
unchanged; HTTP API v2 ``rawPath`` arrives decoded and is escaped again. REST v1 query values
arrive decoded and are re-encoded, keeping repeated keys and their order.

Every field is checked for its JSON type and for text that cannot become HTTP bytes, and a
bad event gets a BadEvent naming the field and the rule it broke, never the field's content
(a token pasted in the wrong place must not reach the logs). The forwarding headers
X-Forwarded-Host and X-Forwarded-Proto are the runtime's: whatever the client sent is dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from streaming_proxy.errors import BadEvent, RequestError
from streaming_proxy.http11 import HOP_BY_HOP

# Content-Length is recomputed from the decoded body; X-Forwarded-Host and -Proto describe the
# request API Gateway received, so a client's are dropped.
_REQUEST_DROP = HOP_BY_HOP | {"content-length", "x-forwarded-host", "x-forwarded-proto"}
# A proxy has no business tunnelling (CONNECT) or reflecting requests (TRACE).
_REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})
_ALLOW = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_NAME_RULE = "letters, digits and !#$%&'*+-.^_`|~ only"
_MAX_METHOD = 20  # the longest registered HTTP method has 17 characters
# Longer header names are not quoted in errors even when valid: likely a pasted token.
_QUOTABLE_NAME = 40
# Control characters HTTP field values may not carry (horizontal tab is allowed).
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Characters that may appear literally in a path; '%' stays when the path is already encoded.
_PATH_SAFE_ENCODED = "/%:@!$&'()*+,;=-._~"
_PATH_SAFE_DECODED = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/:@!$'()*,;?"
# Headers that describe a request's body: requests the runtime makes on the caller's behalf
# (status polls, identity checks, the relay's own stream read) carry the caller's other ones.
_BODY_HEADERS = {b"content-length", b"content-type", b"content-encoding", b"accept-encoding"}


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    target: str  # path + query, ready for the request line
    path: str  # path only, for logs and routing rules
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def headers_without_body(self) -> list[tuple[bytes, bytes]]:
        """The caller's headers for a body-less request made on its behalf: LibreChat
        authenticates it like the caller, and bans clients without a browser User-Agent."""
        return [(k, v) for k, v in self.headers if k.lower() not in _BODY_HEADERS]


def from_invocation(
    body: bytes, trace_id: str | None, base_path: str, upstream_host: bytes
) -> UpstreamRequest:
    """Map an invocation's event (JSON bytes), passing Lambda's trace id on to the upstream."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise BadEvent("event is not valid JSON: its bytes are not UTF-8") from None
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise BadEvent(f"event is not valid JSON: {reason}") from None
    request = to_request(event, base_path, upstream_host)
    if trace_id and request.header(b"x-amzn-trace-id") is None:
        request.headers.append((b"X-Amzn-Trace-Id", trace_id.encode("latin-1", "replace")))
    return request


def to_request(event: Any, base_path: str, upstream_host: bytes) -> UpstreamRequest:
    """Map one event; raises BadEvent with a message naming what is wrong."""
    if not isinstance(event, dict):
        raise BadEvent("event is not a JSON object; expected an API Gateway proxy event")
    if event.get("version") == "2.0":
        return _from_v2(event, base_path, upstream_host)
    if "httpMethod" in event:
        return _from_v1(event, base_path, upstream_host)
    raise BadEvent(
        "event is not an API Gateway proxy event: it has neither httpMethod (REST v1) "
        "nor version 2.0 (HTTP API / Function URL)"
    )


def _from_v1(event: dict[str, Any], base_path: str, upstream_host: bytes) -> UpstreamRequest:
    method = _method(event.get("httpMethod"), "httpMethod")
    path = _text(event.get("path"), "path") or "/"
    path = _strip_base(_quote(path, "path", _PATH_SAFE_ENCODED), base_path)

    single_query = _single_pairs(event.get("queryStringParameters"), "queryStringParameters")
    multi_query = _multi_pairs(
        event.get("multiValueQueryStringParameters"), "multiValueQueryStringParameters"
    )
    pairs, query_field = (
        (multi_query, "multiValueQueryStringParameters")
        if multi_query
        else (single_query, "queryStringParameters")
    )
    try:
        query = "&".join(
            f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}" for k, v in pairs
        )
    except UnicodeEncodeError:
        raise _not_unicode(f"event field {query_field}") from None

    single_headers = _single_pairs(event.get("headers"), "headers")
    multi_headers = _multi_pairs(event.get("multiValueHeaders"), "multiValueHeaders")
    header_pairs, header_field = (
        (multi_headers, "multiValueHeaders") if multi_headers else (single_headers, "headers")
    )

    identity = _object(_object(event, "requestContext"), "identity", "requestContext.identity")
    source_ip = _source_ip(identity.get("sourceIp"), "requestContext.identity.sourceIp")
    body = _body(event)
    return _build(method, path, query, header_pairs, header_field, body, source_ip, upstream_host)


def _from_v2(event: dict[str, Any], base_path: str, upstream_host: bytes) -> UpstreamRequest:
    context = _object(event, "requestContext")
    http = _object(context, "http", "requestContext.http")
    if not http:
        raise BadEvent("version 2.0 event has no requestContext.http")
    method = _method(http.get("method"), "requestContext.http.method")
    raw_path = (
        _text(event.get("rawPath"), "rawPath")
        or _text(http.get("path"), "requestContext.http.path")
        or "/"
    )
    # Function URLs keep the client's encoding; HTTP API rawPath arrives decoded.
    domain = _text(context.get("domainName"), "requestContext.domainName") or ""
    safe = _PATH_SAFE_ENCODED if ".lambda-url." in domain else _PATH_SAFE_DECODED
    path = _strip_base(_quote(raw_path, "rawPath", safe), base_path)
    query = _text(event.get("rawQueryString"), "rawQueryString") or ""
    query = _quote(query, "rawQueryString", _PATH_SAFE_ENCODED + "?")

    header_pairs = _single_pairs(event.get("headers"), "headers")
    cookies = event.get("cookies")
    if cookies is not None:
        if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
            raise BadEvent("event field cookies must be a list of strings")
        cookie = "; ".join(c for c in cookies if c)
        if _BAD_VALUE.search(cookie):
            raise BadEvent("event field cookies has a control character in a cookie")
        _utf8(cookie, "event field cookies")  # the header's own check would name "cookie"
        if cookie:
            header_pairs.append(("cookie", cookie))
    body = _body(event)
    source_ip = _source_ip(http.get("sourceIp"), "requestContext.http.sourceIp")
    return _build(method, path, query, header_pairs, "headers", body, source_ip, upstream_host)


def _build(
    method: str,
    path: str,
    query: str,
    header_pairs: Iterable[tuple[str, str]],
    header_field: str,
    body: bytes,
    source_ip: str | None,
    upstream_host: bytes,
) -> UpstreamRequest:
    pairs = list(header_pairs)
    connection_tokens = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    drop = _REQUEST_DROP | connection_tokens
    headers: list[tuple[bytes, bytes]] = []
    present: set[str] = set()
    for index, (name, value) in enumerate(pairs):
        if not _TOKEN.match(name):
            raise BadEvent(
                f"event field {header_field} has a header name that is not a valid HTTP field "
                f"name (entry {index + 1}, {len(name)} characters; {_NAME_RULE})"
            )
        lower = name.lower()
        if lower in drop or (lower == "host" and "host" in present):
            continue
        if _BAD_VALUE.search(value):
            raise BadEvent(f"{_header(name, header_field)} has a control character in its value")
        present.add(lower)
        headers.append((name.encode("ascii"), _header_bytes(value.strip(), name, header_field)))
    host = next((v for k, v in headers if k.lower() == b"host"), None)
    if host is None:
        host = upstream_host
        headers.append((b"Host", host))
    if "x-forwarded-for" not in present and source_ip:
        headers.append((b"X-Forwarded-For", source_ip.encode("ascii", "replace")))
    # API Gateway REST endpoints and Function URLs accept HTTPS only.
    headers.append((b"X-Forwarded-Proto", b"https"))
    headers.append((b"X-Forwarded-Host", host))
    if body or method in {"POST", "PUT", "PATCH"}:
        headers.append((b"Content-Length", str(len(body)).encode()))
    target = f"{path}?{query}" if query else path
    return UpstreamRequest(method, target, path, headers, body)


def _header_bytes(value: str, name: str, field: str) -> bytes:
    """HTTP field values are ISO-8859-1 octets; other characters travel as UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return _utf8(value, _header(name, field))


def _header(name: str, field: str) -> str:
    """A header for an error message: by name if short, a long one may be a pasted token."""
    if len(name) <= _QUOTABLE_NAME:
        return f"request header {name}"
    return f"a request header of event field {field} ({len(name)}-character name)"


def _utf8(value: str, label: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise _not_unicode(label) from None


def _not_unicode(label: str) -> BadEvent:
    """JSON may carry lone UTF-16 surrogates ("\\ud800"), which no encoding can send."""
    return BadEvent(f"{label} is not valid Unicode text (it holds a lone UTF-16 surrogate)")


def _quote(value: str, field: str, safe: str) -> str:
    try:
        return quote(value, safe=safe)  # UTF-8, strict
    except UnicodeEncodeError:
        raise _not_unicode(f"event field {field}") from None


def _method(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise BadEvent(f"event field {field} must be a string (an HTTP method such as GET)")
    if len(value) > _MAX_METHOD or not _TOKEN.match(value):
        raise BadEvent(
            f"event field {field} is not a valid HTTP method ({len(value)} characters; "
            f"at most {_MAX_METHOD}, {_NAME_RULE})"
        )
    method = value.upper()
    if method in _REFUSED_METHODS:
        raise RequestError(
            405,
            f"the runtime does not forward {method} requests",
            headers=((b"Allow", _ALLOW),),
        )
    return method


def _text(value: object, field: str) -> str | None:
    """An optional string field: null and absent are None."""
    if value is None or isinstance(value, str):
        return value
    raise BadEvent(f"event field {field} must be a string")


def _source_ip(value: object, field: str) -> str | None:
    text = _text(value, field)
    if text and _BAD_VALUE.search(text):
        raise BadEvent(f"event field {field} has a control character")
    return text


def _object(parent: dict[str, Any], key: str, field: str | None = None) -> dict[str, Any]:
    """An optional object field: null and absent are empty."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadEvent(f"event field {field or key} must be an object")
    return value


def _strip_base(path: str, base_path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        path = path[len(base_path) :] or "/"
    return path


def _multi_pairs(value: object, field: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise BadEvent(f"event field {field} must be an object of lists of strings")
    pairs: list[tuple[str, str]] = []
    for index, (name, raw) in enumerate(value.items()):
        if isinstance(raw, str):
            pairs.append((name, raw))
            continue
        for item in raw if isinstance(raw, list) else (None,):
            if not isinstance(item, str):
                raise BadEvent(
                    f"event field {field} must be an object of lists of strings "
                    f"(entry {index + 1} is not)"
                )
            pairs.append((name, item))
    return pairs


def _single_pairs(value: object, field: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
        for _, item in pairs:
            if not isinstance(item, str):
                break
        else:
            return pairs
    raise BadEvent(f"event field {field} must be an object of strings")


def _body(event: dict[str, Any]) -> bytes:
    encoded = event.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise BadEvent("event field isBase64Encoded must be true or false (a JSON boolean)")
    body = _text(event.get("body"), "body")
    if not body:
        return b""
    if encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadEvent(
                f"event body is marked isBase64Encoded but is not valid base64: {exc}"
            ) from None
    return _utf8(body, "event field body")
