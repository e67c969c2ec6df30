"""The services a LibreChat run needs, all on 127.0.0.1: MongoDB (wire server on mongomock),
Redis (Debian's redis-server), the fake model, and LibreChat's own configuration."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e.fake_llm import ENDPOINT, MODEL, FakeLlm
from e2e.mongo_wire import MongoWireServer
from emulator.http11 import free_port

LIBRECHAT_YAML = """\
version: 1.2.1
cache: true
registration:
  socialLogins: []
endpoints:
  custom:
    - name: "{endpoint}"
      apiKey: "e2e-not-a-secret"
      baseURL: "{base_url}"
      models:
        default: ["{model}"]
        fetch: false
      titleConvo: true
      titleModel: "{model}"
      modelDisplayLabel: "E2E"
modelSpecs:
  prioritize: true
  list:
    - name: "e2e-spec"
      label: "E2E fake model"
      default: true
      preset:
        endpoint: "{endpoint}"
        model: "{model}"
"""


class Redis:
    """A throwaway redis-server: no persistence, loopback only."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("e2e: redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("e2e: redis-server did not answer PING within 10 s")

    @property
    def uri(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def kill_clients(self) -> int:
        """CLIENT KILL every other client connection (normal and pub/sub); how many."""
        killed = 0
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            for kind in (b"normal", b"pubsub"):
                s.sendall(b"CLIENT KILL TYPE " + kind + b"\r\n")
                answer = s.recv(64)
                if answer.startswith(b":"):
                    killed += int(answer[1:].split(b"\r\n", 1)[0])
        return killed

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Services:
    """Backing services shared by every LibreChat process of a run (direct or behind the
    emulator), as DocumentDB, ElastiCache and the model provider are shared on AWS."""

    workdir: Path
    tokens: int = 30
    token_delay: float = 0.05
    mongo: MongoWireServer = field(init=False)
    redis: Redis = field(init=False)
    llm: FakeLlm = field(init=False)
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mongo = MongoWireServer().start()
        self.redis = Redis(self.workdir)
        self.llm = FakeLlm(tokens=self.tokens, delay=self.token_delay).start()
        self.config_path = self.workdir / "librechat.yaml"
        self.config_path.write_text(
            LIBRECHAT_YAML.format(endpoint=ENDPOINT, base_url=self.llm.base_url, model=MODEL)
        )
        for name in ("uploads", "images", "logs"):
            (self.workdir / name).mkdir(exist_ok=True)

    def librechat_env(self, public_url: str, port: int | None = None) -> dict[str, str]:
        """LibreChat's environment (the .env of a deployment), pointing at these services;
        with `port`, listening there on loopback (else the runtime sets the port)."""
        listen = {"HOST": "127.0.0.1", "PORT": str(port)} if port is not None else {}
        return listen | {
            "NODE_ENV": "production",
            "MONGO_URI": f"mongodb://127.0.0.1:{self.mongo.port}/LibreChat",
            "USE_REDIS": "true",
            "REDIS_URI": self.redis.uri,
            "CONFIG_PATH": str(self.config_path),
            "DOMAIN_CLIENT": public_url,
            "DOMAIN_SERVER": public_url,
            "JWT_SECRET": secrets.token_hex(32),
            "JWT_REFRESH_SECRET": secrets.token_hex(32),
            "CREDS_KEY": secrets.token_hex(32),
            "CREDS_IV": secrets.token_hex(16),
            "ALLOW_REGISTRATION": "true",
            "ALLOW_EMAIL_LOGIN": "true",
            "ALLOW_UNVERIFIED_EMAIL_LOGIN": "true",
            "ALLOW_SOCIAL_LOGIN": "false",
            "SEARCH": "false",
            "BAN_VIOLATIONS": "false",
            "LIMIT_CONCURRENT_MESSAGES": "false",
            "LOGIN_MAX": "1000",
            "REGISTER_MAX": "1000",
            "MESSAGE_IP_MAX": "1000",
            "MESSAGE_USER_MAX": "1000",
            "FILE_UPLOAD_IP_MAX": "1000",
            "FILE_UPLOAD_USER_MAX": "1000",
            "TITLE_CONVO": "true",
            "DEBUG_LOGGING": "true",
            "CONSOLE_JSON": "false",
            "NO_INDEX": "true",
        }

    def stop(self) -> None:
        self.llm.stop()
        self.redis.stop()
        self.mongo.stop()
