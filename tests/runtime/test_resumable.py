"""Resumable LibreChat across environments: the runtime carries each answer through Redis.

The chat POST is held by one environment and the browser's stream GET lands on another, as
on standard Lambda. The stand-in LibreChat shares its jobs through a real redis-server like
LibreChat's RedisJobStore, and serves a job's stream in-process only where it runs (anywhere
else through the slow shared path): an answer that arrives whole, in order, once, from
another environment than the POST's, came through the runtime's relay.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from test_readiness import librechat

from emulator import LocalStack

NO_PARENT = "00000000-0000-0000-0000-000000000000"
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user}", "User-Agent": UA}


def stack(tmp_path, redis_url: str, environments: int = 3, **extra: str) -> LocalStack:
    env = librechat(
        tmp_path, "v0.8.7", STARTUP="0", TITLE_AFTER="0.1", USE_REDIS="true", REDIS_URI=redis_url,
        **extra,
    )
    return LocalStack(env=env, max_environments=environments)


def post(st: LocalStack, user: str, conversation: str | None = None, **params: object) -> str:
    body = {"text": "hi", "parentMessageId": "m-1" if conversation else NO_PARENT}
    if conversation:
        body["conversationId"] = conversation
    # Answers last longer than the emulator's 1 s grace for a busy environment to come back:
    # the stream GET then gets another environment, as on Lambda.
    params = {"tokens": 10, "delay": 150, "work": 0, **params}
    answer = httpx.post(
        f"{st.url}/api/agents/chat/openAI", params=params, json=body, headers=headers(user),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["streamId"]


def read(st: LocalStack, stream_id: str, user: str, **params: str) -> list[dict]:
    """The stream's events (the data of each), until the server ends it."""
    url = f"{st.url}/api/agents/chat/stream/{stream_id}"
    with httpx.stream("GET", url, params=params, headers=headers(user), timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        return [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: ")]


def tokens(events: list[dict]) -> list[str]:
    return [e["data"]["text"] for e in events if e.get("event") == "on_message_delta"]


def served(st: LocalStack, method: str, fragment: str) -> list[int | None]:
    return [
        inv.environment
        for inv in st.invocations
        if inv.event.get("httpMethod") == method and fragment in inv.event.get("path", "")
    ]


def test_first_answer_and_follow_ups_arrive_whole_from_another_environment(tmp_path, redis_server):
    with stack(tmp_path, redis_server.url).start(init_timeout=30) as st:
        conversation = None
        for turn in range(3):
            stream_id = post(st, "user-1", conversation)
            events = read(st, stream_id, "user-1")
            assert tokens(events) == [f"t{i} " for i in range(10)], f"turn {turn}"
            assert [e for e in events if e.get("created")], "the created event came"
            finals = [e for e in events if e.get("final")]
            assert len(finals) == 1 and finals[0]["responseMessage"]["text"] == "".join(f"t{i} " for i in range(10))
            conversation = stream_id
            time.sleep(0.3)  # both environments back in /next
        posts, gets = served(st, "POST", "/chat/openAI"), served(st, "GET", "/chat/stream/")
        print("DIRS", posts, gets)
        assert all(p != g for p, g in zip(posts, gets, strict=True)), (posts, gets)
        assert st.wait_for_log('"relay":"redis"')
        # Turns never mix: each turn has its own Redis stream under the conversation's id.
        turns = redis_server.client.keys(f"lambda-relay:{{{conversation}}}:*")
        assert len([k for k in turns if not k.endswith(b":alive")]) == 3


def test_two_conversations_at_once_stay_apart(tmp_path, redis_server):
    with stack(tmp_path, redis_server.url, environments=5).start(init_timeout=30) as st:
        results: dict[str, list[str]] = {}

        def run(user: str) -> None:
            stream_id = post(st, user, tokens=20, delay=60)
            results[user] = tokens(read(st, stream_id, user))

        threads = [threading.Thread(target=run, args=(u,)) for u in ("user-1", "user-2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == {u: [f"t{i} " for i in range(20)] for u in ("user-1", "user-2")}


def test_another_user_cannot_read_the_stream(tmp_path, redis_server):
    with stack(tmp_path, redis_server.url).start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=20, delay=60)
        url = f"{st.url}/api/agents/chat/stream/{stream_id}"
        answer = httpx.get(url, headers=headers("user-2"), timeout=30)
        assert answer.status_code == 403
        assert answer.json() == {"message": "this stream belongs to another user"}
        anonymous = httpx.get(url, headers={"User-Agent": UA}, timeout=30)
        assert anonymous.status_code == 401
        assert tokens(read(st, stream_id, "user-1")) == [f"t{i} " for i in range(20)]


@pytest.mark.parametrize(
    "stream_id", ["%7Bx%7D", "a%20b", "x" * 129, "..%2F..%2Fapi%2Fuser", "a*", "%00"]
)
def test_hostile_stream_ids_are_refused_before_they_reach_redis(tmp_path, redis_server, stream_id):
    with stack(tmp_path, redis_server.url, environments=1).start(init_timeout=30) as st:
        answer = httpx.get(
            f"{st.url}/api/agents/chat/stream/{stream_id}", headers=headers("user-1"), timeout=30
        )
        assert answer.status_code == 400
        assert "is not a LibreChat stream id" in answer.json()["message"]
        assert redis_server.client.keys("lambda-relay:*") == []
        assert httpx.get(f"{st.url}/health", timeout=30).status_code == 200  # still serving
