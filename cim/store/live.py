"""Live layers: data written at run time through the API (warnings), kept beside the releases.

A live layer (``LayerSpec.live``) is part of every release without build sources: each back-end
keeps its rows outside the release data (the embedded store in immutable DuckDB files behind a
link, like the edits overlay; PostGIS in tables of schema ``cim``), so it survives every new
release and rollback. A write is one :class:`LiveTransaction` (the back-ends run it atomically,
one writer at a time); each write may append :class:`LiveEvent` entries to the layer's event log,
which is what the push channels (SSE, MQTT) read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

from cim.catalog import load_catalog
from cim.layerspec import LayerSpec

EventKind = Literal["created", "updated", "cancelled", "expired"]
EVENT_KINDS: tuple[str, ...] = ("created", "updated", "cancelled", "expired")


@dataclass(frozen=True)
class LiveEvent:
    """One entry of a live layer's event log."""

    #: grows by one per event of the store (the SSE event id)
    seq: int
    layer: str
    kind: str
    #: feature id of the version the event is about
    fid: int
    #: when it happened (UTC)
    at: datetime
    #: that version as a GeoJSON Feature in CRS84 (id = fid), as the collection serves it
    feature: dict[str, Any]


@dataclass(frozen=True)
class LiveRow:
    """A stored row of a live layer: its fid, field values and geometry (WKB, the layer's srid)."""

    fid: int
    values: dict[str, Any]
    wkb: bytes | None


class LiveTransaction(Protocol):
    """What a write to a live layer may do, inside one atomic step of the back-end."""

    def rows(self, field: str, value: Any) -> list[LiveRow]:
        """The rows whose ``field`` equals ``value``, by fid."""

    def due(self, now: datetime, open_field: str | None = None) -> list[LiveRow]:
        """The public rows whose validity has ended by ``now`` (``temporal_end_field`` <= now), with
        no ``expired`` or ``cancelled`` event about them yet and, if named, ``open_field`` empty."""

    def insert(self, values: dict[str, Any], wkb: bytes | None, public: bool = True) -> int:
        """Add a row (geometry as WKB in CRS84 lon/lat; ``public`` False keeps it off every public
        view); returns its new fid."""

    def update(self, fid: int, values: dict[str, Any]) -> None:
        """Change some fields of a row."""

    def append_event(self, kind: str, fid: int, at: datetime) -> int:
        """Log an event about row ``fid`` (its feature as it is at the end of this write); its seq."""


@lru_cache(maxsize=1)
def live_specs() -> tuple[LayerSpec, ...]:
    """The live layers of the installed catalog (every store has them, whatever its releases hold)."""
    return tuple(spec for spec in load_catalog() if spec.live)
