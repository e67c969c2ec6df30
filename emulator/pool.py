"""The function's execution environments and how invocations are routed to them.

As Lambda does: an invocation goes to an idle environment (a worker waiting in /next), the
most recently idle first; when every environment is busy, or holding after its response
(the runtime has not come back to /next), a new environment is started, each with its own
runtime and upstream, and the invocation waits for its init (a new environment's first
invocation waits for its init too); at `max_environments` (reserved
concurrency, or Managed Instances' maximum execution environments) Lambda refuses the invoke
with 429 TooManyRequestsException, which API Gateway answers with 500 Internal server error
(lambda/latest/dg/services-apigateway-errors.html: an invoke Lambda rejects becomes a 500).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from emulator.environment import Environment
from emulator.invocation import GATEWAY_ERROR, Invocation
from emulator.runtime_api import STOPPED

# Lambda routes to an environment only once its runtime is back in /next. A local client can
# send its next request before that: it sees the end of a response (a 204, a Content-Length
# body) before the runtime has finished posting it and called /next again, and it is closer
# than any client of Lambda is. So a request that finds no idle environment first waits this
# long for one; an environment still busy (or holding after its response) after that is busy.
RETURN_GRACE = 1.0
THROTTLED = {
    "errorType": "TooManyRequestsException",
    "errorMessage": "Rate Exceeded.",
    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
}


class Pool:
    """Environments, started on demand up to `max_environments`, and the routing to them."""

    def __init__(
        self,
        create: Callable[[int], Environment],
        max_environments: int = 1,
        *,
        verbose: bool = False,
    ) -> None:
        if max_environments < 1:
            raise ValueError(f"max_environments must be at least 1, not {max_environments}")
        self.max_environments = max_environments
        self.environments: list[Environment] = []
        self.init_error: dict[str, Any] | None = None
        self.throttled = 0  # invocations refused because every environment was busy
        self._create = create
        self._verbose = verbose
        # Reentrant: an invocation that fails while being routed ends under this lock.
        self._cond = threading.Condition(threading.RLock())
        self._stopping = False

    def add(self) -> Environment:
        """Start one more environment (its init runs in the background)."""
        with self._cond:
            env = self._create(len(self.environments) + 1)
            self.environments.append(env)
            env.start()
            return env

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            envs = list(self.environments)
            self._cond.notify_all()
        stoppers = [threading.Thread(target=env.stop) for env in envs]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def submit(self, inv: Invocation) -> None:
        """Route `inv` to an environment, starting one if needed, or refuse it."""
        with self._cond:
            place = self._place()
            if isinstance(place, Environment):
                place.in_flight += 1
                inv.environment = place.number
                # Under the routing lock: the idle worker counted above is still there.
                place.submit(inv)
                return
        if place is THROTTLED:
            why = (
                f"throttled: all {self.max_environments} environment(s) busy; raise "
                "--max-environments (make local ENVIRONMENTS=N) to let Lambda start more"
            )
            self._say(why)
            if inv.source == "gateway":
                # API Gateway's own body, plus why, so a second browser tab is not a riddle;
                # the key is the emulator's and says so (real API Gateway sends only `message`).
                inv.refuse(500, {**GATEWAY_ERROR, "emulator": why}, dict(THROTTLED))
            else:
                body = {"Reason": THROTTLED["Reason"], "Type": "User", "message": "Rate Exceeded."}
                inv.refuse(429, body, dict(THROTTLED))
        else:
            inv.refuse(502, GATEWAY_ERROR, place)

    def _place(self) -> Environment | dict[str, Any]:
        """The environment for the next invocation, or the error that refuses it."""
        grace_until: float | None = None
        while True:
            if self.init_error is not None:
                return self.init_error
            if self._stopping:
                return STOPPED
            envs = self.environments
            idle = [env for env in envs if env.runtime.waiting]
            if idle:
                return max(idle, key=lambda env: env.idle_since)
            for env in envs:  # starting (or restarting): the invocation waits for its init
                if not env.runtime.initialized and env.in_flight < env.capacity:
                    return env
            now = time.perf_counter()
            if grace_until is None:
                grace_until = now + RETURN_GRACE
            if now < grace_until:
                self._cond.wait(grace_until - now)
                continue
            if len(envs) < self.max_environments:
                self._say(
                    f"every environment is busy; starting environment {len(envs) + 1} "
                    f"(at most {self.max_environments})"
                )
                return self.add()
            self.throttled += 1
            return THROTTLED

    # -- Router ----------------------------------------------------------------------------

    def on_ready(self, env: Environment) -> None:
        with self._cond:
            env.idle_since = time.perf_counter()
            self._cond.notify_all()

    def on_released(self, env: Environment, inv: Invocation) -> None:
        with self._cond:
            env.in_flight -= 1
            self._cond.notify_all()

    def on_init_error(self, env: Environment, error: dict[str, Any]) -> None:
        with self._cond:
            if self.init_error is None:
                self.init_error = error

    def _say(self, text: str) -> None:
        if self._verbose:
            print(f"emulator: {text}", file=sys.stderr, flush=True)
