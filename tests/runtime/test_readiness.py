"""Readiness that means ready: init ends only once the upstream's start-up is complete.

The stand-in LibreChat (librechat_app.py) listens and answers /health at once, then finishes
its start-up only while it runs: frozen after an init that ended at /health, it would still be
starting when the first request thaws it. The stack sets UPSTREAM_HEALTH_PATH=/health, as the
Pulumi program does, and names no version: the runtime finds what to wait for itself.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import httpx
import pytest
from conftest import HERE, runtime_env
from streaming_proxy.readiness import Boot, librechat_version, startup_lines

from emulator import LocalStack

LIBRECHAT_APP = HERE / "librechat_app.py"
GENERATION_JOBS_LINE = "[GenerationJobManager] Configured with"


def librechat(tmp_path: Path, version: str, **extra: str) -> dict[str, str]:
    """The runtime's environment for a stand-in LibreChat of `version`, laid out like the image."""
    script = tmp_path / "api" / "server" / "index.js"
    script.parent.mkdir(parents=True)
    script.write_text("// the runtime reads the version beside this script\n")
    package = {"name": "@librechat/backend", "version": version}
    (tmp_path / "api" / "package.json").write_text(json.dumps(package))
    command = f"{sys.executable} {LIBRECHAT_APP} {script}"
    return runtime_env(UPSTREAM_COMMAND=command, UPSTREAM_HEALTH_PATH="/health", **extra)


@pytest.mark.slow  # starts the runtime
@pytest.mark.parametrize(
    ("version", "signal"),
    [
        ("v0.8.2-rc1", "LibreChat v0.8.2-rc1 logged the end of its start-up"),
        ("v0.8.2", "LibreChat v0.8.2 logged the end of its start-up"),
        ("v0.8.7", "/readyz answered 200"),
    ],
)
def test_init_ends_only_after_the_start_up_after_listening_is_complete(tmp_path, version, signal):
    with LocalStack(env=librechat(tmp_path, version, STARTUP="1")).start(init_timeout=30) as st:
        assert st.init_error is None
        healthy = json.loads(st.wait_for_log('"message":"upstream healthy"'))
        assert healthy["signal"] == signal
        assert st.frozen  # init ended; nothing more happens until a request comes
        # The first request finds LibreChat started up: ended at /health, init would have left
        # it frozen half-way (v0.8.2 logs the OAuth line half-way: not taken for the end).
        assert httpx.get(f"{st.url}/api/test/startup", timeout=30).json() == {"done": True}


@pytest.mark.slow  # starts the runtime
def test_a_restarted_upstream_is_waited_for_again(tmp_path):
    """Readiness belongs to one start: the first boot's start-up line does not count again."""
    once = tmp_path / "crashed-once"
    with LocalStack(env=librechat(tmp_path, "v0.8.2", STARTUP="0.6")).start(init_timeout=30) as st:
        # The upstream dies under this request; the runtime restarts it and sends it again.
        answer = httpx.get(f"{st.url}/api/test/crash", params={"once": str(once)}, timeout=30)
        assert once.exists()
        assert answer.json() == {"done": True}
        st.wait_for_log("upstream exited; restarting it")


@pytest.mark.slow  # starts the runtime
@pytest.mark.parametrize(
    ("version", "waited_for"),
    [
        ("v0.8.2", GENERATION_JOBS_LINE),
        ("v0.8.7", "/readyz still answered 503"),
    ],
)
def test_a_start_up_that_never_completes_fails_naming_what_was_missing(
    tmp_path, version, waited_for
):
    env = librechat(
        tmp_path, version, STARTUP="600", UPSTREAM_READY_TIMEOUT="1", UPSTREAM_INIT_WAIT="0.3"
    )
    with LocalStack(env=env).start(init_timeout=30) as st:
        answer = httpx.get(f"{st.url}/api/test/startup", timeout=30)
        assert answer.status_code == 502
        assert "UPSTREAM_READY_TIMEOUT" in answer.json()["message"]
        assert waited_for in answer.json()["message"]


@pytest.mark.parametrize(
    ("version", "lines"),
    [
        ("v0.7.9", ()),
        ("v0.8.0-rc4", ()),  # MCP start-up logs nothing without MCP servers: /health it is
        (
            "v0.8.0",
            ("OAuth reconnect manager initialized successfully", "Failed to initialize OAuth"),
        ),
        (
            "v0.8.2-rc1",
            ("OAuth reconnect manager initialized successfully", "Failed to initialize OAuth"),
        ),
        ("v0.8.2-rc2", (GENERATION_JOBS_LINE,)),
        ("v0.8.5", (GENERATION_JOBS_LINE,)),
        ("v0.8.6-rc1", (GENERATION_JOBS_LINE,)),  # /readyz came with v0.8.6 itself
        ("v0.8.6", ()),
        ("0.9.1", ()),
        ("custom-build", ()),
        (None, ()),
    ],
)
def test_the_start_up_line_follows_librechat_s_source_per_version(version, lines):
    assert startup_lines(version) == lines


def test_the_version_comes_from_librechat_s_package_json_only(tmp_path):
    script = tmp_path / "app" / "api" / "server" / "index.js"
    script.parent.mkdir(parents=True)
    script.write_text("")
    (tmp_path / "app" / "package.json").write_text('{"name": "LibreChat", "version": "v0.8.2"}')
    assert librechat_version(("node", str(script))) == "v0.8.2"
    assert librechat_version(("node", str(tmp_path / "missing.js"))) is None
    (tmp_path / "app" / "api" / "package.json").write_text('{"name": "other", "version": "1.0.0"}')
    assert librechat_version(("node", str(script))) == "v0.8.2"  # not another package's
    (tmp_path / "app" / "package.json").write_text("{not json")
    assert librechat_version(("node", str(script))) is None


@pytest.mark.parametrize(
    ("answer", "ready", "signal"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nOK", True, "/readyz answered 200"),
        (b"HTTP/1.1 503 Service Unavailable\r\n\r\nNOT_READY", False, ""),
        (b"HTTP/1.1 200 OK\r\n\r\n<!DOCTYPE html><html lang='en-US'></html>", True, "health"),
        (b"HTTP/1.1 404 Not Found\r\n\r\nnot found", True, "health"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", True, "health"),  # not HTTP: no readiness endpoint
    ],
)
def test_only_a_real_readiness_endpoint_is_waited_for(answer, ready, signal):
    """What /readyz answers decides; an upstream without one is ready at its health path."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def serve() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        boot = Boot("127.0.0.1", server.getsockname()[1], None)
        assert boot.ready() is ready
        assert boot.signal == signal
