"""``cim processes`` (cim/processes/commands.py), run as users run it: a subprocess, with the sample
processes plugged in (tests/support/sample_processes.py) and the planned city in each store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from cim.store import open_store
from support.planning_city import publish_planning_city, release_layers

CIM = Path(sys.executable).parent / "cim"
TESTS = Path(__file__).resolve().parent


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CIM_STORE"}
    env.update(CIM_PROCESS_MODULES="support.sample_processes", PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]))
    return subprocess.run([str(CIM), "processes", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def ok(cwd: Path, *args: str) -> str:
    result = run(cwd, *args)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def error_line(cwd: Path, *args: str) -> str:
    result = run(cwd, *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_list_and_describe(tmp_path: Path) -> None:
    rows = {line.split()[0]: line.split() for line in ok(tmp_path, "list").splitlines()}
    assert rows["sample-echo"][1:4] == ["city-management", "sync+async", "-"]
    assert rows["sample-countdown"][3] == "analyst"
    doc = json.loads(ok(tmp_path, "describe", "sample-echo"))
    assert doc["id"] == "sample-echo" and set(doc["inputs"]) == {"text", "count"}
    assert "no process 'nope'" in error_line(tmp_path, "describe", "nope")


def test_execute(store_url: str, tmp_path: Path) -> None:
    publish_planning_city(store_url)
    out = ok(tmp_path, "execute", "sample-echo", "--inputs", '{"text": "hi"}', "--store", store_url)
    # 6 layers of the planned city and the live layer warnings
    assert json.loads(out) == {"echo": {"text": "hi", "count": 1}, "layers": len(release_layers()) + 1}
    (tmp_path / "inputs.json").write_text(json.dumps({"inputs": {"text": "file", "count": 2}}))
    out = ok(tmp_path, "execute", "sample-echo", "--inputs", "@inputs.json", "--output", "echo", "--raw", "--store", store_url)
    assert json.loads(out) == {"text": "file", "count": 2}
    assert "input 'count'" in error_line(tmp_path, "execute", "sample-echo", "--inputs", '{"text": "a", "count": 99}', "--store", store_url)
    assert "cannot read" in error_line(tmp_path, "execute", "sample-echo", "--inputs", "@missing.json", "--store", store_url)
    assert "not JSON" in error_line(tmp_path, "execute", "sample-echo", "--inputs", "{text", "--store", store_url)


def test_execute_async(store_url: str, tmp_path: Path) -> None:
    publish_planning_city(store_url)
    result = run(tmp_path, "execute", "sample-echo", "--inputs", '{"text": "job"}', "--async", "--store", store_url)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert result.stderr.strip() == f"job {info['jobID']} accepted"
    assert info["processID"] == "sample-echo" and info["status"] == "successful"
    with open_store(store_url) as store:  # recorded in the store with its results, as a server's jobs are
        job = store.jobs().get(info["jobID"])
        assert job.subject == "cli"
        assert store.jobs().results(job.job_id) == {"echo": {"text": "job", "count": 1}, "layers": len(release_layers()) + 1}
    result = run(tmp_path, "execute", "sample-fail", "--inputs", '{"message": "no parcel here"}', "--async", "--store", store_url)
    assert result.returncode == 1
    failed = json.loads(result.stdout)
    assert failed["status"] == "failed" and "no parcel here" in failed["message"]
