"""What pygeoapi does not know, added to the JSON documents it writes: tiles, viewer and raster links.

pygeoapi writes the landing page, ``/collections``, ``/collections/{id}`` and ``/openapi``; it knows
nothing of our tiles, map viewer or raster collections. This ASGI middleware rewrites those JSON
responses on the way out:

- landing page: a ``tilesets-vector`` link to ``/tiles`` (the composite base map), a ``tilesets-map``
  link to ``/map/tiles`` (the composite as PNG map tiles), the
  ``tiling-schemes`` links pointed at our ``/tileMatrixSets`` (pygeoapi points them at its own
  ``/TileMatrixSets``, which is not served), a ``stylesheet`` link to ``/styles/basemap`` and a
  ``map`` link (text/html) to the map viewer ``/viewer``;
- each vector collection (in the list and alone): a ``tilesets-vector`` link to its ``/tiles``,
  one ``enclosure`` link per download format (ogcapi/downloads_openapi.py) and (release layers, not
  live ones) a ``changes`` link to its change feed (ogcapi/changes_routes.py);
- the collection list: the raster collections pygeoapi does not know (ogcapi/raster_collections.py);
- the OpenAPI document: the tiles paths (ogcapi/tiles_openapi.py), the warnings' (ogcapi/warnings_openapi.py),
  the processes' and jobs' (ogcapi/processes_openapi.py), the downloads' (ogcapi/downloads_openapi.py),
  the releases' (ogcapi/releases_openapi.py), the change feed's (ogcapi/changes_openapi.py) and the
  terrain's (ogcapi/terrain_openapi.py);
- landing page: the ``processes`` and ``job-list`` links, ``/releases`` (rel ``version-history``) and
  ``/releases/stream`` (rel ``hub``);
- the layer catalog (OGC API - Records, ogcapi/records_routes.py): its collection in ``/collections``,
  a link to it on the landing page, its paths in the OpenAPI document;
- OGC API - 3D GeoVolumes (ogcapi/threed_routes.py): each lod1 collection (in the list and alone) gets
  its 3D bounding box as a second ``extent.spatial.bbox`` entry (west, south, minimum height, east,
  north, maximum height; the first stays the 2D CRS84 box Features clients read, docs/3d-api.md) and
  the ``3d-geovolumes`` link to its tileset (pygeoapi's config gives it too, for the HTML page); the
  landing page links each lod1 tileset (rel ``3d-geovolumes``) and the 3D viewer ``/viewer/3d``
  (rel ``map``, text/html); the OpenAPI document gets the two 3D Tiles paths.

Only complete, uncompressed JSON bodies of successful GETs are touched; the rewriting runs in a
thread (it may read the store: layers, a 3D plan's heights).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cim.errors import CIMError

from ogcapi.asyncapi import add_push_paths, landing_links
from ogcapi.changes_openapi import add_changes_paths
from ogcapi.changes_routes import REL_CHANGES, changes_link
from ogcapi.downloads_openapi import add_downloads_paths, enclosure_links
from ogcapi.processes_openapi import add_processes_paths
from ogcapi.records_openapi import add_records_paths
from ogcapi.threed_openapi import add_threed_paths, geovolumes_link, viewer_link
from ogcapi.terrain_openapi import add_terrain_paths
from ogcapi.tiles_openapi import add_tiles_paths
from ogcapi.warnings_openapi import add_warnings_paths
from ogcapi.releases_openapi import add_releases_paths, landing_links as releases_landing_links
from tiles.documents import REL_TILESETS_VECTOR, REL_TILING_SCHEMES
from tiles.threed.model import REL_3D_GEOVOLUMES

#: a 3D bounding box: west, south, minimum height, east, north, maximum height (CRS84h axes)
Box3D = tuple[float, float, float, float, float, float]

log = logging.getLogger(__name__)
Rewriter = Callable[[Any], Any]
#: OGC API link relation of a map rendering the context (here: the HTML map viewer, /viewer)
REL_MAP = "http://www.opengis.net/def/rel/ogc/1.0/map"
REL_PROCESSES = "http://www.opengis.net/def/rel/ogc/1.0/processes"
REL_JOB_LIST = "http://www.opengis.net/def/rel/ogc/1.0/job-list"


class DocumentAdditions:
    """ASGI middleware; ``vector_collections()`` names the collections that have tilesets,
    ``raster_collections()`` gives the raster collections' documents."""

    def __init__(
        self,
        app: ASGIApp,
        server_url: str,
        vector_collections: Callable[[], list[str]],
        raster_collections: Callable[[], list[dict[str, Any]]] | None = None,
        feed_collections: Callable[[], list[str]] | None = None,
        catalog_collection: Callable[[], dict[str, Any]] | None = None,
        scene_collections: Callable[[], list[str]] | None = None,
        scene_box: Callable[[str], Box3D | None] | None = None,
        terrain_collections: Callable[[], list[str]] | None = None,
    ) -> None:
        self.app = app
        self.base = server_url.rstrip("/")
        self.vector_collections = vector_collections
        #: collection documents of the raster layers, appended to ``/collections``
        self.raster_collections = raster_collections
        #: the collections with a change feed (the release layers)
        self.feed_collections = feed_collections
        #: the layer catalog's records collection document, listed in ``/collections``
        self.catalog_collection = catalog_collection
        #: the lod1 collections (3D Tiles) and the 3D box of one (SceneEngine.plan(...).bbox3d; None
        #: when it has no building)
        self.scene_collections = scene_collections
        self.scene_box = scene_box
        #: the DEM collections with terrain (ogcapi/terrain_routes.py)
        self.terrain_collections = terrain_collections

    def _rewriter(self, path: str) -> Rewriter | None:
        path = path.rstrip("/") or "/"
        if path == "/":
            return self._landing
        if path == "/collections":
            return self._collections
        if path.startswith("/collections/") and path.count("/") == 2:
            return self._collection
        if path == "/openapi":
            rasters = [c["id"] for c in self.raster_collections()] if self.raster_collections else []
            dems = self.terrain_collections() if self.terrain_collections else []
            return lambda doc: add_terrain_paths(add_threed_paths(add_changes_paths(add_releases_paths(add_downloads_paths(add_records_paths(
                add_processes_paths(add_push_paths(add_warnings_paths(add_tiles_paths(doc, self.vector_collections(), rasters))))
            )))), self._scenes()), dems)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        rewrite = self._rewriter(scope["path"])
        if rewrite is None:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"start": None, "passthrough": False, "chunks": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
                json_body = "json" in headers.get("content-type", "") and "content-encoding" not in headers
                if message["status"] != 200 or not json_body:
                    state["passthrough"] = True
                    await send(message)
                else:
                    state["start"] = message
                return
            if state["passthrough"] or message["type"] != "http.response.body":
                await send(message)
                return
            state["chunks"].append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(state["chunks"])
            try:
                body = await run_in_threadpool(_rewritten, rewrite, body)
            except (ValueError, TypeError, KeyError, AttributeError):
                pass  # not a document we understand: send it unchanged
            start = state["start"]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)

    def _tilesets_link(self, collection_id: str | None) -> dict[str, str]:
        if collection_id is None:
            href, title = f"{self.base}/tiles", "Vector tilesets of the composite base map"
        else:
            href, title = f"{self.base}/collections/{collection_id}/tiles", f"Vector tilesets of {collection_id}"
        return {"rel": REL_TILESETS_VECTOR, "type": "application/json", "title": title, "href": href}

    def _landing(self, doc: Any) -> Any:
        links = [link for link in doc.get("links", []) if link.get("rel") != REL_TILING_SCHEMES]
        links.append(self._tilesets_link(None))
        # the composite as PNG map tiles (ogcapi/basemap_map_routes.py): the dataset-level map tilesets
        links.append({"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map", "type": "application/json",
                      "title": "Map tilesets of the composite base map (PNG)", "href": f"{self.base}/map/tiles"})
        links.append(
            {"rel": REL_TILING_SCHEMES, "type": "application/json", "title": "Tile matrix sets",
             "href": f"{self.base}/tileMatrixSets"}
        )
        links.append(
            {"rel": "stylesheet", "type": "application/vnd.mapbox.style+json", "title": "MapLibre style of the base map",
             "href": f"{self.base}/styles/basemap"}
        )
        # OGC rel "map" ("a map that renders the contextual resource"); text/html: an interactive page
        links.append({"rel": REL_MAP, "type": "text/html", "title": "Map viewer", "href": f"{self.base}/viewer"})
        # the AsyncAPI document (rel service-desc, application/asyncapi+json, as pygeoapi) and the push channels (hub)
        links.extend(landing_links(self.base))
        # the releases and their announcements (ogcapi/releases_routes.py, releases_stream.py)
        links.extend(releases_landing_links(self.base))
        # OGC API - Processes (ogcapi/processes_routes.py): the process list and the job list
        links.append({"rel": REL_PROCESSES, "type": "application/json", "title": "Processes", "href": f"{self.base}/processes"})
        links.append({"rel": REL_JOB_LIST, "type": "application/json", "title": "Jobs", "href": f"{self.base}/jobs"})
        # OGC API - 3D GeoVolumes: the 3D Tiles of each lod1 collection, and the 3D viewer
        links.extend(geovolumes_link(self.base, cid) for cid in self._scenes())
        links.append(viewer_link(self.base))
        if self.catalog_collection is not None:  # the layer catalog (OGC API - Records)
            # rel ogc-catalog: the relation Records Part 1 (autodiscovery) gives a link to a searchable catalog
            links.append({"rel": "http://www.opengis.net/def/rel/ogc/1.0/ogc-catalog", "type": "application/json",
                          "title": "Layer catalog with lineage (OGC API - Records)", "href": f"{self.base}/collections/catalog"})  # fmt: skip
        doc["links"] = links
        return doc

    def _scenes(self) -> list[str]:
        return list(self.scene_collections()) if self.scene_collections is not None else []

    def _add_to_collection(self, entry: dict[str, Any], vector: set[str], feeds: set[str], scenes: frozenset[str] | set[str] = frozenset()) -> None:
        cid = entry.get("id")
        if cid in scenes:
            self._add_geovolumes(entry, cid)
        if cid in vector and not any(link.get("rel") == REL_TILESETS_VECTOR for link in entry.get("links", [])):
            entry.setdefault("links", []).append(self._tilesets_link(cid))
        if cid in vector and not any(link.get("rel") == "enclosure" for link in entry.get("links", [])):
            # the bulk downloads, one per format (ogcapi/downloads_routes.py)
            entry.setdefault("links", []).extend(enclosure_links(self.base, cid))
        if cid in feeds and not any(link.get("rel") == REL_CHANGES for link in entry.get("links", [])):
            entry.setdefault("links", []).append(changes_link(self.base, cid))

    def _add_geovolumes(self, entry: dict[str, Any], cid: str) -> None:
        """The 3d-geovolumes link (unless pygeoapi gave it) and the 3D box, as the second bbox."""
        if not any(link.get("rel") == REL_3D_GEOVOLUMES for link in entry.get("links", [])):
            entry.setdefault("links", []).append(geovolumes_link(self.base, cid))
        spatial = entry.get("extent", {}).get("spatial")
        if self.scene_box is None or not isinstance(spatial, dict) or not isinstance(spatial.get("bbox"), list):
            return
        try:
            box = self.scene_box(cid)
        except CIMError:  # the store cannot answer now: the description without the 3D box
            return
        except Exception:  # noqa: BLE001 - a failing 3D plan must not take /collections down with it
            log.exception("no 3D box for collection %r", cid)
            return
        if box is None:
            return
        boxes = [b for b in spatial["bbox"] if not (isinstance(b, list) and len(b) == 6)]
        spatial["bbox"] = [*boxes, [round(float(v), 9) for v in box]]

    def _feeds(self) -> set[str]:
        return set(self.feed_collections()) if self.feed_collections is not None else set()

    def _collections(self, doc: Any) -> Any:
        vector, feeds, scenes = set(self.vector_collections()), self._feeds(), set(self._scenes())
        for entry in doc.get("collections", []):
            self._add_to_collection(entry, vector, feeds, scenes)
        if self.raster_collections is not None and isinstance(doc.get("collections"), list):
            known = {entry.get("id") for entry in doc["collections"]}
            doc["collections"].extend(c for c in self.raster_collections() if c["id"] not in known)
        if self.catalog_collection is not None and isinstance(doc.get("collections"), list):
            try:
                doc["collections"].append(self.catalog_collection())
            except CIMError:  # the store cannot answer now: the list without the catalog
                pass
        return doc

    def _collection(self, doc: Any) -> Any:
        self._add_to_collection(doc, set(self.vector_collections()), self._feeds(), set(self._scenes()))
        return doc


def _rewritten(rewrite: Rewriter, body: bytes) -> bytes:
    return json.dumps(rewrite(json.loads(body)), ensure_ascii=False).encode()
