"""Where one chat turn's events wait in Redis between two Lambda environments.

A resumable LibreChat answer (v0.8.2+) is generated in the environment that holds the chat
POST and read by the browser through a stream GET that lands on another one. The holding
runtime appends the job's SSE events, as its own LibreChat sent them, to a Redis stream; the
runtime serving the GET reads them back with XREAD BLOCK (resumable.py). Keys, hash-tagged on
the stream id so that a Redis Cluster keeps one conversation on one slot:

- ``lambda-relay:{<streamId>}``: hash; ``turn`` (the current turn's id) and ``owner`` (the
  LibreChat user id of the chat POST). A follow-up in the same conversation reuses the
  stream id (it is the conversation id) and gets a new turn: turns never mix.
- ``lambda-relay:{<streamId>}:<turn>``: stream; the first entry ``h`` (the upstream's status
  and headers), then one entry ``e`` per SSE event, then ``end`` (why it ended). At most
  ``max_events`` entries (approximate trimming: the oldest go first).
- ``lambda-relay:{<streamId>}:<turn>:alive``: the producer's heartbeat; it expires
  ``heartbeat`` seconds after the producer's last sign of life, so a reader of an
  environment that died ends instead of waiting. The end deletes it.
- ``lambda-relay:active:{<owner>}``: sorted set of the owner's turns still generating
  (``<streamId> <turn>``, scored by start time), for LibreChat's ``/chat/active``.
- Channel ``lambda-relay:{<streamId>}:<turn>:ask``: requests about the job (the stop button,
  its status) for the environment generating it, which answers on the reply channel each
  request names (``lambda-relay:{<streamId>}:reply:<random>``). Pub/sub: nothing is kept.

Every key expires ``retention`` seconds after its last write. No credential is stored: the
owner is LibreChat's user id, and the reader asks its own LibreChat who the caller is. A
forwarded request's headers cross Redis only as a pub/sub message.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

import redis

PREFIX = "lambda-relay:"
# LibreChat's stream ids are conversation ids (UUIDs); anything else is refused before it can
# become part of a Redis key (braces would move the hash tag, '*' and spaces are not ids).
STREAM_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RedisError = redis.RedisError


@dataclass(frozen=True, slots=True)
class Turn:
    """One answer of one conversation: the keys its events and heartbeat live under."""

    stream_id: str
    turn: str
    owner: str

    @property
    def events(self) -> str:
        return f"{PREFIX}{{{self.stream_id}}}:{self.turn}"

    @property
    def alive(self) -> str:
        return f"{self.events}:alive"

    @property
    def ask(self) -> str:
        """The channel the environment generating this turn listens on while it does."""
        return f"{self.events}:ask"

    @property
    def member(self) -> str:
        return f"{self.stream_id} {self.turn}"


def pointer(stream_id: str) -> str:
    return f"{PREFIX}{{{stream_id}}}"


def active_key(owner: str) -> str:
    return f"{PREFIX}active:{{{owner}}}"


def reply_channel(stream_id: str) -> str:
    return f"{PREFIX}{{{stream_id}}}:reply:{secrets.token_hex(8)}"


class RelayStore:
    """The Redis side of the relay; every method may raise RedisError (Redis down or slow)."""

    def __init__(self, url: str, retention: float, max_events: int, heartbeat: float) -> None:
        self.retention = int(retention)
        self.max_events = max_events
        self.heartbeat = heartbeat
        # Short timeouts: a Redis that does not answer must not hold a request for long.
        self._redis = redis.Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=5.0, retry_on_timeout=False
        )

    def begin(self, stream_id: str, owner: str) -> Turn:
        """A new turn of ``stream_id``, current from now on; its producer counts as alive."""
        now = time.time()
        turn = Turn(stream_id, f"{int(now * 1000):x}-{secrets.token_hex(4)}", owner)
        key = pointer(stream_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"turn": turn.turn, "owner": owner})
        pipe.expire(key, self.retention)
        pipe.set(turn.alive, b"1", px=int(self.heartbeat * 1000))
        pipe.zadd(active_key(owner), {turn.member: now})
        pipe.expire(active_key(owner), self.retention)
        pipe.execute()
        return turn

    def current(self, stream_id: str) -> tuple[Turn, str] | None:
        """The current turn of ``stream_id`` and its owner, if a runtime registered one."""
        turn, owner = cast(
            list[bytes | None], self._redis.hmget(pointer(stream_id), ["turn", "owner"])
        )
        if turn is None or owner is None:
            return None
        return Turn(stream_id, turn.decode(), owner.decode()), owner.decode()

    def head(self, turn: Turn, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        fields = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]
        self._add(turn, [{"h": json.dumps({"status": status, "headers": fields})}])

    def append(self, turn: Turn, events: list[bytes]) -> None:
        if events:
            self._add(turn, [{"e": event} for event in events])

    def end(self, turn: Turn, reason: str) -> None:
        self._add(turn, [{"end": reason}], alive=False)

    def beat(self, turn: Turn) -> None:
        self._redis.set(turn.alive, b"1", px=int(self.heartbeat * 1000))

    def _add(self, turn: Turn, entries: list[dict[str, str | bytes]], alive: bool = True) -> None:
        """Append in one round trip, refreshing the heartbeat and the retention with it (the
        last entry ends the heartbeat and the turn's place among the owner's active ones)."""
        pipe = self._redis.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(turn.events, fields, maxlen=self.max_events, approximate=True)  # type: ignore[arg-type]
        pipe.expire(turn.events, self.retention)
        if alive:
            pipe.set(turn.alive, b"1", px=int(self.heartbeat * 1000))
        else:
            pipe.delete(turn.alive)
            pipe.zrem(active_key(turn.owner), turn.member)
        pipe.execute()

    def read(
        self, turn: Turn, after: bytes, block: float
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Entries after ``after`` (b"0" from the start), waiting up to ``block`` seconds."""
        answer = cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
            self._redis.xread({turn.events: after}, count=256, block=max(int(block * 1000), 1)),
        )
        return answer[0][1] if answer else []

    def alive(self, turn: Turn) -> bool:
        return bool(self._redis.exists(turn.alive))

    def active(self, owner: str) -> list[str]:
        """The stream ids of the owner's turns still generating, newest first; turns whose
        producer died (no end, heartbeat expired) are dropped on the way."""
        key = active_key(owner)
        members = cast(list[bytes], self._redis.zrevrange(key, 0, 99))
        turns = []
        for member in members:
            stream_id, _, turn_id = member.decode().partition(" ")
            turns.append(Turn(stream_id, turn_id, owner))
        pipe = self._redis.pipeline(transaction=False)
        for turn in turns:
            pipe.exists(turn.alive)
        alive = cast(list[int], pipe.execute()) if turns else []
        dead = [t.member for t, up in zip(turns, alive, strict=True) if not up]
        if dead:
            self._redis.zrem(key, *dead)
        return [t.stream_id for t, up in zip(turns, alive, strict=True) if up]

    def ask(self, turn: Turn, message: Mapping[str, object], timeout: float) -> bytes | None:
        """Send ``message`` to the environment generating ``turn`` and wait for its answer.

        None: nobody listens (the job ended, or its environment is gone). TimeoutError: the
        listener took the request but did not answer within ``timeout`` seconds.
        """
        reply = reply_channel(turn.stream_id)
        pubsub = self._redis.pubsub()
        try:
            _subscribe(pubsub, reply)
            if not self._redis.publish(turn.ask, json.dumps({**message, "reply": reply})):
                return None
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                got = pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
                if got is not None and got["type"] == "message":
                    return cast(bytes, got["data"])
            raise TimeoutError(f"no answer from the generating environment in {timeout:.0f} s")
        finally:
            pubsub.close()

    def listen(self, turn: Turn, answer: Callable[[bytes], bytes]) -> Listener:
        """Answer requests about ``turn`` (``ask``) until the listener is stopped; it is
        subscribed when this returns, so nothing asked afterwards is missed."""
        pubsub = self._redis.pubsub()
        _subscribe(pubsub, turn.ask)
        return Listener(self._redis, pubsub, turn, answer)

    def close(self) -> None:
        self._redis.close()


class Listener:
    """One thread answering a turn's requests, one at a time, until ``stop``."""

    def __init__(
        self,
        client: redis.Redis,
        pubsub: redis.client.PubSub,
        turn: Turn,
        answer: Callable[[bytes], bytes],
    ) -> None:
        self._redis, self._pubsub, self._turn, self._answer = client, pubsub, turn, answer
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        prefix = f"{pointer(self._turn.stream_id)}:reply:"
        try:
            while not self._stopped.is_set():
                got = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.25)
                if got is None or got["type"] != "message":
                    continue
                try:
                    reply = json.loads(got["data"])["reply"]
                except (ValueError, KeyError, TypeError):
                    continue  # not a request of ours: nobody waits for an answer
                if isinstance(reply, str) and reply.startswith(prefix):
                    self._redis.publish(reply, self._answer(got["data"]))
        except redis.RedisError:
            pass  # Redis went away: askers time out, and the relay reports the failure
        finally:
            self._pubsub.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(2.0)


def _subscribe(pubsub: redis.client.PubSub, channel: str) -> None:
    """Subscribe and wait for Redis to confirm it: a message published after this returns
    reaches the subscriber."""
    pubsub.subscribe(channel)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        got = pubsub.get_message(timeout=deadline - time.monotonic())
        if got is not None and got["type"] == "subscribe":
            return
    raise redis.TimeoutError(f"Redis did not confirm the subscription to {channel}")
