"""Keyset paging: opaque cursors and the ``WHERE (sort keys, fid) > (last row's)`` condition.

Pages are read in a stable order — the ``sortby`` keys (missing values last), then ``fid`` — so a
page can start right after the last row of the previous one instead of skipping ``OFFSET`` rows: a
deep page costs what the first one costs. A cursor holds that last row's sort-key values and fid,
the sort order it belongs to and how many features came before the page it starts (so that
pygeoapi can still number pages and give a ``prev`` link); it is URL-safe base64 of JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Sequence

from cim.errors import InvalidQuery

#: sort keys as FeatureQuery holds them: (property, ascending)
SortKeys = tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the row with ``values`` (sort keys) and ``fid``."""

    sortby: SortKeys
    values: tuple[Any, ...]
    fid: int
    #: features before the page this cursor starts
    position: int

    def encode(self) -> str:
        data = {
            "s": [[name, asc] for name, asc in self.sortby],
            "k": [_jsonable(v) for v in self.values],
            "f": self.fid,
            "p": self.position,
        }
        raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor :meth:`encode` wrote; ValueError when ``text`` is not one (the request's
        ``cursor`` parameter is read by ogcapi/parameters.py, which answers that with a 400)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = json.loads(raw)
            sortby = tuple((str(name), bool(asc)) for name, asc in data["s"])
            cursor = cls(sortby, tuple(data["k"]), int(data["f"]), int(data["p"]))
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a cursor: {exc}") from None
        if len(cursor.values) != len(sortby) or cursor.position < 0:
            raise ValueError("not a cursor: its values do not match its sort keys, or its position is negative")
        return cursor


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def keyset_condition(
    cursor: Cursor, sortby: SortKeys, columns: Sequence[str], values: Sequence[Any], fid_column: str, placeholder: str
) -> tuple[str, list[Any]]:
    """Rows strictly after the cursor's row in ``ORDER BY keys (NULLS LAST), fid``.

    ``columns`` are the quoted sort-key columns, ``values`` the cursor's values converted to the
    columns' types. Expanded as ``k1 after v1 OR (k1 = v1 AND (k2 after v2 OR ... fid > f))`` so that
    mixed directions and missing values (sorted last) are handled on both databases.
    """
    if tuple(sortby) != cursor.sortby:
        raise InvalidQuery("the cursor belongs to another sortby: follow the next link unchanged")
    condition = f"{fid_column} > {placeholder}"
    params: list[Any] = [cursor.fid]
    for (_, ascending), column, value in reversed(list(zip(sortby, columns, values))):
        if value is None:  # missing values come last: only rows also missing it can follow
            condition = f"({column} IS NULL AND {condition})"
            continue
        after = f"{column} {'>' if ascending else '<'} {placeholder}"
        condition = f"({after} OR {column} IS NULL OR ({column} = {placeholder} AND {condition}))"
        params = [value, value, *params]
    return condition, params
