"""Warnings as Server-Sent Events (``/warnings/stream``), the hub behind it, the AsyncAPI document.

The hub's tests hand it events built here (its input is the watcher's callback); the HTTP tests run
the app over the demo store of each back-end; the end-to-end tests (a real server, CAP alerts
posted, real SSE clients) are at the bottom."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pygeoapi.asyncapi import validate_asyncapi_document
from support.server import LiveServer
from support.warnings_push import SSEClient, in_seconds, publish_release, write_warning

from cim.limits import limits
from cim.store import _shared, open_store
from cim.store.live import LiveEvent
from cim.warnings.cloudevents import from_json
from ogcapi.asyncapi import asyncapi_document
from ogcapi.warnings_stream import StreamFilter, StreamHub


def event(seq: int, kind: str = "created", severity: str = "Severe", division: str | None = "120101",
          status: str = "Actual") -> LiveEvent:  # fmt: skip
    feature = {"type": "Feature", "id": seq, "geometry": None,
               "properties": {"severity": severity, "division_code": division, "status": status}}  # fmt: skip
    return LiveEvent(seq, "warnings", kind, seq, datetime(2026, 7, 1, tzinfo=UTC), feature)


# --- the hub -------------------------------------------------------------------------------------
def test_a_subscriber_that_never_reads_is_dropped_and_does_not_hold_up_another() -> None:
    async def scenario() -> tuple[list[int], list[Any], int, int]:
        hub = StreamHub(max_clients=10, queue_size=3)
        reader = hub.add(StreamFilter())
        sleeper = hub.add(StreamFilter())  # never reads
        got: list[int] = []

        async def read() -> None:
            while len(got) < 10:
                item = await reader.queue.get()
                got.append(item.seq)

        task = asyncio.create_task(read())
        # the watcher's thread delivers, one event at a time, as the reader keeps up
        for seq in range(1, 11):
            await asyncio.to_thread(hub.deliver, event(seq))
            await asyncio.sleep(0)
            while not reader.queue.empty():
                await asyncio.sleep(0)
        await asyncio.wait_for(task, 10)
        left = []
        while not sleeper.queue.empty():
            left.append(sleeper.queue.get_nowait())
        return got, left, hub.overflowed, len(hub)

    got, left, overflowed, subscribers = asyncio.run(scenario())
    assert got == list(range(1, 11))
    assert left == [None]  # the sleeper's queue was emptied and closed when it overflowed
    assert overflowed == 1 and subscribers == 1


def test_filters_and_the_public_rule() -> None:
    assert StreamFilter().accepts(event(1))
    assert not StreamFilter().accepts(event(2, status="Exercise"))  # kept off public views
    assert not StreamFilter().accepts(event(3, status="Test"))
    severe = StreamFilter(frozenset({"Severe", "Extreme"}))
    assert severe.accepts(event(4, severity="Extreme")) and not severe.accepts(event(5, severity="Minor"))
    tianjin = StreamFilter(division="12")
    assert tianjin.accepts(event(6, division="120101")) and not tianjin.accepts(event(7, division="110101"))
    assert not tianjin.accepts(event(8, division=None))


def test_subscriber_limit() -> None:
    async def scenario() -> None:
        from ogcapi.warnings_stream import TooManySubscribers

        hub = StreamHub(max_clients=2, queue_size=5)
        first = hub.add(StreamFilter())
        hub.add(StreamFilter())
        with pytest.raises(TooManySubscribers):
            hub.add(StreamFilter())
        hub.remove(first)
        hub.add(StreamFilter())

    asyncio.run(scenario())


def test_delivery_from_another_thread_reaches_each_loop() -> None:
    """Subscribers on two event loops (two server threads) each get the event on their own loop."""
    hub = StreamHub(max_clients=10, queue_size=10)
    results: dict[str, int] = {}
    registered = threading.Barrier(3)

    def run(name: str) -> None:
        async def main() -> None:
            sub = hub.add(StreamFilter())
            registered.wait()
            results[name] = (await asyncio.wait_for(sub.queue.get(), 10)).seq

        asyncio.run(main())

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    registered.wait()
    hub.deliver(event(42))
    for t in threads:
        t.join(15)
    assert results == {"a": 42, "b": 42}


# --- HTTP: parameters, AsyncAPI, links ----------------------------------------------------------------
@pytest.mark.parametrize(
    "query, names",
    [
        ("severity=Bad", "severity='Bad'"),
        ("severity=Severe,Huge", "severity='Huge'"),
        ("division=12ab", "division="),
        ("division=", "division="),
        ("lastEventId=-1", "lastEventId"),
        ("lastEventId=abc", "lastEventId"),
        ("lastEventId=99999999999999999999999", "lastEventId"),
        ("bbox=1,2,3,4", "unknown parameter 'bbox'"),
        ("severity=Minor&severity=Severe", "more than once"),
        ("f=json", "f='json'"),
    ],
)
def test_bad_stream_parameters_are_400_naming_them(api_client: Any, query: str, names: str) -> None:
    response = api_client.get(f"/warnings/stream?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue" and names in body["description"]


def test_bad_last_event_id_header_is_400(api_client: Any) -> None:
    response = api_client.get("/warnings/stream", headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 400 and "Last-Event-ID header" in response.json()["description"]


def test_asyncapi_document_is_valid_and_self_contained(api_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    response = api_client.get("/asyncapi")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/asyncapi+json")
    doc = response.json()
    assert validate_asyncapi_document(doc)
    assert doc["channels"]["warningsStream"]["address"] == "/warnings/stream"
    text = json.dumps(doc)
    refs = [r for r in text.split('"$ref": "')[1:]]
    assert refs and all(r.startswith("#/") for r in refs)  # nothing outside the document
    feature = doc["components"]["schemas"]["WarningFeature"]["properties"]["properties"]["properties"]
    assert {"identifier", "severity", "division_code", "valid_until"} <= set(feature)
    # with a broker, the MQTT channel and its topic parameters
    with_mqtt = asyncapi_document("http://city.example", "mqtt://user:pw@broker.example:1883")
    assert validate_asyncapi_document(json.loads(json.dumps(with_mqtt)))
    assert with_mqtt["channels"]["warningsMqtt"]["address"] == "cim/warnings/{severity}/{division}/{kind}"
    assert with_mqtt["servers"]["mqtt"]["host"] == "broker.example:1883" and "pw" not in json.dumps(with_mqtt)


def test_landing_page_links_asyncapi_and_the_stream(api_client: Any) -> None:
    links = api_client.get("/?f=json").json()["links"]
    asyncapi = [link for link in links if link.get("type") == "application/asyncapi+json"]
    assert len(asyncapi) == 1 and asyncapi[0]["rel"] == "service-desc"
    assert asyncapi[0]["href"].endswith("/asyncapi")
    stream = [link for link in links if link.get("type") == "text/event-stream"]
    assert stream and stream[0]["rel"] == "hub" and stream[0]["href"].endswith("/warnings/stream")


def test_openapi_lists_the_stream_and_asyncapi(api_client: Any) -> None:
    paths = api_client.get("/openapi?f=json").json()["paths"]
    assert "text/event-stream" in paths["/warnings/stream"]["get"]["responses"]["200"]["content"]
    assert "/asyncapi" in paths


# --- end to end: a real server, warnings written to the store, real SSE clients --------------------


def app_of(server: LiveServer) -> Any:
    return server.server.config.app


@pytest.fixture
def server(store_url: str) -> Iterator[LiveServer]:
    """``cim serve``'s app on a socket over a store with a release; its watcher running."""
    publish_release(store_url)
    limits.cache_clear()
    try:
        with LiveServer(store_url) as live:
            assert app_of(live).state.warnings_watcher.ready.wait(20)
            yield live
    finally:
        limits.cache_clear()
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


def test_created_updated_cancelled_and_expired_arrive_on_the_stream(server: LiveServer, store_url: str) -> None:
    with SSEClient(f"{server.url}/warnings/stream") as client, open_store(store_url) as store:
        assert client.status == 200
        first, _ = write_warning(store, "TJ-1")
        update, _ = write_warning(store, "TJ-2", "Update", references=("TJ-1",), severity="Extreme")
        cancel, _ = write_warning(store, "TJ-3", "Cancel", references=("TJ-2",))
        soon, _ = write_warning(store, "TJ-4", expires=in_seconds(2))
        events = client.take(4)
        assert [e.event for e in events] == ["created", "updated", "cancelled", "created"]
        ids = [int(e.id or 0) for e in events]
        assert ids == sorted(ids) and len(set(ids)) == 4
        messages = [from_json(e.data) for e in events]  # valid CloudEvents
        assert [m.get_subject() for m in messages] == [str(f) for f in (first, update, cancel, soon)]
        assert [m.get_id() for m in messages] == [e.id for e in events]
        assert messages[1].get_type() == "org.cim-basemap.warning.updated"
        assert messages[1].get_source() == f"{server.url}/collections/warnings"
        assert messages[1].get_data()["properties"]["severity"] == "Extreme"
        assert messages[0].get_data()["geometry"]["type"] == "MultiPolygon"
        # no request is made: the scheduler emits the expiry at the expiry time
        (expired,) = client.take(1)
        assert expired.event == "expired" and from_json(expired.data).get_subject() == str(soon)
        assert int(expired.id or 0) > ids[-1]


def test_last_event_id_resumes_without_gaps_or_duplicates(server: LiveServer, store_url: str) -> None:
    stream = f"{server.url}/warnings/stream"
    with SSEClient(stream) as a, open_store(store_url) as store:
        for n in range(3):
            write_warning(store, f"R-{n}")
        e1, e2, e3 = (e.id for e in a.take(3))
        with SSEClient(stream, {"Last-Event-ID": str(e1)}) as b, SSEClient(f"{stream}?lastEventId={e2}") as c:
            assert [e.id for e in b.take(2)] == [e2, e3]  # stored events first
            assert [e.id for e in c.take(1)] == [e3]
            write_warning(store, "R-3")
            write_warning(store, "R-4")
            (e4, e5) = (e.id for e in a.take(2))
            assert [e.id for e in b.take(2)] == [e4, e5]  # then live ones, none twice
            assert [e.id for e in c.take(2)] == [e4, e5]
        # resuming from the very start replays the whole log
        with SSEClient(stream, {"Last-Event-ID": "0"}) as d:
            assert [e.id for e in d.take(5)] == [e1, e2, e3, e4, e5]


def test_filters_by_severity_and_division(server: LiveServer, store_url: str) -> None:
    stream = f"{server.url}/warnings/stream"
    with SSEClient(f"{stream}?severity=extreme,Severe") as severe, SSEClient(f"{stream}?division=1101") as beijing, \
            SSEClient(stream) as everything, open_store(store_url) as store:  # fmt: skip
        write_warning(store, "F-1", severity="Minor")
        write_warning(store, "F-2", severity="Extreme", division="110101")
        write_warning(store, "F-3", status="Exercise")  # never public
        write_warning(store, "F-4", severity="Severe")
        assert [e.json["data"]["properties"]["identifier"] for e in everything.take(3)] == ["F-1", "F-2", "F-4"]
        assert [e.json["data"]["properties"]["identifier"] for e in severe.take(2)] == ["F-2", "F-4"]
        assert [e.json["data"]["properties"]["identifier"] for e in beijing.take(1)] == ["F-2"]


def test_subscribers_beyond_the_limit_get_503_with_retry_after(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIM_LIMIT_SSE_CLIENTS", "1")
    publish_release(store_url)
    limits.cache_clear()
    try:
        with LiveServer(store_url) as live, SSEClient(f"{live.url}/warnings/stream") as first:
            assert first.status == 200
            import httpx

            refused = httpx.get(f"{live.url}/warnings/stream", timeout=10)
            assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
            assert refused.json()["code"] == "ServiceUnavailable" and "at most 1" in refused.json()["description"]
    finally:
        limits.cache_clear()
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


def test_a_subscriber_that_never_reads_is_dropped_while_others_get_every_event(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIM_LIMIT_SSE_QUEUE", "4")
    publish_release(store_url)
    limits.cache_clear()
    try:
        with LiveServer(store_url) as live, open_store(store_url) as store:
            hub = app_of(live).state.warnings_hub
            assert app_of(live).state.warnings_watcher.ready.wait(20)
            # the slow subscriber: a socket with a tiny receive buffer that sends its request and never reads
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            slow.connect(("127.0.0.1", live.port))
            slow.sendall(b"GET /warnings/stream HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n")
            with SSEClient(f"{live.url}/warnings/stream") as fast:
                while len(hub) < 2:  # wait until both are registered
                    time.sleep(0.01)
                written: list[int] = []
                while hub.overflowed == 0 and len(written) < 300:
                    fid, _ = write_warning(store, f"BIG-{len(written)}", vertices=4000)  # ~150 kB each
                    written.append(fid)
                    (got,) = fast.take(1)  # the reader gets each event although the other never reads
                    assert got.json["subject"] == str(fid)
                assert hub.overflowed == 1, f"{len(written)} events did not fill the slow subscriber's buffers"
                # the slow one was disconnected: reading it now yields what was in flight, then the end
                slow.settimeout(30)
                received = b""
                while chunk := slow.recv(1 << 20):
                    received += chunk
                assert received.startswith(b"HTTP/1.1 200")
                assert 0 < received.count(b"event: created") < len(written)
                # and the reader goes on
                fid, _ = write_warning(store, "AFTER")
                assert fast.take(1)[0].json["subject"] == str(fid)
            slow.close()
    finally:
        limits.cache_clear()
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()
