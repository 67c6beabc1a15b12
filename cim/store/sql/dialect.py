"""The SQL spellings a backend supplies: :class:`Dialect` (feature reads), the one place where the
shared SQL of :mod:`cim.store.sql` meets a backend. A backend package (``cim.store.duckdb``,
``cim.store.postgis``) subclasses it; the shared modules take a dialect object and never ask which
backend they run on. Also :class:`Statement`, what every SQL module returns."""

from __future__ import annotations

import abc
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from cim.store.base import GEOM, LayerInfo
from cim.store.sql import quote_ident
from cim.store.sql import live
from cim.store.sql.overlay import count_sql, merged_source


class Dialect(abc.ABC):
    """The few SQL spellings where DuckDB spatial and PostGIS differ."""

    placeholder = "%s"

    @abc.abstractmethod
    def table(self, layer: str) -> str:
        """Qualified, quoted name of a layer's table in the release being read."""

    @abc.abstractmethod
    def transform(self, geom_sql: str, src_srid: int, dst_srid: int) -> str:
        """An expression reprojecting ``geom_sql``, keeping x = easting/longitude order."""

    @abc.abstractmethod
    def envelope(self, srid: int) -> str:
        """An envelope expression taking four placeholders (minx, miny, maxx, maxy)."""

    def bbox_filter(self, srid: int) -> str:
        return f"ST_Intersects({quote_ident(GEOM)}, {self.envelope(srid)})"

    def index_join(self, a: str, b: str) -> str | None:
        """A condition added to a join on ``ST_Intersects(a, <a function of b>)`` so that the
        back-end finds the pairs through ``b``'s spatial index: PostGIS ``a && b``; None: the join
        is planned best without one (DuckDB's spatial join wants the one ST_Intersects)."""
        return f"{a} && {b}"

    def geojson(self, geom_sql: str) -> str:
        return f"ST_AsGeoJSON({geom_sql})"

    def wkb(self, geom_sql: str) -> str:
        """``geom_sql`` as WKB (for geodataframes: :func:`cim.store.sql.features.select_frame`)."""
        return f"ST_AsBinary({geom_sql})"

    def geometry_param(self, srid: int) -> str:
        """A geometry from one WKB parameter, in ``srid``."""
        return f"ST_GeomFromWKB({self.placeholder})"

    def overlay(self, info: LayerInfo) -> tuple[str, Collection[str]] | None:
        """The edits overlay reads of the layer merge: its table (qualified, quoted) and the columns
        it has; None: the layer has none (reads take the release table)."""
        return None

    def edited(self, info: LayerInfo) -> bool:
        """Whether reads of the layer take something other than its release table: an edits overlay
        merged in, or the live layer's own table (False: they read the release table)."""
        return info.spec.live or self.overlay(info) is not None

    def live_table(self, info: LayerInfo) -> str | None:
        """A live layer's table (qualified, quoted); None before the layer's first write."""
        return None

    #: the back-end's SQL types of the field types and of a geometry (live layers with no table yet)
    sql_types: dict[str, str] = {}
    geometry_type = "GEOMETRY"

    def source(self, info: LayerInfo, where: str | None = None) -> str:
        """What layer reads select from: the release table, merged with its edits overlay if it has one.
        ``where`` (a condition on the layer's columns) is applied inside: for a merged layer in each
        branch of the merge, on the release table itself (see :func:`cim.store.sql.overlay.merged_source`)."""
        if info.spec.live:
            table = self.live_table(info)
            if table is None:
                return live.empty_source(info, self.sql_types, self.geometry_type)
            return live.source(info, table, where)
        overlay = self.overlay(info)
        if overlay is not None:
            return merged_source(info, self.table(info.name), overlay[0], overlay[1], where)
        if where is None:
            return self.table(info.name)
        return f"(SELECT * FROM {self.table(info.name)} WHERE {where}) AS src"

    def count_all(self, info: LayerInfo) -> Statement | None:
        """How to count an unfiltered layer; None: the release's stored count is exact."""
        if info.spec.live:
            return Statement(f"SELECT count(*) FROM {self.source(info)}", ())
        overlay = self.overlay(info)
        if overlay is None:
            return None
        return Statement(count_sql(self.table(info.name), overlay[0], self.placeholder), (info.count,))


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[Any, ...]
