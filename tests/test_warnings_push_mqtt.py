"""Warnings on MQTT: topics, CloudEvents payloads, a real Mosquitto broker (127.0.0.1:1883; scripts/test
starts it), and a broker that is down never holding anything up.

The end-to-end tests (POST /warnings on a real server → a paho subscriber) are at the bottom."""

from __future__ import annotations

import contextlib
import json
import queue
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from support.announce import BROKER, broker_up
from support.server import LiveServer, free_port
from support.warnings_push import SSEClient, in_seconds, publish_release, write_warning

from cim.errors import ConfigError
from cim.store import _shared, open_store
from cim.store.live import LiveEvent
from cim.warnings.cloudevents import EVENT_TYPES, from_json, to_cloudevent
from cim.warnings.mqtt import MqttPublisher, parse_url, topic

needs_broker = pytest.mark.skipif(not broker_up(), reason="no MQTT broker on 127.0.0.1:1883 (scripts/test starts Mosquitto)")


def event(seq: int, kind: str = "created", severity: str | None = "Severe", division: str | None = "120101", **props: Any) -> LiveEvent:
    properties = {"identifier": f"alert-{seq}", "severity": severity, "division_code": division, "status": "Actual",
                  "headline": "暴雨橙色预警", **props}  # fmt: skip
    feature = {"type": "Feature", "id": 100 + seq, "properties": properties,
               "geometry": {"type": "MultiPolygon", "coordinates": [[[[117.1, 39.1], [117.2, 39.1], [117.2, 39.2], [117.1, 39.1]]]]}}  # fmt: skip
    return LiveEvent(seq=seq, layer="warnings", kind=kind, fid=100 + seq, at=datetime(2026, 7, 1, 8, 30, tzinfo=UTC), feature=feature)


class Subscriber:
    """A real paho subscriber collecting (topic, payload) pairs."""

    def __init__(self, pattern: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subscribed: queue.Queue[bool] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(pattern, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.put(True)
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.connect(*BROKER)
        self.client.loop_start()
        self.subscribed.get(timeout=10)

    def take(self, n: int, timeout: float = 15) -> list[tuple[str, bytes]]:
        return [self.messages.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def root() -> str:
    """A topic root of this test alone (the broker is shared)."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def subscriber(root: str) -> Iterator[Subscriber]:
    sub = Subscriber(f"{root}/warnings/#")
    yield sub
    sub.close()


def test_topics_by_severity_division_and_kind() -> None:
    assert topic(event(1)) == "cim/warnings/Severe/120101/created"
    assert topic(event(2, "expired", severity="Extreme", division=None)) == "cim/warnings/Extreme/none/expired"
    assert topic(event(3, "cancelled", severity=None, division="")) == "cim/warnings/Unknown/none/cancelled"
    # a value holding MQTT's separators or wildcards cannot add levels or match patterns
    assert topic(event(4, severity="a/b", division="12+#")) == "cim/warnings/a_b/12__/created"
    assert topic(event(5), root="city/tj/warnings") == "city/tj/warnings/Severe/120101/created"


def test_broker_urls() -> None:
    url = parse_url("mqtts://pub:s%40cret@broker.example:8884/city/tj")
    assert (url.host, url.port, url.tls, url.username, url.password, url.root) == (
        "broker.example", 8884, True, "pub", "s@cret", "city/tj/warnings")
    assert url.safe == "mqtts://broker.example:8884"  # no credentials
    assert parse_url("mqtt://127.0.0.1").port == 1883
    for bad in ("http://x", "mqtt://", "mqtt://h/a/#", "mqtt://h:99999"):
        with pytest.raises(ConfigError, match="CIM_MQTT_URL"):
            parse_url(bad)


def test_cloudevent_is_valid_structured_json() -> None:
    doc = to_cloudevent(event(7, "updated"), "http://city.example/collections/warnings")
    assert doc["specversion"] == "1.0" and doc["id"] == "7" and doc["sequence"] == "7"
    assert doc["type"] == EVENT_TYPES["updated"] == "org.cim-basemap.warning.updated"
    assert doc["source"] == "http://city.example/collections/warnings"
    assert doc["subject"] == "107" and doc["datacontenttype"] == "application/geo+json"
    assert doc["time"] == "2026-07-01T08:30:00Z"
    assert doc["data"]["properties"]["headline"] == "暴雨橙色预警"
    parsed = from_json(json.dumps(doc))  # the cloudevents package validates it
    assert parsed.get_type() == "org.cim-basemap.warning.updated" and parsed.get_data() == doc["data"]
    with pytest.raises(ValueError, match="unknown warning event kind"):
        to_cloudevent(event(8, "deleted"), "x")


@needs_broker
def test_publisher_delivers_cloudevents_on_their_topics(root: str, subscriber: Subscriber) -> None:
    publisher = MqttPublisher(f"mqtt://127.0.0.1:1883/{root}", "http://city.example/collections/warnings")
    publisher.start()
    try:
        sent = [event(1), event(2, "updated", severity="Extreme"), event(3, "expired", division=None)]
        assert all(publisher.publish(e) for e in sent)
        got = subscriber.take(3)
    finally:
        publisher.stop()
    by_id = {from_json(payload).get_id(): (name, from_json(payload)) for name, payload in got}
    assert set(by_id) == {"1", "2", "3"}
    assert by_id["1"][0] == f"{root}/warnings/Severe/120101/created"
    assert by_id["2"][0] == f"{root}/warnings/Extreme/120101/updated"
    assert by_id["3"][0] == f"{root}/warnings/Severe/none/expired"
    assert by_id["3"][1].get_type() == "org.cim-basemap.warning.expired"
    assert by_id["2"][1].get_data()["id"] == 102
    assert publisher.dropped == 0


def test_publisher_with_the_broker_down_drops_past_its_queue_without_blocking() -> None:
    port = free_port()  # nothing listens there
    publisher = MqttPublisher(f"mqtt://127.0.0.1:{port}", "cim:test", queue_size=5)
    publisher.start()  # returns although nothing can connect
    try:
        results = [publisher.publish(event(i)) for i in range(1, 21)]
    finally:
        publisher.stop()
    assert results == [True] * 5 + [False] * 15  # paho keeps 5 for the reconnection, drops the rest
    assert (publisher.published, publisher.dropped, publisher.connected.is_set()) == (5, 15, False)


@needs_broker
def test_publisher_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIM_MQTT_URL", raising=False)
    assert MqttPublisher.from_environment("cim:x") is None
    monkeypatch.setenv("CIM_MQTT_URL", "mqtt://127.0.0.1:1883")
    publisher = MqttPublisher.from_environment("cim:x")
    assert publisher is not None and publisher.broker.root == "cim/warnings"


# --- end to end: a real server publishing to the real broker ------------------------------------------


@contextlib.contextmanager
def serving(store_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("CIM_MQTT_URL", mqtt_url)
    monkeypatch.setenv("CIM_LOCK_DIR", str(Path(tempfile.mkdtemp(prefix="cim-lock-"))))
    publish_release(store_url)
    try:
        with LiveServer(store_url) as live:
            assert live.server.config.app.state.warnings_watcher.ready.wait(20)
            yield live
    finally:
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


@needs_broker
def test_server_publishes_each_event_on_its_topic(store_url: str, root: str, subscriber: Subscriber,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with serving(store_url, f"mqtt://127.0.0.1:1883/{root}", monkeypatch) as live, open_store(store_url) as store:
        watcher = live.server.config.app.state.warnings_watcher
        first, _ = write_warning(store, "M-1", severity="Extreme", division="120101")
        second, _ = write_warning(store, "M-2", "Update", references=("M-1",), severity="Extreme", division="120101")
        soon, _ = write_warning(store, "M-3", severity="Minor", division=None, expires=in_seconds(2))
        got = subscriber.take(4)  # created, updated, created, then expired at the expiry time
        assert watcher.is_leader
    topics = [name for name, _ in got]
    messages = [from_json(payload) for _, payload in got]
    assert topics == [f"{root}/warnings/Extreme/120101/created", f"{root}/warnings/Extreme/120101/updated",
                      f"{root}/warnings/Minor/none/created", f"{root}/warnings/Minor/none/expired"]  # fmt: skip
    assert [m.get_subject() for m in messages] == [str(first), str(second), str(soon), str(soon)]
    assert all(m.get_source() == f"{live.url}/collections/warnings" for m in messages)
    assert messages[3].get_type() == "org.cim-basemap.warning.expired"
    assert messages[1].get_data()["properties"]["superseded_by"] is None  # the new version itself


@needs_broker
def test_only_one_process_publishes(store_url: str, root: str, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two servers on one store (two processes of `cim serve`): both push SSE, one publishes to MQTT."""
    with serving(store_url, f"mqtt://127.0.0.1:1883/{root}", monkeypatch) as one, LiveServer(store_url) as two:
        watchers = [s.server.config.app.state.warnings_watcher for s in (one, two)]
        assert watchers[1].ready.wait(20)
        with SSEClient(f"{two.url}/warnings/stream") as sse, open_store(store_url) as store:
            write_warning(store, "L-1")
            assert sse.take(1)[0].event == "created"
            write_warning(store, "L-2")
            got = subscriber.take(2)
            assert sse.take(1)[0].event == "created"
        assert sorted(w.is_leader for w in watchers) == [False, True]
    assert [from_json(p).get_data()["properties"]["identifier"] for _, p in got] == ["L-1", "L-2"]  # once each


def test_broker_down_leaves_the_server_serving(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens at the broker's address: SSE delivery, reads and writes go on."""
    with serving(store_url, f"mqtt://127.0.0.1:{free_port()}", monkeypatch) as live:
        with SSEClient(f"{live.url}/warnings/stream") as sse, open_store(store_url) as store:
            fid, _ = write_warning(store, "D-1")
            assert sse.take(1)[0].json["subject"] == str(fid)
        import httpx

        assert httpx.get(f"{live.url}/collections/warnings/items/{fid}", timeout=20).status_code == 200
        publisher = live.server.config.app.state.warnings_watcher.publisher
        assert publisher is not None and not publisher.connected.is_set() and publisher.published == 1


# --- through POST /warnings (CAP XML, a publisher's token) ----------------------------------------------
def publisher_token(monkeypatch: pytest.MonkeyPatch) -> str:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", pem.decode())
    import time

    return jwt.encode({"sub": "tj-publisher", "roles": ["warning-publisher"], "exp": int(time.time()) + 600}, key, algorithm="RS256")


def post(live: LiveServer, token: str, body: bytes) -> Any:
    import httpx

    return httpx.post(f"{live.url}/warnings", content=body, timeout=30,
                      headers={"Content-Type": "application/cap+xml", "Authorization": f"Bearer {token}"})  # fmt: skip


def test_broker_down_post_warnings_still_answers_201(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.warnings_push import cap_alert

    token = publisher_token(monkeypatch)
    with serving(store_url, f"mqtt://127.0.0.1:{free_port()}", monkeypatch) as live:
        with SSEClient(f"{live.url}/warnings/stream") as sse:
            first = post(live, token, cap_alert("DOWN-1"))
            assert first.status_code == 201, first.text
            (event,) = sse.take(1)  # SSE goes on without the broker
            assert event.event == "created" and event.json["data"]["id"] == first.json()["id"]
            assert post(live, token, cap_alert("DOWN-2")).status_code == 201
            assert sse.take(1)[0].json["data"]["properties"]["identifier"] == "DOWN-2"
        publisher = live.server.config.app.state.warnings_watcher.publisher
        assert publisher.published == 2 and not publisher.connected.is_set()


@needs_broker
def test_posted_cap_alert_update_and_cancel_reach_the_broker(store_url: str, root: str, subscriber: Subscriber,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from support.warnings_push import cap_alert

    token = publisher_token(monkeypatch)
    with serving(store_url, f"mqtt://127.0.0.1:1883/{root}", monkeypatch) as live:
        alert = post(live, token, cap_alert("CAP-1"))
        assert alert.status_code == 201, alert.text
        sent = alert.json()["properties"]["sent"]
        update = post(live, token, cap_alert("CAP-2", severity="Extreme", msg_type="Update",
                                             references=f"tj-warning@example.cn,CAP-1,{sent}"))  # fmt: skip
        assert update.status_code == 201, update.text
        cancel = post(live, token, cap_alert("CAP-3", msg_type="Cancel",
                                             references=f"tj-warning@example.cn,CAP-2,{update.json()['properties']['sent']}"))  # fmt: skip
        assert cancel.status_code == 201, cancel.text
        got = subscriber.take(3)
    kinds = [name.rsplit("/", 1)[1] for name, _ in got]
    assert kinds == ["created", "updated", "cancelled"]
    messages = [from_json(payload) for _, payload in got]
    assert [m.get_subject() for m in messages] == [str(r.json()["id"]) for r in (alert, update, cancel)]
    assert got[1][0].startswith(f"{root}/warnings/Extreme/")
    assert all(name.split("/")[3] == (m.get_data()["properties"].get("division_code") or "none") for (name, _), m in zip(got, messages))
