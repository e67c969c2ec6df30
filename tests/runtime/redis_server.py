"""A real redis-server on a free loopback port, for the stream relay's tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from emulator.http11 import free_port


class RedisServer:
    """Debian's redis-server: no persistence, loopback only; ``stop`` is Redis going down."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it with apt-get)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not answer PING within 10 s") from None
                time.sleep(0.02)

    def stop(self) -> None:
        self.client.close()
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=5)
