"""The CQL2 temporal functions (T_AFTER, T_INTERSECTS ...) as SQL comparisons of interval bounds.

Each operand is an instant (a date/datetime property or a DATE/TIMESTAMP literal: start = end) or an
interval (``INTERVAL(a, b)`` of literals, properties or ``'..'`` for an open end). The relations are
those of the CQL2 standard (Allen's interval algebra) written on the start and end of both operands;
open ends are -infinity / +infinity and decided while translating, so no sentinel dates reach SQL.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Callable

from cim.errors import InvalidQuery
from cim.store.sql.cql2_terms import TEMPORAL, Sql, Terms, parse_instant

#: (left bound, comparison, right bound) conjunctions; "as" = start of the first operand, "be" = end of the second ...
RELATIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "t_after": (("as", ">", "be"),),
    "t_before": (("ae", "<", "bs"),),
    "t_contains": (("as", "<", "bs"), ("ae", ">", "be")),
    "t_during": (("as", ">", "bs"), ("ae", "<", "be")),
    "t_equals": (("as", "=", "bs"), ("ae", "=", "be")),
    "t_finishedby": (("as", "<", "bs"), ("ae", "=", "be")),
    "t_finishes": (("as", ">", "bs"), ("ae", "=", "be")),
    "t_intersects": (("as", "<=", "be"), ("ae", ">=", "bs")),
    "t_meets": (("ae", "=", "bs"),),
    "t_metby": (("as", "=", "be"),),
    "t_overlappedby": (("as", ">", "bs"), ("as", "<", "be"), ("ae", ">", "be")),
    "t_overlaps": (("as", "<", "bs"), ("ae", ">", "bs"), ("ae", "<", "be")),
    "t_startedby": (("as", "=", "bs"), ("ae", ">", "be")),
    "t_starts": (("as", "=", "bs"), ("ae", "<", "be")),
}
_PY_OPS: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq,
}  # fmt: skip
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


@dataclass
class Bound:
    """One end of a temporal operand: an expression, or an open end (-1: -infinity, +1: +infinity)."""

    sql: Sql | None
    infinite: int = 0


def temporal_condition(tr: Terms, op: str, a: Any, b: Any) -> Sql:
    """The condition for ``op(a, b)``; raises InvalidQuery for non-temporal operands."""
    name = op  # lower case, as the translator passes it
    if name == "t_disjoint":
        inner = temporal_condition(tr, "t_intersects", a, b)
        return Sql(f"(NOT {inner.sql})", inner.params)
    if name not in RELATIONS:
        raise InvalidQuery(f"unknown temporal function {op.upper()}")
    (a_start, a_end), (b_start, b_end) = _operand(tr, a, op), _operand(tr, b, op)
    bounds = {"as": a_start, "ae": a_end, "bs": b_start, "be": b_end}
    _align(tr, list(bounds.values()))
    parts = [_compare(bounds[x], cmp, bounds[y]) for x, cmp, y in RELATIONS[name]]
    return Sql("(" + " AND ".join(p.sql for p in parts) + ")", [v for p in parts for v in p.params])


def _operand(tr: Terms, node: Any, op: str) -> tuple[Bound, Bound]:
    if isinstance(node, dict) and "interval" in node:
        items = node["interval"]
        if not isinstance(items, list) or len(items) != 2:
            raise InvalidQuery(f"{op.upper()}: an INTERVAL has a start and an end")
        return _bound(tr, items[0], -1, op), _bound(tr, items[1], +1, op)
    value = _checked(tr, tr.value(node), op)
    return Bound(value), Bound(value)


def _bound(tr: Terms, item: Any, open_side: int, op: str) -> Bound:
    if item == ".." or item == "":
        return Bound(None, open_side)
    if isinstance(item, str):
        instant = parse_instant(item)
        kind = "datetime" if isinstance(instant, datetime) else "date"
        return Bound(tr.literal(instant, kind, f"{kind} {item!r}"))
    return Bound(_checked(tr, tr.value(item), op))


def _checked(tr: Terms, value: Sql, op: str) -> Sql:
    if value.kind not in TEMPORAL:
        raise InvalidQuery(f"{op.upper()} needs dates, timestamps or intervals; got {value.what}")
    return value


def _align(tr: Terms, bounds: list[Bound]) -> None:
    """Date literals become midnight UTC timestamps when a datetime takes part."""
    if not any(b.sql is not None and b.sql.kind == "datetime" for b in bounds):
        return
    for b in bounds:
        if b.sql is not None and b.sql.is_literal and b.sql.kind == "date":
            day: date = b.sql.literal
            b.sql = tr.literal(datetime(day.year, day.month, day.day, tzinfo=UTC), "datetime", b.sql.what)


def _compare(x: Bound, cmp: str, y: Bound) -> Sql:
    if x.sql is not None and y.sql is not None:
        return Sql(f"({x.sql.sql} {cmp} {y.sql.sql})", x.sql.params + y.sql.params)
    if x.sql is None and y.sql is None:
        return Sql("TRUE" if _PY_OPS[cmp](x.infinite, y.infinite) else "FALSE")
    if x.sql is None:  # infinity on the left: look at it from the finite side
        x, cmp, y = y, _MIRROR[cmp], x
    assert x.sql is not None
    # finite `x` against an infinite `y`: x < +inf, x > -inf hold; equality never does
    holds = cmp != "=" and ((cmp in ("<", "<=")) == (y.infinite > 0))
    if holds:  # still false for a missing (NULL) value, as any comparison with it
        return Sql(f"({x.sql.sql} IS NOT NULL)", x.sql.params)
    return Sql("FALSE")
