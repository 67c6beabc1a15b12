"""What /conformance declares is exactly what this service implements (and nothing pygeoapi merely could)."""

from __future__ import annotations

from ogcapi.conformance import DECLARED, EDITING, GEOVOLUMES

FEATURES_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"


def test_declares_core_classes(api_client) -> None:
    conforms = api_client.get("/conformance").json()["conformsTo"]
    # the demo's landuse layer is editable; its buildings are lod1 (3D Tiles: OGC API - 3D GeoVolumes)
    assert conforms == list(DECLARED) + list(EDITING) + list(GEOVOLUMES)
    for name in ("core", "geojson", "html", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{name}" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms


def test_does_not_declare_unimplemented_classes(api_client) -> None:
    conforms = api_client.get("/conformance").json()["conformsTo"]
    unimplemented = ("arithmetic", "accent-insensitive-comparison", "array-functions", "/conf/functions")
    assert not [c for c in conforms if "/cql2/" in c and c.endswith(unimplemented)]


def test_declares_cql2_filtering(api_client) -> None:
    conforms = api_client.get("/conformance").json()["conformsTo"]
    for name in ("filter", "features-filter"):
        assert f"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/{name}" in conforms
    for name in ("cql2-text", "cql2-json", "basic-cql2", "advanced-comparison-operators", "basic-spatial-functions",
                 "spatial-functions", "temporal-functions", "case-insensitive-comparison"):
        assert f"http://www.opengis.net/spec/cql2/1.0/conf/{name}" in conforms


def test_conformance_html(api_client) -> None:
    response = api_client.get("/conformance", params={"f": "html"})
    assert response.status_code == 200 and FEATURES_CORE in response.text
