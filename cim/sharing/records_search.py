"""Searching the layer catalog's records (:mod:`cim.sharing.records`): the query parameters of
OGC API – Records Part 1 (``q``, ``bbox``, ``datetime``, ``type``, ``externalIds``, ``ids``,
``sortby``, ``limit``) over the few hundred records a store holds, in Python.

- ``q``: terms separated by spaces or commas, matched case-insensitively as substrings (Chinese
  text too: ``建筑`` finds ``建筑物``) of the title, description, keywords, theme, layer name and
  source file names; a record matches when any term does. At most :data:`MAX_Q_CHARS` characters
  and :data:`MAX_TERMS` terms (more is a BadInput naming ``q``).
- ``bbox``: CRS84 minx, miny, maxx, maxy; a record matches when its extent intersects it (a box
  crossing the antimeridian, minx > maxx, is read as two).
- ``datetime``: an instant or interval; a record matches when the period its release was the
  newest (``time.interval``, the end excluded) overlaps it.
- ``type``, ``ids``: any of the values; ``externalIds``: a value (the sha256 of a source file) or
  ``scheme:value``.
- ``sortby``: keys of :data:`SORTABLES`, each ``+`` (ascending, default) or ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cim.errors import BadInput
from cim.sharing.records import catalog_records
from cim.store import Store, TimeInterval, bound_moment

MAX_Q_CHARS = 500
MAX_TERMS = 20
MAX_LIST = 100
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10
#: sortable property -> how a record gives it
SORTABLES: dict[str, str] = {
    "title": "the layer's title",
    "created": "when the release was published",
    "updated": "when the layer was built",
    "layer": "the layer's name",
    "release": "the release number",
    "count": "the layer's feature count",
}
_SPLIT = re.compile(r"[\s,，、]+")


@dataclass(frozen=True)
class RecordQuery:
    terms: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    interval: TimeInterval | None = None
    types: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    #: (property, ascending) pairs
    sortby: tuple[tuple[str, bool], ...] = ()
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def terms(q: str) -> tuple[str, ...]:
    """The search terms of ``q``, lowercased; BadInput naming ``q`` when it is too long or has too many."""
    if len(q) > MAX_Q_CHARS:
        raise BadInput(f"q has {len(q)} characters; at most {MAX_Q_CHARS} are accepted")
    found = tuple(dict.fromkeys(t.casefold() for t in _SPLIT.split(q) if t))
    if len(found) > MAX_TERMS:
        raise BadInput(f"q has {len(found)} terms; at most {MAX_TERMS} are accepted")
    return found


def listed(value: str, name: str) -> tuple[str, ...]:
    """A comma-separated list (``ids``, ``type``, ``externalIds``) of at most :data:`MAX_LIST` values."""
    values = tuple(v.strip() for v in value.split(",") if v.strip())
    if len(values) > MAX_LIST:
        raise BadInput(f"{name} has {len(values)} values; at most {MAX_LIST} are accepted")
    if any(len(v) > 200 for v in values):
        raise BadInput(f"{name}: a value is longer than 200 characters")
    return values


def sort_keys(value: str) -> tuple[tuple[str, bool], ...]:
    """``sortby``: ``+title,-release`` as (property, ascending) pairs; BadInput for another property."""
    keys = []
    for part in listed(value, "sortby"):
        ascending = not part.startswith("-")
        name = part[1:] if part[:1] in ("+", "-") else part
        if name not in SORTABLES:
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise BadInput(f"sortby: cannot sort by {shown!r}; sortables are {', '.join(SORTABLES)}")
        keys.append((name, ascending))
    return tuple(keys)


def _haystack(record: dict[str, Any]) -> str:
    p = record["properties"]
    theme = [c.get("id", "") + " " + c.get("title", "") for t in p.get("themes", []) for c in t.get("concepts", [])]
    files = [s.get("path") or "" for s in p.get("lineage", {}).get("sources", [])]
    return "\n".join([p.get("title", ""), p.get("description", ""), *p.get("keywords", []), *theme, p.get("layer", ""), *files]).casefold()


def _bbox_hit(record: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
    geometry = record.get("geometry")
    if geometry is None:
        return False
    ring = geometry["coordinates"][0]
    minx, miny, maxx, maxy = ring[0][0], ring[0][1], ring[2][0], ring[2][1]
    qminx, qminy, qmaxx, qmaxy = box
    if qminy > maxy or qmaxy < miny:
        return False
    spans = [(qminx, qmaxx)] if qminx <= qmaxx else [(qminx, 180.0), (-180.0, qmaxx)]
    return any(a <= maxx and b >= minx for a, b in spans)


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _time_hit(record: dict[str, Any], interval: TimeInterval) -> bool:
    start_text, end_text = record["time"]["interval"]
    start = _moment(start_text)
    end = None if end_text == ".." else _moment(end_text)
    if interval.end is not None and start > bound_moment(interval.end, end=True):
        return False
    if interval.start is not None and end is not None and end <= bound_moment(interval.start, end=False):
        return False
    return True


def _external_hit(record: dict[str, Any], wanted: Sequence[str]) -> bool:
    have = set()
    for e in record["properties"].get("externalIds", []):
        value = str(e.get("value", "")).casefold()
        have.add(value)
        have.add(f"{str(e.get('scheme', '')).casefold()}:{value}")
    return any(w.casefold() in have for w in wanted)


def matches(record: dict[str, Any], query: RecordQuery) -> bool:
    p = record["properties"]
    if query.ids and record["id"] not in query.ids:
        return False
    if query.types and p.get("type") not in query.types:
        return False
    if query.terms:
        text = _haystack(record)
        if not any(t in text for t in query.terms):
            return False
    if query.bbox is not None and not _bbox_hit(record, query.bbox):
        return False
    if query.interval is not None and not _time_hit(record, query.interval):
        return False
    if query.external_ids and not _external_hit(record, query.external_ids):
        return False
    return True


def _key(record: dict[str, Any], name: str) -> Any:
    p = record["properties"]
    value = {"title": p.get("title"), "created": p.get("created"), "updated": p.get("updated"), "layer": p.get("layer"),
             "release": p.get("release"), "count": p.get("featureCount")}[name]  # fmt: skip
    # missing values last ascending (first descending); strings by case-folded text
    return (value is None, value.casefold() if isinstance(value, str) else (value if value is not None else 0))


def search(records: Sequence[dict[str, Any]], query: RecordQuery) -> tuple[list[dict[str, Any]], int]:
    """The page of records matching ``query`` (sorted, from ``offset``, at most ``limit``) and how
    many match in all."""
    found = [r for r in records if matches(r, query)]
    for name, ascending in reversed(query.sortby):  # stable sorts, the last key first
        found.sort(key=lambda r: _key(r, name), reverse=not ascending)
    return found[query.offset : query.offset + query.limit], len(found)


def select_records(
    store: Store,
    query: RecordQuery,
    release: int | None = None,
    all_releases: bool = False,
    base: str = "",
) -> tuple[list[dict[str, Any]], int]:
    """The records of the current release (``release``: that one; ``all_releases``: every kept
    one) matching ``query``, as :func:`search` pages them."""
    if all_releases:
        numbers = None
    else:
        number = release if release is not None else store.current_number()
        store.release_layers(number)  # NotFound / ReleaseGone for a release not kept
        numbers = [number]
    return search(catalog_records(store, base, numbers), query)


def instant_or_interval(value: TimeInterval | date | datetime | tuple[Any, Any] | None) -> TimeInterval | None:
    """A ``datetime`` given in Python: an instant (date or datetime), a (start, end) pair (None for
    an open end) or a TimeInterval."""
    if value is None or isinstance(value, TimeInterval):
        return value
    if isinstance(value, tuple):
        return TimeInterval(*value)
    return TimeInterval(value, value)


__all__ = ["MAX_Q_CHARS", "MAX_TERMS", "RecordQuery", "SORTABLES", "listed", "matches", "search", "select_records", "sort_keys", "terms"]
