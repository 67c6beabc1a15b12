"""Publication of warning events to an MQTT broker (paho-mqtt 2), CloudEvents JSON payloads, QoS 1.

Topics (docs/warnings/push.md)::

    cim/warnings/{severity}/{division_code|none}/{kind}

``severity`` is the CAP severity (Extreme, Severe, Moderate, Minor, Unknown), ``division_code`` the
GB/T 2260 code of the warned division (``none`` when the warning has none), ``kind`` created,
updated, cancelled or expired. Subscribers filter with wildcards: ``cim/warnings/#`` (all),
``cim/warnings/Extreme/#``, ``cim/warnings/+/120101/#``, ``cim/warnings/+/+/expired``.

The client (cim/events/mqtt.py, shared with the release announcements) never holds up the server:
it connects and reconnects in paho's own thread, and a publication only goes into paho's bounded
queue; when that is full (the broker is down for long) the message is dropped, counted and logged.
"""

from __future__ import annotations

import re

from cim.events.mqtt import QOS, QUEUE_SIZE, URL_ENV, BrokerURL, MqttClient, broker_url, environment_url
from cim.store.live import LiveEvent
from cim.warnings.cloudevents import to_json

CHANNEL = "warnings"
TOPIC_ROOT = "cim/warnings"
#: a topic level may not hold MQTT's wildcards or separators
_UNSAFE = re.compile(r"[/#+\x00]")


def _level(value: object, default: str) -> str:
    text = "" if value is None else str(value).strip()
    return _UNSAFE.sub("_", text) or default


def topic(event: LiveEvent, root: str = TOPIC_ROOT) -> str:
    """The topic of ``event``: ``{root}/{severity}/{division_code|none}/{kind}``."""
    properties = event.feature.get("properties") or {}
    severity = _level(properties.get("severity"), "Unknown")
    division = _level(properties.get("division_code"), "none")
    return f"{root}/{severity}/{division}/{event.kind}"


def parse_url(url: str) -> BrokerURL:
    """``mqtt://[user[:password]@]host[:port][/topic-root]`` (``mqtts`` for TLS), the warnings under
    ``{topic-root or cim}/warnings``; ConfigError otherwise."""
    return broker_url(url, CHANNEL)


class MqttPublisher(MqttClient):
    """Publishes warning events to one broker; never blocks the caller (see the module's doc)."""

    def __init__(self, url: str, source: str, queue_size: int = QUEUE_SIZE, client_id: str | None = None) -> None:
        super().__init__(url, CHANNEL, queue_size, client_id)
        self.source = source

    @classmethod
    def from_environment(cls, source: str) -> MqttPublisher | None:
        """A publisher for ``$CIM_MQTT_URL``, or None when it is unset or empty."""
        url = environment_url()
        return cls(url, source) if url else None

    def publish(self, event: LiveEvent) -> bool:
        """Queue ``event`` for the broker; False (and counted as dropped) when the queue is full."""
        return self.send(topic(event, self.broker.root), to_json(event, self.source), what=f"warning event {event.seq}")


__all__ = ["QOS", "TOPIC_ROOT", "URL_ENV", "BrokerURL", "MqttPublisher", "parse_url", "topic"]
