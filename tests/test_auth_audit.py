"""The audit log on both stores: writes and reads of restricted layers — refused ones included — are
recorded with who (the token's ``sub``), method, path, layer, feature, status and when; public reads
are not; an admin token reads them back at ``/admin/audit`` with filters; nobody else does."""

from __future__ import annotations

import json
import os
import socket
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from cim.store.audit import AuditRecord, JsonLinesAuditLog
from test_auth_access import bearer, client, publish, restricted_parcels
from test_api_edits import OTHER

FEATURE = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [OTHER]},
           "properties": {"parcel_id": "H6-9", "land_use": "R2", "source": "survey", "source_id": "h6-9"}}  # fmt: skip


@pytest.fixture
def app(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("CIM_AUDIT_FSYNC", raising=False)
    publish(store_url, restricted_parcels())
    with client(store_url, monkeypatch) as c:
        c.store_url = store_url  # type: ignore[attr-defined]
        yield c
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def audit(app: TestClient, query: str = "", sub: str = "auditor") -> list[dict[str, object]]:
    response = app.get(f"/admin/audit{query}", headers=bearer("admin", sub=sub))
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["numberReturned"] == len(body["records"])
    return body["records"]


def traffic(app: TestClient) -> None:
    assert app.get("/collections/parcels/items").status_code == 401
    assert app.get("/collections/parcels/items/2", headers=bearer("reader", sub="analyst-3")).status_code == 200
    assert app.post("/collections/parcels/items", json=FEATURE, headers=bearer("editor", sub="intruder")).status_code == 403
    assert app.post("/collections/parcels/items", json=FEATURE, headers=bearer("editor", "reader", sub="planner-7")).status_code == 201
    assert app.delete("/collections/parcels/items/1", headers=bearer("editor", "reader", sub="planner-7")).status_code == 204
    assert app.get("/collections/buildings/items?limit=1").status_code == 200  # public: not audited


def test_writes_and_restricted_reads_are_recorded(app: TestClient) -> None:
    traffic(app)
    seen = [(r["who"], r["method"], r["path"], r["layer"], r["feature"], r["status"]) for r in audit(app)]
    assert seen == [
        ("planner-7", "DELETE", "/collections/parcels/items/1", "parcels", "1", 204),
        ("planner-7", "POST", "/collections/parcels/items", "parcels", None, 201),
        ("intruder", "POST", "/collections/parcels/items", "parcels", None, 403),
        ("analyst-3", "GET", "/collections/parcels/items/2", "parcels", "2", 200),
        (None, "GET", "/collections/parcels/items", "parcels", None, 401),
    ]
    records = audit(app)
    assert records[0]["path"] == "/admin/audit"  # the first query is audited too
    when = datetime.fromisoformat(str(records[1]["when"]))
    assert when.tzinfo is not None and abs(datetime.now(timezone.utc) - when) < timedelta(minutes=5)


def test_the_admin_filters(app: TestClient) -> None:
    traffic(app)
    assert [r["method"] for r in audit(app, "?who=planner-7")] == ["DELETE", "POST"]
    assert {r["layer"] for r in audit(app, "?layer=parcels")} == {"parcels"}
    assert len(audit(app, "?layer=parcels&limit=2")) == 2
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert audit(app, f"?since={future}") == []
    assert len(audit(app, "?since=2000-01-01&layer=parcels")) == 5


def test_only_admins_read_the_audit_log(app: TestClient) -> None:
    assert app.get("/admin/audit").status_code == 401
    refused = app.get("/admin/audit", headers=bearer("editor", "reader", sub="curious"))
    assert refused.status_code == 403 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    for query in ("?limit=0", "?limit=abc", "?limit=¹", "?since=yesterday", "?user=x", "?f=html"):
        bad = app.get(f"/admin/audit{query}", headers=bearer("admin"))
        assert bad.status_code == 400, (query, bad.text[:200])
    recorded = [(r["who"], r["status"]) for r in audit(app, "?limit=100")]
    assert ("curious", 403) in recorded and (None, 401) in recorded


def test_where_the_records_are_kept(app: TestClient) -> None:
    traffic(app)
    url: str = app.store_url  # type: ignore[attr-defined]
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT who, method, status FROM cim.audit_log ORDER BY id").fetchall()
        assert ("planner-7", "POST", 201) in rows and len(rows) == 5
        return
    directory = Path(url + ".d") / "audit"
    own = directory / f"{socket.gethostname()}-{os.getpid()}.jsonl"
    assert stat.S_IMODE(own.stat().st_mode) == 0o600
    lines = own.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["layer"] == "parcels" for line in lines)
    # another server process's file is merged in; a line torn by a crash is skipped
    other = AuditRecord(datetime.now(timezone.utc), "worker-2-user", "GET", "/collections/parcels/items", "parcels", None, 200)
    (directory / "otherhost-99999.jsonl").write_text(json.dumps(other.to_dict()) + "\n" + '{"when": "2026-')
    assert [r["who"] for r in audit(app, "?who=worker-2-user")] == ["worker-2-user"]


def test_fsync_policy_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cim.errors import StoreError

    monkeypatch.setenv("CIM_AUDIT_FSYNC", "sometimes")
    with pytest.raises(StoreError, match="CIM_AUDIT_FSYNC"):
        JsonLinesAuditLog(tmp_path)
    monkeypatch.setenv("CIM_AUDIT_FSYNC", "always")
    log = JsonLinesAuditLog(tmp_path / "audit")
    log.record(AuditRecord(datetime.now(timezone.utc), "x", "GET", "/p", None, None, 200))
    assert [r.who for r in log.query()] == ["x"]
    log.close()
