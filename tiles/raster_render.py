"""Rendering map tiles of a raster layer's COG with rio-tiler: hillshade, terrain-RGB / Terrarium
elevation, or the image itself, encoded as PNG, JPEG or WebP (GDAL's drivers, through rio-tiler).

rio-tiler reads the tile in the tile matrix set's CRS (any morecantile TileMatrixSet: WebMercatorQuad directly
from the EPSG:3857 COG and its overviews, WorldCRS84Quad and CGCS2000Quad warped on the fly) with
bilinear resampling — only the part of the tile the raster covers (:mod:`tiles.raster_window`). A tile with no valid pixel renders as ``b""`` (the route answers 204), except
in the height encodings, where it is a flat 0 m tile (see :func:`render_map_tile`).

- **hillshade**: Horn's 3 × 3 gradient on heights read with a one-pixel buffer (no seams between
  tiles), pixel sizes in ground metres at the tile's latitude, sun at azimuth 315°, altitude 45°;
  grey, nodata transparent (PNG/WebP).
- **terrain-rgb** (Mapbox): ``height = -10000 + (R·65536 + G·256 + B) · 0.1`` (0.1 m steps);
  **terrarium**: ``height = R·256 + G + B/256 - 32768``. Lossless PNG without alpha (browsers may
  premultiply alpha and destroy the encoded values): pixels without data encode 0 m.
- **image**: the bands as stored (grey or RGB), alpha from the COG's alpha band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from morecantile import Tile, TileMatrixSet
from rio_tiler.utils import render

from tiles.raster_window import read_tile

HILLSHADE = "hillshade"
TERRAIN_RGB = "terrain-rgb"
TERRARIUM = "terrarium"
IMAGE = "default"
#: driver options per output format
CREATION: dict[str, dict[str, str]] = {"PNG": {"ZLEVEL": "6"}, "JPEG": {"QUALITY": "85"}, "WEBP": {"QUALITY": "85"}}
SUN_AZIMUTH = 315.0
SUN_ALTITUDE = 45.0
METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON = 111_320.0


@dataclass(frozen=True)
class MapRequest:
    """One map tile: which COG, which tile matrix set and tile, which style, which output format."""

    path: str
    tms: TileMatrixSet
    tile: Tile
    style: str
    #: PNG, JPEG or WEBP
    fmt: str
    tile_size: int = 256


def render_map_tile(request: MapRequest) -> bytes:
    """The encoded tile, or b"" when it holds no valid pixel — except for the height encodings
    (terrain-RGB, Terrarium), which store missing pixels as 0 m: there a tile without data is a
    flat 0 m tile, since a raster-dem client (MapLibre) cannot use an empty answer ("dem dimension
    mismatch") and would leave a hole in the hillshade."""
    buffer = 1 if request.style == HILLSHADE else 0
    pixels = read_tile(request.path, request.tms, request.tile, request.tile_size, buffer)
    if pixels is None:
        return _no_data(request)
    data, mask = pixels.data, pixels.mask
    inner = mask[buffer : mask.shape[0] - buffer, buffer : mask.shape[1] - buffer] if buffer else mask
    if not inner.any():
        return _no_data(request)
    if request.style == HILLSHADE:
        shade = hillshade(data[0].astype("float64"), mask > 0, *_pixel_metres(request))
        return _encode(shade[np.newaxis], inner, request.fmt)
    if request.style in (TERRAIN_RGB, TERRARIUM):
        heights = np.where(mask > 0, data[0].astype("float64"), 0.0)
        rgb = terrain_rgb(heights) if request.style == TERRAIN_RGB else terrarium(heights)
        return render(rgb, img_format="PNG", **CREATION["PNG"])
    bands = data.astype("uint8") if data.dtype != np.uint8 else data
    return _encode(bands, mask, request.fmt)


def _no_data(request: MapRequest) -> bytes:
    """What a tile without any valid pixel is: b"" (204), or 0 m everywhere for height encodings."""
    if request.style not in (TERRAIN_RGB, TERRARIUM):
        return b""
    flat = np.zeros((request.tile_size, request.tile_size))
    rgb = terrain_rgb(flat) if request.style == TERRAIN_RGB else terrarium(flat)
    return render(rgb, img_format="PNG", **CREATION["PNG"])


def _encode(data: np.ndarray, mask: np.ndarray, fmt: str) -> bytes:
    if fmt == "JPEG":  # no alpha in JPEG: pixels without data are white
        data = np.where(mask[np.newaxis] > 0, data, 255).astype("uint8")
        return render(data, img_format="JPEG", **CREATION["JPEG"])
    return render(data, mask=mask, img_format=fmt, **CREATION[fmt])


def _pixel_metres(request: MapRequest) -> tuple[float, float]:
    """Ground width and height of one pixel of the tile, in metres, at its central latitude."""
    west, south, east, north = request.tms.bounds(request.tile)
    lat = math.radians((south + north) / 2)
    size = request.tile_size
    dx = (east - west) / size * METRES_PER_DEGREE_LON * max(math.cos(lat), 1e-6)
    dy = (north - south) / size * METRES_PER_DEGREE_LAT
    return dx, dy


def hillshade(heights: np.ndarray, valid: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Grey levels (uint8) of ``heights`` (rows north to south, with a one-pixel border that is
    consumed), lit from :data:`SUN_AZIMUTH` / :data:`SUN_ALTITUDE`."""
    z = np.where(valid, heights, np.nan)
    if np.isnan(z).any():
        z = np.where(np.isnan(z), np.nanmean(z) if valid.any() else 0.0, z)
    # Horn's method; x to the east, y to the north (rows run south, hence the sign)
    gx = ((z[:-2, 2:] + 2 * z[1:-1, 2:] + z[2:, 2:]) - (z[:-2, :-2] + 2 * z[1:-1, :-2] + z[2:, :-2])) / (8 * dx)
    gy = ((z[:-2, :-2] + 2 * z[:-2, 1:-1] + z[:-2, 2:]) - (z[2:, :-2] + 2 * z[2:, 1:-1] + z[2:, 2:])) / (8 * dy)
    azimuth, altitude = math.radians(SUN_AZIMUTH), math.radians(SUN_ALTITUDE)
    light = (math.sin(azimuth) * math.cos(altitude), math.cos(azimuth) * math.cos(altitude), math.sin(altitude))
    shade = (-gx * light[0] - gy * light[1] + light[2]) / np.sqrt(gx**2 + gy**2 + 1)
    # next to pixels without data the gradient is unknown: shade as flat ground (no false cliffs)
    v = valid
    whole = v[:-2, :-2] & v[:-2, 1:-1] & v[:-2, 2:] & v[1:-1, :-2] & v[1:-1, 2:] & v[2:, :-2] & v[2:, 1:-1] & v[2:, 2:]
    shade = np.where(whole & v[1:-1, 1:-1], shade, light[2])
    return np.clip(np.nan_to_num(shade * 255), 0, 255).astype("uint8")


def terrain_rgb(heights: np.ndarray) -> np.ndarray:
    """Mapbox terrain-RGB bands of ``heights`` (metres), 0.1 m steps."""
    value = np.clip(np.round((heights + 10000.0) * 10.0), 0, 256**3 - 1).astype("uint32")
    return np.stack([(value >> 16) & 255, (value >> 8) & 255, value & 255]).astype("uint8")


def terrarium(heights: np.ndarray) -> np.ndarray:
    """Terrarium bands of ``heights`` (metres), 1/256 m steps."""
    value = np.clip(heights + 32768.0, 0, 65535.996)
    red = np.floor(value / 256)
    green = np.floor(value % 256)
    blue = np.floor((value - np.floor(value)) * 256)
    return np.stack([red, green, blue]).astype("uint8")


def decode_terrain_rgb(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[i].astype("float64") for i in range(3))
    return -10000.0 + (r * 65536 + g * 256 + b) * 0.1


def decode_terrarium(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[i].astype("float64") for i in range(3))
    return r * 256 + g + b / 256 - 32768.0
