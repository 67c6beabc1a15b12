"""Bulk downloads in the documents: the ``rel=enclosure`` links of a collection and the path in the
OpenAPI document (ogcapi/downloads_routes.py), self-contained (inline schemas, no external ``$ref``).
Added by ogcapi/document_additions.py."""

from __future__ import annotations

from typing import Any

from cim.sharing.formats import DOWNLOAD_FORMATS, download_path

TAG = "downloads"
PATH = "/collections/{collectionId}/downloads/{format}"
_EXCEPTION = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"}},
}


def enclosure_links(base: str, collection_id: str) -> list[dict[str, str]]:
    """One ``enclosure`` link per download format of the collection's current release."""
    return [
        {"rel": "enclosure", "type": f.media_type, "title": f"{collection_id} as {f.title} (current release)",
         "href": f"{base}{download_path(collection_id, f.name)}"}
        for f in DOWNLOAD_FORMATS.values()
    ]  # fmt: skip


def _exception(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _EXCEPTION}}}


def downloads_paths() -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    headers = {
        "ETag": {"schema": {"type": "string"}, "description": "the sha256 of the file's bytes, quoted"},
        "Content-Disposition": {"schema": {"type": "string"}, "description": 'attachment; filename="<layer>-r<N>.<ext>"'},
    }
    return {
        PATH: {
            "get": {
                "tags": [TAG],
                "summary": "Download a vector collection as one file",
                "description": (
                    "The collection's features of the current release (with its edits, as /items serves them) or of"
                    " a kept past release (`release`), in the storage CRS, as GeoPackage (`gpkg`), GeoParquet 1.1"
                    " (`parquet`) or FlatGeobuf (`fgb`). Written on the first request (which waits for it), then"
                    " served from a file cache; supports `Range`, `HEAD` and `If-None-Match`."
                ),
                "operationId": "getCollectionDownload",
                "parameters": [
                    {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "a vector collection"},
                    {"name": "format", "in": "path", "required": True,
                     "schema": {"type": "string", "enum": list(DOWNLOAD_FORMATS)}},
                    {"name": "release", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
                     "description": "a kept past release (default: the current release)"},
                ],  # fmt: skip
                "responses": {
                    "200": {
                        "description": "the file",
                        "headers": headers,
                        "content": {f.media_type: binary for f in DOWNLOAD_FORMATS.values()},
                    },
                    "206": {"description": "the range asked for", "headers": headers},
                    "304": {"description": "the file named by If-None-Match is still current"},
                    "400": _exception("unknown format, a raster collection, or `release` not a release number"),
                    "401": _exception("a restricted collection without a valid bearer token"),
                    "403": _exception("the token lacks the collection's read role"),
                    "404": _exception("no such collection, or no such release"),
                    "410": _exception("the release was pruned (the description lists those kept)"),
                },
            }
        }
    }


def add_downloads_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the downloads path and its tag."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(downloads_paths())
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "Bulk downloads of the vector collections (GeoPackage, GeoParquet, FlatGeobuf)"})
    return doc


__all__ = ["add_downloads_paths", "downloads_paths", "enclosure_links"]
