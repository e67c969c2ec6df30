"""API Gateway events (REST v1 proxy, HTTP API v2, Function URL) to upstream HTTP requests.

REST v1 and Function URL paths arrive percent-encoded as the client sent them and pass through
unchanged; HTTP API v2 ``rawPath`` arrives decoded and is escaped again. REST v1 query values
arrive decoded and are re-encoded, keeping repeated keys and their order.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from streaming_proxy.errors import BadEvent

# Connection-level headers a proxy must not forward (RFC 9110 §7.6.1), plus Content-Length,
# which is recomputed from the decoded body.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_REQUEST_DROP = HOP_BY_HOP | {"content-length"}
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Control characters HTTP field values may not carry (horizontal tab is allowed).
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Characters that may appear literally in a path; '%' stays when the path is already encoded.
_PATH_SAFE_ENCODED = "/%:@!$&'()*+,;=-._~"
_PATH_SAFE_DECODED = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/:@!$'()*,;?"


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
    method = _method(event.get("httpMethod"))
    path = _string(event.get("path") or "/", "path")
    path = _strip_base(quote(path, safe=_PATH_SAFE_ENCODED), base_path)

    multi_query = event.get("multiValueQueryStringParameters")
    if multi_query:
        pairs = _multi_pairs(multi_query, "multiValueQueryStringParameters")
    else:
        pairs = _single_pairs(event.get("queryStringParameters"), "queryStringParameters")
    query = "&".join(f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}" for k, v in pairs)

    multi_headers = event.get("multiValueHeaders")
    if multi_headers:
        header_pairs = _multi_pairs(multi_headers, "multiValueHeaders")
    else:
        header_pairs = _single_pairs(event.get("headers"), "headers")

    context = event.get("requestContext") or {}
    identity = context.get("identity") if isinstance(context, dict) else None
    source_ip = identity.get("sourceIp") if isinstance(identity, dict) else None
    body = _body(event)
    return _build(method, path, query, header_pairs, body, source_ip, upstream_host)


def _from_v2(event: dict[str, Any], base_path: str, upstream_host: bytes) -> UpstreamRequest:
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    if not isinstance(http, dict):
        raise BadEvent("version 2.0 event has no requestContext.http")
    method = _method(http.get("method"))
    raw_path = _string(event.get("rawPath") or http.get("path") or "/", "rawPath")
    # Function URLs keep the client's encoding; HTTP API rawPath arrives decoded.
    domain = str(context.get("domainName") or "")
    safe = _PATH_SAFE_ENCODED if ".lambda-url." in domain else _PATH_SAFE_DECODED
    path = _strip_base(quote(raw_path, safe=safe), base_path)
    query = _string(event.get("rawQueryString") or "", "rawQueryString")
    query = quote(query, safe=_PATH_SAFE_ENCODED + "?")

    header_pairs = _single_pairs(event.get("headers"), "headers")
    cookies = event.get("cookies")
    if cookies:
        if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
            raise BadEvent("cookies must be a list of strings")
        header_pairs.append(("cookie", "; ".join(cookies)))
    body = _body(event)
    return _build(method, path, query, header_pairs, body, http.get("sourceIp"), upstream_host)


def _build(
    method: str,
    path: str,
    query: str,
    header_pairs: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: object,
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
    for name, value in pairs:
        lower = name.lower()
        if lower in drop or (lower == "host" and "host" in present):
            continue
        if not _TOKEN.match(name):
            raise BadEvent(f"request header name {name[:64]!r} is not a valid HTTP field name")
        if _BAD_VALUE.search(value):
            raise BadEvent(f"request header {name} has a control character in its value")
        present.add(lower)
        headers.append((name.encode("ascii"), _header_bytes(value.strip())))
    host = next((v for k, v in headers if k.lower() == b"host"), None)
    if host is None:
        host = upstream_host
        headers.append((b"Host", host))
    if "x-forwarded-for" not in present and isinstance(source_ip, str) and source_ip:
        headers.append((b"X-Forwarded-For", source_ip.encode("ascii", "replace")))
    if "x-forwarded-proto" not in present:
        headers.append((b"X-Forwarded-Proto", b"https"))
    if "x-forwarded-host" not in present:
        headers.append((b"X-Forwarded-Host", host))
    if body or method in {"POST", "PUT", "PATCH"}:
        headers.append((b"Content-Length", str(len(body)).encode()))
    target = f"{path}?{query}" if query else path
    return UpstreamRequest(method, target, path, headers, body)


def _header_bytes(value: str) -> bytes:
    """HTTP field values are ISO-8859-1 octets; other characters travel as UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def _method(value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise BadEvent(f"event has no valid HTTP method (got {value!r})")
    return value.upper()


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise BadEvent(f"event field {field} must be a string")
    return value


def _strip_base(path: str, base_path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        path = path[len(base_path) :] or "/"
    return path


def _multi_pairs(value: object, field: str) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        raise BadEvent(f"event field {field} must be an object of lists")
    pairs: list[tuple[str, str]] = []
    for name, raw in value.items():
        values = [raw] if isinstance(raw, str) else raw
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadEvent(f"event field {field}[{name!r}] must be a list of strings")
        pairs.extend((name, v) for v in values)
    return pairs


def _single_pairs(value: object, field: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadEvent(f"event field {field} must be an object of strings")
    return list(value.items())


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        return b""
    if not isinstance(body, str):
        raise BadEvent("event field body must be a string or null")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadEvent(
                f"event body is marked isBase64Encoded but is not valid base64: {exc}"
            ) from None
    return body.encode("utf-8", "surrogateescape")
