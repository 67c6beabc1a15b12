"""Where the strings of a request become typed values, or a 400 naming the parameter.

One module, in the spirit of tipg's ``dependencies.py``: every path and query value the features
endpoints and the tile routes read is parsed here, by the same rules, before anything else
(pygeoapi included) sees the request:

- which query parameters each features endpoint defines (:data:`KNOWN`); the items endpoint
  answers any other one, unless it names a property of the collection, with 400
  (Features Part 1 /req/core/query-param-unknown: :func:`check_known`);
- integers are ASCII digits only (``re.fullmatch("[0-9]+")``) of bounded length — ``int()`` and
  ``str.isdigit()`` accept Unicode digits (``¹``, ``١``), which then crashed or were read as 1;
- numbers are ASCII decimal notation, finite (no ``nan``, ``inf``, ``1e999``);
- counts stay within :func:`cim.limits.limits` (``max_features``) and offsets within what a
  database's 64-bit integer holds;
- a ``bbox`` has 4 or 6 numbers, min ≤ max in y, and longitudes/latitudes within the world when
  its CRS is CRS84 (the default); ``bbox-crs``, ``crs`` and ``filter-crs`` are one of the
  collection's CRSs;
- ``sortby`` and ``properties`` name properties of the collection;
- ``filter`` is measured before it is parsed (:func:`cim.store.cql2_parse.parse_filter` checks
  length and nesting first); ``datetime`` (RFC 3339 instants and intervals) and ``cursor`` (the
  wire form of :class:`cim.store.sql.keyset.Cursor`) are read here, into the store's value types.

:class:`cim.errors.InvalidQuery` (400, OGC ``InvalidParameterValue``) carries each refusal.
``f`` and ``lang`` (the response's encoding and language) are negotiated by the features API
itself (:mod:`ogcapi.pygeoapi`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date
from datetime import datetime as Datetime
from typing import Iterable, Mapping

from morecantile import Tile

from cim.crs import CRS84_URI
from cim.errors import InvalidQuery, NotFound
from cim.limits import limits
from cim.store import Cql2Filter, Cursor, TimeInterval, bound_moment, parse_filter

#: digits of the largest offset accepted: 10^15 − 1 rows, far below a 64-bit integer's 9.2·10^18
#: (offset + limit must still fit in the databases' BIGINT)
OFFSET_DIGITS = 15
MAX_OFFSET = 10**OFFSET_DIGITS - 1
#: digits of a feature id (a 64-bit integer: below 2^63)
FEATURE_ID_DIGITS = 19
#: a zoom level (tile matrix): the tile matrix sets served go to 23 (with leading zeros: "014" is 14)
TILE_MATRIX_DIGITS = 4
#: a tile row or column: 2^30 tiles per side at zoom 30 needs 10 digits
TILE_INDEX_DIGITS = 10
#: digits read of a ``limit`` before it is compared with the maximum (longer: refused unread)
LIMIT_DIGITS = 20
#: a number in a bbox: sign, digits, point, exponent
NUMBER_CHARS = 40

_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
#: CRS84 (lon/lat) and the OGC URI forms of it that clients send
_CRS84 = {CRS84_URI, "https://www.opengis.net/def/crs/OGC/1.3/CRS84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84h"}


def _show(value: str, width: int = 40) -> str:
    """``value`` for a message: quoted, escaped, cut."""
    return repr(value if len(value) <= width else value[:width] + "…")


def integer(value: str, name: str, digits: int, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` as a non-negative integer written in ASCII digits (at most ``digits`` of them)."""
    if len(value) > digits or not _DIGITS.fullmatch(value):
        bound = f"at most {digits} digits" if maximum is None else f"{minimum}..{maximum}"
        raise InvalidQuery(f"{name} must be an integer in ASCII digits ({bound}); got {_show(value)}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InvalidQuery(f"{name} must be {bounds}; got {number}")
    return number


def number(value: str, name: str) -> float:
    """``value`` as a finite number in ASCII decimal notation (``12``, ``-0.5``, ``1.5e3``)."""
    text = value.strip()
    if len(text) > NUMBER_CHARS or not _NUMBER.fullmatch(text):
        raise InvalidQuery(f"{name} must be a decimal number; got {_show(value)}")
    result = float(text)
    if not math.isfinite(result):
        raise InvalidQuery(f"{name} must be a finite number; got {_show(value)}")
    return result


def tile_matrix(value: str) -> int:
    """A ``tileMatrix`` path value: the identifier of a zoom level, ASCII digits. Any other
    identifier names no tile matrix of the tile matrix sets served: NotFound (404), as an unknown
    tile matrix set is."""
    if len(value) > TILE_MATRIX_DIGITS or not _DIGITS.fullmatch(value):
        raise NotFound(f"no tile matrix {_show(value)}: tile matrices are numbered 0, 1, 2... (ASCII digits)")
    return int(value)


def tile_index(value: str, name: str) -> int:
    """A ``tileRow`` / ``tileCol`` path value: an integer (a negative one is outside every tile
    matrix set: the engine's range check answers 404)."""
    if len(value) > TILE_INDEX_DIGITS + 1 or not _SIGNED.fullmatch(value):
        raise InvalidQuery(f"{name} must be an integer in ASCII digits; got {_show(value)}")
    return int(value)


def feature_id(value: str) -> int | None:
    """A ``featureId`` path value as the integer id features have (a 64-bit integer in ASCII
    digits); None when it cannot be one (the caller answers 404: no such feature)."""
    if len(value) > FEATURE_ID_DIGITS or not _DIGITS.fullmatch(value) or int(value) >= 2**63:
        return None
    return int(value)


def limit(value: str) -> int:
    """``limit``: features per page, 1..``limits().max_features``."""
    return integer(value, "limit", LIMIT_DIGITS, 1, limits().max_features)


def offset(value: str) -> int:
    """``offset``: features to skip, 0..10^15−1."""
    return integer(value, "offset", OFFSET_DIGITS)


def bbox(value: str, crs: str | None = None) -> tuple[float, ...]:
    """``bbox``: 4 (minx,miny,maxx,maxy) or 6 (with minz, maxz) finite numbers, in ``crs``'s
    axis order (``bbox-crs``; CRS84 when None): within ±180 / ±90 for CRS84, min y ≤ max y."""
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise InvalidQuery(f"bbox must have 4 or 6 comma-separated numbers; got {len(parts)}")
    numbers = tuple(number(p, "bbox") for p in parts)
    lower, upper = (numbers[:2], numbers[2:]) if len(numbers) == 4 else (numbers[:2], numbers[3:5])
    if lower[1] > upper[1]:
        raise InvalidQuery(f"bbox: the minimum y ({lower[1]}) is greater than the maximum ({upper[1]})")
    if crs is None or crs in _CRS84:
        for lon in (lower[0], upper[0]):
            if not -180 <= lon <= 180:
                raise InvalidQuery(f"bbox: longitude {lon} is outside -180..180 (CRS84)")
        for lat in (lower[1], upper[1]):
            if not -90 <= lat <= 90:
                raise InvalidQuery(f"bbox: latitude {lat} is outside -90..90 (CRS84)")
    return numbers


def crs(value: str, name: str, supported: Iterable[str]) -> str:
    """``crs``, ``bbox-crs`` or ``filter-crs``: one of the collection's CRS URIs."""
    supported = list(supported)
    if value not in supported:
        raise InvalidQuery(f"unsupported {name} {_show(value, 80)}: use one of the collection's crs ({', '.join(supported)})")
    return value


def property_names(value: str, name: str, properties: Iterable[str]) -> tuple[str, ...]:
    """``properties``: comma-separated names of the collection's properties."""
    names = tuple(value.split(","))
    unknown = [n for n in names if n not in properties]
    if unknown:
        raise InvalidQuery(f"{name}: no property {_show(unknown[0])} in the collection")
    return names


def sortby(value: str, properties: Iterable[str]) -> tuple[tuple[str, bool], ...]:
    """``sortby``: comma-separated property names, each with an optional ``+`` (ascending, the
    default) or ``-`` (descending) prefix; as (property, ascending) pairs."""
    keys = []
    for part in value.split(","):
        ascending = not part.startswith("-")
        keys.append((part[1:] if part[:1] in ("+", "-") else part, ascending))
    property_names(",".join(k for k, _ in keys), "sortby", properties)
    return tuple(keys)


def flag(value: str) -> bool:
    """A boolean query value (``skipGeometry``) read as the features API reads it: ``true``,
    ``yes``, ``t``, ``1`` or ``on`` (any case) is true, anything else false."""
    return value.lower() in ("yes", "true", "t", "1", "on")


#: an open end of a ``datetime`` interval
_OPEN = ("..", "")


def _instant(text: str, whole: str) -> date | Datetime:
    """An RFC 3339 date (``2024-05-01``) or date-time (a zone-less one is read as UTC)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        if "T" not in text.upper() or len(text) < 20:
            raise ValueError(text)
        value = Datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQuery(
            f"invalid datetime {whole!r}: use an RFC 3339 date-time (2024-05-01T08:00:00Z), a date "
            "(2024-05-01) or an interval start/end with '..' for an open end"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def datetime(value: str) -> TimeInterval:
    """``datetime``: an RFC 3339 instant (date-time, or a date: the whole day) or an interval
    ``start/end`` whose open ends are ``..`` or empty."""
    text = value.strip()
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 2:
            raise InvalidQuery(f"invalid datetime {value!r}: an interval has one '/'")
        start = None if parts[0] in _OPEN else _instant(parts[0], value)
        end = None if parts[1] in _OPEN else _instant(parts[1], value)
        if start is None and end is None:
            raise InvalidQuery(f"invalid datetime {value!r}: an interval needs at least one end")
        if start is not None and end is not None and bound_moment(start, end=False) >= bound_moment(end, end=True):
            raise InvalidQuery(f"invalid datetime {value!r}: the start is after the end")
        return TimeInterval(start, end)
    instant = _instant(text, value)
    return TimeInterval(instant, instant)


def cursor(value: str) -> Cursor:
    """``cursor``: the opaque page position of a next link (:meth:`cim.store.sql.keyset.Cursor.decode`)."""
    try:
        result = Cursor.decode(value)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply inside the base64
        result = None
    if result is None or result.position > MAX_OFFSET:
        raise InvalidQuery("invalid cursor: use the next link of a previous page unchanged")
    return result


def filter_(value: str, lang: str | None, crs: str | None) -> Cql2Filter:
    """``filter`` with ``filter-lang`` and ``filter-crs`` (:func:`cim.store.cql2_parse.parse_filter`,
    which measures length and nesting before the parser sees the text)."""
    return parse_filter(value, lang, crs)


#: the query parameters each features endpoint defines; the items endpoint also takes the
#: collection's properties (``name=value``: equality)
KNOWN: dict[str, frozenset[str]] = {
    "collections": frozenset({"f", "lang"}),
    "queryables": frozenset({"f", "lang", "profile"}),
    "item": frozenset({"f", "lang", "crs"}),
    "items": frozenset(
        {"f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "resulttype", "properties",
         "sortby", "skipGeometry", "filter", "filter-lang", "filter-crs", "cursor"}
    ),
}  # fmt: skip
#: the endpoints that refuse a query parameter they do not define (Features Part 1
#: /req/core/query-param-unknown); the others ignore it
STRICT = frozenset({"items"})


def unknown_parameters(endpoint: str, names: Iterable[str], properties: Iterable[str] = ()) -> list[str]:
    """The query parameters among ``names`` that ``endpoint`` (a key of :data:`KNOWN`) does not
    define, sorted; for items the collection's ``properties`` are defined too."""
    known = KNOWN[endpoint] | (frozenset(properties) if endpoint == "items" else frozenset())
    return sorted({n for n in names if n not in known})


def check_known(endpoint: str, names: Iterable[str], properties: Iterable[str] = ()) -> None:
    """Refuse (InvalidQuery) the query parameters ``endpoint`` does not define, when it is one of
    the :data:`STRICT` endpoints."""
    if endpoint in STRICT and (unknown := unknown_parameters(endpoint, names, properties)):
        raise InvalidQuery(f"unknown query parameter(s): {', '.join(unknown)}")


@dataclass(frozen=True)
class ItemsParameters:
    """The typed values of an items request's parameters (None: not given)."""

    limit: int | None = None
    offset: int | None = None
    bbox: tuple[float, ...] | None = None
    bbox_crs: str | None = None
    crs: str | None = None
    sortby: tuple[tuple[str, bool], ...] | None = None
    properties: tuple[str, ...] | None = None
    skip_geometry: bool = False
    hits: bool = False
    filter: Cql2Filter | None = None
    datetime: TimeInterval | None = None
    #: the page after a previous page's last row; None when an explicit other ``offset`` is given
    #: (plain offset paging wins)
    cursor: Cursor | None = None


def items_parameters(query: Mapping[str, str], supported_crs: Iterable[str], properties: Iterable[str]) -> ItemsParameters:
    """Every parameter of an items request on a collection with ``supported_crs`` and
    ``properties``, typed; InvalidQuery names the first wrong one. Unknown parameters are
    refused first (:func:`check_known`)."""
    supported_crs, properties = list(supported_crs), frozenset(properties)
    check_known("items", query.keys(), properties)
    bbox_crs = query.get("bbox-crs")
    generic = dict(
        limit=limit(query["limit"]) if "limit" in query else None,
        offset=offset(query["offset"]) if "offset" in query else None,
        bbox=bbox(query["bbox"], bbox_crs) if "bbox" in query else None,
    )
    if bbox_crs is not None:
        if "bbox" not in query:
            raise InvalidQuery("bbox-crs needs a bbox parameter")
        crs(bbox_crs, "bbox-crs", supported_crs)
    output_crs = crs(query["crs"], "crs", supported_crs) if query.get("crs") else None
    lang, filter_crs = query.get("filter-lang"), query.get("filter-crs")
    if (lang is not None or filter_crs is not None) and "filter" not in query:
        raise InvalidQuery("filter-lang and filter-crs need a filter parameter")
    if filter_crs is not None:
        crs(filter_crs, "filter-crs", supported_crs)
    parsed = ItemsParameters(
        **generic,
        bbox_crs=bbox_crs,
        crs=output_crs,
        sortby=sortby(query["sortby"], properties) if "sortby" in query else None,
        properties=property_names(query["properties"], "properties", properties) if "properties" in query else None,
        skip_geometry=flag(query["skipGeometry"]) if "skipGeometry" in query else False,
        hits=query.get("resulttype") == "hits",
        filter=filter_(query["filter"], lang, filter_crs) if "filter" in query else None,
        datetime=datetime(query["datetime"]) if "datetime" in query else None,
        cursor=cursor(query["cursor"]) if "cursor" in query else None,
    )
    if parsed.cursor is not None and parsed.offset is not None and parsed.offset != parsed.cursor.position:
        return ItemsParameters(**{**parsed.__dict__, "cursor": None})  # an explicit other offset
    return parsed


# -- tiles: the path and query values of the tile routes (ogcapi/tiles_routes.py,
# ogcapi/tiles_map_routes.py) and the viewer's ``f``. A map tile's ``style`` and ``f`` stay names:
# which ones exist depends on the collection, which the map tile engine checks (400).


def tile_address(path_params: Mapping[str, str]) -> Tile:
    """``{tileMatrix}/{tileRow}/{tileCol}`` of a tile route as a morecantile ``Tile`` (x = tileCol,
    y = tileRow, z = tileMatrix): 404 for a tile matrix that is no zoom level, 400 for a row or
    column that is no integer. Whether the tile is inside its tile matrix set is the engine's 404."""
    z = tile_matrix(path_params["tile_matrix"])
    row = tile_index(path_params["tile_row"], "tileRow")
    col = tile_index(path_params["tile_col"], "tileCol")
    return Tile(col, row, z)


def only_format(value: str | None, name: str, description: str) -> str:
    """``f`` of a resource served in one format ``name``: that name when ``f`` is absent or names
    it; InvalidQuery (400) saying ``description`` otherwise."""
    if value not in (None, name):
        raise InvalidQuery(f"unsupported format f={value!r}: {description} (f={name})")
    return name


def release_pin(value: str | None) -> int | None:
    """``release`` of a tile URL (TileJSON and the style pin tile URLs to the release they name):
    the release number when written as one (ASCII digits, no leading zero), else None — a URL not
    pinned to a release (never a 400: the tile is served, only not as immutable)."""
    if value is None or len(value) > FEATURE_ID_DIGITS or not _DIGITS.fullmatch(value) or str(int(value)) != value:
        return None
    return int(value)


# -- the audit log (ogcapi/admin_routes.py): GET /admin/audit?who=&layer=&since=&limit=&f=

#: the query parameters of the audit log
AUDIT_PARAMETERS = frozenset(("who", "layer", "since", "limit", "f"))
#: the most audit records one request returns, and how many when ``limit`` is absent
MAX_AUDIT_LIMIT = 10_000
DEFAULT_AUDIT_LIMIT = 100


@dataclass(frozen=True)
class AuditParameters:
    """The typed query of ``GET /admin/audit``: empty ``who``/``layer`` mean any."""

    who: str | None
    layer: str | None
    since: Datetime | None
    limit: int


def since(value: str) -> Datetime:
    """``since``: an RFC 3339 date-time (UTC when it has no offset) or a date (its midnight, UTC)."""
    try:
        moment = Datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = Datetime.combine(date.fromisoformat(value), Datetime.min.time())
        except ValueError:
            raise InvalidQuery(f"since must be an RFC 3339 date-time or a date; got {_show(value)}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def audit_parameters(query: Mapping[str, str]) -> AuditParameters:
    """The audit log's query: unknown parameters, ``f`` other than json, a bad ``since`` or a
    ``limit`` outside 1..:data:`MAX_AUDIT_LIMIT` are 400s."""
    unknown = sorted(set(query) - AUDIT_PARAMETERS)
    if unknown:
        raise InvalidQuery(f"unknown parameter(s) {', '.join(unknown)}: use who, layer, since, limit")
    only_format(query.get("f"), "json", "the audit log is available as JSON only")
    return AuditParameters(
        who=query.get("who") or None,
        layer=query.get("layer") or None,
        since=since(query["since"]) if "since" in query else None,
        limit=integer(query["limit"], "limit", LIMIT_DIGITS, 1, MAX_AUDIT_LIMIT) if "limit" in query else DEFAULT_AUDIT_LIMIT,
    )


# -- the job list (ogcapi/jobs_routes.py): GET /jobs?type=&processID=&status=&datetime=&minDuration=&maxDuration=&limit=&offset=&f=

#: the query parameters of the job list (Processes 1.0 job-list, and ``offset`` of its next/prev links)
JOB_PARAMETERS = frozenset(("type", "processID", "status", "datetime", "minDuration", "maxDuration", "limit", "offset", "f"))
#: the most jobs one page lists, and how many when ``limit`` is absent (Processes 1.0: default 10)
MAX_JOB_LIMIT = 10_000
DEFAULT_JOB_LIMIT = 10
#: the statuses of a job (Processes 1.0 statusCode)
JOB_STATUSES = ("accepted", "running", "successful", "failed", "dismissed")


@dataclass(frozen=True)
class JobParameters:
    """The typed query of ``GET /jobs``; ``type_ok`` False: a ``type`` other than ``process`` (no job
    is of another type: the list is empty)."""

    type_ok: bool
    process_ids: tuple[str, ...]
    statuses: tuple[str, ...]
    created_from: Datetime | None
    created_until: Datetime | None
    min_duration: float | None
    max_duration: float | None
    limit: int
    offset: int


def _listed(values: Iterable[str]) -> tuple[str, ...]:
    """Values given as repeated parameters or comma-separated (``explode: false``), in order, once each."""
    found: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            if part.strip():
                found[part.strip()] = None
    return tuple(found)


def seconds(value: str, name: str) -> float:
    """A duration in seconds: a finite number, not negative."""
    result = number(value, name)
    if result < 0:
        raise InvalidQuery(f"{name} must not be negative; got {_show(value)}")
    return result


def job_parameters(items: Iterable[tuple[str, str]]) -> JobParameters:
    """The job list's query from the request's (name, value) pairs: unknown parameters, ``f`` other
    than json/html, an unknown ``status``, a bad ``datetime``, a negative or non-numeric duration, or a
    ``limit`` outside 1..:data:`MAX_JOB_LIMIT` are 400s naming the parameter."""
    pairs = list(items)
    names = {name for name, _ in pairs}
    unknown = sorted(names - JOB_PARAMETERS)
    if unknown:
        raise InvalidQuery(f"unknown parameter(s) {', '.join(unknown)}: use {', '.join(sorted(JOB_PARAMETERS))}")
    single = {}
    for name, value in pairs:
        if name in single and name not in ("processID", "status", "type"):
            raise InvalidQuery(f"{name} is given more than once")
        single[name] = value
    statuses = _listed(v for n, v in pairs if n == "status")
    wrong = [s for s in statuses if s not in JOB_STATUSES]
    if wrong:
        raise InvalidQuery(f"status {_show(wrong[0])} is no job status: use {', '.join(JOB_STATUSES)}")
    created_from = created_until = None
    if "datetime" in single:
        interval = datetime(single["datetime"])
        created_from = bound_moment(interval.start, end=False) if interval.start is not None else None
        created_until = bound_moment(interval.end, end=True) if interval.end is not None else None
    durations = {name: seconds(single[name], name) if name in single else None for name in ("minDuration", "maxDuration")}
    return JobParameters(
        type_ok=all(v == "process" for v in _listed(v for n, v in pairs if n == "type")),
        process_ids=_listed(v for n, v in pairs if n == "processID"),
        statuses=statuses,
        created_from=created_from,
        created_until=created_until,
        min_duration=durations["minDuration"],
        max_duration=durations["maxDuration"],
        limit=integer(single["limit"], "limit", LIMIT_DIGITS, 1, MAX_JOB_LIMIT) if "limit" in single else DEFAULT_JOB_LIMIT,
        offset=offset(single["offset"]) if "offset" in single else 0,
    )


def wants_html(f: str | None, accept: str | None, what: str) -> bool:
    """``f=html`` / ``f=json`` (400 naming ``what`` for another), else the ``Accept`` header: HTML when
    it asks for text/html before (or without) application/json — a browser."""
    if f is not None:
        if f not in ("json", "html"):
            raise InvalidQuery(f"unsupported format f={_show(f)}: {what} are served as f=json or f=html")
        return f == "html"
    accept = (accept or "").lower()
    return "text/html" in accept and "application/json" not in accept.split("text/html", 1)[0]


# -- the change feed (ogcapi/changes_routes.py): GET /collections/{id}/changes?from=&to=&limit=&cursor=&crs=&f=

#: the query parameters of a change feed
CHANGES_PARAMETERS = frozenset(("from", "to", "limit", "cursor", "crs", "f"))
#: digits of a release number (the core takes 1..10^9: cim.sharing.changes.MAX_RELEASE)
RELEASE_DIGITS = 10


@dataclass(frozen=True)
class ChangesParameters:
    """The typed query of ``GET /collections/{id}/changes``; ``to`` None: the current release."""

    from_release: int
    to_release: int | None
    limit: int
    cursor: str | None
    #: the output CRS's URI (CRS84 when absent)
    crs: str
    #: whether ``crs`` was asked for (the next link repeats it)
    crs_given: bool


def changes_parameters(items: Iterable[tuple[str, str]], supported_crs: Iterable[str]) -> ChangesParameters:
    """``from`` (required), ``to`` (release numbers 1..10^9), ``limit`` (1..the smaller of 10,000 and
    ``max_features``, default 1,000), ``cursor`` (the next link's; checked against the feed by the core),
    ``crs`` (one of the collection's, default CRS84), ``f`` (json only). An unknown or repeated
    parameter, or a missing ``from``, is a 400 naming it."""
    from cim.sharing.changes import DEFAULT_LIMIT, MAX_LIMIT, MAX_RELEASE

    single: dict[str, str] = {}
    for name, value in items:
        if name not in CHANGES_PARAMETERS:
            raise InvalidQuery(f"unknown parameter {_show(name)}: a change feed takes {', '.join(sorted(CHANGES_PARAMETERS))}")
        if name in single:
            raise InvalidQuery(f"parameter {name} given more than once")
        single[name] = value
    if "from" not in single:
        raise InvalidQuery("from is required: the release number the changes start from (e.g. ?from=3)")
    only_format(single.get("f"), "json", "a change feed is GeoJSON")
    most = min(MAX_LIMIT, limits().max_features)
    return ChangesParameters(
        from_release=integer(single["from"], "from", RELEASE_DIGITS, 1, MAX_RELEASE),
        to_release=integer(single["to"], "to", RELEASE_DIGITS, 1, MAX_RELEASE) if "to" in single else None,
        limit=integer(single["limit"], "limit", LIMIT_DIGITS, 1, most) if "limit" in single else min(DEFAULT_LIMIT, most),
        cursor=single.get("cursor"),
        crs=crs(single["crs"], "crs", supported_crs) if "crs" in single else CRS84_URI,
        crs_given="crs" in single,
    )


# -- downloads (ogcapi/downloads_routes.py): GET /collections/{id}/downloads/{format}?release=N

#: the query parameters of a download
DOWNLOAD_PARAMETERS = frozenset(("release",))


def download_release(query: Mapping[str, str]) -> int | None:
    """``release`` of a download: a release number (ASCII digits, 1 or more), None when absent (the
    current release); InvalidQuery (400) for anything else or an unknown parameter."""
    unknown = sorted(set(query) - DOWNLOAD_PARAMETERS)
    if unknown:
        raise InvalidQuery(f"unknown query parameter(s): {', '.join(_show(n) for n in unknown[:5])} (downloads take: release)")
    values = query.getlist("release") if hasattr(query, "getlist") else [query.get("release")]
    values = [v for v in values if v is not None]
    if len(values) > 1:
        raise InvalidQuery("release is given more than once")
    return integer(values[0], "release", 9, minimum=1) if values else None
