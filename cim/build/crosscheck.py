"""Cross-checks between the sources of one layer: the first source is authoritative, the others verify it.

Each feature of a secondary source is matched to the primary source: polygons by overlap (the
primary feature with the highest intersection over union, at least ``min_iou``), points by distance
(the nearest within ``max_distance_m``), lines by the share of their length within ``max_distance_m``
of primary lines (at least half). A secondary feature without a match is flagged as missing from the
primary; matched features whose numeric fields (``height_m`` by default) differ by more than their
tolerance are flagged as conflicts. Secondary sources never add or change features. Distances and
areas are measured in the storage CRS when it is projected, else in the UTM zone of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cim.build.config import DEFAULT_TOLERANCES, CrossCheckConfig
from cim.build.validity import DIMENSION
from cim.build.qa import QAReport
from cim.build.reproject import to_crs
from cim.layerspec import LayerSpec

#: a line matches when at least this share of its length lies near primary lines
LINE_SHARE = 0.5


@dataclass(frozen=True)
class Side:
    """One source's kept features (conformed, with ``source_id``) and its name in the QA report."""

    label: str
    frame: gpd.GeoDataFrame


@dataclass(frozen=True)
class Match:
    """Per secondary feature: the position of its match in the primary frame (-1: none), and why not."""

    primary: np.ndarray
    why_not: list[str]


def metric_crs(primary: gpd.GeoDataFrame, secondary: gpd.GeoDataFrame) -> Any:
    """The CRS distances and areas are measured in: the storage CRS when projected in metres, else
    the UTM zone of both sources' data."""
    crs = primary.crs
    if _is_metric(crs):
        return crs
    # the zone of the centre of the data's total bounds (the two frames' bounding boxes have the same)
    boxes = [shapely.box(*f.total_bounds) for f in (primary, secondary) if np.isfinite(f.total_bounds).all()]
    both = gpd.GeoSeries(boxes, crs=crs)
    if not crs.is_geographic:
        return both.estimate_utm_crs()
    # in lon/lat storage, computed as geopandas' estimate_utm_crs finds it in the PROJ database
    # (WGS 84 / UTM zone of the centre), without its database query (a second a build)
    minx, miny, maxx, maxy = both.total_bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    zone = min(int((lon + 180) // 6) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _is_metric(crs: Any) -> bool:
    return bool(crs.is_projected and crs.axis_info[0].unit_name in ("metre", "meter"))


#: metres per degree of latitude, and the margin (m) added to the storage-CRS search for candidates
METRES_PER_DEGREE = 111_320.0
CANDIDATE_MARGIN_M = 1.0


def _within_reach(primary: gpd.GeoDataFrame, secondary: gpd.GeoDataFrame, reach_m: float) -> np.ndarray:
    """Positions (ascending) of the primary features whose bounding box comes within ``reach_m`` metres
    (plus a margin) of a secondary feature's, searched in the geographic storage CRS; a superset of
    every primary feature a secondary one can match in the metric CRS, so only those are reprojected."""
    lat = float(np.nanmax(np.abs(secondary.total_bounds[[1, 3]])))
    dy = (reach_m + CANDIDATE_MARGIN_M) / METRES_PER_DEGREE
    dx = dy / max(np.cos(np.radians(min(lat, 89.0))), 1e-6)  # a degree of longitude is shorter
    minx, miny, maxx, maxy = shapely.bounds(secondary.geometry.to_numpy()).T
    grown = shapely.box(minx - dx, miny - dy, maxx + dx, maxy + dy)
    _, prim = shapely.STRtree(primary.geometry.to_numpy()).query(grown)
    return np.unique(prim)


def _by_pair(sec: np.ndarray, prim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs ordered by secondary, then primary position: ties are then broken by the lower
    primary position, whatever order the tree returned them in (so a partitioned cross-check, with
    trees over subsets, picks the same matches)."""
    order = np.lexsort((prim, sec))
    return sec[order], prim[order]


def _match_polygons(a: np.ndarray, b: np.ndarray, min_iou: float, label: str) -> Match:
    sec, prim = _by_pair(*shapely.STRtree(a).query(b, predicate="intersects"))
    inter = shapely.area(shapely.intersection(b[sec], a[prim]))
    iou = inter / (shapely.area(b[sec]) + shapely.area(a[prim]) - inter)
    best = pd.DataFrame({"sec": sec, "prim": prim, "iou": iou}).sort_values("iou", ascending=False, kind="stable")
    best = best.drop_duplicates("sec")
    good = best[best.iou >= min_iou]
    matched = np.full(len(b), -1)
    matched[good.sec.to_numpy()] = good.prim.to_numpy()
    why = ["" if m >= 0 else f"no feature of {label} overlaps it" for m in matched]
    for s, value in best[best.iou < min_iou][["sec", "iou"]].itertuples(index=False):
        why[s] = f"its best overlap with {label} has IoU {value:.2f} < {min_iou}"
    return Match(matched, why)


def _match_points(a: np.ndarray, b: np.ndarray, distance: float, label: str) -> Match:
    # every equidistant nearest feature, the one with the lowest position kept
    sec, prim = _by_pair(*shapely.STRtree(a).query_nearest(b, max_distance=distance, all_matches=True))
    first = np.r_[True, sec[1:] != sec[:-1]] if len(sec) else np.zeros(0, dtype=bool)
    matched = np.full(len(b), -1)
    matched[sec[first]] = prim[first]
    why = ["" if m >= 0 else f"no feature of {label} within {distance:g} m" for m in matched]
    return Match(matched, why)


def _match_lines(a: np.ndarray, b: np.ndarray, distance: float, label: str) -> Match:
    sec, prim = _by_pair(*shapely.STRtree(a).query(b, predicate="dwithin", distance=distance))
    matched = np.full(len(b), -1)
    why = [f"no feature of {label} within {distance:g} m"] * len(b)
    for s, group in pd.Series(prim).groupby(sec):
        near = shapely.union_all(shapely.buffer(a[group.to_numpy()], distance))
        share = shapely.length(shapely.intersection(b[s], near)) / max(shapely.length(b[s]), 1e-9)
        if share >= LINE_SHARE:
            nearest = group.to_numpy()[np.argmin(shapely.distance(b[s], a[group.to_numpy()]))]
            matched[s], why[s] = int(nearest), ""
        else:
            why[s] = f"only {share:.0%} of it lies within {distance:g} m of {label}"
    return Match(matched, why)


def _show(value: Any) -> str:
    return f"{float(value):g}"


def match_geoms(dimension: int, a: np.ndarray, b: np.ndarray, config: CrossCheckConfig, label: str) -> Match:
    """Match secondary geometries ``b`` to primary ones ``a`` (both in the metric CRS, ``a`` not empty)."""
    if dimension == 2:
        return _match_polygons(a, b, config.min_iou, label)
    if dimension == 0:
        return _match_points(a, b, config.max_distance_m, label)
    return _match_lines(a, b, config.max_distance_m, label)


def no_primary(primary: Side, secondary: Side) -> Match:
    """The match when the primary source has no features."""
    return Match(np.full(len(secondary.frame), -1), [f"{primary.label} has no features"] * len(secondary.frame))


def match_sources(spec: LayerSpec, primary: Side, secondary: Side, config: CrossCheckConfig) -> Match:
    """Every secondary feature's match among the primary ones, in-process (a distributed build's
    :meth:`~cim.build.distributed.Scale.match` gives the same)."""
    assert spec.geometry_type is not None
    if len(primary.frame) == 0:
        return no_primary(primary, secondary)
    dimension = DIMENSION[spec.geometry_type]
    crs = metric_crs(primary.frame, secondary.frame)
    b = to_crs(secondary.frame.geometry, crs).to_numpy()
    near = None
    if not _is_metric(primary.frame.crs) and np.isfinite(secondary.frame.total_bounds).all():
        # geographic storage: only the primary features within reach of a secondary one are reprojected
        # and matched; they keep their order, so ties between candidates break the same way
        near = _within_reach(primary.frame, secondary.frame, 0.0 if dimension == 2 else config.max_distance_m)
    if near is None or len(near) == 0:
        return match_geoms(dimension, to_crs(primary.frame.geometry, crs).to_numpy(), b, config, primary.label)
    found = match_geoms(dimension, to_crs(primary.frame.geometry.iloc[near], crs).to_numpy(), b, config, primary.label)
    return Match(np.where(found.primary >= 0, near[np.maximum(found.primary, 0)], -1), found.why_not)


def crosscheck(
    spec: LayerSpec,
    primary: Side,
    secondary: Side,
    config: CrossCheckConfig,
    report: QAReport,
    match: Match | None = None,
) -> dict[str, Any]:
    """Verify ``primary`` against ``secondary``, recording findings in ``report``; the counts.

    ``match`` is the matching already computed elsewhere (a partitioned build), else it is computed here.
    """
    tolerances = config.tolerances
    if tolerances is None:
        tolerances = {k: v for k, v in DEFAULT_TOLERANCES.items() if k in spec.field_types}
    if match is None:
        match = match_sources(spec, primary, secondary, config) if len(secondary.frame) else Match(np.full(0, -1), [])
    sec_ids = secondary.frame["source_id"].to_numpy()
    prim_ids = primary.frame["source_id"].to_numpy()
    missing = np.flatnonzero(match.primary < 0)
    reasons = [match.why_not[i] for i in missing]
    report.add_many(spec.name, secondary.label, sec_ids[missing], "crosscheck.missing_in_primary", "flagged", reasons)
    sec = np.flatnonzero(match.primary >= 0)
    prim = match.primary[sec]
    conflicts = 0
    for name, tolerance in tolerances.items():
        mine = pd.to_numeric(primary.frame[name], errors="coerce").to_numpy(dtype=float)[prim]
        theirs = pd.to_numeric(secondary.frame[name], errors="coerce").to_numpy(dtype=float)[sec]
        with np.errstate(invalid="ignore"):
            differ = np.flatnonzero(np.abs(mine - theirs) > tolerance)  # NaN (a value missing) never differs
        conflicts += len(differ)
        report.add_many(
            spec.name,
            primary.label,
            prim_ids[prim[differ]],
            "crosscheck.conflict",
            "flagged",
            [
                f"{name} {_show(mine[i])} here vs {_show(theirs[i])} in {secondary.label} feature {sec_ids[sec[i]]} "
                f"(tolerance {_show(tolerance)})"
                for i in differ
            ],
        )
    return {
        "layer": spec.name,
        "primary": primary.label,
        "secondary": secondary.label,
        "compared": len(secondary.frame),
        "matched": len(sec),
        "missing_in_primary": len(missing),
        "conflicts": conflicts,
        # what matched means (the catalog's lineage shows it beside the counts)
        "min_iou": config.min_iou,
        "max_distance_m": config.max_distance_m,
        "tolerances": dict(tolerances),
    }
