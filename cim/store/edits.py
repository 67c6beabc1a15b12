"""Edits (OGC API - Features Part 4) of editable layers: what one is, and checking a GeoJSON body.

Releases are immutable, so edits live beside them in an *overlay* (DuckDB: ``<store>.d/live/``,
PostGIS: schema ``cim_live``): per editable layer a table of the features created or replaced since
the build, and tombstones of the deleted ones, keyed by ``fid``; reads merge it over the current
release (see :mod:`cim.store.sql.overlay`). Every edit is written, in the same transaction, to an edit
log with who (the token's ``sub``) and when.

This module turns a request into the row to store: properties checked against the layer schema
(names, types, enums, required fields), the geometry parsed, checked for validity and type (single
parts promoted to the layer's Multi type) and brought from the body's CRS to the storage CRS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import shapely
import shapely.geometry

from cim.crs import CRS84_URI, axis_order_is_yx, parse_crs, srid_of, transformer
from cim.errors import CIMError, InvalidQuery, NotFound
from cim.store import write_checks
from cim.store.base import LayerInfo

Action = Literal["create", "replace", "update", "delete"]
#: fids of features created through the API start here, above any a build assigns
FIRST_CREATED_FID = 10**15
#: the fields naming a feature across releases: edits follow them (cim/store/rebase.py), so an
#: edit of a release feature keeps them
IDENTITY = ("source", "source_id")


class NotEditable(CIMError):
    """The layer is not editable (the catalog does not mark it so): 405."""

    status = 405
    code = "MethodNotAllowed"


class InvalidFeature(InvalidQuery):
    """The body is not a valid feature of the layer: 400 saying why."""


@dataclass(frozen=True)
class Edit:
    """One Part 4 request: ``create`` (POST), ``replace`` (PUT), ``update`` (PATCH) or ``delete``."""

    layer: str
    action: Action
    #: who asks (the bearer token's ``sub``)
    who: str
    fid: int | None = None
    #: the GeoJSON body (None for delete)
    body: Any = None
    #: CRS of the body's coordinates, in its authority axis order (``Content-Crs``); default CRS84
    crs: str = CRS84_URI


@dataclass(frozen=True)
class EditRecord:
    """One entry of the edit log."""

    id: int
    at: datetime
    who: str
    action: str
    layer: str
    fid: int
    release: int
    #: the feature as stored after the edit (properties and GeoJSON geometry, storage CRS); None for delete
    feature: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class NewState:
    """What an edit stores for one fid: the row (WKB geometry and every field), or a tombstone."""

    values: dict[str, Any]
    wkb: bytes | None
    deleted: bool = False

    def log_json(self) -> str | None:
        if self.deleted:
            return None
        geometry = shapely.geometry.mapping(shapely.from_wkb(self.wkb)) if self.wkb else None
        props = {k: v.isoformat() if isinstance(v, (date, datetime)) else v for k, v in self.values.items()}
        return json.dumps({"type": "Feature", "geometry": geometry, "properties": props}, ensure_ascii=False)


def prepare(info: LayerInfo, edit: Edit, current: dict[str, Any] | None) -> NewState:
    """The state ``edit`` leaves for its fid. ``current`` is the stored feature (GeoJSON in the storage
    CRS, x/y) for replace/update/delete, None for create. Raises InvalidFeature, NotEditable, NotFound."""
    if not info.spec.editable:
        raise NotEditable(f"collection {info.name!r} is not editable")
    if edit.action != "create" and current is None:
        raise NotFound(f"no feature {edit.fid!r} in layer {info.name!r}")
    identity = {name: (current or {}).get("properties", {}).get(name) for name in IDENTITY}
    if edit.action == "delete":
        # a tombstone keeps the feature's identity: it follows the feature into later releases
        return NewState(identity, None, deleted=True)
    body = edit.body
    if not isinstance(body, dict):
        raise InvalidFeature("the body is not a GeoJSON Feature (a JSON object was expected)")
    if body.get("type", "Feature" if edit.action == "update" else None) != "Feature":
        raise InvalidFeature(f"the body is not a GeoJSON Feature (type is {body.get('type')!r})")
    if edit.action == "replace" and body.get("id") not in (None, edit.fid, str(edit.fid)):
        raise InvalidFeature(f"the body's id {body.get('id')!r} is not the feature's ({edit.fid})")
    properties = body.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise InvalidFeature("properties must be a JSON object")
    values = {f.name: None for f in info.fields}
    if edit.action == "update":
        assert current is not None
        values.update({k: _value(info, k, v) for k, v in current["properties"].items() if k in values})
    elif edit.action == "create":
        values["source"] = "ogcapi"
    for name, value in properties.items():
        if name not in values:
            raise InvalidFeature(f"unknown property {name!r} for collection {info.name!r} (known: {', '.join(values)})")
        values[name] = _value(info, name, value)
    if edit.action != "create":
        for name, kept in identity.items():
            if properties.get(name) is not None and values[name] != kept:
                raise InvalidFeature(f"property {name!r} identifies the feature and cannot be changed (it is {kept!r})")
            values[name] = kept
    missing = [f.name for f in info.fields if f.required and values.get(f.name) is None]
    if missing:
        raise InvalidFeature(f"required properties missing or null: {', '.join(missing)}")
    if "geometry" in body or edit.action != "update":
        geometry = _geometry(info, body.get("geometry"), edit.crs)
    else:
        assert current is not None
        geometry = shapely.geometry.shape(current["geometry"])
    return NewState(values, shapely.to_wkb(geometry))


def _value(info: LayerInfo, name: str, value: Any) -> Any:
    """A JSON value as the Python value of field ``name``; InvalidFeature when it is not one."""
    spec = next(f for f in info.fields if f.name == name)
    if value is None:
        return None
    kind = spec.type
    ok: Any = None
    if kind == "string" and isinstance(value, str):
        write_checks.check_text(name, value)
        ok = value
    elif kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool) and write_checks.is_int64(value):
        ok = int(value)
    elif kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not write_checks.is_finite(value):
            raise InvalidFeature(f"property {name!r} must be a finite number; got {value!r}")
        ok = float(value)
    elif kind == "boolean" and isinstance(value, bool):
        ok = value
    elif kind in ("date", "datetime") and isinstance(value, str):
        try:
            if kind == "date":
                ok = date.fromisoformat(value[:10]) if len(value) == 10 else None
            else:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                ok = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            ok = None
    if ok is None:
        wanted = {"date": "a date (YYYY-MM-DD)", "datetime": "an RFC 3339 date-time"}.get(kind, f"a {kind}")
        raise InvalidFeature(f"property {name!r} must be {wanted}; got {value!r}")
    if spec.enum and ok not in spec.enum:
        raise InvalidFeature(f"property {name!r} must be one of {', '.join(spec.enum)}; got {value!r}")
    return ok


def _geometry(info: LayerInfo, geojson: Any, crs: str) -> shapely.Geometry:
    """The body's geometry, checked, promoted to the layer's type and in the storage CRS (x/y)."""
    if not isinstance(geojson, dict):
        raise InvalidFeature("the feature has no geometry (a GeoJSON geometry object is required)")
    write_checks.check_positions(geojson)
    try:
        geom = shapely.geometry.shape(geojson)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InvalidFeature(f"not a GeoJSON geometry: {exc or type(exc).__name__}") from None
    wanted = info.spec.geometry_type
    if wanted and geom.geom_type != wanted:
        if wanted == f"Multi{geom.geom_type}":
            geom = getattr(shapely, wanted)([geom])
        else:
            raise InvalidFeature(f"collection {info.name!r} holds {wanted} geometries; got {geom.geom_type}")
    if geom.is_empty:
        raise InvalidFeature("the geometry is empty")
    try:
        source = parse_crs(crs)
    except CIMError:
        raise InvalidFeature(f"unknown Content-Crs {crs!r}") from None
    storage = parse_crs(info.srid)
    sent = shapely.get_coordinates(geom)
    if axis_order_is_yx(source):
        geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
    write_checks.check_coordinates(geom, sent, source, storage)
    if not shapely.is_valid(geom):
        raise InvalidFeature(f"invalid geometry: {shapely.is_valid_reason(geom)}")
    geom = shapely.force_2d(geom)
    if srid_of(source) != info.srid:
        to_storage = transformer(source, storage)
        geom = shapely.transform(geom, lambda xy: _stack(*to_storage.transform(xy[:, 0], xy[:, 1])))
        write_checks.check_transformed(geom, storage)
        if not shapely.is_valid(geom):
            raise InvalidFeature(f"the geometry is invalid in the storage CRS: {shapely.is_valid_reason(geom)}")
    return geom


def _stack(x: Any, y: Any) -> Any:
    import numpy as np

    return np.column_stack([x, y])
