"""Drawing a composite base-map vector tile (MVT) as an RGBA raster tile, like the MapLibre style.

The composite tile the vector engine made (same generalisation, byte ceiling and cache) is decoded
with ``mapbox_vector_tile`` and its layers drawn in the catalog's ``order`` (the order of
:func:`tiles.tilesets.composite`), mirroring tiles/style.py:

- polygons: filled with the layer's ``color`` and a one-pixel outline in a darker shade; boundary
  layers (``outline``) only tinted (opacity 0.06) with an outline in their colour; event warnings
  (tiles/warning_style.py) last, in their warning colour at 30 % with an outline;
- lines: the layer's colour, width by zoom as the style's (roads by ``road_class``: paths, minor,
  medium, major roads, the widest drawn last);
- points: small dots from zoom 14 on.

Drawing: ``rasterio.features.rasterize`` at twice the tile size (2 x 2 supersampling: edges come
out anti-aliased when the canvas is averaged down); lines are rasterised one pixel wide and widened
by a morphological dilation (round joins and caps, as the style's). Pixels nothing covers stay
transparent (the background of the style is left to the client: the globe, an imagery layer).
The 256-pixel tile at tile matrix ``z`` shows what MapLibre shows at zoom ``z - 1`` (512-pixel
tiles), so widths are those of the style at ``z - 1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import mapbox_vector_tile
import numpy as np
from affine import Affine
from rasterio.features import rasterize

from cim.store import LayerInfo
from tiles.style import _WIDTH_ZOOMS, ROAD_RANKS, ROAD_WIDTHS, _darker
from tiles.warning_style import (
    COLOURS,
    FILL_OPACITY,
    NO_COLOUR,
    SEVERITY_COLOURS,
    is_warning_layer,
)

TILE_SIZE = 256
#: supersampling factor (per axis)
SCALE = 2
#: boundary layers' fill opacity (the style's)
OUTLINE_FILL_OPACITY = 0.06
#: dots of point layers from this zoom on (radius in pixels at 256 px tiles)
POINT_MIN_ZOOM = 14
POINT_RADIUS = 1.5
_RANK_OF = {cls: rank for rank, classes in ROAD_RANKS.items() for cls in classes}
#: road ranks from bottom to top (line-sort-key of the style)
_RANK_ORDER = ("path", "minor", "medium", "major")


@dataclass(frozen=True)
class Paint:
    """A layer's colour as RGB floats 0..1."""

    rgb: tuple[float, float, float]

    @classmethod
    def of(cls, color: str) -> Paint:
        value = color.lstrip("#")
        if len(value) == 3:
            value = "".join(c * 2 for c in value)
        try:
            return cls(tuple(int(value[i : i + 2], 16) / 255.0 for i in (0, 2, 4)))  # type: ignore[arg-type]
        except ValueError:
            return cls((0.5, 0.5, 0.5))


class Canvas:
    """A premultiplied RGBA float canvas at ``SCALE`` x the tile size; layers composited over it."""

    def __init__(self, size: int = TILE_SIZE, extent: int = 4096) -> None:
        self.size = size * SCALE
        self.rgba = np.zeros((4, self.size, self.size), dtype="float32")
        # MVT coordinates (0..extent, y down) → canvas pixels
        self.transform = Affine.scale(extent / self.size)

    def mask(self, geometries: Iterable[dict[str, Any]], all_touched: bool = False) -> np.ndarray:
        shapes = [(g, 1) for g in geometries]
        if not shapes:
            return np.zeros((self.size, self.size), dtype="uint8")
        return rasterize(shapes, out_shape=(self.size, self.size), transform=self.transform,
                         fill=0, all_touched=all_touched, dtype="uint8")

    def paint(self, coverage: np.ndarray, paint: Paint, opacity: float = 1.0) -> None:
        """Composite ``paint`` at ``opacity`` where ``coverage`` (0/1 or 0..1) is set (source over)."""
        alpha = coverage.astype("float32") * opacity
        if not alpha.any():
            return
        keep = 1.0 - alpha
        for band, value in enumerate(paint.rgb):
            self.rgba[band] = value * alpha + self.rgba[band] * keep
        self.rgba[3] = alpha + self.rgba[3] * keep

    def rgba8(self) -> np.ndarray:
        """The tile: (4, size, size) uint8, straight (not premultiplied) alpha, averaged down."""
        n = self.size // SCALE
        small = self.rgba.reshape(4, n, SCALE, n, SCALE).mean(axis=(2, 4))
        alpha = small[3]
        rgb = np.where(alpha > 0, small[:3] / np.maximum(alpha, 1e-6), 0.0)
        out = np.concatenate([rgb, alpha[np.newaxis]])
        return np.clip(np.round(out * 255), 0, 255).astype("uint8")


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` widened by ``radius`` pixels (an octagon: alternating cross and square steps)."""
    out = mask.astype(bool)
    for step in range(radius):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        if step % 2:
            grown[1:, 1:] |= out[:-1, :-1]
            grown[:-1, :-1] |= out[1:, 1:]
            grown[1:, :-1] |= out[:-1, 1:]
            grown[:-1, 1:] |= out[1:, :-1]
        out = grown
    return out


def _interpolate(zoom: float, stops: Sequence[tuple[float, float]], base: float = 1.0) -> float:
    """MapLibre's ``interpolate`` (linear, or exponential with ``base``) over ``stops``."""
    if zoom <= stops[0][0]:
        return stops[0][1]
    for (z0, v0), (z1, v1) in zip(stops, stops[1:]):
        if zoom <= z1:
            t = (zoom - z0) / (z1 - z0) if base == 1.0 else (base ** (zoom - z0) - 1) / (base ** (z1 - z0) - 1)
            return v0 + (v1 - v0) * t
    return stops[-1][1]


def road_width(rank: str, zoom: float) -> float:
    """Width in pixels (style pixels) of a road rank at a MapLibre zoom (tiles/style.py)."""
    return _interpolate(zoom, list(zip(_WIDTH_ZOOMS, ROAD_WIDTHS[rank])), 1.5)


def line_width(zoom: float) -> float:
    """Width of other lines (the style's 0.5 px at zoom 8 to 3 px at 16)."""
    return _interpolate(zoom, [(8, 0.5), (16, 3.0)])


class BasemapPainter:
    """Draws decoded MVT layers of the composite on a :class:`Canvas`."""

    def __init__(self, canvas: Canvas, zoom: int) -> None:
        self.canvas = canvas
        self.zoom = zoom
        self.style_zoom = zoom - 1  # 256-pixel tiles at z = MapLibre's 512-pixel tiles at z - 1

    def polygons(self, features: list[dict[str, Any]], paint: Paint, opacity: float, outline: Paint) -> None:
        geoms = [f["geometry"] for f in features]
        self.canvas.paint(self.canvas.mask(geoms), paint, opacity)
        rings = [_boundary(g) for g in geoms]
        self.canvas.paint(self.canvas.mask([r for r in rings if r is not None], all_touched=True), outline)

    def lines(self, features: list[dict[str, Any]], paint: Paint, width: float) -> None:
        """Lines ``width`` style pixels wide (thinner than a canvas pixel: fainter)."""
        pixels = width * SCALE  # canvas pixels
        mask = self.canvas.mask((f["geometry"] for f in features), all_touched=True)
        radius = max(0, int(round((pixels - 1) / 2)))
        coverage = dilate(mask, radius) if radius else mask.astype(bool)
        self.canvas.paint(coverage, paint, min(1.0, pixels))

    def roads(self, features: list[dict[str, Any]], paint: Paint) -> None:
        by_rank: dict[str, list[dict[str, Any]]] = {rank: [] for rank in _RANK_ORDER}
        for f in features:
            by_rank[_RANK_OF.get(str((f.get("properties") or {}).get("road_class")), "minor")].append(f)
        for rank in _RANK_ORDER:
            if by_rank[rank]:
                self.lines(by_rank[rank], paint, road_width(rank, self.style_zoom))

    def points(self, features: list[dict[str, Any]], paint: Paint) -> None:
        if self.zoom < POINT_MIN_ZOOM:
            return
        mask = self.canvas.mask((f["geometry"] for f in features), all_touched=True)
        self.canvas.paint(dilate(mask, int(round(POINT_RADIUS * SCALE))), paint)

    def warnings(self, features: list[dict[str, Any]]) -> None:
        by_colour: dict[str, list[dict[str, Any]]] = {}
        for f in features:
            props = f.get("properties") or {}
            colour = COLOURS.get(str(props.get("colour") or "")) or COLOURS.get(
                SEVERITY_COLOURS.get(str(props.get("severity")), ""), NO_COLOUR
            )
            by_colour.setdefault(colour, []).append(f)
        for colour, group in by_colour.items():
            self.polygons(group, Paint.of(colour), FILL_OPACITY, Paint.of(colour))

    def layer(self, info: LayerInfo, features: list[dict[str, Any]]) -> None:
        spec = info.spec
        kind = spec.geometry_type or ""
        colour = Paint.of(spec.color)
        if kind.endswith("Polygon") and spec.outline:
            self.polygons(features, colour, OUTLINE_FILL_OPACITY, colour)
        elif kind.endswith("Polygon"):
            self.polygons(features, colour, 1.0, Paint.of(_darker(spec.color)))
        elif kind.endswith("LineString"):
            if "road_class" in spec.tile_attributes:
                self.roads(features, colour)
            else:
                self.lines(features, colour, line_width(self.style_zoom))
        else:
            self.points(features, colour)


def _boundary(geometry: dict[str, Any]) -> dict[str, Any] | None:
    """The rings of a GeoJSON (Multi)Polygon as a MultiLineString."""
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        rings = list(coords)
    elif kind == "MultiPolygon":
        rings = [ring for polygon in coords for ring in polygon]
    else:
        return None
    rings = [r for r in rings if len(r) >= 2]
    return {"type": "MultiLineString", "coordinates": rings} if rings else None


def decode(mvt: bytes) -> dict[str, Any]:
    """Layers of an MVT tile, GeoJSON geometries in tile coordinates (y down)."""
    return mapbox_vector_tile.decode(mvt, default_options={"y_coord_down": True})


def draw_basemap(mvt: bytes, layers: Sequence[LayerInfo], zoom: int, size: int = TILE_SIZE) -> np.ndarray | None:
    """The RGBA tile (4, size, size) of the composite MVT ``mvt`` at tile matrix ``zoom`` (its
    layers drawn in the order of ``layers``, warnings last); None when nothing is drawn."""
    if not mvt:
        return None
    decoded = decode(mvt)
    extents = {layer.get("extent", 4096) for layer in decoded.values()} or {4096}
    canvas = Canvas(size, extent=max(extents))
    painter = BasemapPainter(canvas, zoom)
    on_top: list[tuple[LayerInfo, list[dict[str, Any]]]] = []
    for info in layers:
        features = (decoded.get(info.name) or {}).get("features") or []
        if not features:
            continue
        if is_warning_layer(info.spec):
            on_top.append((info, features))
            continue
        painter.layer(info, features)
    for _, features in on_top:
        painter.warnings(features)
    image = canvas.rgba8()
    return image if image[3].any() else None

