"""`make local` as a newcomer meets it: the URL is the last thing printed at start, `--log
pretty` makes the log readable, a throttled second request says why, `--help` tells the truth."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from emulator.__main__ import build_parser, readable
from emulator.http11 import free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_url_comes_last_the_log_is_readable_and_a_throttled_request_says_why() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--log", "pretty"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DEMO_TOKEN_DELAY": "0.05"},
    )
    try:
        assert proc.stdout is not None
        start: list[str] = []
        while not (line := proc.stdout.readline()).startswith("  or open"):
            assert line, "the emulator stopped before printing its URL:\n" + "".join(start)
            start.append(line)
        ready = start[-1]
        assert ready.startswith("Local API Gateway ready")
        assert ready.rstrip().endswith(f"curl -N http://127.0.0.1:{port}/api/demo/chat")
        assert start[-2] == "\n", "a blank line sets the URL apart"
        logs = [entry for entry in start[:-2] if entry.strip()]
        assert any(" INFO  init done  initMs=" in entry for entry in logs)
        assert not any(entry.startswith("{") or "_aws" in entry for entry in logs)

        chat = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/demo/chat", timeout=10)
        first = chat.read(6)  # the chat holds the only environment while it streams
        holder = threading.Thread(target=chat.read)
        holder.start()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10)
            raise AssertionError("a second request on one environment must be throttled")
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read())
        holder.join(10)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
    assert first == b"data: "
    assert status == 500
    assert body["message"] == "Internal server error"  # what API Gateway itself sends
    assert body["emulator"].startswith("throttled: all 1 environment(s) busy")
    assert "make local ENVIRONMENTS=N" in body["emulator"]


def test_pretty_lines_keep_the_fields_and_drop_the_metric_declaration() -> None:
    line = json.dumps(
        {
            "timestamp": "2026-12-04T16:11:45.679Z",
            "level": "INFO",
            "message": "request",
            "status": 200,
            "path": "/x",
            "held": False,
            "_aws": {"CloudWatchMetrics": []},
            "FunctionName": "librechat-local",
        }
    )
    assert readable(line) == '16:11:45.679 INFO  request  status=200 path="/x" held=false'
    assert readable("demo-upstream: plain text") == "demo-upstream: plain text"


def test_help_says_managed_instance_timeouts_are_enforced() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "timeouts not enforced" not in text
    assert "--function-timeout still applies (the caller gets 504)" in text
    assert "--log {json,pretty}" in text
