"""One invocation, each step in its own module, in request order.

1. events.py maps the event to an HTTP request;
2. transport.py sends it to the upstream and reads the response head;
3. responses.py maps that head to API Gateway's prelude;
4. stream.py relays the body into the Runtime API's response stream (runtime_api.py);
5. background.py holds the invocation while work the answer started still runs (its rule
   is asked beforehand only whether the start of the answer is to be kept for it).

The request's Outcome collects what each step found; the request log line and its metrics
are views of it. A step that fails before the response started raises RequestError, which
becomes a clean JSON error response here.
"""

from __future__ import annotations

import time
from functools import partial

from streaming_proxy import events, log, metrics, responses
from streaming_proxy.background import CAPTURE_LIMIT, BackgroundRule
from streaming_proxy.errors import RequestError
from streaming_proxy.outcome import Outcome
from streaming_proxy.resumable import resumable_for
from streaming_proxy.runtime_api import Invocation, ResponseStream, RuntimeApiClient
from streaming_proxy.settings import Settings
from streaming_proxy.stream import relay
from streaming_proxy.stream_check import StreamCheck
from streaming_proxy.transport import Transport
from streaming_proxy.upstream import Upstream
from streaming_proxy.watchdog import Watchdog


class Proxy:
    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self.settings = settings
        self.transport = Transport(settings, upstream)
        self.watchdog = Watchdog(settings.sse_keepalive_interval, settings.stream_idle_timeout)
        self.background = BackgroundRule(settings)
        self.stream_check = StreamCheck(settings.stream_check_path, settings.stream_check_token)
        self.resumable = resumable_for(settings, self.transport, self.watchdog)
        self._host_header = f"{settings.upstream_host}:{settings.upstream_port}".encode()

    def handle(self, api: RuntimeApiClient, inv: Invocation) -> None:
        """Serve one invocation; never raises, so no event can stop the runtime."""
        started = time.monotonic()
        cutoff = started + (inv.deadline_ms / 1000 - time.time()) - self.settings.deadline_margin
        outcome = Outcome(inv.request_id, started)
        stream = api.response_stream(inv.request_id)
        try:
            self._serve(inv, stream, cutoff, outcome)
        except RequestError as exc:
            outcome.status, outcome.error = exc.status, exc.detail
            try:
                stream.start(*responses.error(exc.status, exc.message, exc.headers), last=True)
            except OSError:
                outcome.runtime_api = stream.abandon()
        except OSError as exc:  # the Runtime API connection broke mid-response
            outcome.error = f"Runtime API connection broke: {exc.strerror or type(exc).__name__}"
            outcome.runtime_api = stream.abandon()
        except Exception as exc:
            name = type(exc).__name__
            outcome.error = f"internal error: {name}"
            try:
                if stream.started and not stream.finished:
                    stream.finish("Runtime.InternalError", f"{name} in the runtime")
                elif not stream.started:
                    error = responses.error(500, f"internal error in the runtime: {name}")
                    stream.start(*error, last=True)
            except OSError:
                outcome.runtime_api = stream.abandon()
        outcome.duration_ms = outcome.elapsed_ms()
        log.log(outcome.level, "request", emf=metrics.request(outcome), **outcome.fields())

    def _serve(
        self, inv: Invocation, stream: ResponseStream, cutoff: float, outcome: Outcome
    ) -> None:
        request = events.from_invocation(
            inv.body, inv.trace_id, self.settings.base_path, self._host_header
        )
        outcome.method, outcome.path = request.method, request.path
        if self.stream_check.handles(request):  # answered here, never by the upstream
            self.stream_check.serve(request, stream, cutoff, outcome)
            return
        carried = self.resumable
        if carried and carried.handles(request) and carried.serve(request, stream, cutoff, outcome):
            return  # a resumable answer's stream, carried from another environment
        # Only an answer that may leave work running needs its start kept for step 5.
        keep = CAPTURE_LIMIT if self.background.may_start_work(request) else 0
        body_start, work = None, None
        turn = None
        try:
            with self.transport.send(request, cutoff) as response:
                outcome.upstream_headers_ms = outcome.elapsed_ms(3)
                if keep and carried:  # a started job's turn is registered before the answer
                    turn = carried.register(request, response, cutoff)
                head = responses.head(request.method, response.status, response.headers)
                body_start = relay(stream, head, response, self.watchdog, cutoff, outcome, keep)
            work = self.background.started_work(request, response.status, body_start or [])
        finally:
            if carried and turn and not (body_start and work and work.job):
                carried.release(turn)  # the answer did not reach the client: nothing to carry
                turn = None
        if work:
            outcome.stream_ms = outcome.elapsed_ms()
            publish = partial(carried.publish, request, turn) if carried and turn else None
            self.background.hold(
                request, work, cutoff, self.transport.fetch, inv.request_id, publish
            )
