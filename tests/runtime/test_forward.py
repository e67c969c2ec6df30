"""Requests about a running job reach the environment generating it (forward.py).

Each stand-in LibreChat keeps its jobs in its own memory here, as the runtime starts LibreChat
where it carries streams (USE_REDIS_STREAMS=false): a job request that another environment's
LibreChat answers correctly was carried to the job's environment by the runtime.
"""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
import redis
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.forward import job_of
from test_resumable import Reader, headers, post, served, stack, tokens

ID = "0f6a1d1e-1b2c-4d5e-8f90-123456789abc"


def request(method: str, path: str, body: object = None) -> UpstreamRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    return UpstreamRequest(method, path, path, [], raw)


@pytest.mark.parametrize(
    ("req", "stream_id"),
    [
        (request("GET", f"/api/agents/chat/status/{ID}"), ID),
        (request("POST", "/api/agents/chat/abort", {"streamId": ID}), ID),
        (request("POST", "/api/agents/chat/abort", {"conversationId": ID}), ID),
        (request("POST", "/api/agents/chat/abort", {"conversationId": "new"}), None),
        (request("POST", "/api/agents/chat/abort", {"abortKey": f"{ID}:msg-1"}), ID),
        (request("POST", "/api/agents/chat/steer", {"conversationId": ID, "text": "x"}), ID),
        (request("POST", "/api/agents/chat/steer/cancel", {"conversationId": ID}), ID),
        (request("POST", "/api/agents/chat/steer/arm", {"conversationId": ID}), ID),
        # Not job routes, or ids that could not be LibreChat's (and would reshape a Redis key).
        (request("GET", "/api/agents/chat/abort"), None),
        (request("POST", f"/api/agents/chat/status/{ID}"), None),
        (request("POST", "/api/agents/chat/openAI", {"conversationId": ID}), None),
        (request("GET", "/api/agents/chat/status/a}b{c"), None),
        (request("POST", "/api/agents/chat/abort", {"streamId": "x" * 129}), None),
        (request("POST", "/api/agents/chat/abort", {"streamId": ["a"]}), None),
        (request("POST", "/api/agents/chat/abort", ["not", "an", "object"]), None),
        (
            UpstreamRequest("POST", "/api/agents/chat/abort", "/api/agents/chat/abort", [], b"{"),
            None,
        ),
    ],
)
def test_the_job_a_request_is_about_is_read_like_librechat_reads_it(req, stream_id):
    assert job_of(req) == stream_id


@pytest.mark.slow
def test_status_steering_and_active_jobs_come_from_the_environment_generating_the_job(
    tmp_path, redis_server
):
    with stack(tmp_path, redis_server.url).start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=300, delay=100)
        reader = Reader(st, stream_id, "user-1")
        reader.wait_tokens(3)  # the POST's environment holds; the reader's streams
        status = httpx.get(
            f"{st.url}/api/agents/chat/status/{stream_id}", headers=headers("user-1"), timeout=30
        )
        assert status.status_code == 200, status.text
        assert status.json()["active"] is True
        assert status.json()["resumeState"]["aggregatedContent"][0]["text"].startswith("t0 t1 t2")
        steer = httpx.post(
            f"{st.url}/api/agents/chat/steer",
            json={"conversationId": stream_id, "text": "shorter, please"},
            headers=headers("user-1"),
            timeout=30,
        )
        assert steer.status_code == 200 and steer.json()["queued"] is True, steer.text
        active = httpx.get(
            f"{st.url}/api/agents/chat/active", headers=headers("user-1"), timeout=30
        )
        assert active.json() == {"activeJobIds": [stream_id]}
        others = httpx.get(
            f"{st.url}/api/agents/chat/active", headers=headers("user-2"), timeout=30
        )
        assert others.json() == {"activeJobIds": []}
        # Another user's credentials reach the job's LibreChat, which refuses them.
        stranger = httpx.post(
            f"{st.url}/api/agents/chat/abort",
            json={"streamId": stream_id},
            headers=headers("user-2"),
            timeout=30,
        )
        assert stranger.status_code == 403
        (post_env,) = served(st, "POST", "/chat/openAI")
        for method, fragment in (("GET", "/chat/status/"), ("POST", "/chat/steer")):
            assert post_env not in served(st, method, fragment)  # not served where the job runs
        assert st.wait_for_log('"relay":"forwarded"')
        abort = httpx.post(
            f"{st.url}/api/agents/chat/abort",
            json={"streamId": stream_id},
            headers=headers("user-1"),
            timeout=30,
        )
        assert abort.status_code == 200
        reader.join(30)
        assert reader.events[-1]["aborted"] is True and len(tokens(reader.events)) < 300
        deadline = time.monotonic() + 10  # the end of the turn takes it off the active list
        while httpx.get(
            f"{st.url}/api/agents/chat/active", headers=headers("user-1"), timeout=30
        ).json()["activeJobIds"]:
            assert time.monotonic() < deadline, "the ended job is still listed as active"
            time.sleep(0.2)
        # Once the job ended nobody listens: LibreChat here answers, as LibreChat would.
        status = httpx.get(
            f"{st.url}/api/agents/chat/status/{stream_id}", headers=headers("user-1"), timeout=30
        )
        assert status.json() == {"active": False}


@pytest.mark.slow
def test_the_job_channel_runs_only_job_requests_whatever_redis_carries(tmp_path, redis_server):
    """Anyone who can publish to Redis gets no more than the job routes, with credentials
    LibreChat checks; malformed requests and foreign reply channels get nothing."""
    with stack(tmp_path, redis_server.url).start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=200, delay=30)
        reader = Reader(st, stream_id, "user-1")
        reader.wait_tokens(2)
        client = redis.Redis.from_url(redis_server.url)
        turn = client.hget(f"lambda-relay:{{{stream_id}}}", "turn").decode()
        ask = f"lambda-relay:{{{stream_id}}}:{turn}:ask"
        reply = f"lambda-relay:{{{stream_id}}}:reply:test"
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(reply, "elsewhere")

        def send(message: object) -> dict | None:
            assert client.publish(ask, json.dumps(message)) == 1  # the job's runtime listens
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                got = pubsub.get_message(timeout=0.5)
                if got:
                    assert got["channel"] == reply.encode(), "answered on a foreign channel"
                    return json.loads(got["data"])
            return None

        user = {"method": "GET", "target": "/api/user", "body": "", "reply": reply}
        user["headers"] = [["Host", "127.0.0.1"], ["Authorization", "Bearer user-1"]]
        answer = send(user)
        assert answer["status"] == 403
        assert b"user-1" not in base64.b64decode(answer["body"])  # LibreChat was not asked
        # The listener answers one request at a time, in order: an answer to the next
        # request proves nothing went to the foreign channel (send() fails on one).
        assert client.publish(ask, json.dumps({**user, "reply": "elsewhere"})) == 1
        assert send({**user, "body": "not base64!"})["status"] == 400
        assert client.publish(ask, b"{not json") == 1
        status = {**user, "target": f"/api/agents/chat/status/{stream_id}"}
        got = send(status)
        assert got["status"] == 200, base64.b64decode(got["body"])  # the listener still serves
        reader.join(60)
        assert reader.events[-1].get("final")
