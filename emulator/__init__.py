"""Local API Gateway (REST, streaming) + Lambda Runtime API emulator.

`LocalStack` runs a Lambda runtime (by default `python -m streaming_proxy`) as a subprocess
against an emulated Runtime API, and serves real HTTP requests to it as REST v1 proxy events,
streaming the prelude-framed responses back as they arrive. It freezes the runtime (SIGSTOP)
while it waits in /next, as Lambda does, enforces the function timeout, and starts more
environments when every one is busy (up to `max_environments`). `managed_instances=N`
emulates Lambda Managed Instances instead: N concurrent invocations per environment, never
frozen; a timed-out invocation gets its 504 but the environment is not restarted.

    from emulator import LocalStack
    with LocalStack(env={"UPSTREAM_COMMAND": "..."}, function_timeout=30) as stack:
        httpx.get(stack.url + "/health")
"""

from __future__ import annotations

from emulator.invocation import Invocation, InvokeResult
from emulator.stack import LocalStack
from emulator.wire import WireLog, WireRequest

__all__ = ["Invocation", "InvokeResult", "LocalStack", "WireLog", "WireRequest"]
