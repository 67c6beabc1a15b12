"""Build progress: rich progress bars (one per source, advancing step by step) on a terminal, plain
lines otherwise (``cim build`` prints them; library callers get them on the ``cim.build`` logger)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Self

log = logging.getLogger("cim.build")


def _log(text: str) -> None:
    log.info("%s", text)


class Progress:
    """Reports progress as plain lines through ``emit`` (default: INFO on the ``cim.build`` logger)."""

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self._emit = emit or _log
        self._where = ""

    def start_source(self, layer: str, source: str, steps: tuple[str, ...]) -> None:
        """A source of ``layer`` is about to go through ``steps``."""
        self._where = f"{layer} · {source}"

    def step(self, name: str, detail: str = "") -> None:
        """The current source enters step ``name``."""
        self._emit(f"{self._where}: {name}" + (f" ({detail})" if detail else ""))

    def partitions(self, done: int, total: int) -> None:
        """``done`` of the ``total`` spatial partitions of the current step are back from the cluster
        (a distributed build); plain lines say so once, when all are back."""
        if done == total:
            self._emit(f"{self._where}: {total} of {total} partitions done")

    def end_source(self, summary: str) -> None:
        self._emit(f"{self._where}: done, {summary}")

    def message(self, text: str) -> None:
        """A build-level step (cross-checks, publishing)."""
        self._emit(text)

    def close(self) -> None:
        """Stop drawing (rich); nothing to do for log lines."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RichProgress(Progress):
    """A rich progress bar per source, one tick per step."""

    def __init__(self, console: Any = None) -> None:
        super().__init__()
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bars

        self._bars = Bars(
            TextColumn("{task.fields[where]:<40}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._bars.start()
        self._task: Any = None
        self._steps: tuple[str, ...] = ()
        self._description = ""

    def start_source(self, layer: str, source: str, steps: tuple[str, ...]) -> None:
        super().start_source(layer, source, steps)
        self._steps = steps
        self._task = self._bars.add_task(steps[0], total=len(steps), where=self._where)

    def step(self, name: str, detail: str = "") -> None:
        done = self._steps.index(name) if name in self._steps else None
        self._description = f"{name} {detail}".strip()
        self._bars.update(self._task, description=self._description, completed=done)

    def partitions(self, done: int, total: int) -> None:
        self._bars.update(self._task, description=f"{self._description} [{done}/{total} partitions]")

    def end_source(self, summary: str) -> None:
        self._bars.update(self._task, description=summary, completed=len(self._steps))

    def message(self, text: str) -> None:
        self._bars.console.print(text)

    def close(self) -> None:
        self._bars.stop()


def make_progress(terminal: bool, emit: Callable[[str], None] | None = None) -> Progress:
    """Bars on a terminal, else plain lines through ``emit``."""
    return RichProgress() if terminal else Progress(emit)
