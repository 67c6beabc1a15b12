"""Warnings as Server-Sent Events (``/warnings/stream``), the hub behind it, the AsyncAPI document.

The hub's tests hand it events built here (its input is the watcher's callback); the HTTP tests run
the app over the demo store of each back-end; the end-to-end tests (a real server, CAP alerts
posted, real SSE clients) are at the bottom."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from pygeoapi.asyncapi import validate_asyncapi_document

from cim.store.live import LiveEvent
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
