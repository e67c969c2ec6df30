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
  environment that died ends instead of waiting.

Every key expires ``retention`` seconds after its last write. No credential is stored: the
owner is LibreChat's user id, and the reader asks its own LibreChat who the caller is.
"""

from __future__ import annotations

import json
import re
import secrets
import time
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

    @property
    def events(self) -> str:
        return f"{PREFIX}{{{self.stream_id}}}:{self.turn}"

    @property
    def alive(self) -> str:
        return f"{self.events}:alive"


def pointer(stream_id: str) -> str:
    return f"{PREFIX}{{{stream_id}}}"


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
        turn = Turn(stream_id, f"{int(time.time() * 1000):x}-{secrets.token_hex(4)}")
        key = pointer(stream_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"turn": turn.turn, "owner": owner})
        pipe.expire(key, self.retention)
        pipe.set(turn.alive, b"1", px=int(self.heartbeat * 1000))
        pipe.execute()
        return turn

    def current(self, stream_id: str) -> tuple[Turn, str] | None:
        """The current turn of ``stream_id`` and its owner, if a runtime registered one."""
        turn, owner = cast(
            list[bytes | None], self._redis.hmget(pointer(stream_id), ["turn", "owner"])
        )
        if turn is None or owner is None:
            return None
        return Turn(stream_id, turn.decode()), owner.decode()

    def head(self, turn: Turn, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        fields = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]
        self._add(turn, [{"h": json.dumps({"status": status, "headers": fields})}])

    def append(self, turn: Turn, events: list[bytes]) -> None:
        if events:
            self._add(turn, [{"e": event} for event in events])

    def end(self, turn: Turn, reason: str) -> None:
        self._add(turn, [{"end": reason}])

    def beat(self, turn: Turn) -> None:
        self._redis.set(turn.alive, b"1", px=int(self.heartbeat * 1000))

    def _add(self, turn: Turn, entries: list[dict[str, str | bytes]]) -> None:
        """Append in one round trip, refreshing the heartbeat and the retention with it."""
        pipe = self._redis.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(turn.events, fields, maxlen=self.max_events, approximate=True)  # type: ignore[arg-type]
        pipe.expire(turn.events, self.retention)
        pipe.set(turn.alive, b"1", px=int(self.heartbeat * 1000))
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

    def close(self) -> None:
        self._redis.close()
