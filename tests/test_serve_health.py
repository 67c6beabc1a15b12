"""/healthz and /readyz on both stores (503 with an OGC exception when the store is gone — the
PostgreSQL database dropped, the embedded store's release link removed — never a cached answer), and
the graceful shutdown of a real ``cim serve``: SIGTERM while a request runs, the request completes
with 200, no new connection is accepted, the process exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from cim.store import LayerData, ReleaseDraft, open_store
from support.citydata import building_frame
from support.postgis import admin
from support.server import app_client, free_port
from layers.catalog import CATALOG
from support.slow_requests import heavy_items_path, publish_big


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(CATALOG["buildings"], building_frame(4326))], srid=4326))
    with app_client(store_url) as client:
        yield client


def test_healthz_answers_while_the_process_runs(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_follows_the_store(client: TestClient) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "release": 1}
    assert ready.headers["Cache-Control"] == "no-store"
    take_store_away(client.store_url)  # type: ignore[attr-defined]
    for _ in range(2):  # asked again: still the store's answer now, not a kept one
        gone = client.get("/readyz")
        assert gone.status_code == 503, gone.text
        body = gone.json()
        assert body["code"] == "StoreUnavailable" and body["description"].startswith("not ready: the store")
        assert gone.headers["Retry-After"].isdigit()
        for internal in ("terminating connection", "psycopg", "database", "duckdb", "/"):
            assert internal not in body["description"]
    assert client.get("/healthz").status_code == 200  # the process itself is fine


def take_store_away(url: str) -> None:
    """PostgreSQL: the database is dropped under the server (its connections terminated); embedded:
    the release link disappears."""
    if url.startswith("postgresql"):
        admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    else:
        Path(url).unlink()


# -- graceful shutdown -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("h5_slow") / "slow.duckdb")
    publish_big(url, 150_000)
    return url


def start_server(url: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cim = str(Path(sys.executable).parent / "cim")
    process = subprocess.Popen(
        [cim, "serve", "--store", url, "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "CIM_LIMIT_REQUEST_SECONDS": "120"},
        start_new_session=True,  # its own process group: a failed test kills its workers too (stop_server)
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "cim serve did not start"
        time.sleep(0.2)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL to its whole process group (the workers) when that does not end it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any
    except ProcessLookupError:
        pass
    process.wait()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length, read to its end."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the body's end"
        body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.slow  # a real `cim serve` and a large store (~20 s per worker count)
def test_sigterm_finishes_the_running_request_and_exits_0(slow_store: str, workers: int) -> None:
    process, port = start_server(slow_store, "--workers", str(workers), "--grace", "120")
    try:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(f"GET {heavy_items_path(300)} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        if workers == 1:
            # answered after the slow request was read: its connection was accepted and parsed first
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
        else:  # either worker may hold it, so no such proof: it runs for about a second or more
            time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        status, headers, body = read_response(slow)
        assert status == 200, body[:500]
        assert b'"numberMatched"' in body
        if workers == 1:  # known to be running when the signal came: the connection ends with it
            assert headers.get("connection") == "close"
        assert process.wait(timeout=120) == 0
        with pytest.raises(OSError):  # nothing listens any more
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop_server(process)


@pytest.mark.slow  # a real `cim serve` with a worker busy past 5 s (~40 s)
def test_a_worker_busy_past_uvicorns_5_s_health_check_keeps_its_connections(tmp_path: Path) -> None:
    """A worker that cannot run for 8 s (here: SIGSTOP; in production a loop blocked after a release
    switch, a starved process) while requests arrive on its idle keep-alive connections. Before:
    uvicorn's supervisor killed it after 5 s without a ping answer, and once it ran again uvloop
    fired the expired keep-alive timers before reading the sockets, closing connections whose
    request had already arrived ("connection reset", the empty reply of the load runs). Now it is
    not replaced and every request is answered."""
    from bench.load import _children

    url = str(tmp_path / "h5_busy.duckdb")
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(CATALOG["buildings"], building_frame(4326))], srid=4326))
    process, port = start_server(url, "--workers", "2")
    try:
        deadline = time.monotonic() + 300
        while len(workers := _children(process.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) for _ in range(16)]
        for client in clients:  # 16 keep-alive connections, spread over both workers by the kernel
            assert client.get("/readyz").status_code == 200
        stopped = sorted(workers)[0]
        os.kill(stopped, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(len(clients)) as pool:
                answers = pool.map(lambda c: c.get("/collections/buildings/items/1").status_code, clients)
                time.sleep(8)  # longer than uvicorn's default health check (5 s)
                os.kill(stopped, signal.SIGCONT)
                assert list(answers) == [200] * len(clients)
        finally:
            os.kill(stopped, signal.SIGCONT)
        assert _children(process.pid) == workers  # no worker was killed and replaced
        for client in clients:
            client.close()
    finally:
        stop_server(process)
