"""The SQL spellings a backend supplies: :class:`Dialect` (feature reads), the one place where the
shared SQL of :mod:`cim.store.sql` meets a backend. A backend package (``cim.store.duckdb``,
``cim.store.postgis``) subclasses it; the shared modules take a dialect object and never ask which
backend they run on. Also :func:`quote_ident` and :class:`Statement`, used by every SQL module."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from cim.store.base import GEOM, LayerInfo

def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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

    def geojson(self, geom_sql: str) -> str:
        return f"ST_AsGeoJSON({geom_sql})"

    def wkb(self, geom_sql: str) -> str:
        """``geom_sql`` as WKB (for geodataframes: :func:`cim.store.sql.features.select_frame`)."""
        return f"ST_AsBinary({geom_sql})"

    def geometry_param(self, srid: int) -> str:
        """A geometry from one WKB parameter, in ``srid``."""
        return f"ST_GeomFromWKB({self.placeholder})"

    def edited(self, info: LayerInfo) -> bool:
        """Whether reads of the layer merge an edits overlay (False: they read the release table)."""
        return False

    def source(self, info: LayerInfo, where: str | None = None) -> str:
        """What layer reads select from: the release table, merged with edits where a backend has them.
        ``where`` (a condition on the layer's columns) is applied inside: for a merged layer in each
        branch of the merge, on the release table itself (see :func:`cim.store.sql.overlay.merged_source`)."""
        if where is None:
            return self.table(info.name)
        return f"(SELECT * FROM {self.table(info.name)} WHERE {where}) AS src"

    def count_all(self, info: LayerInfo) -> Statement | None:
        """How to count an unfiltered layer; None: the release's stored count is exact."""
        return None


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[Any, ...]
