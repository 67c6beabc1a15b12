"""What the CQL2 translation is made of, apart from the translator itself: the translated
expression (:class:`Sql`), instants of the filter text, and the :class:`Terms` the temporal
functions (:mod:`cim.store.sql.cql2_temporal`) need of the translator (:mod:`cim.store.sql.cql2`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from cim.errors import InvalidQuery

TEMPORAL = {"date", "datetime"}


@dataclass
class Sql:
    """A translated expression: SQL text, its parameters in order, and its type."""

    sql: str
    params: list[Any] = field(default_factory=list)
    #: a field type, or "geometry", "boolean", "null"
    kind: str = "boolean"
    #: for literals: the Python value (so that it can be coerced to the other operand's type)
    literal: Any = None
    is_literal: bool = False
    what: str = ""


class Terms(Protocol):
    """The translator, as the temporal functions see it."""

    def value(self, node: Any) -> Sql:
        """A scalar operand (property, literal, arithmetic) translated."""

    def literal(self, value: Any, kind: str, what: str) -> Sql:
        """A literal bound as a parameter."""


def parse_instant(text: str) -> date | datetime:
    """A CQL2 DATE or TIMESTAMP text (RFC 3339): a date, or a datetime (UTC when it names no zone)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQuery(f"invalid date or timestamp {text!r} in filter (RFC 3339 expected)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
