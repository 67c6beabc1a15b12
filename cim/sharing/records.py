"""The layer catalog: one OGC API – Records record per layer per kept release (issue #14).

A record is a GeoJSON Feature (Records Part 1, requirements class *record-core*): ``id`` =
``{layer}@r{N}``, ``geometry`` = the layer's CRS84 extent as a polygon (null when empty), ``time`` =
the period release N was the newest (from its creation to the creation of the next kept release,
``..`` while none), and ``properties`` = what a department needs to find and trust the layer: title,
description, keywords (Chinese and English), the CIM category as a theme, formats, the sha256 of
each source file as ``externalIds``, feature count, storage CRS and the lineage
(:mod:`cim.sharing.lineage`). Links point at the collection, items, tilesets, change feed and one
``enclosure`` per download format, relative to the ``base`` URL the caller gives.

Live layers (written at run time, e.g. warnings) have no build and no lineage: they have no record.
Restricted layers keep their record (metadata is public, docs/security.md); a record holds counts,
extents and checksums, never a feature or attribute value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cim.crs import crs_uri
from cim.errors import NotFound
from cim.sharing.formats import DOWNLOAD_FORMATS, download_path
from cim.sharing.lineage import lineage
from cim.store import LayerInfo, ReleaseInfo, Store

#: the records collection's id
CATALOG = "catalog"
RECORD_CORE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"
#: where the CIM data categories come from (CJJ/T 315-2022 and the provincial standards)
THEME_SCHEME = "CJJ/T 315-2022 CIM base data categories"
CATEGORIES = {
    "时空基础": "Spatio-temporal base",
    "资源调查": "Resource survey",
    "规划管控": "Planning control",
    "工程建设项目": "Construction projects",
    "物联感知": "IoT sensing",
    "公共专题": "Public themes",
}
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_TILESETS_MAP = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"
GEOJSON, JSON, HTML = "application/geo+json", "application/json", "text/html"
#: a layer name (as the catalog's) and a release number (no leading zero, below 10^9)
_RECORD_ID = re.compile(r"([a-z][a-z0-9_]{0,62})@r([1-9][0-9]{0,8})")


@dataclass(frozen=True)
class RecordId:
    layer: str
    release: int

    def __str__(self) -> str:
        return f"{self.layer}@r{self.release}"


def parse_record_id(text: str) -> RecordId:
    """``buildings@r3`` as a RecordId; NotFound for anything else (an id that cannot be a record's)."""
    match = _RECORD_ID.fullmatch(text) if len(text) <= 80 else None
    if match is None:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise NotFound(f"no record {shown!r}: record ids are layer@rN, e.g. buildings@r3")
    return RecordId(match.group(1), int(match.group(2)))


def _polygon(bbox: tuple[float, float, float, float] | None) -> dict[str, Any] | None:
    if bbox is None:
        return None
    minx, miny, maxx, maxy = bbox
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _formats(info: LayerInfo) -> list[dict[str, str]]:
    if info.spec.kind == "raster":
        return [{"name": "PNG map tiles", "mediaType": "image/png"}]
    return [{"name": f.title, "mediaType": f.media_type} for f in DOWNLOAD_FORMATS.values()]


def _links(info: LayerInfo, rid: RecordId, current: bool, previous: int | None, base: str) -> list[dict[str, Any]]:
    here = f"{base}/collections/{CATALOG}/items/{rid}"
    layer = f"{base}/collections/{info.name}"
    links: list[dict[str, Any]] = [
        {"rel": "self", "type": GEOJSON, "title": "This record", "href": here},
        {"rel": "alternate", "type": HTML, "title": "This record as HTML", "href": f"{here}?f=html"},
        {"rel": "collection", "type": JSON, "title": "The layer catalog", "href": f"{base}/collections/{CATALOG}"},
    ]
    if current:  # what the server serves is the current release
        links.append({"rel": "describes", "type": JSON, "title": f"The collection {info.name}", "href": layer})
        if info.spec.kind == "raster":
            links.append({"rel": REL_TILESETS_MAP, "type": JSON, "title": f"Map tilesets of {info.name}", "href": f"{layer}/map/tiles"})
        else:
            links.append({"rel": "items", "type": GEOJSON, "title": f"The features of {info.name}", "href": f"{layer}/items"})
            links.append({"rel": REL_TILESETS_VECTOR, "type": JSON, "title": f"Vector tilesets of {info.name}", "href": f"{layer}/tiles"})
    if info.spec.kind == "vector":
        if previous is not None:
            links.append({
                "rel": "related", "type": GEOJSON, "title": f"Changes of {info.name} from release {previous} to {rid.release}",
                "href": f"{layer}/changes?from={previous}&to={rid.release}",
            })  # fmt: skip
        pin = "" if current else f"?release={rid.release}"
        for fmt in DOWNLOAD_FORMATS.values():
            links.append({
                "rel": "enclosure", "type": fmt.media_type, "title": f"{info.name} release {rid.release} as {fmt.title}",
                "href": f"{base}{download_path(info.name, fmt.name)}{pin}",
            })  # fmt: skip
    return links


def record(
    info: LayerInfo,
    release: ReleaseInfo,
    following: ReleaseInfo | None,
    previous: int | None,
    kept: dict[int, ReleaseInfo],
    base: str = "",
) -> dict[str, Any]:
    """The record of layer ``info`` in ``release`` (``following``: the next kept release, which ends
    this one's time as the newest; ``previous``: the kept release before, the change feed's start)."""
    spec = info.spec
    rid = RecordId(spec.name, release.number)
    created = release.created.isoformat()
    ends = following.created.isoformat() if following is not None else ".."
    history = lineage(release, spec.name, kept)
    external = [
        {"scheme": "sha256", "value": f["sha256"]} for source in history["sources"] for f in source["files"] if f["sha256"]
    ]
    category = spec.category or "unclassified"
    properties: dict[str, Any] = {
        "type": "dataset",
        "title": spec.title,
        "description": spec.description,
        "keywords": list(spec.keywords),
        "themes": [{"concepts": [{"id": category, "title": CATEGORIES.get(category, category)}], "scheme": THEME_SCHEME}],
        "language": {"code": "en"},
        "languages": [{"code": "en"}, {"code": "zh"}],
        "formats": _formats(info),
        "externalIds": external,
        "created": created,
        "updated": history["buildTime"],
        "layer": spec.name,
        "release": release.number,
        "current": release.current,
        "kind": spec.kind,
        "restricted": spec.restricted,
        "featureCount": info.count if spec.kind == "vector" else None,
        "crs": crs_uri(info.srid),
        "lineage": history,
    }
    if spec.kind == "vector":
        properties["geometryType"] = spec.geometry_type
    return {
        "id": str(rid),
        "type": "Feature",
        "conformsTo": [RECORD_CORE],
        "time": {"interval": [created, ends]},
        "geometry": _polygon(info.bbox),
        "properties": properties,
        "links": _links(info, rid, release.current, previous, base),
    }


def catalog_records(store: Store, base: str = "", releases: list[int] | None = None) -> list[dict[str, Any]]:
    """The records of every built layer of the kept releases (``releases``: only those), newest
    release first, layers in catalog order. Links start with ``base`` (the server's URL)."""
    kept = store.releases()
    by_number = {r.number: r for r in kept}
    wanted = set(releases) if releases is not None else None
    records: list[dict[str, Any]] = []
    for position in range(len(kept) - 1, -1, -1):
        release = kept[position]
        if wanted is not None and release.number not in wanted:
            continue
        following = kept[position + 1] if position + 1 < len(kept) else None
        previous = kept[position - 1].number if position > 0 else None
        infos = sorted((i for i in store.release_layers(release.number) if not i.spec.live), key=lambda i: (i.spec.order, i.name))
        records.extend(record(info, release, following, previous, by_number, base.rstrip("/")) for info in infos)
    return records


def find_record(store: Store, record_id: str, base: str = "") -> dict[str, Any]:
    """The record ``record_id``; NotFound when the id, its layer or its release is unknown (a pruned
    release: ReleaseGone, 410, naming the kept ones)."""
    rid = parse_record_id(record_id)
    infos = store.release_layers(rid.release)  # NotFound / ReleaseGone for a release not kept
    if not any(i.name == rid.layer and not i.spec.live for i in infos):
        raise NotFound(f"no record {str(rid)!r}: release {rid.release} has no built layer {rid.layer!r}")
    found = [r for r in catalog_records(store, base, [rid.release]) if r["id"] == str(rid)]
    return found[0]


__all__ = ["CATALOG", "RECORD_CORE", "RecordId", "catalog_records", "find_record", "parse_record_id", "record"]
