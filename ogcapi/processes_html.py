"""HTML pages of the processes (``f=html``): the list and a description with a form that executes the
process from the browser (templates ``ogcapi/templates/processes.html``, ``process.html``). Every value
from a description is escaped."""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any, Mapping

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def list_page(doc: Mapping[str, Any], base: str) -> str:
    rows = []
    for summary in doc["processes"]:
        pid = _e(summary["id"])
        domain = _e((summary.get("keywords") or [""])[0])
        control = _e(", ".join(summary.get("jobControlOptions", [])))
        rows.append(
            f'<tr><td><a href="{_e(base)}/processes/{pid}?f=html">{_e(summary.get("title"))}</a><br><code>{pid}</code></td>'
            f"<td>{domain}</td><td>{_e(summary.get('description'))}</td><td>{control}</td></tr>"
        )
    return Template((TEMPLATES / "processes.html").read_text(encoding="utf-8")).substitute(base=_e(base), rows="\n".join(rows))


def _schema(schema: Any) -> str:
    return f"<code>{_e(json.dumps(schema, ensure_ascii=False))}</code>"


def description_page(doc: Mapping[str, Any], example: Mapping[str, Any], base: str) -> str:
    pid = str(doc["id"])
    inputs = "\n".join(
        f"<tr><td><code>{_e(name)}</code><br>{_e(d.get('title'))}</td><td>{_e(d.get('minOccurs', 1))}..{_e(d.get('maxOccurs', 1))}</td>"
        f"<td>{_e(d.get('description'))}</td><td>{_schema(d.get('schema', {}))}</td></tr>"
        for name, d in doc.get("inputs", {}).items()
    )
    outputs = "\n".join(
        f"<tr><td><code>{_e(name)}</code><br>{_e(d.get('title'))}</td><td>{_e(d.get('description'))}</td>"
        f"<td>{_schema(d.get('schema', {}))}</td></tr>"
        for name, d in doc.get("outputs", {}).items()
    )
    role = doc.get("x-cim-role")
    url = f"{base}/processes/{pid}"
    return Template((TEMPLATES / "process.html").read_text(encoding="utf-8")).substitute(
        base=_e(base),
        id=_e(pid),
        title=_e(doc.get("title") or pid),
        description=_e(doc.get("description")),
        version=_e(doc.get("version")),
        control=_e(", ".join(doc.get("jobControlOptions", []))),
        role=f"needs a bearer token with the role <code>{_e(role)}</code>" if role else "open to anyone",
        inputs=inputs,
        outputs=outputs,
        self_json=_e(f"{url}?f=json"),
        execute_url=_e(f"{url}/execution"),
        example=_e(json.dumps({"inputs": dict(example)}, indent=1, ensure_ascii=False)),
    )
