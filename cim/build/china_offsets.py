"""Chinese web-map offset systems: GCJ-02 ("Mars coordinates") and BD-09 (Baidu).

Neither has an EPSG code and PROJ cannot undo them: they are deliberate, non-linear obfuscations of
WGS84 longitude/latitude, hundreds of metres (GCJ-02) to over a kilometre (BD-09) off. Sources in them
are declared in the build config (``crs: GCJ-02`` / ``crs: BD-09``) and rectified here to WGS84 with
the maintained ``prcoords`` package, using its iterative ("bored") inverse, accurate to well under a
centimetre; the result is then reprojected like any EPSG:4326 source.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import prcoords
import shapely

#: canonical names of the offset systems
GCJ02 = "GCJ-02"
BD09 = "BD-09"

#: area where the offsets apply (prcoords' sanity box, west, south, east, north in degrees);
#: outside it the web maps publish plain WGS84
AREA_OF_USE: tuple[float, float, float, float] = (72.004, 0.8293, 137.8347, 55.8271)

_INVERSES: dict[str, Callable[..., prcoords.Coords]] = {
    GCJ02: prcoords.gcj_wgs_bored,
    BD09: prcoords.bd_wgs_bored,
}
_ALIASES: dict[str, str] = {
    "GCJ02": GCJ02,
    "GCJ-02": GCJ02,
    "GCJ_02": GCJ02,
    "BD09": BD09,
    "BD-09": BD09,
    "BD_09": BD09,
}


def offset_system(name: str) -> str | None:
    """The canonical name (``GCJ-02`` / ``BD-09``) when ``name`` denotes an offset system, else None."""
    return _ALIASES.get(name.strip().upper())


def _rectify_coords(coords: np.ndarray, inverse: Callable[..., prcoords.Coords]) -> np.ndarray:
    """(n, 2) lon/lat in an offset system to WGS84 lon/lat."""
    out = np.empty_like(coords)
    for i, (lon, lat) in enumerate(coords):
        wgs = inverse((lat, lon), False)
        out[i] = (wgs.lon, wgs.lat)
    return out


def rectify(geoms: np.ndarray, system: str) -> np.ndarray:
    """Geometries with lon/lat in ``system`` (GCJ-02 or BD-09) turned into WGS84 lon/lat (EPSG:4326)."""
    inverse = _INVERSES[system]
    return shapely.transform(np.asarray(geoms, dtype=object), lambda coords: _rectify_coords(coords, inverse))
