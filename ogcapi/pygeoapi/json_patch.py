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

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def to_json(dict_: dict[str, Any], pretty: bool = False) -> str:
    """``pygeoapi.util.to_json`` with orjson (and :class:`orjson.Fragment` values embedded as is)."""
    options = OPTIONS | (orjson.OPT_INDENT_2 if pretty else 0)
    try:
        text = orjson.dumps(dict_, default=json_serial, option=options).decode()
    except TypeError:  # what orjson cannot encode (an integer over 64 bits, ...): pygeoapi's way
        return pygeoapi_to_json(dict_, pretty)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def install() -> None:
    """Make pygeoapi's items module (items, item, queryables) encode with :func:`to_json`."""
    itemtypes_api.to_json = to_json
