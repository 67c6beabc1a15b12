"""pygeoapi's items endpoint, made to take the filter :mod:`ogcapi.parameters` parsed.

pygeoapi itself would parse ``filter`` as CQL2 text with pygeofilter, which rejects valid CQL2 (the
temporal functions, JSON given with ``filter-lang=cql2-json``); :func:`install` replaces the parse
function pygeoapi's items module calls by one returning the filter already parsed for this request
(carried in :data:`ogcapi.pygeoapi.request.CURRENT`; see :mod:`cim.store.cql2_parse`), so pygeoapi
keeps its own handling of every other parameter and link.

``datetime`` outside a collection's temporal extent selects nothing rather than a 400 (see
:func:`_datetime_as_parsed`).

Paging: a ``cursor`` stands for the page that starts after the row it names; pygeoapi is told the
page's position as ``offset`` (:mod:`ogcapi.pygeoapi.mount`), so its own ``prev`` link (an offset
without the cursor's position) and numbering stay right. An explicit ``offset`` that differs from
the cursor's position wins over the cursor (plain offset paging). The provider gives the ``next``
link, with a new cursor.
"""

from __future__ import annotations

from typing import Any

import pygeoapi.api.itemtypes as itemtypes_api
from pygeofilter import ast

from cim.errors import InvalidQuery
from cim.store import Cql2Filter
from ogcapi.pygeoapi.request import CURRENT, ItemsRequest


class ParsedFilter(ast.Node):
    """Stands in pygeoapi's ``filterq`` for a filter parsed by :mod:`ogcapi.parameters` (no
    sub-nodes, so pygeoapi's geometry rewriting leaves it alone)."""

    inline = True

    def __init__(self, filter_: Cql2Filter) -> None:
        self.filter = filter_

    def get_sub_nodes(self) -> list[Any]:
        return []

    def __repr__(self) -> str:
        return f"CQL2 {self.filter.source}"


def _parse_for_pygeoapi(text: str) -> ast.Node:
    """pygeoapi's ``parse_cql2_text``, replaced: the filter parsed for this request."""
    current = CURRENT.get()
    if isinstance(current, ItemsRequest) and current.values.filter is not None and current.values.filter.source == text:
        return ParsedFilter(current.values.filter)
    # the mount parses every items request's filter first: a filter it did not parse did not come
    # through it
    raise InvalidQuery("the filter was not read from the request's filter parameter")


def _datetime_as_parsed(extents: Any, datetime_: str) -> str:
    """pygeoapi's ``validate_datetime``, replaced: ``datetime`` was parsed by ogcapi.parameters (a
    400 for what is not a date, time or interval); a time outside the collection's temporal extent
    selects nothing (an empty page), where pygeoapi answered 400 "out of range" — wrong for a
    collection whose extent grows, as the warnings' does, and not what OGC API - Features asks."""
    return datetime_


def install() -> None:
    """Make pygeoapi's items endpoint take filters parsed by ogcapi.parameters (idempotent)."""
    itemtypes_api.parse_cql2_text = _parse_for_pygeoapi
    itemtypes_api.validate_datetime = _datetime_as_parsed
