"""Which CRS a source is in, and whether its coordinates can be in it.

A source's CRS is the one declared in the build config, else the one the file carries; with neither,
the build stops. ``GCJ-02`` / ``BD-09`` declare lon/lat in a Chinese web-map offset system (see
:mod:`cim.build.china_offsets`). Coordinates are checked against the area of use of the source CRS and of
the storage CRS (pyproj's ``area_of_use``, widened by :data:`cim.crs.AREA_TOLERANCE_DEG`): a shapefile in a
Gauss-Krüger zone declared as another zone, lat/lon written as lon/lat, or a projected file read as
degrees all land far outside and stop the build, naming the first feature concerned.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError

from cim.build import china_offsets
from cim.crs import area_of_use, crs_label, inside_area, parse_crs
from cim.errors import BuildError, CIMError

#: how far (degrees) coordinates may stray beyond a CRS's area of use


@dataclass(frozen=True)
class SourceCRS:
    """How to read a source's coordinates."""

    #: CRS of the coordinates once rectified (EPSG:4326 for the offset systems)
    crs: CRS
    #: GCJ-02 / BD-09 when the coordinates must first be rectified
    offset: str | None
    #: as the user would write it: EPSG:4548, GCJ-02 ...
    label: str
    #: where it came from: "declared" or "file"
    origin: str


def resolve_crs(
    declared: str | None, embedded: CRS | None, file: str, layer: str, unreadable: str | None = None
) -> tuple[SourceCRS, str | None]:
    """The source's CRS and, when a declaration overrides a different CRS in the file, a note saying so.

    ``unreadable`` describes a CRS definition in the file that could not be parsed (an unknown CRS).
    """
    if declared is None:
        if unreadable is not None:
            raise BuildError(
                f"unknown CRS in the file ({unreadable}): declare the right one with crs: EPSG:xxxx",
                file=file,
                layer=layer,
            )
        if embedded is None:
            raise BuildError(
                "the file has no CRS and the config declares none: add crs: EPSG:xxxx", file=file, layer=layer
            )
        return SourceCRS(embedded, None, crs_label(embedded), "file"), None
    system = china_offsets.offset_system(declared)
    if system is not None:
        result = SourceCRS(CRS.from_epsg(4326), system, system, "declared")
    else:
        try:
            crs = parse_crs(declared)
        except CIMError:
            raise BuildError(
                f"unknown CRS {declared!r}: give an EPSG code (EPSG:4548) or GCJ-02 / BD-09", file=file, layer=layer
            ) from None
        result = SourceCRS(crs, None, crs_label(crs), "declared")
    note = None
    if embedded is not None and (result.offset is not None or not embedded.equals(result.crs)):
        note = f"declared CRS {result.label} overrides the file's {crs_label(embedded)}"
    return result, note


def _to_geodetic(source: SourceCRS) -> Transformer | None:
    """x/y to lon/lat of the source's datum; None when its coordinates are lon/lat already."""
    if source.offset is not None or source.crs.is_geographic:
        return None
    return Transformer.from_crs(source.crs, source.crs.geodetic_crs, always_xy=True)


def lonlat_bounds(geoms: np.ndarray, source: SourceCRS, bounds: np.ndarray | None = None) -> np.ndarray:
    """Per geometry, (west, south, east, north) in degrees of the source's datum; NaN where missing.
    ``bounds``: the geometries' ``shapely.bounds`` when already computed."""
    bounds = shapely.bounds(np.asarray(geoms, dtype=object)) if bounds is None else bounds
    to_geodetic = _to_geodetic(source)
    if to_geodetic is None:
        return bounds
    xs = bounds[:, [0, 2, 0, 2]]
    ys = bounds[:, [1, 1, 3, 3]]
    with np.errstate(invalid="ignore"):
        lon, lat = to_geodetic.transform(xs, ys, errcheck=False)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    out = np.column_stack([lon.min(axis=1), lat.min(axis=1), lon.max(axis=1), lat.max(axis=1)])
    out[~np.isfinite(out).all(axis=1)] = np.inf  # outside the projection's domain
    out[np.isnan(bounds).any(axis=1)] = np.nan
    return out


def _extent_lonlat(bounds: np.ndarray, source: SourceCRS) -> np.ndarray | None:
    """The lon/lat extent (one row of :func:`lonlat_bounds`) of the rectangle around all ``bounds``,
    its edges densified; None if unknown. A projection maps the rectangle's interior inside the
    extent of its image's boundary, so every feature's lon/lat box lies within it."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no geometry at all
        box = (np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1]), np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3]))
    if not np.isfinite(box).all():
        return None
    to_geodetic = _to_geodetic(source)
    if to_geodetic is not None:
        try:
            box = to_geodetic.transform_bounds(*box, densify_pts=21, errcheck=True)
        except ProjError:
            return None
    extent = np.asarray([box], dtype=float)
    return extent if np.isfinite(extent).all() else None


def outside_areas(geoms: np.ndarray, source: SourceCRS, storage: CRS) -> list[np.ndarray]:
    """Per area of use (the source CRS's, then the storage CRS's), the mask of features outside it.

    Computed per feature, so a partitioned build computes it per partition and concatenates the masks.
    When the extent of all features lies inside every area, no feature's corners are transformed
    (1,000,000 footprints: 0.8 s saved).
    """
    areas = areas_of_use(source, storage)
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:  # an empty source (allow_empty)
        return [np.zeros(0, dtype=bool) for _ in areas]
    bounds = shapely.bounds(geoms)
    extent = _extent_lonlat(bounds, source)
    if extent is not None and all(inside_area(extent, area).all() for area, _ in areas):
        return [np.zeros(len(geoms), dtype=bool) for _ in areas]
    lonlat = lonlat_bounds(geoms, source, bounds)
    present = ~np.isnan(lonlat).any(axis=1)
    return [present & ~inside_area(lonlat, area) for area, _ in areas]


def areas_of_use(source: SourceCRS, storage: CRS) -> list[tuple[tuple[float, float, float, float], str]]:
    """The areas of use (lon/lat west, south, east, north; a name for messages) of the source CRS (for
    GCJ-02/BD-09: China's) and the storage CRS, those that are known."""
    source_area = (china_offsets.AREA_OF_USE, f"{source.label} (China)") if source.offset else area_of_use(source.crs)
    return [area for area in (source_area, area_of_use(storage)) if area is not None]


def raise_outside(
    masks: list[np.ndarray], geoms: np.ndarray, ids: np.ndarray, source: SourceCRS, storage: CRS, file: str, layer: str
) -> None:
    """Stop the build naming the first feature outside the first area of use it leaves (see :func:`outside_areas`)."""
    for ((west, south, east, north), name), mask in zip(areas_of_use(source, storage), masks):
        outside = np.flatnonzero(mask)
        if len(outside):
            first = outside[0]
            minx, miny, _, _ = shapely.bounds(geoms[first])
            raise BuildError(
                f"coordinates ({minx:.6g}, {miny:.6g}) lie outside the area of use of {name}, "
                f"{west}..{east}°E, {south}..{north}°N ({len(outside)} features); is the CRS right?",
                file=file,
                layer=layer,
                feature=ids[first],
            )


def check_area(geoms: np.ndarray, ids: np.ndarray, source: SourceCRS, storage: CRS, file: str, layer: str) -> None:
    """Stop the build when a feature lies outside the area of use of the source or the storage CRS."""
    raise_outside(outside_areas(geoms, source, storage), geoms, ids, source, storage, file, layer)
