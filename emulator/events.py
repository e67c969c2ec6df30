"""Lambda events for one HTTP request, as the AWS front doors build them.

- `build_rest_event`: API Gateway REST API (payload 1.0) proxy event for a `{proxy+}`
  resource + root with binaryMediaTypes ["*/*"]: `path` raw (still percent-encoded, design.md
  §3), query values percent-decoded with '+' kept literal (micronaut-projects/micronaut-aws#1407),
  repeated headers and query keys in the multi-value maps, every non-empty body base64.
- `build_function_url_event`: Lambda Function URL (payload 2.0) event: `rawPath` as sent,
  lower-cased headers with repeated values joined by commas, `Cookie` moved to `cookies`,
  text bodies as text and other bodies base64.
"""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "trailer",
    }
)
ACCOUNT_ID = "123456789012"
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "+json",
    "+xml",
)


def parse_query(query: str | None) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """REST v1 query maps: percent-escapes decoded, '+' kept, repeated keys in order."""
    if not query:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for item in query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        key, value = unquote(key, errors="replace"), unquote(value, errors="replace")
        single[key] = value
        multi.setdefault(key, []).append(value)
    if not multi:
        return None, None
    return single, multi


def build_rest_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str,
    stage: str = "local",
    strip_stage: bool = False,
    api_id: str = "localapi01",
    forwarded_proto: str = "http",
    forwarded_port: int = 80,
    now: float | None = None,
) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event for one HTTP request."""
    now = time.time() if now is None else now
    request_path, query = _split_target(target)
    path = request_path
    if strip_stage:
        path = request_path[len(stage) + 1 :] or "/"

    grouped: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for name, value in headers:
        if name.lower() in HOP_BY_HOP:
            continue
        key = names.setdefault(name.lower(), name)
        grouped.setdefault(key, []).append(value)
    xff = names.get("x-forwarded-for")
    if xff:
        grouped[xff] = [", ".join([*grouped[xff], source_ip])]
    else:
        grouped["X-Forwarded-For"] = [source_ip]
    for lower, canonical, value in (
        ("x-forwarded-proto", "X-Forwarded-Proto", forwarded_proto),
        ("x-forwarded-port", "X-Forwarded-Port", str(forwarded_port)),
    ):
        grouped[names.get(lower, canonical)] = [value]
    if "x-amzn-trace-id" not in names:
        grouped["X-Amzn-Trace-Id"] = [f"Root=1-{int(now):08x}-{os.urandom(12).hex()}"]
    single_headers = {k: v[-1] for k, v in grouped.items()}
    host = next((v[-1] for k, v in grouped.items() if k.lower() == "host"), "localhost")
    user_agent = next((v[-1] for k, v in grouped.items() if k.lower() == "user-agent"), None)

    query_single, query_multi = parse_query(query)
    is_root = path == "/"
    resource = "/" if is_root else "/{proxy+}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": grouped,
        "queryStringParameters": query_single,
        "multiValueQueryStringParameters": query_multi,
        "pathParameters": None if is_root else {"proxy": unquote(path[1:], errors="replace")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "root0" if is_root else "proxy0",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(os.urandom(6)).decode() + "=",
            "requestTime": _request_time(now),
            "path": request_path,
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": host.split(":", 1)[0],
            "deploymentId": "localdeploy",
            "apiId": api_id,
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }


def _request_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _split_target(target: str) -> tuple[str, str]:
    """Raw path and raw query of a request target (origin- or absolute-form)."""
    raw_path, _, query = target.partition("?")
    if raw_path.startswith(("http://", "https://")):
        parts = raw_path.split("/", 3)
        raw_path = "/" + parts[3] if len(parts) == 4 else "/"
    return raw_path or "/", query


def build_function_url_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str,
    url_id: str = "localfunctionurl0000000000000000",
    region: str = "us-east-1",
    forwarded_proto: str = "http",
    forwarded_port: int = 80,
    now: float | None = None,
) -> dict[str, Any]:
    """The Lambda Function URL (payload 2.0) event for one HTTP request (shape: the
    lambda-urls-request.json sample of aws/aws-lambda-go and the Lambda docs)."""
    now = time.time() if now is None else now
    raw_path, query = _split_target(target)
    merged: dict[str, list[str]] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            continue
        if lower == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged.setdefault(lower, []).append(value)
    merged["x-forwarded-for"] = [", ".join([*merged.get("x-forwarded-for", []), source_ip])]
    merged["x-forwarded-proto"] = [forwarded_proto]
    merged["x-forwarded-port"] = [str(forwarded_port)]
    merged.setdefault("x-amzn-trace-id", [f"Root=1-{int(now):08x}-{os.urandom(12).hex()}"])
    _, multi_query = parse_query(query)
    content_type = merged.get("content-type", [""])[-1].lower()
    is_text = any(t in content_type for t in TEXT_TYPES)
    text_body: str | None = None
    if body and is_text:
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body = None
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {k: ",".join(v) for k, v in merged.items()},
        "queryStringParameters": (
            {k: ",".join(v) for k, v in multi_query.items()} if multi_query else None
        ),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": f"{url_id}.lambda-url.{region}.on.aws",
            "domainPrefix": url_id,
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", [None])[-1],
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": _request_time(now),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(body) and text_body is None,
    }
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = text_body if text_body is not None else base64.b64encode(body).decode()
    return event
