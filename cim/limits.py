"""Limits on what one request or write may ask of the service: one place, configurable, documented.

Each limit has a sane default and an environment variable (read once per process by
:func:`limits`); docs/reliability.md lists them. The checks that enforce them live where the input
arrives (the web layer's request guard, the edit body check, the build), but they all read the
numbers from here, and the helpers below measure nesting *before* any parser sees the text: the
``cql2`` parser (native code) crashes the process on a few thousand nested parentheses, and
Python's ``json`` raises RecursionError on deep arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Limits:
    """The limits in force. Sizes in bytes, depths in levels of nesting."""

    #: the whole query string of a request (414 URI Too Long)
    max_query_bytes: int = 16_384
    #: one ``filter`` parameter (414 in a query string)
    max_filter_bytes: int = 8_192
    #: nesting of a ``filter``: parentheses in CQL2 text, arrays/objects in CQL2 JSON (400)
    max_filter_depth: int = 100
    #: a request body (413 Content Too Large)
    max_body_bytes: int = 5 * 1024 * 1024
    #: nesting of a JSON body (400); a GeoJSON MultiPolygon Feature needs 6
    max_json_depth: int = 32
    #: vertices of one geometry written through the API (413)
    max_vertices: int = 100_000
    #: characters of one string property written through the API (400)
    max_text_chars: int = 16_384
    #: features per page (``limit``): larger values are refused (400)
    max_features: int = 10_000
    #: wall-clock budget of one read (a tile or a page), in seconds; cut with 503 past it
    request_seconds: float = 20.0
    #: PostgreSQL statement_timeout of the server's connections, in milliseconds (0 = none)
    statement_timeout_ms: int = 15_000
    #: a warning document, CAP XML or GeoJSON (413 past it; must be positive: cim/warnings/xml_guard.py)
    warning_bytes: int = 1024 * 1024
    #: concurrent subscribers of ``/warnings/stream`` per process (503 + Retry-After beyond it)
    sse_clients: int = 1_000
    #: events waiting for one stream subscriber; a subscriber that falls further behind is disconnected
    sse_queue: int = 1_000
    #: jobs (OGC API - Processes) one server process runs at once; more wait as ``accepted``
    jobs: int = 2
    #: days a finished job (and its results) is kept; older ones are deleted when a server starts
    job_days: float = 7.0

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> Limits:
        """``CIM_LIMIT_<FIELD NAME IN CAPITALS>`` overrides a default, e.g.
        ``CIM_LIMIT_MAX_BODY_BYTES=1048576``; a value that is not a positive number is an error."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"CIM_LIMIT_{f.name.upper()}"
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            kind = float if f.type in ("float", float) else int
            try:
                value = kind(raw.strip())
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None
            if value < 0 or value != value:
                raise ValueError(f"{name}={raw!r} must not be negative")
            values[f.name] = value
        return cls(**values)


@lru_cache(maxsize=1)
def limits() -> Limits:
    """The limits of this process (from the environment, read once)."""
    return Limits.from_environment()


_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")


def text_depth(text: str) -> int:
    """The deepest nesting of ``()``, ``[]`` and ``{}`` in ``text`` outside quoted strings (single
    quotes as in CQL2 text, where ``''`` is a quote; double quotes with backslash escapes as in
    JSON and CQL2 identifiers). Linear, no recursion: safe on any input."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        elif char in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
        elif char in _CLOSE:
            depth -= 1
    return deepest


def value_depth(value: Any, stop_at: int | None = None) -> int:
    """The nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1), iteratively; stops
    early once ``stop_at`` is exceeded."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if stop_at is not None and deepest > stop_at:
                return deepest
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest
