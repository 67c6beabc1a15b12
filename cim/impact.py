"""Impact analysis: what lies inside a warning's area (or any polygon) — buildings, floor area, people,
POIs by category, parcels, road length by class — in total and by administrative division.

Definitions (docs/warnings/impact.md):

- a building, POI or parcel is *inside* when its geometry intersects the area (PostGIS/DuckDB
  ``ST_Intersects``: a footprint partly inside counts whole — a warning concerns the whole building);
- floor area = footprint area (m², in the metric CRS of :func:`cim.impact_area.metric_crs`) × floors;
  floors = ``floors`` when > 0, else round(``height_m`` / 3 m) (at least 1), else 1;
- people = floor area × persons per m² by use (cim/impact_people.py), or, when the store has a
  ``population`` layer, the sum of its ``population`` field: points inside count whole, polygons by
  the share of their area inside (areal weighting);
- roads: only the parts inside count, in metres;
- divisions: the finest ``level`` of ``admin_divisions`` among the divisions the area overlaps; a
  building, POI or parcel goes to the division holding its centroid, a road's length is split by
  intersection; what falls in no division goes to the row with code ``None``.

Reads go through the :class:`cim.store.Store` contract only (``read_frame`` by bbox), so it works on
every backend. Missing layers are listed in ``Impact.absent``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from cim.crs import parse_crs
from cim.errors import BadInput
from cim.impact_area import area_crs as to_crs
from cim.impact_area import max_area_km2 as max_km2
from cim.impact_area import metric_crs, reproject, to_polygon
from cim.impact_people import people, use_class
from cim.impact_people import persons_per_m2 as rates_in_force
from cim.store import Store

STOREY_HEIGHT_M = 3.0
#: the layers an impact reads (population is optional and never reported absent)
LAYERS = ("buildings", "pois", "parcels", "roads", "admin_divisions")
LISTS = ("buildings", "pois", "parcels", "roads")
DIVISION_COLUMNS = ["code", "name", "level", "buildings", "floor_area_m2", "people", "parcels", "pois", "road_length_m"]
CRS84 = parse_crs("OGC:CRS84")
#: admin_divisions levels, coarsest first (layers/catalog/admin_divisions.py; cim never imports layers)
DIVISION_LEVELS = ("province", "city", "district", "street")


@dataclass
class Impact:
    """What :func:`impact` found; frames are empty (never None) for absent layers."""

    area_m2: float
    totals: dict[str, Any]
    by_division: pd.DataFrame
    pois_by_category: pd.DataFrame
    roads_by_class: pd.DataFrame
    division_level: str | None
    people_source: str  # "population" (the population layer) or "floor_area" (floor area × rates)
    persons_per_m2: dict[str, float]
    metric_crs: str
    absent: tuple[str, ...] = ()
    #: the features inside with their computed values, in the storage CRS (only when ``lists``)
    lists: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)

    def to_json(self, lists: Iterable[str] = ()) -> dict[str, Any]:
        """The summary as JSON-ready values; ``lists`` names the GeoJSON FeatureCollections (CRS84) to add."""
        out: dict[str, Any] = {
            "area_m2": self.area_m2,
            "totals": self.totals,
            "people_source": self.people_source,
            "persons_per_m2": self.persons_per_m2,
            "division_level": self.division_level,
            "by_division": _records(self.by_division),
            "pois_by_category": _records(self.pois_by_category),
            "roads_by_class": _records(self.roads_by_class),
            "absent": list(self.absent),
            "metric_crs": self.metric_crs,
        }
        wanted = [name for name in lists if name in self.lists]
        if wanted:
            out["lists"] = {name: _feature_collection(self.lists[name]) for name in wanted}
        return out


class _Area:
    """The area in each CRS it is needed in (cached), prepared for predicates."""

    def __init__(self, lonlat: BaseGeometry, metric: CRS) -> None:
        self.lonlat = lonlat
        self.metric = metric
        self._by_srid: dict[int, BaseGeometry] = {}

    def in_srid(self, srid: int) -> BaseGeometry:
        if srid not in self._by_srid:
            geom = reproject(self.lonlat, CRS84, parse_crs(srid))
            shapely.prepare(geom)
            self._by_srid[srid] = geom
        return self._by_srid[srid]

    def to_metric(self, geoms: np.ndarray, srid: int) -> np.ndarray:
        return gpd.GeoSeries(geoms, crs=f"EPSG:{srid}").to_crs(self.metric).to_numpy()


def impact(
    store: Store,
    area: Any,
    *,
    area_crs: str | int | CRS = 4326,
    persons_per_m2: Mapping[str, float] | None = None,
    lists: bool | Iterable[str] = False,
    max_area_km2: float | None = None,
) -> Impact:
    """What lies inside ``area`` (a shapely/GeoJSON/WKT Polygon or MultiPolygon in ``area_crs``, x/y
    order) in the store's current release. BadInput for an empty, invalid or too large polygon
    (> ``max_area_km2``, default ``$CIM_IMPACT_MAX_KM2`` or 500) or one outside the city."""
    wanted = set(LISTS if lists is True else (lists or ()))
    if unknown := wanted - set(LISTS):
        raise BadInput(f"unknown list(s) {', '.join(sorted(unknown))}: choose from {', '.join(LISTS)}")
    rates = rates_in_force(persons_per_m2)
    infos = {info.name: info for info in store.layers() if info.spec.kind == "vector"}
    lonlat = reproject(to_polygon(area), to_crs(area_crs), CRS84)
    minx, miny, maxx, maxy = lonlat.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise BadInput("the area lies outside longitude -180..180 / latitude -90..90: check area_crs and the axis order (x = longitude)")
    storage = parse_crs(next((infos[n].srid for n in LAYERS if n in infos), 4326))
    centre = lonlat.centroid
    metric = metric_crs(storage, (centre.x, centre.y))
    region = _Area(lonlat, metric)
    area_m2 = float(shapely.area(reproject(lonlat, CRS84, metric)))
    limit = max_km2(max_area_km2)
    if area_m2 > limit * 1e6:
        raise BadInput(f"the area is {area_m2 / 1e6:.1f} km², larger than the {limit:g} km² an impact analysis covers")
    _check_in_city(lonlat, infos)

    divisions = _divisions(store, infos, region)
    totals: dict[str, Any] = {"area_m2": area_m2}
    columns: dict[str, pd.Series] = {}
    found: dict[str, gpd.GeoDataFrame] = {}

    buildings = _inside(store, infos, "buildings", region)
    if buildings is not None:
        srid = infos["buildings"].srid
        buildings["footprint_m2"] = shapely.area(region.to_metric(buildings.geometry.to_numpy(), srid))
        buildings["floors_used"] = _floors(buildings)
        buildings["floor_area_m2"] = buildings["footprint_m2"] * buildings["floors_used"]
        buildings["use_class"] = use_class(buildings["use"])
        buildings["people"] = people(buildings["floor_area_m2"], buildings["use_class"], rates)
        buildings["division_code"] = _assign(divisions, shapely.centroid(buildings.geometry.to_numpy()))
        totals.update(buildings=len(buildings), floor_area_m2=float(buildings["floor_area_m2"].sum()))
        grouped = buildings.groupby("division_code", dropna=False)
        columns.update(buildings=grouped.size(), floor_area_m2=grouped["floor_area_m2"].sum(), people=grouped["people"].sum())
        totals["people"] = float(buildings["people"].sum())
        found["buildings"] = buildings
    people_source = "floor_area"
    if "population" in infos:
        people_source = "population"
        by_division, total = _population(store, infos, region, divisions)
        totals["people"] = total
        columns["people"] = by_division

    pois = _inside(store, infos, "pois", region)
    if pois is not None:
        pois["division_code"] = _assign(divisions, shapely.centroid(pois.geometry.to_numpy()))
        totals["pois"] = len(pois)
        columns["pois"] = pois.groupby("division_code", dropna=False).size()
        found["pois"] = pois
    parcels = _inside(store, infos, "parcels", region)
    if parcels is not None:
        inside = shapely.intersection(parcels.geometry.to_numpy(), region.in_srid(infos["parcels"].srid))
        parcels["area_inside_m2"] = shapely.area(region.to_metric(inside, infos["parcels"].srid))
        parcels["division_code"] = _assign(divisions, shapely.centroid(parcels.geometry.to_numpy()))
        totals.update(parcels=len(parcels), parcel_area_inside_m2=float(parcels["area_inside_m2"].sum()))
        columns["parcels"] = parcels.groupby("division_code", dropna=False).size()
        found["parcels"] = parcels
    roads = _inside(store, infos, "roads", region)
    if roads is not None:
        srid = infos["roads"].srid
        parts = shapely.intersection(roads.geometry.to_numpy(), region.in_srid(srid))
        roads = roads.set_geometry(gpd.GeoSeries(parts, index=roads.index, crs=roads.crs))
        roads["length_m"] = shapely.length(region.to_metric(parts, srid))
        totals["road_length_m"] = float(roads["length_m"].sum())
        columns["road_length_m"] = _road_length_by_division(roads, divisions, region, srid)
        found["roads"] = roads

    for name in ("buildings", "floor_area_m2", "people", "pois", "parcels", "parcel_area_inside_m2", "road_length_m"):
        totals.setdefault(name, 0 if name in ("buildings", "pois", "parcels") else 0.0)
    return Impact(
        area_m2=area_m2,
        totals=totals,
        by_division=_division_table(divisions, columns),
        pois_by_category=_tally(pois, "category", "pois", None),
        roads_by_class=_tally(roads, "road_class", "length_m", "length_m"),
        division_level=divisions.attrs.get("level") if divisions is not None else None,
        people_source=people_source,
        persons_per_m2=rates,
        metric_crs=metric.to_string(),
        absent=tuple(name for name in LAYERS if name not in infos),
        lists={name: frame for name, frame in found.items() if name in wanted},
    )


def _check_in_city(lonlat: BaseGeometry, infos: Mapping[str, Any]) -> None:
    boxes = [info.bbox for name, info in infos.items() if info.bbox is not None and not info.spec.live]
    if boxes and not any(lonlat.intersects(shapely.box(*box)) for box in boxes):
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        raise BadInput(
            f"the area lies outside the city (its layers cover longitude {x0:.4f}..{x1:.4f}, latitude {y0:.4f}..{y1:.4f})"
        )


def _inside(store: Store, infos: Mapping[str, Any], layer: str, region: _Area) -> gpd.GeoDataFrame | None:
    """The features of ``layer`` whose geometry intersects the area (None: no such layer)."""
    if layer not in infos:
        return None
    srid = infos[layer].srid
    geom = region.in_srid(srid)
    frame = store.read_frame(layer, bbox=tuple(geom.bounds))
    mask = shapely.intersects(frame.geometry.to_numpy(), geom)
    return frame[mask].copy()


def _floors(buildings: pd.DataFrame) -> pd.Series:
    floors = pd.to_numeric(buildings["floors"], errors="coerce").astype(float)
    height = pd.to_numeric(buildings["height_m"], errors="coerce").astype(float)
    from_height = np.maximum(np.round(height / STOREY_HEIGHT_M), 1.0)
    used = floors.where(floors > 0, from_height.where(height > 0))
    return used.fillna(1.0)


def _divisions(store: Store, infos: Mapping[str, Any], region: _Area) -> gpd.GeoDataFrame | None:
    """The divisions of the finest level present that overlap the area (more than their boundary)."""
    frame = _inside(store, infos, "admin_divisions", region)
    if frame is None:
        return None
    frame = frame[~shapely.touches(frame.geometry.to_numpy(), region.in_srid(infos["admin_divisions"].srid))]
    levels = [level for level in DIVISION_LEVELS if (frame["level"] == level).any()]
    if levels:
        frame = frame[frame["level"] == levels[-1]]
    frame = frame.copy()
    frame.attrs["level"] = levels[-1] if levels else None
    return frame


def _assign(divisions: gpd.GeoDataFrame | None, points: np.ndarray) -> np.ndarray:
    """The code of the division holding each point (None: none, or no division layer)."""
    codes = np.full(len(points), None, dtype=object)
    if divisions is not None and len(divisions) and len(points):
        tree = shapely.STRtree(divisions.geometry.to_numpy())
        point_idx, div_idx = tree.query(points, predicate="intersects")
        first = pd.Series(div_idx, index=point_idx)
        first = first[~first.index.duplicated()]
        codes[first.index.to_numpy()] = divisions["code"].to_numpy()[first.to_numpy()]
    return codes


def _road_length_by_division(roads: gpd.GeoDataFrame, divisions: gpd.GeoDataFrame | None, region: _Area, srid: int) -> pd.Series:
    total = float(roads["length_m"].sum())
    if divisions is None or not len(divisions) or not len(roads):
        return pd.Series({None: total}, dtype=float)
    parts = roads.geometry.to_numpy()
    div_geoms = divisions.geometry.to_numpy()
    part_idx, div_idx = shapely.STRtree(div_geoms).query(parts, predicate="intersects")
    pieces = shapely.intersection(parts[part_idx], div_geoms[div_idx])
    lengths = shapely.length(region.to_metric(pieces, srid))
    by_code = pd.Series(lengths).groupby(divisions["code"].to_numpy()[div_idx]).sum()
    rest = total - float(by_code.sum())
    if rest > max(1e-6 * total, 1e-3):
        by_code[None] = rest
    return by_code


def _population(store: Store, infos: Mapping[str, Any], region: _Area, divisions: gpd.GeoDataFrame | None) -> tuple[pd.Series, float]:
    """People from the ``population`` layer: points inside whole, polygons by their area share inside."""
    srid = infos["population"].srid
    frame = _inside(store, infos, "population", region)
    assert frame is not None
    values = pd.to_numeric(frame.get("population"), errors="coerce").fillna(0.0).astype(float).to_numpy()
    geoms = frame.geometry.to_numpy()
    inside = shapely.intersection(geoms, region.in_srid(srid))
    whole = shapely.area(region.to_metric(geoms, srid))
    part = shapely.area(region.to_metric(inside, srid))
    share = np.where(whole > 0, part / np.where(whole > 0, whole, 1.0), 1.0)
    counted = pd.Series(values * share)
    codes = _assign(divisions, shapely.centroid(inside))
    return counted.groupby(codes, dropna=False).sum(), float(counted.sum())


def _division_table(divisions: gpd.GeoDataFrame | None, columns: Mapping[str, pd.Series]) -> pd.DataFrame:
    if divisions is None:
        return pd.DataFrame(columns=DIVISION_COLUMNS)
    table = pd.DataFrame(divisions[["code", "name", "level"]]).sort_values("code").reset_index(drop=True)
    keys = [*table["code"].tolist()]
    if any(None in series.index or any(pd.isna(k) for k in series.index) for series in columns.values()):
        keys.append(None)
        table = pd.concat([table, pd.DataFrame([{"code": None, "name": "(no division)", "level": None}])], ignore_index=True)
    for name in DIVISION_COLUMNS[3:]:
        series = columns.get(name, pd.Series(dtype=float))
        lookup = {(None if _missing(k) else k): v for k, v in series.items()}
        table[name] = [lookup.get(key, 0) for key in keys]
        if name in ("buildings", "parcels", "pois"):
            table[name] = table[name].astype(int)
        else:
            table[name] = table[name].astype(float)
    return table


def _tally(frame: gpd.GeoDataFrame | None, by: str, name: str, summed: str | None) -> pd.DataFrame:
    if frame is None or not len(frame):
        return pd.DataFrame(columns=[by, name])
    keys = frame[by].astype("string").fillna("(none)")
    grouped = frame.groupby(keys.to_numpy())
    series = grouped[summed].sum() if summed else grouped.size()
    table = series.rename(name).rename_axis(by).reset_index()
    return table.sort_values([name, by], ascending=[False, True]).reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if _missing(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()} for row in frame.to_dict("records")]


def _feature_collection(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    import json

    out = frame.to_crs(4326) if frame.crs is not None else frame
    return json.loads(out.to_json(na="null", drop_id=False, to_wgs84=False))
