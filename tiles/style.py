"""A MapLibre style (spec version 8) for the composite base map, from the layer catalog.

One source, ``basemap``, with the composite tileset's WebMercatorQuad tiles (pinned to the current
release); one style layer per vector layer, in the catalog's ``order``, with the layer's ``color``
and zoom range: polygons as fills with a darker outline, lines as lines, points as circles (radius
growing with the zoom). Lines whose tiles carry ``road_class`` (roads) get widths by class — major
roads widest and drawn on top, footways and paths thinnest — so a city map reads at street level.
The map opens on the centre of the data's extent at the zoom that fits it (a 1024 x 768 view).
Event warnings (a polygon layer with CAP ``severity``, the live ``warnings`` layer) come last, over
everything: a translucent fill, an outline and a label, coloured by warning colour
(tiles/warning_style.py).

When the release has raster layers, they come first (under the vector layers): imagery as a
``raster`` source and layer (PNG map tiles), a DEM as a ``raster-dem`` source of terrain-RGB tiles
(``dem``) drawn by a ``hillshade`` layer; the same source can drive MapLibre's 3D ``terrain``.
"""

from __future__ import annotations

import math
from typing import Any

from cim.store import LayerInfo
from cim.tms import WEB_MERCATOR, tile_matrix_sets
from tiles.documents import tile_url
from tiles.map_documents import map_tile_url
from tiles.map_tilesets import MapTileset
from tiles.raster_render import IMAGE, TERRAIN_RGB
from tiles.tilesets import COMPOSITE, Tileset
from tiles.warning_style import is_warning_layer, warning_layers

BACKGROUND = "#f8f6f2"
#: MapLibre hides a layer from ``maxzoom`` on (exclusive); the catalog's maxzoom is inclusive
STYLE_MAX_ZOOM = 24
#: the view the initial zoom fits the data's extent into (pixels)
FIT_VIEW = (1024, 768)
#: road classes (OSM ``highway`` values) by rank: line width and drawing order (highest on top)
ROAD_RANKS: dict[str, tuple[str, ...]] = {
    "major": ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"),
    "medium": ("secondary", "secondary_link", "tertiary", "tertiary_link"),
    "path": ("footway", "cycleway", "path", "steps", "pedestrian", "track", "bridleway", "corridor"),
}
#: line widths (px) of each rank (else: minor roads) at zooms 8, 12, 16, 20
ROAD_WIDTHS: dict[str, tuple[float, float, float, float]] = {
    "major": (1.0, 2.0, 7.0, 24.0),
    "medium": (0.6, 1.4, 5.0, 18.0),
    "minor": (0.3, 0.7, 3.0, 12.0),
    "path": (0.2, 0.3, 1.0, 3.0),
}
_WIDTH_ZOOMS = (8, 12, 16, 20)


def _darker(color: str, factor: float = 0.75) -> str:
    """``#rrggbb`` scaled towards black (outlines)."""
    value = color.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    try:
        rgb = [int(value[i : i + 2], 16) for i in (0, 2, 4)]
    except ValueError:
        return color
    return "#" + "".join(f"{int(c * factor):02x}" for c in rgb)


def _by_rank(values: dict[str, Any], default: Any) -> list[Any]:
    """``["match", ["get", "road_class"], [classes...], value, ..., default]`` over :data:`ROAD_RANKS`."""
    expr: list[Any] = ["match", ["get", "road_class"]]
    for rank, classes in ROAD_RANKS.items():
        expr += [list(classes), values[rank]]
    return expr + [default]


def _line_paint(spec_color: str, by_class: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Layout and paint of a line layer; ``by_class``: widths and order by ``road_class``."""
    layout: dict[str, Any] = {"line-join": "round", "line-cap": "round"}
    if not by_class:
        return layout, {"line-color": spec_color,
                        "line-width": ["interpolate", ["linear"], ["zoom"], 8, 0.5, 16, 3]}
    width: list[Any] = ["interpolate", ["exponential", 1.5], ["zoom"]]
    for i, zoom in enumerate(_WIDTH_ZOOMS):
        width += [zoom, _by_rank({rank: w[i] for rank, w in ROAD_WIDTHS.items()}, ROAD_WIDTHS["minor"][i])]
    layout["line-sort-key"] = _by_rank({"major": 3, "medium": 2, "path": 0}, 1)
    return layout, {"line-color": spec_color, "line-width": width}


def _fit_zoom(bbox: tuple[float, float, float, float], low: int, high: int) -> float:
    """The MapLibre zoom (a 512-pixel world at zoom 0) at which ``bbox`` (CRS84) fills
    :data:`FIT_VIEW`, within ``low..high``."""

    def mercator_y(lat: float) -> float:  # in "degrees" of the x axis
        lat = max(-85.0511287798066, min(85.0511287798066, lat))
        return math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))

    spans = (bbox[2] - bbox[0], mercator_y(bbox[3]) - mercator_y(bbox[1]))
    zooms = [math.log2(view * 360.0 / (512.0 * span)) for view, span in zip(FIT_VIEW, spans) if span > 0]
    zoom = min(zooms) if zooms else float(high)
    return round(max(low, min(high, zoom)), 2)


def _style_layers(ts: Tileset) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = [{"id": "background", "type": "background", "paint": {"background-color": BACKGROUND}}]
    on_top: list[dict[str, Any]] = []  # event warnings: over everything (tiles/warning_style.py)
    for info in ts.layers:  # already in drawing order
        spec = info.spec
        if is_warning_layer(spec):
            on_top += warning_layers(spec, COMPOSITE, info.name, min(spec.maxzoom + 1, STYLE_MAX_ZOOM))
            continue
        common = {
            "source": COMPOSITE,
            "source-layer": info.name,
            "minzoom": spec.minzoom,
            "maxzoom": min(spec.maxzoom + 1, STYLE_MAX_ZOOM),
            "metadata": {"cim:title": spec.title, "cim:order": spec.order},
        }
        kind = spec.geometry_type or ""
        if kind.endswith("Polygon") and spec.outline:  # boundaries: what lies inside stays visible
            layers.append(
                {"id": info.name, "type": "fill", **common,
                 "paint": {"fill-color": spec.color, "fill-opacity": 0.06, "fill-outline-color": spec.color}}
            )
        elif kind.endswith("Polygon"):
            layers.append(
                {"id": info.name, "type": "fill", **common,
                 "paint": {"fill-color": spec.color, "fill-outline-color": _darker(spec.color)}}
            )
        elif kind.endswith("LineString"):
            layout, paint = _line_paint(spec.color, "road_class" in spec.tile_attributes)
            layers.append({"id": info.name, "type": "line", **common, "layout": layout, "paint": paint})
        else:
            layers.append(
                {"id": info.name, "type": "circle", **common,
                 "paint": {"circle-color": spec.color,
                           "circle-radius": ["interpolate", ["linear"], ["zoom"], 12, 1.5, 16, 3, 20, 6],
                           "circle-stroke-color": "#ffffff",
                           "circle-stroke-width": ["interpolate", ["linear"], ["zoom"], 12, 0.5, 16, 1]}}
            )
    return layers + on_top


def _raster_sources(rasters: tuple[LayerInfo, ...], base: str, release: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Sources and style layers of the raster layers (in drawing order)."""
    tms = tile_matrix_sets()[WEB_MERCATOR]
    sources: dict[str, Any] = {}
    layers: list[dict[str, Any]] = []
    for info in rasters:
        ts = MapTileset(info)
        zooms = ts.zooms(tms)
        common = {"tileSize": 256, "minzoom": zooms.start, "maxzoom": zooms.stop - 1,
                  "bounds": list(info.bbox or (-180.0, -85.0511287798066, 180.0, 85.0511287798066))}
        metadata = {"cim:title": info.spec.title, "cim:order": info.spec.order}
        if info.spec.raster == "elevation":
            sources[info.name] = {"type": "raster-dem", "encoding": "mapbox",
                                  "tiles": [map_tile_url(base, ts, TERRAIN_RGB, "png", release)], **common}
            layers.append({"id": f"{info.name}-hillshade", "type": "hillshade", "source": info.name,
                           "metadata": metadata, "paint": {"hillshade-exaggeration": 0.5}})
        else:
            sources[info.name] = {"type": "raster", "tiles": [map_tile_url(base, ts, IMAGE, "png", release)], **common}
            layers.append({"id": info.name, "type": "raster", "source": info.name, "metadata": metadata})
    return sources, layers


def basemap_style(ts: Tileset, base: str, release: int, rasters: tuple[LayerInfo, ...] = ()) -> dict[str, Any]:
    """The style JSON for the composite tileset ``ts`` (under it the raster layers ``rasters``)."""
    tms = tile_matrix_sets()[WEB_MERCATOR]
    zooms = ts.zooms(tms)
    bbox = ts.bbox or (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
    source = {
        "type": "vector",
        "tiles": [tile_url(base, ts, release)],
        "minzoom": zooms.start,
        "maxzoom": max(zooms.start, ts.maxzoom(tms)),
        "bounds": list(bbox),
        "attribution": "CIM base map",
    }
    raster_sources, raster_layers = _raster_sources(tuple(rasters), base, release)
    vector = _style_layers(ts)
    return {
        "version": 8,
        "name": "CIM base map",
        "metadata": {"cim:release": release},
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2],
        "zoom": _fit_zoom(bbox, zooms.start, 16) if ts.bbox else 0,
        "sources": {**raster_sources, COMPOSITE: source},
        "layers": vector[:1] + raster_layers + vector[1:],  # background, rasters, vector layers
    }
