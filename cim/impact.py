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
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from cim.crs import parse_crs, transformer
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
#: the properties an impact reads of each layer (all of them for a layer whose list is asked for)
NEEDED = {
    "buildings": ("use", "floors", "height_m"),
    "pois": ("category",),
    "parcels": (),
    "roads": ("road_class",),
    "admin_divisions": ("code", "name", "level"),
    "population": ("population",),
}
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
        t = transformer(parse_crs(srid), self.metric)  # cached by (source, target)
        return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


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

    reads = _read_all(store, infos, region, wanted)
    divisions = _divisions(reads.get("admin_divisions"), region.in_srid(infos["admin_divisions"].srid) if "admin_divisions" in infos else None)
    totals: dict[str, Any] = {"area_m2": area_m2}
    columns: dict[str, dict[Any, float]] = {}
    found: dict[str, gpd.GeoDataFrame] = {}

    read = reads.get("buildings")
    if read is not None:
        frame, geoms = read
        footprint = shapely.area(region.to_metric(geoms, infos["buildings"].srid))
        floors = _floors(frame["floors"].to_numpy(), frame["height_m"].to_numpy())
        floor_area = footprint * floors
        classes = use_class(frame["use"].to_numpy())
        persons = people(floor_area, classes, rates)
        codes = _assign(divisions, shapely.centroid(geoms))
        columns.update(_by_code(codes, buildings=np.ones(len(geoms)), floor_area_m2=floor_area, people=persons))
        totals.update(buildings=len(geoms), floor_area_m2=float(floor_area.sum()), people=float(persons.sum()))
        if "buildings" in wanted:
            found["buildings"] = frame.assign(footprint_m2=footprint, floors_used=floors, floor_area_m2=floor_area,
                                              use_class=classes, people=persons, division_code=codes)
    people_source = "floor_area"
    if "population" in infos:
        people_source = "population"
        columns["people"], totals["people"] = _population(reads["population"], infos["population"].srid, region, divisions)

    pois = None
    read = reads.get("pois")
    if read is not None:
        pois, geoms = read
        codes = _assign(divisions, shapely.centroid(geoms))
        totals["pois"] = len(geoms)
        columns.update(_by_code(codes, pois=np.ones(len(geoms))))
        if "pois" in wanted:
            found["pois"] = pois.assign(division_code=codes)
    read = reads.get("parcels")
    if read is not None:
        frame, geoms = read
        srid = infos["parcels"].srid
        inside = shapely.area(region.to_metric(shapely.intersection(geoms, region.in_srid(srid)), srid))
        codes = _assign(divisions, shapely.centroid(geoms))
        totals.update(parcels=len(geoms), parcel_area_inside_m2=float(inside.sum()))
        columns.update(_by_code(codes, parcels=np.ones(len(geoms))))
        if "parcels" in wanted:
            found["parcels"] = frame.assign(area_inside_m2=inside, division_code=codes)
    roads = None
    read = reads.get("roads")
    if read is not None:
        frame, geoms = read
        srid = infos["roads"].srid
        parts = shapely.intersection(geoms, region.in_srid(srid))
        lengths = shapely.length(region.to_metric(parts, srid))
        roads = frame.assign(length_m=lengths)
        totals["road_length_m"] = float(lengths.sum())
        columns["road_length_m"] = _road_length_by_division(parts, lengths, divisions, region, srid)
        if "roads" in wanted:
            found["roads"] = roads.set_geometry(gpd.GeoSeries(parts, index=frame.index, crs=frame.crs))

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
        metric_crs=metric.srs,  # (to_string() looks the CRS up in the EPSG database: ~200 ms)
        absent=tuple(name for name in LAYERS if name not in infos),
        lists=found,
    )


def _check_in_city(lonlat: BaseGeometry, infos: Mapping[str, Any]) -> None:
    boxes = [info.bbox for name, info in infos.items() if info.bbox is not None and not info.spec.live]
    if boxes and not any(lonlat.intersects(shapely.box(*box)) for box in boxes):
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        raise BadInput(
            f"the area lies outside the city (its layers cover longitude {x0:.4f}..{x1:.4f}, latitude {y0:.4f}..{y1:.4f})"
        )


def _read_all(store: Store, infos: Mapping[str, Any], region: _Area, wanted: set[str]) -> dict[str, tuple[gpd.GeoDataFrame, np.ndarray]]:
    """:func:`_inside` of every layer an impact reads, the reads run at once (each waits on the database)."""
    names = [name for name in (*LAYERS, "population") if name in infos]
    for name in names:
        region.in_srid(infos[name].srid)  # fill the cache before the threads read it
    futures = {name: _pool().submit(_inside, store, infos, name, region, None if name in wanted else NEEDED[name]) for name in names}
    return {name: future.result() for name, future in futures.items()}  # type: ignore[misc]


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=6, thread_name_prefix="cim-impact")


def _inside(store: Store, infos: Mapping[str, Any], layer: str, region: _Area, columns: tuple[str, ...] | None) -> tuple[gpd.GeoDataFrame, np.ndarray] | None:
    """The features of ``layer`` whose geometry intersects the area, and their geometries as an
    array (None: no such layer)."""
    if layer not in infos:
        return None
    geom = region.in_srid(infos[layer].srid)
    frame = store.read_frame(layer, bbox=tuple(geom.bounds), columns=columns)
    geoms = frame.geometry.to_numpy()
    mask = shapely.intersects(geoms, geom)
    return frame[mask], geoms[mask]


def _by_code(codes: np.ndarray, **values: np.ndarray) -> dict[str, dict[Any, float]]:
    """Each of ``values`` summed by division code (None: in no division)."""
    keys = np.array(["" if c is None else c for c in codes], dtype=object)
    if not len(keys):
        return {name: {} for name in values}
    unique, inverse = np.unique(keys.astype(str), return_inverse=True)
    out = {}
    for name, array in values.items():
        sums = np.bincount(inverse, weights=np.asarray(array, dtype=float), minlength=len(unique))
        out[name] = {(None if key == "" else key): float(v) for key, v in zip(unique, sums)}
    return out


def _floors(floors: np.ndarray, height_m: np.ndarray) -> np.ndarray:
    """``floors`` when > 0, else round(height / 3 m) (at least 1) when height > 0, else 1."""
    floors = pd.to_numeric(pd.Series(floors), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    height = pd.to_numeric(pd.Series(height_m), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        from_height = np.where(height > 0, np.maximum(np.round(height / STOREY_HEIGHT_M), 1.0), 1.0)
        return np.where(floors > 0, floors, from_height)


def _divisions(read: tuple[gpd.GeoDataFrame, np.ndarray] | None, area: BaseGeometry | None) -> gpd.GeoDataFrame | None:
    """The divisions of the finest level present that overlap the area (more than their boundary)."""
    if read is None:
        return None
    frame, geoms = read
    frame = frame[~shapely.touches(geoms, area)]
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


def _road_length_by_division(parts: np.ndarray, lengths: np.ndarray, divisions: gpd.GeoDataFrame | None,
                              region: _Area, srid: int) -> dict[Any, float]:
    """Road length (m) inside the area by division: each part cut by each division it crosses."""
    total = float(lengths.sum())
    if divisions is None or not len(divisions) or not len(parts):
        return {None: total} if total else {}
    div_geoms = divisions.geometry.to_numpy()
    part_idx, div_idx = shapely.STRtree(div_geoms).query(parts, predicate="intersects")
    pieces = shapely.length(region.to_metric(shapely.intersection(parts[part_idx], div_geoms[div_idx]), srid))
    out = _by_code(divisions["code"].to_numpy()[div_idx], length=pieces)["length"]
    rest = total - sum(out.values())
    if rest > max(1e-6 * total, 1e-3):
        out[None] = out.get(None, 0.0) + rest
    return out


def _population(read: tuple[gpd.GeoDataFrame, np.ndarray], srid: int, region: _Area, divisions: gpd.GeoDataFrame | None) -> tuple[dict[Any, float], float]:
    """People from the ``population`` layer: points inside whole, polygons by their area share inside."""
    frame, geoms = read
    if "population" not in frame.columns:
        raise BadInput("the population layer has no population field (persons per feature): impact cannot count people")
    values = pd.to_numeric(frame["population"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    inside = shapely.intersection(geoms, region.in_srid(srid))
    whole = shapely.area(region.to_metric(geoms, srid))
    part = shapely.area(region.to_metric(inside, srid))
    share = np.where(whole > 0, part / np.where(whole > 0, whole, 1.0), 1.0)
    counted = values * share
    codes = _assign(divisions, shapely.centroid(inside))
    return _by_code(codes, people=counted)["people"], float(counted.sum())


def _division_table(divisions: gpd.GeoDataFrame | None, columns: Mapping[str, Mapping[Any, float]]) -> pd.DataFrame:
    if divisions is None:
        return pd.DataFrame(columns=DIVISION_COLUMNS)
    rows = sorted(zip(divisions["code"], divisions["name"], divisions["level"]), key=lambda row: str(row[0]))
    if any(values.get(None) for values in columns.values()):
        rows.append((None, "(no division)", None))
    table = pd.DataFrame(rows, columns=DIVISION_COLUMNS[:3])
    for name in DIVISION_COLUMNS[3:]:
        values = columns.get(name, {})
        numbers = [values.get(code, 0.0) for code in table["code"]]
        table[name] = np.asarray(numbers, dtype=int if name in ("buildings", "parcels", "pois") else float)
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
