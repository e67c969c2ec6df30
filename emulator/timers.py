"""One timer thread for every deadline in the emulator (function timeouts, idle timeouts).

It sleeps until the earliest entry is due: no polling, and adding an entry is a heap push.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("emulator")

Entry = tuple[float, int, Callable[[], None], Callable[[], bool]]


def _never() -> bool:
    return False


class Scheduler:
    """Runs callbacks at `time.perf_counter()` instants on a daemon thread."""

    def __init__(self, name: str = "timers") -> None:
        self._heap: list[Entry] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stopped = False
        self._wake_at = float("inf")  # when the timer thread wakes up next on its own
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def call_at(
        self,
        when: float,
        callback: Callable[[], None],
        cancelled: Callable[[], bool] = _never,
    ) -> None:
        """Run `callback` at `when` unless `cancelled()` is true by then.

        Wakes the timer thread only if `when` is earlier than its next wake-up, so the
        common case (every deadline later than the previous one) costs no thread switch.
        """
        with self._cond:
            heap = self._heap
            while heap and heap[0][3]():
                heapq.heappop(heap)
            heapq.heappush(heap, (when, next(self._seq), callback, cancelled))
            if when < self._wake_at:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    while self._heap and self._heap[0][3]():
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._wake_at = float("inf")
                        self._cond.wait()
                        continue
                    self._wake_at = self._heap[0][0]
                    delay = self._wake_at - time.perf_counter()
                    if delay <= 0:
                        break
                    self._cond.wait(delay)
                self._wake_at = 0.0  # running callbacks: no need to be woken
                if self._stopped:
                    return
                _, _, callback, cancelled = heapq.heappop(self._heap)
            if cancelled():
                continue
            try:
                callback()
            except Exception:
                log.exception("timer callback failed")
