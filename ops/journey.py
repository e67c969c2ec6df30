"""The user's journey through a deployed LibreChat, for `make acceptance` (ops/acceptance.py).

Register, log in, pick a model the stack's LibreChat lists, chat with live tokens, a follow-up
in the same conversation, the title, log out: each a named check with its evidence, through
the e2e suite's client (e2e/client.py) pointed at the real URL and the real model.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from e2e.client import LibreChat, Stream

PASSWORD_BYTES = 18


class Checks(Protocol):
    """Where each step's verdict goes (ops.acceptance.Report)."""

    def check(self, item: str, action: Callable[[], tuple[bool, str]]) -> bool: ...


@dataclass
class Journey:
    """The user's journey through the real URL, with a model the stack's LibreChat offers."""

    client: LibreChat
    report: Checks
    model: str | None = None  # "endpoint/model"; None: the first LibreChat lists
    email: str = field(default_factory=lambda: f"acceptance-{secrets.token_hex(4)}@example.com")
    password: str = field(default_factory=lambda: secrets.token_urlsafe(PASSWORD_BYTES))
    streams: list[Stream] = field(default_factory=list)

    def run(self) -> None:
        r = self.report
        r.check("journey: register", self.register)
        if not r.check("journey: log in (token and refreshToken cookie)", self.login):
            return
        if not r.check("journey: a model the stack configures", self.choose_model):
            return
        first = self.chat("Say hello in five words.")
        r.check("journey: chat streams live tokens", lambda: self.streamed(first))
        parent = first.response_message.get("messageId")
        follow = self.chat("And once more, in other words.", first.conversation_id, parent)
        r.check(
            "journey: follow-up streams in the same conversation",
            lambda: self.followed(first, follow),
        )
        r.check("journey: the conversation gets a title", lambda: self.titled(first))
        r.check("journey: log out (the refresh cookie refused afterwards)", self.logout)

    def register(self) -> tuple[bool, str]:
        response = self.client.register(self.email, self.password, name="Acceptance")
        hint = "" if response.status_code in (200, 201) else " (ALLOW_REGISTRATION on the stack?)"
        return response.status_code in (200, 201), f"{response.status_code}{hint}"

    def login(self) -> tuple[bool, str]:
        response = self.client.login(self.email, self.password)
        ok = response.status_code == 200 and bool(self.client.token)
        ok = ok and "refreshToken" in self.client.cookies
        return ok, f"{response.status_code}, cookies {sorted(self.client.cookies)}"

    def choose_model(self) -> tuple[bool, str]:
        if self.model:
            endpoint, _, model = self.model.partition("/")
            models = {endpoint: [model]}
        else:
            listed = self.client.request("GET", "/api/models")
            if listed.status_code != 200:
                return False, f"GET /api/models answered {listed.status_code}"
            models = {e: m for e, m in listed.json().items() if isinstance(m, list) and m}
        endpoints = self.client.request("GET", "/api/endpoints")
        described = endpoints.json() if endpoints.status_code == 200 else {}
        for endpoint, names in models.items():
            about = described.get(endpoint) if isinstance(described, dict) else None
            kind = about.get("type") if isinstance(about, dict) else None
            self.client.endpoint, self.client.model = endpoint, str(names[0])
            self.client.endpoint_type = str(kind) if kind else None
            return True, f"{endpoint}/{names[0]}" + (f" ({kind})" if kind else "")
        return False, "LibreChat lists no model: configure an endpoint in librechat.yaml"

    def chat(
        self, text: str, conversation_id: str | None = None, parent: str | None = None
    ) -> Stream:
        stream = self.client.chat(text, conversation_id, parent)
        self.streams.append(stream)
        return stream

    def streamed(self, stream: Stream) -> tuple[bool, str]:
        times = stream.delta_times
        if stream.error or not times:
            return False, f"{stream.error or 'no tokens'} (POST {stream.post_status})"
        distinct = len({round(t, 3) for t in times})
        ok = distinct >= 2 and stream.final is not None
        return ok, (
            f"{stream.how}: {len(times)} deltas at {distinct} distinct times over "
            f"{(times[-1] - times[0]) * 1000:.0f} ms, first after "
            f"{(times[0] - stream.post_sent_at) * 1000:.0f} ms, final event "
            f"{'yes' if stream.final else 'no'}"
        )

    def followed(self, first: Stream, follow: Stream) -> tuple[bool, str]:
        ok, evidence = self.streamed(follow)
        same = follow.conversation_id == first.conversation_id is not None
        return ok and same, f"{evidence}; same conversation: {same}"

    def titled(self, stream: Stream, wait: float = 30.0) -> tuple[bool, str]:
        deadline = time.monotonic() + wait
        title = None
        while time.monotonic() < deadline:
            got = self.client.request("GET", f"/api/convos/{stream.conversation_id}")
            title = got.json().get("title") if got.status_code == 200 else None
            if title and title != "New Chat":
                return True, repr(title)
            time.sleep(2)
        return False, f"still {title!r} after {wait:g} s (TITLE_CONVO, the title model?)"

    def logout(self) -> tuple[bool, str]:
        before = dict(self.client.cookies)
        response = self.client.logout()
        self.client.cookies, self.client.token = before, None
        after = self.client.refresh()
        return response.status_code == 200 and after.status_code != 200, (
            f"logout {response.status_code}; refresh with the old cookie {after.status_code}"
        )
