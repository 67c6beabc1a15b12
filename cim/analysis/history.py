"""Releases compared (版本管理, 差异分析): a building's history across releases, and the difference
between two releases per layer — with their processes ``building-history`` and ``release-diff``.

A feature is followed across releases by its identity, (``source``, ``source_id``), as the edits
overlay follows it (cim/store/rebase.py); a release's ``fid`` may name another feature. Releases are
read as they were published (no edits). The comparison of whole layers runs in the database
(:meth:`cim.store.Store.diff_releases`, SQL in cim/store/sql/diff.py), so a diff of a million
buildings never leaves it but for the differences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS

from cim.analysis.inputs import check_in_city, in_storage, to_area
from cim.errors import BadInput, LayerNotFound, NotFound
from cim.processes.process import Process, Progress
from cim.processes.schemas import AREA, CRS_INPUT, FEATURE_COLLECTION, RELEASE, input_description, output_description
from cim.store import LayerInfo, Store

#: what happened to a feature from one release to the next
ADDED, CHANGED, REMOVED, UNCHANGED = "added", "changed", "removed", "unchanged"
#: the geometry's name among changed fields
GEOMETRY = "geometry"
#: the CRS of the geometries analyses return (GeoJSON: lon/lat)
LONLAT = 4326


# -- building history ------------------------------------------------------------------------------
def building_history(
    store: Store, building: Any, layer: str = "buildings", source: str | None = None
) -> dict[str, Any]:
    """One feature of ``layer`` in every release kept, oldest first.

    ``building``: its ``source_id`` (a string; ``source`` to tell apart equal ids of two sources), a
    mapping ``{"source_id": ..., "source": ...}`` or ``{"fid": n}``, or an integer: its ``fid`` in the
    current release. Per release: ``present``, ``fid``, ``properties`` and ``geometry`` (GeoJSON,
    lon/lat) when present, and ``change`` from the previous release — ``added`` (also in the oldest
    release holding it), ``changed`` with ``changes`` {field: {"old", "new"}} (``geometry``: the
    footprint moved or changed shape), ``removed``, ``unchanged``; None while absent."""
    source, source_id = _identity(store, building, layer, source)
    releases = store.releases()
    equals: list[tuple[str, Any]] = [("source_id", source_id)] + ([("source", source)] if source is not None else [])
    found: list[tuple[int, gpd.GeoDataFrame | None]] = []
    for release in releases:
        info = _layer_in(store, layer, release.number)
        found.append((release.number, None if info is None else store.find_features(layer, equals, release=release.number)))
    sources = sorted({s for _, frame in found if frame is not None for s in frame["source"].dropna()})
    if source is None and len(sources) > 1:
        raise BadInput(f"source_id {source_id!r} names features of several sources ({', '.join(sources)}): give source too")
    if not any(frame is not None and len(frame) for _, frame in found):
        kept = ", ".join(str(r.number) for r in releases) or "none"
        raise NotFound(f"no feature with source_id {source_id!r}{_of(source)} in layer {layer!r} in any release kept ({kept})")
    entries = []
    previous: dict[str, Any] | None = None
    for (number, frame), release in zip(found, releases):
        entry: dict[str, Any] = {"release": number, "created": release.created.isoformat(), "present": False, "change": None}
        current = _row(frame) if frame is not None and len(frame) else None
        if current is not None:
            entry.update(present=True, fid=current["fid"], properties=current["properties"], geometry=current["geometry"])
            if len(frame) > 1:  # type: ignore[arg-type]
                entry["duplicates"] = len(frame) - 1  # type: ignore[arg-type]
            if previous is None:
                entry["change"] = ADDED
            else:
                changes = _changes(previous, current)
                entry["change"] = CHANGED if changes else UNCHANGED
                if changes:
                    entry["changes"] = changes
        elif previous is not None:
            entry["change"] = REMOVED
        entries.append(entry)
        previous = current
    return {"layer": layer, "source": source if source is not None else (sources[0] if sources else None),
            "source_id": source_id, "releases": entries}  # fmt: skip


def _of(source: str | None) -> str:
    return f" and source {source!r}" if source is not None else ""


def _identity(store: Store, building: Any, layer: str, source: str | None) -> tuple[str | None, str]:
    """(source, source_id) of ``building`` (see :func:`building_history`)."""
    if isinstance(building, Mapping):
        if "fid" in building and "source_id" not in building:
            building = building["fid"]
        else:
            source = building.get("source", source)
            building = building.get("source_id")
    if isinstance(building, bool) or building is None:
        raise BadInput("give the building as its source_id (text) or its fid in the current release (an integer)")
    if isinstance(building, int):
        feature = store.get_feature(layer, building)
        props = feature["properties"]
        if not props.get("source_id"):
            raise BadInput(f"feature {building} of layer {layer!r} has no source_id to follow across releases")
        return props.get("source"), str(props["source_id"])
    if not isinstance(building, str) or not building.strip():
        raise BadInput(f"the building's source_id must be non-empty text, not {str(building)[:60]!r}")
    if source is not None and not isinstance(source, str):
        raise BadInput("source must be text")
    return source, building


def _layer_in(store: Store, layer: str, number: int) -> LayerInfo | None:
    for info in store.release_layers(number):
        if info.name == layer and info.spec.kind == "vector":
            return info
    return None


def _row(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """The first feature of ``frame`` (storage CRS): fid, plain properties, WKB and lon/lat GeoJSON."""
    first = frame.iloc[[0]]
    geom = first.geometry.iloc[0]
    lonlat = first.to_crs(epsg=LONLAT).geometry.iloc[0] if first.crs is not None else geom
    props = {name: plain(first[name].iloc[0]) for name in frame.columns if name != frame.geometry.name}
    return {
        "fid": int(first.index[0]),
        "properties": props,
        "wkb": None if geom is None else shapely.to_wkb(geom),
        "geometry": None if lonlat is None else shapely.geometry.mapping(lonlat),
    }


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    changes = {
        name: {"old": old["properties"].get(name), "new": value}
        for name, value in new["properties"].items()
        if old["properties"].get(name) != value
    }
    if old["wkb"] != new["wkb"]:
        changes[GEOMETRY] = {"old": old["geometry"], "new": new["geometry"]}
    return changes


def plain(value: Any) -> Any:
    """A frame value as JSON: None for NA/NaN, Python numbers, dates in ISO 8601."""
    if value is None or value is gpd.pd.NA or value is gpd.pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


# -- release diff ----------------------------------------------------------------------------------
@dataclass
class ReleaseDiff:
    """What changed from release ``from_release`` to ``to_release``: ``features`` (a GeoDataFrame in
    lon/lat: layer, change, source, source_id, fid_from, fid_to, fields) and ``summary``
    {layer: {"added", "removed", "changed"}}."""

    from_release: int
    to_release: int
    features: gpd.GeoDataFrame
    summary: dict[str, dict[str, int]] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        return {kind: sum(counts[kind] for counts in self.summary.values()) for kind in (ADDED, REMOVED, CHANGED)}

    def feature_collection(self) -> dict[str, Any]:
        """The changes as a GeoJSON FeatureCollection (each with its ``change`` property)."""
        frame = self.features
        geoms = frame.geometry.to_numpy()
        columns = {name: frame[name].tolist() for name in ("layer", "change", "source", "source_id", "fid_from", "fid_to", "fields")}
        features = []
        for i, geom in enumerate(geoms):
            props = {name: plain(values[i]) if name != "fields" else list(values[i]) for name, values in columns.items()}
            features.append({
                "type": "Feature",
                "id": f"{props['layer']}/{props['source']}/{props['source_id']}",
                "geometry": None if geom is None else shapely.geometry.mapping(geom),
                "properties": props,
            })  # fmt: skip
        return {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}

    def to_json(self) -> dict[str, Any]:
        return {"differences": self.feature_collection(), "summary": self.summary_document()}

    def summary_document(self) -> dict[str, Any]:
        return {"from_release": self.from_release, "to_release": self.to_release, "layers": self.summary, "totals": self.totals()}


def release_diff(
    store: Store,
    from_release: int,
    to_release: int,
    layers: Sequence[str] | None = None,
    area: Any = None,
    crs: str | int | CRS | None = None,
) -> ReleaseDiff:
    """Features added, removed and changed per layer from release ``from_release`` to ``to_release``
    (差异分析). ``layers``: those (default: every vector layer of either release); ``area``: only
    features intersecting it in either release (a polygon: shapely, GeoJSON or WKT, in ``crs``, default
    lon/lat). Unknown or pruned release: NotFound naming the releases kept; the same release twice:
    no differences; a layer in one release only: all its features added or removed."""
    for number in (from_release, to_release):
        if isinstance(number, bool) or not isinstance(number, int):
            raise BadInput(f"a release is a release number (an integer), not {str(number)[:40]!r}")
    before = {i.name: i for i in store.release_layers(from_release) if _compared(i)}
    after = {i.name: i for i in store.release_layers(to_release) if _compared(i)}
    known = [*after, *(name for name in before if name not in after)]
    if layers is None:
        names = known
    else:
        if isinstance(layers, str):
            layers = [layers]
        unknown = [name for name in layers if name not in before and name not in after]
        if unknown:
            raise LayerNotFound(
                f"no layer {unknown[0]!r} in {_releases_named(from_release, to_release)} (layers: {', '.join(known) or 'none'})"
            )
        names = list(dict.fromkeys(layers))
    lonlat_area = None
    if area is not None:
        lonlat_area = to_area(area, crs)
        check_in_city(store, lonlat_area)
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    summary: dict[str, dict[str, int]] = {}
    for name in names:
        info = after.get(name) or before[name]
        area_wkb = None if lonlat_area is None else shapely.to_wkb(in_storage(lonlat_area, info))
        changes = store.diff_releases(name, from_release, to_release, area_wkb=area_wkb, out_srid=LONLAT)
        counts = {ADDED: 0, REMOVED: 0, CHANGED: 0}
        for change in changes:
            counts[change.change] += 1
            rows.append({"layer": name, "change": change.change, "source": change.source, "source_id": change.source_id,
                         "fid_from": change.fid_from, "fid_to": change.fid_to, "fields": list(change.fields)})  # fmt: skip
            geoms.append(change.wkb)
        summary[name] = counts
    frame = gpd.GeoDataFrame(
        rows or {"layer": [], "change": [], "source": [], "source_id": [], "fid_from": [], "fid_to": [], "fields": []},
        geometry=shapely.from_wkb(geoms) if geoms else [],
        crs=f"EPSG:{LONLAT}",
    )
    for column in ("fid_from", "fid_to"):
        frame[column] = frame[column].astype("Int64")
    return ReleaseDiff(from_release, to_release, frame, summary)


def _compared(info: LayerInfo) -> bool:
    return info.spec.kind == "vector" and not info.spec.live


# -- processes ---------------------------------------------------------------------------------
def _run_history(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    building: Any
    if inputs.get("source_id") is not None:
        building = {"source_id": inputs["source_id"], "source": inputs.get("source")}
    elif inputs.get("fid") is not None:
        building = int(inputs["fid"])
    else:
        raise BadInput("give the building's source_id (and source) or its fid in the current release")
    return {"history": building_history(store, building, layer=inputs.get("layer", "buildings"))}


def _run_diff(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    progress(5, "comparing releases")
    diff = release_diff(
        store, inputs["from_release"], inputs["to_release"], layers=inputs.get("layers"),
        area=inputs.get("area"), crs=inputs.get("crs"),
    )  # fmt: skip
    return diff.to_json()


_LAYER = {"type": "string", "minLength": 1, "maxLength": 63}

PROCESSES = (
    Process(
        id="building-history",
        title="Building history",
        description=(
            "One building in every release kept, oldest first: present or not, its values, and what changed "
            "from the previous release (added / changed with the fields' old and new values / removed / "
            "unchanged). The building is followed by its identity (source, source_id), given directly or "
            "as its fid in the current release."
        ),
        inputs={
            "source_id": input_description("Source id", "The building's identifier in its source (source_id)", {"type": "string", "minLength": 1, "maxLength": 200}, optional=True),
            "source": input_description("Source", "The building's source, when two sources use the same source_id", {"type": "string", "maxLength": 200}, optional=True),
            "fid": input_description("Feature id", "The building's fid in the current release (instead of source_id)", {"type": "integer", "minimum": 0}, optional=True),
            "layer": input_description("Layer", "The layer to follow the feature in", {**_LAYER, "default": "buildings"}, optional=True),
        },
        outputs={
            "history": output_description(
                "History", "The feature per release: release, created, present, fid, properties, geometry, change, changes",
                {"type": "object", "required": ["layer", "source_id", "releases"],
                 "properties": {"layer": {"type": "string"}, "source": {"type": ["string", "null"]}, "source_id": {"type": "string"},
                                "releases": {"type": "array", "items": {"type": "object"}}}},
            ),
        },  # fmt: skip
        run=_run_history,
        domain="housing",
        keywords=("history", "releases", "version management"),
        example={"source_id": "B2"},
    ),
    Process(
        id="release-diff",
        title="Difference between two releases",
        description=(
            "Features added, removed and changed (same identity (source, source_id), other values or geometry; "
            "the changed fields named, geometry included) per layer from one release to another, optionally "
            "within an area, as a GeoJSON FeatureCollection (property `change`) and a summary of counts per "
            "layer (差异分析). Compared in the database."
        ),
        inputs={
            "from_release": input_description("From release", "The earlier release's number", RELEASE),
            "to_release": input_description("To release", "The later release's number", RELEASE),
            "layers": input_description("Layers", "Only these layers (default: every vector layer)", {"type": "array", "items": _LAYER, "minItems": 1, "uniqueItems": True}, optional=True),
            "area": input_description("Area", "Only features intersecting this polygon in either release", AREA, optional=True),
            "crs": CRS_INPUT,
        },
        outputs={
            "differences": output_description("Differences", "The features that differ, each with `layer`, `change`, `fields`", FEATURE_COLLECTION),
            "summary": output_description(
                "Summary", "Counts per layer and kind (added, removed, changed) and their totals",
                {"type": "object", "required": ["from_release", "to_release", "layers", "totals"]},
            ),
        },  # fmt: skip
        run=_run_diff,
        domain="planning",
        keywords=("difference", "releases", "差异分析"),
        role="analyst",
        example={"from_release": 1, "to_release": 2, "layers": ["buildings"]},
    ),
)

__all__ = ["ADDED", "CHANGED", "PROCESSES", "REMOVED", "UNCHANGED", "ReleaseDiff", "building_history", "release_diff"]


def _releases_named(a: int, b: int) -> str:
    return f"release {a}" if a == b else f"release {a} nor in release {b}"
