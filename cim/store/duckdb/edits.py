"""Edits of the embedded store: ``Store.edit``, ``edit_log``, ``edit_conflicts`` and
``edit_generation``, each a new version of the edits overlay (:mod:`cim.store.duckdb.live`)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cim.errors import FeatureNotFound
from cim.store.duckdb.live import LiveFiles, ensure_table
from cim.store.edits import FIRST_CREATED_FID, Edit, EditRecord, NotEditable, prepare
from cim.store.rebase import EditConflict, Rebase
from cim.store.sql import quote_ident
from cim.store.sql.overlay import CONFLICT, upsert_params, upsert_sql


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

            return self._live.write(release, change)

    def edit_generation(self) -> int:
        """The number of the current release's overlay version (two readlinks): every edit, and
        every re-base, writes a new one."""
        store: Any = self
        try:
            stem = Path(os.readlink(store.path)).stem
        except OSError:
            return 0
        path = self._live.current(int(stem[1:]) if stem[1:].isdigit() else 0)
        return int(path.stem[1:]) if path is not None and path.stem[1:].isdigit() else 0

    def edit_conflicts(self) -> list[EditConflict]:
        """Edits the current release does not take (cim/store/rebase.py), by layer."""
        store: Any = self
        reader = store._read()
        live = store._dialect(reader).live
        if live is None:
            return []
        cur = reader.cursor()
        rebase = Rebase(lambda sql, params: cur.execute(sql, params).fetchall(), "?")
        found: list[EditConflict] = []
        for layer, columns in sorted(live.columns.items()):
            if CONFLICT in columns:
                found += rebase.conflicts(layer, live.table(layer))
        return found

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
