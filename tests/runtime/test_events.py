"""Event mapping: what reaches the upstream for each shape of API Gateway event."""

from __future__ import annotations

import base64

import pytest
from streaming_proxy.errors import BadEvent, RequestError
from streaming_proxy.events import to_request
from streaming_proxy.responses import prelude

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
        ({"httpMethod": "G ET", "path": "/"}, "not a valid HTTP method"),
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
    from streaming_proxy.responses import is_plain_sse

    assert is_plain_sse([(b"Content-Type", b"text/event-stream; charset=utf-8")])
    assert not is_plain_sse(
        [(b"Content-Type", b"text/event-stream"), (b"Content-Encoding", b"gzip")]
    )
    assert not is_plain_sse([(b"Content-Type", b"application/json")])


# -- hostile events (issue 7) -----------------------------------------------------------------

SECRET = "tok3n-do-not-log"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (v1(path="/a/\ud800"), "path"),
        (v1(multiValueQueryStringParameters={"q": ["\udfff"]}), "multiValueQueryStringParameters"),
        (v1(queryStringParameters={"\ud800": "x"}), "queryStringParameters"),
        (v1(multiValueHeaders={"Host": ["h"], "X-A": ["a\ud800"]}), "X-A"),
        (v1(headers={"Host": "h", "X-B": "\ud800"}, multiValueHeaders=None), "X-B"),
        (v1(httpMethod="POST", body="caf\ud800"), "body"),
        (v2(rawPath="/\ud800"), "rawPath"),
        (v2(rawQueryString="a=\ud800"), "rawQueryString"),
        (v2(cookies=["a=\udc80"]), "cookies"),
        (v2(body="\ud800"), "body"),
    ],
)
def test_lone_surrogates_are_a_bad_event_naming_the_field(event, field):
    with pytest.raises(BadEvent) as err:
        to_request(event, "", HOST)
    assert field in err.value.message


def test_client_forwarding_headers_are_replaced_by_what_the_gateway_received():
    headers = {
        "Host": ["chat.example.com"],
        "X-Forwarded-Host": ["evil.example"],
        "x-forwarded-proto": ["http"],
        "X-Forwarded-For": ["198.51.100.1, 203.0.113.9"],
    }
    request = to_request(v1(multiValueHeaders=headers), "", HOST)
    assert header_values(request, b"x-forwarded-host") == [b"chat.example.com"]
    assert header_values(request, b"x-forwarded-proto") == [b"https"]
    assert header_values(request, b"x-forwarded-for") == [b"198.51.100.1, 203.0.113.9"]


@pytest.mark.parametrize("flag", ["false", "true", 0, 1, None, [], {}])
def test_is_base64_encoded_must_be_a_json_boolean(flag):
    for event in (v1(httpMethod="POST", body="aGk="), v2(body="aGk=")):
        event["isBase64Encoded"] = flag
        with pytest.raises(BadEvent, match="isBase64Encoded"):
            to_request(event, "", HOST)


def test_a_missing_is_base64_encoded_means_a_text_body():
    event = v1(httpMethod="POST", body="aGk=")
    del event["isBase64Encoded"]
    assert to_request(event, "", HOST).body == b"aGk="


@pytest.mark.parametrize("method", ["CONNECT", "TRACE", "trace"])
def test_connect_and_trace_are_refused_before_anything_is_sent(method):
    for event in (v1(httpMethod=method), v2(requestContext={"http": {"method": method}})):
        with pytest.raises(RequestError) as err:
            to_request(event, "", HOST)
        assert err.value.status == 405
        assert dict(err.value.headers)[b"Allow"].startswith(b"GET")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (v1(httpMethod=f"Bearer {SECRET}"), "httpMethod"),
        (v1(httpMethod=SECRET * 10), "httpMethod"),
        (v1(multiValueHeaders={"Host": ["h"], f"Bearer {SECRET}": ["x"]}), "multiValueHeaders"),
        (v1(multiValueHeaders=None, headers={f"{SECRET}:": "x"}), "headers"),
        (v1(multiValueHeaders={"Host": ["h"], SECRET: [1]}), "multiValueHeaders"),
        (v1(multiValueQueryStringParameters={SECRET: {"a": 1}}), "multiValueQueryStringParameters"),
        (v2(requestContext={"http": {"method": f"{SECRET} x"}}), "method"),
        (v2(headers={f"{SECRET}\r\n": "x"}), "headers"),
    ],
)
def test_error_texts_name_the_field_never_its_content(event, field):
    with pytest.raises(BadEvent) as err:
        to_request(event, "", HOST)
    assert field in err.value.message
    assert SECRET not in err.value.message


def test_a_long_header_name_is_not_quoted_even_when_valid():
    # A token pasted as a header name is a valid name; its bad value must not quote it.
    event = v1(multiValueHeaders={"Host": ["h"], "eyJhbGciOi" + SECRET * 4: ["a\x00b"]})
    with pytest.raises(BadEvent) as err:
        to_request(event, "", HOST)
    assert SECRET not in err.value.message
    assert "multiValueHeaders" in err.value.message


WRONG = [0, 1.5, True, "text", [], ["a"], {"a": 1}]
V1_FIELDS = [
    "httpMethod",
    "path",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
    "requestContext",
]
ACCEPTS = {
    "path": (str,),
    "body": (str,),
    "isBase64Encoded": (bool,),
    "httpMethod": (),
    "requestContext": (dict,),
}


@pytest.mark.parametrize("field", V1_FIELDS)
@pytest.mark.parametrize("value", WRONG, ids=repr)
def test_v1_fields_of_the_wrong_json_type_are_bad_events_naming_them(field, value):
    if isinstance(value, ACCEPTS.get(field, ())):
        return  # a right type, just not a meaningful value: covered elsewhere
    if field == "httpMethod" and value == "text":
        value = "te xt"
    with pytest.raises(BadEvent) as err:
        to_request(v1(**{field: value}), "", HOST)
    assert field in err.value.message


@pytest.mark.parametrize(
    "path",
    [
        ("rawPath",),
        ("rawQueryString",),
        ("cookies",),
        ("headers",),
        ("body",),
        ("requestContext",),
        ("requestContext", "http"),
        ("requestContext", "http", "method"),
        ("requestContext", "http", "sourceIp"),
        ("requestContext", "domainName"),
    ],
    ids=".".join,
)
@pytest.mark.parametrize("value", [0, 1.5, True, [1], {"a": 1}], ids=repr)
def test_v2_fields_of_the_wrong_json_type_are_bad_events_naming_them(path, value):
    if path in {("cookies",), ("headers",)} and isinstance(value, (list, dict)):
        value = [1] if path == ("cookies",) else {"a": 1}
    event = v2()
    container = event
    for key in path[:-1]:
        container = container[key]
    container[path[-1]] = value
    with pytest.raises(BadEvent) as err:
        to_request(event, "", HOST)
    assert path[-1] in err.value.message


@pytest.mark.parametrize("source_ip", [7, "1.2.3.4\r\nX-Injected: 1"])
def test_a_bad_v1_source_ip_is_a_bad_event(source_ip):
    with pytest.raises(BadEvent, match="sourceIp"):
        to_request(v1(requestContext={"identity": {"sourceIp": source_ip}}), "", HOST)
