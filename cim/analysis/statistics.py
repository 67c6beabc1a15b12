"""Statistics per administrative division (多维度多指标统计) and the process ``district-statistics``.

Per division of one level (default: districts) of layer ``admin_divisions``: for every other vector
layer its count, and for polygon layers their area (m²), for line layers their length (m); POIs also
by ``category`` and roads by ``road_class``. A point or polygon feature counts in the division holding
its point-on-surface (once, even on a boundary; its whole area there); a line is cut at division
boundaries, so its length is shared out and it counts in every division it crosses. Areas and lengths
are in metres: lengths in a metric CRS (:func:`metric_srid`), areas on the ellipsoid of a geographic
storage CRS (cim/store/sql/division_totals.py) or in a projected one. The totals are made in the database, one statement
per layer (:meth:`cim.store.Store.division_totals`, SQL in cim/store/sql/division_totals.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyproj import CRS

from cim.analysis.inputs import city_bounds
from cim.errors import BadInput, NotFound
from cim.processes.process import Process, Progress
from cim.processes.schemas import RELEASE, input_description, output_description
from cim.store import LayerInfo, Store

#: the layer of administrative divisions, and the levels it has (layers/catalog/admin_divisions.py)
DIVISIONS = "admin_divisions"
LEVELS = ("province", "city", "district", "street")
#: layers counted also per value of a field
GROUP_BY = {"pois": "category", "roads": "road_class"}
#: CGCS2000 3-degree Gauss-Krüger zones, "CM xxxE" (no zone prefix): EPSG 4534 (zone 25, 75°E) .. 4554 (zone 45)
GK_FIRST_ZONE, GK_FIRST_EPSG, GK_LAST_ZONE = 25, 4534, 45

_POLYGONS = ("Polygon", "MultiPolygon")
_LINES = ("LineString", "MultiLineString")


def metric_srid(store: Store, release: int | None = None) -> int:
    """The EPSG code areas and lengths are measured in: the storage CRS when it is projected in
    metres, else the CGCS2000 Gauss-Krüger 3-degree zone (CM xxxE) of the city's centre (in China),
    else the WGS 84 UTM zone there. Within a GK zone lengths are true to 0.03 %."""
    infos = _vector(store, release)
    srid = infos[0].srid if infos else 4326
    crs = CRS.from_epsg(srid)
    if crs.is_projected and all((axis.unit_name or "").startswith("met") for axis in crs.axis_info):
        return srid
    bounds = city_bounds(store)
    lon, lat = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2) if bounds else (117.0, 39.0)
    zone = round(lon / 3)
    if GK_FIRST_ZONE <= zone <= GK_LAST_ZONE and 0 <= lat <= 56:
        return GK_FIRST_EPSG + zone - GK_FIRST_ZONE
    utm = min(60, int((lon + 180) // 6) + 1)
    return (32600 if lat >= 0 else 32700) + utm


def _vector(store: Store, release: int | None) -> list[LayerInfo]:
    infos = store.layers() if release is None else store.release_layers(release)
    return [i for i in infos if i.spec.kind == "vector" and not i.spec.live]


def district_statistics(
    store: Store, level: str = "district", codes: Sequence[str] | None = None, release: int | None = None
) -> dict[str, Any]:
    """Per division of ``level`` (``codes``: only these), in the current release (with its edits) or
    in release ``release``: ``{"code", "name", "layers": {layer: {"count", "area_m2" | "length_m",
    "by_<field>": {value: {"count", ...}}}}}``; also the level, the release and the metric CRS."""
    if level not in LEVELS:
        raise BadInput(f"unknown division level {str(level)[:40]!r} (levels: {', '.join(LEVELS)})")
    if codes is not None:
        if isinstance(codes, str) or not all(isinstance(c, str) for c in codes):
            raise BadInput("codes must be a list of division codes (text)")
        codes = list(dict.fromkeys(codes))
    infos = _vector(store, release)
    if not any(i.name == DIVISIONS for i in infos):
        where = "the current release" if release is None else f"release {release}"
        raise NotFound(f"{where} has no layer {DIVISIONS!r}: district statistics need administrative divisions")
    divisions = store.find_features(DIVISIONS, [("level", level)], release=release)
    names = dict(zip(divisions["code"], divisions["name"]))
    if codes:
        unknown = [code for code in codes if code not in names]
        if unknown:
            known = ", ".join(sorted(names)) or "none"
            raise NotFound(f"no {level} {unknown[0]!r} in layer {DIVISIONS!r} ({level} codes: {known})")
    srid = metric_srid(store, release)
    chosen = codes or sorted(names)
    result = {code: {"code": code, "name": names[code], "layers": {}} for code in chosen}
    for info in infos:
        if info.name == DIVISIONS:
            continue
        gtype = info.spec.geometry_type or ""
        measure = "area" if gtype in _POLYGONS else "length" if gtype in _LINES else None
        key = {"area": "area_m2", "length": "length_m"}.get(measure or "")
        group_by = GROUP_BY.get(info.name) if GROUP_BY.get(info.name) in info.field_types else None
        empty: dict[str, Any] = {"count": 0, **({key: 0.0} if key else {}), **({f"by_{group_by}": {}} if group_by else {})}
        for code in chosen:
            result[code]["layers"][info.name] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in empty.items()}
        totals = store.division_totals(info.name, level, codes, group_by, measure, srid, release)
        for total in totals:
            if total.code not in result:
                continue
            entry = result[total.code]["layers"][info.name]
            if group_by is None:  # one row per division
                entry["count"] = total.count
                if key:
                    entry[key] = round(total.measure or 0.0, 2)
                continue
            # per group: the division's count and measure are the sums over its groups
            entry["count"] += total.count
            group: dict[str, Any] = {"count": total.count}
            if key:
                entry[key] = round(entry[key] + (total.measure or 0.0), 2)
                group[key] = round(total.measure or 0.0, 2)
            entry[f"by_{group_by}"][_group_key(total.group)] = group
    return {
        "level": level,
        "release": release if release is not None else store.current_number(),
        #: the CRS lengths are measured in (and areas, unless the storage CRS is geographic: on its ellipsoid)
        "metric_crs": f"EPSG:{srid}",
        "divisions": list(result.values()),
    }


def _group_key(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _run(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    progress(5, "totalling per division")
    return {"statistics": district_statistics(
        store, level=inputs.get("level", "district"), codes=inputs.get("codes"), release=inputs.get("release"),
    )}  # fmt: skip


PROCESSES = (
    Process(
        id="district-statistics",
        title="Statistics per district",
        description=(
            "Per administrative division (default: districts): the count of every layer's features, the "
            "area (m²) of polygon layers, the length (m) of line layers, POIs by category and roads by class. "
            "Points and polygons count where their point-on-surface lies; lines are cut at the boundaries. "
            "Metres in the CGCS2000 Gauss-Krüger zone of the city (or the storage CRS when projected)."
        ),
        inputs={
            "level": input_description("Level", "Division level", {"type": "string", "enum": list(LEVELS), "default": "district"}, optional=True),
            "codes": input_description("Codes", "Only these divisions (GB/T 2260 codes)", {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{6,12}$"}, "minItems": 1, "uniqueItems": True}, optional=True),
            "release": input_description("Release", "Read this release as published (default: the current release)", RELEASE, optional=True),
        },
        outputs={
            "statistics": output_description(
                "Statistics", "level, release, metric_crs and per division: code, name, layers {layer: {count, area_m2 | length_m, by_<field>}}",
                {"type": "object", "required": ["level", "release", "metric_crs", "divisions"],
                 "properties": {"divisions": {"type": "array", "items": {"type": "object", "required": ["code", "name", "layers"]}}}},
            ),
        },  # fmt: skip
        run=_run,
        domain="city-management",
        keywords=("statistics", "districts", "多维度多指标统计"),
        role="analyst",
        example={"level": "district"},
    ),
)

__all__ = ["GROUP_BY", "LEVELS", "PROCESSES", "district_statistics", "metric_srid"]
