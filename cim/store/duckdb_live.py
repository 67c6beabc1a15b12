"""The embedded store's edits overlay: immutable, versioned DuckDB files, like the releases.

Layout beside the releases::

    cim.duckdb.d/live.duckdb  -> live/l000003.duckdb     symlink: the current overlay version
    cim.duckdb.d/live/l000001.duckdb l000002.duckdb ...    one file per edit (the last few are kept)
    cim.duckdb.d/live.lock                                 flock taken by writers

DuckDB lets one process write a file, and nobody else open it meanwhile; a server with several
workers (and the CLI beside it) must all read edits. So an edit copies the current overlay file to a
new one, applies the change and the edit-log entry there in one transaction, checkpoints it and
switches the symlink with one ``rename(2)``: the edit is atomic and durable, files are written only
before anyone reads them, and readers (read-only, ``ATTACH``ed to their release connection under a
per-version alias) see it on their next query. Overlays hold only edited features, so the copy is
small; heavy editing belongs in the PostGIS store.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from cim.errors import FeatureNotFound, StoreError
from cim.store import duckdb_spatial
from cim.store.base import LayerInfo
from cim.store.edits import FIRST_CREATED_FID, Edit, EditRecord, NotEditable, prepare
from cim.store.overlay import SQL_TYPES_DUCKDB, add_columns_sql, create_table_sql, upsert_params, upsert_sql
from cim.store.sql import quote_ident

T = TypeVar("T")
#: overlay versions kept (older ones may still be attached by readers that started before)
KEEP = 5
EDIT_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS edit_log (id BIGINT PRIMARY KEY, edited_at TIMESTAMPTZ NOT NULL, who VARCHAR NOT NULL,"
    " action VARCHAR NOT NULL, layer VARCHAR NOT NULL, fid BIGINT NOT NULL, release INTEGER NOT NULL, feature VARCHAR)"
)


@dataclass(frozen=True)
class LiveView:
    """An overlay version attached to a reader connection: its alias and each layer table's columns."""

    path: Path
    alias: str
    columns: dict[str, frozenset[str]]

    def table(self, layer: str) -> str:
        return f"{quote_ident(self.alias)}.{quote_ident(layer)}"


class LiveFiles:
    """The overlay versions of one embedded store (``root`` is ``<store>.d``)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "live"
        self.link = root / "live.duckdb"
        self.lock_path = root / "live.lock"
        self._attach_lock = threading.Lock()

    def current(self) -> Path | None:
        """The current overlay file (one ``readlink``), or None before the first edit."""
        try:
            return (self.link.parent / os.readlink(self.link)).resolve()
        except (FileNotFoundError, OSError):
            return None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise writers across processes (held while an edit reads what it changes)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, change: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Apply ``change`` to a copy of the current version in one transaction and make the copy
        current. Call inside :meth:`locked`."""
        current = self.current()
        number = int(current.stem[1:]) + 1 if current is not None else 1
        final = self.dir / f"l{number:06d}.duckdb"
        partial = final.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        if current is not None:
            shutil.copyfile(current, partial)
        try:
            con = duckdb_spatial.connect(partial, read_only=False)
            try:
                con.execute(EDIT_LOG_DDL)
                con.execute("BEGIN TRANSACTION")
                result = change(con)
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            finally:
                con.close()
        except duckdb.Error as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(f"edit failed: {exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, final)
        tmp = self.link.with_name(f".live.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(final, self.link.parent), tmp)
        os.replace(tmp, self.link)
        for old in sorted(self.dir.glob("l*.duckdb"))[:-KEEP]:
            old.unlink(missing_ok=True)
        return result

    def attach(self, connection: duckdb.DuckDBPyConnection, path: Path) -> LiveView:
        """Attach overlay ``path`` read-only to a reader connection (once per version)."""
        alias = f"cim_live_{path.stem}"
        with self._attach_lock:
            attached = {r[0] for r in connection.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
            if alias not in attached:
                try:
                    connection.execute(duckdb_spatial.attach_sql(path, quote_ident(alias), read_only=True))
                except duckdb.Error as exc:
                    raise StoreError(f"cannot read the edits overlay {path}: {exc}") from exc
            rows = connection.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = ?", (alias,)
            ).fetchall()
        columns: dict[str, set[str]] = {}
        for table, column in rows:
            columns.setdefault(table, set()).add(column)
        return LiveView(path, alias, {t: frozenset(c) for t, c in columns.items() if t != "edit_log"})


def ensure_table(con: duckdb.DuckDBPyConnection, info: LayerInfo) -> str:
    """The layer's overlay table in the file being written, created or given new fields."""
    table = quote_ident(info.name)
    con.execute(create_table_sql(info, table, SQL_TYPES_DUCKDB, "GEOMETRY"))
    existing = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (info.name,)
    ).fetchall()}  # fmt: skip
    for statement in add_columns_sql(info, table, SQL_TYPES_DUCKDB, existing):
        con.execute(statement)
    return table


class DuckDBEdits:
    """``Store.edit`` and ``Store.edit_log`` of the embedded store (mixed into DuckDBStore, whose
    ``_read``, ``_layer_in``, ``_dialect``, ``get_feature`` and ``_live`` it uses)."""

    _live: LiveFiles

    def edit(self, edit: Edit) -> int:
        """Apply ``edit`` atomically; returns the feature's fid."""
        store: Any = self
        with self._live.locked():
            reader = store._read()
            info = store._layer_in(reader, edit.layer)
            if not info.spec.editable:
                raise NotEditable(f"collection {info.name!r} is not editable")
            current = None
            if edit.action != "create":
                try:
                    current = store.get_feature(edit.layer, edit.fid)
                except FeatureNotFound:
                    current = None
            state = prepare(info, edit, current)
            release = store.current_number()

            def change(con: duckdb.DuckDBPyConnection) -> int:
                table = ensure_table(con, info)
                fid = edit.fid
                if edit.action == "create":
                    fid = con.execute(
                        f"SELECT coalesce(max(fid), ?) + 1 FROM {table} WHERE fid >= ?",
                        (FIRST_CREATED_FID - 1, FIRST_CREATED_FID),
                    ).fetchone()[0]
                con.execute(
                    upsert_sql(info, table, "ST_GeomFromWKB(?)", "?"),
                    upsert_params(info, fid, state.wkb, state.deleted, state.values),
                )
                log_id = con.execute("SELECT coalesce(max(id), 0) + 1 FROM edit_log").fetchone()[0]
                con.execute(
                    "INSERT INTO edit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (log_id, datetime.now(UTC), edit.who, edit.action, info.name, fid, release, state.log_json()),
                )
                return int(fid)

            return self._live.write(change)

    def edit_generation(self) -> int:
        """The number of the current overlay version (one readlink): every edit writes the next."""
        path = self._live.current()
        return int(path.stem[1:]) if path is not None and path.stem[1:].isdigit() else 0

    def edit_log(self, layer: str | None = None, limit: int = 100) -> list[EditRecord]:
        """The latest edits, newest first."""
        store: Any = self
        reader = store._read()
        dialect = store._dialect(reader)
        if dialect.live is None:
            return []
        sql = f"SELECT id, edited_at, who, action, layer, fid, release, feature FROM {quote_ident(dialect.live.alias)}.edit_log"
        params: list[Any] = []
        if layer is not None:
            sql += " WHERE layer = ?"
            params.append(layer)
        rows = reader.cursor().execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [EditRecord(*r[:7], feature=json.loads(r[7]) if r[7] else None) for r in rows]
