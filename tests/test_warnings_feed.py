"""Following CAP feeds: a real HTTP server on 127.0.0.1 serving Atom and RSS feeds whose entries
link to the CAP samples; conditional GETs, entries fetched once, broken entries skipped, and
``cim warnings follow`` ingesting into both stores."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from cim.cli import cli
from cim.errors import CIMError
from cim.warnings.cap import parse_cap
from cim.warnings.errors import InvalidWarning
from cim.warnings.feed import FeedError, FeedFollower, follow
from cim.warnings.follow_command import follow_command

FIXTURES = Path(__file__).parent / "fixtures" / "warnings"
CORPUS = Path(__file__).parent / "corpus" / "warnings"


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/xml"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0


@dataclass
class FeedServer:
    base: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    #: GETs per path (every request, 304s included)
    hits: Counter = field(default_factory=Counter)
    #: requests answered 304
    not_modified: Counter = field(default_factory=Counter)
    #: the conditional headers each feed request carried
    conditions: list[tuple[str | None, str | None]] = field(default_factory=list)

    def serve(self, path: str, body: bytes, **kwargs: object) -> str:
        self.routes[path] = Route(body, **kwargs)  # type: ignore[arg-type]
        return self.base + path


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    state = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.delay:
                time.sleep(route.delay)
            if route.etag or route.last_modified:
                state.conditions.append(
                    (
                        self.headers.get("If-None-Match"),
                        self.headers.get("If-Modified-Since"),
                    )
                )
            if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
            ):
                state.not_modified[self.path] += 1
                self.send_response(304)
                self.end_headers()
                return
            if route.status != 200:
                self.send_error(route.status)
                return
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def atom(entries: list[tuple[str, str, str]], extra: str = "") -> bytes:
    """An Atom feed: each entry (id, updated, link element(s))."""
    body = "".join(f"<entry><id>{i}</id><title>{i}</title><updated>{u}</updated>{link}</entry>" for i, u, link in entries)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:tianjin:warnings</id><title>Tianjin warnings</title><updated>2026-12-03T12:00:00+08:00</updated>{extra}{body}</feed>"
    ).encode()


def cap_link(href: str) -> str:
    return f'<link rel="alternate" type="application/cap+xml" href="{href}"/>'


def sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_atom_conditional_get_and_each_entry_fetched_once(
    feed_server: FeedServer,
) -> None:
    feed_server.serve("/cap/polygon.xml", sample("polygon.xml"))
    feed_server.serve("/cap/circle.xml", sample("circle.xml"))
    entries = [
        (
            "urn:1",
            "2026-12-03T08:00:00+08:00",
            cap_link("/cap/polygon.xml"),
        ),  # absolute path
        (
            "urn:2",
            "2026-12-03T10:15:00+08:00",
            '<link rel="alternate" href="cap/circle.xml"/>',
        ),  # relative, .xml
    ]
    url = feed_server.serve("/feed.atom", atom(entries), content_type="application/atom+xml", etag='"v1"')
    follower = FeedFollower(url, timeout=5)

    assert follower.poll() == [sample("polygon.xml"), sample("circle.xml")]
    assert feed_server.hits["/cap/polygon.xml"] == 1 and feed_server.hits["/cap/circle.xml"] == 1

    # unchanged feed: a conditional GET answered 304, nothing else fetched
    assert follower.poll() == []
    assert feed_server.conditions[-1] == ('"v1"', None)
    assert feed_server.not_modified["/feed.atom"] == 1
    assert feed_server.hits["/cap/polygon.xml"] == 1 and feed_server.hits["/cap/circle.xml"] == 1

    # a new entry and an updated one: only those are fetched
    feed_server.serve("/cap/update.xml", sample("update.xml"))
    entries.append(("urn:3", "2026-12-03T12:00:00+08:00", cap_link("/cap/update.xml")))
    entries[1] = ("urn:2", "2026-12-03T10:30:00+08:00", entries[1][2])
    feed_server.serve("/feed.atom", atom(entries), content_type="application/atom+xml", etag='"v2"')
    assert follower.poll() == [sample("circle.xml"), sample("update.xml")]
    assert feed_server.conditions[-1] == ('"v1"', None)
    assert [feed_server.hits[p] for p in ("/cap/polygon.xml", "/cap/circle.xml", "/cap/update.xml")] == [1, 2, 1]
    assert follower.poll() == [] and feed_server.not_modified["/feed.atom"] == 2


def test_rss_last_modified_enclosures_and_links(feed_server: FeedServer) -> None:
    feed_server.serve("/a/geocode.xml", sample("geocode.xml"))
    feed_server.serve("/alert?id=gbt", sample("gbt35965.xml"), content_type="application/cap+xml")
    rss = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>天津预警</title>'
        "<item><title>高温</title><guid>heat-3</guid><pubDate>Thu, 03 Dec 2026 07:00:00 +0800</pubDate>"
        '<enclosure url="/a/geocode.xml" type="application/cap+xml" length="1"/></item>'
        f"<item><title>暴雨</title><link>{feed_server.base}/alert?id=gbt</link>"
        "<pubDate>Thu, 03 Dec 2026 08:00:00 +0800</pubDate></item>"
        "</channel></rss>"
    ).encode()
    modified = "Thu, 03 Dec 2026 04:00:00 GMT"
    url = feed_server.serve("/rss.xml", rss, content_type="application/rss+xml", last_modified=modified)
    follower = FeedFollower(url, timeout=5)
    documents = follower.poll_documents()
    assert [d.data for d in documents] == [
        sample("geocode.xml"),
        sample("gbt35965.xml"),
    ]
    assert [d.entry.id for d in documents] == [
        "heat-3",
        f"{feed_server.base}/alert?id=gbt",
    ]
    assert follower.poll() == []
    assert feed_server.conditions[-1] == (None, modified)
    assert feed_server.not_modified["/rss.xml"] == 1
    assert feed_server.hits["/a/geocode.xml"] == 1 and feed_server.hits["/alert?id=gbt"] == 1


def test_broken_entries_are_skipped_and_server_errors_retried(
    feed_server: FeedServer,
) -> None:
    feed_server.serve("/ok.xml", sample("polygon.xml"))
    feed_server.serve("/flaky.xml", b"", status=503)
    entries = [
        ("gone", "1", cap_link("/missing.xml")),  # 404: skipped for good
        ("flaky", "1", cap_link("/flaky.xml")),  # 503: retried, max_attempts in all
        (
            "nolink",
            "1",
            '<link rel="alternate" href="/page.html"/>',
        ),  # no CAP link: skipped
        ("local", "1", cap_link("file:///etc/passwd")),  # not http(s): never read
        ("ok", "1", cap_link("/ok.xml")),
    ]
    url = feed_server.serve("/feed.atom", atom(entries), etag='"e"')
    follower = FeedFollower(url, timeout=5)
    assert follower.poll() == [sample("polygon.xml")]
    assert follower.poll() == []  # 304, and the 503 entry tried again
    assert feed_server.hits["/flaky.xml"] == 2
    feed_server.serve("/flaky.xml", sample("circle.xml"))
    assert follower.poll() == [sample("circle.xml")]  # third and last attempt succeeds
    assert follower.poll() == []
    assert feed_server.hits["/flaky.xml"] == 3 and feed_server.hits["/missing.xml"] == 1
    assert feed_server.hits["/ok.xml"] == 1 and feed_server.hits["/page.html"] == 0


def test_server_errors_are_given_up_after_max_attempts(feed_server: FeedServer) -> None:
    feed_server.serve("/down.xml", b"", status=500)
    url = feed_server.serve("/feed.atom", atom([("down", "1", cap_link("/down.xml"))]), etag='"e"')
    follower = FeedFollower(url, timeout=5)
    for _ in range(FeedFollower.max_attempts + 2):
        assert follower.poll() == []
    assert feed_server.hits["/down.xml"] == FeedFollower.max_attempts


def test_inline_alert_in_atom_content(feed_server: FeedServer) -> None:
    alert = sample("circle.xml").split(b"?>", 1)[1]
    url = feed_server.serve(
        "/feed.atom",
        atom(
            [
                (
                    "inline",
                    "1",
                    f'<content type="application/cap+xml">{alert.decode()}</content>',
                )
            ]
        ),
    )
    (document,) = FeedFollower(url, timeout=5).poll()
    assert parse_cap(document).identifier == "TJ-GAS-2026-007"


def test_hostile_and_failing_feeds(feed_server: FeedServer) -> None:
    url = feed_server.serve("/evil.atom", (CORPUS / "xxe.xml").read_bytes())
    with pytest.raises(InvalidWarning, match="<!DOCTYPE is not accepted"):
        FeedFollower(url, timeout=5).poll()
    with pytest.raises(FeedError, match="HTTP 404"):
        FeedFollower(feed_server.base + "/nothing.atom", timeout=5).poll()
    url = feed_server.serve("/notfeed.xml", sample("polygon.xml"))
    with pytest.raises(FeedError, match="neither an Atom <feed> nor an RSS"):
        FeedFollower(url, timeout=5).poll()
    url = feed_server.serve("/slow.atom", atom([]), delay=1.0)
    with pytest.raises(FeedError, match="no answer within 0.2 s"):
        FeedFollower(url, timeout=0.2).poll()
    with pytest.raises(FeedError, match="only http and https"):
        FeedFollower("file:///etc/passwd")


def test_follow_skips_refused_documents_and_survives_feed_errors(
    feed_server: FeedServer,
) -> None:
    feed_server.serve("/bad.xml", (CORPUS / "unclosed-polygon.xml").read_bytes())
    feed_server.serve("/good.xml", sample("polygon.xml"))
    entries = [("bad", "1", cap_link("/bad.xml")), ("good", "1", cap_link("/good.xml"))]
    url = feed_server.serve("/feed.atom", b"", status=500)
    handled: list[str] = []
    refused: list[str] = []
    done = threading.Event()

    def handle(document: bytes) -> None:
        try:
            handled.append(parse_cap(document).identifier)
        except CIMError as exc:
            refused.append(str(exc))
            raise
        done.set()

    stop = threading.Event()
    worker = threading.Thread(target=follow, args=(url, handle, 0.05, stop), kwargs={"timeout": 5})
    worker.start()
    try:
        # the feed answers 500 a few times; follow keeps polling, then the feed comes up
        while feed_server.hits["/feed.atom"] < 2:
            time.sleep(0.01)
        feed_server.serve("/feed.atom", atom(entries), etag='"x"')
        assert done.wait(30)
        while feed_server.not_modified["/feed.atom"] < 2:  # polled on after the refusal
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()
    assert handled == ["TJ-FLOOD-2026-001"]
    assert len(refused) == 1 and "ring is not closed" in refused[0]
    assert feed_server.hits["/bad.xml"] == 1  # refused once, never fetched again


def publish_one_parcel(store_url: str) -> None:
    import geopandas as gpd
    from shapely.geometry import MultiPolygon, box

    from cim.store import LayerData, ReleaseDraft, open_store
    from layers.catalog import CATALOG

    frame = gpd.GeoDataFrame(
        {"parcel_id": ["120101-001"], "land_use": ["R2"], "area_m2": [None], "plot_ratio": [None],
         "source": ["test"], "source_id": ["p1"]},
        geometry=[MultiPolygon([box(117.19, 39.11, 117.20, 39.12)])], crs=4326,
    )  # fmt: skip
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(CATALOG["parcels"], frame)], srid=4326))


def test_follow_command_ingests_into_the_store(feed_server: FeedServer, store_url: str) -> None:
    for name in ("polygon.xml", "circle.xml", "update.xml"):
        feed_server.serve(f"/cap/{name}", sample(name))
    feed_server.serve("/cap/bad.xml", (CORPUS / "radius-zero.xml").read_bytes())
    entries = [(n, "1", cap_link(f"/cap/{n}")) for n in ("polygon.xml", "circle.xml", "bad.xml", "update.xml")]
    url = feed_server.serve("/feed.atom", atom(entries), etag='"1"')
    publish_one_parcel(store_url)  # a store being served has a release; the warnings live beside it
    runner = CliRunner()
    result = runner.invoke(cli, ["warnings", "follow", url, "--once", "--store", store_url], catch_exceptions=False)
    assert result.exit_code == 1, result.output  # one document refused
    lines = result.output.splitlines()
    assert lines[0].startswith("TJ-FLOOD-2026-001: created (feature ")
    assert lines[1].startswith("TJ-GAS-2026-007: created (feature ")
    assert lines[2].startswith("TJ-FLOOD-2026-001: refused: ") and "radius 0 km must be greater than 0" in lines[2]
    assert lines[3].startswith("TJ-FLOOD-2026-001-U1: created (feature ")
    # a new process knows nothing of the entries: the same documents again are idempotent
    again = runner.invoke(cli, ["warnings", "follow", url, "--once", "--store", store_url], catch_exceptions=False)
    assert again.exit_code == 1, again.output
    assert [line.split(": ", 1)[1].split(" (")[0] for line in again.output.splitlines()] == [
        "unchanged",
        "unchanged",
        "refused: info 1, area 1 <circle> 1: radius 0 km must be greater than 0",
        "unchanged",
    ]

    from cim.store import open_store

    store = open_store(store_url)
    try:
        events = store.live_events("warnings")
    finally:
        store.close()
    assert [(e.kind, e.feature["properties"]["identifier"]) for e in events] == [
        ("created", "TJ-FLOOD-2026-001"),
        ("created", "TJ-GAS-2026-007"),
        ("updated", "TJ-FLOOD-2026-001-U1"),
    ]
    assert events[2].fid == int(lines[3].split("feature ")[1].rstrip(")"))


def test_follow_once_fails_when_the_feed_cannot_be_read(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/feed.atom", b"", status=503)
    result = CliRunner().invoke(follow_command, [url, "--once", "--store", str(tmp_path / "city.duckdb")])
    assert result.exit_code != 0
    assert isinstance(result.exception, FeedError) and "HTTP 503" in str(result.exception)


def test_follow_retries_a_document_the_store_could_not_take(feed_server: FeedServer) -> None:
    from cim.errors import StoreError

    feed_server.serve("/cap/polygon.xml", sample("polygon.xml"))
    url = feed_server.serve("/feed.atom", atom([("p", "1", cap_link("/cap/polygon.xml"))]), etag='"r"')
    calls: list[str] = []

    def handle(document: bytes) -> None:
        calls.append(parse_cap(document).identifier)
        if len(calls) == 1:
            raise StoreError("store unavailable")

    follower = FeedFollower(url, timeout=5)
    follow(url, handle, once=True, follower=follower)  # fails in the handler: kept for the next poll
    follow(url, handle, once=True, follower=follower)  # the feed answers 304; the document is fetched again
    follow(url, handle, once=True, follower=follower)  # handled: nothing more
    follower.close()
    assert calls == ["TJ-FLOOD-2026-001", "TJ-FLOOD-2026-001"]
    assert feed_server.hits["/cap/polygon.xml"] == 2 and feed_server.not_modified["/feed.atom"] == 2
