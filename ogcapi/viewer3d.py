"""The 3D viewer: ``GET /viewer/3d``, a CesiumJS globe with the release's LOD1 buildings (3D Tiles).

- ``/viewer/3d``: the HTML page (``ogcapi/templates/viewer3d.html``); its script
  (``ogcapi/static/viewer3d.js``) draws every ``lod1`` layer's tileset (``/collections/{id}/3dtiles``,
  styled by height) on the release's terrain (``/collections/{dem}/terrain``, quantized-mesh) when it
  has a DEM, else on the WGS 84 ellipsoid; draped on it the composite base map as PNG map tiles
  (``/map/tiles/WebMercatorQuad``, pinned to the release), over it imagery from the release's raster
  map tiles when it has any (``/collections/{id}/map/tiles/WebMercatorQuad``); the warnings in force as ground-clamped
  polygons in their colours, kept current from ``/warnings/stream``; a clicked building's properties
  (its glTF property table, then its Features API item, linked); a job's GeoJSON results
  (``#job=<id>``). ``<pre id="status">`` holds JSON: ``state`` ``loading`` → ``ready`` (every tileset
  and the globe loaded), counts, errors and ``readyMs`` — what tests/test_viewer_3d.py and the
  benchmark read in headless Chromium.
- ``/viewer/3d/vendor/{version}/{path}``: the CesiumJS build tree (``Cesium.js``, ``Workers/``,
  ``Assets/``, ``ThirdParty/``, ``Widgets/``), installed from the npm registry by scripts/demo and
  scripts/test (``ensure_cesium`` in scripts/lib.sh) into the git-ignored
  ``ogcapi/static/vendor/cesium/``. The version in the path makes the URLs immutable (cached a
  year). Nothing is loaded from a CDN or Cesium ion: the page works offline. Without the files the
  page says how to install them (still 200) and the vendor URLs are 404 OGC exceptions.
- ``/viewer/3d/{name}``: the page's own script and style sheet.

The camera starts over the densest part of the buildings (a grid of their centroids), looking down at about 45° from a few
kilometres; ``#lat/lon/height`` in the URL overrides the point it looks at and the distance.
"""

from __future__ import annotations

import html
import json
import logging
import math
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any, Callable

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from cim.errors import NotFound
from cim.store import Store
from cim.tms import WEB_MERCATOR, tile_matrix_sets
from ogcapi import parameters
from ogcapi.viewer import ASSET_CACHE, STATIC_DIR, _json_script, _version_tag
from tiles.basemap_map import zooms as basemap_zooms
from tiles.basemap_map_documents import basemap_map_url
from tiles.map_tilesets import raster_layers
from tiles.tilesets import composite
from tiles.warning_style import COLOURS, NO_COLOUR, SEVERITY_COLOURS

LOGGER = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE = PACKAGE_DIR / "templates" / "viewer3d.html"
#: where ``ensure_cesium`` (scripts/lib.sh) puts the CesiumJS build tree
VENDOR_DIR = STATIC_DIR / "vendor" / "cesium"
#: media types of the files the Cesium build tree holds, by suffix; any other file is a 404
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".glb": "model/gltf-binary",
    ".ktx2": "image/ktx2",
    ".xml": "application/xml",
    ".md": "text/markdown; charset=utf-8",
}
#: the version is in the URL: a file never changes under it
VENDOR_CACHE = "public, max-age=31536000, immutable"
OWN_FILES = {"viewer3d.js": "text/javascript", "viewer3d.css": "text/css"}
INSTALL_HINT = (
    "CesiumJS is not installed. Run ./scripts/demo or ./scripts/test, which install it from the "
    "npm registry into ogcapi/static/vendor/cesium/, or: source scripts/lib.sh && ensure_cesium"
)
TITLE = "CIM base map in 3D"
#: the camera's distance from the point it looks at, metres, and its pitch, degrees
START_RANGE = 3000.0
START_PITCH = -45.0


def cesium_version(vendor_dir: Path = VENDOR_DIR) -> str | None:
    """The installed CesiumJS version, or None when its build tree is missing."""
    if not (vendor_dir / "Cesium.js").is_file() or not (vendor_dir / "Workers").is_dir():
        return None
    try:
        return (vendor_dir / "VERSION").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def vendor_file(vendor_dir: Path, relative: str) -> Path:
    """The file ``relative`` of the Cesium tree; NotFound for anything outside it, a folder, a
    missing file or a suffix not in :data:`MEDIA_TYPES`."""
    if not relative or "\\" in relative or "\0" in relative:
        raise NotFound(f"no CesiumJS file {relative!r}")
    root = vendor_dir.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, RuntimeError, ValueError):
        raise NotFound(f"no CesiumJS file {relative!r}") from None
    if not path.is_relative_to(root) or path == root:
        raise NotFound(f"no CesiumJS file {relative!r}")
    if path.suffix.lower() not in MEDIA_TYPES or not path.is_file():
        raise NotFound(f"no CesiumJS file {relative!r}")
    return path


def terrain_layer(dem_layer: Callable[[], str | None] | None) -> str | None:
    """The DEM collection whose terrain (quantized-mesh) the globe stands on
    (``TerrainEngine.dem_layer``), or None: no DEM in the current release, no terrain on this server,
    or the DEM cannot be read now (the page falls back to the ellipsoid rather than failing)."""
    if dem_layer is None:
        return None
    try:
        return dem_layer()
    except Exception:
        LOGGER.warning("3D viewer: no terrain for the page", exc_info=True)
        return None


#: buildings read to find where the camera starts (the densest cell of a grid of their centroids)
START_SAMPLE = 50_000
#: the grid's cell size, degrees of latitude (about 1 km); longitude cells are as wide in metres
START_CELL = 0.01


def densest_point(store: Store, layer: str) -> dict[str, float] | None:
    """The mean longitude/latitude of the footprints in the densest ~1 km cell of ``layer``
    (at most :data:`START_SAMPLE` of them read): a city's centre, also when the layer's extent
    spans two towns with fields between them."""
    frame = store.read_frame(layer, out_srid=4326, limit=START_SAMPLE, columns=[])
    if frame.empty:
        return None
    points = frame.geometry.representative_point()
    lon, lat = points.x.to_numpy(), points.y.to_numpy()
    scale = max(0.1, float(np.cos(np.radians(np.nanmean(lat)))))
    cells = np.stack([np.floor(lon * scale / START_CELL), np.floor(lat / START_CELL)], axis=1)
    keys, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    best = inverse.reshape(-1) == int(np.argmax(counts))
    return {"lon": float(lon[best].mean()), "lat": float(lat[best].mean())}


@lru_cache(maxsize=16)
def _start_point(store: Store, layer: str, release: int, generation: int) -> dict[str, float] | None:
    return densest_point(store, layer)


def imagery_min_level(bbox: tuple[float, float, float, float] | None, minzoom: int, maxzoom: int) -> int:
    """The first WebMercatorQuad level Cesium asks a raster layer for: the deepest at which one tile
    is still as wide as the layer (its extent then spans at most 2 x 2 tiles, as Cesium wants of a
    minimum level), at least the layer's ``minzoom``. Lower levels would cover the layer with a few
    pixels and are slow to render from a city's COG (a level-5 tile took 33 s)."""
    if bbox is None:
        return minzoom
    width = max(bbox[2] - bbox[0], bbox[3] - bbox[1], 1e-9)
    fit = int(math.floor(math.log2(360.0 / width)))
    return max(minzoom, min(fit, maxzoom))


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float] | None:
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def basemap_imagery(store: Store, base: str) -> dict[str, Any] | None:
    """The composite base map's PNG map tiles as Cesium imagery (None without vector layers): the
    URL pinned to the current release, levels from the one that fits the extent to its deepest layer."""
    ts = composite(store)
    if ts.bbox is None:
        return None
    levels = basemap_zooms(ts, tile_matrix_sets()[WEB_MERCATOR])
    maxzoom = levels.stop - 1
    return {"id": "basemap", "url": basemap_map_url(base, store.current_number()), "bbox": ts.bbox,
            "maxzoom": maxzoom, "minzoom": imagery_min_level(ts.bbox, levels.start, maxzoom)}


def scene_config(
    store: Store, base: str, vendor_url: str | None, dem_layer: Callable[[], str | None] | None = None
) -> dict[str, Any]:
    """What viewer3d.js needs: URLs of the release's 3D tilesets, terrain, imagery, warnings, jobs."""
    layers = store.layers()
    lod1 = [info for info in layers if info.spec.lod1 and info.count]
    extent = _union([info.bbox for info in lod1 if info.bbox]) or _union([info.bbox for info in layers if info.bbox])
    center = None if extent is None else {"lon": (extent[0] + extent[2]) / 2, "lat": (extent[1] + extent[3]) / 2}
    if lod1:  # the extent's centre may lie between two towns: the densest part of the largest layer
        largest = max(lod1, key=lambda info: info.count)
        center = _start_point(store, largest.name, store.current_number(), store.edit_generation()) or center
    imagery = []
    rasters = raster_layers(store)
    images = [info for info in rasters if info.spec.raster == "image"] or [
        info for info in rasters if info.spec.raster == "elevation"  # hillshade when there is no image
    ]
    for info in images:
        url = f"{base}/collections/{info.name}/map/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}?f=png"
        imagery.append({"id": info.name, "url": url, "bbox": info.bbox, "maxzoom": info.spec.maxzoom,
                        "minzoom": imagery_min_level(info.bbox, info.spec.minzoom, info.spec.maxzoom)})
    dem = terrain_layer(dem_layer)
    return {
        "cesiumBaseUrl": vendor_url,
        "release": store.current_number(),
        "tilesets": [
            {"id": info.name, "title": info.spec.title, "url": f"{base}/collections/{info.name}/3dtiles",
             "items": f"{base}/collections/{info.name}/items", "bbox": info.bbox}
            for info in lod1
        ],
        "terrain": None if dem is None else {"id": dem, "url": f"{base}/collections/{dem}/terrain/"},
        "basemap": basemap_imagery(store, base),  # under the imagery (viewer3d.js)
        "imagery": imagery,
        "center": center,
        "extent": extent,
        "camera": {"range": START_RANGE, "pitch": START_PITCH},
        "warnings": {
            "items": f"{base}/collections/warnings/items?f=json&limit=1000",
            "stream": f"{base}/warnings/stream",
            "colours": COLOURS,
            "severityColours": SEVERITY_COLOURS,
            "noColour": NO_COLOUR,
        },
        "jobs": f"{base}/jobs",
        "viewer2d": f"{base}/viewer",
    }


class Viewer3D:
    """The 3D viewer's endpoints over ``store`` for the public base URL ``server_url``."""

    def __init__(
        self, store: Store, server_url: str, vendor_dir: Path = VENDOR_DIR, dem_layer: Callable[[], str | None] | None = None
    ) -> None:
        self.store = store
        self.dem_layer = dem_layer
        self.base = server_url.rstrip("/")
        self.vendor_dir = vendor_dir

    def render(self) -> str:
        version = cesium_version(self.vendor_dir)
        own = {name: f"{self.base}/viewer/3d/{name}?v={_version_tag(STATIC_DIR / name)}" for name in OWN_FILES}
        if version is None:
            vendor_url = None
            head = scripts = ""
            state, message = "error", INSTALL_HINT
            status = json.dumps({"state": "error", "errors": [INSTALL_HINT]}, indent=1)
        else:
            vendor_url = f"{self.base}/viewer/3d/vendor/{version}/"
            head = f'<link rel="stylesheet" href="{html.escape(vendor_url)}Widgets/widgets.css">'
            scripts = "\n".join([
                f'<script src="{html.escape(vendor_url)}Cesium.js"></script>',
                f'<script src="{html.escape(own["viewer3d.js"])}"></script>',
            ])
            state, message = "loading", ""
            status = json.dumps({"state": "loading", "errors": []})
        config = scene_config(self.store, self.base, vendor_url, self.dem_layer)
        config["cesiumVersion"] = version
        return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
            title=html.escape(TITLE),
            base=html.escape(self.base),
            head=head,
            viewer_css=html.escape(own["viewer3d.css"]),
            message=html.escape(message),
            state=state,
            status=html.escape(status),
            config=_json_script(config),
            scripts=scripts,
        )

    async def page(self, request: Request) -> Response:
        parameters.only_format(request.query_params.get("f"), "html", "the 3D viewer is an HTML page")
        return HTMLResponse(await run_in_threadpool(self.render), headers={"Cache-Control": "no-cache"})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in OWN_FILES:
            raise NotFound(f"no 3D viewer file {name!r}")
        return FileResponse(STATIC_DIR / name, media_type=OWN_FILES[name], headers={"Cache-Control": ASSET_CACHE})

    async def vendor(self, request: Request) -> Response:
        version = cesium_version(self.vendor_dir)
        if version is None:
            raise NotFound(f"CesiumJS is missing. {INSTALL_HINT}")
        wanted, path = request.path_params["version"], request.path_params["path"]
        if wanted != version:
            raise NotFound(f"CesiumJS {wanted!r} is not installed here (this server has {version})")
        file = vendor_file(self.vendor_dir, path)
        return FileResponse(file, media_type=MEDIA_TYPES[file.suffix.lower()], headers={"Cache-Control": VENDOR_CACHE})


def viewer3d_routes(
    store: Store, server_url: str, vendor_dir: Path = VENDOR_DIR, dem_layer: Callable[[], str | None] | None = None
) -> list[BaseRoute]:
    """The 3D viewer routes (mount them before ``/viewer/{name}``); ``dem_layer``: the current
    release's DEM collection with terrain tiles (``TerrainEngine.dem_layer``), None without terrain."""
    viewer = Viewer3D(store, server_url, vendor_dir, dem_layer)
    return [
        Route("/viewer/3d", viewer.page, name="viewer3d"),
        Route("/viewer/3d/vendor/{version}/{path:path}", viewer.vendor, name="viewer3d_vendor"),
        Route("/viewer/3d/{name}", viewer.asset, name="viewer3d_asset"),
    ]
