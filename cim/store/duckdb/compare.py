"""One in-memory DuckDB connection per store on which releases are compared (diffs, change feeds):
release files, and the edits overlay version the current release is read with, attached read-only.

A new connection per comparison cost what loading the spatial extension costs (~1 s, more on a
busy machine), longer than the comparison itself at 100,000 features. Release files are immutable,
so they stay attached while they exist; an overlay version stays attached only while a comparison
uses it (a newer one supersedes it at the next edit). Nothing is ever attached read-write.
Comparisons run one at a time (a lock): their results are cached by the change feed anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from cim.errors import StoreError
from cim.store.budget import interrupting
from cim.store.duckdb import spatial
from cim.store.duckdb.dialect import AttachedReleaseDialect, LiveView
from cim.store.sql import quote_ident
from cim.store.sql.dialect import Dialect, Statement

#: a file to compare: a release file, and the overlay version read over it (None: as published)
Side = tuple[Path, LiveView | None]
Fetch = Callable[[duckdb.DuckDBPyConnection, str, tuple[Any, ...]], list[tuple[Any, ...]]]


class Comparisons:
    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        #: alias -> the file attached under it
        self._attached: dict[str, Path] = {}

    def rows(self, sides: Sequence[Side], build: Callable[[Sequence[Dialect]], Statement], fetch: Fetch) -> list[tuple[Any, ...]]:
        """Rows of ``build(dialects)``, one dialect per side, on the comparing connection."""
        with self._lock:
            if self._con is None:
                self._con = spatial.connect(":memory:", read_only=False)
            con = self._con
            used: set[str] = set()
            dialects = []
            for path, view in sides:
                alias = f"release_{path.stem}"
                self._ensure(con, alias, path)
                used.add(alias)
                if view is not None:
                    self._ensure(con, view.alias, view.path)
                    used.add(view.alias)
                dialects.append(AttachedReleaseDialect(alias, live=view))
            for alias, path in list(self._attached.items()):  # superseded overlays, pruned releases
                if alias not in used and (not alias.startswith("release_") or not path.exists()):
                    self._detach(con, alias)
            statement = build(dialects)
            with interrupting(con.interrupt):
                return fetch(con, statement.sql, statement.params)

    def _ensure(self, con: duckdb.DuckDBPyConnection, alias: str, path: Path) -> None:
        if self._attached.get(alias) == path:
            return
        if alias in self._attached:
            self._detach(con, alias)
        try:
            con.execute(spatial.attach_sql(path, quote_ident(alias), read_only=True))
        except duckdb.Error as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        self._attached[alias] = path

    def _detach(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        try:
            con.execute(f"DETACH {quote_ident(alias)}")
        except duckdb.Error:
            pass  # detached already: nothing to free
        self._attached.pop(alias, None)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._attached.clear()


__all__ = ["Comparisons"]
