"""Cold start, then the event loop: one worker per allowed concurrent invocation.

The cold-start fetch is forked before any thread exists; the proxy's own imports happen
while the upstream boots. Init ends as soon as the upstream is healthy, or after the init
budget (~9.5 s of Lambda's 10 s) with the first invocation waiting on ("async init"), or
fails once UPSTREAM_READY_TIMEOUT is spent, if that comes first. Every init failure is a
JSON log line and an /init/error with a Runtime.* type, never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import Protocol

from streaming_proxy import log, metrics, snapstart
from streaming_proxy.coldstart import ColdStartFetch
from streaming_proxy.errors import InitError, UpstreamFailed
from streaming_proxy.runtime_api import Invocation, RuntimeApiClient
from streaming_proxy.settings import Settings, SettingsError, load, relay_redis_url
from streaming_proxy.stream_check import STREAM_CHECK_TOKEN
from streaming_proxy.upstream import Upstream, upstream_env


class Handler(Protocol):
    """Serves one invocation and never raises (proxy.Proxy)."""

    def handle(self, api: RuntimeApiClient, inv: Invocation) -> None: ...


#: Makes the handler once init is done (proxy.Proxy).
HandlerFactory = Callable[[Settings, Upstream], Handler]


def main(handler_factory: Callable[[], HandlerFactory]) -> int:
    """Init, then serve; ``handler_factory`` is called (and imports the request path) while
    the upstream boots rather than before it starts."""
    started = time.monotonic()
    try:
        settings = load()
    except SettingsError as exc:
        return _fail_init(os.environ.get("AWS_LAMBDA_RUNTIME_API"), "Runtime.ConfigError", str(exc))
    log.set_level(settings.log_level)
    metrics.configure(settings.function_name)
    api = RuntimeApiClient(settings.runtime_api)
    upstream: Upstream | None = None
    snap = snapstart.HookChannel() if settings.snap_start else None
    try:
        fetch = ColdStartFetch(settings)  # forks: must come before any thread is started
        secrets = fetch.result()
        token = secrets.pop(STREAM_CHECK_TOKEN, None)  # the runtime's own: never LibreChat's
        if token is not None:
            settings = dataclasses.replace(settings, stream_check_token=token)
        if settings.fetches_anything:
            elapsed_ms = round((time.monotonic() - started) * 1000, 1)
            log.info(
                "config and secrets fetched",
                emf=metrics.config_fetch(elapsed_ms),
                configObject=bool(settings.config_bucket),
                secrets=len(secrets),
                elapsedMs=elapsed_ms,
            )
        if settings.stream_relay and not settings.stream_relay_redis:  # REDIS_URI from SSM
            settings = replace(
                settings, stream_relay_redis=relay_redis_url({**os.environ, **secrets})
            )
        upstream = Upstream(
            settings.upstream_command,
            settings.upstream_host,
            settings.upstream_port,
            settings.health_path,
            upstream_env(
                os.environ,
                settings.upstream_host,
                settings.upstream_port,
                settings.config_path if settings.config_bucket else None,
                secrets,
                settings.carries_streams,
            ),
            settings.upstream_dirs,
        )
        del secrets
        if snap is None:
            upstream.start()
        else:
            upstream.start((snap.child_fd,), snap.upstream_env(os.environ))
            snap.spawned()
        _stop_upstream_on_sigterm(upstream)
        make_handler = handler_factory()

        # SnapStart: the snapshot must hold a ready LibreChat; init may take up to 130 s.
        init_until = started + (settings.ready_timeout if snap else settings.init_budget)
        ready_until = time.monotonic() + settings.ready_timeout
        ready = upstream.wait_healthy(min(init_until, ready_until))
        if not ready and ready_until <= init_until:
            raise upstream.not_ready(settings.ready_timeout)
    except (InitError, UpstreamFailed) as exc:
        if upstream is not None:
            upstream.stop()
        error_type = exc.error_type if isinstance(exc, InitError) else "Runtime.UpstreamError"
        return _fail_init(settings.runtime_api, error_type, str(exc), api)
    except Exception as exc:  # a bug: still reported, but its text may quote a value
        if upstream is not None:
            upstream.stop()
        message = f"{type(exc).__name__} in the runtime during init (a bug: please report it)"
        return _fail_init(settings.runtime_api, "Runtime.InternalError", message, api)
    if snap is not None and (code := _snap_start(api, upstream, snap, settings)):
        return code
    init_ms = round((time.monotonic() - started) * 1000, 1)
    log.info(
        "init done" if ready else "init budget spent; the first invocation waits for the upstream",
        emf=metrics.cold_start("ready" if ready else "async", init_ms),
        initMs=init_ms,
        concurrency=settings.max_concurrency,
        managedInstances=settings.managed_instances,
    )

    handler = make_handler(settings, upstream)
    for n in range(settings.max_concurrency):
        client = api if n == 0 else RuntimeApiClient(settings.runtime_api)
        threading.Thread(
            target=_serve, args=(handler, client), name=f"worker-{n}", daemon=True
        ).start()
    _wait_for_signals()
    return 1


def _snap_start(
    api: RuntimeApiClient, upstream: Upstream, channel: snapstart.HookChannel, settings: Settings
) -> int:
    """Before-snapshot, restore/next, after-restore; 0 once restored and ready, else the
    exit code after reporting the failure (init/error before the snapshot, restore/error
    after it)."""
    try:
        snapstart.before_snapshot(channel)
    except snapstart.HookFailed as exc:
        upstream.stop()
        return _fail_init(settings.runtime_api, exc.error_type, exc.message, api)
    log.info("SnapStart: ready for the snapshot; waiting in restore/next")
    try:
        api.restore_next()
    except OSError as exc:
        log.error("SnapStart: restore/next failed; exiting", error=f"{type(exc).__name__}: {exc}")
        upstream.stop()
        return 1
    restored = time.monotonic()
    deadline = restored + snapstart.RESTORE_BUDGET - snapstart.RESTORE_MARGIN
    try:
        snapstart.after_restore(channel, deadline)
        if not upstream.wait_healthy(deadline):
            raise snapstart.HookFailed(
                snapstart.AFTER_RESTORE_ERROR,
                f"SnapStart after: the upstream did not answer {settings.health_path} within "
                f"the {snapstart.RESTORE_BUDGET:g} s restore budget",
            )
    except (snapstart.HookFailed, UpstreamFailed) as exc:
        message = exc.message if isinstance(exc, snapstart.HookFailed) else exc.summary
        log.error("SnapStart: after-restore failed", errorType=snapstart.AFTER_RESTORE_ERROR,
                  error=message)  # fmt: skip
        try:
            api.restore_error(snapstart.AFTER_RESTORE_ERROR, message)
        except OSError as report:
            log.error("could not report the restore error to the Runtime API", error=str(report))
        upstream.stop()
        return 1
    restore_ms = round((time.monotonic() - restored) * 1000, 1)
    log.info("SnapStart: restored and ready", restoreMs=restore_ms)
    return 0


def _serve(handler: Handler, api: RuntimeApiClient) -> None:
    """The event loop of one worker: ask for an event, serve it, repeat."""
    handle = handler.handle
    try:
        while True:
            handle(api, api.next())
    except Exception as exc:
        log.error("the Runtime API failed; exiting", error=f"{type(exc).__name__}: {exc}")
        os._exit(1)


def _fail_init(
    address: str | None, error_type: str, message: str, api: RuntimeApiClient | None = None
) -> int:
    log.error("init failed", emf=metrics.cold_start("failed"), errorType=error_type, error=message)
    if address:
        try:
            (api or RuntimeApiClient(address)).init_error(error_type, message)
        except OSError as exc:
            log.error("could not report the init error to the Runtime API", error=str(exc))
    else:
        print(message, file=sys.stderr)
    return 1


def _stop_upstream_on_sigterm(upstream: Upstream) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("SIGTERM: stopping the upstream")
        upstream.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)


def _wait_for_signals() -> None:
    """Park the main thread where signal handlers can run.

    The kernel may deliver SIGTERM to any thread; the wakeup fd wakes the main thread
    whichever it was, and Python then runs the handler here.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd)
    while True:
        os.read(read_fd, 64)
