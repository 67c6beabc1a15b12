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
import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import pyarrow as pa

from cim.errors import LayerNotFound, NoRelease, StoreError
from cim.store.arrow_batches import conform
from cim.store.audit import AuditLog, JsonLinesAuditLog
from cim.store.duckdb.jobs import FileJobStore
from cim.store.base import FeaturePage, FeatureQuery, LayerInfo, Store, catalog_order
from cim.store.budget import interrupting
from cim.store.duckdb import spatial
from cim.store.duckdb.compare import Comparisons
from cim.store.duckdb.dialect import DuckDBDialect, DuckDBTileDialect
from cim.store.duckdb.edits import DuckDBEdits
from cim.store.duckdb.live import LiveFiles, ReaderOverlays
from cim.store.duckdb.live_layers import DuckDBLiveLayers, LiveLayerFiles
from cim.store.duckdb.releases import DuckDBReleases, release_number
from cim.store.frames import to_frame
from cim.store.release_reads import Build, ReleaseReads
from cim.store.sql.division_totals import TOTALS_TABLE
from cim.store.sql.features import count_features, feature_from_rows, page_from_rows, select_features, select_frame, select_one
from cim.store.sql.tiles import join_layers, tile_statement
from cim.store.tilequery import RenderedTile, TileQuery


class _ReleaseReader:
    """Read-only access to one release file, with a DuckDB cursor per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.connection = spatial.connect(path, read_only=True)
            rows = self.connection.execute("SELECT info FROM cim_layer ORDER BY ord").fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"{path}: not a readable cim release ({exc})") from exc
        # raster paths are recorded relative to the releases directory
        self.layers = [_resolve_raster(LayerInfo.from_json(r[0]), path.parent) for r in rows]
        #: whether publish prepared the release's totals per division (cim/store/sql/division_totals.py)
        self.has_totals = bool(self.connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?", (TOTALS_TABLE,)
        ).fetchone()[0])  # fmt: skip
        self._local = threading.local()
        #: the edits overlay versions attached to this connection
        self.overlays = ReaderOverlays(self.connection)
        #: the live layers' versions attached to this connection
        self.live_layers = ReaderOverlays(self.connection)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = spatial.cursor(self.connection)
        return cur

    def close(self) -> None:
        self.connection.close()


def _resolve_raster(info: LayerInfo, directory: Path) -> LayerInfo:
    if info.raster_path is None or os.path.isabs(info.raster_path):
        return info
    return dataclasses.replace(info, raster_path=str(directory / info.raster_path))


class DuckDBStore(ReleaseReads, DuckDBLiveLayers, DuckDBEdits, DuckDBReleases, Store):
    dialect = DuckDBDialect()

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self.url = str(path)
        self.releases_dir = self.path.with_name(self.path.name + ".d") / "releases"
        self._reader: _ReleaseReader | None = None
        self._reader_lock = threading.Lock()
        #: readers of releases read by number (Store.read_frame(release=N), diffs), opened once
        self._past: dict[int, _ReleaseReader] = {}
        #: the connection releases are compared on (cim/store/duckdb/compare.py)
        self._comparisons = Comparisons()
        #: the release link's text and the file it names (see _current_target)
        self._resolved: tuple[str, Path] | None = None
        self._live = LiveFiles(self.path.with_name(self.path.name + ".d"))
        self._live_layers = LiveLayerFiles(self.path.with_name(self.path.name + ".d"))
        if not self.path.parent.is_dir():
            raise StoreError(f"store {self.url}: directory {self.path.parent} does not exist")

    @classmethod
    def accepts(cls, url: str) -> bool:
        """``duckdb:///path`` or a path ending ``.duckdb``."""
        return url.lower().startswith("duckdb://") or ("://" not in url and url.endswith(".duckdb"))

    @classmethod
    def from_url(cls, url: str) -> DuckDBStore:
        return cls(url.split("://", 1)[1] if "://" in url else url)

    def tile_cache_dir(self) -> Path | None:
        return self.releases_dir.parent / "tiles"

    def open_audit_log(self) -> AuditLog:
        return JsonLinesAuditLog(self.releases_dir.parent / "audit")

    def jobs(self) -> FileJobStore:
        """OGC API - Processes jobs: JSON files in ``<store>.d/jobs/`` (cim/store/duckdb/jobs.py)."""
        return FileJobStore(self.releases_dir.parent)

    def connect_url(self) -> str:
        """The URL to open this store with from another process (the job runner's child)."""
        return str(self.path)

    # -- current release -----------------------------------------------------------------------
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
        reader = self._read()
        return catalog_order([*reader.layers, *self._live_state(reader)[0]])

    def current_number(self) -> int:
        return release_number(self._read().path)

    def known_current_number(self) -> int | None:
        # the release symlink, read without opening anything: known when the open reader is its target
        reader = self._reader
        try:
            target = self._current_target()
        except OSError:
            return None
        return release_number(target) if reader is not None and reader.path == target else None

    def peek_current_number(self) -> int:
        # the release link (one readlink), not the release opened: that waits for a request
        target = self._current_target()
        return release_number(target) if target is not None else self.current_number()

    def check_ready(self) -> int:
        """The current release's number, its file open and answering (readiness, ogcapi/health.py)."""
        reader = self._read()
        cur = reader.cursor()
        with interrupting(cur.interrupt):
            self._fetch(cur, "SELECT count(*) FROM cim_layer", ())
        return release_number(reader.path)

    def edit_generation(self) -> int:
        # edits, and live layers' writes and validity boundaries (their tiles are keyed by it too)
        return super().edit_generation() + self.live_generation()

    def known_edit_generation(self) -> int | None:
        try:
            return self.edit_generation()  # readlinks (and a cached list of the live layers' boundaries)
        except (OSError, StoreError):
            return None

    # -- reads ---------------------------------------------------------------------------------
    def _dialect(self, reader: _ReleaseReader) -> DuckDBDialect:
        """The dialect of one read: with the current edits overlay attached, when there is one."""
        view = self._live.view(reader.overlays, release_number(reader.path))
        live_layers = self._live_view(reader)
        return self.dialect if view is None and live_layers is None else DuckDBDialect(view, live_layers)

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
        return feature_from_rows(rows, info, fid)

    def read_frame(self, layer, bbox=None, out_srid=None, limit=None, columns=None, release=None) -> gpd.GeoDataFrame:
        if release is not None:
            return self._release_frame(layer, release, bbox, out_srid, limit, columns)
        reader = self._read()
        info = self._layer_in(reader, layer)
        statement = select_frame(info, self._dialect(reader), bbox, out_srid, limit, columns)
        rows = reader.cursor().execute(statement.sql, statement.params).df()
        return to_frame(rows, out_srid or info.srid)

    # -- past releases (cim/store/release_reads.py) ---------------------------------------------
    def _past_reader(self, number: int) -> _ReleaseReader:
        """The reader of release ``number``'s file (NotFound naming the releases kept when there is none)."""
        reader = self._past.get(number)
        if reader is not None and reader.path.exists():
            return reader
        self._check_release(number)
        with self._reader_lock:
            reader = self._past.get(number)
            if reader is None or not reader.path.exists():
                reader = self._past[number] = _ReleaseReader(self._release_file(number))
            return reader

    def release_layers(self, number: int) -> list[LayerInfo]:
        return catalog_order(self._past_reader(number).layers)

    def _release_rows(self, releases, build: Build) -> list[tuple[Any, ...]]:
        if len(releases) == 1:
            if releases[0] is None:
                reader = self._read()
                dialect = self._dialect(reader)
            else:
                reader = self._past_reader(releases[0])
                dialect = self.dialect
            cur = reader.cursor()
            statement = build([dialect])
            with interrupting(cur.interrupt):
                return self._fetch(cur, statement.sql, statement.params)
        # several releases: their files attached read-only to the comparing connection; the current
        # release read with its edits (None) is its file plus the overlay version it reads now
        sides = []
        for number in releases:
            if number is not None:
                sides.append((self._past_reader(number).path, None))
                continue
            reader = self._read()
            sides.append((reader.path, self._live.view(reader.overlays, release_number(reader.path))))
        return self._comparisons.rows(sides, build, self._fetch)

    def _release_batches(self, release, build, schema: pa.Schema, rows: int):
        # the reader and its dialect now (an edits overlay attached to its connection), the rows on
        # a cursor of its own: DuckDB streams the result in chunks (to_arrow_reader)
        reader = self._read() if release is None else self._past_reader(release)
        dialect = self._dialect(reader) if release is None else self.dialect
        statement = build(dialect)
        cur = spatial.cursor(reader.connection)
        stream = None
        try:
            try:
                stream = cur.execute(statement.sql, statement.params).to_arrow_reader(rows)
            except duckdb.Error as exc:
                raise StoreError(f"query failed: {exc}") from exc
            for batch in stream:
                yield conform(batch, schema)
        finally:
            # the stream before its cursor, also when the consumer stops early: a reader left to the
            # collector would release DuckDB's result after its connection is gone
            if stream is not None:
                stream.close()
            cur.close()

    def _prepared_totals(self, release, build) -> list[tuple[Any, ...]]:
        reader = self._read() if release is None else self._past_reader(release)
        if not reader.has_totals:
            return []
        dialect = self._dialect(reader) if release is None else self.dialect
        statement = build(dialect)
        cur = reader.cursor()
        with interrupting(cur.interrupt):
            return self._fetch(cur, statement.sql, statement.params)

    def render_tile(self, query: TileQuery) -> RenderedTile:
        reader = self._read()
        infos = [self._layer_in(reader, layer.layer) for layer in query.layers]
        statement = tile_statement(infos, query, DuckDBTileDialect(self._dialect(reader)))
        cur = reader.cursor()
        with interrupting(cur.interrupt):
            rows = self._fetch(cur, statement.sql, statement.params)
        stem = reader.path.stem
        return RenderedTile(int(stem[1:]) if stem[1:].isdigit() else 0, join_layers(rows))

    def _layer_in(self, reader: _ReleaseReader, name: str) -> LayerInfo:
        for info in reader.layers:
            if info.name == name:
                return info
        for info in self._live_state(reader)[0]:
            if info.name == name:
                return info
        raise LayerNotFound(f"no layer {name!r} in the current release")

    @staticmethod
    def _fetch(cur: duckdb.DuckDBPyConnection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return cur.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc

    def close(self) -> None:
        self._comparisons.close()
        for reader in self._past.values():
            reader.close()
        self._past.clear()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
