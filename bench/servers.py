"""The three servers under test, each a subprocess on its own port over the same PostGIS tables:
cim-basemap (`cim serve`), tipg, and pygeoapi with its own PostgreSQL provider."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / ".venv-peers" / "bin"


@dataclass
class Server:
    name: str
    port: int
    command: list[str]
    env: dict[str, str]
    #: path of the buildings collection under the server root
    buildings: str
    ready_path: str = "/collections"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> None:
        log = (log_dir / f"{self.name}.log").open("wb")
        self.process = subprocess.Popen(self.command, env={**os.environ, **self.env}, stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}: see {log_dir / (self.name + '.log')}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()  # not left running on the port
                raise RuntimeError(f"{self.name} did not start on {self.url}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def cim_server(store_url: str, port: int, workers: int, env: dict[str, str] | None = None) -> Server:
    cim = str(Path(sys.executable).parent / "cim")
    command = [cim, "serve", "--store", store_url, "--port", str(port), "--workers", str(workers)]
    return Server("cim-basemap", port, command, env or {}, "/collections/buildings")


def tipg_server(db_url: str, schema: str, port: int, workers: int) -> Server:
    env = {
        "DATABASE_URL": db_url,
        "TIPG_DB_SCHEMAS": json.dumps([schema]),
        "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": json.dumps(["public"]),
    }
    command = [str(PEERS / "uvicorn"), "tipg.main:app", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    return Server("tipg", port, command, env, f"/collections/{schema}.buildings")


def pygeoapi_server(db: dict[str, str], schema: str, port: int, workers: int) -> Server:
    """pygeoapi 0.2x with its PostgreSQL provider (features) configured on the same table."""
    work = Path(tempfile.mkdtemp(prefix="bench-pygeoapi-"))
    config = yaml.safe_load((ROOT / "pygeoapi-config.yml").read_text())
    config["server"]["url"] = f"http://127.0.0.1:{port}"
    config["server"]["bind"] = {"host": "127.0.0.1", "port": port}
    config["resources"] = {
        "buildings": {
            "type": "collection",
            "title": "Buildings",
            "description": "Buildings",
            "keywords": ["buildings"],
            "extents": {"spatial": {"bbox": [-180, -90, 180, 90], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [
                {
                    "type": "feature",
                    "name": "PostgreSQL",
                    "data": {**db, "search_path": [schema]},
                    "id_field": "fid",
                    "table": "buildings",
                    "geom_field": "geom",
                }
            ],
        }
    }
    (work / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    env = {"PYGEOAPI_CONFIG": str(work / "config.yml"), "PYGEOAPI_OPENAPI": str(work / "openapi.yml")}
    subprocess.run(
        [str(PEERS / "pygeoapi"), "openapi", "generate", str(work / "config.yml"), "--output-file", str(work / "openapi.yml")],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    command = [
        str(PEERS / "uvicorn"), "pygeoapi.starlette_app:APP", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]
    return Server("pygeoapi", port, command, env, "/collections/buildings")


def peers_installed() -> bool:
    return (PEERS / "uvicorn").exists() and shutil.which("wrk") is not None
