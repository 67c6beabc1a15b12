"""Publication to an MQTT broker (paho-mqtt 2), QoS 1, that never holds up the caller.

The client connects and reconnects in paho's own network thread (``connect_async`` +
``loop_start``, back-off 1 to 30 s); :meth:`MqttClient.send` only puts the message in paho's
bounded queue (``max_queued_messages``) and returns; when the queue is full (the broker is down for
long) the message is dropped, counted and logged. The warnings (cim/warnings/mqtt.py) and the
release announcements (cim/sharing/release_watcher.py) each run one.

The broker is ``$CIM_MQTT_URL``: ``mqtt://[user[:password]@]host[:port][/prefix]`` (``mqtts`` for
TLS); each channel publishes under ``{prefix or cim}/{channel}`` (``cim/warnings``, ``cim/releases``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho

from cim.errors import ConfigError

LOGGER = logging.getLogger(__name__)

#: environment variable with the broker's URL (``mqtt://host:1883``, ``mqtts://user:pass@host``); unset: off
URL_ENV = "CIM_MQTT_URL"
#: topic prefix when the URL has no path
PREFIX = "cim"
QOS = 1
#: messages paho keeps while the broker is away; past it, new ones are dropped (and counted)
QUEUE_SIZE = 10_000


@dataclass(frozen=True)
class BrokerURL:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    #: topic root of the channel (the URL's path + channel, e.g. mqtt://host/city/tj → city/tj/warnings)
    root: str

    @property
    def safe(self) -> str:
        """The URL without credentials (for logs and documents)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def broker_url(url: str, channel: str) -> BrokerURL:
    """``mqtt://[user[:password]@]host[:port][/prefix]`` (``mqtts`` for TLS) for the topics of
    ``channel``; ConfigError otherwise."""
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
        root=f"{path or PREFIX}/{channel}",
    )


def environment_url() -> str | None:
    """``$CIM_MQTT_URL``, or None when it is unset or empty."""
    return os.environ.get(URL_ENV, "").strip() or None


class MqttClient:
    """Publishes to one broker under one channel's root; never blocks the caller (see the module's doc)."""

    def __init__(self, url: str, channel: str, queue_size: int = QUEUE_SIZE, client_id: str | None = None) -> None:
        self.broker = broker_url(url, channel)
        self.channel = channel
        self.published = 0  # handed to paho
        self.delivered = 0  # acknowledged by the broker (PUBACK)
        self.dropped = 0
        self._lock = threading.Lock()
        self._last_drop_log = 0.0
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"cim-{channel}-{uuid.uuid4().hex[:12]}",
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

    def start(self) -> None:
        """Start connecting in paho's thread; returns at once even when the broker is down."""
        if self._started:
            return
        self._started = True
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        LOGGER.info("publishing %s to MQTT %s under %s/#", self.channel, self.broker.safe, self.broker.root)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def send(self, topic: str, payload: str, *, retain: bool = False, what: str = "a message") -> bool:
        """Queue ``payload`` for ``topic`` (QoS 1); False (and counted as dropped) when the queue is
        full or paho refuses it. ``what`` names the message in the log."""
        try:
            rc = self.client.publish(topic, payload, qos=QOS, retain=retain).rc
        except (ValueError, RuntimeError, OSError) as exc:  # a payload paho refuses, a closed client
            LOGGER.warning("MQTT: cannot publish %s: %s", what, exc)
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
            LOGGER.warning("MQTT %s: dropped %s (%s); %d dropped so far", self.broker.safe, what, paho.error_string(rc), dropped)
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


__all__ = ["PREFIX", "QOS", "QUEUE_SIZE", "URL_ENV", "BrokerURL", "MqttClient", "broker_url", "environment_url"]
