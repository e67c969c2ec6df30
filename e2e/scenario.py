"""The user's journey through LibreChat's API, each step a named check with its evidence.

register, log in (cookies), chat with tokens arriving one by one, the answer saved, the
title, a follow-up, an upload, two chats at once, log out. A step that fails records what
LibreChat answered; later steps still run where they can, so one run shows every failure.
"""

from __future__ import annotations

import json
import re
import statistics
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from e2e.client import TOKEN, LibreChat, Stream
from e2e.fake_llm import FakeLlm

PASSWORD = "e2e-password-1"  # noqa: S105 - a throwaway user in a throwaway database
# The standard-mode targets of a token's relay (issue 15): its latency through the front,
# less the same LibreChat's read in-process (the direct run's median), at these percentiles.
RELAY_TARGETS_MS = {50: 10.0, 95: 100.0}
FOLLOW_UPS = 6  # at most, until the environments swapped roles both ways
_RUNTIME_LINE = re.compile(r"env (\d+): (\{.*\})\s*$")


def png(width: int = 64, height: int = 64) -> bytes:
    """A solid-colour RGB PNG for the upload (LibreChat decodes and resizes it with sharp)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x20\x80\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    took_ms: float


@dataclass
class Journey:
    client: LibreChat
    llm: FakeLlm
    steps: list[Step] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    email: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:8]}@example.com")
    lines: list[str] = field(default_factory=list)  # the emulator's output, as it comes
    baseline_ms: float | None = None  # the direct run's median token latency
    #: Requests land on environments of their own (standard, SnapStart); managed mode serves
    #: them all in one, where "both ways" and "a third environment" cannot happen.
    across_environments: bool = False
    turns: list[tuple[str, Stream]] = field(default_factory=list)  # (kind, answer), in order

    def check(self, name: str, action: Callable[[], tuple[bool, str]]) -> bool:
        started = time.perf_counter()
        try:
            ok, detail = action()
        except Exception as exc:  # a failed step is evidence, not the end of the run
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        step = Step(name, ok, detail, (time.perf_counter() - started) * 1000)
        self.steps.append(step)
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)
        return ok

    # -- steps --------------------------------------------------------------------------------

    def app_loads(self) -> tuple[bool, str]:
        page = self.client.request("GET", "/")
        config = self.client.request("GET", "/api/config")
        ok = page.status_code == 200 and 'id="root"' in page.text and config.status_code == 200
        return (
            ok,
            f"GET / {page.status_code} ({len(page.content)} bytes), "
            f"/api/config {config.status_code}",
        )

    def register(self) -> tuple[bool, str]:
        r = self.client.register(self.email, PASSWORD)
        return r.status_code in (200, 201), f"{r.status_code} {r.text[:120]}"

    def login(self) -> tuple[bool, str]:
        r = self.client.login(self.email, PASSWORD)
        names = sorted(self.client.cookies)
        ok = r.status_code == 200 and bool(self.client.token) and "refreshToken" in names
        return (
            ok,
            f"{r.status_code}, token {'set' if self.client.token else 'missing'}, cookies {names}",
        )

    def refresh_with_cookie(self) -> tuple[bool, str]:
        token = self.client.token
        self.client.token = None  # only the cookie may prove who this is
        r = self.client.refresh()
        ok = r.status_code == 200 and bool(self.client.token)
        if not ok:
            self.client.token = token
        return ok, f"POST /api/auth/refresh with the cookie only -> {r.status_code}"

    def chat(self, text: str, conversation_id: str | None = None, parent: str | None = None,
             files: list[dict[str, Any]] | None = None, kind: str = "first answer",
             ) -> Stream:  # fmt: skip
        stream = self.client.chat(text, conversation_id, parent, files)
        self.streams.append(stream)
        self.turns.append((kind, stream))
        return stream

    def streamed(self, stream: Stream) -> tuple[bool, str]:
        """Tokens arrived one by one, over about the time the model took to send them."""
        arrivals = sorted(stream.arrivals.values())
        llm = self.llm
        if stream.error or not arrivals:
            return (
                False,
                f"{stream.how}: {stream.error or 'no tokens'} "
                f"(POST {stream.post_status}, stream {stream.stream_status})",
            )
        spread = arrivals[-1] - arrivals[0]
        distinct = len({round(t, 3) for t in arrivals})
        expected = (llm.tokens - 1) * llm.delay
        lost = stream.lost
        ok = (
            len(arrivals) >= llm.tokens
            and distinct >= llm.tokens // 2
            and spread >= 0.5 * expected
            and stream.final is not None
            and not lost
        )
        return ok, (
            f"{stream.how}: {len(arrivals)} tokens in {len(stream.chunk_times)} chunks, "
            f"{len(lost)} lost live, "
            f"{distinct} distinct arrival times over {spread * 1000:.0f} ms "
            f"(model sent over {expected * 1000:.0f} ms), first token "
            f"{stream.first_token_ms or 0:.0f} ms, final event {'yes' if stream.final else 'no'}"
        )

    def saved(self, stream: Stream, expect_messages: int) -> tuple[bool, str]:
        if not stream.conversation_id:
            return False, "no conversation id in the stream"
        r = self.client.request("GET", f"/api/messages/{stream.conversation_id}")
        if r.status_code != 200:
            return False, f"GET /api/messages -> {r.status_code}"
        messages = r.json()
        answers = [m for m in messages if not m.get("isCreatedByUser")]
        if not answers:
            return False, f"{len(messages)} messages, no answer saved"
        text = _message_text(answers[-1])
        saved_tokens = {int(n) for n in TOKEN.findall(text)}
        missing = set(stream.arrivals) - saved_tokens
        # Saved whole: every token the client saw, or all of them when it saw none.
        whole = not missing if stream.arrivals else len(saved_tokens) >= self.llm.tokens
        ok = len(messages) == expect_messages and whole
        return ok, (
            f"{len(messages)} messages saved (expected {expect_messages}); the answer holds "
            f"{len(saved_tokens)} tokens, {len(missing)} of the streamed ones missing"
        )

    def title(self, stream: Stream) -> tuple[bool, str]:
        conversation = stream.conversation_id
        if stream.how == "direct":  # LibreChat <= 0.8.2-rc1
            r = self.client.request(
                "POST", "/api/convos/gen_title", json={"conversationId": conversation}
            )
        else:
            r = self.client.request("GET", f"/api/convos/gen_title/{conversation}")
        title = r.json().get("title") if r.status_code == 200 else None
        stored = self.client.request("GET", f"/api/convos/{conversation}")
        stored_title = stored.json().get("title") if stored.status_code == 200 else None
        ok = bool(title) and str(title).startswith("E2E title") and stored_title == title
        return ok, f"gen_title -> {r.status_code} {title!r}; conversation title {stored_title!r}"

    def upload(self) -> tuple[bool, str]:
        file_id = str(uuid.uuid4())
        r = self.client.request(
            "POST",
            "/api/files/images",
            data={"endpoint": "e2e", "endpointType": "custom", "file_id": file_id,
                  "width": "64", "height": "64"},
            files={"file": ("e2e.png", png(), "image/png")},
        )  # fmt: skip
        if r.status_code != 200:
            return False, f"POST /api/files/images -> {r.status_code} {r.text[:200]}"
        uploaded = r.json()
        listing = self.client.request("GET", "/api/files")
        ids = {f.get("file_id") for f in listing.json()} if listing.status_code == 200 else set()
        ok = uploaded.get("file_id") in ids
        return ok, (
            f"POST /api/files/images -> 200 ({uploaded.get('type')}, "
            f"{uploaded.get('width')}x{uploaded.get('height')}); listed: {ok}"
        )

    def logout(self) -> tuple[bool, str]:
        before = dict(self.client.cookies)
        r = self.client.logout()
        cleared = "refreshToken" not in self.client.cookies
        self.client.cookies = before  # the old cookie must no longer be honoured either
        self.client.token = None
        after = self.client.refresh()
        ok = r.status_code == 200 and cleared and after.status_code != 200
        return ok, (
            f"logout -> {r.status_code}, cookie cleared: {cleared}; "
            f"refresh with the old cookie afterwards -> {after.status_code}"
        )

    def concurrent_chats(self) -> tuple[bool, str]:
        results: list[Stream | BaseException] = [RuntimeError("not run")] * 2

        def run(i: int) -> None:
            try:
                results[i] = self.client.chat(f"concurrent chat {i}")
            except BaseException as exc:
                results[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        details, ok = [], True
        spans = []
        for i, result in enumerate(results):
            if isinstance(result, BaseException):
                ok = False
                details.append(f"chat {i}: {type(result).__name__}: {result}")
                continue
            self.streams.append(result)
            self.turns.append((f"concurrent {i}", result))
            good, text = self.streamed(result)
            saved, saved_text = self.saved(result, 2)
            ok = ok and good and saved
            details.append(f"chat {i}: {text}; {saved_text}")
            sent = [self.llm.sent[n] for n in result.arrivals if n in self.llm.sent]
            if sent:
                spans.append((min(sent), max(sent)))
        # Served at once: the model was generating both answers at the same time.
        overlap = len(spans) == 2 and max(s[0] for s in spans) < min(s[1] for s in spans)
        return ok and overlap, f"answers generated at the same time: {overlap}; " + " | ".join(
            details
        )

    # -- standard mode: across environments (issue 15) ----------------------------------------

    def runtime_records(self) -> list[tuple[int, dict[str, Any]]]:
        """The runtimes' JSON log lines, each with the number of the environment it came from."""
        records = []
        for line in list(self.lines):
            match = _RUNTIME_LINE.search(line)
            if match:
                try:
                    records.append((int(match.group(1)), json.loads(match.group(2))))
                except ValueError:
                    continue
        return records

    def environments(self, stream: Stream) -> tuple[int | None, int | None]:
        """Which environment held the answer's POST and which served its stream GET."""
        post_env, get_env, _ = self._sides(stream)
        return post_env, get_env

    def _sides(self, stream: Stream) -> tuple[int | None, int | None, bool]:
        """The answer's POST and GET environments, and whether the POST's hold has ended.

        Where the relay carried the answer, the n-th answer of a conversation is its n-th turn
        (turn ids start with the time they were registered), published by the environment
        holding the POST and named in the request line of the GET that relayed it. Otherwise
        (managed mode) the n-th hold and the n-th GET of the stream id: log order, which a
        hold outlasting the next answer's would break, so only where holds do not overlap."""
        records = self.runtime_records()
        same = [s for _, s in self.turns if s.conversation_id == stream.conversation_id]
        n = next((i for i, s in enumerate(same) if s is stream), 0)
        holds = [e for e, r in records if r.get("message") == "background hold"
                 and r.get("conversationId") == stream.conversation_id]  # fmt: skip
        # Turn ids begin with their registration time in fixed-width hex: they sort as text.
        published = sorted(
            (str(r["turn"]), e)
            for e, r in records
            if r.get("message") == "stream relay published"
            and r.get("streamId") == stream.stream_id
            and r.get("turn")
        )
        gets = [(e, r.get("turn")) for e, r in records if _is_stream_get(r, stream)]
        held = len(holds) > n
        if n < len(published):
            turn, post_env = published[n]
            return post_env, next((e for e, t in gets if t == turn), None), held
        get_env = gets[n][0] if n < len(gets) else None
        return (holds[n] if held else None), get_env, held

    def wait_for_hold(self, stream: Stream, timeout: float = 30.0) -> None:
        """The hold's log line comes when the environment lets go of the POST, the GET's when
        its stream ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            post_env, get_env, held = self._sides(stream)
            if held and None not in (post_env, get_env):
                return
            time.sleep(0.1)

    def follow_ups_both_ways(self, turns: list[Stream]) -> tuple[bool, str]:
        """Follow-ups in one conversation (one stream id, one Redis key per turn) until the
        roles swapped both ways: an environment that held a turn's POST served a later turn's
        GET, and one that served a turn's GET held a later turn's POST. That is where state
        one role left behind for the stream id would break the other.

        The emulator routes to the most recently idle environment, as Lambda tends to, and
        the holding environment lets go 10-250 ms after the reader's stream ended: a follow-up
        sent after that lands on the holder again. So the follow-ups alternate it with one
        sent the moment the reader's environment is free, while the holder is still busy."""
        streams, ok = list(turns), True
        notes: dict[int, str] = {}  # a turn that did not stream well: what went wrong
        known: dict[int, tuple[int | None, int | None]] = {}  # each turn's, waited for once

        def directions() -> list[tuple[int | None, int | None]]:
            for n, s in enumerate(streams):
                if n not in known:
                    known[n] = self._direction(s)
            return [known[n] for n in range(len(streams))]

        for i in range(FOLLOW_UPS + 1):
            patient = i % 2 == 0
            if patient:  # waits for every hold so far, then knows every direction
                if self._roles_swapped(directions()) or i == FOLLOW_UPS:
                    break
            else:  # the moment the reader's environment is free, the holder still busy
                self._wait_for_gets(streams[-1], len(streams))
            parent = streams[-1].response_message.get("messageId")
            stream = self.chat(
                f"follow-up {i + 2}", turns[0].conversation_id, parent, kind="follow-up"
            )
            good, detail = self.streamed(stream)
            ok = ok and good
            if not good:
                notes[len(streams)] = f" ({detail})"
            streams.append(stream)
        pairs = zip(directions(), streams, strict=True)
        final = [d if None not in d else self.environments(s) for d, s in pairs]
        seen = ", ".join("{}->{}".format(*d) + notes.get(n, "") for n, d in enumerate(final))
        if not self._roles_swapped(final):
            return False, f"turns' POST->GET environments: {seen}; not both: a holder " \
                "later serving a GET, a reader later holding a POST"  # fmt: skip
        verdict = "every token live" if ok else "a follow-up did not stream well"
        return ok, f"turns' POST->GET environments: {seen}; {verdict}"

    def _wait_for_gets(self, stream: Stream, count: int, timeout: float = 10.0) -> None:
        """Until the runtimes logged `count` stream GETs of the stream id: each logs its
        request when its stream ended, just before its environment asks for the next event
        (while the holding environment is still reading the end of LibreChat's response)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = sum(1 for _, r in self.runtime_records() if _is_stream_get(r, stream))
            if done >= count:
                return
            time.sleep(0.005)

    def _direction(self, stream: Stream) -> tuple[int | None, int | None]:
        self.wait_for_hold(stream)
        return self.environments(stream)

    @staticmethod
    def _roles_swapped(directions: list[tuple[int | None, int | None]]) -> bool:
        known = [d for d in directions if None not in d and d[0] != d[1]]
        later = [(a, b) for i, a in enumerate(known) for b in known[i + 1 :]]
        return any(a[0] == b[1] for a, b in later) and any(a[1] == b[0] for a, b in later)

    def stop_button(self) -> tuple[bool, str]:
        """The stop button mid-answer, its request landing on a third environment."""
        stream = self.client.chat("stop me", read=False)
        self.streams.append(stream)
        reader = threading.Thread(target=self.client.read_stream, args=(stream,), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while len(stream.arrivals) < 3 and time.monotonic() < deadline and reader.is_alive():
            time.sleep(0.01)
        r = self.client.abort(stream)
        reader.join(60)
        self.wait_for_hold(stream)
        post_env, get_env = self.environments(stream)
        aborts = [e for e, rec in self.runtime_records() if rec.get("message") == "request"
                  and rec.get("path") == "/api/agents/chat/abort"]  # fmt: skip
        abort_env = aborts[-1] if aborts else None
        third = abort_env is not None and abort_env not in (post_env, get_env)
        ended = stream.final is not None and len(stream.arrivals) < self.llm.tokens
        return r.status_code == 200 and ended and third and not reader.is_alive(), (
            f"abort -> {r.status_code} on environment {abort_env} (POST on {post_env}, GET on "
            f"{get_env}); the stream ended {'with' if stream.final else 'WITHOUT'} a final "
            f"event after {len(stream.arrivals)} of {self.llm.tokens} tokens"
        )

    def reconnect(self) -> tuple[bool, str]:
        """The browser's connection drops mid-answer; it reconnects with ?resume=true."""
        first = self.client.chat("reconnect", read=False)
        self.client.read_stream(first, until=lambda s: len(s.arrivals) >= 5)
        again = Stream(
            how=first.how,
            post_status=first.post_status,
            post_sent_at=first.post_sent_at,
            conversation_id=first.conversation_id,
            stream_id=first.stream_id,
        )
        self.client.read_stream(again, resume=True)
        seen = set(again.arrivals) | again.synced
        missing = again.answer_tokens - seen
        ok = again.final is not None and not again.doubled and not missing and bool(again.synced)
        return ok, (
            f"dropped after {len(first.arrivals)} tokens; the resume's sync carried "
            f"{len(again.synced)}, then {len(again.arrivals)} live; {len(again.doubled)} doubled, "
            f"{len(missing)} missing, final event {'yes' if again.final else 'no'}"
        )

    def relay_within_targets(self) -> tuple[bool, str]:
        """Every resumable answer's tokens, relayed within the targets (RELAY_TARGETS_MS)."""
        cells = self.cells()
        if not cells:
            return False, "no resumable answer to measure"
        failed = [
            f"{name} p{q} {cell[f'relay_p{q}_ms']} ms"
            for name, cell in cells.items()
            for q, limit in RELAY_TARGETS_MS.items()
            if cell[f"relay_p{q}_ms"] is None or cell[f"relay_p{q}_ms"] > limit
        ]
        detail = "; ".join(
            f"{name}: relay p50 {c['relay_p50_ms']} / p95 {c['relay_p95_ms']} ms, "
            f"{c['tokens']} tokens, {c['lost']} lost"
            for name, c in cells.items()
        )
        return not failed, (f"OVER: {', '.join(failed)} | " if failed else "") + detail

    def cells(self) -> dict[str, dict[str, Any]]:
        """The relay's figures per kind of answer and direction (POST env -> GET env)."""
        grouped: dict[str, list[Stream]] = {}
        for kind, stream in self.turns:
            if stream.how != "resumable":
                continue
            cell = kind  # managed mode: one environment serves them all
            if self.across_environments:
                post_env, get_env = self.environments(stream)
                cell = f"{kind} {post_env}->{get_env}"
            grouped.setdefault(cell, []).append(stream)
        baseline = self.baseline_ms or 0.0
        cells = {}
        for name, streams in sorted(grouped.items()):
            relay = [ms - baseline for ms in token_latencies(streams, self.llm)]
            cells[name] = {
                "answers": len(streams),
                "tokens": sum(len(s.arrivals) for s in streams),
                "lost": sum(len(s.lost) for s in streams),
                "relay_p50_ms": round_ms(percentile(relay, 50)),
                "relay_p95_ms": round_ms(percentile(relay, 95)),
            }
        return cells

    # -- the whole journey ---------------------------------------------------------------------

    def run(self) -> None:
        self.check("app loads (index.html, /api/config)", self.app_loads)
        self.check("register", self.register)
        if not self.check("login (token + refreshToken cookie)", self.login):
            return
        self.check("refresh with the cookie", self.refresh_with_cookie)
        first = self.chat("hello")
        self.check("chat: tokens arrive incrementally", lambda: self.streamed(first))
        self.check("chat: final message saved", lambda: self.saved(first, 2))
        self.check("chat: title generated", lambda: self.title(first))
        parent = first.response_message.get("messageId")
        follow = self.chat("follow-up", first.conversation_id, parent, kind="follow-up")
        self.check("follow-up: tokens arrive incrementally", lambda: self.streamed(follow))
        self.check("follow-up: saved in the same conversation", lambda: self.saved(follow, 4))
        resumable = first.how == "resumable"
        across = resumable and bool(self.lines) and self.across_environments  # issue 15
        if across:
            self.check("follow-ups: environments swap roles both ways",
                       lambda: self.follow_ups_both_ways([first, follow]))  # fmt: skip
        self.check("upload an image", self.upload)
        self.check("two concurrent chats", self.concurrent_chats)
        if across:
            self.check("stop button on a third environment", self.stop_button)
        if resumable and self.lines:
            self.check("reconnect mid-answer (resume), nothing doubled", self.reconnect)
            self.check("relay within p50 10 ms / p95 100 ms, no token lost",
                       self.relay_within_targets)  # fmt: skip
        self.check("logout (refresh refused afterwards)", self.logout)


def _is_stream_get(record: dict[str, Any], stream: Stream) -> bool:
    """A runtime's request line for a GET of the answer's stream."""
    path = f"/api/agents/chat/stream/{stream.stream_id}"
    return bool(
        record.get("message") == "request"
        and record.get("method") == "GET"
        and record.get("path") == path
    )


def _message_text(message: dict[str, Any]) -> str:
    parts = [message.get("text") or ""]
    for part in message.get("content") or []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return " ".join(parts)


def token_latencies(streams: list[Stream], llm: FakeLlm) -> list[float]:
    """Milliseconds from the model sending each token to the client receiving it, for the
    tokens sent once the client was receiving the stream (resumable chat replays the ones sent
    before the browser's GET subscribed: their wait is the subscription's, not the relay's)."""
    latencies = []
    for s in streams:
        if not s.arrivals:
            continue
        receiving = min(s.arrivals.values())
        latencies += [
            (arrived - llm.sent[n]) * 1000
            for n, arrived in s.arrivals.items()
            if llm.sent.get(n, 0.0) >= receiving
        ]
    return latencies


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
