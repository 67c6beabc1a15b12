"""Layers carried over into a new release file of the embedded store (incremental builds,
cim/build/carry.py).

A release file is immutable and a reader opens only its own, so a carried vector layer must be in
the new file. When the first layer of a release is carried, the new ``.partial`` file starts as a
byte copy of the holding release's file (:func:`start_from`: a file copy, far cheaper than copying
rows and building indexes again; docs/sharing-incremental.md has the figures): the layers carried
from that release stay as they are, with their indexes and ``LayerInfo``, the others are dropped
and written anew. A layer carried from another release is copied inside DuckDB: that file is
attached read-only and the table goes over with one ``INSERT INTO ... SELECT *`` (no row passes
through Python), then gets its R-tree index. A carried raster layer's COG is hard linked under the
new release's name (copied across file systems).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
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


def carry_raster(info: LayerInfo, releases_dir: Path, dest: Path) -> LayerInfo:
    """Link the COG of a raster layer's holding release (its ``info``) as ``dest``."""
    link(releases_dir / (info.raster_path or ""), dest)
    return dataclasses.replace(info, raster_path=dest.name)


#: the copied file's totals per division while the release is written (dropped before it is closed)
INHERITED_TOTALS = "cim_carried_totals"


def start_from(source: Path, path: Path) -> None:
    """The new release file ``path`` as a copy of release file ``source`` (immutable, maybe open
    read-only by servers: only read here)."""
    path.unlink(missing_ok=True)
    # a killed build's write-ahead log beside it would be replayed onto the copy (it matches it)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    shutil.copyfile(source, path)
    os.chmod(path, 0o644)


def inherit(con: duckdb.DuckDBPyConnection) -> dict[str, LayerInfo]:
    """The layers of the copied release file opened on ``con`` by name; its metadata tables dropped
    and its totals kept aside as :data:`INHERITED_TOTALS`."""
    infos = {name: LayerInfo.from_json(info) for name, info in con.execute("SELECT name, info FROM cim_layer").fetchall()}
    con.execute("DROP TABLE cim_layer")
    con.execute("DROP TABLE cim_release")
    if _has_table(con, quote_ident(TOTALS_TABLE)):
        con.execute(f"ALTER TABLE {quote_ident(TOTALS_TABLE)} RENAME TO {quote_ident(INHERITED_TOTALS)}")
    return infos


def drop_inherited(con: duckdb.DuckDBPyConnection, left: dict[str, LayerInfo]) -> None:
    """Drop what the copied file holds and the new release does not: the vector tables in ``left``
    and the totals kept aside."""
    for name, info in left.items():
        if info.spec.kind == "vector":
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
    con.execute(f"DROP TABLE IF EXISTS {quote_ident(INHERITED_TOTALS)}")


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` (qualified) exists: one empty read (asking the catalog functions took
    longer than copying the file)."""
    try:
        con.execute(f"SELECT 1 FROM {table} LIMIT 0")
    except duckdb.CatalogException:
        return False
    return True


def copy_totals(holders: Holders, number: int | None, layer: str, metric_srid: int) -> bool:
    """Copy ``layer``'s prepared totals per division from release ``number``'s file (None: from the
    copied file's, :data:`INHERITED_TOTALS`) when made for ``metric_srid`` (the new file's totals
    table exists); False: total it."""
    con = holders.con
    if number is None:
        source = quote_ident(INHERITED_TOTALS)
    else:
        source = f"{holders.alias(number)}.{quote_ident(TOTALS_TABLE)}"
    if not _has_table(con, source):
        return False
    marker = con.execute(
        f"SELECT 1 FROM {source} WHERE layer = ? AND level IS NULL AND metric_srid = ?", (layer, metric_srid)
    ).fetchone()
    if marker is None:
        return False
    con.execute(f"INSERT INTO {quote_ident(TOTALS_TABLE)} SELECT * FROM {source} WHERE layer = ?", (layer,))
    return True
