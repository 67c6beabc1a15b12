"""What the items endpoint adds around pygeoapi: CQL2 parsing, the ``datetime`` check and keyset paging.

Before pygeoapi runs, :func:`prepare` checks ``filter`` / ``filter-lang`` / ``filter-crs``,
``datetime`` and ``cursor`` and answers 400 with the reason when one is wrong. What it parsed
travels to :class:`ogcapi.provider.CIMFeatureProvider` in a context variable (pygeoapi calls the
provider in a worker thread: the endpoint runs it in a copy of its context).

pygeoapi itself would parse ``filter`` as CQL2 text with pygeofilter, which rejects valid CQL2 (the
temporal functions, JSON given with ``filter-lang=cql2-json``); :func:`install` replaces the parse
function pygeoapi's items module calls by one returning the filter parsed here (see
:mod:`cim.store.cql2_parse`), so pygeoapi keeps its own handling of every other parameter and link.

Paging: a ``cursor`` stands for the page that starts after the row it names; pygeoapi is told the
page's position as ``offset``, so its own ``prev`` link (an offset without the cursor's position) and
numbering stay right. An explicit ``offset`` that differs from the cursor's position wins over the
cursor (plain offset paging). The provider gives the ``next`` link, with a new cursor.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pygeoapi.api.itemtypes as itemtypes_api
from pygeofilter import ast
from starlette.requests import Request

from cim.errors import InvalidQuery
from cim.store import Cql2Filter, Cursor, TimeInterval, parse_filter
from ogcapi import parameters


@dataclass(frozen=True)
class ItemsRequest:
    """The parts of an items request the provider needs besides pygeoapi's arguments."""

    #: ``{server}/collections/{id}/items``
    items_url: str
    #: the query parameters as received
    params: tuple[tuple[str, str], ...]
    filter: Cql2Filter | None = None
    datetime: TimeInterval | None = None
    cursor: Cursor | None = None
    #: the response is GeoJSON encoded by ogcapi.pygeoapi_json (geometries may stay encoded)
    geojson_output: bool = False

    def link(self, rel: str, title: str, **replace: str | int | None) -> dict[str, str]:
        """A link to this request with parameters replaced (None removes one)."""
        params = [(k, v) for k, v in self.params if k not in replace]
        params += [(k, str(v)) for k, v in replace.items() if v is not None]
        return {"rel": rel, "type": "application/geo+json", "title": title, "href": f"{self.items_url}?{urlencode(params)}"}


CURRENT: ContextVar[ItemsRequest | None] = ContextVar("cim_items_request", default=None)


class ParsedFilter(ast.Node):
    """Stands in pygeoapi's ``filterq`` for a filter parsed by :func:`prepare` (no sub-nodes, so
    pygeoapi's geometry rewriting leaves it alone)."""

    inline = True

    def __init__(self, filter_: Cql2Filter) -> None:
        self.filter = filter_

    def get_sub_nodes(self) -> list[Any]:
        return []

    def __repr__(self) -> str:
        return f"CQL2 {self.filter.source}"


def prepare(request: Request, items_url: str, crs_list: list[str]) -> ItemsRequest:
    """Check the generic parameters (:func:`ogcapi.parameters.items_parameters`: limit, offset,
    bbox), parse the request's filter, datetime and cursor; InvalidQuery says what is wrong."""
    query = request.query_params
    generic = parameters.items_parameters(query)
    filter_ = None
    lang, crs = query.get("filter-lang"), query.get("filter-crs")
    if (lang is not None or crs is not None) and "filter" not in query:
        raise InvalidQuery("filter-lang and filter-crs need a filter parameter")
    if crs is not None and crs not in crs_list:
        raise InvalidQuery(f"unsupported filter-crs {crs!r}: use one of the collection's crs ({', '.join(crs_list)})")
    if "filter" in query:
        filter_ = parameters.filter_(query["filter"], lang, crs)
    interval = parameters.datetime(query["datetime"]) if "datetime" in query else None
    cursor = parameters.cursor(query["cursor"]) if "cursor" in query else None
    if cursor is not None and generic.offset is not None and generic.offset != cursor.position:
        cursor = None  # an explicit other offset: plain offset paging
    return ItemsRequest(items_url, tuple(query.multi_items()), filter_, interval, cursor)


def _parse_for_pygeoapi(text: str) -> ast.Node:
    """pygeoapi's ``parse_cql2_text``, replaced: the filter :func:`prepare` parsed for this request."""
    current = CURRENT.get()
    if current is not None and current.filter is not None and current.filter.source == text:
        return ParsedFilter(current.filter)
    return ParsedFilter(parse_filter(text))


def install() -> None:
    """Make pygeoapi's items endpoint take filters parsed here (idempotent)."""
    itemtypes_api.parse_cql2_text = _parse_for_pygeoapi
