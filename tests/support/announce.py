"""Helpers of the release announcement tests (tests/test_sharing_*.py): releases published as a
build would, and a real ``mosquitto_sub`` (Debian mosquitto-clients) reading on its own thread."""

from __future__ import annotations

import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid

import geopandas as gpd
import paho.mqtt.publish as mqtt_publish
import shapely

from cim.store import LayerData, ReleaseDraft, ReleaseInfo, open_store
from layers.catalog import CATALOG

BROKER = ("127.0.0.1", 1883)


def broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=2):
            return True
    except OSError:
        return False


def publish(url: str, parcels: int = 1, keep: int | None = None) -> ReleaseInfo:
    """A release with ``parcels`` parcels (the warnings layer is live: every store has it)."""
    boxes = [shapely.MultiPolygon([shapely.box(117.174 + i * 0.002, 39.142, 117.175 + i * 0.002, 39.143)]) for i in range(parcels)]
    frame = gpd.GeoDataFrame(
        {"parcel_id": [f"120101-{i:03d}" for i in range(parcels)], "land_use": ["R2"] * parcels,
         "area_m2": [9500.0] * parcels, "plot_ratio": [2.5] * parcels, "source": ["survey"] * parcels,
         "source_id": [f"p{i}" for i in range(parcels)]},
        geometry=boxes, crs=4326,
    )  # fmt: skip
    with open_store(url) as store:
        return store.publish(ReleaseDraft(layers=[LayerData(CATALOG["parcels"], frame)], srid=4326), keep=keep)


def rollback(url: str, number: int) -> None:
    with open_store(url) as store:
        store.set_current(number)


class MosquittoSub:
    """``mosquitto_sub -v`` on ``pattern``: (topic, payload) pairs in :attr:`messages`. Entering
    waits until the subscription is live (a probe published under ``probe_topic`` came back)."""

    def __init__(self, pattern: str, probe_topic: str | None = None, count: int | None = None) -> None:
        exe = shutil.which("mosquitto_sub")
        if exe is None:
            raise RuntimeError("mosquitto_sub not found (Debian package mosquitto-clients; scripts/test installs it)")
        args = [exe, "-h", BROKER[0], "-p", str(BROKER[1]), "-q", "1", "-v", "-t", pattern, "-i", f"test-{uuid.uuid4().hex[:8]}"]
        if probe_topic is not None:
            args += ["-t", probe_topic]
        if count is not None:
            args += ["-C", str(count)]
        self.probe_topic = probe_topic
        self.messages: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            if topic != self.probe_topic:
                self.messages.put((topic, payload))
            else:
                self.messages.put(("", payload))
        self.messages.put(None)

    def __enter__(self) -> MosquittoSub:
        if self.probe_topic is not None:
            deadline = time.monotonic() + 20
            while True:
                mqtt_publish.single(self.probe_topic, "probe", qos=1, hostname=BROKER[0], port=BROKER[1])
                try:
                    item = self.messages.get(timeout=0.5)
                except queue.Empty:
                    if time.monotonic() > deadline:
                        raise RuntimeError("mosquitto_sub did not subscribe within 20 s") from None
                    continue
                if item is not None and item[0] == "":
                    break
                if item is not None:  # a real message before the probe: keep it
                    self.messages.put(item)
                    time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def take(self, n: int, timeout: float = 20) -> list[tuple[str, str]]:
        """The next ``n`` messages (probes skipped); AssertionError naming what came when they do not."""
        got: list[tuple[str, str]] = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            try:
                item = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{len(got)} of {n} messages within {timeout} s: {got}") from None
            if item is None:
                raise AssertionError(f"mosquitto_sub ended after {len(got)} of {n} messages: {got}")
            if item[0] != "":
                got.append(item)
        return got

    def quiet(self, seconds: float) -> list[tuple[str, str]]:
        """The messages (probes skipped) that arrive within ``seconds``."""
        got: list[tuple[str, str]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                break
            if item[0] != "":
                got.append(item)
        return got


def clear_retained(topic: str) -> None:
    """Remove a retained message from the broker (an empty retained payload)."""
    mqtt_publish.single(topic, b"", qos=1, retain=True, hostname=BROKER[0], port=BROKER[1])
