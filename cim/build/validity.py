"""Geometry validity: repair invalid geometries the way a layer's policy says.

``make_valid`` (GEOS "structure" method) can turn a bow-tie polygon into a GeometryCollection of
polygons and stray lines; a polygon layer keeps only the polygonal parts, a line layer the lines.
"""

from __future__ import annotations

import numpy as np
import shapely

from cim.layerspec import InvalidGeometryPolicy

#: topological dimension of each layer geometry type
DIMENSION = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1, "Polygon": 2, "MultiPolygon": 2}


_MULTI_OF_DIMENSION = {0: shapely.multipoints, 1: shapely.multilinestrings, 2: shapely.multipolygons}


def keep_dimension(geoms: np.ndarray, dimension: int) -> np.ndarray:
    """Each (valid) geometry reduced to a Multi* of its non-empty parts of ``dimension``; None if none.

    The parts of a valid geometry do not overlap, so collecting them keeps the result valid.
    """
    parts, owner = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_dimensions(parts) == dimension) & ~shapely.is_empty(parts)
    parts, owner = parts[keep], owner[keep]
    out = np.full(len(geoms), None, dtype=object)
    if len(parts):
        present, dense = np.unique(owner, return_inverse=True)  # shapely wants indices without gaps
        out[present] = _MULTI_OF_DIMENSION[dimension](parts, indices=dense)
    return out


def apply_validity_policy(
    geoms: np.ndarray, geometry_type: str, policy: InvalidGeometryPolicy
) -> tuple[np.ndarray, np.ndarray]:
    """(geometries with invalid ones repaired or set to None, mask of the invalid inputs)."""
    geoms = np.asarray(geoms, dtype=object)
    invalid = np.zeros(len(geoms), dtype=bool)
    present = np.flatnonzero(~shapely.is_missing(geoms))
    invalid[present] = ~shapely.is_valid(geoms[present])
    if not invalid.any():
        return geoms, invalid
    out = geoms.copy()
    if policy == "reject":
        out[invalid] = None
        return out, invalid
    repaired = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
    out[invalid] = keep_dimension(repaired, DIMENSION[geometry_type])
    return out, invalid
