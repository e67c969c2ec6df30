"""Resumable LibreChat across environments: the runtime carries each answer through Redis.

The chat POST is held by one environment and the browser's stream GET lands on another, as
on standard Lambda. The runtime starts each stand-in LibreChat with its jobs in its own memory
(USE_REDIS_STREAMS=false, as LibreChat's in-memory job store), so another environment's
LibreChat knows nothing of the job: an answer that arrives whole, in order, once, from another
environment than the POST's, came through the runtime's relay, and a stop button that works
from a third environment went through the runtime's forwarding (test_forward.py).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from test_readiness import librechat

from emulator import LocalStack
from emulator.http11 import free_port

pytestmark = pytest.mark.slow  # runtimes under the emulator, redis-server, the stand-in

NO_PARENT = "00000000-0000-0000-0000-000000000000"
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user}", "User-Agent": UA}


def stack(tmp_path, redis_url: str, environments: int = 3, **extra: str) -> LocalStack:
    env = librechat(
        tmp_path,
        "v0.8.7",
        STARTUP="0",
        TITLE_AFTER="0.1",
        USE_REDIS="true",
        REDIS_URI=redis_url,
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
        f"{st.url}/api/agents/chat/openAI",
        params=params,
        json=body,
        headers=headers(user),
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
    return [
        part["text"]
        for e in events
        if e.get("event") == "on_message_delta"
        for part in e["data"]["delta"]["content"]
    ]


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
            assert len(finals) == 1 and finals[0]["responseMessage"]["text"] == "".join(
                f"t{i} " for i in range(10)
            )
            conversation = stream_id
            time.sleep(0.3)  # both environments back in /next
        posts, gets = served(st, "POST", "/chat/openAI"), served(st, "GET", "/chat/stream/")
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


class Reader(threading.Thread):
    """Reads one stream in the background, recording each event as it comes."""

    def __init__(self, st: LocalStack, stream_id: str, user: str, stop_after: int = 0) -> None:
        super().__init__(daemon=True)
        self.url = f"{st.url}/api/agents/chat/stream/{stream_id}"
        self.user, self.stop_after = user, stop_after
        self.events: list[dict] = []
        self.error: Exception | None = None
        self.ended_at: float | None = None
        self.start()

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=headers(self.user), timeout=30) as answer:
                for line in answer.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
                    if self.stop_after and len(tokens(self.events)) >= self.stop_after:
                        return  # the browser's connection drops
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()

    def wait_tokens(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(tokens(self.events)) < n:
            assert time.monotonic() < deadline, f"{len(tokens(self.events))} of {n} tokens came"
            time.sleep(0.02)


def test_the_stop_button_on_a_third_environment_ends_the_answer(tmp_path, redis_server):
    with stack(tmp_path, redis_server.url).start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=300, delay=100)
        reader = Reader(st, stream_id, "user-1")
        reader.wait_tokens(3)
        abort = httpx.post(
            f"{st.url}/api/agents/chat/abort",
            json={"streamId": stream_id},
            headers=headers("user-1"),
            timeout=30,
        )
        assert abort.status_code == 200, abort.text
        reader.join(30)
        final = reader.events[-1]
        assert final.get("final") and final["aborted"] is True
        assert 3 <= len(tokens(reader.events)) < 300
        (post_env,), (get_env,) = served(st, "POST", "/chat/openAI"), served(st, "GET", "/stream/")
        (abort_env,) = served(st, "POST", "/chat/abort")
        assert len({post_env, get_env, abort_env}) == 3


def test_a_reconnect_continues_the_answer_without_doubling_it(tmp_path, redis_server):
    """?resume=true: LibreChat's sync event (what was said so far, from its status path), then
    the relay from the first token past it."""
    with stack(tmp_path, redis_server.url).start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=60, delay=100)  # runs past the reconnect
        first = Reader(st, stream_id, "user-1", stop_after=4)
        first.join(30)
        events = read(st, stream_id, "user-1", resume="true")
        sync = events[0]
        assert sync.get("sync") is True
        said = sync["resumeState"]["aggregatedContent"][0]["text"]
        assert said.startswith("t0 t1 t2 t3 ")
        assert said + "".join(tokens(events)) == "".join(f"t{i} " for i in range(60))
        assert events[-1].get("final")
        deadline = time.monotonic() + 15  # the dropped read is logged when its relay ends
        while len([line for line in st.logs if '"relay":"redis"' in line]) < 2:
            assert time.monotonic() < deadline, "the resume did not go through the relay"
            time.sleep(0.1)


def test_an_environment_that_dies_mid_answer_ends_the_reader_cleanly(tmp_path, redis_server):
    with stack(tmp_path, redis_server.url, STREAM_RELAY_HEARTBEAT="1").start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=100, delay=100)
        reader = Reader(st, stream_id, "user-1")
        reader.wait_tokens(3)
        (post_env,) = served(st, "POST", "/chat/openAI")
        killed_at = time.monotonic()
        st.environments[post_env - 1].sandbox.kill()  # Lambda ends it: runtime, LibreChat, all
        reader.join(15)
        assert not reader.is_alive(), "the reader still waits"
        assert reader.error is None  # a clean end, not a broken connection
        assert reader.ended_at - killed_at < 4  # the heartbeat (1 s) expired, then it ended
        assert "stopped" in reader.events[-1]["error"]
        assert len(tokens(reader.events)) < 100


def test_retention_and_length_are_bounded(tmp_path, redis_server):
    with stack(
        tmp_path,
        redis_server.url,
        environments=2,
        STREAM_RELAY_RETENTION="120",
        STREAM_RELAY_MAX_EVENTS="100",
    ).start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=1000, delay=1)
        pointer = f"lambda-relay:{{{stream_id}}}"
        turn = f"{pointer}:{redis_server.client.hget(pointer, 'turn').decode()}"
        deadline = time.monotonic() + 30
        while not (redis_server.client.xrevrange(turn, count=1) or [(0, {})])[0][1].get(b"end"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert redis_server.client.xlen(turn) < 300  # trimmed near 100, whole nodes at a time
        for key in (turn, pointer):
            assert 0 < redis_server.client.ttl(key) <= 120


def test_with_its_redis_down_another_environment_says_stream_not_found_at_once(
    tmp_path, redis_server
):
    """The relay's own Redis (STREAM_RELAY_REDIS) down: nothing carries the stream, and each
    LibreChat keeps its jobs in memory, so the GET on another environment gets LibreChat's
    "stream not found" at once instead of a hang; the POST's environment still finishes the
    job (the answer is saved), and the service keeps serving."""
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    with stack(tmp_path, redis_server.url, STREAM_RELAY_REDIS=nobody).start(init_timeout=30) as st:
        stream_id = post(st, "user-1", tokens=30, delay=100)
        asked = time.monotonic()
        answer = httpx.get(
            f"{st.url}/api/agents/chat/stream/{stream_id}", headers=headers("user-1"), timeout=30
        )
        assert answer.status_code == 404 and answer.json()["error"] == "Stream not found"
        assert time.monotonic() - asked < 10  # a cold environment, not a wait for the job
        warning = json.loads(st.wait_for_log("turn not registered"))
        assert warning["error"] == "ConnectionError"
        hold = json.loads(st.wait_for_log('"message":"background hold"'))
        assert hold["outcome"] == "finished" and "relay" not in hold
        assert httpx.get(f"{st.url}/health", timeout=30).status_code == 200


def test_redis_failing_mid_answer_ends_the_stream_with_a_clear_error(tmp_path, redis_server):
    from redis_server import RedisServer

    relay_redis = RedisServer(tmp_path / "relay")
    try:
        with stack(tmp_path, redis_server.url, STREAM_RELAY_REDIS=relay_redis.url).start(
            init_timeout=30
        ) as st:
            stream_id = post(st, "user-1", tokens=300, delay=50)
            reader = Reader(st, stream_id, "user-1")
            reader.wait_tokens(3)
            relay_redis.stop()
            reader.join(15)
            assert not reader.is_alive()
            assert len(tokens(reader.events)) < 300
            line = json.loads(st.wait_for_log("the stream relay's Redis failed"))
            assert line["error"].startswith("Runtime.StreamError")
            assert httpx.get(f"{st.url}/health", timeout=30).status_code == 200
    finally:
        relay_redis.stop()
