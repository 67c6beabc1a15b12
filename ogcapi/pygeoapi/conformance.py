"""``/conformance`` as a pygeoapi endpoint function, answered from :func:`ogcapi.conformance.declared`
(pygeoapi's own declares every class its feature API *can* support, whatever the provider does)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pygeoapi.api import API, APIRequest
from pygeoapi.util import render_j2_template, to_json

from ogcapi.conformance import declared


def conformance(api: API, request: APIRequest) -> tuple[dict[str, Any], int, str]:
    """pygeoapi-style endpoint function: the declared classes as JSON or HTML."""
    resources = api.config.get("resources", {}).values()
    editable = any(p.get("editable") for r in resources for p in r.get("providers", []))
    rasters = bool(api.config.get("cim", {}).get("raster_collections"))
    scenes = bool(api.config.get("cim", {}).get("scene_collections"))
    content = {"conformsTo": declared(editable, rasters, scenes)}
    headers = request.get_response_headers(**api.api_headers)
    if request.format == "html":
        html = render_j2_template(
            api.tpl_config, api.config["server"]["templates"], "conformance.html", content, request.locale
        )
        return headers, HTTPStatus.OK, html
    return headers, HTTPStatus.OK, to_json(content, api.pretty_print)
