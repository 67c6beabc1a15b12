"""Release announcements as CloudEvents 1.0 (structured JSON): what ``/releases/stream`` and the
MQTT topics ``cim/releases/{published|current}`` carry (docs/sharing-announcements.md).

- ``type``: ``org.cim-basemap.release.published`` (a new release became current) or
  ``org.cim-basemap.release.current`` (the current release changed otherwise: ``cim releases
  rollback`` back or forward);
- ``id``: ``release-<N>-<kind>-<time>``, the time being the release's ``created`` for ``published``
  (the same in every process, every time the event is made: subscribers deduplicate by it) and the
  time the switch was seen for ``current``;
- ``source``: ``<server URL>/releases``; ``subject``: the release number; ``time``: as in the id;
- ``data`` (``application/json``): the release as ``GET /releases/{n}`` describes it
  (cim/sharing/releases.py: number, created, layers with counts, the checksums count, links to its
  catalog records, change feeds and downloads), ``previous`` being the release that was current
  before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from cim.errors import BadInput
from cim.events.cloudevents import MEDIA_TYPE, dumps, from_json, make, to_dict, utc
from cim.sharing.releases import RELEASES_PATH, describe_release
from cim.store import LayerInfo, ReleaseInfo

PUBLISHED = "published"
CURRENT = "current"
KINDS = (PUBLISHED, CURRENT)
TYPE_PREFIX = "org.cim-basemap.release."
EVENT_TYPES: dict[str, str] = {kind: TYPE_PREFIX + kind for kind in KINDS}
DATA_MEDIA_TYPE = "application/json"
#: ``release-<N>-...`` (an announcement's id) or a plain release number: where a stream resumes
_RESUME = re.compile(r"^(?:release-)?([0-9]{1,18})(?:-[A-Za-z0-9:.\-]{0,80})?$")


def event_id(kind: str, number: int, at: datetime) -> str:
    return f"release-{number}-{kind}-{utc(at).strftime('%Y%m%dT%H%M%S.%fZ')}"


def resume_number(text: str, source: str = "Last-Event-ID") -> int:
    """The release number a client resumes after: an announcement's id or a release number; BadInput otherwise."""
    match = _RESUME.match(text.strip())
    if match is None:
        raise BadInput(f"{source} {text[:40]!r} is neither a release announcement id (release-<N>-...) nor a release number")
    return int(match.group(1))


@dataclass(frozen=True)
class Announcement:
    """One announcement: its kind, the release, the one current before it and when it happened."""

    kind: str
    number: int
    previous: int | None
    #: the release's created time (published) or when the switch was seen (current)
    at: datetime
    #: the CloudEvent as a structured JSON object
    document: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.document["id"])

    @property
    def json(self) -> str:
        return dumps(self.document)


def cloudevent(
    kind: str, release: ReleaseInfo, layers: list[LayerInfo], previous: int | None, base: str, at: datetime | None = None
) -> CloudEvent:
    """The validated CloudEvent announcing ``release`` (``at``: when a ``current`` switch was seen)."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown release event kind {kind!r} (one of {', '.join(KINDS)})")
    when = release.created if kind == PUBLISHED or at is None else at
    data = describe_release(release, layers, previous, base)
    data["current"] = True  # it is, when announced
    attributes = {
        "id": event_id(kind, release.number, when),
        "source": f"{base}{RELEASES_PATH}" if base else RELEASES_PATH,
        "type": EVENT_TYPES[kind],
        "subject": str(release.number),
        "time": utc(when),
        "datacontenttype": DATA_MEDIA_TYPE,
    }
    return make(attributes, data)


def announcement(
    kind: str, release: ReleaseInfo, layers: list[LayerInfo], previous: int | None, base: str, at: datetime | None = None
) -> Announcement:
    event = cloudevent(kind, release, layers, previous, base, at)
    document = to_dict(event)
    return Announcement(kind, release.number, previous, event.get_time() or utc(release.created), document)


def announce(store: Any, kind: str, number: int, previous: int | None, base: str, at: datetime | None = None) -> Announcement:
    """The announcement of release ``number`` of ``store`` (reads its info and layers)."""
    release = next((r for r in store.releases() if r.number == number), None)
    if release is None:
        raise LookupError(f"store has no release {number}")
    return announcement(kind, release, store.release_layers(number), previous, base, at)


__all__ = ["CURRENT", "DATA_MEDIA_TYPE", "EVENT_TYPES", "KINDS", "MEDIA_TYPE", "PUBLISHED", "TYPE_PREFIX", "Announcement",
           "announce", "announcement", "cloudevent", "event_id", "from_json", "resume_number"]
