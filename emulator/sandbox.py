"""The execution environment: the runtime subprocess, its logs, and freezing.

Lambda freezes the whole sandbox while the runtime waits in /next with nothing to do. We do
the same with SIGSTOP/SIGCONT on the runtime's process group plus every descendant (the
runtime may start its upstream in a session of its own), so work that runs after a response
without holding /next visibly stops, exactly as it would in Lambda.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

HAS_PROC = os.path.isdir("/proc/self")


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc (Linux) or `ps` (macOS and other Unixes)."""
    children: dict[int, list[int]] = {}
    if not HAS_PROC:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True, check=False
        ).stdout
        for line in listing.splitlines():
            pid, _, ppid = line.strip().partition(" ")
            if pid.isdigit() and ppid.strip().isdigit():
                children.setdefault(int(ppid), []).append(int(pid))
        return children
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces or parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split(b" ", 2)
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int) -> list[int]:
    """Pids of all descendants of `root`."""
    children = _children_map()
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def _signal(pid: int, sig: int, *, group: bool = False) -> bool:
    """Send `sig` to a process (or its process group); False if it is gone."""
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


RESCAN_INTERVAL = 1.0  # seconds between process-table scans for new descendants


def _start_time(pid: int) -> str:
    """The process's start time (clock ticks since boot) from /proc, '' if gone: with the
    pid it identifies a process even if the pid is reused. Without /proc: '?' while the pid
    exists (no protection against reuse between two scans)."""
    if not HAS_PROC:
        return "?" if _signal(pid, 0) else ""
    return _stat_field(pid, 19)


def process_state(pid: int) -> str:
    """The one-letter state of a process from /proc (e.g. 'S', 'R', 'T'), '' if gone."""
    return _stat_field(pid, 0)


def _stat_field(pid: int, index: int) -> str:
    """Field `index` of /proc/<pid>/stat after the command name (0 = state), '' if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat[stat.rfind(b")") + 2 :].split(b" ", index + 1)[index].decode()


class Sandbox:
    """Runs the runtime command; restarts create a new generation."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        on_exit: Callable[[int, int], None],
        on_log: Callable[[str], None],
    ) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.cwd = cwd
        self._on_exit = on_exit
        self._on_log = on_log
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.spawned_at = 0.0
        self.frozen = False
        self._frozen_pids: list[int] = []
        self._known: list[tuple[int, str]] = []  # cached descendants (pid, start time)
        self._scanned_at = float("-inf")
        self._freeze_epoch = 0
        self._scan_wanted = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        threading.Thread(target=self._scan_loop, name="freeze-scan", daemon=True).start()

    def spawn(self) -> int:
        """Start a fresh runtime process; returns its generation."""
        with self._lock:
            self.generation += 1
            generation = self.generation
            self.frozen = False
            self._frozen_pids = []
            self._known = []
            self._scanned_at = float("-inf")
            self.spawned_at = time.perf_counter()
            proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.process = proc
        threading.Thread(
            target=self._pump_logs, args=(proc,), name="runtime-logs", daemon=True
        ).start()
        threading.Thread(
            target=self._wait, args=(proc, generation), name="runtime-wait", daemon=True
        ).start()
        return generation

    def _pump_logs(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self._on_log(raw.decode("utf-8", "replace").rstrip("\r\n"))

    def _wait(self, proc: subprocess.Popen[bytes], generation: int) -> None:
        rc = proc.wait()
        self._on_exit(generation, rc)

    def freeze(self) -> None:
        """SIGSTOP the runtime's process group and its known descendants at once.

        Finding descendants means reading all of /proc (about 1 ms per 100 processes), too
        slow for the request path: the list is cached and refreshed by a background scan,
        which also stops any descendant the cache missed, unless a thaw came first.
        """
        with self._lock:
            proc = self.process
            if self.frozen or self._stopping or proc is None or proc.poll() is not None:
                return
            _signal(proc.pid, signal.SIGSTOP, group=True)
            stopped = []
            for pid, started in self._known:
                if _start_time(pid) == started and _signal(pid, signal.SIGSTOP):
                    stopped.append(pid)
            self._frozen_pids = stopped
            self.frozen = True
            self._freeze_epoch += 1
            if time.perf_counter() - self._scanned_at > RESCAN_INTERVAL:
                self._scan_wanted.set()

    def _scan_loop(self) -> None:
        while True:
            self._scan_wanted.wait()
            self._scan_wanted.clear()
            with self._lock:
                proc, epoch = self.process, self._freeze_epoch
            if proc is None:
                continue
            found = [(pid, _start_time(pid)) for pid in descendants(proc.pid)]
            with self._lock:
                if proc is not self.process:
                    continue
                self._known = [(pid, t) for pid, t in found if t]
                self._scanned_at = time.perf_counter()
                if self.frozen and self._freeze_epoch == epoch:
                    for pid, started in self._known:
                        if (
                            pid not in self._frozen_pids
                            and _start_time(pid) == started
                            and _signal(pid, signal.SIGSTOP)
                        ):
                            self._frozen_pids.append(pid)

    def thaw(self) -> None:
        """SIGCONT everything `freeze` stopped."""
        with self._lock:
            self._thaw_locked()

    def _thaw_locked(self) -> None:
        proc = self.process
        if not self.frozen or proc is None:
            return
        for pid in self._frozen_pids:
            _signal(pid, signal.SIGCONT)
        _signal(proc.pid, signal.SIGCONT, group=True)
        self.frozen = False
        self._frozen_pids = []

    def kill(self) -> None:
        """SIGKILL the runtime and everything it started (as Lambda does on a timeout)."""
        with self._lock:
            proc = self.process
            if proc is None:
                return
            pids = descendants(proc.pid) if proc.poll() is None else []
            self._thaw_locked()
            _signal(proc.pid, signal.SIGKILL, group=True)
            for pid in pids:
                _signal(pid, signal.SIGKILL)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM (after SIGCONT), then SIGKILL what is left after `grace` seconds."""
        with self._lock:
            self._stopping = True  # a /next arriving now must not freeze it again
            proc = self.process
            if proc is None:
                return
            pids = descendants(proc.pid) if proc.poll() is None else []
            self._thaw_locked()
            # Only the runtime gets SIGTERM: it owns its upstream's shutdown.
            _signal(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            print("emulator: runtime ignored SIGTERM; killing it", file=sys.stderr)
        self.kill()
        for pid in pids:
            _signal(pid, signal.SIGKILL)
