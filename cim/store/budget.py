"""The time budget of one read (a tile, a page): past it the database work is stopped.

A server worker serves many requests from a few threads; one tile over a pathological polygon or
one page with a heavy filter must not hold a thread (and the database) for minutes. Each read gets
``limits().request_seconds``; when it runs longer the store stops the work and raises
:class:`~cim.errors.RequestTimeout` (503, the client may ask again later or ask for less):

- DuckDB: :func:`interrupting` calls the cursor's ``interrupt()`` from a timer thread; DuckDB stops
  the query within milliseconds (``InterruptException``) and the thread is free again.
- PostGIS: the server's read connections carry PostgreSQL's ``statement_timeout`` (the smaller of
  ``limits().statement_timeout_ms`` and the request budget, :func:`statement_timeout_ms`); PostgreSQL
  cancels the statement itself (``QueryCanceled``), even when the client process is stuck.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cim.errors import RequestTimeout
from cim.limits import limits

#: seconds between further interrupts once the budget is spent (one may land before the query starts)
_REPEAT = 0.01


def request_seconds() -> float:
    """The budget of one read in seconds (0: none)."""
    return limits().request_seconds


def statement_timeout_ms() -> int:
    """PostgreSQL ``statement_timeout`` for the server's read connections (0: none): the smaller of
    the statement limit and the request budget, whichever are set."""
    candidates = [limits().statement_timeout_ms, int(round(request_seconds() * 1000))]
    set_ = [c for c in candidates if c > 0]
    return max(1, min(set_)) if set_ else 0


def timeout_error(seconds: float) -> RequestTimeout:
    """The error a read past its budget raises: what happened and what to do, no database text."""
    return RequestTimeout(
        f"the request exceeded its time budget ({seconds:g} s) and was stopped: ask for less"
        " (a smaller area, a simpler filter, a lower limit) or try again later"
    )


class _Watchdog:
    """One daemon thread calling functions at their deadlines (a thread per read would cost more
    than many reads). All budgets are equal, so a new deadline is almost never the earliest and
    scheduling wakes nobody."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), fn))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cim-budget", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is fn:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, fn = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            fn()


_WATCHDOG = _Watchdog()


class Watch:
    """Interrupts a running query when its time is up (see :func:`interrupting`)."""

    def __init__(self, interrupt: Callable[[], None], seconds: float) -> None:
        self.seconds = seconds
        #: whether the budget was spent (the query, if still running, was interrupted)
        self.expired = False
        self._interrupt = interrupt
        self._lock = threading.Lock()
        self._active = True

    def start(self, delay: float | None = None) -> None:
        _WATCHDOG.call_at(time.monotonic() + (self.seconds if delay is None else delay), self._fire)

    def _fire(self) -> None:
        with self._lock:  # never after stop(): the cursor may be running the next request's query by then
            if not self._active:
                return
            self.expired = True
            self._interrupt()
        # an interrupt that lands before the query starts is lost (DuckDB resets it): repeat
        self.start(_REPEAT)

    def stop(self) -> None:
        with self._lock:
            self._active = False


@contextmanager
def interrupting(interrupt: Callable[[], None], seconds: float | None = None) -> Iterator[Watch]:
    """Run the block with ``interrupt`` called once ``seconds`` (default: the request budget) have
    passed, and again every few milliseconds until the block ends. An exception leaving the block
    after the budget was spent becomes :class:`~cim.errors.RequestTimeout`."""
    seconds = request_seconds() if seconds is None else seconds
    watch = Watch(interrupt, seconds)
    if seconds > 0:
        watch.start()
    try:
        yield watch
    except Exception as exc:
        watch.stop()
        if watch.expired:
            raise timeout_error(seconds) from exc
        raise
    finally:
        watch.stop()
