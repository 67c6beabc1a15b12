"""SQL spellings of the PostGIS store: a release's tables in schema ``cim_rNNNN``, editable layers
read merged with their overlay in ``cim_live`` (cim/store/sql/overlay.py), numeric SRIDs, the
tile spellings (:class:`PostgisTileDialect`) and PostgreSQL's SQL types."""

from __future__ import annotations

from cim.store.base import LayerInfo
from cim.store.sql import quote_ident
from cim.store.sql.dialect import Dialect
from cim.store.sql.tiles import TileDialect, num
from cim.store.tilequery import Bounds

#: the SQL type of each field type (overlay tables; release tables are made by COPY, cim/store/postgis/copy.py)
SQL_TYPES = {
    "string": "text", "integer": "bigint", "number": "double precision", "boolean": "boolean",
    "date": "date", "datetime": "timestamptz",
}  # fmt: skip
#: the schema of the edits overlay tables (cim/store/postgis/live.py)
LIVE_SCHEMA = "cim_live"


#: the schema of the live layers' tables (cim/store/postgis/live_layers.py)
LIVE_LAYERS_SCHEMA = "cim_live_layers"
#: the srid of live layers' geometry (cim/store/sql/live.py: LIVE_SRID)
LIVE_LAYERS_SRID = 4326


def live_table(layer: str) -> str:
    """The overlay table of ``layer``."""
    return f"{quote_ident(LIVE_SCHEMA)}.{quote_ident(layer)}"


def live_layer_table(layer: str) -> str:
    """The table of live layer ``layer``."""
    return f"{LIVE_LAYERS_SCHEMA}.{quote_ident(layer)}"


class PostgisDialect(Dialect):
    """The dialect of one release schema (and the layers edited over it)."""

    sql_types = SQL_TYPES
    geometry_type = f"geometry(Geometry, {LIVE_LAYERS_SRID})"

    def __init__(self, schema_name: str, live_layers: frozenset[str] = frozenset()) -> None:
        self.schema_name = schema_name
        #: editable layers: read merged with their overlay table in schema cim_live
        self.live_layers = live_layers

    def overlay(self, info: LayerInfo) -> tuple[str, list[str]] | None:
        if info.name not in self.live_layers:
            return None
        return live_table(info.name), [f.name for f in info.fields]

    def table(self, layer: str) -> str:
        return f"{quote_ident(self.schema_name)}.{quote_ident(layer)}"

    def live_table(self, info: LayerInfo) -> str | None:
        # made by migration 7 and at every open for the catalog's live layers
        return live_layer_table(info.name)

    def transform(self, geom_sql: str, src_srid: int, dst_srid: int) -> str:
        # a numeric SRID: PostGIS caches the projection; a text CRS costs a lookup per call
        return f"ST_Transform({geom_sql}, {int(dst_srid)})"

    def envelope(self, srid: int) -> str:
        return f"ST_MakeEnvelope(%s, %s, %s, %s, {int(srid)})"

    def geojson(self, geom_sql: str) -> str:
        # options 0: no legacy GeoJSON "crs" member (RFC 7946; the CRS goes in the Content-Crs header)
        return f"ST_AsGeoJSON({geom_sql}, 9, 0)"

    def geometry_param(self, srid: int) -> str:
        return f"ST_GeomFromWKB(%s, {int(srid)})"


class PostgisTileDialect(TileDialect):
    #: simplify in the tile CRS (one tolerance, ½ px, in every direction; the prepared tile geometry
    #: of cim/store/sql/tile_geometry.py is simplified so too), not in a geographic storage CRS, where
    #: the same tolerance in degrees is a quarter of a pixel east-west at 60°N
    simplify_in_tile_crs = True

    def envelope(self, bounds: Bounds, srid: int) -> str:
        return f"ST_MakeEnvelope({', '.join(num(v) for v in bounds)}, {int(srid)})"

    def box(self, bounds: Bounds, srid: int) -> str:
        return f"{self.envelope(bounds, srid)}::box2d"

    def simplify(self, geom: str, tolerance: float) -> str:
        # Douglas-Peucker (liblwgeom, keeping collapsed parts): ST_AsMVTGeom makes the clipped,
        # quantised result valid anyway, so the topology-preserving variant (GEOS) only added cost —
        # 58 ms against 25–31 ms for a z14 tile of ~600 buildings
        return f"ST_Simplify({geom}, {num(tolerance)}, true)"
