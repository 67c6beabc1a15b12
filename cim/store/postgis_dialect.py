"""SQL spellings of the PostGIS store: a release's tables in schema ``cim_rNNNN``, editable layers
read merged with their overlay in ``cim_live`` (cim/store/overlay.py), numeric SRIDs."""

from __future__ import annotations

from cim.store.base import LayerInfo
from cim.store.overlay import count_sql, merged_source
from cim.store.postgis_live import live_table
from cim.store.sql import Dialect, Statement, quote_ident


class PostgisDialect(Dialect):
    """The dialect of one release schema (and the layers edited over it)."""

    def __init__(self, schema_name: str, live_layers: frozenset[str] = frozenset()) -> None:
        self.schema_name = schema_name
        #: editable layers: read merged with their overlay table in schema cim_live
        self.live_layers = live_layers

    def edited(self, info: LayerInfo) -> bool:
        return info.name in self.live_layers

    def source(self, info: LayerInfo, where: str | None = None) -> str:
        if not self.edited(info):
            return super().source(info, where)
        return merged_source(info, self.table(info.name), live_table(info.name), [f.name for f in info.fields], where)

    def count_all(self, info: LayerInfo) -> Statement | None:
        if not self.edited(info):
            return None
        return Statement(count_sql(self.table(info.name), live_table(info.name), "%s"), (info.count,))

    def table(self, layer: str) -> str:
        return f"{quote_ident(self.schema_name)}.{quote_ident(layer)}"

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
