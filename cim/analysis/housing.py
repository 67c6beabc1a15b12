"""Housing analyses (住房和城乡建设): the building at a point with its parcel and district, and the
buildings in an area with their counts and floor area by use.

- A building is *at* a point when its footprint covers it (boundary included); its parcel is the
  parcel holding the building's centroid (as for a parcel's floor-area ratio, cim/analysis/zoning.py),
  its district the finest administrative division holding that centroid.
- Buildings *in an area* are those an impact analysis counts (:func:`cim.impact.impact`: a footprint
  partly inside counts whole), with the same floor area (footprint m² × floors; floors from
  ``height_m`` / 3 m when missing) and estimated people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cim.analysis.inputs import check_in_city, to_crs, to_point
from cim.analysis.lookup import (
    bounds_of, covering, feature_collection, finest_division, first_match, lonlat_frame, pool, read_divisions, records, require, to_srid,
    vector_layer,
)
from cim.impact import impact
from cim.processes.process import Process, Progress
from cim.processes.schemas import AREA, FEATURE_COLLECTION, POINT, input_description, output_description
from cim.processes.schemas import CRS_INPUT
from cim.store import Store

#: columns added to each building found at a point
PLACE_COLUMNS = ("parcel_id", "land_use", "district_code", "district_name")


def building_at_point(store: Store, point: Any, crs: str | int | CRS | None = None) -> gpd.GeoDataFrame:
    """The building(s) whose footprint covers ``point`` (shapely, GeoJSON, WKT or (x, y) in ``crs``,
    default lon/lat), in lon/lat (EPSG:4326 x/y) indexed by fid, each with every building field and
    its parcel (``parcel_id``, ``land_use``) and district (``district_code``, ``district_name``).
    Empty when no building is there; BadInput when the point lies outside the city."""
    lonlat = to_point(point, crs)
    check_in_city(store, lonlat)
    info = require(store, "buildings", "building-at-point")
    frame = covering(store, info, lonlat, None)
    places = {name: np.full(len(frame), None, dtype=object) for name in PLACE_COLUMNS}
    if len(frame):
        centroids = shapely.centroid(frame.geometry.to_numpy())
        parcels = pool().submit(_parcels, store, centroids, info.srid)
        divisions = pool().submit(read_divisions, store, bounds_of(centroids), info.srid)
        places.update(parcels.result())
        places["district_code"], places["district_name"] = finest_division(divisions.result(), centroids)
    return lonlat_frame(frame, info.srid, places)


def _parcels(store: Store, points: np.ndarray, srid: int) -> dict[str, np.ndarray]:
    """``parcel_id`` and ``land_use`` of the parcel holding each point (None: none)."""
    parcel_id = np.full(len(points), None, dtype=object)
    land_use = np.full(len(points), None, dtype=object)
    info = vector_layer(store, "parcels")
    if info is not None and len(points):
        bounds = bounds_of(points)
        if info.srid != srid:
            points = to_srid(points, srid, info.srid)
            bounds = bounds_of(points)
        parcels = store.read_frame(info.name, bbox=bounds, columns=("parcel_id", "land_use"))
        match = first_match(points, parcels.geometry.to_numpy())
        found = match >= 0
        parcel_id[found] = parcels["parcel_id"].to_numpy()[match[found]]
        land_use[found] = parcels["land_use"].to_numpy()[match[found]]
    return {"parcel_id": parcel_id, "land_use": land_use}


@dataclass
class BuildingsInArea:
    """What :func:`buildings_in_area` found."""

    #: area analysed, m²
    area_m2: float
    #: the buildings (lon/lat, by fid) with footprint_m2, floors_used, floor_area_m2, use_class, people, division_code
    buildings: gpd.GeoDataFrame
    #: per ``use`` (None: no use given): buildings, footprint_m2, floor_area_m2, people — largest floor area first
    by_use: pd.DataFrame
    #: buildings, footprint_m2, floor_area_m2, people
    totals: dict[str, Any]
    #: per administrative division (impact's by_division: code, name, level, buildings, floor_area_m2, people)
    by_division: pd.DataFrame
    people_source: str
    metric_crs: str

    def summary(self) -> dict[str, Any]:
        columns = ["code", "name", "level", "buildings", "floor_area_m2", "people"]
        return {
            "area_m2": self.area_m2,
            "totals": self.totals,
            "by_use": records(self.by_use),
            "by_division": records(self.by_division[[c for c in columns if c in self.by_division.columns]]),
            "people_source": self.people_source,
            "metric_crs": self.metric_crs,
        }

    def to_json(self) -> dict[str, Any]:
        """The process's outputs: ``features`` (FeatureCollection, lon/lat) and ``summary``."""
        return {"features": feature_collection(self.buildings), "summary": self.summary()}


def buildings_in_area(store: Store, area: Any, crs: str | int | CRS | None = None, max_area_km2: float | None = None) -> BuildingsInArea:
    """Buildings in ``area`` (a Polygon/MultiPolygon: shapely, GeoJSON or WKT in ``crs``, default
    lon/lat) with counts, footprint and floor area (m²) and estimated people by use and in total.
    BadInput for an empty, invalid or too large area (> ``max_area_km2``, default
    ``$CIM_IMPACT_MAX_KM2`` or 500 km²) or one outside the city."""
    require(store, "buildings", "buildings-in-area")
    result = impact(store, area, area_crs=to_crs(crs), lists=("buildings",), max_area_km2=max_area_km2)
    frame = result.lists["buildings"]
    uses = frame["use"].astype(object).where(frame["use"].notna(), None)
    grouped = pd.DataFrame(
        {"use": uses.fillna("\0").to_numpy(), "buildings": 1, "footprint_m2": frame["footprint_m2"].to_numpy(),
         "floor_area_m2": frame["floor_area_m2"].to_numpy(), "people": frame["people"].to_numpy()}
    ).groupby("use", as_index=False).sum()
    grouped["use"] = grouped["use"].where(grouped["use"] != "\0", None)
    by_use = grouped.sort_values(["floor_area_m2", "buildings"], ascending=False).reset_index(drop=True)
    totals = {
        "buildings": int(len(frame)),
        "footprint_m2": float(frame["footprint_m2"].sum()),
        "floor_area_m2": float(frame["floor_area_m2"].sum()),
        "people": float(result.totals.get("people", 0.0)),
    }
    return BuildingsInArea(
        area_m2=result.area_m2, buildings=frame.to_crs(4326), by_use=by_use, totals=totals,
        by_division=result.by_division, people_source=result.people_source, metric_crs=result.metric_crs,
    )


def _run_at_point(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    point = inputs.get("point")
    frame = building_at_point(store, point, inputs.get("crs"))
    lonlat = to_point(point, inputs.get("crs"))
    summary = {"point": [lonlat.x, lonlat.y], "buildings": int(len(frame)), "fids": [int(v) for v in frame.index]}
    return {"features": feature_collection(frame), "summary": summary}


def _run_in_area(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    return buildings_in_area(store, inputs.get("area"), inputs.get("crs")).to_json()


_POINT_SUMMARY = {
    "type": "object",
    "required": ["point", "buildings"],
    "properties": {
        "point": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "the point, lon/lat"},
        "buildings": {"type": "integer", "minimum": 0},
        "fids": {"type": "array", "items": {"type": "integer"}},
    },
}
_USE_ROW = {
    "type": "object",
    "properties": {
        "use": {"type": ["string", "null"]}, "buildings": {"type": "integer"}, "footprint_m2": {"type": "number"},
        "floor_area_m2": {"type": "number"}, "people": {"type": "number"},
    },
}
_AREA_SUMMARY = {
    "type": "object",
    "required": ["area_m2", "totals", "by_use"],
    "properties": {
        "area_m2": {"type": "number"},
        "totals": {"type": "object", "properties": {k: {"type": "number"} for k in ("buildings", "footprint_m2", "floor_area_m2", "people")}},
        "by_use": {"type": "array", "items": _USE_ROW},
        "by_division": {"type": "array", "items": {"type": "object"}},
        "people_source": {"type": "string", "enum": ["floor_area", "population"]},
        "metric_crs": {"type": "string"},
    },
}

PROCESSES = (
    Process(
        id="building-at-point",
        title="Building at a point",
        description=(
            "The building(s) whose footprint covers the point, with every attribute, the parcel holding the "
            "building's centroid (parcel_id, land_use) and the finest administrative division holding it "
            "(district_code, district_name). No building there: an empty collection."
        ),
        inputs={"point": input_description("Point", "A GeoJSON Point in `crs`", POINT), "crs": CRS_INPUT},
        outputs={
            "features": output_description("Buildings", "The buildings at the point (lon/lat)", FEATURE_COLLECTION),
            "summary": output_description("Summary", "The point (lon/lat) and how many buildings cover it", _POINT_SUMMARY),
        },
        run=_run_at_point,
        domain="housing",
        keywords=("building", "建筑物", "parcel", "district", "spatial query"),
        example={"point": {"type": "Point", "coordinates": [24.944068, 60.170017]}},  # the demo city: Ateneum, Helsinki
    ),
    Process(
        id="buildings-in-area",
        title="Buildings in an area",
        description=(
            "Buildings whose footprint intersects the area (partly inside counts whole), each with footprint, "
            "floors counted (floors, else height / 3 m, else 1), floor area and estimated people; counts, "
            "footprint and floor area by use, by administrative division and in total. The area is limited "
            "like an impact analysis's ($CIM_IMPACT_MAX_KM2, default 500 km²)."
        ),
        inputs={"area": input_description("Area", "A GeoJSON Polygon or MultiPolygon in `crs`", AREA), "crs": CRS_INPUT},
        outputs={
            "features": output_description("Buildings", "The buildings in the area (lon/lat) with their floor area", FEATURE_COLLECTION),
            "summary": output_description("Summary", "Totals and floor area by use and by division", _AREA_SUMMARY),
        },
        run=_run_in_area,
        domain="housing",
        keywords=("building", "floor area", "建筑面积", "housing stock"),
        example={"area": {"type": "Polygon", "coordinates": [[[24.940, 60.168], [24.948, 60.168], [24.948, 60.172], [24.940, 60.172], [24.940, 60.168]]]}},
    ),
)
