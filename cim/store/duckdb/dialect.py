"""SQL spellings of the embedded store: DuckDB spatial's ``ST_Transform`` with CRS names, ``?``
placeholders, a release's tables in the release file, editable layers read merged with the edits
overlay version attached for the read (:class:`LiveView`), and DuckDB's SQL types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cim.store.base import LayerInfo
from cim.store.sql import quote_ident
from cim.store.sql.dialect import Dialect
from cim.store.sql.tiles import TileDialect, num
from cim.store.tilequery import Bounds

#: the SQL type of each field type (release tables and overlay tables)
SQL_TYPES = {
    "string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN",
    "date": "DATE", "datetime": "TIMESTAMPTZ",
}  # fmt: skip
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class LiveView:
    """An overlay version attached to a reader connection: its alias and each layer table's columns."""

    path: Path
    alias: str
    columns: dict[str, frozenset[str]]

    def table(self, layer: str) -> str:
        return f"{quote_ident(self.alias)}.{quote_ident(layer)}"


class DuckDBDialect(Dialect):
    placeholder = "?"

    sql_types = SQL_TYPES

    def __init__(self, live: LiveView | None = None, live_layers: LiveView | None = None) -> None:
        #: the edits overlay attached for this read, if there is one
        self.live = live
        #: the live layers' version attached for this read, if there is one (cim/store/duckdb/live_layers.py)
        self.live_layers = live_layers

    def live_table(self, info: LayerInfo) -> str | None:
        view = self.live_layers
        return view.table(info.name) if view is not None and info.name in view.columns else None

    def table(self, layer: str) -> str:
        return quote_ident(layer)

    def overlay(self, info: LayerInfo) -> tuple[str, frozenset[str]] | None:
        live = self.live
        if live is None or info.name not in live.columns:
            return None
        return live.table(info.name), live.columns[info.name]

    def transform(self, geom_sql: str, src_srid: int, dst_srid: int) -> str:
        return f"ST_Transform({geom_sql}, 'EPSG:{src_srid}', 'EPSG:{dst_srid}', always_xy := true)"

    def envelope(self, srid: int) -> str:
        return "ST_MakeEnvelope(?, ?, ?, ?)"

    def wkb(self, geom_sql: str) -> str:
        return f"ST_AsWKB({geom_sql})"

    def index_join(self, a: str, b: str) -> str | None:
        return None


class AttachedReleaseDialect(DuckDBDialect):
    """A release file attached to a connection under ``alias`` (comparing releases: cim/store/sql/diff.py),
    with ``live``, the edits overlay version attached beside it (the current release as served)."""

    def __init__(self, alias: str, live: LiveView | None = None) -> None:
        super().__init__(live)
        self.alias = alias

    def table(self, layer: str) -> str:
        return f"{quote_ident(self.alias)}.{quote_ident(layer)}"


class DuckDBTileDialect(TileDialect):
    text_type = "VARCHAR"

    def feature_id(self, fid: str) -> str:
        # DuckDB spatial's ST_AsMVT fails on ids outside int32 ("feature id out of range"), and API
        # created features have fids from 10^15 (FIRST_CREATED_FID): those go without an id
        return f"CASE WHEN {fid} BETWEEN 0 AND {INT32_MAX} THEN {fid} END"

    def envelope(self, bounds: Bounds, srid: int) -> str:
        return f"ST_MakeEnvelope({', '.join(num(v) for v in bounds)})"

    def box(self, bounds: Bounds, srid: int) -> str:
        return f"ST_Extent({self.envelope(bounds, srid)})"
