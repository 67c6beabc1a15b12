"""Release announcements (cim/sharing/announce.py, release_watcher.py; ogcapi/releases_stream.py):
CloudEvents over a real MQTT broker (read by a real ``mosquitto_sub``) and Server-Sent Events (a real
HTTP client), while a server runs and releases are published by another process or thread and
rolled back; on both stores."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cim.errors import BadInput
from cim.sharing.announce import EVENT_TYPES, announcement, event_id, from_json, resume_number
from cim.store import LayerInfo, ReleaseInfo, _shared
from layers.catalog import CATALOG
from support.announce import MosquittoSub, broker_up, clear_retained, publish, rollback
from support.server import LiveServer
from support.warnings_push import SSEClient

needs_broker = pytest.mark.skipif(
    not broker_up() or shutil.which("mosquitto_sub") is None,
    reason="no MQTT broker on 127.0.0.1:1883 or no mosquitto_sub (scripts/test installs and starts Mosquitto)",
)
ROOT = Path(__file__).resolve().parent.parent


# --- the CloudEvent ----------------------------------------------------------------------------------


def test_an_announcement_is_a_valid_cloudevent_with_a_stable_id() -> None:
    created = datetime(2026, 7, 1, 8, 30, 5, 123456, tzinfo=UTC)
    release = ReleaseInfo(7, created, True, ("parcels",), checksums={"a.gpkg": "00", "b.shp": "11"})
    layers = [LayerInfo(CATALOG["parcels"], 4326, 12, (117.1, 39.1, 117.2, 39.2))]
    made = announcement("published", release, layers, 5, "http://city.example")
    again = announcement("published", release, layers, 5, "http://city.example")
    assert made.id == again.id == "release-7-published-20260701T083005.123456Z" == event_id("published", 7, created)
    event = from_json(made.json)
    assert event.get_type() == EVENT_TYPES["published"] == "org.cim-basemap.release.published"
    assert (event.get_source(), event.get_subject(), event.get_time()) == ("http://city.example/releases", "7", created)
    data = event.get_data()
    assert (data["number"], data["previous"], data["checksums"], data["current"]) == (7, 5, 2, True)
    assert data["layers"] == [{"name": "parcels", "kind": "vector", "count": 12}]
    hrefs = [link["href"] for link in data["links"]]
    assert "http://city.example/collections/parcels/changes?from=5&to=7" in hrefs
    assert "http://city.example/releases/7" in hrefs
    assert any(h.startswith("http://city.example/collections/catalog/items?") and "parcels@r7" in h for h in hrefs)
    switched = datetime(2026, 7, 2, tzinfo=UTC)
    current = from_json(announcement("current", release, layers, 9, "http://city.example", at=switched).json)
    assert current.get_type() == "org.cim-basemap.release.current" and current.get_time() == switched
    assert current.get_id() == "release-7-current-20260702T000000.000000Z"


@pytest.mark.parametrize(("text", "number"), [("3", 3), ("release-3-published-20260701T083005.123456Z", 3),
                                               (" 12 ", 12), ("release-40-current-x", 40)])  # fmt: skip
def test_resume_points(text: str, number: int) -> None:
    assert resume_number(text) == number


@pytest.mark.parametrize("text", ["", "abc", "-1", "release-", "release--1", "3 4", "١", "9" * 19, "release-3-" + "x" * 200])
def test_bad_resume_points(text: str) -> None:
    with pytest.raises(BadInput):
        resume_number(text)


# --- a running server -------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mqtt_root: str | None = None) -> Iterator[LiveServer]:
    if mqtt_root is None:
        monkeypatch.delenv("CIM_MQTT_URL", raising=False)
    else:
        monkeypatch.setenv("CIM_MQTT_URL", f"mqtt://127.0.0.1:1883/{mqtt_root}")
    monkeypatch.setenv("CIM_LOCK_DIR", str(tmp_path))
    publish(store_url)
    try:
        with LiveServer(store_url) as live:
            assert watcher_of(live).ready.wait(20)
            yield live
    finally:
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


def watcher_of(live: LiveServer) -> Any:
    return live.server.config.app.state.release_watcher


@pytest.fixture
def root() -> Iterator[str]:
    """A topic prefix of this test's own (the broker keeps retained messages between tests)."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    if broker_up():
        clear_retained(f"{prefix}/releases/current")


def publish_in_a_process(store_url: str) -> None:
    """``cim build`` stands for this: another process publishes a release of two parcels."""
    code = "import sys; sys.path.insert(0, 'tests'); from support.announce import publish; publish(sys.argv[1], 2)"
    subprocess.run([sys.executable, "-c", code, store_url], cwd=ROOT, check=True, timeout=120)


def payloads(got: list[tuple[str, str]]) -> list[Any]:
    return [from_json(payload) for _, payload in got]


@needs_broker
def test_mqtt_announces_published_retains_current_and_announces_a_rollback(
    store_url: str, root: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with serving(store_url, monkeypatch, tmp_path, root) as live:
        topics = f"{root}/releases"
        with MosquittoSub(f"{topics}/#", probe_topic=f"{root}/probe") as sub:
            # the leader made release 1's announcement the retained current at once
            (first,) = payloads(sub.take(1))
            assert (first.get_type(), first.get_subject()) == (EVENT_TYPES["published"], "1")
            publish_in_a_process(store_url)
            got = sub.take(2)
            assert sorted(topic for topic, _ in got) == [f"{topics}/current", f"{topics}/published"]
            one, other = payloads(got)
            assert one.get_id() == other.get_id() and one.get_id().startswith("release-2-published-")
            assert one.get_type() == EVENT_TYPES["published"] and one.get_source() == f"{live.url}/releases"
            data = one.get_data()
            assert (data["number"], data["previous"], data["layers"][0]["count"]) == (2, 1, 2)
            assert f"{live.url}/collections/parcels/changes?from=1&to=2" in [link["href"] for link in data["links"]]
            rollback(store_url, 1)
            ((topic, payload),) = sub.take(1)
            back = from_json(payload)
            assert topic == f"{topics}/current" and back.get_type() == EVENT_TYPES["current"]
            assert back.get_subject() == "1" and back.get_data()["previous"] == 2
            assert sub.quiet(1.5) == []  # nothing twice
        assert watcher_of(live).is_leader and watcher_of(live).publisher.dropped == 0
        # a department connecting later learns the current release at once (retained)
        with MosquittoSub(f"{topics}/current", count=1) as late:
            ((topic, payload),) = late.take(1)
        assert from_json(payload).get_id() == back.get_id()


@needs_broker
def test_two_servers_publish_to_mqtt_once_and_both_stream(
    store_url: str, root: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with serving(store_url, monkeypatch, tmp_path, root) as one, LiveServer(store_url) as two:
        watchers = [watcher_of(one), watcher_of(two)]
        assert watchers[1].ready.wait(20)
        with (
            MosquittoSub(f"{root}/releases/published", probe_topic=f"{root}/probe") as sub,
            SSEClient(f"{one.url}/releases/stream") as sse_one,
            SSEClient(f"{two.url}/releases/stream") as sse_two,
        ):
            thread = threading.Thread(target=publish, args=(store_url,))
            thread.start()
            thread.join(60)
            got = sub.take(1)
            assert [e.event for e in sse_one.take(1)] == ["published"]
            assert [e.event for e in sse_two.take(1)] == ["published"]
            assert sub.quiet(1.5) == []
        assert sorted(w.is_leader for w in watchers) == [False, True]
    assert from_json(got[0][1]).get_subject() == "2"


def test_sse_published_current_and_resume_without_gaps_or_duplicates(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with serving(store_url, monkeypatch, tmp_path) as live:
        stream = f"{live.url}/releases/stream"
        with SSEClient(stream) as client:
            assert client.status == 200
            publish(store_url)  # 2
            (second,) = client.take(1)
            assert second.event == "published" and second.id and second.id.startswith("release-2-published-")
            event = from_json(second.data)
            assert event.get_id() == second.id and event.get_data()["previous"] == 1
            rollback(store_url, 1)
            (back,) = client.take(1)
            assert back.event == "current" and back.id is None  # the client keeps resuming after release 2
            assert from_json(back.data).get_subject() == "1"
            publish(store_url)  # 3, current again after 1
            (third,) = client.take(1)
            assert third.event == "published" and from_json(third.data).get_data()["previous"] == 1
        # resumed after release 2: release 3 from the store, then 4 live, each once
        with SSEClient(stream, {"Last-Event-ID": second.id}) as resumed:
            (stored,) = resumed.take(1)
            assert stored.id == third.id  # the same announcement, made again from the store
            publish(store_url)  # 4
            (fourth,) = resumed.take(1)
            assert fourth.id and fourth.id.startswith("release-4-published-")
            assert resumed.events.empty()
        with SSEClient(f"{stream}?lastEventId=1") as from_one:
            assert [e.id.split("-")[1] for e in from_one.take(3) if e.id] == ["2", "3", "4"]
        # without an id, nothing old
        with SSEClient(stream) as fresh:
            rollback(store_url, 2)
            (only,) = fresh.take(1)
            assert only.event == "current" and from_json(only.data).get_subject() == "2"


def test_sse_subscriber_cap_gives_503(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import httpx

    with serving(store_url, monkeypatch, tmp_path) as live:
        live.server.config.app.state.releases_hub.max_clients = 1
        with SSEClient(f"{live.url}/releases/stream") as client:
            assert client.status == 200
            response = httpx.get(f"{live.url}/releases/stream", timeout=10)
            assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
            assert response.json()["code"] == "ServiceUnavailable"


def test_peek_current_number_follows_publish_and_rollback(store_url: str) -> None:
    """What the watcher polls: another process's switch is seen (DuckDB: at once, by the link;
    PostGIS: once its cached current release, kept a second, is read again)."""
    import time

    from cim.store import open_store

    def seen(store: Any, number: int) -> bool:
        deadline = time.monotonic() + 10
        while store.peek_current_number() != number and time.monotonic() < deadline:
            time.sleep(0.05)
        return store.peek_current_number() == number

    publish(store_url)
    with open_store(store_url) as store:
        assert store.peek_current_number() == store.current_number() == 1
        publish(store_url)
        assert seen(store, 2)
        rollback(store_url, 1)
        assert seen(store, 1)
