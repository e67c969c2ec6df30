"""Cold-start inputs: the config object from S3 and the secrets from SSM Parameter Store.

boto3 costs ~20 MB of memory and ~200 ms of imports, needed once. The fetch therefore runs in
a forked child that exits afterwards: the long-lived runtime never holds boto3 in memory, and
the parent imports its own modules while the child works. The child writes the config file
itself and hands the secret values back through a pipe; nothing here logs a value.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from streaming_proxy.errors import InitError
from streaming_proxy.settings import Settings

SSM_BATCH = 10  # GetParameters accepts at most 10 names per call


class ColdStartFetch:
    """Runs the fetch in a child process; ``result()`` returns the resolved secrets."""

    def __init__(self, settings: Settings) -> None:
        self._pid = 0
        self._read_fd = -1
        if not settings.fetches_anything:
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: fetch, report, exit without running the parent's cleanup
            os.close(read_fd)
            try:
                report: dict[str, Any] = {"secrets": fetch(settings)}
            except InitError as exc:
                report = {"errorType": exc.error_type, "message": exc.message}
            except BaseException as exc:
                report = {"errorType": "Runtime.ColdStartError", "message": repr(exc)}
            payload = json.dumps(report).encode()
            view = memoryview(payload)
            while view:
                view = view[os.write(write_fd, view) :]
            os._exit(0)
        os.close(write_fd)
        self._pid, self._read_fd = pid, read_fd

    def result(self) -> dict[str, str]:
        if not self._pid:
            return {}
        chunks = []
        while chunk := os.read(self._read_fd, 65536):
            chunks.append(chunk)
        os.close(self._read_fd)
        _, status = os.waitpid(self._pid, 0)
        if not chunks:
            raise InitError(
                "Runtime.ColdStartError",
                f"the cold-start fetch process died (wait status {status}) before reporting",
            )
        report = json.loads(b"".join(chunks))
        if "errorType" in report:
            raise InitError(report["errorType"], report["message"])
        return report["secrets"]


def fetch(settings: Settings) -> dict[str, str]:
    """Fetch the config object and the secrets concurrently; raise InitError naming the cause."""
    import boto3  # noqa: PLC0415 - imported only in the short-lived fetch process
    from botocore.config import Config  # noqa: PLC0415

    session = boto3.session.Session()
    config = Config(
        connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"}
    )
    failure: list[InitError] = []
    thread = None
    if settings.config_bucket and settings.config_key:
        s3 = session.client("s3", config=config)

        def fetch_config() -> None:
            try:
                write_config(s3, settings)
            except InitError as exc:
                failure.append(exc)

        thread = threading.Thread(target=fetch_config)
        thread.start()
    secrets: dict[str, str] = {}
    try:
        if settings.ssm_secrets:
            secrets = resolve_secrets(session.client("ssm", config=config), settings.ssm_secrets)
    finally:
        if thread is not None:
            thread.join()
    if failure:
        raise failure[0]
    return secrets


def write_config(s3: Any, settings: Settings) -> None:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    where = f"s3://{settings.config_bucket}/{settings.config_key}"
    try:
        body = s3.get_object(Bucket=settings.config_bucket, Key=settings.config_key)["Body"].read()
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = err.get("Code", "Unknown")
        hint = {
            "NoSuchKey": "the object does not exist: check CONFIG_S3_KEY",
            "NoSuchBucket": "the bucket does not exist: check CONFIG_S3_BUCKET",
            "AccessDenied": "the function's role may not s3:GetObject it",
            "403": "the function's role may not s3:GetObject it",
            "404": "the object does not exist: check CONFIG_S3_BUCKET and CONFIG_S3_KEY",
        }.get(code, err.get("Message", "see the AWS error code"))
        raise InitError(
            "Runtime.ConfigError", f"cannot read the config object {where}: {code} ({hint})"
        ) from None
    except BotoCoreError as exc:
        raise InitError(
            "Runtime.ConfigError", f"cannot read the config object {where}: {exc}"
        ) from None
    if settings.config_domain_from and settings.domain_server_host:
        body = body.replace(
            settings.config_domain_from.encode(), settings.domain_server_host.encode()
        )
    path = settings.config_path
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(body)
        os.replace(tmp, path)
    except OSError as exc:
        raise InitError(
            "Runtime.ConfigError", f"cannot write the config to CONFIG_PATH={path}: {exc.strerror}"
        ) from None


def resolve_secrets(ssm: Any, wanted: Mapping[str, str]) -> dict[str, str]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    names = list(dict.fromkeys(wanted.values()))
    values: dict[str, str] = {}
    missing: list[str] = []
    for start in range(0, len(names), SSM_BATCH):
        batch = names[start : start + SSM_BATCH]
        try:
            response = ssm.get_parameters(Names=batch, WithDecryption=True)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise InitError(
                "Runtime.SecretsError",
                f"cannot read SSM parameters {', '.join(batch)}: {err.get('Code', 'Unknown')} "
                f"({err.get('Message', '')}); the function's role needs ssm:GetParameters on them "
                "(and kms:Decrypt on their key)",
            ) from None
        except BotoCoreError as exc:
            raise InitError(
                "Runtime.SecretsError", f"cannot reach SSM Parameter Store: {exc}"
            ) from None
        for param in response.get("Parameters", []):
            values[param["Name"]] = param["Value"]
            if "ARN" in param:
                values[param["ARN"]] = param["Value"]
        missing += response.get("InvalidParameters", [])
    missing += [n for n in names if n not in values and n not in missing]
    if missing:
        env_names = [env for env, name in wanted.items() if name in missing]
        raise InitError(
            "Runtime.SecretsError",
            f"SSM parameters not found: {', '.join(missing)} (for {', '.join(env_names)}); "
            "create them or fix SSM_SECRETS",
        )
    return {env: values[name] for env, name in wanted.items()}
