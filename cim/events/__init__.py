"""What the push channels share: the warnings (cim/warnings/) and the release announcements
(cim/sharing/announce.py, release_watcher.py) both publish CloudEvents 1.0 to an MQTT broker.

- ``cloudevents``: CloudEvents 1.0 structured JSON (encode, validate, parse) with the cloudevents package;
- ``mqtt``: the broker URL (``$CIM_MQTT_URL``) and :class:`MqttClient`, a publisher that never blocks
  (paho's own thread, bounded queue, reconnects with back-off);
- ``leadership``: the per-host ``flock`` that makes one server process of several the MQTT publisher;
- ``subscribers``: the callbacks of a watcher thread (the SSE hubs), each called without blocking;
- ``poller``: that watcher thread (start/stop, a loop that never dies, the leader lock taken when free).

The SSE side (the hub with bounded per-subscriber queues and the subscriber cap) is
ogcapi/event_stream.py.
"""
