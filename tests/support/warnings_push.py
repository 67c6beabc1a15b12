"""Helpers of the warnings push tests (tests/test_warnings_push_*.py): a store with a release,
warnings written through the live layer, a Server-Sent Events client on a thread, CAP documents."""

from __future__ import annotations

import json
import queue
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import httpx
import shapely

from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG


def publish_release(url: str) -> None:
    """A release with one small layer (the warnings layer is live: every store has it)."""
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["120101-001"], "land_use": ["R2"], "area_m2": [9500.0], "plot_ratio": [2.5],
         "source": ["survey"], "source_id": ["p1"]},
        geometry=[shapely.MultiPolygon([shapely.box(117.174, 39.142, 117.175, 39.143)])], crs=4326,
    )  # fmt: skip
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(CATALOG["parcels"], parcels)], srid=4326))


def write_warning(
    store: Any,
    identifier: str,
    msg_type: str = "Alert",
    references: tuple[str, ...] = (),
    expires: datetime | None = None,
    severity: str = "Severe",
    division: str | None = "120101",
    status: str = "Actual",
    vertices: int = 4,
) -> tuple[int, list[Any]]:
    """Store a warning version as ingest does (cim.warnings.versions.apply in one live write),
    without a CAP document; ``vertices`` makes its polygon as large as wanted. (fid, events)."""
    from cim.warnings import versions

    now = datetime.now(UTC).replace(microsecond=0)
    ring = shapely.Point(117.2, 39.13).buffer(0.01, quad_segs=max(1, vertices // 4))
    values = {
        "identifier": identifier, "sender": "tj-warning@example.cn", "sent": now, "status": status,
        "msg_type": msg_type, "references": " ".join(f"tj-warning@example.cn,{r},{now.isoformat()}" for r in references) or None,
        "superseded_by": None, "event": "暴雨", "category": "Met", "urgency": "Expected", "severity": severity,
        "certainty": "Likely", "colour": versions.COLOUR_OF_SEVERITY[severity], "headline": f"{identifier} 暴雨预警",
        "description": None, "instruction": None, "language": "zh-CN", "area_desc": "和平区", "geocodes": None,
        "division_code": division, "effective": now, "onset": None, "expires": expires,
        "valid_from": now, "valid_until": now if msg_type == "Cancel" else expires, "infos": "[]",
        "digest": identifier, "source": "test:push", "source_id": identifier,
    }  # fmt: skip
    version = versions.Version(
        values, shapely.to_wkb(shapely.MultiPolygon([ring])), status == "Actual",
        tuple(("tj-warning@example.cn", r) for r in references),
    )  # fmt: skip
    applied, events = store.live_write("warnings", lambda tx: versions.apply(tx, version, datetime.now(UTC)))
    return applied.fid, events


def cap_alert(identifier: str, expires: datetime | None = None, severity: str = "Severe",
              msg_type: str = "Alert", references: str | None = None) -> bytes:  # fmt: skip
    """A CAP 1.2 alert with one polygon in Tianjin."""
    sent = datetime.now(UTC).replace(microsecond=0)
    refs = f"<references>{references}</references>" if references else ""
    exp = f"<expires>{expires.replace(microsecond=0).isoformat()}</expires>" if expires else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>tj-warning@example.cn</sender><sent>{sent.isoformat()}</sent>
  <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  <info><language>zh-CN</language><category>Met</category><event>暴雨</event><urgency>Expected</urgency>
    <severity>{severity}</severity><certainty>Likely</certainty>{exp}<headline>暴雨预警</headline>
    <area><areaDesc>和平区</areaDesc><polygon>39.12,117.19 39.12,117.21 39.14,117.21 39.14,117.19 39.12,117.19</polygon>
      <geocode><valueName>GB/T 2260</valueName><value>120101</value></geocode></area>
  </info>
</alert>""".encode()


@dataclass
class SSEEvent:
    id: str | None
    event: str
    data: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SSEClient:
    """A real Server-Sent Events client (httpx streaming) reading on its own thread into a queue.
    ``opened`` is set once the response's headers arrived (the server has registered it)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = {"Accept": "text/event-stream", **(headers or {})}
        self.events: queue.Queue[SSEEvent | None] = queue.Queue()
        self.opened = threading.Event()
        self.status: int | None = None
        self.closed = threading.Event()
        self._stop = False
        self._response: httpx.Response | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SSEClient:
        self.thread.start()
        if not self.opened.wait(20):
            raise RuntimeError(f"no response from {self.url}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop = True
        if self._response is not None:
            # shut the socket down: the reading thread's recv returns at once (closing the response
            # from this thread would wait for the next bytes, up to a keep-alive comment away)
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(10)

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=None)) as client:
                with client.stream("GET", self.url, headers=self.headers) as response:
                    self._response = response
                    self.status = response.status_code
                    self.opened.set()
                    fields: dict[str, str] = {}
                    data: list[str] = []
                    for line in response.iter_lines():
                        if self._stop:
                            break
                        if line == "":
                            if data:
                                self.events.put(SSEEvent(fields.get("id"), fields.get("event", "message"), "\n".join(data)))
                            fields, data = {}, []
                        elif line.startswith(":"):
                            continue
                        else:
                            name, _, value = line.partition(":")
                            value = value[1:] if value.startswith(" ") else value
                            if name == "data":
                                data.append(value)
                            else:
                                fields[name] = value
        except (httpx.HTTPError, RuntimeError, OSError):
            pass
        finally:
            self.opened.set()
            self.closed.set()
            self.events.put(None)

    def take(self, n: int, timeout: float = 20) -> list[SSEEvent]:
        """The next ``n`` events (AssertionError naming what arrived when the stream ends first)."""
        got: list[SSEEvent] = []
        while len(got) < n:
            try:
                item = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{len(got)} of {n} events within {timeout} s: {[(e.id, e.event) for e in got]}") from None
            if item is None:
                raise AssertionError(f"the stream ended after {len(got)} of {n} events")
            got.append(item)
        return got


def in_seconds(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
