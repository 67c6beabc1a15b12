"""OGC API – 3D GeoVolumes in the documents: the paths of the 3D Tiles routes (ogcapi/threed_routes.py)
in the OpenAPI document, self-contained (inline schemas, no external ``$ref``), and the
``[ogc-rel:3d-geovolumes]`` links of collections and the landing page. Added by
ogcapi/document_additions.py."""

from __future__ import annotations

from typing import Any

from tiles.threed.model import GLB_MEDIA_TYPE, REL_3D_GEOVOLUMES, TILESET_LINK_TYPE, TILESET_MEDIA_TYPE

TAG = "3D GeoVolumes"
#: the path of a collection's tileset (ogcapi/threed_routes.py)
TILESET_PATH = "/collections/{collectionId}/3dtiles"
#: the path of a content (the last segment is ``{y}.glb``)
CONTENT_PATH = "/collections/{collectionId}/3dtiles/{level}/{x}/{y}.glb"
SUFFIX = ".glb"
#: the deepest quadtree level a content can have (a level-30 cell is ~4 cm wide)
MAX_LEVEL = 30
#: digits of a level / x / y read before they are refused (2^30 needs 10)
INDEX_DIGITS = 10
#: the 3D viewer (ogcapi/viewer3d.py, built beside this), linked from the landing page
VIEWER_PATH = "/viewer/3d"
_EXCEPTION = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"}},
}
_ETAG = {"ETag": {"schema": {"type": "string"}, "description": "the version of the resource, quoted"}}


def tileset_href(base: str, collection_id: str) -> str:
    """The absolute URL of a collection's tileset (current release)."""
    return f"{base.rstrip('/')}/collections/{collection_id}/3dtiles"


def content_href(base: str, collection_id: str, release: int, level: int, x: int, y: int) -> str:
    """The absolute URL of a content, pinned to ``release``."""
    return f"{tileset_href(base, collection_id)}/{level}/{x}/{y}{SUFFIX}?release={release}"


def geovolumes_link(base: str, collection_id: str) -> dict[str, str]:
    """The collection's link to its 3D Tiles tileset (GeoVolumes /req/3dtiles/tileset)."""
    return {"rel": REL_3D_GEOVOLUMES, "type": TILESET_LINK_TYPE, "title": f"3D Tiles of {collection_id} (LOD1, current release)",
            "href": tileset_href(base, collection_id)}  # fmt: skip


def viewer_link(base: str) -> dict[str, str]:
    """The landing page's link to the 3D viewer (an interactive page: OGC rel ``map``, text/html)."""
    return {"rel": "http://www.opengis.net/def/rel/ogc/1.0/map", "type": "text/html", "title": "3D viewer",
            "href": f"{base.rstrip('/')}{VIEWER_PATH}"}  # fmt: skip


def _exception(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _EXCEPTION}}}


def _parameters(collections: list[str], content: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string", "enum": collections or [""]},
         "description": "a collection with LOD1 buildings (3D Tiles)"},
    ]  # fmt: skip
    if content:
        index = {"type": "integer", "minimum": 0, "maximum": 2**MAX_LEVEL - 1}
        out += [
            {"name": "level", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LEVEL},
             "description": "quadtree level of the tile (as its content URI in tileset.json names it)"},
            {"name": "x", "in": "path", "required": True, "schema": index, "description": "column of the tile in its level"},
            {"name": "y", "in": "path", "required": True, "schema": index, "description": "row of the tile in its level"},
        ]  # fmt: skip
    out.append(
        {"name": "release", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
         "description": "the release to serve (default: the current one); content URIs in tileset.json carry it"}
    )  # fmt: skip
    return out


def threed_paths(collections: list[str]) -> dict[str, Any]:
    """The two paths, for the lod1 ``collections``."""
    common = {
        "400": _exception("`release` is not a release number, or a path value is not an integer"),
        "401": _exception("a restricted collection without a valid bearer token"),
        "403": _exception("the token lacks the collection's read role"),
        "404": _exception("no such collection, not a collection with 3D Tiles, no such release or tile"),
        "410": _exception("the release was pruned (the description lists those kept)"),
    }
    return {
        TILESET_PATH: {
            "get": {
                "tags": [TAG],
                "summary": "The 3D Tiles 1.1 tileset of a collection's LOD1 buildings",
                "description": (
                    "tileset.json: a quadtree of tiles with region bounding volumes and geometric errors; each leaf's"
                    " content is a GLB (glTF 2.0, EXT_mesh_features + EXT_structural_metadata: one feature per"
                    " building with its attributes), addressed by an absolute URI pinned to the release."
                ),
                "operationId": "getCollection3DTileset",
                "parameters": _parameters(collections, content=False),
                "responses": {
                    "200": {"description": "the tileset", "headers": _ETAG,
                            "content": {TILESET_MEDIA_TYPE: {"schema": {"type": "object", "required": ["asset", "root"]}}}},
                    "304": {"description": "the tileset named by If-None-Match is still current"},
                    **common,
                },  # fmt: skip
            }
        },
        CONTENT_PATH: {
            "get": {
                "tags": [TAG],
                "summary": "The GLB content of one 3D tile",
                "description": (
                    "LOD1 blocks of the buildings whose centroid lies in the tile's cell, positions relative to the"
                    " tile's transform. Long-lived caching when `release` names the release of the content."
                ),
                "operationId": "getCollection3DTileContent",
                "parameters": _parameters(collections, content=True),
                "responses": {
                    "200": {"description": "the tile's glTF binary", "headers": _ETAG,
                            "content": {GLB_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                    "304": {"description": "the content named by If-None-Match is still current"},
                    **common,
                },  # fmt: skip
            }
        },
    }


def add_threed_paths(doc: dict[str, Any], collections: list[str]) -> dict[str, Any]:
    """``doc`` with the 3D Tiles paths and their tag."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(threed_paths(collections))
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "OGC API - 3D GeoVolumes: 3D Tiles of the LOD1 buildings"})
    return doc


__all__ = [
    "CONTENT_PATH", "TILESET_PATH", "VIEWER_PATH", "add_threed_paths", "content_href", "geovolumes_link", "threed_paths",
    "tileset_href", "viewer_link",
]
