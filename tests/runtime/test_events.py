"""Event mapping: what reaches the upstream for each shape of API Gateway event."""

from __future__ import annotations

import base64

import pytest
from streaming_proxy.errors import BadEvent
from streaming_proxy.events import to_request
from streaming_proxy.proxy import prelude

HOST = b"127.0.0.1:3080"


def v1(**overrides: object) -> dict:
    event: dict = {
        "resource": "/{proxy+}",
        "path": "/api/convos",
        "httpMethod": "GET",
        "headers": {"Host": "chat.example.com"},
        "multiValueHeaders": {"Host": ["chat.example.com"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {"identity": {"sourceIp": "203.0.113.9"}},
    }
    event.update(overrides)
    return event


def header_values(request, name: bytes) -> list[bytes]:
    return [v for k, v in request.headers if k.lower() == name]


def test_v1_path_stays_percent_encoded_as_sent():
    request = to_request(v1(path="/api/files/a%2Fb%20c"), "", HOST)
    assert request.target == "/api/files/a%2Fb%20c"


def test_v1_repeated_query_keys_are_kept_in_order_and_reencoded():
    event = v1(
        queryStringParameters={"tag": "b", "q": "a+b c"},
        multiValueQueryStringParameters={"tag": ["a", "b"], "q": ["a+b c"]},
    )
    assert to_request(event, "", HOST).target == "/api/convos?tag=a&tag=b&q=a%2Bb%20c"


def test_v1_single_value_query_is_used_without_multi_value_map():
    event = v1(queryStringParameters={"x": "1"}, multiValueQueryStringParameters=None)
    assert to_request(event, "", HOST).target == "/api/convos?x=1"


def test_v1_repeated_headers_are_kept_and_host_is_kept_as_sent():
    event = v1(multiValueHeaders={"Host": ["chat.example.com"], "Accept": ["a/b", "c/d"]})
    request = to_request(event, "", HOST)
    assert header_values(request, b"accept") == [b"a/b", b"c/d"]
    assert header_values(request, b"host") == [b"chat.example.com"]


def test_forwarded_headers_are_added_when_missing():
    request = to_request(v1(), "", HOST)
    assert header_values(request, b"x-forwarded-for") == [b"203.0.113.9"]
    assert header_values(request, b"x-forwarded-proto") == [b"https"]
    assert header_values(request, b"x-forwarded-host") == [b"chat.example.com"]


def test_forwarded_headers_from_the_gateway_are_not_duplicated():
    headers = {"Host": ["h"], "X-Forwarded-For": ["1.2.3.4"], "X-Forwarded-Proto": ["https"]}
    request = to_request(v1(multiValueHeaders=headers), "", HOST)
    assert header_values(request, b"x-forwarded-for") == [b"1.2.3.4"]
    assert len(header_values(request, b"x-forwarded-proto")) == 1


def test_hop_by_hop_and_connection_named_headers_are_dropped():
    headers = {
        "Host": ["h"],
        "Connection": ["keep-alive, X-Private"],
        "X-Private": ["x"],
        "Keep-Alive": ["5"],
        "Transfer-Encoding": ["chunked"],
        "Upgrade": ["h2c"],
        "Content-Length": ["999"],
        "X-Kept": ["yes"],
    }
    request = to_request(v1(multiValueHeaders=headers, httpMethod="POST", body="abc"), "", HOST)
    names = {k.lower() for k, _ in request.headers}
    assert names.isdisjoint(
        {b"connection", b"x-private", b"keep-alive", b"transfer-encoding", b"upgrade"}
    )
    assert header_values(request, b"content-length") == [b"3"]
    assert header_values(request, b"x-kept") == [b"yes"]


def test_non_ascii_header_values_are_sent_not_rejected():
    event = v1(multiValueHeaders={"Host": ["h"], "X-Name": ["Jón"], "X-Emoji": ["☕"]})
    request = to_request(event, "", HOST)
    assert header_values(request, b"x-name") == [b"J\xf3n"]
    assert header_values(request, b"x-emoji") == ["☕".encode()]


def test_base64_body_is_decoded():
    payload = bytes(range(256))
    event = v1(httpMethod="POST", body=base64.b64encode(payload).decode(), isBase64Encoded=True)
    assert to_request(event, "", HOST).body == payload


def test_invalid_base64_body_is_a_bad_event():
    with pytest.raises(BadEvent, match="not valid base64"):
        to_request(v1(httpMethod="POST", body="%%%not-base64", isBase64Encoded=True), "", HOST)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([1, 2], "not a JSON object"),
        ({"foo": "bar"}, "not an API Gateway proxy event"),
        ({"httpMethod": "G ET", "path": "/"}, "no valid HTTP method"),
        ({"httpMethod": "GET", "path": "/", "multiValueHeaders": {"a": [1]}}, "multiValueHeaders"),
        ({"version": "2.0", "rawPath": "/"}, "requestContext.http"),
    ],
)
def test_malformed_events_name_the_problem(event, message):
    with pytest.raises(BadEvent, match=message):
        to_request(event, "", HOST)


def test_base_path_is_stripped_for_custom_domain_mappings():
    assert to_request(v1(path="/chat/api/convos"), "/chat", HOST).target == "/api/convos"
    assert to_request(v1(path="/chat"), "/chat", HOST).target == "/"
    assert to_request(v1(path="/chatter"), "/chat", HOST).target == "/chatter"


def test_missing_host_falls_back_to_upstream_address():
    request = to_request(v1(headers=None, multiValueHeaders=None), "", HOST)
    assert header_values(request, b"host") == [HOST]


def v2(**overrides: object) -> dict:
    event: dict = {
        "version": "2.0",
        "rawPath": "/api/a b",
        "rawQueryString": "x=1&x=2",
        "cookies": ["a=1", "b=2"],
        "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com", "accept": "a/b,c/d"},
        "requestContext": {
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "http": {"method": "PUT", "sourceIp": "198.51.100.1"},
        },
        "body": "hi",
        "isBase64Encoded": False,
    }
    event.update(overrides)
    return event


def test_v2_decoded_raw_path_is_escaped_and_cookies_become_one_header():
    request = to_request(v2(), "", HOST)
    assert request.method == "PUT"
    assert request.target == "/api/a%20b?x=1&x=2"
    assert header_values(request, b"cookie") == [b"a=1; b=2"]
    assert request.body == b"hi"


def test_function_url_path_keeps_its_encoding():
    event = v2(
        rawPath="/api/a%2Fb",
        requestContext={"domainName": "xyz.lambda-url.eu-west-1.on.aws", "http": {"method": "GET"}},
    )
    assert to_request(event, "", HOST).target == "/api/a%2Fb?x=1&x=2"


def test_prelude_puts_repeated_headers_and_every_set_cookie_in_multi_value_headers():
    import json

    doc = json.loads(
        prelude(
            200,
            [
                (b"Content-Type", b"text/html"),
                (b"Set-Cookie", b"a=1"),
                (b"Set-Cookie", b"b=2"),
                (b"Vary", b"a"),
                (b"Vary", b"b"),
                (b"Connection", b"keep-alive"),
                (b"Keep-Alive", b"timeout=5"),
                (b"Transfer-Encoding", b"chunked"),
            ],
        )
    )
    assert doc == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/html"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Vary": ["a", "b"]},
    }


def test_prelude_single_set_cookie_is_still_multi_value():
    import json

    doc = json.loads(prelude(302, [(b"Set-Cookie", b"s=1"), (b"Location", b"/x")]))
    assert doc["multiValueHeaders"] == {"Set-Cookie": ["s=1"]}
    assert doc["headers"] == {"Location": "/x"}


def test_control_characters_in_header_values_are_a_bad_event_naming_the_header():
    event = v1(multiValueHeaders={"Host": ["h"], "Authorization": ["Bearer TOP\x0bSECRET"]})
    with pytest.raises(BadEvent) as err:
        to_request(event, "", HOST)
    assert "Authorization" in err.value.message
    assert "SECRET" not in err.value.message


def test_only_the_first_host_header_is_sent():
    request = to_request(
        v1(multiValueHeaders={"Host": ["a.example.com", "b.example.com"]}), "", HOST
    )
    assert header_values(request, b"host") == [b"a.example.com"]


def test_keepalive_comments_only_go_into_uncompressed_event_streams():
    from streaming_proxy.proxy import is_plain_sse

    assert is_plain_sse([(b"Content-Type", b"text/event-stream; charset=utf-8")])
    assert not is_plain_sse(
        [(b"Content-Type", b"text/event-stream"), (b"Content-Encoding", b"gzip")]
    )
    assert not is_plain_sse([(b"Content-Type", b"application/json")])
