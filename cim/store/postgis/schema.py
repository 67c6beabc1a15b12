"""The PostGIS schema of a cim store, as geoalchemy2/SQLAlchemy tables, and its migrations.

Metadata lives in schema ``cim``; each release's layers live in their own schema ``cim_rNNNN``.
Migrations are numbered steps recorded in ``cim.schema_version`` and applied under an advisory
lock when a store is opened, so a fresh database needs nothing done by hand beyond having the
PostGIS extension available.
"""

from __future__ import annotations

from typing import Callable

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from cim.layerspec import LayerSpec
from cim.store.base import FID, GEOM, LayerInfo
from cim.store.postgis.audit import AUDIT_TABLE_DDL
from cim.store.postgis.jobs import JOBS_DDL
from cim.store.postgis import live_layers
from cim.store.postgis.live import create_live_schema, index_overlays

META_SCHEMA = "cim"
metadata = MetaData(schema=META_SCHEMA)

schema_version = Table("schema_version", metadata, Column("version", Integer, primary_key=True))

release = Table(
    "release",
    metadata,
    Column("number", Integer, primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("schema", Text, nullable=False, unique=True),
    Column("config", JSONB, nullable=False),
    Column("checksums", JSONB, nullable=False),
    Column("qa", JSONB, nullable=False),
)

current_release = Table(
    "current_release",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("number", Integer, ForeignKey("cim.release.number"), nullable=False),
    CheckConstraint("singleton", name="one_current_release"),
)

layer = Table(
    "layer",
    metadata,
    Column("release", Integer, ForeignKey("cim.release.number", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("ord", Integer, nullable=False),
    Column("info", JSONB, nullable=False),
)


#: the prepared tile geometry of each release (cim/store/sql/tile_geometry.py): one row per layer and
#: zoom whose table is complete and indexed, written in the transaction that made it
tile_geometry = Table(
    "tile_geometry",
    metadata,
    Column("release", Integer, ForeignKey("cim.release.number", ondelete="CASCADE"), primary_key=True),
    Column("layer", Text, primary_key=True),
    Column("zoom", Integer, primary_key=True),
)


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[release, current_release, layer])


def _v2_edits(conn: Connection) -> None:
    create_live_schema(conn)


def _v3_overlay_indexes(conn: Connection) -> None:
    index_overlays(conn)


def _v4_tile_geometry(conn: Connection) -> None:
    metadata.create_all(conn, tables=[tile_geometry])


def _v5_edit_conflicts(conn: Connection) -> None:
    # overlay tables get the column ``conflict`` (edits re-based by identity: cim/store/rebase.py)
    index_overlays(conn)


def _v7_live_layers(conn: Connection) -> None:
    # live layers (warnings), beside the releases: cim/store/postgis/live_layers.py
    live_layers.create_schema(conn)


def _v6_audit_log(conn: Connection) -> None:
    # the audit log of writes and restricted reads (cim/store/audit.py)
    for statement in AUDIT_TABLE_DDL.split(";"):
        conn.execute(text(statement))


def _v8_jobs(conn: Connection) -> None:
    # OGC API - Processes jobs and their results (cim/store/postgis/jobs.py)
    for statement in JOBS_DDL.split(";"):
        conn.execute(text(statement))


#: ordered migrations; append, never edit
MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial, _v2_edits, _v3_overlay_indexes, _v4_tile_geometry, _v5_edit_conflicts, _v6_audit_log, _v7_live_layers, _v8_jobs]

_ADVISORY_LOCK = 0x43494D  # "CIM"


def migrate(conn: Connection) -> int:
    """Bring the metadata schema to the latest version; returns that version."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}"))
    schema_version.create(conn, checkfirst=True)
    done = conn.execute(text(f"SELECT coalesce(max(version), 0) FROM {META_SCHEMA}.schema_version")).scalar_one()
    for version, step in enumerate(MIGRATIONS, start=1):
        if version > done:
            step(conn)
            conn.execute(schema_version.insert().values(version=version))
    return len(MIGRATIONS)


_COLUMN_TYPES = {
    "string": Text,
    "integer": BigInteger,
    "number": Double,
    "boolean": Boolean,
    "date": Date,
    "datetime": lambda: DateTime(timezone=True),
}


def layer_table(spec: LayerSpec, schema: str, srid: int) -> Table:
    """The table of one vector layer in a release schema (GiST index created after loading)."""
    columns = [
        Column(FID, BigInteger, primary_key=True, autoincrement=False),
        Column(GEOM, Geometry(geometry_type="GEOMETRY", srid=srid, spatial_index=False)),
    ]
    columns += [Column(f.name, _COLUMN_TYPES[f.type]()) for f in LayerInfo(spec, srid, 0, None).fields]
    return Table(spec.name, MetaData(schema=schema), *columns)
