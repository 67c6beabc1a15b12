"""The change feed of a layer: its features added, removed and changed from release N to release M,
as GeoJSON, paged by cursor (``GET /collections/{id}/changes``, ``city.changes``; docs/sharing.md).

- Identity across releases is (``source``, ``source_id``); the comparison is the store's one diff
  (cim/store/sql/diff.py, :meth:`cim.store.Store.change_list`): one FULL JOIN of the two tables.
- ``to`` omitted, or the current release's number: the later side is the layer *as served now*,
  the current release with its edits overlay (Features Part 4). ``from`` is always a release as
  published. So ``from=M`` with M current gives the edits made over M; from == to for a past
  release is an empty feed.
- The list of changes (identities, kind, changed fields, the fid in each release; no geometry) is
  made once per (store, layer, from, to, current release, edit generation) and kept in a bounded
  in-process LRU (:data:`CACHE_ROWS` changes in all); a page is a slice of it after the cursor's
  key, and its features are read by fid, one statement per side. The order is by feature id
  (cim/sharing/change_cursor.py: the ids a page reads lie close together).
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cim.errors import BadInput, LayerNotFound, NotFound
from cim.sharing.change_cursor import ChangeCursor, SortKey, decode_cursor, sort_key
from cim.store import Store

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
#: the largest release number read (larger: 400, before any store is asked)
MAX_RELEASE = 10**9
#: changes one page gives at most, and when ``limit`` is absent
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
#: changes the in-process cache keeps in all (``CIM_CHANGES_CACHE_ROWS``); a longer list is not kept
CACHE_ROWS = int(os.environ.get("CIM_CHANGES_CACHE_ROWS", "") or 2_000_000)


@dataclass(frozen=True)
class Change:
    """One entry of a feed's list: a feature added, removed or changed (``fields``: which)."""

    key: SortKey
    source: str | None
    source_id: str | None
    kind: str
    fid_from: int | None
    fid_to: int | None
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ChangeList:
    changes: list[Change]
    keys: list[SortKey]


@dataclass
class ChangePage:
    """A page of a feed: GeoJSON features with their ``change`` member, in feed order."""

    layer: str
    from_release: int
    to_release: int
    #: whether the later side is the current release with its edits
    with_edits: bool
    features: list[dict[str, Any]]
    number_matched: int
    next_cursor: str | None = None

    def feature_collection(self) -> dict[str, Any]:
        """The page as a GeoJSON FeatureCollection (links are the web layer's)."""
        return {
            "type": "FeatureCollection",
            "from": self.from_release,
            "to": self.to_release,
            "numberMatched": self.number_matched,
            "numberReturned": len(self.features),
            "features": self.features,
        }


class _Cache:
    """Change lists by feed, least recently used dropped first once more than ``rows`` are kept."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._lists: OrderedDict[tuple[Any, ...], ChangeList] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> ChangeList | None:
        with self._lock:
            found = self._lists.get(key)
            if found is not None:
                self._lists.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: ChangeList) -> None:
        size = len(value.changes)
        if size > self.rows:
            return
        with self._lock:
            old = self._lists.pop(key, None)
            if old is not None:
                self._held -= len(old.changes)
            self._lists[key] = value
            self._held += size
            while self._held > self.rows:
                _, dropped = self._lists.popitem(last=False)
                self._held -= len(dropped.changes)

    def drop(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            old = self._lists.pop(key, None)
            if old is not None:
                self._held -= len(old.changes)

    def clear(self) -> None:
        with self._lock:
            self._lists.clear()
            self._held = 0


CACHE = _Cache(CACHE_ROWS)


def release_number(value: Any, name: str) -> int:
    """A release number given to the feed: an int in 1..:data:`MAX_RELEASE`, else BadInput."""
    if type(value) is not int or not 1 <= value <= MAX_RELEASE:
        raise BadInput(f"{name} must be a release number (an integer from 1 to {MAX_RELEASE}), not {str(value)[:40]!r}")
    return value


def check_layer(store: Store, layer: str) -> None:
    """BadInput for a layer that has no features to follow: a raster layer, a live layer (written
    at run time, not part of releases). Unknown names are left to the releases' lists."""
    for info in store.layers():
        if info.name == layer:
            if info.spec.kind != "vector":
                raise BadInput(f"layer {layer!r} is a raster layer: it has no features, so no change feed (download its COG)")
            if info.spec.live:
                raise BadInput(f"layer {layer!r} is a live layer (written at run time, not part of releases): follow its stream instead")


def changes(
    store: Store, layer: str, from_release: int, to_release: int | None = None, limit: int = DEFAULT_LIMIT,
    cursor: str | None = None, out_srid: int | None = None, flip_axes: bool = False,
) -> ChangePage:
    """One page of the feed of ``layer`` from ``from_release`` to ``to_release`` (None: the current
    release, with its edits), after ``cursor`` (a page's ``next_cursor``); geometry in ``out_srid``
    (None: the storage CRS), y/x with ``flip_axes``. BadInput (400) for bad numbers, from > to, a bad
    or foreign cursor, a raster or live layer; NotFound (404) / ReleaseGone (410) for releases not kept."""
    from_release = release_number(from_release, "from")
    if to_release is not None:
        to_release = release_number(to_release, "to")
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit must be an integer from 1 to {MAX_LIMIT}")
    check_layer(store, layer)
    current = store.current_number()
    to = current if to_release is None else to_release
    _check_kept(store, from_release, to)
    if from_release > to:
        raise BadInput(f"from ({from_release}) is after to ({to}): a change feed goes forward (from <= to)")
    after = decode_cursor(cursor, layer, from_release, to) if cursor is not None else None
    with_edits = to == current
    listed = _change_list(store, layer, from_release, to, with_edits)
    start = 0 if after is None else bisect.bisect_right(listed.keys, after.key)
    page = listed.changes[start : start + limit]
    features = _features(store, layer, from_release, None if with_edits else to, page, out_srid, flip_axes)
    next_cursor = None
    if start + limit < len(listed.changes) and page:
        last = page[-1]
        next_cursor = ChangeCursor(layer, from_release, to, last.key).encode()
    return ChangePage(layer, from_release, to, with_edits, features, len(listed.changes), next_cursor)


def iter_changes(
    store: Store, layer: str, from_release: int, to_release: int | None = None, out_srid: int | None = None,
    flip_axes: bool = False, page_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every feature of the feed, page after page (``to`` fixed at the first page's)."""
    page = changes(store, layer, from_release, to_release, page_size, None, out_srid, flip_axes)
    yield from page.features
    while page.next_cursor is not None:
        page = changes(store, layer, from_release, page.to_release, page_size, page.next_cursor, out_srid, flip_axes)
        yield from page.features


def _check_kept(store: Store, *numbers: int) -> None:
    """NotFound / ReleaseGone (410) naming the releases kept, for a number not kept — asked on every
    page: a list in the cache outlives the pruning of its releases."""
    kept = {r.number for r in store.releases()}
    for number in numbers:
        if number not in kept:
            store.release_layers(number)  # raises, naming the releases kept
            raise NotFound(f"no release {number}")


def _change_list(store: Store, layer: str, from_release: int, to: int, with_edits: bool) -> ChangeList:
    if from_release == to and not with_edits:
        return ChangeList([], [])
    generation = store.edit_generation() if with_edits else None
    key = (store.url, layer, from_release, to, with_edits, generation)
    found = CACHE.get(key)
    if found is not None:
        return found
    rows = store.change_list(layer, from_release, None if with_edits else to)
    entries = sorted(
        (Change(sort_key(c.fid_from, c.fid_to), c.source, c.source_id, c.change, c.fid_from, c.fid_to, c.fields) for c in rows),
        key=lambda c: c.key,
    )
    made = ChangeList(entries, [c.key for c in entries])
    CACHE.put(key, made)
    return made


def _features(
    store: Store, layer: str, from_release: int, to_side: int | None, page: list[Change], out_srid: int | None, flip_axes: bool
) -> list[dict[str, Any]]:
    """The page's GeoJSON features: removed ones from the earlier release, the others from the later."""
    removed = [c.fid_from for c in page if c.kind == REMOVED and c.fid_from is not None]
    kept = [c.fid_to for c in page if c.kind != REMOVED and c.fid_to is not None]
    before = store.features_by_fid(layer, from_release, removed, out_srid, flip_axes) if removed else {}
    try:
        later = store.features_by_fid(layer, to_side, kept, out_srid, flip_axes) if kept else {}
    except LayerNotFound:  # the layer left the current release since the list was made
        later = {}
    features = []
    for c in page:
        fid = c.fid_from if c.kind == REMOVED else c.fid_to
        found = (before if c.kind == REMOVED else later).get(fid)  # type: ignore[arg-type]
        if found is None:  # gone since the list was made (an edit, a release switch): given as it was listed
            found = {"type": "Feature", "id": fid, "geometry": None, "properties": {"source": c.source, "source_id": c.source_id}}
        found["change"] = {"type": c.kind, "fields": list(c.fields), "from": c.fid_from, "to": c.fid_to}
        features.append(found)
    return features


__all__ = [
    "ADDED", "CACHE", "CHANGED", "Change", "ChangePage", "DEFAULT_LIMIT", "MAX_LIMIT", "MAX_RELEASE", "REMOVED",
    "changes", "check_layer", "iter_changes", "release_number",
]  # fmt: skip
