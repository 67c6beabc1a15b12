"""The cursor of a change feed's pages: the feed it belongs to and the last change given, as opaque
base64url text (no padding), read back strictly (anything else is a 400).

The position is the last change's sort key (source, source_id, fid in the earlier release, fid in
the later one), not an index: a page asked for after the list was made again (a new edit, another
server process) starts right after the change last given, wherever it now is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from cim.errors import BadInput

VERSION = 1
#: the longest cursor read (base64url of a source and a source_id of a few hundred characters)
MAX_CURSOR_CHARS = 2048
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

#: the order of a feed: (source, source_id, fid before, fid after), missing values last
SortKey = tuple[bool, str, bool, str, bool, int, bool, int]


def sort_key(source: str | None, source_id: str | None, fid_from: int | None, fid_to: int | None) -> SortKey:
    """The key the changes of a feed are ordered by (each value, missing ones after all others)."""
    return (
        source is None, "" if source is None else str(source),
        source_id is None, "" if source_id is None else str(source_id),
        fid_from is None, fid_from or 0, fid_to is None, fid_to or 0,
    )  # fmt: skip


@dataclass(frozen=True)
class ChangeCursor:
    """Where the next page of the feed of ``layer`` from ``from_release`` to ``to_release`` starts."""

    layer: str
    from_release: int
    to_release: int
    source: str | None
    source_id: str | None
    fid_from: int | None
    fid_to: int | None

    def key(self) -> SortKey:
        return sort_key(self.source, self.source_id, self.fid_from, self.fid_to)

    def encode(self) -> str:
        values = [VERSION, self.layer, self.from_release, self.to_release, self.source, self.source_id, self.fid_from, self.fid_to]
        text = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")


def decode_cursor(text: str, layer: str, from_release: int, to_release: int) -> ChangeCursor:
    """The cursor ``text`` of the feed (``layer``, ``from_release``, ``to_release``); BadInput for
    anything that is not such a cursor, or one of another feed."""
    if len(text) > MAX_CURSOR_CHARS or not _BASE64URL.fullmatch(text):
        raise BadInput("invalid cursor: not a cursor of this change feed (use the next link's URL as it is)")
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadInput("invalid cursor: not a cursor of this change feed (use the next link's URL as it is)") from None
    if not (
        isinstance(values, list) and len(values) == 8 and values[0] == VERSION and type(values[0]) is int
        and isinstance(values[1], str) and all(type(v) is int for v in values[2:4])
        and all(v is None or isinstance(v, str) for v in values[4:6])
        and all(v is None or (type(v) is int and -(2**63) <= v < 2**63) for v in values[6:8])
        and not (values[6] is None and values[7] is None)
    ):  # fmt: skip
        raise BadInput("invalid cursor: not a cursor of this change feed (use the next link's URL as it is)")
    cursor = ChangeCursor(*values[1:])
    if (cursor.layer, cursor.from_release, cursor.to_release) != (layer, from_release, to_release):
        raise BadInput(
            f"the cursor belongs to another change feed (collection {cursor.layer[:60]!r}, from {cursor.from_release}"
            f" to {cursor.to_release}), not to this one (collection {layer!r}, from {from_release} to {to_release})"
        )
    return cursor


__all__ = ["ChangeCursor", "MAX_CURSOR_CHARS", "SortKey", "decode_cursor", "sort_key"]
