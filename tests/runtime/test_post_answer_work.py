"""Work a chat answer leaves running: finished before Lambda may freeze, not on Managed Instances.

The stand-in LibreChat saves a new conversation's title TITLE_AFTER seconds of running time
after the answer and writes the marker file then: a marker present while the environment is
frozen proves the work finished before the runtime asked for the next event.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from conftest import runtime_env
from streaming_proxy.background import BackgroundRule, Work
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.settings import load
from test_readiness import librechat
from test_runtime_lifecycle import BROWSER

from emulator import LocalStack

NEW_CONVERSATION = {"text": "hi", "parentMessageId": "00000000-0000-0000-0000-000000000000"}


def hold_of(stack: LocalStack) -> dict[str, object]:
    """The hold's log record; it is written just before the worker asks for the next event."""
    return json.loads(stack.wait_for_log('"message":"background hold"', timeout=30))


@pytest.mark.slow  # starts the runtime
@pytest.mark.parametrize("version", ["v0.8.2", "v0.8.2-rc1"])
def test_the_title_of_a_new_conversation_is_saved_before_the_environment_may_freeze(
    tmp_path, version
):
    """v0.8.2: the title follows the background job; v0.8.2-rc1: the streamed answer."""
    marker = tmp_path / "title"
    env = librechat(tmp_path, version, STARTUP="0", TITLE_AFTER="0.3")
    with LocalStack(env=env).start(init_timeout=30) as st:
        answer = httpx.post(
            f"{st.url}/api/agents/chat/openAI",
            params={"work": 0.2, "marker": str(marker)},
            json=NEW_CONVERSATION,
            headers=BROWSER,
            timeout=30,
        )
        assert answer.status_code == 200
        hold = hold_of(st)
        assert hold["title"] == "saved"
        assert hold.get("outcome", "finished") == "finished"  # rc1 has no job to wait for
        assert marker.exists()
        deadline = time.monotonic() + 10
        while not st.frozen:  # then the runtime asks for the next event and Lambda freezes
            assert time.monotonic() < deadline, "the runtime never went back to /next"
            time.sleep(0.02)


@pytest.mark.slow  # starts the runtime
def test_the_title_wait_is_bounded(tmp_path):
    """A title that never comes (titles off in librechat.yaml, a failing model) ends the wait
    at BACKGROUND_TITLE_WAIT; the environment goes back to serving."""
    env = librechat(tmp_path, "v0.8.2", STARTUP="0", TITLE_AFTER="600", BACKGROUND_TITLE_WAIT="0.5")
    with LocalStack(env=env).start(init_timeout=30) as st:
        url = f"{st.url}/api/agents/chat/openAI"
        httpx.post(url, json=NEW_CONVERSATION, headers=BROWSER, timeout=30)
        assert hold_of(st)["title"] == "not saved in BACKGROUND_TITLE_WAIT"
        assert httpx.get(f"{st.url}/api/test/startup", timeout=30).status_code == 200


STARTED = json.dumps({"streamId": "c-1", "conversationId": "c-1", "status": "started"}).encode()


@pytest.mark.slow  # starts the runtime
@pytest.mark.parametrize(
    ("body", "env", "title"),
    [
        (NEW_CONVERSATION, {}, True),
        ({**NEW_CONVERSATION, "conversationId": "new"}, {}, True),
        ({"text": "more", "parentMessageId": "m-1", "conversationId": "c-1"}, {}, False),
        ({**NEW_CONVERSATION, "isTemporary": True}, {}, False),
        (NEW_CONVERSATION, {"TITLE_CONVO": "false"}, False),  # LibreChat makes no titles then
        (NEW_CONVERSATION, {"TITLE_CONVO": "true", "BACKGROUND_TITLE_WAIT": "0"}, False),
    ],
)
def test_only_the_first_answer_of_a_new_saved_conversation_waits_for_a_title(body, env, title):
    rule = BackgroundRule(load({"AWS_LAMBDA_RUNTIME_API": "x:1", **env}))
    request = UpstreamRequest(
        "POST", "/api/agents/chat/openAI", "/api/agents/chat/openAI", [], json.dumps(body).encode()
    )
    assert rule.started_work(request, 200, [STARTED]) == Work("c-1", job=True, title=title)


MANAGED = {"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}


@pytest.mark.slow  # starts the runtime
def test_on_managed_instances_the_worker_takes_the_next_event_while_the_job_runs(tmp_path):
    """No freeze there, so no hold: with one worker, the next request is served while the
    background job of the first one is still running, and the job still completes."""
    marker = tmp_path / "done"
    env = runtime_env(**MANAGED, AWS_LAMBDA_MAX_CONCURRENCY="1")
    with LocalStack(env=env, freeze=False).start(init_timeout=30) as st:
        started = httpx.post(
            f"{st.url}/api/agents/chat",
            params={"work": 1.5, "marker": str(marker)},
            headers=BROWSER,
            timeout=30,
        )
        assert started.json()["status"] == "started"
        assert httpx.get(f"{st.url}/status/200", timeout=30).status_code == 200
        assert not marker.exists()  # served by the only worker before the job finished
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert time.monotonic() < deadline, "the background job never finished"
            time.sleep(0.05)
        assert not any('"background hold"' in line for line in st.logs)


@pytest.mark.parametrize(
    ("env", "managed"),
    [
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}, True),
        ({"AWS_LAMBDA_MAX_CONCURRENCY": "8"}, True),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}, False),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}, False),
        ({}, False),
    ],
)
def test_managed_instances_are_recognised_by_what_lambda_sets(env, managed):
    assert load({"AWS_LAMBDA_RUNTIME_API": "x:1", **env}).managed_instances is managed
