"""Publication of warning events to an MQTT broker (paho-mqtt 2), CloudEvents JSON payloads, QoS 1.

Topics (docs/warnings/push.md)::

    cim/warnings/{severity}/{division_code|none}/{kind}

``severity`` is the CAP severity (Extreme, Severe, Moderate, Minor, Unknown), ``division_code`` the
GB/T 2260 code of the warned division (``none`` when the warning has none), ``kind`` created,
updated, cancelled or expired. Subscribers filter with wildcards: ``cim/warnings/#`` (all),
``cim/warnings/Extreme/#``, ``cim/warnings/+/120101/#``, ``cim/warnings/+/+/expired``.

The broker never holds up the server: the client connects and reconnects in paho's own network
thread (``connect_async`` + ``loop_start``, back-off 1 to 30 s), :meth:`MqttPublisher.publish`
only puts the message in paho's bounded queue (``max_queued_messages``) and returns; when the queue
is full (the broker is down for long) the message is dropped, counted and logged.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho

from cim.errors import ConfigError
from cim.store.live import LiveEvent
from cim.warnings.cloudevents import to_json

LOGGER = logging.getLogger(__name__)

#: environment variable with the broker's URL (``mqtt://host:1883``, ``mqtts://user:pass@host``); unset: off
URL_ENV = "CIM_MQTT_URL"
TOPIC_ROOT = "cim/warnings"
QOS = 1
#: messages paho keeps while the broker is away; past it, new ones are dropped (and counted)
QUEUE_SIZE = 10_000
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


@dataclass(frozen=True)
class BrokerURL:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    #: topic root (the URL's path, e.g. mqtt://host/city/tj → city/tj/warnings); default cim/warnings
    root: str

    @property
    def safe(self) -> str:
        """The URL without credentials (for logs and documents)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> BrokerURL:
    """``mqtt://[user[:password]@]host[:port][/topic-root]`` (``mqtts`` for TLS); ConfigError otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"{URL_ENV}: {url!r} is not an mqtt:// or mqtts:// URL with a host")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise ConfigError(f"{URL_ENV}: {url!r} has an invalid port") from None
    path = parts.path.strip("/")
    if "#" in url or "+" in path or parts.query:
        raise ConfigError(f"{URL_ENV}: {url!r}: the topic root may not contain MQTT wildcards (+, #) or a query")
    return BrokerURL(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        root=f"{path}/warnings" if path else TOPIC_ROOT,
    )


class MqttPublisher:
    """Publishes warning events to one broker; never blocks the caller (see the module's doc)."""

    def __init__(self, url: str, source: str, queue_size: int = QUEUE_SIZE, client_id: str | None = None) -> None:
        self.broker = parse_url(url)
        self.source = source
        self.published = 0  # handed to paho
        self.delivered = 0  # acknowledged by the broker (PUBACK)
        self.dropped = 0
        self._lock = threading.Lock()
        self._last_drop_log = 0.0
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"cim-warnings-{uuid.uuid4().hex[:12]}",
            clean_session=True,
        )
        if self.broker.username is not None:
            self.client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            self.client.tls_set()
        self.client.max_queued_messages_set(queue_size)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.connected = threading.Event()
        self._started = False

    @classmethod
    def from_environment(cls, source: str) -> MqttPublisher | None:
        """A publisher for ``$CIM_MQTT_URL``, or None when it is unset or empty."""
        url = os.environ.get(URL_ENV, "").strip()
        return cls(url, source) if url else None

    def start(self) -> None:
        """Start connecting in paho's thread; returns at once even when the broker is down."""
        if self._started:
            return
        self._started = True
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        LOGGER.info("publishing warnings to MQTT %s under %s/#", self.broker.safe, self.broker.root)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def publish(self, event: LiveEvent) -> bool:
        """Queue ``event`` for the broker; False (and counted as dropped) when the queue is full."""
        try:
            info = self.client.publish(topic(event, self.broker.root), to_json(event, self.source), qos=QOS)
            rc = info.rc
        except (ValueError, RuntimeError, OSError) as exc:  # a payload paho refuses, a closed client
            LOGGER.warning("MQTT: cannot publish event %s: %s", event.seq, exc)
            rc = paho.MQTTErrorCode.MQTT_ERR_UNKNOWN
        if rc in (paho.MQTTErrorCode.MQTT_ERR_SUCCESS, paho.MQTTErrorCode.MQTT_ERR_NO_CONN):
            # NO_CONN: queued by paho, sent when the connection is back
            with self._lock:
                self.published += 1
            return True
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
            now = time.monotonic()
            log = now - self._last_drop_log > 10
            if log:
                self._last_drop_log = now
        if log:
            LOGGER.warning("MQTT %s: dropped warning event %s (%s); %d dropped so far",
                           self.broker.safe, event.seq, paho.error_string(rc), dropped)
        return False

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        if getattr(reason, "is_failure", False):
            LOGGER.warning("MQTT %s refused the connection: %s", self.broker.safe, reason)
            return
        self.connected.set()
        LOGGER.info("MQTT %s connected", self.broker.safe)

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        if self.connected.is_set():
            LOGGER.warning("MQTT %s disconnected (%s); reconnecting", self.broker.safe, reason)
        self.connected.clear()

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, reason: object, properties: object) -> None:
        with self._lock:
            self.delivered += 1
