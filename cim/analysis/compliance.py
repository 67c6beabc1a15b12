"""Zoning compliance (the ``zoning-compliance`` process's analysis, usable as ``city.zoning_compliance``):
the buildings and parcels of an area, or of the whole city, that break their zone's rules
(cim/analysis/zoning.py), as a report — the violations (GeoJSON-ready, lon/lat) and a summary.

It reads three layers with :meth:`cim.store.Store.read_frame` (only the columns it needs) and joins
them in memory with STRtrees (shapely 2, vectorised): on the 1,000,000-building city (bench data of
bench/processes_data.py) a city-wide run took 15–16 s on PostGIS and on DuckDB with the 2-core machine
under a load of 15–30 (other test runs), about half of it reading the layers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cim.analysis import zoning
from cim.analysis.inputs import check_in_city, in_storage, to_area
from cim.analysis.lookup import ZONE_FIELDS, feature_collection, metric_for, read_layer, require, small_areas_m2, vector_layer
from cim.errors import BadInput
from cim.processes.process import Progress, no_progress
from cim.store import Store

#: the columns of a compliance report's violations
VIOLATION_COLUMNS = (
    "kind", "layer", "fid", "name", "use", "value", "limit", "zone_fid", "zone_use", "zoning_code",
    "floor_area_m2", "parcel_area_m2",
)


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
    limit: int | None = None,
) -> ComplianceReport:
    """Buildings and parcels of ``area`` (a Polygon/MultiPolygon in ``crs``, default lon/lat; None:
    the whole city) that break their zone's rules (cim/analysis/zoning.py): ``height`` (building
    taller than ``height_limit_m``), ``far`` (parcel floor-area ratio above ``far_limit``), ``use``
    (building use the zone's use forbids: :data:`cim.analysis.zoning.ALLOWED_USES`, entries replaced
    by ``allowed_uses``). A building is in the area when its centroid lies in it (boundary included),
    a parcel when its point on surface does — the points that also pick their zone and parcel, so
    areas that tile the city share out its features, and a parcel's own polygon as the area selects
    that parcel and its buildings, not the neighbours it touches. A parcel's FAR counts every
    building whose centroid it holds.

    Violations are listed by kind (height, far, use), the worst first (the largest value ÷ limit;
    uses by fid); ``limit``: at most that many of each kind (None: all) — the summary counts all."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BadInput(f"limit must be a whole number of violations ≥ 0, not {str(limit)[:40]!r}")
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
    progress(2, "reading parcels, buildings and zones")
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="cim-compliance") as pool:  # each read waits on the database
        parcels_read = pool.submit(read_layer, store, p_info, region.bounds if region is not None else None, ("parcel_id",), srid) if p_info else None
        bounds = None
        if region is not None:  # the parcels in the area first: their buildings count wherever they are
            parcels = parcels_read.result() if parcels_read is not None else None
            if parcels is not None:
                parcels = parcels[shapely.intersects(region, shapely.point_on_surface(parcels.geometry.to_numpy()))]
            boxes = [region.bounds] + ([tuple(parcels.total_bounds)] if parcels is not None and len(parcels) else [])
            bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        buildings_read = pool.submit(read_layer, store, b_info, bounds, ("name", "use", "height_m", "floors"), srid)
        zones_read = pool.submit(read_layer, store, zones_info, bounds, ZONE_FIELDS, srid)
        if region is None:
            parcels = parcels_read.result() if parcels_read is not None else None
        buildings, zones = buildings_read.result(), zones_read.result()
    metric = metric_for(b_info, bounds or _layer_bounds(buildings, zones))
    progress(50, "checking heights and uses")
    b_geoms = buildings.geometry.to_numpy()
    centroids = shapely.centroid(b_geoms)
    zone_geoms = zones.geometry.to_numpy()
    in_scope = shapely.intersects(region, centroids) if region is not None else np.ones(len(b_geoms), dtype=bool)
    b_zone = zoning.zone_of(centroids, zone_geoms)
    zoned = in_scope & (b_zone >= 0)
    z = np.where(b_zone >= 0, b_zone, 0)
    zone_col = {name: (zones[name].to_numpy()[z] if len(zones) else np.full(len(z), None, dtype=object)) for name in ZONE_FIELDS}
    tall = zoned & zoning.too_tall(buildings["height_m"].to_numpy(), zone_col["height_limit_m"])
    forbidden = zoned & zoning.forbidden_uses(buildings["use"].to_numpy(), np.where(zoned, zone_col["use"], None), table)
    parts = [
        _building_rows(buildings, tall, "height", zoning.numbers(buildings["height_m"].to_numpy()), zoning.numbers(zone_col["height_limit_m"]), zones, b_zone),
        _building_rows(buildings, forbidden, "use", buildings["use"].to_numpy(), _allowed_lists(zone_col["use"], forbidden, table), zones, b_zone),
    ]
    summary: dict[str, Any] = {
        "buildings_checked": int(in_scope.sum()), "buildings_in_zone": int(zoned.sum()),
        "buildings_without_height": int((zoned & np.isnan(zoning.numbers(buildings["height_m"].to_numpy()))).sum()),
        "parcels_checked": 0, "parcels_in_zone": 0, "zones": int(len(zones)),
    }
    if parcels is not None:
        progress(60, "floor-area ratios")
        _, floor_area = zoning.floor_areas(b_geoms, buildings["floors"].to_numpy(), buildings["height_m"].to_numpy(), srid, metric, centroids)
        p_geoms = parcels.geometry.to_numpy()
        p_floor, _ = zoning.parcel_floor_area(p_geoms, centroids, floor_area)
        p_area = small_areas_m2(p_geoms, srid, metric)
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
    counts = violations["kind"].value_counts()
    order = violations["kind"].map({kind: i for i, kind in enumerate(zoning.KINDS)})
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(violations["kind"] == "use", 0.0,
                          pd.to_numeric(violations["value"], errors="coerce") / pd.to_numeric(violations["limit"], errors="coerce"))
    violations = violations.assign(_order=order, _excess=-np.nan_to_num(excess, nan=0.0, posinf=np.inf))
    violations = violations.sort_values(["_order", "_excess", "fid"], kind="stable")
    if limit is not None:
        violations = violations.groupby("_order", sort=False).head(limit)
    violations = violations.drop(columns=["_order", "_excess"])
    violations = gpd.GeoDataFrame(violations, geometry="geometry", crs=f"EPSG:{srid}").to_crs(4326)
    violations.index = [f"{kind}:{layer}/{fid}" for kind, layer, fid in zip(violations["kind"], violations["layer"], violations["fid"])]
    total = int(counts.sum())
    summary = {"violations": {kind: int(counts.get(kind, 0)) for kind in zoning.KINDS}, "total": total,
               "listed": int(len(violations)), "truncated": len(violations) < total, **summary,
               "area": area is not None, "allowed_uses": {k: sorted(v) for k, v in sorted(table.items())}, "metric_crs": metric.srs}
    progress(100, "done")
    return ComplianceReport(violations, summary)


def _layer_bounds(*frames: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    boxes = [f.total_bounds for f in frames if len(f)]
    if not boxes:
        return (0.0, 0.0, 0.0, 0.0)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _allowed_lists(zone_uses: np.ndarray, mask: np.ndarray, table: Mapping[str, frozenset[str]]) -> np.ndarray:
    """The sorted allowed uses of the zone use of each building of ``mask`` (elsewhere None)."""
    out = np.full(len(zone_uses), None, dtype=object)
    lists: dict[str, list[str] | None] = {}
    for i in np.flatnonzero(mask):
        use = zone_uses[i]
        if use not in lists:
            allowed = table.get(use.strip().lower()) if isinstance(use, str) else None
            lists[use] = sorted(allowed) if allowed is not None else None
        out[i] = lists[use]
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
