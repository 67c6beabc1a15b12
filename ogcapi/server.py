"""Running the app with uvicorn, one process or several.

uvicorn's multi-process mode binds the listening socket with ``socket.socket(family=...)``, i.e.
protocol 0; asyncio sets ``TCP_NODELAY`` only on sockets whose protocol is ``IPPROTO_TCP``, so every
worker's connections fell back to Nagle's algorithm and a keep-alive client waited ~40 ms (the
delayed-ACK timer) per response. :class:`TCPConfig` binds with ``IPPROTO_TCP``.

Both ways serve HTTP with :func:`http_protocol`: uvicorn's httptools protocol that answers repeated
tiles itself (ogcapi/tile_protocol.py).
"""

from __future__ import annotations

import asyncio
import os
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from cim.store import resolve_url


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's ``http=``: :class:`~ogcapi.tile_protocol.TileProtocol`, or uvicorn's default without httptools."""
    try:
        from ogcapi.tile_protocol import TileProtocol
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


def serve_workers(store_url: str | None, public_url: str, host: str, port: int, workers: int) -> None:
    """Serve with ``workers`` processes; each builds its app from the environment."""
    os.environ["CIM_STORE"] = resolve_url(store_url)
    os.environ["CIM_SERVER_URL"] = public_url
    config = TCPConfig(
        "ogcapi.app:app_from_environment", factory=True, host=host, port=port, workers=workers, log_level="warning",
        access_log=False,  # at log level warning it printed nothing, but formatted every request's line
        http=http_protocol(),
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
