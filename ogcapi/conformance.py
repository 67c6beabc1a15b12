"""The conformance classes this service declares — only those it really implements.

pygeoapi declares every class its feature API *can* support (CQL2, Part 4 transactions...) whatever
the provider does; we answer ``/conformance`` from this explicit list instead, kept in step with
docs/conformance.md and checked by tests/test_api_conformance.py.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pygeoapi.api import API, APIRequest
from pygeoapi.util import render_j2_template, to_json

COMMON = "http://www.opengis.net/spec/ogcapi-common-{part}/1.0/conf/{name}"
FEATURES = "http://www.opengis.net/spec/ogcapi-features-{part}/1.0/conf/{name}"

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
)


def conformance(api: API, request: APIRequest) -> tuple[dict[str, Any], int, str]:
    """pygeoapi-style endpoint function: the declared classes as JSON or HTML."""
    content = {"conformsTo": list(DECLARED)}
    headers = request.get_response_headers(**api.api_headers)
    if request.format == "html":
        html = render_j2_template(
            api.tpl_config, api.config["server"]["templates"], "conformance.html", content, request.locale
        )
        return headers, HTTPStatus.OK, html
    return headers, HTTPStatus.OK, to_json(content, api.pretty_print)
