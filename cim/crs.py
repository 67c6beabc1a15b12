"""Coordinate reference systems: parsing what users write, OGC URIs, CGCS2000 Gauss-Krüger zones.

Geometries are always stored and handled with x = easting/longitude (``always_xy``); authority
axis order (lat/lon for EPSG:4326 and EPSG:4490, northing/easting for the Gauss-Krüger zones) is
applied only where a standard asks for it on output (OGC API - Features Part 2).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from cim.errors import ConfigError

#: a box: (minx, miny, maxx, maxy), or (west, south, east, north) in degrees
Bounds = tuple[float, float, float, float]

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
CGCS2000 = 4490

_EPSG_URI_RE = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)$")
_OGC_URI_RE = re.compile(r"^https?://www\.opengis\.net/def/crs/OGC/1\.3/(CRS84h?)$")


@lru_cache(maxsize=256)
def parse_crs(value: str | int) -> CRS:
    """A CRS from an EPSG code, ``EPSG:xxxx``, ``OGC:CRS84`` or an OGC CRS URI; ConfigError otherwise."""
    text = str(value).strip()
    if match := _EPSG_URI_RE.match(text):
        text = f"EPSG:{match.group(1)}"
    elif match := _OGC_URI_RE.match(text):
        text = f"OGC:{match.group(1)}"
    elif text.isdigit():
        text = f"EPSG:{text}"
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise ConfigError(f"unknown CRS {value!r}: give an EPSG code (EPSG:4490) or an OGC CRS URI") from None


def srid_of(crs: CRS) -> int:
    """The EPSG code geometries in ``crs`` are stored under (CRS84 shares EPSG:4326's coordinates)."""
    if crs.equals(CRS.from_user_input("OGC:CRS84")):
        return 4326
    code = crs.to_epsg()
    if code is None:
        raise ConfigError(f"CRS {crs.name!r} has no EPSG code; stores need one")
    return code


def crs_uri(crs: CRS | int | str) -> str:
    """The OGC URI of a CRS (CRS84 for OGC:CRS84, the EPSG URI otherwise)."""
    crs = crs if isinstance(crs, CRS) else parse_crs(crs)
    if crs.equals(CRS.from_user_input("OGC:CRS84")):
        return CRS84_URI
    return EPSG_URI.format(code=srid_of(crs))


# Caches are keyed by the CRSs' definitions as given (``CRS.srs``), not by the CRS objects: hashing
# or comparing a pyproj CRS exports its WKT (~0.5 ms), which made 14 such calls per vector tile.
@lru_cache(maxsize=256)
def _transformer(src_srs: str, dst_srs: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src_srs), CRS.from_user_input(dst_srs), always_xy=True)


@lru_cache(maxsize=256)
def _same(src_srs: str, dst_srs: str) -> bool:
    return src_srs == dst_srs or CRS.from_user_input(src_srs).equals(CRS.from_user_input(dst_srs))


def transformer(src: CRS, dst: CRS) -> Transformer:
    """A cached x/y (``always_xy``) transformer from ``src`` to ``dst``."""
    return _transformer(src.srs, dst.srs)


def transform_bbox(bbox: tuple[float, ...], src: CRS, dst: CRS) -> Bounds:
    """``bbox`` (x/y order) from ``src`` to ``dst``, densified so curved edges stay inside."""
    if len(bbox) != 4:
        raise ConfigError(f"a bbox has four numbers (minx, miny, maxx, maxy); got {len(bbox)}")
    if _same(src.srs, dst.srs):
        return tuple(float(v) for v in bbox)  # type: ignore[return-value]
    return tuple(_transformer(src.srs, dst.srs).transform_bounds(*bbox, densify_pts=21))  # type: ignore[return-value]


def gauss_kruger_zone(longitude: float, with_zone_prefix: bool = False) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone containing ``longitude``.

    Zone n has central meridian 3n°E (zones 25–45, 75°E–135°E). EPSG:4513–4533 carry the zone number
    in the false easting; EPSG:4534–4554 ("CM xxxE") do not. Tianjin (117°E): 4527 / 4548.
    """
    zone = int(round(longitude / 3.0))
    if not 25 <= zone <= 45:
        raise ConfigError(f"longitude {longitude} is outside China's Gauss-Krüger zones 25-45 (75°E-135°E)")
    return (4513 if with_zone_prefix else 4534) + zone - 25


def axis_order_is_yx(crs: CRS) -> bool:
    """True where the authority defines the first axis as northing/latitude (EPSG:4326, 4490, GK zones)."""
    axes = crs.axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


#: how far (degrees) a coordinate may lie outside a CRS's area of use and still count as inside it
AREA_TOLERANCE_DEG = 0.1


def crs_label(crs: CRS) -> str:
    """A CRS as a message names it: ``EPSG:4548``, else its name."""
    code = crs.to_epsg()
    return f"EPSG:{code}" if code else crs.name


def area_of_use(crs: CRS) -> tuple[Bounds, str] | None:
    """The CRS's area of use (lon/lat west, south, east, north) and a name for messages; None if unknown."""
    area = crs.area_of_use
    return (area.bounds, f"{crs_label(crs)} ({area.name})") if area is not None else None


def inside_area(lonlat: np.ndarray, area: Bounds) -> np.ndarray:
    """Per row of ``lonlat`` (as :func:`lonlat_bounds` gives), whether it lies within ``area``
    widened by :data:`AREA_TOLERANCE_DEG`; False for missing rows."""
    (west, south, east, north), tol = area, AREA_TOLERANCE_DEG
    with np.errstate(invalid="ignore"):
        return (
            (lonlat[:, 0] >= west - tol)
            & (lonlat[:, 2] <= east + tol)
            & (lonlat[:, 1] >= south - tol)
            & (lonlat[:, 3] <= north + tol)
        )
