"""The embedded store: one immutable DuckDB file per release, and a symlink naming the current one.

Layout for a store URL ``./cim.duckdb``::

    cim.duckdb                     -> cim.duckdb.d/releases/r0003.duckdb   (symlink: the current release)
    cim.duckdb.d/releases/r0001.duckdb, r0001.json                        (data, and metadata for listing)
    cim.duckdb.d/build.lock                                               (serialises writers)

DuckDB locks a file against a second *writer* even while others only read it. Release files are
written once, by the build that creates them, before anyone reads them; afterwards every process
(server, CLI, notebooks) opens them read-only, so a running ``cim serve`` never blocks a build and
vice versa. Making a release current is one ``rename(2)`` of the symlink; readers notice the new
target on their next query (one ``readlink`` per query) and open it — no restart, no lock.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterator

import duckdb
import geopandas as gpd

from cim.errors import LayerNotFound, NoRelease, StoreError
from cim.store import duckdb_spatial
from cim.store.base import (
    FID,
    GEOM,
    FeaturePage,
    FeatureQuery,
    LayerInfo,
    ReleaseDraft,
    ReleaseInfo,
    Store,
    catalog_order,
    not_found,
)
from cim.store.budget import interrupting
from cim.store.duckdb_live import DuckDBEdits, LiveFiles, LiveView, ReaderOverlays
from cim.faults import crash_point
from cim.store.rasters import install, measure_raster
from cim.store.frames import measure, prepare, to_frame
from cim.store.overlay import count_sql, merged_source
from cim.store.tilequery import RenderedTile, TileQuery
from cim.store.tiles_sql import DuckDBTileDialect, join_layers, tile_statement
from cim.store.sql import (
    Dialect,
    Statement,
    count_features,
    output_geometry,
    page_from_rows,
    quote_ident,
    row_to_feature,
    select_features,
    select_one,
)

_DUCK_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "TIMESTAMPTZ",
}


class DuckDBDialect(Dialect):
    placeholder = "?"

    def __init__(self, live: LiveView | None = None) -> None:
        #: the edits overlay attached for this read, if there is one
        self.live = live

    def table(self, layer: str) -> str:
        return quote_ident(layer)

    def edited(self, info: LayerInfo) -> bool:
        return self.live is not None and info.name in self.live.columns

    def source(self, info: LayerInfo, where: str | None = None) -> str:
        if self.live is None or not self.edited(info):
            return super().source(info, where)
        live = self.live
        return merged_source(info, self.table(info.name), live.table(info.name), live.columns[info.name], where)

    def count_all(self, info: LayerInfo) -> Statement | None:
        if self.live is None or not self.edited(info):
            return None
        return Statement(count_sql(self.table(info.name), self.live.table(info.name), "?"), (info.count,))

    def transform(self, geom_sql: str, src_srid: int, dst_srid: int) -> str:
        return f"ST_Transform({geom_sql}, 'EPSG:{src_srid}', 'EPSG:{dst_srid}', always_xy := true)"

    def envelope(self, srid: int) -> str:
        return "ST_MakeEnvelope(?, ?, ?, ?)"


class _ReleaseReader:
    """Read-only access to one release file, with a DuckDB cursor per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.connection = duckdb_spatial.connect(path, read_only=True)
            rows = self.connection.execute("SELECT info FROM cim_layer ORDER BY ord").fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"{path}: not a readable cim release ({exc})") from exc
        # raster paths are recorded relative to the releases directory
        self.layers = [_resolve_raster(LayerInfo.from_json(r[0]), path.parent) for r in rows]
        self._local = threading.local()
        #: the edits overlay versions attached to this connection
        self.overlays = ReaderOverlays(self.connection)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = duckdb_spatial.cursor(self.connection)
        return cur

    def close(self) -> None:
        self.connection.close()


def _resolve_raster(info: LayerInfo, directory: Path) -> LayerInfo:
    if info.raster_path is None or os.path.isabs(info.raster_path):
        return info
    return dataclasses.replace(info, raster_path=str(directory / info.raster_path))


class DuckDBStore(DuckDBEdits, Store):
    dialect = DuckDBDialect()

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self.url = str(path)
        self.releases_dir = self.path.with_name(self.path.name + ".d") / "releases"
        self._reader: _ReleaseReader | None = None
        self._reader_lock = threading.Lock()
        #: the release link's text and the file it names (see _current_target)
        self._resolved: tuple[str, Path] | None = None
        self._live = LiveFiles(self.path.with_name(self.path.name + ".d"))
        if not self.path.parent.is_dir():
            raise StoreError(f"store {self.url}: directory {self.path.parent} does not exist")

    # -- current release -----------------------------------------------------------------------
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

    def _read(self) -> _ReleaseReader:
        target = self._current_target()
        if target is None:
            raise NoRelease(f"store {self.url} has no release yet: build one first (e.g. `cim demo --build-only`)")
        reader = self._reader
        if reader is not None and reader.path == target:
            return reader
        with self._reader_lock:
            if self._reader is None or self._reader.path != target:
                # The old reader is left to the garbage collector: requests still running on it
                # finish on the release they started with.
                self._reader = _ReleaseReader(target)
            return self._reader

    def layers(self) -> list[LayerInfo]:
        return list(self._read().layers)

    def current_number(self) -> int:
        return _release_number(self._read().path)

    def known_current_number(self) -> int | None:
        # the release symlink, read without opening anything: known when the open reader is its target
        reader = self._reader
        try:
            target = self._current_target()
        except OSError:
            return None
        return _release_number(target) if reader is not None and reader.path == target else None

    def check_ready(self) -> int:
        """The current release's number, its file open and answering (readiness, ogcapi/health.py)."""
        reader = self._read()
        cur = reader.cursor()
        with interrupting(cur.interrupt):
            self._fetch(cur, "SELECT count(*) FROM cim_layer", ())
        return _release_number(reader.path)

    def known_edit_generation(self) -> int | None:
        try:
            return self.edit_generation()  # one readlink
        except OSError:
            return None

    # -- reads ---------------------------------------------------------------------------------
    def _dialect(self, reader: _ReleaseReader) -> DuckDBDialect:
        """The dialect of one read: with the current edits overlay attached, when there is one."""
        view = self._live.view(reader.overlays, _release_number(reader.path))
        return self.dialect if view is None else DuckDBDialect(view)

    def query(self, query: FeatureQuery) -> FeaturePage:
        reader = self._read()
        info = self._layer_in(reader, query.layer)
        dialect = self._dialect(reader)
        statement = select_features(info, query, dialect)
        cur = reader.cursor()
        with interrupting(cur.interrupt):  # the page and its count within the request's time budget
            rows = self._fetch(cur, statement.sql, statement.params)
            matched: int | None = None
            if query.count:
                counter = count_features(info, query, dialect)
                matched = info.count if counter is None else self._fetch(cur, counter.sql, counter.params)[0][0]
        return page_from_rows(rows, info, query, matched)

    def get_feature(
        self, layer: str, fid: int, out_srid: int | None = None, flip_axes: bool = False
    ) -> dict[str, Any]:
        reader = self._read()
        info = self._layer_in(reader, layer)
        statement = select_one(info, out_srid, flip_axes, self._dialect(reader))
        cur = reader.cursor()
        with interrupting(cur.interrupt):
            rows = self._fetch(cur, statement.sql, (fid,))
        if not rows:
            raise not_found(layer, fid)
        return row_to_feature(rows[0], [f.name for f in info.fields])

    def read_frame(self, layer, bbox=None, out_srid=None, limit=None) -> gpd.GeoDataFrame:
        reader = self._read()
        info = self._layer_in(reader, layer)
        dialect = self._dialect(reader)
        geom = output_geometry(info, out_srid, False, dialect)
        cols = ", ".join([quote_ident(FID)] + [quote_ident(f.name) for f in info.fields])
        sql = f"SELECT {cols}, ST_AsWKB({geom}) AS wkb FROM {dialect.source(info)}"
        params: list[Any] = []
        if bbox is not None:
            sql += f" WHERE {self.dialect.bbox_filter(info.srid)}"
            params.extend(bbox)
        sql += f" ORDER BY {quote_ident(FID)}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = reader.cursor().execute(sql, params).df()
        rows["wkb"] = rows["wkb"].map(bytes)
        return to_frame(rows, out_srid or info.srid).set_index(FID)

    def render_tile(self, query: TileQuery) -> RenderedTile:
        reader = self._read()
        infos = [self._layer_in(reader, layer.layer) for layer in query.layers]
        statement = tile_statement(infos, query, DuckDBTileDialect(self._dialect(reader)))
        cur = reader.cursor()
        with interrupting(cur.interrupt):
            rows = self._fetch(cur, statement.sql, statement.params)
        stem = reader.path.stem
        return RenderedTile(int(stem[1:]) if stem[1:].isdigit() else 0, join_layers(rows))

    @staticmethod
    def _layer_in(reader: _ReleaseReader, name: str) -> LayerInfo:
        for info in reader.layers:
            if info.name == name:
                return info
        raise LayerNotFound(f"no layer {name!r} in the current release")

    @staticmethod
    def _fetch(cur: duckdb.DuckDBPyConnection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return cur.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc

    # -- releases ------------------------------------------------------------------------------
    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        self.releases_dir.mkdir(parents=True, exist_ok=True)
        with open(self.releases_dir.parent / "build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

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
        con = duckdb_spatial.connect(path, read_only=False)
        try:
            con.execute("CREATE TABLE cim_release (number INTEGER, created TIMESTAMPTZ, meta VARCHAR)")
            con.execute("CREATE TABLE cim_layer (name VARCHAR PRIMARY KEY, ord INTEGER, info VARCHAR)")
            infos = []
            for layer in draft.layers:
                if layer.spec.kind == "raster":
                    # the COG beside the release file, in place before the release can become current
                    raster = self._raster_file(number, layer.spec.name)
                    install(layer, raster)
                    info = measure_raster(layer, raster.name)
                else:
                    info = measure(layer, draft.srid)
                    self._write_layer(con, layer, draft.srid)
                    crash_point("publish.write")  # the .partial file half written (tests/test_build_crash.py)
                infos.append(info)
            infos = catalog_order(infos)
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
    def _write_layer(con: duckdb.DuckDBPyConnection, layer: Any, srid: int) -> None:
        attrs, wkb = prepare(layer, srid)
        table = quote_ident(layer.spec.name)
        columns = [f"{quote_ident(FID)} BIGINT PRIMARY KEY", f"{quote_ident(GEOM)} GEOMETRY"]
        columns += [f"{quote_ident(f.name)} {_DUCK_TYPES[f.type]}" for f in LayerInfo(layer.spec, srid, 0, None).fields]
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

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _release_number(path: Path) -> int:
    """The number of a release file ``rNNNN.duckdb`` (0 for a plain DuckDB file)."""
    stem = path.stem
    return int(stem[1:]) if stem[:1] == "r" and stem[1:].isdigit() else 0
