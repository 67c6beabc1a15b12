"""Writing and switching the releases of the PostGIS store (a mixin of ``PostgisStore``).

Publishing loads a new schema ``cim_rNNNN`` completely — per layer one binary COPY, a GiST index,
ANALYZE (cim/store/postgis/copy.py) — while holding an advisory lock against concurrent builds,
then records the release and flips ``cim.current_release`` in one transaction. Anything failing on
the way drops the schema and the installed raster files, so the current release stays as it was.
The tile geometry of a release (:meth:`PostgisReleases.prepare_tiles`) is made once it is current:
a build's release is served at once, its tiles grow faster as each table is done.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from psycopg_pool import ConnectionPool
from sqlalchemy import select, text

from cim.errors import StoreError
from cim.faults import crash_point
from cim.store.base import FID, GEOM, LayerData, LayerInfo, ReleaseDraft, ReleaseInfo, catalog_order
from cim.store.frames import measure, prepare
from cim.store.postgis import carry, schema
from cim.store.postgis.copy import copy_rows
from cim.store.postgis.dialect import PostgisDialect
from cim.store.postgis.live import ensure_overlays, read_conflicts, rebase_overlays
from cim.store.rasters import install, measure_raster, remove
from cim.store.rebase import EditConflict
from cim.store.sql import division_totals, quote_ident, tile_geometry

#: ``maintenance_work_mem`` of the session that builds a release's spatial indexes
INDEX_BUILD_MEMORY = "1GB"
#: ``work_mem`` of the session that writes a release's tile geometry (sorted into tile order)
SORT_MEMORY = "256MB"
#: advisory lock key held while a release is published
PUBLISH_LOCK = 0x43494D + 1


class PostgisReleases:
    """publish / releases / set_current over ``_engine`` (SQLAlchemy) and ``_pool`` (psycopg)."""

    url: str
    raster_dir: Path
    _engine: sqlalchemy.Engine
    _pool: ConnectionPool
    _current: Any

    def publish(self, draft: ReleaseDraft, keep: int | None = None) -> ReleaseInfo:
        with self._engine.connect() as lock_conn:
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PUBLISH_LOCK})
            try:
                number = self._next_number()
                schema_name = f"cim_r{number:04d}"
                rasters: list[str] = []
                carried: dict[str, int] = {}  # carried layers: the release each came from
                tiles: list[tuple[str, int]] = []  # their tile geometry, carried with them
                try:
                    infos = self._load_schema(schema_name, draft, rasters, carried, tiles)
                    self._prepare_totals(schema_name, infos, carried)
                    self._activate(number, schema_name, draft, infos, tiles)
                except BaseException:
                    remove(rasters)
                    with self._engine.begin() as conn:
                        conn.execute(text(f"DROP SCHEMA IF EXISTS {quote_ident(schema_name)} CASCADE"))
                    raise
                if keep is not None:
                    self._prune(keep)
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PUBLISH_LOCK})
        self._current = None
        return self._release(number)

    def _next_number(self) -> int:
        with self._engine.connect() as conn:
            last = conn.execute(text("SELECT coalesce(max(number), 0) FROM cim.release")).scalar_one()
            # a schema left by a crashed build must not be reused
            while conn.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": f"cim_r{last + 1:04d}"}
            ).first():
                conn.execute(text(f"DROP SCHEMA {quote_ident(f'cim_r{last + 1:04d}')} CASCADE"))
                conn.commit()
            return last + 1

    def _load_schema(
        self, schema_name: str, draft: ReleaseDraft, rasters: list[str],
        carried: dict[str, int], tiles: list[tuple[str, int]],
    ) -> list[LayerInfo]:
        """Load the vector layers into ``schema_name``; install the raster layers' COGs into
        :attr:`raster_dir`, appending their paths to ``rasters`` (removed if the publish fails).
        A carried layer (cim/store/postgis/carry.py) becomes a view, recorded in ``carried`` and,
        with its tile geometry, in ``tiles``."""
        with self._engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {quote_ident(schema_name)}"))
        infos = []
        token = uuid.uuid4().hex[:8]
        for layer in draft.layers:
            if layer.carried_from is not None:
                dest = None
                if layer.spec.kind == "raster":
                    dest = self.raster_dir / f"{schema_name}-{token}.{layer.spec.name}.tif"
                    rasters.append(str(dest))
                with self._engine.begin() as conn:
                    info, zooms = carry.carry_layer(conn, schema_name, layer, dest)
                crash_point("publish.carry")  # a carried layer in the staged schema (tests/test_build_crash.py)
                infos.append(info)
                carried[layer.spec.name] = layer.carried_from
                tiles.extend((layer.spec.name, zoom) for zoom in zooms)
            elif layer.spec.kind == "raster":
                dest = self.raster_dir / f"{schema_name}-{token}.{layer.spec.name}.tif"
                rasters.append(str(dest))
                install(layer, dest)
                infos.append(measure_raster(layer, str(dest)))
            else:
                infos.append(measure(layer, draft.srid))
                self._load_layer(schema_name, layer, draft.srid)
        return infos

    def _load_layer(self, schema_name: str, layer: LayerData, srid: int) -> None:
        table = schema.layer_table(layer.spec, schema_name, srid)
        with self._engine.begin() as conn:
            table.create(conn)
        attrs, wkb = prepare(layer, srid)
        info = LayerInfo(layer.spec, srid, 0, None)
        qualified = PostgisDialect(schema_name).table(layer.spec.name)
        with self._pool.connection() as conn:
            copy_rows(conn, qualified, attrs, wkb, info.field_types, FID, GEOM)
            crash_point("publish.write")  # a staged schema half loaded (tests/test_build_crash.py)
            # more memory for this session's index build (1M footprints: GiST 3.6 -> 2.9 s)
            conn.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
            try:
                conn.execute(f"CREATE INDEX ON {qualified} USING GIST ({quote_ident(GEOM)})")
                # a feature's identity: its history across releases looks it up by source_id
                # (building_history on 1,000,000 buildings: 0.3-0.45 s -> 0.08 s for two releases; 1 s to build)
                conn.execute(f"CREATE INDEX ON {qualified} ({quote_ident('source_id')}, {quote_ident('source')})")
            finally:
                conn.execute("RESET maintenance_work_mem")
            conn.execute(f"ANALYZE {qualified}")

    def _prepare_totals(self, schema_name: str, infos: list[LayerInfo], carried: dict[str, int] | None = None) -> None:
        """The release's totals per division, table ``cim_division_totals`` of its schema, in one
        transaction (cim/store/sql/division_totals.py; read by Store.division_totals). Those of a
        layer carried over from the same release as the divisions are copied from that release."""
        dialect = PostgisDialect(schema_name)
        copied = division_totals.carried_with_divisions(infos, carried or {})
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
            statements = division_totals.prepare_statements(infos, dialect, skip=copied)
            for statement in statements:
                conn.execute(statement.sql, statement.params)
            if not statements:
                return
            srid = division_totals.release_metric_srid(infos)
            for name, number in copied.items():
                source = conn.execute("SELECT schema FROM cim.release WHERE number = %s", (number,)).fetchone()
                if source is None or not carry.copy_totals(conn, schema_name, source[0], name, srid):
                    info = next(i for i in infos if i.name == name)
                    for statement in division_totals.layer_statements(infos, info, dialect):
                        conn.execute(statement.sql, statement.params)

    def prepare_division_totals(self, number: int) -> bool:
        """Prepare the totals per division of release ``number`` published without them (before
        they were made at publish); False when it has them already or has no divisions. Holds the
        publish lock, so no build prunes the release meanwhile."""
        with self._engine.connect() as lock_conn:
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PUBLISH_LOCK})
            try:
                with self._pool.connection() as conn:
                    row = conn.execute("SELECT schema FROM cim.release WHERE number = %s", (number,)).fetchone()
                    if row is None:
                        raise StoreError(f"store {self.url} has no release {number}")
                    table = PostgisDialect(row[0]).table(division_totals.TOTALS_TABLE)
                    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None:
                        return False
                    infos = [LayerInfo.from_json(json.dumps(i)) for (i,) in conn.execute(
                        "SELECT info FROM cim.layer WHERE release = %s ORDER BY ord", (number,))]  # fmt: skip
                if not division_totals.prepare_statements(infos, PostgisDialect(row[0])):
                    return False
                self._prepare_totals(row[0], infos)
                return True
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PUBLISH_LOCK})

    def _activate(
        self, number: int, schema_name: str, draft: ReleaseDraft, infos: list[LayerInfo],
        tiles: list[tuple[str, int]] | tuple[()] = (),
    ) -> None:
        with self._engine.begin() as conn:
            # the pointer's row first, as edits lock it first (FOR SHARE): one lock order, no deadlock
            conn.execute(text("SELECT number FROM cim.current_release FOR UPDATE"))
            conn.execute(
                schema.release.insert().values(
                    number=number,
                    created=datetime.now(UTC),
                    schema=schema_name,
                    config=json.loads(json.dumps(draft.config, default=str)),
                    checksums=draft.checksums,
                    qa=json.loads(json.dumps(draft.qa, default=str)),
                )
            )
            for ordinal, info in enumerate(catalog_order(infos)):
                conn.execute(
                    schema.layer.insert().values(release=number, name=info.name, ord=ordinal, info=json.loads(info.to_json()))
                )
            for layer_name, zoom in tiles:  # carried layers' tile geometry: views made with the schema
                conn.execute(schema.tile_geometry.insert().values(release=number, layer=layer_name, zoom=zoom))
            ensure_overlays(conn, infos)
            rebase_overlays(conn, number, schema_name, infos)  # edits follow their features
            crash_point("publish.switch")
            self._set_current(conn, number)

    @staticmethod
    def _set_current(conn: sqlalchemy.Connection, number: int) -> None:
        conn.execute(
            text(
                "INSERT INTO cim.current_release (singleton, number) VALUES (true, :n) "
                "ON CONFLICT (singleton) DO UPDATE SET number = EXCLUDED.number"
            ),
            {"n": number},
        )

    def _prune(self, keep: int) -> None:
        pruned: list[str] = []
        with self._engine.begin() as conn:
            current = conn.execute(text("SELECT number FROM cim.current_release")).scalar_one_or_none()
            rows = conn.execute(select(schema.release.c.number, schema.release.c.schema).order_by("number")).all()
            doomed = {number for number, _ in rows[: max(0, len(rows) - keep)] if number != current}
            kept = {schema_name: number for number, schema_name in rows if number not in doomed}
            for number, schema_name in rows[: max(0, len(rows) - keep)]:
                if number != current:
                    # tables kept releases read (carried layers) move to the oldest of them first
                    carry.rehome(conn, schema_name, kept)
                    infos = conn.execute(
                        text("SELECT info->>'raster_path' FROM cim.layer WHERE release = :n"), {"n": number}
                    ).scalars()
                    pruned.extend(path for path in infos if path)
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {quote_ident(schema_name)} CASCADE"))
                    conn.execute(schema.release.delete().where(schema.release.c.number == number))
        remove(pruned)  # once the releases are gone for good

    def prepare_tiles(self, on_zoom: Callable[[str, int, float], None] | None = None) -> dict[str, tuple[int, ...]]:
        """Each missing table of tile geometry of the current release (cim/store/sql/tile_geometry.py):
        per layer and zoom one transaction builds it, indexes it, analyses it and records it in
        ``cim.tile_geometry`` — readers use it from their next read of the current release on (at
        most CURRENT_TTL later). Holds the publish lock, so no build prunes the release meanwhile."""
        try:
            return self._prepare_tiles(on_zoom)
        except psycopg.Error as exc:
            raise StoreError(f"tile geometry of the current release: {str(exc).strip()}") from exc

    def _prepare_tiles(self, on_zoom: Callable[[str, int, float], None] | None) -> dict[str, tuple[int, ...]]:
        done: dict[str, tuple[int, ...]] = {}
        with self._engine.connect() as lock_conn:
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PUBLISH_LOCK})
            try:
                with self._pool.connection() as conn:
                    row = conn.execute(
                        "SELECT r.number, r.schema FROM cim.current_release c JOIN cim.release r USING (number)"
                    ).fetchone()
                    if row is None:
                        return done
                    number, schema_name = row
                    dialect = PostgisDialect(schema_name)
                    infos = [LayerInfo.from_json(json.dumps(i)) for (i,) in conn.execute(
                        "SELECT info FROM cim.layer WHERE release = %s ORDER BY ord", (number,))]  # fmt: skip
                    have = set(conn.execute("SELECT layer, zoom FROM cim.tile_geometry WHERE release = %s", (number,)))
                    conn.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
                    conn.execute(f"SET work_mem = '{SORT_MEMORY}'")  # the tables are written in tile order
                    try:
                        for info in infos:
                            zooms = [z for z in tile_geometry.zooms_to_prepare(info) if (info.name, z) not in have]
                            for zoom in zooms:
                                started = time.monotonic()
                                self._prepare_zoom(conn, number, dialect, info, zoom)
                                if on_zoom is not None:
                                    on_zoom(info.name, zoom, time.monotonic() - started)
                            if zooms:
                                done[info.name] = tuple(zooms)
                    finally:
                        conn.execute("RESET maintenance_work_mem")
                        conn.execute("RESET work_mem")
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PUBLISH_LOCK})
        self._current = None
        return done

    @staticmethod
    def _prepare_zoom(conn: Any, number: int, dialect: PostgisDialect, info: LayerInfo, zoom: int) -> None:
        target = dialect.table(tile_geometry.table_name(info.name, zoom))
        with conn.transaction():
            conn.execute(f"DROP TABLE IF EXISTS {target}")
            conn.execute(tile_geometry.prepare_sql(info, dialect.table(info.name), target, zoom))
            conn.execute(f"CREATE INDEX ON {target} USING GIST ({tile_geometry.PX})")
            crash_point("tiles.prepare")
            conn.execute(f"ANALYZE {target}")
            conn.execute("INSERT INTO cim.tile_geometry (release, layer, zoom) VALUES (%s, %s, %s)", (number, info.name, zoom))

    def edit_conflicts(self) -> list[EditConflict]:
        """Edits the current release does not take (cim/store/rebase.py)."""
        with self._pool.connection() as conn:
            return read_conflicts(conn)

    def _release(self, number: int) -> ReleaseInfo:
        return next(r for r in self.releases() if r.number == number)

    def releases(self) -> list[ReleaseInfo]:
        with self._engine.connect() as conn:
            current = conn.execute(text("SELECT number FROM cim.current_release")).scalar_one_or_none()
            names = conn.execute(text("SELECT release, array_agg(name ORDER BY ord) FROM cim.layer GROUP BY release"))
            layers = dict(names.all())
            rows = conn.execute(select(schema.release).order_by(schema.release.c.number)).mappings().all()
        return [
            ReleaseInfo(
                number=r["number"],
                created=r["created"],
                current=r["number"] == current,
                layers=tuple(layers.get(r["number"], ())),
                config=r["config"],
                checksums=r["checksums"],
                qa=r["qa"],
            )
            for r in rows
        ]

    def set_current(self, number: int) -> ReleaseInfo:
        with self._engine.begin() as conn:
            found = conn.execute(select(schema.release.c.schema).where(schema.release.c.number == number)).first()
            if not found:
                raise StoreError(f"store {self.url} has no release {number}")
            infos = [LayerInfo.from_json(json.dumps(i)) for i in conn.execute(
                text("SELECT info FROM cim.layer WHERE release = :n"), {"n": number}).scalars()]  # fmt: skip
            rebase_overlays(conn, number, found[0], infos)  # edits follow their features
            self._set_current(conn, number)
        self._current = None
        return self._release(number)
