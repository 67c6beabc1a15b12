"""Warnings push latency: from the write of a warning to its delivery on SSE and on MQTT.

Starts a real ``cim serve`` (a subprocess) over a fresh store of each back-end with
``CIM_MQTT_URL`` set, opens ``--subscribers`` SSE streams (default 100, one asyncio loop, httpx) and
one MQTT subscriber (paho, ``<root>/warnings/#``), then writes ``--warnings`` alerts (default 50) one
after the other: by ``POST /warnings`` (CAP XML, a JWT of role warning-publisher) when the server
has that route, else through ``cim.warnings.ingest`` in this process (another process writing to the
store, as ``cim warnings ingest`` does). Latency = arrival at a subscriber − the moment before the
write began; p50 / p95 / max over every (warning, subscriber) pair. Prints a table.

    .venv/bin/python -m bench.warnings_push                          # both stores
    .venv/bin/python -m bench.warnings_push --backend duckdb --warnings 50 --subscribers 100

Do not run it while tests run (the machine has 2 cores). Figures: docs/warnings/push.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho

ROOT = Path(__file__).resolve().parent.parent
BROKER = ("127.0.0.1", 1883)
SENDER = "bench@example.cn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cap(identifier: str) -> bytes:
    sent = datetime.now(UTC).replace(microsecond=0)
    expires = sent + timedelta(hours=6)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{sent.isoformat()}</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>zh-CN</language><category>Met</category><event>暴雨</event><urgency>Expected</urgency>
    <severity>Severe</severity><certainty>Likely</certainty><expires>{expires.isoformat()}</expires>
    <headline>暴雨橙色预警</headline>
    <area><areaDesc>和平区</areaDesc><polygon>39.12,117.19 39.12,117.21 39.14,117.21 39.14,117.19 39.12,117.19</polygon></area>
  </info>
</alert>""".encode()


def prepare_store(backend: str, postgis: str, work: Path) -> str:
    import geopandas as gpd
    import shapely

    from cim.store import LayerData, ReleaseDraft, open_store
    from layers.catalog import CATALOG

    url = str(work / "city.duckdb") if backend == "duckdb" else postgis
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["1"], "land_use": ["R2"], "area_m2": [1.0], "plot_ratio": [1.0], "source": ["bench"], "source_id": ["1"]},
        geometry=[shapely.MultiPolygon([shapely.box(117.17, 39.14, 117.18, 39.15)])], crs=4326,
    )  # fmt: skip
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(CATALOG["parcels"], parcels)], srid=4326))
    return url


class Writer:
    """Writes warnings by POST /warnings when the server has it, else through ingest() here."""

    def __init__(self, server: str, store_url: str, token: str) -> None:
        self.server, self.store_url, self.token = server, store_url, token
        self.client = httpx.Client(timeout=30)
        try:
            import cim.warnings.geojson_input  # noqa: F401  (the parser ingest() uses)

            self.parser = True
        except ImportError:
            self.parser = False
        probe = self.client.options(f"{server}/warnings")
        self.http = probe.status_code != 404 and self.parser
        self.store: Any = None
        if not self.http:
            from cim.store import open_store

            self.store = open_store(store_url)

    @property
    def how(self) -> str:
        if self.http:
            return "POST /warnings"
        return "ingest() in another process" if self.parser else "versions.apply() in another process (no CAP parser yet)"

    def write(self, identifier: str) -> None:
        body = cap(identifier)
        if self.http:
            r = self.client.post(f"{self.server}/warnings", content=body,
                                 headers={"Content-Type": "application/cap+xml", "Authorization": f"Bearer {self.token}"})  # fmt: skip
            if r.status_code != 201:
                raise RuntimeError(f"POST /warnings: {r.status_code} {r.text[:300]}")
        elif self.parser:
            from cim.warnings.ingest import ingest

            ingest(self.store, body, "application/cap+xml", who="bench")
        else:
            direct_write(self.store, identifier)

    def close(self) -> None:
        self.client.close()
        if self.store is not None:
            self.store.close()


def direct_write(store: Any, identifier: str) -> None:
    """Store a warning as ingest does after parsing (cim.warnings.versions.apply in one live write)."""
    import shapely

    from cim.warnings import versions

    now = datetime.now(UTC).replace(microsecond=0)
    values = {
        "identifier": identifier, "sender": SENDER, "sent": now, "status": "Actual", "msg_type": "Alert",
        "references": None, "superseded_by": None, "event": "暴雨", "category": "Met", "urgency": "Expected",
        "severity": "Severe", "certainty": "Likely", "colour": "orange", "headline": "暴雨橙色预警", "description": None,
        "instruction": None, "language": "zh-CN", "area_desc": "和平区", "geocodes": None, "division_code": "120101",
        "effective": now, "onset": None, "expires": now + timedelta(hours=6), "valid_from": now,
        "valid_until": now + timedelta(hours=6), "infos": "[]", "digest": identifier, "source": "bench", "source_id": identifier,
    }  # fmt: skip
    wkb = shapely.to_wkb(shapely.MultiPolygon([shapely.box(117.19, 39.12, 117.21, 39.14)]))
    version = versions.Version(values, wkb, True, ())
    store.live_write("warnings", lambda tx: versions.apply(tx, version, datetime.now(UTC)))


def jwt_pair() -> tuple[str, str]:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    token = jwt.encode({"sub": "bench", "roles": ["warning-publisher"], "exp": int(time.time()) + 3600}, key, algorithm="RS256")
    return pem, token


def start_server(store_url: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cim = str(Path(sys.executable).with_name("cim"))
    process = subprocess.Popen([cim, "serve", "--store", store_url, "--port", str(port)],
                               env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cim serve exited {process.returncode}: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/asyncapi", timeout=5).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"cim serve did not start: see {log}")


class Arrivals:
    """(channel, subscriber, identifier) -> arrival time (time.perf_counter)."""

    def __init__(self) -> None:
        self.times: dict[tuple[str, int, str], float] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def note(self, channel: str, subscriber: int, payload: str | bytes) -> None:
        now = time.perf_counter()
        identifier = json.loads(payload)["data"]["properties"]["identifier"]
        with self.changed:
            self.times.setdefault((channel, subscriber, identifier), now)
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.times) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True


async def sse_subscribers(url: str, n: int, arrivals: Arrivals, opened: threading.Event, stop: asyncio.Event) -> None:
    limits = httpx.Limits(max_connections=n + 5, max_keepalive_connections=n + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None), limits=limits) as client:
        ready = 0

        async def one(i: int) -> None:
            nonlocal ready
            async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
                ready += 1
                if ready == n:
                    opened.set()
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        arrivals.note("sse", i, line[5:].strip())

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return statistics.median(values), p95, values[-1]


def run(backend: str, postgis: str, n_warnings: int, n_subscribers: int) -> list[tuple[str, str, int, float, float, float]]:
    work = Path(tempfile.mkdtemp(prefix=f"cim-bench-push-{backend}-"))
    store_url = prepare_store(backend, postgis, work)
    root = f"bench-{uuid.uuid4().hex[:8]}"
    pem, token = jwt_pair()
    port = free_port()
    env = {"CIM_MQTT_URL": f"mqtt://{BROKER[0]}:{BROKER[1]}/{root}", "CIM_JWT_PUBLIC_KEY": pem,
           "CIM_LOCK_DIR": str(work), "CIM_LIMIT_SSE_CLIENTS": str(n_subscribers + 10)}  # fmt: skip
    server = start_server(store_url, port, env, work / "serve.log")
    base = f"http://127.0.0.1:{port}"
    arrivals = Arrivals()
    loop = asyncio.new_event_loop()
    opened, stop = threading.Event(), asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(
        sse_subscribers(f"{base}/warnings/stream", n_subscribers, arrivals, opened, stop)), daemon=True)  # fmt: skip
    subscribed: queue.Queue[bool] = queue.Queue()
    mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-{root}")
    mqtt.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{root}/warnings/#", qos=1)
    mqtt.on_subscribe = lambda c, u, mid, rcs, p: subscribed.put(True)
    mqtt.on_message = lambda c, u, msg: arrivals.note("mqtt", 0, msg.payload)
    writer = None
    try:
        thread.start()
        mqtt.connect(*BROKER)
        mqtt.loop_start()
        subscribed.get(timeout=20)
        if not opened.wait(60):
            raise RuntimeError("the SSE subscribers did not connect")
        time.sleep(1.0)  # the server's watcher and MQTT connection settle
        writer = Writer(base, store_url, token)
        started: dict[str, float] = {}
        answered: list[float] = []
        for i in range(n_warnings):
            identifier = f"{root}-{i}"
            started[identifier] = time.perf_counter()
            writer.write(identifier)
            answered.append(time.perf_counter() - started[identifier])
            time.sleep(0.1)  # one warning after another, as a publisher sends them
        complete = arrivals.wait_for(n_warnings * (n_subscribers + 1), timeout=60)
        p50, p95, worst = percentiles(answered)
        rows = [(backend, "the write itself" if not writer.http else "POST /warnings answer", len(answered), p50, p95, worst)]
        for channel, subs in (("SSE", n_subscribers), ("MQTT", 1)):
            key = channel.lower()
            lat = [t - started[ident] for (ch, _, ident), t in arrivals.times.items() if ch == key and ident in started]
            if lat:
                p50, p95, worst = percentiles(lat)
                rows.append((backend, f"{channel} ({subs} subscriber{'s' if subs > 1 else ''})", len(lat), p50, p95, worst))
        if not complete:
            print(f"warning: {backend}: {len(arrivals.times)} of {n_warnings * (n_subscribers + 1)} deliveries arrived", file=sys.stderr)
        print(f"{backend}: written by {writer.how}", file=sys.stderr)
        return rows
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        mqtt.disconnect()
        mqtt.loop_stop()
        if writer is not None:
            writer.close()
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("duckdb", "postgis", "both"), default="both")
    parser.add_argument("--postgis", default=os.environ.get("CIM_BENCH_POSTGIS", "postgresql://postgres@127.0.0.1:5432/cim_h2"))
    parser.add_argument("--warnings", type=int, default=50)
    parser.add_argument("--subscribers", type=int, default=100)
    args = parser.parse_args()
    backends = ("duckdb", "postgis") if args.backend == "both" else (args.backend,)
    rows = [row for b in backends for row in run(b, args.postgis, args.warnings, args.subscribers)]
    print(f"{'store':8} {'channel':22} {'deliveries':>10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for backend, channel, n, p50, p95, worst in rows:
        print(f"{backend:8} {channel:22} {n:>10} {p50 * 1000:>8.0f} {p95 * 1000:>8.0f} {worst * 1000:>8.0f}")


if __name__ == "__main__":
    main()
