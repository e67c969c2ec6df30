"""A bounded property-based fuzz of the event mapping, through the real runtime process.

Events of both payload versions with wrong JSON types in every field, huge header counts and
values, separators and CR/LF/NUL in header names, `..`, `//` and `%00` in paths, lone
surrogates and odd v2 cookies go to the runtime through the Runtime API. The upstream is
strict (tests/runtime/strict_upstream.py): it records every request that is not well-formed
HTTP/1.1. The properties: the runtime answers every event, with the upstream's 200 or its
own 400/405/502 JSON error, never a 500; the upstream never receives malformed bytes; and
the runtime still serves a normal request afterwards.
"""

from __future__ import annotations

import base64
import json
import socket
import string
import sys

import hypothesis
import pytest
from conftest import HERE, runtime_env
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emulator import LocalStack

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)

EXAMPLES = 250  # each is one invocation of the real runtime: a few ms

ODD = [
    "", " ", ".", "..", "//", "%00", "%2F", "%2e%2e", "%", "%zz", "?", "#", "\x00", "\r",
    "\n", "\r\n", "\t", "\x0b", "\x7f", ";", ",", "=", ":", '"', "\\", "é", "☕",
    "\ud800", "\udfff", "\udc80", "a" * 300,
]  # fmt: skip
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Printable text of any script, what well-formed requests carry; and text that is not.
clean_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=16)
odd_text = st.lists(st.one_of(st.sampled_from(ODD), st.text(max_size=6)), max_size=5).map("".join)
text = st.one_of(clean_text, clean_text, clean_text, odd_text)
json_any = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=6,
)

method = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get"]),
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get"]),
    st.sampled_from(["CONNECT", "TRACE", "PROPFIND", "G ET", "GET\r\n"]),
    odd_text,
)
segment = st.one_of(
    st.sampled_from(["..", ".", "", "%00", "%2F", "%2e%2e", "a b", "é", "\ud800", "?x=1", "#f"]),
    st.sampled_from(["%", "%zz", "\x00", "\r\n", "echo", "api"]),
    text,
)
path = st.lists(segment, max_size=6).map(lambda parts: "/".join(["", *parts]))
NAMES = [
    "Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "TE",
    "Cookie", "Authorization", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For",
    "Bad Name", "Bad:Name", "Bad\r\nName", "Bad\x00Name", "", "(x)",
]  # fmt: skip
header_name = st.one_of(
    st.sampled_from(NAMES), st.text(alphabet=TOKEN, min_size=1, max_size=12), odd_text
)
single_map = st.dictionaries(header_name, text, max_size=6)
multi_map = st.dictionaries(header_name, st.lists(text, max_size=3) | text, max_size=6)
query_map = st.dictionaries(text, text, max_size=4)
multi_query_map = st.dictionaries(text, st.lists(text, max_size=3), max_size=4)
body = st.one_of(
    st.none(), text, st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
)
source_ip = st.one_of(st.ip_addresses().map(str), odd_text)
cookie = st.sampled_from(["a=1", "", ";", "a=1; b=2", "=", "a", "\r\n", "\x00", "\ud800"])
cookies = st.lists(st.one_of(cookie, text), max_size=5)

v1_event = st.fixed_dictionaries(
    {"httpMethod": method},
    optional={
        "path": path,
        "headers": single_map,
        "multiValueHeaders": multi_map,
        "queryStringParameters": query_map,
        "multiValueQueryStringParameters": multi_query_map,
        "body": body,
        "isBase64Encoded": st.booleans(),
        "requestContext": st.fixed_dictionaries(
            {}, optional={"identity": st.fixed_dictionaries({}, optional={"sourceIp": source_ip})}
        ),
    },
)
v2_event = st.fixed_dictionaries(
    {
        "version": st.just("2.0"),
        "requestContext": st.fixed_dictionaries(
            {
                "http": st.fixed_dictionaries(
                    {"method": method}, optional={"path": path, "sourceIp": source_ip}
                )
            },
            optional={
                "domainName": st.sampled_from(
                    ["abc.lambda-url.eu-west-1.on.aws", "x.execute-api.example.com"]
                )
            },
        ),
    },
    optional={
        "rawPath": path,
        "rawQueryString": text,
        "headers": single_map,
        "cookies": cookies,
        "body": body,
        "isBase64Encoded": st.booleans(),
    },
)
# Every field the runtime reads, by version: one of them may get a value of any JSON type.
FIELDS = {
    "1.0": [
        ("httpMethod",), ("path",), ("headers",), ("multiValueHeaders",),
        ("queryStringParameters",), ("multiValueQueryStringParameters",), ("body",),
        ("isBase64Encoded",), ("requestContext",), ("requestContext", "identity"),
        ("requestContext", "identity", "sourceIp"),
    ],
    "2.0": [
        ("requestContext",), ("requestContext", "http"), ("requestContext", "http", "method"),
        ("requestContext", "http", "path"), ("requestContext", "http", "sourceIp"),
        ("requestContext", "domainName"), ("rawPath",), ("rawQueryString",), ("headers",),
        ("cookies",), ("body",), ("isBase64Encoded",),
    ],
}  # fmt: skip


@st.composite
def events(draw: st.DrawFn) -> dict:
    """A right-typed event, half the time with one field of a wrong (any) JSON type, and
    sometimes with many small or a few huge headers."""
    event = draw(st.one_of(v1_event, v2_event))
    if draw(st.booleans()):
        field = draw(st.sampled_from(FIELDS[event.get("version", "1.0")]))
        container = event
        for key in field[:-1]:
            container = container.setdefault(key, {})
        container[field[-1]] = draw(json_any)
    count, size = draw(
        st.sampled_from([(0, 0), (0, 0), (0, 0)])
        | st.tuples(st.integers(100, 3000), st.integers(1, 16))
        | st.tuples(st.integers(1, 3), st.integers(10_000, 300_000))
    )
    key = "headers" if "version" in event else "multiValueHeaders"
    if count and isinstance(event.get(key, {}), dict):
        bulk = {f"X-Bulk-{i}": "v" * size for i in range(count)}
        event[key] = {**event.get(key, {}), **bulk}
    return event


@pytest.fixture(scope="module")
def strict_stack(tmp_path_factory):
    """The runtime in front of the strict upstream; not frozen, so the oracle test can reach
    the upstream directly."""
    violations = tmp_path_factory.mktemp("fuzz") / "violations.jsonl"
    violations.touch()
    env = runtime_env(
        UPSTREAM_COMMAND=f"{sys.executable} {HERE / 'strict_upstream.py'}",
        VIOLATIONS=str(violations),
    )
    stack = LocalStack(env=env, function_timeout=20, freeze=False)
    with stack.start(init_timeout=30):
        assert stack.init_error is None
        yield stack, violations, int(env["UPSTREAM_PORT"])


def test_the_strict_upstream_records_malformed_requests(strict_stack):
    """The oracle can fail: bytes the runtime must never send are caught."""
    _, violations, port = strict_stack
    malformed = [
        b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",  # h11 refuses it
        b"GET http://x/ HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: x\r\n"
        b"X-Forwarded-Proto: https\r\n\r\n",  # h11 lets it through
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http\r\n\r\n",
    ]
    for request in malformed:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
    found = [json.loads(line) for line in violations.read_text().splitlines()]
    violations.write_text("")
    assert len(found) == 3
    assert "h11 rejected" in found[0][0]
    assert "not printable ASCII from" in found[1][0]
    assert "X-Forwarded-Proto is [b'http']" in found[2]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(event=events())
@example(event={"httpMethod": "GET", "headers": {f"X-H-{i}": "v" for i in range(5000)}})
@example(event={"httpMethod": "GET", "headers": {"X-Huge": "v" * 1_000_000}})
@example(event={"httpMethod": "GET", "path": "/a/../b//%00/%2e%2e/", "headers": {"Host": "h"}})
@example(
    event={
        "version": "2.0",
        "requestContext": {"http": {"method": "GET"}},
        "cookies": ["", ";", "a=1; b=2", "=", "é=☕"],
    }
)
def test_hostile_events_get_clean_answers_and_never_reach_the_upstream_malformed(
    strict_stack, event
):
    stack, violations, _ = strict_stack
    result = stack.invoke(event)
    assert result.error is None
    assert result.prelude is not None
    status = result.prelude["statusCode"]
    hypothesis.event(f"status {status}")  # --hypothesis-show-statistics: how many got through
    if status == 200:
        http = event["requestContext"]["http"] if "version" in event else event
        head = http.get("httpMethod", http.get("method")).upper() == "HEAD"
        assert result.body == (b"" if head else b'{"ok": true}')
    else:
        assert status in (400, 405, 502), result.body[:300]
        assert isinstance(json.loads(result.body)["message"], str)
    assert violations.read_text() == ""


def test_the_runtime_serves_normally_after_the_fuzz(strict_stack):
    stack, violations, _ = strict_stack
    event = {"httpMethod": "GET", "path": "/", "headers": {"Host": "chat.example.com"}}
    assert stack.invoke(event).prelude["statusCode"] == 200
    assert violations.read_text() == ""
