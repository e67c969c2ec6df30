"""Fixtures of the runtime tests: a moto server for S3/SSM and the local Lambda stack."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from emulator.http11 import free_port

HERE = Path(__file__).parent
UPSTREAM_APP = HERE / "upstream_app.py"
REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str) -> dict[str, str]:
    """Environment that points boto3 (in the runtime process too) at moto."""
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }


@pytest.fixture
def aws(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Callable[[str], object]:
    for k, v in aws_env.items():
        monkeypatch.setenv(k, v)
    return lambda service: boto3.client(
        service, region_name=REGION, endpoint_url=aws_env["AWS_ENDPOINT_URL"]
    )


def upstream_command() -> str:
    return f"{sys.executable} {UPSTREAM_APP}"


def runtime_env(**extra: str) -> dict[str, str]:
    env = {
        "UPSTREAM_COMMAND": upstream_command(),
        "UPSTREAM_PORT": str(free_port()),
        "UPSTREAM_DIRS": "",
        "PYTHONPATH": os.pathsep.join(
            [str(HERE.parent.parent / "runtime"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    env.update(extra)
    return env


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[object]:
    """A real redis-server of the test's own (tests/runtime/redis_server.py)."""
    from redis_server import RedisServer

    server = RedisServer(tmp_path)
    yield server
    server.stop()
