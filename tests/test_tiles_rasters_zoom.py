"""Map tiles of the test rasters at every zoom out to level 0 (regression: a low-zoom tile of the
300 × 300 px orthophoto took minutes, see docs/tiles.md "Low zoom levels"): each tile holds the
raster's pixels where the raster is — imagery colours, DEM heights, hillshade — and nothing
elsewhere; tiles away from the raster are empty (flat 0 m in terrain-RGB).

Renders straight from the COGs the build writes (``tiles.raster_render``, no store involved: the
store only hands the renderer a file path, tested on both stores in tests/test_tiles_rasters.py)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from morecantile import Tile
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from support.rasters import (
    BASE_M, BLUE, HILL, NODATA_BLOCK, PEAK_M, ORTHO_BOUNDS, ORTHO_SIZE, PIXEL_M, SIZE, dem_origin, elevation_at, raster_config,
)

from cim.build import load_config, prepare
from cim.tms import tile_matrix_sets
from tiles.raster_render import MapRequest, decode_terrain_rgb, render_map_tile

ZOOMS = range(0, 13)
#: from this level on a DEM tile pixel is small enough (150 m or less) to hold the height at its centre
POINT_ZOOM = 10
TMS_IDS = ["WebMercatorQuad", "WorldCRS84Quad"]
#: pixels whose centre is this close to the edge of the data may go either way (bilinear edges,
#: overview pixels): about two pixels of the coarsest overview
MARGIN_DEG = 0.001
MARGIN_M = 60.0
_TO_GK = Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
_TO_LONLAT = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)


@pytest.fixture(scope="module")
def cogs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The raster test city's COGs as the build stages them: {"dem": path, "imagery": path}."""
    prepared = prepare(load_config(raster_config(tmp_path_factory.mktemp("rasters-zoom"))))
    try:
        yield {layer.spec.name: str(layer.raster_path) for layer in prepared.draft.layers if layer.raster_path}
    finally:
        prepared.discard()


def render(path: str, tms_id: str, tile: Tile, style: str) -> bytes:
    return render_map_tile(MapRequest(path, tile_matrix_sets()[tms_id], tile, style, "PNG"))


def decode(data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(data) as memory, memory.open() as image:
            return image.read()


def pixel_lonlat(tms_id: str, tile: Tile) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat of the centres of the tile's 256 × 256 pixels (rows from the north)."""
    west, south, east, north = tile_matrix_sets()[tms_id].xy_bounds(tile)
    centres = (np.arange(256) + 0.5) / 256
    x, y = np.meshgrid(west + centres * (east - west), north - centres * (north - south))
    if tms_id == "WebMercatorQuad":
        x, y = _TO_LONLAT.transform(x, y)
    return np.asarray(x), np.asarray(y)


def pixel_edges(tms_id: str, tile: Tile) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes of the 257 column edges and latitudes of the 257 row edges (from the north) of the
    tile's pixels: both tile matrix sets are separable in lon and lat."""
    west, south, east, north = tile_matrix_sets()[tms_id].xy_bounds(tile)
    steps = np.arange(257) / 256
    x, y = west + steps * (east - west), north - steps * (north - south)
    if tms_id == "WebMercatorQuad":
        x, _ = _TO_LONLAT.transform(x, np.zeros_like(x))
        _, y = _TO_LONLAT.transform(np.zeros_like(y), y)
    return np.asarray(x), np.asarray(y)


def ortho_red(lon: np.ndarray) -> np.ndarray:
    """The test orthophoto's red at a longitude (it rises to the east; green rises to the south alike)."""
    west, _, east, _ = ORTHO_BOUNDS
    return np.clip((lon - west) / (east - west) * ORTHO_SIZE - 0.5, 0, ORTHO_SIZE - 1) * 255 / (ORTHO_SIZE - 1)


def ortho_green(lat: np.ndarray) -> np.ndarray:
    _, south, _, north = ORTHO_BOUNDS
    return np.clip((north - lat) / (north - south) * ORTHO_SIZE - 0.5, 0, ORTHO_SIZE - 1) * 255 / (ORTHO_SIZE - 1)


def ortho_cover(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels surely inside the orthophoto, and surely outside it."""
    west, south, east, north = ORTHO_BOUNDS
    inside = (lon > west + MARGIN_DEG) & (lon < east - MARGIN_DEG) & (lat > south + MARGIN_DEG) & (lat < north - MARGIN_DEG)
    outside = (lon < west - MARGIN_DEG) | (lon > east + MARGIN_DEG) | (lat < south - MARGIN_DEG) | (lat > north + MARGIN_DEG)
    return inside, outside


def dem_cover(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels surely on DEM data, and surely off it (outside the DEM or in its nodata block)."""
    x, y = _TO_GK.transform(lon, lat)
    west, north = dem_origin()
    east, south = west + SIZE * PIXEL_M, north - SIZE * PIXEL_M
    hole_east, hole_south = west + NODATA_BLOCK * PIXEL_M, north - NODATA_BLOCK * PIXEL_M

    def within(m: float, e: float, s: float, w: float, n: float) -> np.ndarray:
        return (x > w + m) & (x < e - m) & (y > s + m) & (y < n - m)

    data = within(MARGIN_M, east, south, west, north) & ~within(-MARGIN_M, hole_east, hole_south, west, north)
    off = ~within(-MARGIN_M, east, south, west, north) | within(MARGIN_M, hole_east, hole_south, west, north)
    return data, off


def away_tile(tms_id: str, z: int) -> Tile | None:
    """A tile far from the rasters (None at level 0 of WebMercatorQuad: one tile, the world)."""
    tile = tile_matrix_sets()[tms_id].tile(-60.0, -30.0, z)
    return None if tile == tile_matrix_sets()[tms_id].tile(*HILL, z) else tile


@pytest.mark.parametrize("tms_id", TMS_IDS)
def test_imagery_tiles_hold_the_orthophoto_where_it_is_at_every_zoom(cogs: dict[str, str], tms_id: str) -> None:
    seen = 0
    for z in ZOOMS:
        tile = tile_matrix_sets()[tms_id].tile(*HILL, z)
        data = render(cogs["imagery"], tms_id, tile, "default")
        lon, lat = pixel_lonlat(tms_id, tile)
        inside, outside = ortho_cover(lon, lat)
        if not data:  # an empty tile is right only when no pixel centre lies on the orthophoto
            assert not inside.any(), (tms_id, z)
            continue
        rgba = decode(data).astype("float64")
        assert rgba.shape == (4, 256, 256)
        assert (rgba[3][inside] == 255).all() and (rgba[3][outside] == 0).all(), (tms_id, z)
        # a pixel averages the orthophoto over its footprint (one point when zoomed in): its colour
        # lies between the colours at the footprint's edges (clipped to the orthophoto), to rounding
        west, south, east, north = ORTHO_BOUNDS
        lons, lats = pixel_edges(tms_id, tile)
        red_lo, red_hi = ortho_red(np.clip(lons[:-1], west, east)), ortho_red(np.clip(lons[1:], west, east))
        green_lo, green_hi = ortho_green(np.clip(lats[:-1], south, north)), ortho_green(np.clip(lats[1:], south, north))
        red_lo, red_hi = np.broadcast_to(red_lo, (256, 256)), np.broadcast_to(red_hi, (256, 256))
        green_lo, green_hi = np.broadcast_to(green_lo[:, None], (256, 256)), np.broadcast_to(green_hi[:, None], (256, 256))
        assert (rgba[0][inside] >= red_lo[inside] - 3).all() and (rgba[0][inside] <= red_hi[inside] + 3).all(), (tms_id, z)
        assert (rgba[1][inside] >= green_lo[inside] - 3).all() and (rgba[1][inside] <= green_hi[inside] + 3).all(), (tms_id, z)
        assert np.abs(rgba[2][inside] - BLUE).max(initial=0) <= 1, (tms_id, z)
        seen += int(inside.sum())
    assert seen > 10_000  # the deeper levels hold the orthophoto over many pixels


@pytest.mark.parametrize("tms_id", TMS_IDS)
def test_dem_tiles_hold_heights_and_hillshade_where_the_dem_is_at_every_zoom(cogs: dict[str, str], tms_id: str) -> None:
    seen = 0
    for z in ZOOMS:
        tile = tile_matrix_sets()[tms_id].tile(*HILL, z)
        lon, lat = pixel_lonlat(tms_id, tile)
        data, off = dem_cover(lon, lat)
        heights = decode_terrain_rgb(decode(render(cogs["dem"], tms_id, tile, "terrain-rgb")))
        if z >= POINT_ZOOM:  # pixels of 150 m or less: the height at the pixel's centre
            expected = np.array([elevation_at(a, b) for a, b in zip(lon[data], lat[data])])
            assert np.abs(heights[data] - expected).max(initial=0) <= 1.0, (tms_id, z)
        else:  # an average over the pixel's footprint: a height of the hill
            assert ((heights[data] >= BASE_M - 0.5) & (heights[data] <= BASE_M + PEAK_M + 0.5)).all(), (tms_id, z)
        assert (np.abs(heights[off]) < 0.05).all(), (tms_id, z)
        shade = render(cogs["dem"], tms_id, tile, "hillshade")
        if not shade:
            assert not data.any(), (tms_id, z)
            continue
        grey_alpha = decode(shade)
        assert (grey_alpha[1][data] == 255).all() and (grey_alpha[1][off] == 0).all(), (tms_id, z)
        seen += int(data.sum())
    assert seen > 10_000


@pytest.mark.parametrize("tms_id", TMS_IDS)
def test_tiles_away_from_the_rasters_are_empty_at_every_zoom(cogs: dict[str, str], tms_id: str) -> None:
    for z in ZOOMS:
        tile = away_tile(tms_id, z)
        if tile is None:
            continue
        assert render(cogs["imagery"], tms_id, tile, "default") == b"", (tms_id, z)
        assert render(cogs["dem"], tms_id, tile, "hillshade") == b"", (tms_id, z)
        heights = decode_terrain_rgb(decode(render(cogs["dem"], tms_id, tile, "terrain-rgb")))
        assert heights.shape == (256, 256) and np.allclose(heights, 0.0, atol=0.05), (tms_id, z)
