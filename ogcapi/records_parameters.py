"""The query of ``/collections/catalog/items`` (OGC API – Records), parsed by the rules of
:mod:`ogcapi.parameters`: each value a typed one or a 400 naming the parameter.

``q``, ``bbox`` (CRS84), ``datetime``, ``type``, ``externalIds``, ``ids``, ``sortby``, ``limit``,
``offset`` (what the next/prev links carry) and ``f``; ``crs`` and ``bbox-crs`` (Features Part 2,
as every collection has them) accept only CRS84, the records' one CRS. A parameter given with an empty value is
ignored (Records /req/record-core-query-parameters/empty-value); one given twice, or an unknown one,
is a 400.
"""

from __future__ import annotations

from collections.abc import Iterable

from cim.crs import CRS84_URI
from cim.errors import InvalidQuery
from cim.sharing.records_search import DEFAULT_LIMIT, MAX_LIMIT, RecordQuery, listed, sort_keys, terms
from ogcapi import parameters

RECORDS_PARAMETERS = frozenset(
    ("q", "bbox", "datetime", "type", "externalIds", "ids", "sortby", "limit", "offset", "f", "crs", "bbox-crs")
)


def records_query(items: Iterable[tuple[str, str]]) -> RecordQuery:
    """The records query of the request's (name, value) pairs."""
    given: dict[str, str] = {}
    for name, value in items:
        if name not in RECORDS_PARAMETERS:
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise InvalidQuery(f"unknown parameter {shown!r}: use {', '.join(sorted(RECORDS_PARAMETERS))}")
        if name in given:
            raise InvalidQuery(f"{name} is given more than once")
        given[name] = value
    given = {k: v for k, v in given.items() if v != ""}
    # the core's checks (length of q, number of terms, sortables) raise BadInput: 400 as well
    q = terms(given["q"]) if "q" in given else ()
    types = listed(given["type"], "type") if "type" in given else ()
    external = listed(given["externalIds"], "externalIds") if "externalIds" in given else ()
    ids = listed(given["ids"], "ids") if "ids" in given else ()
    sortby = sort_keys(given["sortby"]) if "sortby" in given else ()
    for name in ("crs", "bbox-crs"):
        if name in given:
            parameters.crs(given[name], name, [CRS84_URI])
    box = None
    if "bbox" in given:
        numbers = parameters.bbox(given["bbox"])
        box = (numbers[0], numbers[1], numbers[2], numbers[3]) if len(numbers) == 4 else (numbers[0], numbers[1], numbers[3], numbers[4])
    return RecordQuery(
        terms=q,
        bbox=box,
        interval=parameters.datetime(given["datetime"]) if "datetime" in given else None,
        types=types,
        external_ids=external,
        ids=ids,
        sortby=sortby,
        limit=parameters.integer(given["limit"], "limit", parameters.LIMIT_DIGITS, 1, MAX_LIMIT) if "limit" in given else DEFAULT_LIMIT,
        offset=parameters.offset(given["offset"]) if "offset" in given else 0,
    )
