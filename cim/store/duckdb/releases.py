"""Releases of the embedded store: writing a release file (``publish``), switching the release
symlink (after re-basing the edits overlay onto the new release), listing, rollback and pruning.
Mixed into :class:`~cim.store.duckdb.store.DuckDBStore` (the layout is described there)."""

from __future__ import annotations

import itertools
import json
import os
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cim.store.duckdb.locks import file_lock
from cim.errors import StoreError
from cim.faults import crash_point
from cim.store.base import FID, GEOM, LayerInfo, ReleaseDraft, ReleaseInfo, catalog_order
from cim.store.duckdb import spatial
from cim.store.duckdb.carry import Holders, carry_raster, carry_vector, copy_totals, drop_inherited, inherit, start_from
from cim.store.duckdb.dialect import SQL_TYPES, DuckDBDialect
from cim.store.duckdb.live import LiveFiles
from cim.store.frames import measure, prepare
from cim.store.rasters import install, measure_raster
from cim.store.sql import division_totals, quote_ident


class DuckDBReleases:
    """The release files of one store (``path``, ``releases_dir``, ``url``, ``_live`` and ``_resolved`` are set by
    :class:`~cim.store.duckdb.store.DuckDBStore`)."""

    path: Path
    url: str
    releases_dir: Path
    _live: LiveFiles

    _resolved: tuple[str, Path] | None

    def _current_target(self) -> Path | None:
        """The current release file: one ``readlink`` per call (it runs several times per request);
        the link resolved only when its text changes (a switch)."""
        try:
            link = os.readlink(self.path)
        except FileNotFoundError:
            return None
        except OSError:  # not a symlink: a plain DuckDB file
            return self.path if self.path.exists() else None
        resolved = self._resolved
        if resolved is None or resolved[0] != link:
            resolved = self._resolved = (link, (self.path.parent / link).resolve())
        return resolved[1]

    # -- releases ------------------------------------------------------------------------------
    def _writer_lock(self) -> AbstractContextManager[None]:
        self.releases_dir.mkdir(parents=True, exist_ok=True)
        return file_lock(self.releases_dir.parent / "build.lock")

    def _release_file(self, number: int) -> Path:
        return self.releases_dir / f"r{number:04d}.duckdb"

    def _raster_file(self, number: int, layer: str) -> Path:
        return self.releases_dir / f"r{number:04d}.{layer}.tif"

    def _remove_rasters(self, number: int) -> None:
        for path in self.releases_dir.glob(f"r{number:04d}.*.tif"):
            path.unlink(missing_ok=True)

    def _numbers(self) -> list[int]:
        if not self.releases_dir.is_dir():
            return []
        return sorted(int(p.stem[1:]) for p in self.releases_dir.glob("r[0-9]*.json"))

    def publish(self, draft: ReleaseDraft, keep: int | None = None) -> ReleaseInfo:
        if self.path.exists() and not self.path.is_symlink():
            raise StoreError(f"{self.url} is a plain DuckDB file, not a release-managed cim store")
        with self._writer_lock():
            number = max(self._numbers(), default=0) + 1
            final = self._release_file(number)
            partial = final.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            created = datetime.now(UTC)
            try:
                infos = self._write_release(partial, number, created, draft)
            except BaseException:
                partial.unlink(missing_ok=True)
                self._remove_rasters(number)
                raise
            os.replace(partial, final)
            meta = {
                "number": number,
                "created": created.isoformat(),
                "layers": [i.name for i in infos],
                "config": draft.config,
                "checksums": draft.checksums,
                "qa": draft.qa,
            }
            final.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str))
            crash_point("publish.switch")
            self._switch(number)
            if keep is not None:
                self._prune(keep)
        return self._info(number)

    def _write_release(self, path: Path, number: int, created: datetime, draft: ReleaseDraft) -> list[LayerInfo]:
        layers = iter(draft.layers)
        first = next(layers, None)
        # the first layer carried: the new file starts as a copy of its release's (cim/store/duckdb/carry.py)
        base = first.carried_from if first is not None else None
        if base is not None and self._release_file(base).is_file():
            start_from(self._release_file(base), path)
        else:
            base = None
        con = spatial.connect(path, read_only=False)
        holders = Holders(con, self._release_file)  # the files other carried layers come from
        try:
            inherited = inherit(con) if base is not None else {}
            con.execute("CREATE TABLE cim_release (number INTEGER, created TIMESTAMPTZ, meta VARCHAR)")
            con.execute("CREATE TABLE cim_layer (name VARCHAR PRIMARY KEY, ord INTEGER, info VARCHAR)")
            infos = []
            carried: dict[str, int] = {}
            for layer in itertools.chain([first] if first is not None else [], layers):
                name = layer.spec.name
                kept = inherited.pop(name, None)
                if kept is not None and kept.spec.kind == "vector" and (layer.carried_from != base or layer.spec.kind != "vector"):
                    con.execute(f"DROP TABLE {quote_ident(name)}")  # the copied file's, not this release's
                if layer.carried_from is not None:
                    if layer.spec.kind == "raster":
                        earlier = kept if layer.carried_from == base and kept is not None else holders.info(layer.carried_from, name)
                        info = carry_raster(earlier, self.releases_dir, self._raster_file(number, name))
                    elif layer.carried_from == base and kept is not None:
                        info = kept  # in the copied file as published, indexes and all
                    else:
                        info = carry_vector(holders, layer)
                    crash_point("publish.carry")  # a carried layer in the .partial file (tests/test_build_crash.py)
                    carried[name] = layer.carried_from
                elif layer.spec.kind == "raster":
                    # the COG beside the release file, in place before the release can become current
                    raster = self._raster_file(number, name)
                    install(layer, raster)
                    info = measure_raster(layer, raster.name)
                else:
                    info = measure(layer, draft.srid)
                    self._write_layer(con, layer, draft.srid)
                    crash_point("publish.write")  # the .partial file half written (tests/test_build_crash.py)
                infos.append(info)
            infos = catalog_order(infos)
            self._write_totals(con, holders, infos, carried, base)
            drop_inherited(con, inherited)
            holders.detach()
            for ordinal, info in enumerate(infos):
                con.execute("INSERT INTO cim_layer VALUES (?, ?, ?)", (info.name, ordinal, info.to_json()))
            # the draft's metadata is complete only once its layers are (ReleaseDraft)
            meta = json.dumps({"config": draft.config, "checksums": draft.checksums, "qa": draft.qa}, default=str)
            con.execute("INSERT INTO cim_release VALUES (?, ?, ?)", (number, created, meta))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return infos

    @staticmethod
    def _write_totals(
        con: duckdb.DuckDBPyConnection, holders: Holders, infos: list[LayerInfo], carried: dict[str, int], base: int | None
    ) -> None:
        """The release's totals per division, in the file before it is closed (read by
        Store.division_totals); those of a layer carried over from the same release as the
        divisions are copied from that release's file (``base``: the file this one is a copy of)."""
        dialect = DuckDBDialect()
        copied = division_totals.carried_with_divisions(infos, carried)
        statements = division_totals.prepare_statements(infos, dialect, skip=copied)
        for statement in statements:
            con.execute(statement.sql, statement.params)
        if not statements:
            return
        srid = division_totals.release_metric_srid(infos)
        for name, source in copied.items():
            if not copy_totals(holders, None if source == base else source, name, srid):
                info = next(i for i in infos if i.name == name)
                for statement in division_totals.layer_statements(infos, info, dialect):
                    con.execute(statement.sql, statement.params)

    @staticmethod
    def _write_layer(con: duckdb.DuckDBPyConnection, layer: Any, srid: int) -> None:
        attrs, wkb = prepare(layer, srid)
        table = quote_ident(layer.spec.name)
        columns = [f"{quote_ident(FID)} BIGINT PRIMARY KEY", f"{quote_ident(GEOM)} GEOMETRY"]
        columns += [f"{quote_ident(f.name)} {SQL_TYPES[f.type]}" for f in LayerInfo(layer.spec, srid, 0, None).fields]
        con.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        attrs["__wkb"] = wkb
        con.register("__frame", attrs)
        names = [c for c in attrs.columns if c not in ("__wkb", FID)]
        select = ", ".join([quote_ident(FID), "ST_GeomFromWKB(__wkb)"] + [quote_ident(n) for n in names])
        con.execute(
            f"INSERT INTO {table} ({quote_ident(FID)}, {quote_ident(GEOM)}, {', '.join(quote_ident(n) for n in names)})"
            f" SELECT {select} FROM __frame"
        )
        con.unregister("__frame")
        con.execute(f"CREATE INDEX {quote_ident(layer.spec.name + '_rtree')} ON {table} USING RTREE ({quote_ident(GEOM)})")

    def _switch(self, number: int) -> None:
        """Make release ``number`` current: the edits overlay re-based onto it first (edits follow
        their features' identity, cim/store/rebase.py), then the release symlink."""
        with self._live.locked():
            self._live.rebase(self._current_number(), self._current_target(), number, self._release_file(number))
            self._point_to(number)

    def _point_to(self, number: int) -> None:
        target = os.path.relpath(self._release_file(number), self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, self.path)

    def _prune(self, keep: int) -> None:
        numbers = self._numbers()
        current = self._current_number()
        for number in numbers[: max(0, len(numbers) - keep)]:
            if number != current:
                self._release_file(number).unlink(missing_ok=True)
                self._release_file(number).with_suffix(".json").unlink(missing_ok=True)
                self._remove_rasters(number)

    def _current_number(self) -> int | None:
        target = self._current_target()
        if target is None or target.parent != self.releases_dir.resolve():
            return None
        return int(target.stem[1:])

    def _info(self, number: int) -> ReleaseInfo:
        meta = json.loads(self._release_file(number).with_suffix(".json").read_text())
        return ReleaseInfo(
            number=number,
            created=datetime.fromisoformat(meta["created"]),
            current=number == self._current_number(),
            layers=tuple(meta["layers"]),
            config=meta["config"],
            checksums=meta["checksums"],
            qa=meta["qa"],
        )

    def releases(self) -> list[ReleaseInfo]:
        return [self._info(n) for n in self._numbers()]

    def set_current(self, number: int) -> ReleaseInfo:
        with self._writer_lock():
            if number not in self._numbers():
                raise StoreError(f"store {self.url} has no release {number} (releases: {self._numbers()})")
            self._switch(number)
        return self._info(number)


def release_number(path: Path) -> int:
    """The number of a release file ``rNNNN.duckdb`` (0 for a plain DuckDB file)."""
    stem = path.stem
    return int(stem[1:]) if stem[:1] == "r" and stem[1:].isdigit() else 0
