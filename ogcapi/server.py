"""Running the app with uvicorn, one process or several.

uvicorn's multi-process mode binds the listening socket with ``socket.socket(family=...)``, i.e.
protocol 0; asyncio sets ``TCP_NODELAY`` only on sockets whose protocol is ``IPPROTO_TCP``, so every
worker's connections fell back to Nagle's algorithm and a keep-alive client waited ~40 ms (the
delayed-ACK timer) per response. :class:`TCPConfig` binds with ``IPPROTO_TCP``.

Both ways serve HTTP with :func:`http_protocol`: uvicorn's httptools protocol that answers repeated
tiles itself (ogcapi/tiles_protocol.py), and both stop gracefully on SIGTERM: the listening socket
closes, idle keep-alive connections close, running requests finish (answered with
``Connection: close``) for up to the grace period, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from cim.store import resolve_url


#: seconds a worker may leave the supervisor's ping unanswered before it is killed and replaced.
#: uvicorn's 5 s killed busy, healthy workers — and with them every connection they held (the
#: "empty reply" of the 64-client runs): a worker answers the ping from a thread that needs the GIL
#: and a CPU, which 40 request threads and a loaded machine can deny it for seconds; and a worker
#: still starting (spawned interpreter, imports, the app) under load took longer than 5 s, so it
#: was killed and respawned again and again (a 2-worker start took 286 s on a loaded machine).
#: A worker that is truly stuck is still replaced, a minute later.
WORKER_HEALTHCHECK_SECONDS = 60


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's ``http=``: :class:`~ogcapi.tiles_protocol.TileProtocol`, or uvicorn's default without httptools."""
    try:
        from ogcapi.tiles_protocol import TileProtocol
    except ImportError:  # httptools missing: h11, no protocol-level fast path (the ASGI one still answers)
        return "auto"
    return TileProtocol


class TCPConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.set_inheritable(True)
        return sock


def serve_one(app: Any, host: str, port: int, grace: float) -> None:
    """Serve ``app`` in this process until SIGTERM or Ctrl-C (see :func:`stopping_quietly`)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, http=http_protocol(),
        timeout_graceful_shutdown=grace,  # type: ignore[arg-type]  # seconds, as asyncio.timeout takes them
    )  # fmt: skip
    server = uvicorn.Server(config)
    with stopping_quietly():
        server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def serve_workers(
    store_url: str | None, public_url: str, host: str, port: int, workers: int, grace: float = 25.0
) -> None:
    """Serve with ``workers`` processes; each builds its app from the environment. On SIGTERM the
    supervisor passes it on to every worker, which stops gracefully (within ``grace`` seconds), and
    returns once they are gone."""
    os.environ["CIM_STORE"] = resolve_url(store_url)
    os.environ["CIM_SERVER_URL"] = public_url
    config = TCPConfig(
        "ogcapi.app:app_from_environment", factory=True, host=host, port=port, workers=workers, log_level="warning",
        access_log=False,  # at log level warning it printed nothing, but formatted every request's line
        http=http_protocol(),
        timeout_graceful_shutdown=grace,  # type: ignore[arg-type]
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


@contextlib.contextmanager
def stopping_quietly() -> Iterator[None]:
    """SIGTERM as the ordinary way to stop a server: exit 0 after the graceful shutdown.

    uvicorn's server handles SIGTERM (stop accepting, close idle connections, let running requests
    finish within ``timeout_graceful_shutdown``, cancel the rest) and then raises the signal again
    under the handler that was in place before it started, so that the process ends "as if
    killed" (status 143). With this no-op handler in place that second SIGTERM ends nothing, and
    ``cim serve`` returns normally (0)."""
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(signum: int, frame: Any) -> None:
    """The SIGTERM uvicorn raises again after its graceful shutdown: nothing left to do."""
