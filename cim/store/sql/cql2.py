"""CQL2 (canonical CQL2 JSON, see :mod:`cim.store.cql2_parse`) to SQL for DuckDB spatial and PostGIS.

Every literal is bound as a parameter; identifiers come only from the layer's schema (an unknown
property is an InvalidQuery naming it). Supported: AND/OR/NOT, comparisons, LIKE, BETWEEN, IN,
IS NULL, CASEI, arithmetic (+ - * /), the eight S_ spatial functions on geometry literals (points,
lines, polygons, BBOX...) given in ``filter-crs``, and the CQL2 temporal functions on date/datetime
properties, instants and intervals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import shapely
import shapely.geometry

from cim.crs import axis_order_is_yx, parse_crs, srid_of, transformer
from cim.errors import CIMError, InvalidQuery
from cim.store.base import GEOM, LayerInfo
from cim.store.cql2_parse import Cql2Filter
from cim.store.sql import quote_ident
from cim.store.sql.cql2_temporal import temporal_condition
from cim.store.sql.cql2_terms import TEMPORAL, Sql, parse_instant
from cim.store.sql.dialect import Dialect

GEOMETRY_NAMES = ("geometry", GEOM)
NUMERIC = {"integer", "number"}
COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
ARITHMETIC = {"+", "-", "*", "/"}
SPATIAL = {
    "s_intersects": "ST_Intersects", "s_disjoint": "ST_Disjoint", "s_contains": "ST_Contains",
    "s_within": "ST_Within", "s_touches": "ST_Touches", "s_crosses": "ST_Crosses",
    "s_overlaps": "ST_Overlaps", "s_equals": "ST_Equals",
}  # fmt: skip


def translate(filter_: Cql2Filter, info: LayerInfo, dialect: Dialect) -> tuple[str, list[Any]]:
    """The WHERE condition (without ``WHERE``) and its parameters."""
    result = _Translator(info, dialect, filter_.crs).condition(filter_.expr)
    return result.sql, result.params


def _op(node: Any) -> str | None:
    return node["op"].lower() if isinstance(node, dict) and isinstance(node.get("op"), str) else None


class _Translator:
    def __init__(self, info: LayerInfo, dialect: Dialect, crs: str) -> None:
        self.info = info
        self.dialect = dialect
        self.types = info.field_types
        try:
            self.crs = parse_crs(crs)
        except CIMError:
            raise InvalidQuery(f"unknown filter-crs {crs!r}") from None

    # -- conditions ----------------------------------------------------------------------------
    def condition(self, node: Any) -> Sql:
        if isinstance(node, bool):
            return Sql("TRUE" if node else "FALSE")
        op = _op(node)
        if op is None:
            value = self.value(node)
            if value.kind != "boolean":
                raise InvalidQuery(f"{value.what or node!r} is not a condition")
            return Sql(f"({value.sql} = TRUE)" if not value.is_literal else value.sql, value.params)
        args = node.get("args", [])
        if op in ("and", "or"):
            parts = [self.condition(a) for a in args]
            return Sql("(" + f" {op.upper()} ".join(p.sql for p in parts) + ")", [v for p in parts for v in p.params])
        if op == "not":
            inner = self.condition(args[0])
            return Sql(f"(NOT {inner.sql})", inner.params)
        if op in COMPARISONS:
            lhs, rhs = self.pair(args[0], args[1], op)
            return Sql(f"({lhs.sql} {COMPARISONS[op]} {rhs.sql})", lhs.params + rhs.params)
        if op == "like":
            return self.like(args[0], args[1])
        if op == "between":
            value = self.value(args[0])
            low, high = (self.coerce(self.value(a), value, "BETWEEN") for a in args[1:3])
            return Sql(f"({value.sql} BETWEEN {low.sql} AND {high.sql})", value.params + low.params + high.params)
        if op == "in":
            value = self.value(args[0])
            items = [self.coerce(self.value(a), value, "IN") for a in args[1]]
            if not items:
                return Sql("FALSE")
            listed = ", ".join(i.sql for i in items)
            return Sql(f"({value.sql} IN ({listed}))", value.params + [p for i in items for p in i.params])
        if op == "isnull":
            value = self.value(args[0])
            return Sql(f"({value.sql} IS NULL)", value.params)
        if op in SPATIAL:
            lhs, rhs = (self.geometry(a, op) for a in args)
            return Sql(f"{SPATIAL[op]}({lhs.sql}, {rhs.sql})", lhs.params + rhs.params)
        if op.startswith("t_"):
            return temporal_condition(self, op, args[0], args[1])
        if op.startswith("a_"):
            raise InvalidQuery(f"array functions ({node['op']}) are not supported: layers have no array properties")
        if op == "s_dwithin":
            raise InvalidQuery("S_DWITHIN is not a CQL2 1.0 function and is not supported; use S_INTERSECTS with a polygon")
        raise InvalidQuery(f"unsupported CQL2 operator or function {node['op']!r} in filter")

    def like(self, subject: Any, pattern: Any) -> Sql:
        value = self.value(subject)
        pat = self.value(pattern)
        if value.kind != "string" or pat.kind != "string":
            raise InvalidQuery(f"LIKE compares strings; got {value.what} and {pat.what}")
        return Sql(f"({value.sql} LIKE {pat.sql} ESCAPE '\\')", value.params + pat.params)

    # -- values --------------------------------------------------------------------------------
    def pair(self, a: Any, b: Any, op: str) -> tuple[Sql, Sql]:
        lhs, rhs = self.value(a), self.value(b)
        if lhs.is_literal and not rhs.is_literal:
            return self.coerce(lhs, rhs, op), rhs
        return lhs, self.coerce(rhs, lhs, op)

    def literal(self, value: Any, kind: str, what: str) -> Sql:
        return Sql(self.dialect.placeholder, [value], kind, literal=value, is_literal=True, what=what)

    def value(self, node: Any) -> Sql:
        if node is None:
            return Sql("NULL", [], "null", is_literal=True, what="NULL")
        if isinstance(node, bool):
            return self.literal(node, "boolean", f"boolean {node}")
        if isinstance(node, (int, float)):
            number = int(node) if float(node).is_integer() and abs(node) < 2**53 else float(node)
            return self.literal(number, "number", f"number {node}")
        if isinstance(node, str):
            return self.literal(node, "string", f"string {node!r}")
        if not isinstance(node, dict):
            raise InvalidQuery(f"unexpected value {node!r} in filter")
        if "property" in node:
            return self.property(node["property"])
        if "date" in node:
            day = parse_instant(node["date"])
            return self.literal(day, "date", f"DATE {node['date']!r}")
        if "timestamp" in node:
            return self.literal(parse_instant(node["timestamp"]), "datetime", f"TIMESTAMP {node['timestamp']!r}")
        if "interval" in node:
            raise InvalidQuery("an INTERVAL can only be used in a temporal function (T_...)")
        if "bbox" in node or ("type" in node and ("coordinates" in node or "geometries" in node)):
            return self.geometry(node, "")
        op = _op(node)
        args = node.get("args", [])
        if op in ARITHMETIC:
            lhs, rhs = (self.value(a) for a in args)
            for side in (lhs, rhs):
                if side.kind not in NUMERIC:
                    raise InvalidQuery(f"arithmetic needs numbers; got {side.what}")
            a, b = (f"CAST({s.sql} AS DOUBLE PRECISION)" for s in (lhs, rhs))
            sql = f"({a} / NULLIF({b}, 0))" if op == "/" else f"({a} {op} {b})"
            return Sql(sql, lhs.params + rhs.params, "number", what="an arithmetic expression")
        if op == "casei":
            inner = self.value(args[0])
            if inner.kind != "string":
                raise InvalidQuery(f"CASEI needs a string; got {inner.what}")
            if inner.is_literal:
                return self.literal(str(inner.literal).lower(), "string", inner.what)
            return Sql(f"lower({inner.sql})", inner.params, "string", what=f"CASEI({inner.what})")
        if op == "accenti":
            raise InvalidQuery("ACCENTI (accent-insensitive comparison) is not supported")
        raise InvalidQuery(f"unsupported CQL2 expression {node.get('op', node)!r} in filter")

    def property(self, name: str) -> Sql:
        if name in GEOMETRY_NAMES:
            return Sql(quote_ident(GEOM), [], "geometry", what=f"property {name!r}")
        if name not in self.types:
            known = ", ".join(["geometry", *self.types])
            raise InvalidQuery(f"unknown property {name!r} in filter of collection {self.info.name!r} (known: {known})")
        kind = self.types[name]
        return Sql(quote_ident(name), [], kind, what=f"property {name!r} ({kind})")

    def coerce(self, value: Sql, other: Sql, op: str) -> Sql:
        """``value`` made comparable with ``other`` (literals converted to the other side's type)."""
        target, kind = other.kind, value.kind
        if kind == "null" or target == "null":
            return value
        if value.is_literal and kind != target and kind != "geometry":
            converted = _convert(value.literal, target)
            if converted is None:
                raise InvalidQuery(f"type mismatch in filter: {value.what} compared with {other.what}")
            return self.literal(converted, target, value.what)
        if kind == target or (kind in NUMERIC and target in NUMERIC) or (kind in TEMPORAL and target in TEMPORAL):
            return value
        raise InvalidQuery(f"cannot use {op} on {other.what} and {value.what}: the types differ")

    # -- geometry ------------------------------------------------------------------------------
    def geometry(self, node: Any, op: str) -> Sql:
        if isinstance(node, dict) and "property" in node:
            value = self.property(node["property"])
            if value.kind != "geometry":
                raise InvalidQuery(f"{op.upper() or 'a spatial function'} needs geometries; got {value.what}")
            return value
        if not isinstance(node, dict):
            raise InvalidQuery(f"{op.upper()} needs geometries; got {node!r}")
        try:
            if "bbox" in node:
                box = node["bbox"]
                geom = shapely.box(box[0], box[1], box[2], box[3]) if len(box) == 4 else shapely.box(*box[:2], *box[3:5])
            else:
                geom = shapely.geometry.shape(node)
        except (ValueError, TypeError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
            raise InvalidQuery(f"invalid geometry literal in filter: {exc}") from None
        return Sql(
            self.dialect.geometry_param(self.info.srid), [shapely.to_wkb(self._to_storage(geom))], "geometry",
            is_literal=True, what="a geometry literal",
        )  # fmt: skip

    def _to_storage(self, geom: shapely.Geometry) -> shapely.Geometry:
        """From ``filter-crs`` (in its authority axis order) to the storage CRS, x/y."""
        geom = shapely.force_2d(geom)
        if axis_order_is_yx(self.crs):
            geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
        if srid_of(self.crs) != self.info.srid:
            to_storage = transformer(self.crs, parse_crs(self.info.srid))
            geom = shapely.transform(geom, lambda xy: _stack(*to_storage.transform(xy[:, 0], xy[:, 1])))
        return geom


def _stack(x: Any, y: Any) -> Any:
    return np.column_stack([x, y])


def _convert(literal: Any, target: str) -> Any:
    """A literal as a value of type ``target``, or None when it cannot be one."""
    if isinstance(literal, bool):
        return literal if target == "boolean" else None
    if target in NUMERIC:
        if isinstance(literal, (int, float)):
            return literal
        if isinstance(literal, str):
            try:
                return float(literal) if target == "number" else int(literal)
            except ValueError:
                return None
        return None
    if target in TEMPORAL:
        if isinstance(literal, str):
            try:
                literal = parse_instant(literal)
            except InvalidQuery:
                return None
        if not isinstance(literal, date):
            return None
        if target == "datetime" and not isinstance(literal, datetime):
            return datetime(literal.year, literal.month, literal.day, tzinfo=UTC)
        return literal
    if target == "boolean" and isinstance(literal, str) and literal.lower() in ("true", "false"):
        return literal.lower() == "true"
    if target == "string" and isinstance(literal, str):
        return literal
    return None
