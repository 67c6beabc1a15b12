"""Planning analyses (规划和自然资源管理) and their processes: the parcel at a point with its zoning
(here), zoning compliance over an area or the whole city (compliance.py) and land use per district
(landuse.py). The rules (which zone governs, floors, FAR, the use table) are in cim/analysis/zoning.py; areas are in m² in the metric CRS of
:func:`cim.impact_area.metric_crs` (the storage CRS when projected in metres, else equal-area)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from cim.analysis import zoning
from cim.analysis.inputs import check_in_city, in_storage, to_point
from cim.analysis.lookup import (
    ZONE_FIELDS, bounds_of, covering, feature_collection, finest_division, lonlat_frame, metric_for, plain, read_divisions, read_layer, records, require, small_areas_m2, valid,
    vector_layer,
)
from cim.analysis.compliance import ComplianceReport, zoning_compliance
from cim.analysis.landuse import landuse_by_district
from cim.impact import DIVISION_LEVELS
from cim.processes.process import Process, Progress
from cim.processes.schemas import AREA, FEATURE_COLLECTION, POINT, input_description, output_description
from cim.processes.schemas import CRS_INPUT
from cim.store import LayerInfo, Store

#: what a parcel at a point gains beyond its own fields
PARCEL_COLUMNS = (
    "zone_use", "zoning_code", "height_limit_m", "far_limit", "zones", "district_code", "district_name",
    "parcel_area_m2", "buildings", "floor_area_m2", "far", "far_exceeded",
)
def parcel_at_point(store: Store, point: Any, crs: str | int | CRS | None = None) -> gpd.GeoDataFrame:
    """The parcel(s) covering ``point`` (shapely, GeoJSON, WKT or (x, y) in ``crs``, default lon/lat),
    lon/lat, indexed by fid, with every parcel field and:

    - the governing zone (the smallest zone holding the parcel's point on surface): ``zone_use``,
      ``zoning_code``, ``height_limit_m``, ``far_limit``; and ``zones``: every zone the parcel
      overlaps, each ``{fid, use, zoning_code, height_limit_m, far_limit, share}`` (share of the
      parcel's area in it), largest share first;
    - its district (finest administrative division holding its point on surface): ``district_code``, ``district_name``;
    - ``parcel_area_m2``, ``buildings`` (whose centroid it holds), their ``floor_area_m2``, the ``far``
      and ``far_exceeded`` (None without a limit).

    Empty when no parcel is there; BadInput when the point lies outside the city."""
    lonlat = to_point(point, crs)
    check_in_city(store, lonlat)
    info = require(store, "parcels", "parcel-at-point")
    frame = covering(store, info, lonlat, None)
    geoms = frame.geometry.to_numpy()
    inner = shapely.point_on_surface(geoms)
    metric = metric_for(info, in_storage(lonlat, info).bounds)
    parcel_area = small_areas_m2(geoms, info.srid, metric)
    bounds = bounds_of(geoms)
    zone_columns = _parcel_zones(store, info, geoms, inner, parcel_area, bounds, metric)
    floor_area, count = _parcel_buildings(store, info, geoms, bounds, metric)
    divisions = read_divisions(store, bounds, info.srid) if bounds else None
    codes, names = finest_division(divisions, inner)
    with np.errstate(divide="ignore", invalid="ignore"):
        far = np.where(parcel_area > 0, floor_area / np.where(parcel_area > 0, parcel_area, 1.0), np.nan)
    limit = zoning.numbers(zone_columns["far_limit"])
    exceeded = np.array([None if np.isnan(lim) or np.isnan(f) else bool(f > lim) for f, lim in zip(far, limit)], dtype=object)
    return lonlat_frame(frame, info.srid, {**zone_columns, "district_code": codes, "district_name": names, "parcel_area_m2": parcel_area,
                                           "buildings": count, "floor_area_m2": floor_area, "far": far, "far_exceeded": exceeded})


def _parcel_zones(store: Store, info: LayerInfo, geoms: np.ndarray, inner: np.ndarray, parcel_area: np.ndarray,
                  bounds: tuple[float, ...] | None, metric: CRS) -> dict[str, np.ndarray]:
    """The governing zone's fields and the list of overlapping zones of each parcel."""
    n = len(geoms)
    out: dict[str, np.ndarray] = {"zone_use": np.full(n, None, dtype=object)}
    for name in ZONE_FIELDS[1:]:
        out[name] = np.full(n, None, dtype=object)
    out["zones"] = np.empty(n, dtype=object)
    for i in range(n):
        out["zones"][i] = []
    zones_info = vector_layer(store, "landuse")
    if zones_info is None or not n:
        return out
    zones = read_layer(store, zones_info, bounds, ZONE_FIELDS, info.srid)
    zone_geoms = zones.geometry.to_numpy()
    governing = zoning.zone_of(inner, zone_geoms)
    found = governing >= 0
    for name, column in zip(("zone_use", *ZONE_FIELDS[1:]), ZONE_FIELDS):
        out[name][found] = zones[column].to_numpy()[governing[found]]
    parcel_idx, zone_idx = shapely.STRtree(zone_geoms).query(geoms, predicate="intersects")
    overlap = shapely.intersection(valid(geoms)[parcel_idx], valid(zone_geoms)[zone_idx])
    pieces = small_areas_m2(overlap, info.srid, metric)
    rows = zones.reset_index()
    for p, z, piece in sorted(zip(parcel_idx, zone_idx, pieces), key=lambda t: (t[0], -t[2])):
        if piece <= 0:
            continue
        entry = {"fid": int(rows["fid"].iat[z]), **{k: plain(rows[k].iat[z]) for k in ZONE_FIELDS}}
        entry["share"] = float(piece / parcel_area[p]) if parcel_area[p] > 0 else None
        out["zones"][p].append(entry)
    return out


def _parcel_buildings(store: Store, info: LayerInfo, geoms: np.ndarray, bounds: tuple[float, ...] | None, metric: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Floor area (m²) and number of the buildings whose centroid each parcel holds."""
    b_info = vector_layer(store, "buildings")
    if b_info is None or not len(geoms):
        return np.zeros(len(geoms)), np.zeros(len(geoms), dtype=np.int64)
    buildings = read_layer(store, b_info, bounds, ("floors", "height_m"), info.srid)
    b_geoms = buildings.geometry.to_numpy()
    _, floor_area = zoning.floor_areas(b_geoms, buildings["floors"].to_numpy(), buildings["height_m"].to_numpy(), info.srid, metric)
    return zoning.parcel_floor_area(geoms, shapely.centroid(b_geoms), floor_area)


# -- processes ---------------------------------------------------------------------------------------
#: violations of each kind a zoning-compliance process lists by default (a city-wide check may find
#: 100,000: as GeoJSON ~100 MB, which a job result and a map should not carry unasked)
DEFAULT_LIMIT = 10_000


def _run_parcel(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    frame = parcel_at_point(store, inputs.get("point"), inputs.get("crs"))
    lonlat = to_point(inputs.get("point"), inputs.get("crs"))
    summary = {"point": [lonlat.x, lonlat.y], "parcels": int(len(frame)), "fids": [int(v) for v in frame.index]}
    return {"features": feature_collection(frame), "summary": summary}


def _run_compliance(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    report = zoning_compliance(store, inputs.get("area"), inputs.get("crs"), progress=progress,
                               allowed_uses=inputs.get("allowed_uses"), limit=inputs.get("limit", DEFAULT_LIMIT))
    return report.to_json()


def _run_landuse(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    return {"table": records(landuse_by_district(store, inputs.get("level") or "district"))}


_COUNTS = {"type": "object", "properties": {kind: {"type": "integer", "minimum": 0} for kind in zoning.KINDS}}
_COMPLIANCE_SUMMARY = {
    "type": "object",
    "required": ["violations", "total", "buildings_checked", "parcels_checked"],
    "properties": {
        "violations": _COUNTS,
        "total": {"type": "integer", "minimum": 0},
        "listed": {"type": "integer", "minimum": 0, "description": "violations listed as features (at most `limit` of each kind)"},
        "truncated": {"type": "boolean"},
        **{name: {"type": "integer", "minimum": 0} for name in (
            "buildings_checked", "buildings_in_zone", "buildings_without_height", "parcels_checked", "parcels_in_zone", "zones")},
        "area": {"type": "boolean", "description": "whether an area restricted the check (else the whole city)"},
        "allowed_uses": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "metric_crs": {"type": "string"},
    },
}
_LANDUSE_ROW = {
    "type": "object",
    "required": ["code", "name", "use", "area_m2", "share", "division_area_m2"],
    "properties": {
        "code": {"type": "string"}, "name": {"type": ["string", "null"]}, "use": {"type": ["string", "null"]},
        "area_m2": {"type": "number", "minimum": 0}, "share": {"type": "number", "minimum": 0},
        "division_area_m2": {"type": "number", "minimum": 0},
    },
}

PROCESSES = (
    Process(
        id="parcel-at-point",
        title="Parcel at a point",
        description=(
            "The parcel(s) covering the point with their zoning (the governing zone: use, zoning_code, "
            "height_limit_m, far_limit; and every zone the parcel overlaps with its share), district, "
            "floor area of the buildings whose centroid it holds and floor-area ratio. No parcel there: an empty collection."
        ),
        inputs={"point": input_description("Point", "A GeoJSON Point in `crs`", POINT), "crs": CRS_INPUT},
        outputs={
            "features": output_description("Parcels", "The parcels at the point (lon/lat) with zoning and FAR", FEATURE_COLLECTION),
            "summary": output_description("Summary", "The point (lon/lat) and how many parcels cover it", {
                "type": "object", "required": ["point", "parcels"],
                "properties": {"point": {"type": "array", "items": {"type": "number"}}, "parcels": {"type": "integer"},
                               "fids": {"type": "array", "items": {"type": "integer"}}}}),
        },
        run=_run_parcel,
        domain="planning",
        keywords=("parcel", "宗地", "zoning", "控规", "spatial query"),
        example={"point": {"type": "Point", "coordinates": [24.944068, 60.170017]}},  # the demo city, central Helsinki
    ),
    Process(
        id="zoning-compliance",
        title="Zoning compliance",
        description=(
            "Buildings taller than their zone's height_limit_m, parcels whose floor-area ratio (Σ footprint × "
            "floors of the buildings whose centroid they hold ÷ parcel area) exceeds the zone's far_limit, and "
            "building uses the zone's use forbids (a documented table, entries replaceable by `allowed_uses`), "
            "over an area or the whole city: the violations as GeoJSON (kind height|far|use, value, limit, "
            "zone) and a summary."
        ),
        inputs={
            "area": input_description("Area", "A GeoJSON Polygon or MultiPolygon in `crs`; absent: the whole city", AREA, optional=True),
            "crs": CRS_INPUT,
            "allowed_uses": input_description(
                "Allowed uses", "Zone use → building use classes (or raw uses) allowed in it, replacing the default table's entries",
                {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 100},
                 "maxProperties": 100},
                optional=True),
            "limit": input_description(
                "Limit", "At most this many violations of each kind are listed as features, the worst first (the summary counts all)",
                {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": DEFAULT_LIMIT}, optional=True),
        },
        outputs={
            "features": output_description("Violations", "Each violation with its feature's geometry (lon/lat)", FEATURE_COLLECTION),
            "summary": output_description("Summary", "Counts per kind and what was checked", _COMPLIANCE_SUMMARY),
        },
        run=_run_compliance,
        domain="planning",
        keywords=("zoning", "compliance", "height limit", "FAR", "容积率", "限高"),
        role="analyst",
        example={},
    ),
    Process(
        id="landuse-by-district",
        title="Land use by district",
        description=(
            "Per administrative division of `level`: the area (m², on the ellipsoid) of each land use of the "
            "zoning layer inside it and its share of the division's area."
        ),
        inputs={"level": input_description("Level", "The division level", {"type": "string", "enum": list(DIVISION_LEVELS), "default": "district"}, optional=True)},
        outputs={"table": output_description("Table", "One row per division and use", {"type": "array", "items": _LANDUSE_ROW})},
        run=_run_landuse,
        domain="planning",
        keywords=("land use", "用地", "district", "statistics"),
        role="analyst",
        example={"level": "district"},
    ),
)

__all__ = ["PROCESSES", "ComplianceReport", "landuse_by_district", "parcel_at_point", "zoning_compliance"]
