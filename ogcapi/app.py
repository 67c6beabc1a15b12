"""The ASGI application: FastAPI, with pygeoapi's OGC API - Features mounted over the store."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from cim.processes import runner as job_runner
from cim.store import resolve_url, shared_store
from ogcapi.access import LayerAccess
from ogcapi.admin_routes import admin_routes
from ogcapi.changes_routes import changes_routes
from ogcapi.asyncapi import asyncapi_routes
from ogcapi.auth import JWTAuth
from ogcapi import health
from ogcapi.downloads_routes import downloads_routes
from ogcapi.edit_routes import edit_routes
from ogcapi.warnings_routes import warnings_routes
from ogcapi.errors import install_handlers
from ogcapi.impact_routes import impact_routes
from ogcapi.processes_routes import processes_routes
from ogcapi.jobs_routes import jobs_routes
from ogcapi.tiles_map_routes import map_routes
from ogcapi.basemap_map_routes import basemap_map_routes
from ogcapi.terrain_routes import terrain_routes
from ogcapi.pygeoapi import PygeoapiService, load_base_config, routes
from ogcapi.raster_collections import RasterCollections, raster_collection
from ogcapi.records_routes import CatalogRecords, records_routes
from ogcapi.request_guard import RequestGuard
from ogcapi.tiles_fastpath import TileFastPath
from ogcapi.document_additions import DocumentAdditions
from ogcapi.tiles_routes import routes as tiles_routes
from ogcapi.threed_routes import threed_routes
from ogcapi.viewer import viewer_routes
from ogcapi.viewer3d import viewer3d_routes
from ogcapi import releases_stream, warnings_stream
from ogcapi.releases_routes import releases_routes
from tiles.cache import memory_budget
from tiles.engine import TileEngine
from tiles.map_engine import MapTileEngine
from tiles.basemap_map import BasemapMapEngine
from tiles.map_tilesets import raster_layers
from tiles.terrain.engine import TerrainEngine
from tiles.tilesets import vector_layers
from tiles.threed.engine import SceneEngine
from tiles.threed.model import ScenePlan


class CIMApp(FastAPI):
    """FastAPI with the tile fast path (ogcapi/tiles_fastpath.py) in front of its whole middleware
    stack: a repeated tile is answered before FastAPI's own middlewares (error handling, telemetry,
    body limit) run — a third of the in-process cost of a cached tile."""

    tile_fast_path: TileFastPath | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.tile_fast_path is None:
            return stack
        self.tile_fast_path.app = stack
        return self.tile_fast_path


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The warnings watcher (SSE, MQTT, expiry: ogcapi/warnings_stream.py) and the release watcher
    (release announcements: ogcapi/releases_stream.py) run while the app does; at
    shutdown this process's running jobs are stopped and marked failed (cim/processes/runner.py)."""
    async with warnings_stream.lifespan(app), releases_stream.lifespan(app):
        try:
            yield
        finally:
            store = getattr(app.state, "store", None)
            if store is not None:
                await asyncio.to_thread(job_runner.stop, store)


def create_app(
    store_url: str | None = None,
    server_url: str | None = None,
    pygeoapi_config: str | None = None,
) -> FastAPI:
    """An app serving the current release of ``store_url`` (default ``$CIM_STORE`` / ./cim.duckdb).

    ``server_url`` is the public base URL used in links (default: the config's ``server.url``).
    Raises CIMError at once when the store cannot be opened or holds no release.
    """
    url = resolve_url(store_url)
    base: dict[str, Any] = load_base_config(pygeoapi_config)
    store = shared_store(url)
    service = PygeoapiService(store, url, base, server_url or base["server"]["url"])
    app = CIMApp(
        title="cim-basemap",
        docs_url=None,  # the OpenAPI document of the OGC API is pygeoapi's, at /openapi
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan,
    )
    app.state.store = store
    app.state.pygeoapi = service
    install_handlers(app)
    # tiles first (OGC API - Tiles, TileJSON, style), then pygeoapi's Features routes
    app.state.tiles = TileEngine(store)
    app.router.routes.extend(tiles_routes(app.state.tiles, service.server_url))
    # map tiles of the raster layers (DEM, imagery), through the same cache
    app.state.map_tiles = MapTileEngine(app.state.tiles)
    app.router.routes.extend(map_routes(app.state.map_tiles, service.server_url))
    # the composite base map as PNG map tiles (/map/tiles), drawn from its vector tiles
    app.state.basemap_map = BasemapMapEngine(app.state.tiles)
    app.router.routes.extend(basemap_map_routes(app.state.basemap_map, service.server_url))
    # 3D Tiles of the lod1 layers (OGC API - 3D GeoVolumes), through the same cache (ogcapi/threed_routes.py)
    app.state.scenes = SceneEngine(store, tiles=app.state.tiles)
    app.router.routes.extend(threed_routes(app.state.scenes, service.server_url))
    # terrain of the DEM for CesiumJS (quantized-mesh: ogcapi/terrain_routes.py), through the same cache
    app.state.terrain = TerrainEngine(store, tiles=app.state.tiles)
    app.router.routes.extend(terrain_routes(app.state.terrain))
    # the CesiumJS 3D viewer (/viewer/3d; before /viewer/{name}) and the MapLibre map viewer of the style (/viewer)
    app.router.routes.extend(viewer3d_routes(store, service.server_url, dem_layer=app.state.terrain.dem_layer))
    app.router.routes.extend(viewer_routes(service.server_url))
    app.router.routes.extend(impact_routes(store))  # /impact, /collections/warnings/items/{id}/impact (ogcapi/impact_routes.py)
    app.router.routes.extend(changes_routes(service))  # /collections/{id}/changes (ogcapi/changes_routes.py)
    # the layer catalog (OGC API - Records, ogcapi/records_routes.py): before pygeoapi's /collections/{id}
    app.state.catalog = CatalogRecords(store, service.server_url.rstrip("/"))
    app.router.routes.extend(records_routes(store, service.server_url, app.state.catalog))
    app.router.routes.extend(downloads_routes(store))  # /collections/{id}/downloads/{format} (ogcapi/downloads_routes.py)
    app.router.routes.extend(routes(service))
    # OGC API - Features Part 4 on editable layers, for bearer tokens with the editor role
    app.state.auth = JWTAuth.from_environment()
    app.router.routes.extend(edit_routes(service, app.state.auth))
    app.router.routes.extend(warnings_routes(service, app.state.auth))  # POST /warnings (ogcapi/warnings_routes.py)
    app.router.routes.extend(admin_routes(store, app.state.auth))  # /admin/audit (ogcapi/admin_routes.py)
    # OGC API - Processes: /processes, /processes/{id}, /processes/{id}/execution (ogcapi/processes_routes.py)
    app.router.routes.extend(processes_routes(store, service.server_url, app.state.auth))
    app.router.routes.extend(jobs_routes(store, service.server_url, app.state.auth))  # /jobs (ogcapi/jobs_routes.py)
    job_runner.start(store)  # jobs a dead server left running: failed; old ones pruned (cim/processes/runner.py)
    # /warnings/stream (SSE) and the watcher pushing warning events (SSE, MQTT) and emitting expiry
    warnings_stream.install(app, store, service.server_url)
    # /releases/stream (SSE) and the watcher announcing releases (SSE, MQTT), then /releases, /releases/{n}
    releases_stream.install(app, store, service.server_url)
    app.router.routes.extend(releases_routes(store, service.server_url))  # ogcapi/releases_routes.py
    app.router.routes.extend(asyncapi_routes(service.server_url))  # /asyncapi (ogcapi/asyncapi.py)
    base_url = service.server_url.rstrip("/")
    app.add_middleware(
        DocumentAdditions,
        server_url=service.server_url,
        vector_collections=lambda: [i.name for i in vector_layers(store)],
        feed_collections=lambda: [i.name for i in store.layers() if i.spec.kind == "vector" and not i.spec.live],
        raster_collections=lambda: [raster_collection(i, base_url) for i in raster_layers(store)],
        catalog_collection=app.state.catalog.collection,
        scene_collections=app.state.scenes.layers,
        scene_box=lambda name: _scene_box(app.state.scenes.plan_within(name)),
        terrain_collections=lambda: [name for name in [app.state.terrain.dem_layer()] if name],
    )
    app.add_middleware(RasterCollections, server_url=service.server_url, rasters=lambda: raster_layers(store))
    app.add_middleware(LayerAccess, store=store, auth=app.state.auth)  # restricted layers, audit: ogcapi/access.py
    # outside the others: oversized and hostile requests refused before anything reads them
    app.add_middleware(RequestGuard)
    health.install(app, store)  # /healthz, /readyz; Retry-After on every 503
    # outermost: repeated requests for immutable tiles are answered from memory before any routing
    app.tile_fast_path = TileFastPath(
        None, current=store.known_current_number, generation=store.known_edit_generation, max_bytes=memory_budget()
    )
    return app


def _scene_box(plan: ScenePlan | None) -> tuple[float, float, float, float, float, float] | None:
    """A lod1 collection's 3D box for its description: None for a layer without buildings, and
    while its plan is still being made (SceneEngine.plan_within: a million buildings take seconds)."""
    return plan.bbox3d if plan is not None and plan.count else None


def app_from_environment() -> FastAPI:
    """uvicorn factory (``ogcapi.app:app_from_environment``) for multi-worker serving:
    the store from ``$CIM_STORE``, the public URL from ``$CIM_SERVER_URL``."""
    return settled(create_app(os.environ.get("CIM_STORE"), server_url=os.environ.get("CIM_SERVER_URL")))


def settled(app: FastAPI) -> FastAPI:
    """``app``, with everything the process holds so far moved out of the garbage collector's sight
    (``gc.freeze``): the app's ~200,000 long-lived objects (pygeoapi, pandas, the catalog) were
    traversed again and again by collections the per-request garbage triggered — a cached tile went
    from 15,700 to 20,900 requests/s on 2 workers with the freeze (docs/benchmarks.md). For server
    processes only: what is frozen is never collected."""
    gc.freeze()
    return app
