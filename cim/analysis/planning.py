"""Planning analyses (规划和自然资源管理): the parcel at a point with its zoning, zoning compliance
over an area or the whole city, and land use per district. The rules (which zone governs, floors,
FAR, the use table) are in cim/analysis/zoning.py; areas are in m² in the metric CRS of
:func:`cim.impact_area.metric_crs` (the storage CRS when projected in metres, else equal-area)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cim.analysis import zoning
from cim.analysis.inputs import check_in_city, in_storage, to_area, to_point
from cim.analysis.lookup import (
    ZONE_FIELDS, areas_m2, bounds_of, covering, feature_collection, finest_division, metric_for, plain, read_divisions, read_layer, records, require,
    vector_layer,
)
from cim.analysis.landuse import landuse_by_district
from cim.impact import DIVISION_LEVELS
from cim.processes.process import Process, Progress, no_progress
from cim.processes.schemas import AREA, FEATURE_COLLECTION, POINT, input_description, output_description
from cim.processes.schemas import CRS as CRS_SCHEMA
from cim.store import LayerInfo, Store

#: what a parcel at a point gains beyond its own fields
PARCEL_COLUMNS = (
    "zone_use", "zoning_code", "height_limit_m", "far_limit", "zones", "district_code", "district_name",
    "parcel_area_m2", "buildings", "floor_area_m2", "far", "far_exceeded",
)
#: the columns of a compliance report's violations
VIOLATION_COLUMNS = (
    "kind", "layer", "fid", "name", "use", "value", "limit", "zone_fid", "zone_use", "zoning_code",
    "floor_area_m2", "parcel_area_m2",
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
    parcel_area = areas_m2(geoms, info.srid, metric)
    bounds = bounds_of(geoms)
    zone_columns = _parcel_zones(store, info, geoms, inner, parcel_area, bounds, metric)
    floor_area, count = _parcel_buildings(store, info, geoms, bounds, metric)
    codes, names = finest_division(read_divisions(store, bounds, info.srid) if bounds else None, inner)
    with np.errstate(divide="ignore", invalid="ignore"):
        far = np.where(parcel_area > 0, floor_area / np.where(parcel_area > 0, parcel_area, 1.0), np.nan)
    limit = zoning.numbers(zone_columns["far_limit"])
    exceeded = np.array([None if np.isnan(lim) or np.isnan(f) else bool(f > lim) for f, lim in zip(far, limit)], dtype=object)
    out = frame.assign(**zone_columns, district_code=codes, district_name=names, parcel_area_m2=parcel_area,
                       buildings=count, floor_area_m2=floor_area, far=far, far_exceeded=exceeded)
    return out.to_crs(4326)


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
    pieces = areas_m2(shapely.intersection(geoms[parcel_idx], zone_geoms[zone_idx]), info.srid, metric)
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


@dataclass
class ComplianceReport:
    """What :func:`zoning_compliance` found: ``violations`` (lon/lat; columns VIOLATION_COLUMNS) and a summary."""

    violations: gpd.GeoDataFrame
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The process's outputs: ``features`` (the violations as GeoJSON) and ``summary``."""
        return {"features": feature_collection(self.violations), "summary": self.summary}


def zoning_compliance(
    store: Store,
    area: Any = None,
    crs: str | int | CRS | None = None,
    progress: Progress = no_progress,
    allowed_uses: Mapping[str, Iterable[str]] | None = None,
) -> ComplianceReport:
    """Buildings and parcels of ``area`` (a Polygon/MultiPolygon in ``crs``, default lon/lat; None:
    the whole city) that break their zone's rules (cim/analysis/zoning.py): ``height`` (building
    taller than ``height_limit_m``), ``far`` (parcel floor-area ratio above ``far_limit``), ``use``
    (building use the zone's use forbids: :data:`cim.analysis.zoning.ALLOWED_USES`, entries replaced
    by ``allowed_uses``). A building is in the area when its footprint intersects it, a parcel
    likewise (its FAR counts every building whose centroid it holds, inside the area or not)."""
    table = zoning.allowed_uses(allowed_uses)
    zones_info = require(store, "landuse", "zoning compliance")
    b_info = require(store, "buildings", "zoning compliance")
    p_info = vector_layer(store, "parcels")
    srid = b_info.srid
    region = None
    if area is not None:
        lonlat = to_area(area, crs)
        check_in_city(store, lonlat)
        region = in_storage(lonlat, b_info)
        shapely.prepare(region)
    progress(2, "reading parcels")
    parcels = read_layer(store, p_info, region.bounds if region is not None else None, ("parcel_id",), srid) if p_info else None
    if parcels is not None and region is not None:
        parcels = parcels[shapely.intersects(parcels.geometry.to_numpy(), region)]
    bounds = None
    if region is not None:
        boxes = [region.bounds] + ([tuple(parcels.total_bounds)] if parcels is not None and len(parcels) else [])
        bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    progress(10, "reading buildings")
    buildings = read_layer(store, b_info, bounds, ("name", "use", "height_m", "floors"), srid)
    progress(45, "reading zones")
    zones = read_layer(store, zones_info, bounds, ZONE_FIELDS, srid)
    metric = metric_for(b_info, bounds or _layer_bounds(buildings, zones))
    progress(50, "checking heights and uses")
    b_geoms = buildings.geometry.to_numpy()
    centroids = shapely.centroid(b_geoms)
    zone_geoms = zones.geometry.to_numpy()
    in_scope = shapely.intersects(b_geoms, region) if region is not None else np.ones(len(b_geoms), dtype=bool)
    b_zone = zoning.zone_of(centroids, zone_geoms)
    zoned = in_scope & (b_zone >= 0)
    z = np.where(b_zone >= 0, b_zone, 0)
    zone_col = {name: (zones[name].to_numpy()[z] if len(zones) else np.full(len(z), None, dtype=object)) for name in ZONE_FIELDS}
    tall = zoned & zoning.too_tall(buildings["height_m"].to_numpy(), zone_col["height_limit_m"])
    forbidden = zoned & zoning.forbidden_uses(buildings["use"].to_numpy(), np.where(zoned, zone_col["use"], None), table)
    parts = [
        _building_rows(buildings, tall, "height", zoning.numbers(buildings["height_m"].to_numpy()), zoning.numbers(zone_col["height_limit_m"]), zones, b_zone),
        _building_rows(buildings, forbidden, "use", buildings["use"].to_numpy(), _allowed_lists(zone_col["use"], table), zones, b_zone),
    ]
    summary: dict[str, Any] = {
        "buildings_checked": int(in_scope.sum()), "buildings_in_zone": int(zoned.sum()),
        "buildings_without_height": int((zoned & np.isnan(zoning.numbers(buildings["height_m"].to_numpy()))).sum()),
        "parcels_checked": 0, "parcels_in_zone": 0, "zones": int(len(zones)),
    }
    if parcels is not None:
        progress(60, "floor-area ratios")
        _, floor_area = zoning.floor_areas(b_geoms, buildings["floors"].to_numpy(), buildings["height_m"].to_numpy(), srid, metric)
        p_geoms = parcels.geometry.to_numpy()
        p_floor, _ = zoning.parcel_floor_area(p_geoms, centroids, floor_area)
        p_area = areas_m2(p_geoms, srid, metric)
        with np.errstate(divide="ignore", invalid="ignore"):
            far = np.where(p_area > 0, p_floor / np.where(p_area > 0, p_area, 1.0), np.nan)
        p_zone = zoning.zone_of(shapely.point_on_surface(p_geoms), zone_geoms)
        pz = np.where(p_zone >= 0, p_zone, 0)
        far_limit = zoning.numbers(zones["far_limit"].to_numpy()[pz]) if len(zones) else np.full(len(pz), np.nan)
        far_limit[p_zone < 0] = np.nan
        dense = (p_zone >= 0) & zoning.too_tall(far, far_limit)
        parts.append(_parcel_rows(parcels, dense, far, far_limit, p_floor, p_area, zones, p_zone))
        summary.update(parcels_checked=int(len(parcels)), parcels_in_zone=int((p_zone >= 0).sum()))
    progress(90, "writing the report")
    violations = pd.concat([p for p in parts if len(p)] or [parts[0]], ignore_index=True)
    order = violations["kind"].map({kind: i for i, kind in enumerate(zoning.KINDS)})
    violations = violations.assign(_order=order).sort_values(["_order", "fid"], kind="stable").drop(columns="_order")
    violations = gpd.GeoDataFrame(violations, geometry="geometry", crs=f"EPSG:{srid}").to_crs(4326)
    violations.index = [f"{kind}:{layer}/{fid}" for kind, layer, fid in zip(violations["kind"], violations["layer"], violations["fid"])]
    counts = violations["kind"].value_counts()
    summary = {"violations": {kind: int(counts.get(kind, 0)) for kind in zoning.KINDS}, "total": int(len(violations)), **summary,
               "area": area is not None, "allowed_uses": {k: sorted(v) for k, v in sorted(table.items())}, "metric_crs": metric.srs}
    progress(100, "done")
    return ComplianceReport(violations, summary)


def _layer_bounds(*frames: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    boxes = [f.total_bounds for f in frames if len(f)]
    if not boxes:
        return (0.0, 0.0, 0.0, 0.0)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _allowed_lists(zone_uses: np.ndarray, table: Mapping[str, frozenset[str]]) -> np.ndarray:
    out = np.full(len(zone_uses), None, dtype=object)
    for i, use in enumerate(zone_uses):
        allowed = table.get(use.strip().lower()) if isinstance(use, str) else None
        out[i] = sorted(allowed) if allowed is not None else None
    return out


def _zone_fields(zones: gpd.GeoDataFrame, idx: np.ndarray) -> dict[str, np.ndarray]:
    fid = zones.index.to_numpy()
    return {"zone_fid": fid[idx], "zone_use": zones["use"].to_numpy()[idx], "zoning_code": zones["zoning_code"].to_numpy()[idx]}


def _building_rows(buildings: gpd.GeoDataFrame, mask: np.ndarray, kind: str, value: np.ndarray, limit: np.ndarray,
                   zones: gpd.GeoDataFrame, zone_idx: np.ndarray) -> pd.DataFrame:
    sel = np.flatnonzero(mask)
    return pd.DataFrame({
        "kind": kind, "layer": "buildings", "fid": buildings.index.to_numpy()[sel], "name": buildings["name"].to_numpy()[sel],
        "use": buildings["use"].to_numpy()[sel], "value": value[sel], "limit": limit[sel],
        **_zone_fields(zones, zone_idx[sel]), "floor_area_m2": np.nan, "parcel_area_m2": np.nan,
        "geometry": buildings.geometry.to_numpy()[sel],
    }, columns=[*VIOLATION_COLUMNS, "geometry"])


def _parcel_rows(parcels: gpd.GeoDataFrame, mask: np.ndarray, far: np.ndarray, limit: np.ndarray, floor_area: np.ndarray,
                 area: np.ndarray, zones: gpd.GeoDataFrame, zone_idx: np.ndarray) -> pd.DataFrame:
    sel = np.flatnonzero(mask)
    return pd.DataFrame({
        "kind": "far", "layer": "parcels", "fid": parcels.index.to_numpy()[sel], "name": parcels["parcel_id"].to_numpy()[sel],
        "use": None, "value": far[sel], "limit": limit[sel], **_zone_fields(zones, zone_idx[sel]),
        "floor_area_m2": floor_area[sel], "parcel_area_m2": area[sel], "geometry": parcels.geometry.to_numpy()[sel],
    }, columns=[*VIOLATION_COLUMNS, "geometry"])


# -- processes ---------------------------------------------------------------------------------------
def _run_parcel(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    frame = parcel_at_point(store, inputs.get("point"), inputs.get("crs"))
    lonlat = to_point(inputs.get("point"), inputs.get("crs"))
    summary = {"point": [lonlat.x, lonlat.y], "parcels": int(len(frame)), "fids": [int(v) for v in frame.index]}
    return {"features": feature_collection(frame), "summary": summary}


def _run_compliance(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    report = zoning_compliance(store, inputs.get("area"), inputs.get("crs"), progress=progress, allowed_uses=inputs.get("allowed_uses"))
    return report.to_json()


def _run_landuse(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    return {"table": records(landuse_by_district(store, inputs.get("level") or "district"))}


_CRS_INPUT = input_description("CRS", "The CRS of the geometry input (x/y order), default CRS84 (lon/lat)", CRS_SCHEMA, optional=True)
_COUNTS = {"type": "object", "properties": {kind: {"type": "integer", "minimum": 0} for kind in zoning.KINDS}}
_COMPLIANCE_SUMMARY = {
    "type": "object",
    "required": ["violations", "total", "buildings_checked", "parcels_checked"],
    "properties": {
        "violations": _COUNTS,
        "total": {"type": "integer", "minimum": 0},
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
        inputs={"point": input_description("Point", "A GeoJSON Point in `crs`", POINT), "crs": _CRS_INPUT},
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
        example={"point": {"type": "Point", "coordinates": [117.2, 39.13]}},
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
            "crs": _CRS_INPUT,
            "allowed_uses": input_description(
                "Allowed uses", "Zone use → building use classes (or raw uses) allowed in it, replacing the default table's entries",
                {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 100},
                 "maxProperties": 100},
                optional=True),
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
