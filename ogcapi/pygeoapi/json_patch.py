"""JSON encoding of pygeoapi's feature responses with orjson.

pygeoapi's ``to_json`` is ``json.dumps``: for an items page of 1,000 buildings it took 12–23 ms,
after the provider had parsed every geometry out of the GeoJSON text the database wrote. Here the
items module of pygeoapi encodes with orjson instead, and the provider leaves geometries as the
database wrote them (``orjson.Fragment``, see ``FeatureQuery.encoded_geometry``) whenever the
response is GeoJSON, so a geometry is never parsed and encoded again.

The output is the same JSON as pygeoapi's: compact separators, dates and other non-JSON values
through pygeoapi's own ``json_serial``, ``<`` and ``>`` escaped as pygeoapi does; differences are
non-ASCII text, written as UTF-8 instead of ``\\u`` escapes, and NaN, written as ``null`` (valid
JSON) instead of ``NaN``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pygeoapi.api.itemtypes as itemtypes_api
from pygeoapi.util import json_serial
from pygeoapi.util import to_json as pygeoapi_to_json

from cim.catalog import load_catalog
from cim.errors import CIMError

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def to_json(dict_: dict[str, Any], pretty: bool = False) -> str:
    """``pygeoapi.util.to_json`` with orjson (and :class:`orjson.Fragment` values embedded as is)."""
    interval_roles(dict_)
    options = OPTIONS | (orjson.OPT_INDENT_2 if pretty else 0)
    try:
        text = orjson.dumps(dict_, default=json_serial, option=options).decode()
    except TypeError:  # what orjson cannot encode (an integer over 64 bits, ...): pygeoapi's way
        return pygeoapi_to_json(dict_, pretty)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def interval_roles(document: dict[str, Any]) -> None:
    """In the queryables of a layer valid over intervals (``LayerSpec.temporal_end_field``), mark its
    start and end with the Features Part 5 (draft) roles ``primary-interval-start`` and
    ``primary-interval-end`` where pygeoapi marks the start alone as ``primary-instant``."""
    ident = document.get("$id")
    properties = document.get("properties")
    if not isinstance(ident, str) or not isinstance(properties, dict):
        return
    path = ident.split("?", 1)[0]
    if not path.endswith("/queryables"):
        return
    layer = path.rsplit("/", 2)[-2]
    try:
        spec = load_catalog()[layer]
    except (KeyError, CIMError):
        return
    start, end = spec.temporal_field, spec.temporal_end_field
    if end is None:
        return
    if isinstance(properties.get(start), dict):
        properties[start]["x-ogc-role"] = "primary-interval-start"
    if isinstance(properties.get(end), dict):
        properties[end]["x-ogc-role"] = "primary-interval-end"


def install() -> None:
    """Make pygeoapi's items module (items, item, queryables) encode with :func:`to_json`."""
    itemtypes_api.to_json = to_json
