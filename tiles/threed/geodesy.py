"""Storage CRS → longitude/latitude → Earth-centred, Earth-fixed coordinates (docs/3d-mesh.md).

3D Tiles place content in WGS 84 ECEF (EPSG:4978), metres. A footprint stored in any CRS is turned
into longitude/latitude on its own datum (the CRS's geodetic CRS) and then into ECEF on WGS 84:

- CGCS2000 (EPSG:4490 and its Gauss-Krüger zones EPSG:4491–4554) is *taken as* WGS 84: both
  ellipsoids share the semi-major axis and differ in flattening by 1.6e-11 (0.1 mm in the semi-minor
  axis) and the frames agree to a few centimetres at epoch 2000 — far below what a LOD1 block shows;
  no Helmert step is applied (pyproj would apply none either: it has no published one);
- other geodetic datums go through pyproj to EPSG:4326 (its best available operation);
- heights are ellipsoidal (metres above the ellipsoid): the DEM's values are taken as such, with no
  geoid model (tiles/terrain/sample.py says the same), so blocks stand on the terrain tiles.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

#: geodetic CRSs whose lon/lat are used as WGS 84 lon/lat unchanged
_AS_WGS84 = {4326, 4490}
_ECEF = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
_GEODETIC = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)


@lru_cache(maxsize=64)
def lonlat_transformer(srid: int) -> Transformer:
    """A transformer (``always_xy``) from storage CRS ``srid`` to longitude/latitude degrees, WGS 84.

    A projected CRS on CGCS2000 (the Gauss-Krüger zones) or WGS 84 (Web Mercator, UTM) is inverted
    onto its own geodetic CRS — no datum step; CGCS2000 degrees are then used as WGS 84 degrees."""
    crs = CRS.from_epsg(int(srid))
    geodetic = crs.geodetic_crs
    code = geodetic.to_epsg() if geodetic is not None else None
    if code in _AS_WGS84:
        target = CRS.from_epsg(code)
    else:
        target = CRS.from_epsg(4326)
    return Transformer.from_crs(crs, target, always_xy=True)


def ecef(lon: npt.ArrayLike, lat: npt.ArrayLike, h: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(n, 3) float64 WGS 84 geocentric coordinates (EPSG:4978) of longitude/latitude degrees and
    ellipsoidal heights (metres)."""
    lon, lat, h = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), np.asarray(h, dtype=np.float64)
    )
    x, y, z = _ECEF.transform(lon.ravel(), lat.ravel(), h.ravel())
    return np.column_stack([np.asarray(x), np.asarray(y), np.asarray(z)])


def geodetic(
    xyz: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The inverse of :func:`ecef`: longitude, latitude (degrees) and ellipsoidal height (metres)."""
    points = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    lon, lat, h = _GEODETIC.transform(points[:, 0], points[:, 1], points[:, 2])
    return np.asarray(lon), np.asarray(lat), np.asarray(h)


def region_origin(region: tuple[float, float, float, float, float, float]) -> npt.NDArray[np.float64]:
    """(3,) ECEF of a 3D Tiles region's centre (west, south, east, north radians; minimum, maximum
    height) at its minimum height: the origin a leaf's positions are relative to."""
    west, south, east, north, low, _high = (float(v) for v in region)
    if east < west:  # across the antimeridian
        east += 2 * math.pi
    lon = math.degrees((west + east) / 2)
    lon = (lon + 180.0) % 360.0 - 180.0
    lat = math.degrees((south + north) / 2)
    return ecef([lon], [lat], [low])[0]


def transform_matrix(origin: npt.ArrayLike) -> list[float]:
    """The tile ``transform`` of tileset.json: 16 numbers, column-major, a translation by ``origin``."""
    x, y, z = (float(v) for v in np.asarray(origin, dtype=np.float64).ravel()[:3])
    return [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, x, y, z, 1.0]
