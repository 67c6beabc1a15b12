"""A store with a large synthetic buildings layer, and legal requests over it that take long:
what the time budget and the graceful shutdown are tested with (no sleep in product code)."""

from __future__ import annotations

import math
from urllib.parse import urlencode

import geopandas as gpd
import numpy as np
import shapely

from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG

#: the grid's south-west corner (Tianjin) and its cell size in degrees
ORIGIN = (117.0, 39.0)
CELL = 0.0004


def big_buildings(count: int) -> gpd.GeoDataFrame:
    """``count`` small square buildings on a grid."""
    side = math.ceil(math.sqrt(count))
    i = np.arange(count)
    x = ORIGIN[0] + (i % side) * CELL
    y = ORIGIN[1] + (i // side) * CELL
    boxes = shapely.box(x, y, x + CELL * 0.6, y + CELL * 0.6)
    return gpd.GeoDataFrame(
        {"name": [f"b{n}" for n in i], "use": np.where(i % 3 == 0, "residential", "office"),
         "height_m": (i % 90).astype(float) + 3.0, "floors": (i % 30) + 1, "structure": "concrete",
         "year_built": 1990 + i % 30, "address": None, "source": "synthetic",
         "source_id": [f"s{n}" for n in i]},
        geometry=[shapely.MultiPolygon([b]) for b in boxes],
        crs=4326,
    )  # fmt: skip


def publish_big(url: str, count: int) -> None:
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(CATALOG["buildings"], big_buildings(count))], srid=4326))


def star(vertices: int = 360) -> str:
    """A star-shaped polygon (WKT) over the whole grid with ``vertices`` points: every feature is
    tested against all its edges."""
    cx, cy, r = ORIGIN[0] + 0.1, ORIGIN[1] + 0.1, 0.3
    points = []
    for k in range(vertices):
        radius = r if k % 2 == 0 else r * 0.55
        angle = 2 * math.pi * k / vertices
        points.append(f"{cx + radius * math.cos(angle):.6f} {cy + radius * math.sin(angle):.6f}")
    points.append(points[0])
    return f"POLYGON(({', '.join(points)}))"


def heavy_items_path(vertices: int = 360) -> str:
    """An items page whose count tests every building against a many-sided polygon with a predicate
    no index helps (S_DISJOINT), sorted by a property: legal, and slow on a large layer."""
    query = {"filter": f"S_DISJOINT(geometry, {star(vertices)}) AND floors > 2", "sortby": "-height_m", "limit": "5"}
    return "/collections/buildings/items?" + urlencode(query)
