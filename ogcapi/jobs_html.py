"""HTML pages of the jobs (``f=html``): the list, a job, its results (templates ``ogcapi/templates/
jobs.html``, ``job.html``, ``job_results.html``). Every value is escaped."""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any, Mapping

TEMPLATES = Path(__file__).resolve().parent / "templates"
RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"
#: the statusInfo fields a job page shows, in order
FIELDS = ("jobID", "processID", "status", "message", "progress", "created", "started", "finished", "updated")
#: characters of an output shown on a page (the JSON has it whole)
SHOWN_CHARS = 200_000


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(name: str, **values: str) -> str:
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def jobs_page(doc: Mapping[str, Any], base: str) -> str:
    rows = []
    for info in doc["jobs"]:
        job_id = _e(info["jobID"])
        rows.append(
            f'<tr><td><a href="{_e(base)}/jobs/{job_id}?f=html"><code>{job_id}</code></a></td>'
            f"<td>{_e(info['processID'])}</td><td>{_e(info['status'])}</td><td>{_e(info.get('progress'))}%</td>"
            f"<td>{_e(info.get('created'))}</td><td>{_e(info.get('finished'))}</td><td>{_e(info.get('message'))}</td></tr>"
        )
    links = {link["rel"]: link["href"] for link in doc["links"]}
    pages = " · ".join(
        f'<a rel="{rel}" href="{_e(links[rel])}&amp;f=html">{label}</a>' for rel, label in (("prev", "Previous"), ("next", "Next")) if rel in links
    )
    shown = len(doc["jobs"])
    return _page(
        "jobs.html", base=_e(base), json=_e(links["self"]), rows="\n".join(rows), pages=pages,
        matched=_e(f"{shown} of {doc.get('numberMatched', shown)} jobs"),
    )  # fmt: skip


def job_page(info: Mapping[str, Any], base: str) -> str:
    rows = "\n".join(f"<tr><th>{_e(name)}</th><td>{_e(info[name])}</td></tr>" for name in FIELDS if name in info)
    results = next((link["href"] for link in info.get("links", []) if link["rel"] == RESULTS_REL), None)
    shown = f'<a href="{_e(results)}?f=html">Results</a>' if results else ""
    return _page("job.html", base=_e(base), id=_e(info["jobID"]), rows=rows, results=shown)


def results_page(job_id: str, outputs: Mapping[str, Any], base: str) -> str:
    parts = []
    for name, value in outputs.items():
        text = json.dumps(value, ensure_ascii=False, indent=1)
        if len(text) > SHOWN_CHARS:
            text = text[:SHOWN_CHARS] + "\n… (cut: the JSON has it whole)"
        parts.append(f"<h2><code>{_e(name)}</code></h2>\n<pre>{_e(text)}</pre>")
    return _page("job_results.html", base=_e(base), id=_e(job_id), outputs="\n".join(parts))
