"""Test setup shared by every test: Pulumi mocks installed before program code runs, the
`slow` mark on every test that starts a process or moto, and a guard that fails a test that
runs a whole program (`__main__.py`) unless it is marked `program`.

Pulumi's mocks are process-global. Mocks are installed at import time, so anything that
touches the Pulumi runtime while being imported meets mocks and never a real engine; the
`mocks` fixture then installs a fresh `PulumiMocks` per test (with a fresh event loop and
empty config) and resets the runtime afterwards, so no test sees another's resources. A
test that forgets the fixture then fails loudly instead of sharing another test's mocks.
"""

from __future__ import annotations

import asyncio
import runpy
import subprocess
from collections.abc import Iterator
from typing import Any

import moto.core.models
import moto.server
import pytest
from pulumi.runtime import reset_options, set_all_config

pytest.register_assert_rewrite("tests.pulumi_mocks")

from emulator.wire import WireLog  # noqa: E402
from tests.pulumi_mocks import DEFAULT_REGION, PulumiMocks  # noqa: E402

PROJECT = "librechat-lambda"
TEST_STACK = "test"

# Installed before any test module imports program code (see module docstring).
PulumiMocks().install(project=PROJECT, stack=TEST_STACK)

#: Fixtures that start processes or moto: a test that uses one (even through another fixture)
#: is marked slow.
SLOW_FIXTURES = frozenset(
    {
        "moto_endpoint",  # tests/runtime/conftest.py: moto's server
        "runtime_wire",  # a runtime under the emulator
        "redis_server",  # tests/runtime/conftest.py: a real redis-server
    }
)
#: What a test not marked slow may not call: the ways a test starts a process or moto.
_STARTERS: tuple[tuple[Any, str], ...] = (
    (subprocess.Popen, "_execute_child"),
    (moto.core.models.MockAWS, "start"),
    (moto.server.ThreadedMotoServer, "start"),
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


_running: list[pytest.Item] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """The test being set up, run or torn down (its fixtures of every scope included)."""
    _running.append(item)
    yield
    _running.pop()


def _refuse_unless_slow(original: Any) -> Any:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        item = _running[-1] if _running else None
        if item is not None and item.get_closest_marker("slow") is None:
            pytest.fail(
                f"{item.nodeid} starts a process or moto but is not marked slow: use a fixture "
                "in tests/conftest.py SLOW_FIXTURES, or mark its module "
                "(pytestmark = pytest.mark.slow), so that make test-fast leaves it out",
                pytrace=False,
            )
        return original(*args, **kwargs)

    return guarded


for _owner, _name in _STARTERS:
    setattr(_owner, _name, _refuse_unless_slow(getattr(_owner, _name)))


def _refuse_unless_program(original: Any) -> Any:
    """The edit loop (make test-fast) leaves out the whole-program runs (pyproject.toml's markers)."""

    def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
        item = _running[-1] if _running else None
        if (
            str(path).endswith("__main__.py")
            and item is not None
            and not any(item.get_closest_marker(mark) for mark in ("program", "slow"))
        ):
            pytest.fail(
                f"{item.nodeid} runs a whole program ({path}) but is not marked program: "
                "mark it (@pytest.mark.program, or pytestmark in its module), so that "
                "make test-fast leaves it out",
                pytrace=False,
            )
        return original(path, *args, **kwargs)

    return guarded


runpy.run_path = _refuse_unless_program(runpy.run_path)


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop per test, its leftover tasks cancelled afterwards.

    Registering a resource queues work on the current loop; a test that never awaits it
    would otherwise hand that work to the next test.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def mocks() -> Iterator[PulumiMocks]:
    """Fresh mocks and empty stack config for one test; `mocks.resources` records everything."""
    instance = PulumiMocks(region=DEFAULT_REGION)
    reset_options(project=PROJECT, stack=TEST_STACK)  # drop the root stack of another loop
    set_all_config({"aws:region": DEFAULT_REGION}, secret_keys=[])
    instance.install(project=PROJECT, stack=TEST_STACK)
    yield instance
    set_all_config({}, secret_keys=[])
    reset_options(project=PROJECT, stack=TEST_STACK)


@pytest.fixture
def runtime_wire() -> Iterator[WireLog]:
    """Everything a runtime sends to the Runtime API, parsed by h11 server-side, trailers
    included: pass it as `LocalStack(wire=runtime_wire)`. The test fails if h11 rejected any
    of it (a framing error the emulator would otherwise only see as a cut response)."""
    wire = WireLog()
    yield wire
    assert not wire.errors, f"the runtime sent HTTP that h11 rejects: {wire.errors}"


@pytest.fixture
def moto_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 in this process, under moto's in-process mock: fake credentials in the dev stack's
    region, and no endpoint left over from a test that pointed boto3 at a moto server."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
