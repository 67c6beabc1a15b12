"""A release described for departments: its number, when it was built, whether it is current, its
layers with their feature counts, and where to go next (the catalog records of the release, each
layer's change feed from the release before, its downloads). What ``GET /releases``,
``GET /releases/{n}``, ``city.releases()`` and the release announcements (announce.py) say.

Links are made below ``base`` (the server's URL; "" gives paths), so the core needs no web code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cim.errors import BadInput, NotFound
from cim.events.cloudevents import utc
from cim.sharing.formats import DOWNLOAD_FORMATS, download_path
from cim.store import LayerInfo, ReleaseInfo

#: the path of the release list (and of the announcements' ``source``)
RELEASES_PATH = "/releases"
#: at most this many digits in a release number written by a client
_MAX_DIGITS = 18


def release_path(number: int) -> str:
    return f"{RELEASES_PATH}/{number}"


def parse_release_number(text: str, what: str = "release number") -> int:
    """A release number from a path or query (ASCII digits: ``int()`` would take ``"١٢"`` or
    ``"1_000"`` too); BadInput otherwise."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_DIGITS:
        raise BadInput(f"{what} {text[:40]!r} is not a release number (a non-negative integer)")
    return int(value)


def previous_number(releases: Sequence[ReleaseInfo], number: int) -> int | None:
    """The kept release before ``number`` (None: it is the oldest kept)."""
    before = [r.number for r in releases if r.number < number]
    return max(before) if before else None


def find_release(store: Any, number: int) -> tuple[ReleaseInfo, list[ReleaseInfo]]:
    """Release ``number`` and all the kept ones; NotFound for one never published, ReleaseGone
    (410) for one pruned away (the store's own check, cim/store/release_reads.py)."""
    releases = store.releases()
    for release in releases:
        if release.number == number:
            return release, releases
    check = getattr(store, "_check_release", None)
    if check is not None:
        check(number)  # raises NotFound or ReleaseGone
    raise NotFound(f"store {getattr(store, 'url', '')} has no release {number}")


def catalog_href(base: str, number: int, layers: Sequence[str]) -> str:
    """The catalog records of the layers of release ``number`` (record ids ``{layer}@r{N}``)."""
    ids = ",".join(f"{name}@r{number}" for name in layers)
    return f"{base}/collections/catalog/items?ids={ids}&limit={max(len(layers), 1)}"


def changes_href(base: str, layer: str, previous: int, number: int) -> str:
    return f"{base}/collections/{layer}/changes?from={previous}&to={number}"


def release_links(base: str, number: int, previous: int | None, layers: Sequence[LayerInfo]) -> list[dict[str, Any]]:
    """Links of a release: itself, its catalog records, each layer's change feed (from
    ``previous``) and downloads (``?release=N``: they stay right after the next release)."""
    names = [info.name for info in layers]
    links: list[dict[str, Any]] = [
        {"rel": "self", "type": "application/json", "title": f"Release {number}", "href": f"{base}{release_path(number)}"},
        {"rel": "describedby", "type": "application/geo+json", "title": f"Catalog records of release {number}",
         "href": catalog_href(base, number, names)},
    ]  # fmt: skip
    if previous is not None:
        links.append({"rel": "predecessor-version", "type": "application/json", "title": f"Release {previous}",
                      "href": f"{base}{release_path(previous)}"})  # fmt: skip
    for info in layers:
        if previous is not None and info.spec.kind == "vector":
            links.append({"rel": "changes", "type": "application/geo+json", "layer": info.name,
                          "title": f"Changes of {info.name} from release {previous} to {number}",
                          "href": changes_href(base, info.name, previous, number)})  # fmt: skip
        if info.spec.kind == "vector":
            for fmt in DOWNLOAD_FORMATS.values():
                links.append({"rel": "enclosure", "type": fmt.media_type, "layer": info.name,
                              "title": f"{info.name} of release {number} as {fmt.title}",
                              "href": f"{base}{download_path(info.name, fmt.name)}?release={number}"})  # fmt: skip
    return links


def describe_release(
    release: ReleaseInfo, layers: Sequence[LayerInfo], previous: int | None, base: str = ""
) -> dict[str, Any]:
    """The JSON of one release (``GET /releases/{n}``; the ``data`` of its announcements)."""
    return {
        "number": release.number,
        "created": utc(release.created).isoformat(),
        "current": release.current,
        "previous": previous,
        "layers": [{"name": info.name, "kind": info.spec.kind, "count": info.count} for info in layers],
        "checksums": len(release.checksums),
        "links": release_links(base, release.number, previous, layers),
    }


def describe_releases(store: Any, base: str = "") -> list[dict[str, Any]]:
    """Every kept release, oldest first (``GET /releases``, ``city.releases()``)."""
    releases = store.releases()
    return [
        describe_release(r, store.release_layers(r.number), previous_number(releases, r.number), base) for r in releases
    ]


__all__ = ["RELEASES_PATH", "catalog_href", "changes_href", "describe_release", "describe_releases", "find_release",
           "parse_release_number", "previous_number", "release_links", "release_path"]
