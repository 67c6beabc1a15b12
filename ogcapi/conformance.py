"""The conformance classes this service declares — only those it really implements.

pygeoapi declares every class its feature API *can* support (CQL2, Part 4 transactions...) whatever
the provider does; we answer ``/conformance`` from this explicit list instead, kept in step with
docs/conformance.md and checked by tests/test_api_conformance.py (the ``/conformance`` endpoint
that answers with it: :mod:`ogcapi.pygeoapi.conformance`).
"""

from __future__ import annotations

from tiles.threed.model import CONF_GEOVOLUMES

COMMON = "http://www.opengis.net/spec/ogcapi-common-{part}/1.0/conf/{name}"
FEATURES = "http://www.opengis.net/spec/ogcapi-features-{part}/1.0/conf/{name}"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/{name}"
TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"
PROCESSES = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/{name}"
RECORDS = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/{name}"

DECLARED: tuple[str, ...] = (
    COMMON.format(part=1, name="core"),
    COMMON.format(part=1, name="landing-page"),
    COMMON.format(part=1, name="json"),
    COMMON.format(part=1, name="html"),
    COMMON.format(part=1, name="oas30"),
    COMMON.format(part=2, name="collections"),
    FEATURES.format(part=1, name="core"),
    FEATURES.format(part=1, name="geojson"),
    FEATURES.format(part=1, name="html"),
    FEATURES.format(part=1, name="oas30"),
    FEATURES.format(part=2, name="crs"),
    FEATURES.format(part=3, name="queryables"),
    FEATURES.format(part=3, name="queryables-query-parameters"),
    # Features Part 3 filtering with CQL2 (cim/store/cql2_parse.py, cim/store/sql/cql2*.py; tests/test_api_filter.py)
    FEATURES.format(part=3, name="filter"),
    FEATURES.format(part=3, name="features-filter"),
    *(
        CQL2.format(name=name)
        for name in (
            "cql2-text",
            "cql2-json",
            "basic-cql2",
            "advanced-comparison-operators",
            "case-insensitive-comparison",
            "basic-spatial-functions",
            "basic-spatial-functions-plus",
            "spatial-functions",
            "temporal-functions",
            "property-property",
        )
    ),
    # OGC API - Tiles 1.0 (vector tiles; ogcapi/tiles_routes.py, tests/test_tiles_api.py)
    TILES.format(name="core"),
    TILES.format(name="tileset"),
    TILES.format(name="tilesets-list"),
    TILES.format(name="dataset-tilesets"),
    TILES.format(name="geodata-tilesets"),
    TILES.format(name="mvt"),
    TILES.format(name="oas30"),
    # OGC API - Processes 1.0 (ogcapi/processes_routes.py, the jobs' routes; tests/test_processes_api.py);
    # not callback (no subscriber URLs are called)
    *(PROCESSES.format(name=name) for name in ("core", "ogc-process-description", "json", "html", "oas30", "job-list", "dismiss")),
    # OGC API - Records 1.0: the layer catalog, /collections/catalog (ogcapi/records_routes.py;
    # tests/test_sharing_records_api.py); not the local resources catalog (no q/bbox on /collections)
    *(RECORDS.format(name=name) for name in (
        "core", "record-core", "record-collection", "records-api", "record-core-query-parameters", "json", "html", "oas30",
        "sorting", "searchable-catalog",
    )),
)


#: Features Part 4 (ogcapi/edit_routes.py; tests/test_api_edits.py), declared when a collection is editable
EDITING: tuple[str, ...] = (
    FEATURES.format(part=4, name="create-replace-delete"),
    FEATURES.format(part=4, name="update"),
)


#: Tiles map tiles of raster collections (ogcapi/tiles_map_routes.py; tests/test_tiles_rasters.py), declared
#: when the release has a raster layer: PNG (hillshade, terrain-RGB, Terrarium, imagery) and JPEG
#: (hillshade, imagery). WebP tiles are served too, but Tiles 1.0 has no WebP class.
MAP_TILES: tuple[str, ...] = (TILES.format(name="png"), TILES.format(name="jpeg"))


#: OGC API - 3D GeoVolumes (draft 22-029) Core and 3D Tiles (ogcapi/threed_routes.py; tests/test_3d_api.py),
#: declared when the release has a lod1 collection: it has a 3D bounding box in its extent and a link
#: rel [ogc-rel:3d-geovolumes] (application/3dtiles+json) to its 3D Tiles 1.1 tileset, all of whose
#: contents are served. Not i3s, 2dtms-tiles, point-tiles nor batched-3d-models-tiles.
GEOVOLUMES: tuple[str, ...] = CONF_GEOVOLUMES


def declared(editable: bool, rasters: bool, scenes: bool = False) -> list[str]:
    """The classes of this service: DECLARED, plus Part 4 when a collection is ``editable``, plus
    the map tile encodings when a collection is a raster layer (``rasters``), plus 3D GeoVolumes when
    a collection has LOD1 buildings served as 3D Tiles (``scenes``)."""
    out = list(DECLARED) + (list(EDITING) if editable else []) + (list(MAP_TILES) if rasters else [])
    return out + (list(GEOVOLUMES) if scenes else [])
