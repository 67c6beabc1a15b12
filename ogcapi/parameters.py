"""Where the strings of a request become typed values, or a 400 naming the parameter.

One module, in the spirit of tipg's ``dependencies.py``: every path and query value the tile
routes and the items endpoint read is parsed here, by the same rules:

- integers are ASCII digits only (``re.fullmatch("[0-9]+")``) of bounded length — ``int()`` and
  ``str.isdigit()`` accept Unicode digits (``¹``, ``١``), which then crashed or were read as 1;
- numbers are ASCII decimal notation, finite (no ``nan``, ``inf``, ``1e999``);
- counts stay within :func:`cim.limits.limits` (``max_features``) and offsets within what a
  database's 64-bit integer holds;
- a ``bbox`` has 4 or 6 numbers, min ≤ max in y, and longitudes/latitudes within the world when
  its CRS is CRS84 (the default);
- ``filter`` is measured before it is parsed (:func:`cim.store.cql2_parse.parse_filter` checks
  length and nesting first); ``datetime`` and ``cursor`` parse with the store's modules, their
  errors (a cursor nested too deeply included) become 400s naming them.

:class:`cim.errors.InvalidQuery` (400, OGC ``InvalidParameterValue``) carries each refusal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

from cim.crs import CRS84_URI
from cim.errors import InvalidQuery, NotFound
from cim.limits import limits
from cim.store import Cql2Filter, Cursor, TimeInterval, decode_cursor, parse_datetime, parse_filter

#: digits of the largest offset accepted: 10^15 − 1 rows, far below a 64-bit integer's 9.2·10^18
#: (offset + limit must still fit in the databases' BIGINT)
OFFSET_DIGITS = 15
MAX_OFFSET = 10**OFFSET_DIGITS - 1
#: digits of a feature id (a 64-bit integer)
FEATURE_ID_DIGITS = 18
#: a zoom level (tile matrix): the grids served go to 23 (with leading zeros: "014" is 14)
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
        raise InvalidQuery(f"{name} must be between {minimum} and {maximum}; got {number}")
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
    identifier names no tile matrix of the grids served: NotFound (404), as an unknown grid is."""
    if len(value) > TILE_MATRIX_DIGITS or not _DIGITS.fullmatch(value):
        raise NotFound(f"no tile matrix {_show(value)}: tile matrices are numbered 0, 1, 2... (ASCII digits)")
    return int(value)


def tile_index(value: str, name: str) -> int:
    """A ``tileRow`` / ``tileCol`` path value: an integer (a negative one is outside every grid: the
    grid check answers 404)."""
    if len(value) > TILE_INDEX_DIGITS + 1 or not _SIGNED.fullmatch(value):
        raise InvalidQuery(f"{name} must be an integer in ASCII digits; got {_show(value)}")
    return int(value)


def feature_id(value: str) -> int | None:
    """A ``featureId`` path value as the integer id features have; None when it cannot be one
    (the caller answers 404: no such feature)."""
    if len(value) > FEATURE_ID_DIGITS or not _DIGITS.fullmatch(value):
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


def datetime(value: str) -> TimeInterval:
    """``datetime``: an RFC 3339 instant or interval (:func:`cim.store.sql.temporal.parse_datetime`)."""
    return parse_datetime(value)


def cursor(value: str) -> Cursor:
    """``cursor``: the opaque page position of a next link (:func:`cim.store.sql.keyset.decode_cursor`)."""
    try:
        result = decode_cursor(value)
    except RecursionError:  # JSON nested too deeply inside the base64
        result = None
    if result is None or result.position > MAX_OFFSET:
        raise InvalidQuery("invalid cursor: use the next link of a previous page unchanged")
    return result


def filter_(value: str, lang: str | None, crs: str | None) -> Cql2Filter:
    """``filter`` with ``filter-lang`` and ``filter-crs`` (:func:`cim.store.cql2_parse.parse_filter`,
    which measures length and nesting before the parser sees the text)."""
    return parse_filter(value, lang, crs)


@dataclass(frozen=True)
class ItemsParameters:
    """The typed values of an items request's generic parameters (None: not given).

    ``filter``, ``datetime`` and ``cursor`` are parsed by :mod:`ogcapi.items_request` with the
    store's own modules; this class checks the ones pygeoapi reads afterwards."""

    limit: int | None = None
    offset: int | None = None
    bbox: tuple[float, ...] | None = None
    bbox_crs: str | None = None


def items_parameters(query: Mapping[str, str]) -> ItemsParameters:
    """The generic items parameters of ``query``; InvalidQuery names the first wrong one."""
    bbox_crs = query.get("bbox-crs")
    return ItemsParameters(
        limit=limit(query["limit"]) if "limit" in query else None,
        offset=offset(query["offset"]) if "offset" in query else None,
        bbox=bbox(query["bbox"], bbox_crs) if "bbox" in query else None,
        bbox_crs=bbox_crs,
    )
