"""Parsing CQL2 filters (text and JSON) into canonical CQL2 JSON with the ``cql2`` package.

``cql2`` (Rust cql2-rs) parses both encodings of OGC CQL2 1.0 and validates the result against the
standard's JSON Schema, so the SQL translation (:mod:`cim.store.sql.cql2`) walks one well-defined
tree: CQL2 JSON. pygeofilter 0.4, which pygeoapi uses, cannot parse the CQL2 text form of the
temporal functions (``T_AFTER(a, b)``), reads ``BETWEEN`` and ``BBOX`` in CQL2 JSON the old draft
way and folds ``T_INTERSECTS`` into ``T_OVERLAPS``; it is therefore not used for filters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import cql2

from cim.crs import CRS84_URI, parse_crs
from cim.errors import CIMError, InvalidQuery
from cim.limits import limits, text_depth, value_depth

#: the ``filter-lang`` values understood (CQL2 1.0 names)
FILTER_LANGS = ("cql2-text", "cql2-json")
#: pre-standard names still sent by clients (GDAL 3.6's OAPIF driver sends ``cql-text``)
LANG_ALIASES = {"cql-text": "cql2-text", "cql-json": "cql2-json"}


@dataclass(frozen=True)
class Cql2Filter:
    """A parsed CQL2 filter: canonical CQL2 JSON plus the CRS of its geometry literals."""

    expr: Any = field(hash=False, compare=False)
    #: ``filter-crs``: CRS of the geometry literals, coordinates in that CRS's axis order
    crs: str = CRS84_URI
    #: the filter as the client wrote it (for messages and links)
    source: str = ""


def _first_line(message: str, limit: int = 300) -> str:
    text = " ".join(line.strip() for line in message.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_size(source: str) -> None:
    """Refuse a filter longer than ``max_filter_bytes`` or nested deeper than ``max_filter_depth``
    (:mod:`cim.limits`) before the parser sees it: the native ``cql2`` parser crashes the whole
    process on a few thousand nested parentheses."""
    lim = limits()
    size = len(source.encode())
    if size > lim.max_filter_bytes:
        raise InvalidQuery(f"the filter has {size} bytes; at most {lim.max_filter_bytes} are accepted")
    depth = text_depth(source)
    if depth > lim.max_filter_depth:
        raise InvalidQuery(f"the filter is nested {depth} levels deep; at most {lim.max_filter_depth} are accepted")


def parse_filter(text: str | dict[str, Any], lang: str | None = None, crs: str | None = None) -> Cql2Filter:
    """Parse ``text`` as ``lang`` (``cql2-text`` or ``cql2-json``; None: JSON when it starts with
    ``{``, else text). Raises InvalidQuery saying what is wrong for malformed or invalid filters,
    an unknown filter language or an unknown ``filter-crs``."""
    lang = LANG_ALIASES.get(lang, lang) if lang is not None else None
    if lang is not None and lang not in FILTER_LANGS:
        raise InvalidQuery(f"unknown filter-lang {lang!r}: use {' or '.join(FILTER_LANGS)}")
    if crs is not None:
        try:
            parse_crs(crs)
        except CIMError:
            raise InvalidQuery(f"unknown filter-crs {crs!r}: give an OGC CRS URI") from None
    if isinstance(text, dict):
        depth = value_depth(text, stop_at=limits().max_filter_depth)
        if depth > limits().max_filter_depth:
            raise InvalidQuery(f"the filter is nested more than {limits().max_filter_depth} levels deep")
        lang, source = "cql2-json", json.dumps(text)
    else:
        source = text
        if lang is None:
            lang = "cql2-json" if text.lstrip().startswith("{") else "cql2-text"
    if not source.strip():
        raise InvalidQuery("empty filter")
    check_size(source)
    try:
        expr = cql2.parse_json(source) if lang == "cql2-json" else cql2.parse_text(source)
    except (cql2.ParseError, ValueError) as exc:
        raise InvalidQuery(f"malformed {lang} filter: {_first_line(str(exc))}") from None
    try:
        expr.validate()
    except cql2.ValidationError as exc:
        raise InvalidQuery(f"invalid {lang} filter: {_first_line(str(exc))}") from None
    canonical = expr.to_json()
    check_like_patterns(canonical)
    return Cql2Filter(expr=canonical, crs=crs or CRS84_URI, source=source)


def check_like_patterns(expr: Any) -> None:
    """Refuse a LIKE pattern literal ending with a lone ``\\``: the SQL translation uses ``\\`` as
    the escape character, and both databases reject a pattern ending with it (at query time, as
    an error of theirs)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            args = node.get("args")
            if node.get("op") == "like" and isinstance(args, list) and len(args) == 2:
                pattern = args[1]
                while isinstance(pattern, dict) and pattern.get("op") in ("casei", "accenti") and pattern.get("args"):
                    pattern = pattern["args"][0]
                if isinstance(pattern, str) and (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1:
                    raise InvalidQuery(f"LIKE pattern {pattern!r} ends with the escape character \\ (write \\\\ for a backslash)")
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
