"""Layers carried over into a new release file of the embedded store (incremental builds,
cim/build/carry.py).

A release file is immutable and a reader opens only its own, so a carried vector layer is copied
inside DuckDB: the holding release's file is attached read-only to the connection writing the new
``.partial`` file and the table goes over with one ``INSERT INTO ... SELECT *`` (no row passes
through Python), then gets its R-tree index; its ``LayerInfo`` is the holding release's. A carried
raster layer's COG is hard linked under the new release's name (copied across file systems).
Measured in docs/sharing-incremental.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb

from cim.errors import StoreError
from cim.store.base import FID, GEOM, LayerData, LayerInfo
from cim.store.duckdb import spatial
from cim.store.duckdb.dialect import SQL_TYPES
from cim.store.rasters import link
from cim.store.sql import quote_ident
from cim.store.sql.division_totals import TOTALS_TABLE


class Holders:
    """The release files carried layers come from, each attached once (read-only) to ``con``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, release_file) -> None:  # type: ignore[no-untyped-def]
        self.con = con
        self.release_file = release_file
        self.attached: dict[int, str] = {}

    def alias(self, number: int) -> str:
        if number not in self.attached:
            path = Path(self.release_file(number))
            if not path.is_file():
                raise StoreError(f"cannot carry a layer over from release {number}: the store no longer has it")
            alias = f"cim_carry_r{number}"
            self.con.execute(spatial.attach_sql(path, alias, read_only=True))
            self.attached[number] = alias
        return self.attached[number]

    def detach(self) -> None:
        for alias in self.attached.values():
            self.con.execute(f"DETACH {alias}")
        self.attached.clear()

    def info(self, number: int, name: str) -> LayerInfo:
        row = self.con.execute(f"SELECT info FROM {self.alias(number)}.cim_layer WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"cannot carry layer {name!r} over from release {number}: that release lacks it")
        return LayerInfo.from_json(row[0])


def carry_vector(holders: Holders, layer: LayerData) -> LayerInfo:
    """Copy ``layer``'s table (``carried_from`` = N) from release N's file, with its R-tree index."""
    assert layer.carried_from is not None
    info = holders.info(layer.carried_from, layer.spec.name)
    con, table = holders.con, quote_ident(layer.spec.name)
    columns = [f"{quote_ident(FID)} BIGINT PRIMARY KEY", f"{quote_ident(GEOM)} GEOMETRY"]
    columns += [f"{quote_ident(f.name)} {SQL_TYPES[f.type]}" for f in info.fields]
    con.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
    names = ", ".join(quote_ident(n) for n in [FID, GEOM, *(f.name for f in info.fields)])
    con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {holders.alias(layer.carried_from)}.{table}")
    con.execute(f"CREATE INDEX {quote_ident(layer.spec.name + '_rtree')} ON {table} USING RTREE ({quote_ident(GEOM)})")
    return info


def carry_raster(holders: Holders, layer: LayerData, source: Path, dest: Path) -> LayerInfo:
    """Link the COG of ``layer``'s holding release (``source``) as ``dest``."""
    assert layer.carried_from is not None
    info = holders.info(layer.carried_from, layer.spec.name)
    link(source, dest)
    return dataclasses.replace(info, raster_path=dest.name)


def copy_totals(holders: Holders, number: int, layer: str, metric_srid: int) -> bool:
    """Copy ``layer``'s prepared totals per division from release ``number`` when it has them for
    ``metric_srid`` (the new file's totals table exists); False: total it."""
    alias = holders.alias(number)
    con = holders.con
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?", (alias, TOTALS_TABLE)
    ).fetchone()
    if not found or not found[0]:
        return False
    source = f"{alias}.{quote_ident(TOTALS_TABLE)}"
    marker = con.execute(
        f"SELECT 1 FROM {source} WHERE layer = ? AND level IS NULL AND metric_srid = ?", (layer, metric_srid)
    ).fetchone()
    if marker is None:
        return False
    con.execute(f"INSERT INTO {quote_ident(TOTALS_TABLE)} SELECT * FROM {source} WHERE layer = ?", (layer,))
    return True
