"""What /conformance declares is exactly what this service implements (and nothing pygeoapi merely could)."""

from __future__ import annotations

from ogcapi.conformance import DECLARED

FEATURES_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"


def test_declares_core_classes(api_client) -> None:
    conforms = api_client.get("/conformance").json()["conformsTo"]
    assert conforms == list(DECLARED)
    for name in ("core", "geojson", "html", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{name}" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms


def test_does_not_declare_unimplemented_classes(api_client) -> None:
    conforms = api_client.get("/conformance").json()["conformsTo"]
    assert not [c for c in conforms if "/cql2/" in c or "ogcapi-features-4" in c or "conf/filter" in c]


def test_conformance_html(api_client) -> None:
    response = api_client.get("/conformance", params={"f": "html"})
    assert response.status_code == 200 and FEATURES_CORE in response.text
