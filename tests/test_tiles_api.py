"""OGC API - Tiles over the demo city, on both stores: tile matrix sets, tilesets, tiles, TileJSON, style, errors."""

from __future__ import annotations

import pytest

from layers.catalog import CATALOG
from support.tiles import BUFFER, EXTENT, coordinates, counts, decode, tile_at, tile_path

MVT = "application/vnd.mapbox-vector-tile"
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
DEMO_VECTOR = ["landuse", "water", "parcels", "roads", "admin_divisions", "buildings", "pois", "warnings"]  # warnings: the live layer every store has
TMS_IDS = ["WebMercatorQuad", "WorldCRS84Quad", "CGCS2000Quad"]


def test_tile_matrix_sets(api_client) -> None:
    listing = api_client.get("/tileMatrixSets").json()
    assert [t["id"] for t in listing["tileMatrixSets"]] == TMS_IDS
    for entry in listing["tileMatrixSets"]:
        (item,) = [link for link in entry["links"] if link["rel"] == "item"]
        doc = api_client.get(item["href"].replace("http://testserver", "")).json()
        assert doc["id"] == entry["id"] and doc["tileMatrices"]
    cgcs = api_client.get("/tileMatrixSets/CGCS2000Quad").json()
    assert cgcs["crs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert (cgcs["tileMatrices"][0]["matrixWidth"], cgcs["tileMatrices"][0]["matrixHeight"]) == (2, 1)
    assert cgcs["tileMatrices"][0]["pointOfOrigin"] == [90, -180]  # lat, lon: EPSG:4490 axis order
    web = api_client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert web["uri"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    assert api_client.get("/tileMatrixSets/NoSuchTileMatrixSet").status_code == 404


def test_landing_page_and_collections_link_vector_tilesets(api_client) -> None:
    landing = api_client.get("/").json()["links"]
    (tilesets,) = [link for link in landing if link["rel"] == TILESETS_VECTOR]
    assert tilesets["href"] == "http://testserver/tiles"
    schemes = [link for link in landing if link["rel"].endswith("/tiling-schemes")]
    assert [link["href"] for link in schemes] == ["http://testserver/tileMatrixSets"]
    for entry in api_client.get("/collections").json()["collections"]:
        links = [link["href"] for link in entry["links"] if link["rel"] == TILESETS_VECTOR]
        if entry.get("itemType") == "record":  # the layer catalog (OGC API - Records): records, no tiles
            assert entry["id"] == "catalog" and links == []
            continue
        assert links == [f"http://testserver/collections/{entry['id']}/tiles"]
    alone = api_client.get("/collections/buildings").json()["links"]
    assert [link["href"] for link in alone if link["rel"] == TILESETS_VECTOR] == ["http://testserver/collections/buildings/tiles"]


@pytest.mark.parametrize("prefix", ["/tiles", "/collections/roads/tiles"])
def test_tileset_lists_link_metadata_with_url_templates(api_client, prefix: str) -> None:
    listing = api_client.get(prefix).json()
    assert len(listing["tilesets"]) == len(TMS_IDS)
    for entry in listing["tilesets"]:
        assert entry["dataType"] == "vector"
        for link in entry["links"]:  # every link of a list entry resolves (what the ETS follows)
            assert api_client.get(link["href"].replace("http://testserver", "")).status_code == 200
        (self_link,) = [link for link in entry["links"] if link["rel"] == "self"]
        meta = api_client.get(self_link["href"].replace("http://testserver", "")).json()
        (item,) = [link for link in meta["links"] if link["rel"] == "item"]
        assert item["templated"] is True and item["type"] == MVT
        assert item["href"].endswith("/{tileMatrix}/{tileRow}/{tileCol}")
        assert any(link["rel"] == TILING_SCHEME for link in meta["links"])
        assert meta["tileMatrixSetLimits"] and meta["boundingBox"]["crs"].endswith("CRS84")
    registered = [e for e in listing["tilesets"] if not e["title"].endswith("(CGCS2000Quad)")]
    assert all(e["tileMatrixSetURI"].startswith("http://www.opengis.net/def/tilematrixset/OGC/1.0/") for e in registered)


def test_tileset_layers_carry_catalog_zoom_ranges(api_client) -> None:
    web = api_client.get("/tiles/WebMercatorQuad").json()
    assert [layer["id"] for layer in web["layers"]] == sorted(DEMO_VECTOR, key=lambda n: CATALOG[n].order)
    for layer in web["layers"]:
        spec = CATALOG[layer["id"]]
        assert (layer["minTileMatrix"], layer["maxTileMatrix"]) == (str(spec.minzoom), str(spec.maxzoom))
        assert set(layer["propertiesSchema"]["properties"]) == set(spec.tile_attributes)
    crs84 = api_client.get("/tiles/WorldCRS84Quad").json()
    # WorldCRS84Quad matrix z has the scale of WebMercatorQuad z + 1
    assert {l["id"]: l["minTileMatrix"] for l in crs84["layers"]}["buildings"] == str(CATALOG["buildings"].minzoom - 1)


def test_composite_tile_has_layers_in_range_with_tile_attributes_only(api_client) -> None:
    response = api_client.get(tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 15)))
    assert response.status_code == 200 and response.headers["content-type"] == MVT
    layers = decode(response.content)
    assert {"buildings", "roads", "pois"} <= set(layers) <= set(DEMO_VECTOR)
    for name, layer in layers.items():
        assert layer["extent"] == EXTENT
        allowed = set(CATALOG[name].tile_attributes)
        for feature in layer["features"]:
            assert set(feature["properties"]) <= allowed
            assert isinstance(feature["id"], int)
            for x, y in coordinates(feature["geometry"]):  # clipped to the tile plus its buffer
                assert -BUFFER <= x <= EXTENT + BUFFER and -BUFFER <= y <= EXTENT + BUFFER
    assert any(f["properties"].get("use") for f in layers["buildings"]["features"])


def test_composite_respects_zoom_ranges_collection_tiles_do_not(api_client) -> None:
    z12 = decode(api_client.get(tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 12))).content)
    assert "roads" in z12 and "landuse" in z12
    assert "buildings" not in z12 and "pois" not in z12  # minzoom 13 and 14
    z9 = decode(api_client.get(tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 9))).content)
    assert set(z9) == {"roads", "admin_divisions"}  # landuse starts at 10, water has nothing big enough here
    own = api_client.get(tile_path("/collections/buildings/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 12)))
    assert set(decode(own.content)) == {"buildings"}


@pytest.mark.parametrize("tms_id", ["WorldCRS84Quad", "CGCS2000Quad"])
def test_geographic_tile_matrix_sets(api_client, tms_id: str) -> None:
    tile = tile_at(tms_id, 14)
    response = api_client.get(tile_path("/tiles", tms_id, tile))
    assert response.status_code == 200
    layers = decode(response.content)
    assert {"buildings", "roads"} <= set(layers)
    for layer in layers.values():
        for feature in layer["features"]:
            for x, y in coordinates(feature["geometry"]):
                assert -BUFFER <= x <= EXTENT + BUFFER and -BUFFER <= y <= EXTENT + BUFFER


def test_tile_matrix_sets_at_the_same_scale_hold_the_same_layers(api_client) -> None:
    """CGCS2000 and WGS84 agree at map scale, so the two geographic tile matrix sets cut the same tiles."""
    tile = tile_at("WorldCRS84Quad", 13)
    crs84 = decode(api_client.get(tile_path("/tiles", "WorldCRS84Quad", tile)).content)
    cgcs = decode(api_client.get(tile_path("/tiles", "CGCS2000Quad", tile)).content)
    assert counts(crs84) == counts(cgcs)


def test_etag_304_and_cache_control(api_client) -> None:
    path = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 14))
    first = api_client.get(path)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"r0001-')
    assert "immutable" not in first.headers["cache-control"]  # the unpinned URL changes with the next release
    again = api_client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
    assert api_client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    # the composite holds an editable layer (landuse): edits change its tiles within a release
    pinned = api_client.get(path, params={"release": 1})
    assert pinned.headers["cache-control"] == "public, max-age=60"
    assert pinned.content == first.content and pinned.headers["etag"] == etag
    buildings = tile_path("/collections/buildings/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 14))
    pinned = api_client.get(buildings, params={"release": 1})
    assert pinned.status_code == 200 and pinned.headers["cache-control"] == "public, max-age=86400, immutable"
    assert api_client.get(buildings).headers["cache-control"] == "public, max-age=60"


@pytest.mark.parametrize("release", ["01", "1.0", " 1", "١", "-1", "one", ""])
def test_release_not_written_as_a_number_is_no_pin(api_client, release: str) -> None:
    """``?release=`` pins a tile URL only when it is the release's number as TileJSON writes it;
    anything else serves the tile unpinned (short max-age), never a 400."""
    buildings = tile_path("/collections/buildings/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 14))
    response = api_client.get(buildings, params={"release": release})
    assert response.status_code == 200 and response.headers["cache-control"] == "public, max-age=60"


def test_empty_tile_is_204(api_client) -> None:
    # between the two demo extracts (Kotka, Helsinki): inside the data extent, no feature
    path = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 14, 25.9, 60.35))
    response = api_client.get(path)
    assert response.status_code == 204 and response.content == b"" and response.headers["etag"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tiles/WebMercatorQuad/25/0/0", 404),  # beyond the tile matrix set's deepest matrix
        ("/tiles/WebMercatorQuad/3/8/0", 404),  # row out of range
        ("/tiles/WebMercatorQuad/3/0/8", 404),  # column out of range
        ("/tiles/WebMercatorQuad/3/-1/0", 404),
        ("/tiles/WorldCRS84Quad/0/1/0", 404),  # WorldCRS84Quad matrix 0 is 2 x 1
        ("/tiles/WebMercatorQuad/2/1/1", 404),  # in the tile matrix set, outside the tileset's limits
        ("/tiles/NoSuchTileMatrixSet/3/1/1", 404),
        ("/tiles/NoSuchTileMatrixSet", 404),
        ("/collections/nope/tiles", 404),
        ("/collections/nope/tiles/WebMercatorQuad/3/1/1", 404),
        ("/tiles/WebMercatorQuad/zz/1/1", 404),
        ("/tiles/WebMercatorQuad/3/a/1", 400),
        ("/tiles/WebMercatorQuad/3/1/1.5", 400),
        ("/tiles/WorldCRS84Quad/tilejson.json", 404),
        ("/tiles/WebMercatorQuad/14/4742/9327?f=png", 400),
    ],
)
def test_bad_tile_requests_are_ogc_exceptions(api_client, path: str, status: int) -> None:
    response = api_client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] and response.json()["description"]


def test_tilejson_for_maplibre(api_client) -> None:
    doc = api_client.get("/tiles/WebMercatorQuad/tilejson.json").json()
    assert doc["tilejson"] == "3.0.0" and doc["scheme"] == "xyz"
    assert doc["tiles"] == ["http://testserver/tiles/WebMercatorQuad/{z}/{y}/{x}?release=1"]
    assert {layer["id"] for layer in doc["vector_layers"]} == set(DEMO_VECTOR)
    assert doc["minzoom"] == min(CATALOG[n].minzoom for n in DEMO_VECTOR)
    west, south, east, north = doc["bounds"]
    assert west < 24.95 < east and south < 60.17 < north
    buildings = next(l for l in doc["vector_layers"] if l["id"] == "buildings")
    assert buildings["fields"] == {"name": "String", "use": "String", "height_m": "Number", "floors": "Number"}
    own = api_client.get("/collections/pois/tiles/WebMercatorQuad/tilejson.json").json()
    assert [l["id"] for l in own["vector_layers"]] == ["pois"] and "/collections/pois/tiles/" in own["tiles"][0]


def test_maplibre_style_references_existing_source_layers(api_client) -> None:
    response = api_client.get("/styles/basemap")
    assert response.headers["content-type"].startswith("application/vnd.mapbox.style+json")
    style = response.json()
    assert style["version"] == 8
    source_layers = {l["id"] for l in api_client.get("/tiles/WebMercatorQuad/tilejson.json").json()["vector_layers"]}
    ids = [layer["id"] for layer in style["layers"]]
    assert len(ids) == len(set(ids)) and ids[0] == "background"
    drawn = [layer for layer in style["layers"] if layer["type"] != "background"]
    # the live warnings layer last, as fill, outline and label (tests/test_warnings_style.py)
    assert [l["id"] for l in drawn[-3:]] == ["warnings", "warnings-outline", "warnings-label"]
    assert all(l["source-layer"] in source_layers for l in drawn[-3:])
    drawn = drawn[:-3]
    assert [l["source-layer"] for l in drawn] == sorted(set(DEMO_VECTOR) - {"warnings"}, key=lambda n: CATALOG[n].order)
    for layer in drawn:
        assert layer["source"] in style["sources"] and layer["source-layer"] in source_layers
        spec = CATALOG[layer["source-layer"]]
        assert spec.color in layer["paint"].values()
        assert layer["minzoom"] == spec.minzoom and layer["maxzoom"] == min(spec.maxzoom + 1, 24)
    assert {l["type"] for l in drawn} == {"fill", "line", "circle"}
    # boundaries over the rest (admin_divisions, order 50): outlines over a faint fill, not a cover
    (divisions,) = [l for l in drawn if l["source-layer"] == "admin_divisions"]
    assert 0 < divisions["paint"]["fill-opacity"] <= 0.1
    assert all("fill-opacity" not in l["paint"] for l in drawn if l["type"] == "fill" and l is not divisions)
    (source,) = style["sources"].values()
    assert source["type"] == "vector" and source["tiles"][0].endswith("{z}/{y}/{x}?release=1")


def test_openapi_describes_the_tile_paths(api_client) -> None:
    doc = api_client.get("/openapi", params={"f": "json"}).json()
    tile = doc["paths"]["/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"]["get"]
    assert "application/vnd.mapbox-vector-tile" in tile["responses"]["200"]["content"]
    for path in ("/tileMatrixSets", "/tiles", "/collections/{collectionId}/tiles/{tileMatrixSetId}", "/styles/basemap"):
        assert path in doc["paths"]
    params = doc["components"]["parameters"]
    assert params["tiles_collectionId"]["schema"]["enum"] == DEMO_VECTOR
    assert "/collections/buildings/items" in doc["paths"]  # pygeoapi's paths are kept


def test_conformance_declares_tiles(api_client) -> None:
    conforms = api_client.get("/conformance").json()["conformsTo"]
    for name in ("core", "tileset", "tilesets-list", "dataset-tilesets", "geodata-tilesets", "mvt", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}" in conforms
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/png" not in conforms
