"""Following a CAP feed (Atom or RSS 2.0): each poll is a conditional GET of the feed, then one GET
per entry not seen before for its CAP document.

- The feed: ``ETag`` -> ``If-None-Match`` and ``Last-Modified`` -> ``If-Modified-Since`` on the next
  poll; a 304 fetches nothing else. The feed XML goes through the same hardened parser as alerts
  (no DTD, no entities, size limit ``CIM_LIMIT_FEED_BYTES``, default 16 MiB).
- An entry is known by its id (Atom ``<id>``, RSS ``<guid>``, else its link) and its ``<updated>``
  (RSS ``<pubDate>``): an entry seen before is not fetched again; one whose updated time changed is.
- Its CAP document: Atom ``<link type="application/cap+xml">``, else a link whose path ends
  ``.xml``, else a CAP ``<alert>`` inline in ``<content>``; RSS ``<enclosure>`` or ``<link>``.
  Relative hrefs resolve against the feed URL; only http(s) links are fetched.
- Errors: the feed failing (timeout, HTTP error, malformed) raises :class:`FeedError` from
  :meth:`FeedFollower.poll`; an entry's document answering 4xx is logged and skipped for good; a
  5xx or timeout is retried on the next polls, :attr:`FeedFollower.max_attempts` times in all.
  :func:`follow` keeps going through all of these, and skips a document its handler refuses (4xx).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from lxml import etree

from cim.errors import CIMError
from cim.warnings.cap import NS as CAP_NS
from cim.warnings.xml_guard import parse_xml, warning_byte_limit

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TYPE = "application/cap+xml"
DEFAULT_FEED_BYTES = 16 * 1024 * 1024
USER_AGENT = "cim-basemap warnings follower"


class FeedError(CIMError):
    """The feed or an entry's document could not be fetched (timeout, connection, HTTP error)."""

    status = 502
    code = "FeedUnavailable"


@dataclass(frozen=True)
class FeedEntry:
    """One entry of the feed: its id, its updated time (as written) and where its CAP document is
    (``url``) or the document itself (``inline``, an Atom ``<content>`` holding the alert)."""

    id: str
    updated: str
    url: str | None
    inline: bytes | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.updated)


@dataclass(frozen=True)
class FeedDocument:
    """A CAP document of an entry, with where it came from."""

    entry: FeedEntry
    url: str
    data: bytes


def feed_byte_limit() -> int:
    raw = os.environ.get("CIM_LIMIT_FEED_BYTES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_FEED_BYTES


def _text(element: etree._Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def _is_xml_href(href: str) -> bool:
    return urlsplit(href).path.lower().endswith(".xml")


def _atom_entry(entry: etree._Element, base: str) -> FeedEntry:
    links = entry.findall(ATOM + "link")
    href = next(
        (l.get("href") for l in links if (l.get("type") or "").split(";")[0].strip() == CAP_TYPE and l.get("href")),
        None,
    )
    if href is None:
        href = next(
            (l.get("href") for l in links if l.get("href") and _is_xml_href(l.get("href"))),
            None,
        )
    inline = None
    if href is None:
        alert = entry.find(f"{ATOM}content/{{{CAP_NS}}}alert")
        if alert is not None:
            inline = etree.tostring(alert, xml_declaration=True, encoding="UTF-8")
    url = urljoin(base, href) if href else None
    entry_id = _text(entry.find(ATOM + "id")) or url or ""
    updated = _text(entry.find(ATOM + "updated")) or _text(entry.find(ATOM + "published"))
    return FeedEntry(entry_id, updated, url, inline)


def _rss_item(item: etree._Element, base: str) -> FeedEntry:
    href = None
    for enclosure in item.findall("enclosure"):
        if enclosure.get("url") and ((enclosure.get("type") or "").startswith(CAP_TYPE) or _is_xml_href(enclosure.get("url"))):
            href = enclosure.get("url")
            break
    if href is None:
        href = _text(item.find("link")) or None
    url = urljoin(base, href) if href else None
    return FeedEntry(_text(item.find("guid")) or url or "", _text(item.find("pubDate")), url)


def feed_entries(root: etree._Element, base: str) -> list[FeedEntry]:
    """The entries of a parsed Atom feed or RSS 2.0 channel, in document order."""
    if root.tag == ATOM + "feed":
        return [_atom_entry(e, base) for e in root.findall(ATOM + "entry")]
    if root.tag == "rss":
        return [_rss_item(i, base) for i in root.findall("channel/item")]
    raise FeedError(f"feed {base}: <{etree.QName(root).localname}> is neither an Atom <feed> nor an RSS 2.0 <rss>")


class FeedFollower:
    """Polls one CAP feed; :meth:`poll` returns the CAP documents of entries not seen before."""

    #: fetches of one entry's document that failed with a 5xx or a timeout before it is given up
    max_attempts = 3

    def __init__(self, url: str, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise FeedError(f"feed {url}: only http and https feeds can be followed")
        self.url = url
        self.timeout = timeout
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT})
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._seen: set[tuple[str, str]] = set()
        self._failures: dict[tuple[str, str], int] = {}
        self._pending: dict[tuple[str, str], FeedEntry] = {}

    def close(self) -> None:
        self._client.close()

    def _get(self, url: str, what: str, limit: int, headers: dict[str, str] | None = None) -> httpx.Response | bytes:
        """The body of a GET (at most ``limit`` + 1 bytes are read), or the response when not 200."""
        try:
            with self._client.stream("GET", url, headers=headers or {}) as response:
                if response.status_code != 200:
                    return response
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        break
                self._remember(response, url)
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise FeedError(f"{what} {url}: no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise FeedError(f"{what} {url}: {type(exc).__name__}: {exc}") from None

    def _remember(self, response: httpx.Response, url: str) -> None:
        if url == self.url:
            self._etag = response.headers.get("ETag")
            self._last_modified = response.headers.get("Last-Modified")

    def fetch_entries(self) -> list[FeedEntry] | None:
        """The feed's entries, or None when the feed has not changed (304)."""
        headers = {}
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._last_modified:
            headers["If-Modified-Since"] = self._last_modified
        got = self._get(self.url, "feed", feed_byte_limit(), headers)
        if isinstance(got, httpx.Response):
            if got.status_code == 304:
                return None
            raise FeedError(f"feed {self.url}: HTTP {got.status_code}")
        return feed_entries(parse_xml(got, f"feed {self.url}", limit=feed_byte_limit()), self.url)

    def _document(self, entry: FeedEntry) -> FeedDocument | None:
        """The entry's CAP document; None when it is skipped for good or to be retried."""
        if entry.inline is not None:
            return FeedDocument(entry, self.url, entry.inline)
        if entry.url is None:
            log.warning("feed %s: entry %s has no CAP link; skipped", self.url, entry.id)
            return None
        if urlsplit(entry.url).scheme not in ("http", "https"):
            log.warning(
                "feed %s: entry %s links to %s: only http(s) is fetched; skipped",
                self.url,
                entry.id,
                entry.url,
            )
            return None
        try:
            got = self._get(entry.url, "CAP document", warning_byte_limit())
        except FeedError as exc:
            return self._failed(entry, str(exc))
        if isinstance(got, httpx.Response):
            if got.status_code >= 500 or got.status_code in (408, 429):
                return self._failed(entry, f"CAP document {entry.url}: HTTP {got.status_code}")
            log.warning(
                "feed %s: entry %s: CAP document %s: HTTP %s; skipped",
                self.url,
                entry.id,
                entry.url,
                got.status_code,
            )
            return None
        return FeedDocument(entry, entry.url, got)

    def _failed(self, entry: FeedEntry, why: str) -> None:
        """Count a failed attempt; the entry is retried on the next poll until max_attempts."""
        attempts = self._failures.get(entry.key, 0) + 1
        self._failures[entry.key] = attempts
        if attempts >= self.max_attempts:
            log.error(
                "feed %s: entry %s: %s; given up after %d attempts",
                self.url,
                entry.id,
                why,
                attempts,
            )
            self._failures.pop(entry.key, None)
        else:
            log.warning("feed %s: entry %s: %s; will retry", self.url, entry.id, why)
            self._pending[entry.key] = entry

    def retry_later(self, document: FeedDocument) -> None:
        """Fetch ``document``'s entry again on the next poll (its handler failed for a reason that
        may pass, e.g. the store was unavailable), up to :attr:`max_attempts` times."""
        self._failed(document.entry, "the handler failed")

    def poll_documents(self) -> list[FeedDocument]:
        """The CAP documents of entries new since the last poll (and of entries to retry)."""
        entries = self.fetch_entries() or []
        todo = dict(self._pending)
        self._pending.clear()
        for entry in entries:
            if entry.key not in self._seen and entry.key not in todo:
                todo[entry.key] = entry
        documents = []
        for key, entry in todo.items():
            self._seen.add(key)
            document = self._document(entry)
            if document is not None:
                documents.append(document)
        return documents

    def poll(self) -> list[bytes]:
        """The CAP documents of entries not seen before, as bytes."""
        return [document.data for document in self.poll_documents()]


def follow(
    url: str,
    handle: Callable[[bytes], None],
    interval: float = 60.0,
    stop: threading.Event | None = None,
    *,
    timeout: float = 10.0,
    once: bool = False,
    follower: FeedFollower | None = None,
) -> None:
    """Poll ``url`` every ``interval`` seconds until ``stop`` is set (or once), calling ``handle``
    with each new CAP document. A feed error is logged and the next poll tried (with ``once``, it
    is raised: a one-shot run that could not read the feed failed); a document ``handle`` refuses
    with a 4xx :class:`~cim.errors.CIMError` is logged and skipped (never retried); any other
    failure of ``handle`` is retried on the next polls, a few times."""
    stop = stop or threading.Event()
    own = follower is None
    follower = follower or FeedFollower(url, timeout=timeout)
    try:
        while not stop.is_set():
            try:
                documents = follower.poll_documents()
            except CIMError as exc:
                if once:
                    raise
                log.warning("%s", exc)
                documents = []
            for document in documents:
                try:
                    handle(document.data)
                except CIMError as exc:
                    if exc.status < 500:
                        log.warning("feed %s: %s refused: %s", url, document.url, exc)
                    else:
                        log.warning("feed %s: %s: %s", url, document.url, exc)
                        follower.retry_later(document)
                except Exception:
                    log.exception("feed %s: %s: handling failed", url, document.url)
                    follower.retry_later(document)
            if once or stop.wait(interval):
                return
    finally:
        if own:
            follower.close()
