"""The OGC API - Features ``datetime`` parameter: its value type and the SQL condition on a layer's time.

A layer has time when its spec names a ``temporal_field`` (a date or datetime property). ``datetime``
is an instant (``2024-05-01T08:00:00Z`` or a full date ``2024-05-01``) or an interval
``start/end`` whose open ends are ``..`` or empty. A date means the whole day: on a datetime
property ``2024-05-01`` selects from midnight UTC up to, not including, the next midnight.
The parameter's text is read into a :class:`TimeInterval` by ogcapi/parameters.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class TimeInterval:
    """Closed interval (either end may be open: None); dates are whole days."""

    start: date | datetime | None
    end: date | datetime | None


def bound_moment(value: date | datetime, end: bool) -> datetime:
    """Where an interval bound lies in time: a date starts at its midnight (UTC) and, as an interval's
    end, ends at the next."""
    if isinstance(value, datetime):
        return value
    day = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return day + timedelta(days=1) if end else day


def datetime_condition(field: str, field_type: str, interval: TimeInterval, placeholder: str) -> tuple[str, list[Any]]:
    """SQL (without WHERE) selecting features whose ``field`` lies in ``interval``, and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if interval.start is not None:
        clauses.append(f"{field} >= {placeholder}")
        start = interval.start
        if field_type == "date":
            params.append(start.astimezone(UTC).date() if isinstance(start, datetime) else start)
        else:
            params.append(bound_moment(start, end=False))
    if interval.end is not None:
        end = interval.end
        if field_type == "date":
            clauses.append(f"{field} <= {placeholder}")
            params.append(end.astimezone(UTC).date() if isinstance(end, datetime) else end)
        elif isinstance(end, datetime):
            clauses.append(f"{field} <= {placeholder}")
            params.append(end)
        else:  # a whole day: up to the next midnight
            clauses.append(f"{field} < {placeholder}")
            params.append(bound_moment(end, end=True))
    return "(" + " AND ".join(clauses) + ")", params


def overlap_condition(
    start_field: str, end_field: str, field_type: str, interval: TimeInterval, placeholder: str
) -> tuple[str, list[Any]]:
    """SQL selecting features valid over ``[start_field, end_field)`` (an empty end: open) that
    overlap ``interval`` — for an instant t: start <= t < end. Datetime fields only."""
    if field_type != "datetime":
        raise ValueError("interval validity needs datetime fields")
    clauses: list[str] = []
    params: list[Any] = []
    if interval.end is not None:
        end = interval.end
        if isinstance(end, datetime):
            clauses.append(f"{start_field} <= {placeholder}")
            params.append(end)
        else:  # a whole day: starts before the next midnight
            clauses.append(f"{start_field} < {placeholder}")
            params.append(bound_moment(end, end=True))
    if interval.start is not None:
        clauses.append(f"({end_field} IS NULL OR {end_field} > {placeholder})")
        params.append(bound_moment(interval.start, end=False))
    return "(" + (" AND ".join(clauses) or "true") + ")", params
