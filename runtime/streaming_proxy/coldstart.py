"""Cold-start inputs: the config object from S3 and the secrets from SSM Parameter Store.

botocore costs ~25 MB of memory and ~200 ms of imports and client set-up, needed once. Each
fetch therefore runs in a forked child that exits afterwards: the long-lived runtime never
holds botocore in memory, and the config and the secrets are fetched at once on separate
cores (botocore's set-up is CPU-bound Python, which threads would serialize). The config
child writes the file itself; the secrets child hands the values back through a pipe.
Nothing here logs a value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from streaming_proxy.errors import InitError
from streaming_proxy.settings import Settings

SSM_BATCH = 10  # GetParameters accepts at most 10 names per call


class Forked:
    """Run ``job`` in a forked child; ``result()`` returns its JSON value or raises InitError."""

    def __init__(self, job: Callable[[], Any]) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns into the caller's code
            code = 0
            try:
                os.close(read_fd)
                try:
                    report: dict[str, Any] = {"value": job()}
                except InitError as exc:
                    report = {"errorType": exc.error_type, "message": exc.message}
                except BaseException as exc:  # whatever happens must reach the parent
                    report = {"errorType": "Runtime.ColdStartError", "message": repr(exc)}
                view = memoryview(json.dumps(report).encode())
                while view:
                    view = view[os.write(write_fd, view) :]
            except BaseException:  # the parent reports a child that said nothing
                code = 1
            finally:
                os._exit(code)
        os.close(write_fd)
        self._pid, self._read_fd = pid, read_fd

    def result(self) -> Any:
        chunks = []
        while chunk := os.read(self._read_fd, 65536):
            chunks.append(chunk)
        os.close(self._read_fd)
        _, status = os.waitpid(self._pid, 0)
        try:
            report, _ = json.JSONDecoder().raw_decode(b"".join(chunks).decode())
            if "errorType" in report:
                raise InitError(report["errorType"], report["message"])
            return report["value"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InitError(
                "Runtime.ColdStartError",
                f"a cold-start fetch process ended (wait status {status}) without a report",
            ) from None


class ColdStartFetch:
    """Starts the fetches at once, before any thread exists; ``result()`` returns the secrets."""

    def __init__(self, settings: Settings) -> None:
        self._jobs: list[tuple[str, Forked]] = []
        if settings.config_bucket and settings.config_key:
            self._jobs.append(("config", Forked(lambda: fetch_config(settings))))
        if settings.ssm_secrets:
            self._jobs.append(("secrets", Forked(lambda: fetch_secrets(settings))))

    def result(self) -> dict[str, str]:
        secrets: dict[str, str] = {}
        errors: list[InitError] = []
        for name, job in self._jobs:
            try:
                value = job.result()
            except InitError as exc:
                errors.append(exc)
                continue
            if name == "secrets":
                secrets = dict(value)
        if errors:
            raise InitError(errors[0].error_type, "; ".join(e.message for e in errors))
        return secrets


def client(service: str) -> Any:
    """A botocore client with timeouts short enough to report an unreachable endpoint (a VPC
    without NAT or endpoints) well inside Lambda's 10 s init.

    botocore is boto3's core; its session alone skips boto3's resource and s3transfer
    imports, which these processes would never use.
    """
    import botocore.session  # noqa: PLC0415 - imported only in the short-lived fetch processes
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}
    )
    # Lambda sets AWS_REGION; botocore on its own reads only AWS_DEFAULT_REGION.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return botocore.session.get_session().create_client(service, region_name=region, config=config)


def fetch_config(settings: Settings) -> None:
    write_config(client("s3"), settings)


def fetch_secrets(settings: Settings) -> dict[str, str]:
    return resolve_secrets(client("ssm"), settings.ssm_secrets)


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
