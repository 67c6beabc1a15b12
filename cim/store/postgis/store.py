"""The production store: PostGIS through psycopg 3 (pooled) with a geoalchemy2-defined schema.

A release is a schema ``cim_rNNNN`` holding one table per layer; ``cim.current_release`` names the
current one. Publishing loads the new schema completely (COPY, GiST index, ANALYZE) and then flips
``current_release`` in one transaction. Readers cache the current release (and the edit
generation, read with it) for :data:`CURRENT_TTL` seconds, so a running server switches within
that time, without a restart. Writing releases: cim/store/postgis/releases.py; SQL spellings:
cim/store/postgis/dialect.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import geopandas as gpd
import psycopg
import pyarrow as pa
import sqlalchemy
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy import text

from cim.errors import LayerNotFound, NoRelease, StoreError
from cim.store import budget
from cim.store.arrow_batches import batch_from_rows
from cim.store.audit import AuditLog
from cim.store.base import FID, FeaturePage, FeatureQuery, LayerInfo, Store, catalog_order
from cim.store.edits import Edit, EditRecord
from cim.store.frames import to_frame
from cim.store.postgis import live_layers, schema
from cim.store.postgis.audit import PostgisAuditLog
from cim.store.postgis.jobs import PostgisJobStore
from cim.store.postgis.dialect import PostgisDialect, PostgisTileDialect
from cim.store.postgis.live import ReleaseChanged, apply_edit, generation_sql, read_log
from cim.store.postgis.releases import PostgisReleases
from cim.store.postgis.tls import connection_url
from cim.store.rasters import postgis_raster_dir
from cim.store.release_reads import Build, ReleaseReads
from cim.store.sql.dialect import Statement
from cim.store.sql.division_totals import TOTALS_TABLE
from cim.store.sql.features import (
    count_features,
    feature_from_rows,
    frame_fields,
    is_filtered,
    page_from_rows,
    select_features,
    select_frame,
    select_one,
)
from cim.store.sql.tiles import join_layers, tile_statement
from cim.store.tilequery import RenderedTile, TileQuery

__all__ = ["PostgisStore"]

#: seconds a reader trusts its idea of the current release
CURRENT_TTL = 1.0
#: seconds /readyz waits for a database connection
READY_TIMEOUT = 3.0
#: filtered queries the planner expects to match more rows than this get no numberMatched: counting
#: them exactly costs a scan (~130-200 ms per million rows here, see docs/conformance.md), the page ~0.2 ms
EXACT_COUNT_LIMIT = 100_000




def _limit_statements(conn: psycopg.Connection) -> None:
    """Each new read connection: PostgreSQL's statement_timeout (cim/store/budget.py)."""
    conn.execute(f"SET statement_timeout = {budget.statement_timeout_ms()}")


#: tries of an edit whose release was switched under it (each switch re-bases the overlay): the load
#: test, switching every 0.5 s, once got the 503 of a second ReleaseChanged when one retry was all
EDIT_ATTEMPTS = 5


class _Current:
    def __init__(
        self, number: int, schema_name: str, layers: list[LayerInfo], generation: int = 0, prepared: int = 0
    ) -> None:
        self.number = number
        #: how many tables of tile geometry the release had when its layers were read
        self.prepared = prepared
        editable = frozenset(i.name for i in layers if i.spec.kind == "vector" and i.spec.editable)
        self.dialect = PostgisDialect(schema_name, editable)
        self.release_layers = layers
        self.layers = layers
        #: the live layers' version and validity boundaries (Store.edit_generation)
        self.live_version = 0
        self.boundaries: list[Any] = []
        #: the id of the last committed edit when the pointer was read (Store.edit_generation)
        self.generation = generation
        self.loaded = time.monotonic()

    def live(self, state: tuple[int, list[LayerInfo], list[Any]]) -> None:
        """Take the live layers' state (read with the release pointer)."""
        self.live_version, infos, self.boundaries = state
        self.layers = catalog_order([*self.release_layers, *infos])

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise LayerNotFound(f"no layer {name!r} in the current release")


def _safe_url(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured database"


class PostgisStore(ReleaseReads, PostgisReleases, Store):
    def __init__(self, url: str, pool_size: int = 10) -> None:
        url = connection_url(url)  # TLS (sslmode ...) for every connection below: cim/store/postgis/tls.py
        self.url = _safe_url(url)
        #: where this store's raster layers (COGs) live (cim/store/rasters.py)
        self.raster_dir = postgis_raster_dir(url)
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._conninfo = conninfo
        self._engine = sqlalchemy.create_engine(
            conninfo.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sqlalchemy.pool.NullPool
        )
        try:
            with self._engine.begin() as conn:
                self._require_postgis(conn)
                schema.migrate(conn)
                live_layers.ensure_tables(conn)
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(f"cannot connect to {self.url}: {reason}") from None
        # autocommit: a read is one round trip, not BEGIN, the statement and the pool's ROLLBACK on
        # return; what must be atomic (edits, a tile's SET LOCAL) says so with conn.transaction()
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, open=True, name="cim", kwargs={"autocommit": True}
        )
        # the reads a server answers with (pages, features, tiles, the current-release pointer):
        # PostgreSQL stops any statement past the budget (cim/store/budget.py) and a request waits for
        # a connection no longer than the budget either (at least the few seconds connecting may take);
        # builds, edits and city.read use the pool above
        self._reads = ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, open=True, name="cim-reads", kwargs={"autocommit": True},
            configure=_limit_statements, timeout=max(budget.request_seconds(), READY_TIMEOUT),
        )  # fmt: skip
        self._current: _Current | None = None
        self._lock = threading.Lock()
        #: (version, infos, validity boundaries) of the live layers, as last read
        self._live: tuple[int, list[LayerInfo], list[Any]] = (-1, [], [])

    #: the URL schemes of PostgreSQL (``postgres://`` is read as ``postgresql://``)
    SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")

    @classmethod
    def accepts(cls, url: str) -> bool:
        return "://" in url and url.split("://", 1)[0].lower() in cls.SCHEMES

    @classmethod
    def from_url(cls, url: str) -> PostgisStore:
        return cls(url.replace("postgres://", "postgresql://", 1))

    def open_audit_log(self) -> AuditLog:
        return PostgisAuditLog(self._pool)

    def jobs(self) -> PostgisJobStore:
        """OGC API - Processes jobs: schema ``cim_jobs`` (cim/store/postgis/jobs.py)."""
        return PostgisJobStore(self._pool)

    def connect_url(self) -> str:
        """The URL to open this store with from another process (the job runner's child), password
        included: never to be shown (``url`` is the one to show)."""
        return self._conninfo

    def _require_postgis(self, conn: sqlalchemy.Connection) -> None:
        if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first():
            return
        available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).first()
        if not available:
            raise StoreError(
                f"{self.url} has no PostGIS: install it on the server (Debian: apt-get install "
                "postgresql-15-postgis-3) and run CREATE EXTENSION postgis"
            )
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        except sqlalchemy.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0]
            raise StoreError(f"{self.url} has no PostGIS extension and cannot create it: {reason}") from None

    # -- current release -----------------------------------------------------------------------
    def _read(self) -> _Current:
        known = self._known()
        if known is not None:
            return known
        current = self._current
        with self._lock:
            with self._reading() as conn:
                # the edit generation comes with the pointer: no query of its own per tile request
                row = conn.execute(
                    f"SELECT r.number, r.schema, ({generation_sql()}),"
                    " (SELECT count(*) FROM cim.tile_geometry t WHERE t.release = r.number),"
                    f" ({live_layers.version_sql()})"
                    " FROM cim.current_release c JOIN cim.release r USING (number)"
                ).fetchone()
                if row is None:
                    raise NoRelease(f"store {self.url} has no release yet: build one first (e.g. `cim demo --build-only`)")
                if self._live[0] != row[4]:
                    self._live = (row[4], *live_layers.live_state(conn))
                if current is None or current.number != row[0] or current.prepared != row[3]:
                    current = _Current(row[0], row[1], self._layer_infos(conn, row[0]), row[2], row[3])
                else:
                    current.generation = row[2]
                    current.loaded = time.monotonic()
                current.live(self._live)
            self._current = current
            return current

    @staticmethod
    def _layer_infos(conn: psycopg.Connection, number: int) -> list[LayerInfo]:
        """The layers of release ``number``, each with the zooms of its prepared tile geometry."""
        zooms = dict(conn.execute(
            "SELECT layer, array_agg(zoom ORDER BY zoom) FROM cim.tile_geometry WHERE release = %s GROUP BY layer", (number,)
        ).fetchall())  # fmt: skip
        infos = conn.execute("SELECT info FROM cim.layer WHERE release = %s ORDER BY ord", (number,)).fetchall()
        layers = [LayerInfo.from_json(json.dumps(i[0])) for i in infos]
        return [replace(info, tile_zooms=tuple(zooms.get(info.name, ()))) for info in layers]

    def layers(self) -> list[LayerInfo]:
        return list(self._read().layers)

    def current_number(self) -> int:
        return self._read().number

    def known_current_number(self) -> int | None:
        current = self._known()
        return current.number if current is not None else None

    def known_edit_generation(self) -> int | None:
        current = self._known()
        if current is None:
            return None
        return current.generation + current.live_version + live_layers.passed(current.boundaries)

    def _known(self) -> _Current | None:
        """What _read() would answer without a query, if anything."""
        current = self._current
        return current if current is not None and time.monotonic() - current.loaded < CURRENT_TTL else None

    # -- reads ---------------------------------------------------------------------------------
    def query(self, query: FeatureQuery) -> FeaturePage:
        current = self._read()
        info = current.layer(query.layer)
        statement = select_features(info, query, current.dialect)
        with self._reading() as conn:
            rows = self._fetch(conn, statement.sql, statement.params)
            matched: int | None = None
            if query.count:
                counter = count_features(info, query, current.dialect)
                if counter is None:
                    matched = info.count
                elif not is_filtered(info, query) or self._estimate(conn, counter) <= EXACT_COUNT_LIMIT:
                    matched = self._fetch(conn, counter.sql, counter.params)[0][0]
        return page_from_rows(rows, info, query, matched)

    def _estimate(self, conn: psycopg.Connection, counter: Statement) -> float:
        """The planner's estimate of the rows a filtered count would count (from table statistics)."""
        sql = "EXPLAIN (FORMAT JSON) SELECT 1" + counter.sql.removeprefix("SELECT count(*)")
        return float(self._fetch(conn, sql, counter.params)[0][0][0]["Plan"]["Plan Rows"])

    def get_feature(
        self, layer: str, fid: int, out_srid: int | None = None, flip_axes: bool = False
    ) -> dict[str, Any]:
        current = self._read()
        info = current.layer(layer)
        statement = select_one(info, out_srid, flip_axes, current.dialect)
        with self._reading() as conn:
            rows = self._fetch(conn, statement.sql, (fid,))
        return feature_from_rows(rows, info, fid)

    def read_frame(self, layer, bbox=None, out_srid=None, limit=None, columns=None, release=None) -> gpd.GeoDataFrame:
        if release is not None:
            return self._release_frame(layer, release, bbox, out_srid, limit, columns)
        current = self._read()
        info = current.layer(layer)
        statement = select_frame(info, current.dialect, bbox, out_srid, limit, columns)
        with self._pool.connection() as conn:
            rows = self._fetch(conn, statement.sql, statement.params)
        names = [FID] + frame_fields(info, columns) + ["wkb"]
        return to_frame(rows, out_srid or info.srid, names)

    # -- past releases (cim/store/release_reads.py) ---------------------------------------------
    def release_layers(self, number: int) -> list[LayerInfo]:
        self._check_release(number)
        with self._pool.connection() as conn:
            return self._layer_infos(conn, number)

    def _release_rows(self, releases, build: Build) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            dialects = []
            for number in releases:
                if number is None:
                    dialects.append(self._read().dialect)
                    continue
                row = conn.execute("SELECT schema FROM cim.release WHERE number = %s", (number,)).fetchone()
                if row is None:
                    self._check_release(number)  # NotFound naming the releases kept
                    raise StoreError(f"release {number} went away while being read")
                dialects.append(PostgisDialect(row[0]))  # its tables as published: no edits overlay
            statement = build(dialects)
            return self._fetch(conn, statement.sql, statement.params)

    def _release_batches(self, release, build, schema: pa.Schema, rows: int):
        # a server-side cursor (in a transaction, on a connection of the unlimited pool: a download
        # may take longer than a request's statement_timeout), fetched ``rows`` at a time
        dialect = self._read().dialect if release is None else None
        with self._pool.connection() as conn:
            if dialect is None:
                row = conn.execute("SELECT schema FROM cim.release WHERE number = %s", (release,)).fetchone()
                if row is None:
                    self._check_release(release)
                    raise StoreError(f"release {release} went away while being read")
                dialect = PostgisDialect(row[0])
            statement = build(dialect)
            try:
                with conn.transaction(), conn.cursor(name="cim_layer_batches", binary=True) as cur:
                    cur.itersize = rows
                    cur.execute(statement.sql, statement.params)
                    while chunk := cur.fetchmany(rows):
                        yield batch_from_rows(chunk, schema)
            except psycopg.Error as exc:
                raise StoreError(f"query failed: {str(exc).strip()}") from exc

    def _prepared_totals(self, release, build) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            if release is None:
                dialect = self._read().dialect
            else:
                row = conn.execute("SELECT schema FROM cim.release WHERE number = %s", (release,)).fetchone()
                if row is None:
                    return []  # the live read says which releases there are
                dialect = PostgisDialect(row[0])
            if conn.execute("SELECT to_regclass(%s)", (dialect.table(TOTALS_TABLE),)).fetchone()[0] is None:
                return []
            statement = build(dialect)
            return self._fetch(conn, statement.sql, statement.params)

    def render_tile(self, query: TileQuery) -> RenderedTile:
        current = self._read()
        infos = [current.layer(layer.layer) for layer in query.layers]
        # every tile's SQL is its own text, numbers as literals: sent as is (no placeholders to
        # parse) and never prepared (psycopg would track each text for preparing in vain)
        statement = tile_statement(infos, query, PostgisTileDialect(current.dialect))
        if statement.params:
            raise ValueError("tile statements carry no parameters")
        with self._reading() as conn:
            if any(current.dialect.edited(info) for info in infos):
                with conn.transaction():
                    # the planner runs the two branches of a merged layer in a Parallel Append whenever
                    # the release side is costly (z14/z13: 30 ms against 5 ms without, workers' start)
                    conn.execute("SET LOCAL enable_parallel_append = off")
                    rows = self._fetch(conn, statement.sql, None, prepare=False)
            else:  # one round trip (the pool's connections autocommit)
                rows = self._fetch(conn, statement.sql, None, prepare=False)
        return RenderedTile(current.number, join_layers(rows))

    # -- edits ---------------------------------------------------------------------------------
    def edit(self, edit: Edit) -> int:
        current = self._read()
        info = current.layer(edit.layer)
        try:
            with self._pool.connection() as conn:
                for _ in range(EDIT_ATTEMPTS - 1):
                    try:
                        return apply_edit(conn, current.dialect, info, edit, current.number)
                    except ReleaseChanged:  # a release switch (re-basing the edits) came between: again
                        self._current = None
                        current = self._read()
                        info = current.layer(edit.layer)
                return apply_edit(conn, current.dialect, info, edit, current.number)
        finally:
            latest = self._current
            if latest is not None:  # the next read of this process sees the new edit generation
                latest.loaded = float("-inf")

    def edit_log(self, layer: str | None = None, limit: int = 100) -> list[EditRecord]:
        with self._pool.connection() as conn:
            return read_log(conn, layer, limit)

    def tile_geometry_version(self) -> int:
        return self._read().prepared

    def edit_generation(self) -> int:
        """The last committed edit's id, as of the current-release read (at most CURRENT_TTL old;
        an edit through this store object is seen at once), plus the live layers' version and how
        many of their validity boundaries have passed (their tiles are keyed by it too)."""
        current = self._read()
        return current.generation + current.live_version + live_layers.passed(current.boundaries)

    # -- live layers ---------------------------------------------------------------------------
    def live_write(self, layer: str, change: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
        try:
            with self._pool.connection() as conn:
                return live_layers.write(conn, layer, change)
        finally:
            latest = self._current
            if latest is not None:  # the next read of this process sees the write
                latest.loaded = float("-inf")

    def live_events(self, layer: str, after: int = 0, limit: int = 1000) -> list[Any]:
        with self._reading() as conn:
            try:
                return live_layers.read_events(conn, layer, after, limit)
            except psycopg.Error as exc:
                raise StoreError(f"query failed: {str(exc).strip()}") from exc

    def live_version(self, layer: str) -> int:
        return self._read().live_version

    @staticmethod
    def _fetch(
        conn: psycopg.Connection, sql: str, params: tuple[Any, ...] | None, prepare: bool | None = None
    ) -> list[tuple[Any, ...]]:
        """Rows of ``sql``; ``prepare``: psycopg's (None: prepared once run often; False: never)."""
        try:
            return conn.execute(sql, params, prepare=prepare).fetchall()
        except psycopg.errors.QueryCanceled as exc:  # statement_timeout (read connections)
            raise budget.timeout_error(budget.statement_timeout_ms() / 1000) from exc
        except psycopg.Error as exc:
            raise StoreError(f"query failed: {str(exc).strip()}") from exc

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection]:
        """A connection of the read pool; StoreError when none comes within the request budget."""
        try:
            with self._reads.connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreError(f"no connection to {self.url} within {self._reads.timeout:g} s") from None

    def check_ready(self) -> int:
        """The current release's number, asked of the database now (readiness, ogcapi/health.py):
        StoreError when the database cannot be reached within a few seconds, NoRelease without one."""
        try:
            with self._reads.connection(timeout=READY_TIMEOUT) as conn:
                rows = self._fetch(conn, "SELECT number FROM cim.current_release", None)
        except PoolTimeout:
            raise StoreError(f"no connection to {self.url} within {READY_TIMEOUT:g} s") from None
        if not rows:
            raise NoRelease(f"store {self.url} has no release yet")
        return int(rows[0][0])

    def close(self) -> None:
        self._reads.close()
        self._pool.close()
        self._engine.dispose()
