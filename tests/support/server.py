"""The app for tests: on a real socket in a background thread (``LiveServer``), or in process
(``app_client``)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Iterator

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``cim serve``'s app on a real socket in a background thread, for real HTTP clients."""

    def __init__(self, store_url: str) -> None:
        from ogcapi.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(store_url, server_url=self.url)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextlib.contextmanager
def app_client(store_url: str) -> Iterator[Any]:
    """A TestClient of the app over ``store_url`` (``client.store_url`` is set); the process's shared
    store on that URL is closed afterwards, so the test's database or file can be dropped."""
    from fastapi.testclient import TestClient

    from cim.store import _shared
    from ogcapi.app import create_app

    try:
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            client.store_url = store_url  # type: ignore[attr-defined]
            yield client
    finally:
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()
