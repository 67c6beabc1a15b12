"""HTML pages of the layer catalog (``f=html``): the collection, the records list with a search form,
one record with its lineage (templates ``ogcapi/templates/records_collection.html``, ``records.html``,
``record.html``). Every value is escaped."""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any, Mapping

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(name: str, **values: str) -> str:
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def _html_href(href: str) -> str:
    return href + ("&" if "?" in href else "?") + "f=html"


def _links(links: list[Mapping[str, Any]]) -> str:
    return "\n".join(
        f'<li><code>{_e(link.get("rel"))}</code> <a href="{_e(link["href"])}">{_e(link.get("title") or link["href"])}</a>'
        f' <small>{_e(link.get("type"))}</small></li>'
        for link in links
    )


def collection_page(doc: Mapping[str, Any], base: str) -> str:
    spatial = doc.get("extent", {}).get("spatial", {}).get("bbox") or [[]]
    temporal = doc.get("extent", {}).get("temporal", {}).get("interval") or [[]]
    extent = f"bbox {', '.join(f'{v:.5f}' for v in spatial[0])} (CRS84); time {' / '.join(str(t or '..') for t in temporal[0])}"
    json_href = next((link["href"] for link in doc["links"] if link["rel"] == "self"), f"{base}/collections/catalog")
    return _page(
        "records_collection.html", base=_e(base), json=_e(json_href), title=_e(doc["title"]),
        description=_e(doc.get("description")), extent=_e(extent), links=_links(doc["links"]),
    )  # fmt: skip


def records_page(doc: Mapping[str, Any], base: str, query: Mapping[str, str]) -> str:
    rows = []
    for r in doc["features"]:
        p = r["properties"]
        lineage = p.get("lineage", {})
        sources = "<br>".join(f"{_e(s['file'])} <small>({_e(s['role'])})</small>" for s in lineage.get("sources", []))
        if not sources and "carriedFrom" in lineage:
            sources = f"carried from release {_e(lineage['carriedFrom'])}"
        rows.append(
            f'<tr><td><a href="{_e(base)}/collections/catalog/items/{_e(r["id"])}?f=html"><code>{_e(r["id"])}</code></a></td>'
            f"<td>{_e(p['title'])}</td><td>{_e(p['release'])}{' (current)' if p.get('current') else ''}</td>"
            f"<td>{_e(p.get('featureCount') if p.get('featureCount') is not None else '—')}</td><td>{sources}</td>"
            f"<td>{_e(lineage.get('qa', {}).get('findings'))}</td><td>{_e(lineage.get('buildTime'))}</td></tr>"
        )
    links = {link["rel"]: link["href"] for link in doc["links"]}
    pages = " · ".join(
        f'<a rel="{rel}" href="{_e(_html_href(links[rel]))}">{label}</a>' for rel, label in (("prev", "Previous"), ("next", "Next")) if rel in links
    )
    return _page(
        "records.html", base=_e(base), json=_e(links.get("self", "")), rows="\n".join(rows), pages=pages,
        matched=_e(f"{doc['numberReturned']} of {doc['numberMatched']} records."),
        q=_e(query.get("q", "")), bbox=_e(query.get("bbox", "")), datetime=_e(query.get("datetime", "")),
    )  # fmt: skip


def _crosscheck(check: Mapping[str, Any] | None) -> str:
    if not check:
        return ""
    share = check.get("matchedShare")
    shown = f"{100 * share:.1f} %" if isinstance(share, (int, float)) else "—"
    tolerance = json.dumps(check.get("tolerance", {}), ensure_ascii=False)
    return (
        f"{_e(check['matched'])} of {_e(check['compared'])} matched ({_e(shown)}); {_e(check['missingInAuthoritative'])} missing in "
        f"the authoritative source, {_e(check['conflicts'])} conflicts; tolerance <code>{_e(tolerance)}</code>"
    )


def record_page(record: Mapping[str, Any], base: str) -> str:
    p = record["properties"]
    lineage = p.get("lineage", {})
    shown = {
        "Layer": p.get("layer"), "Release": f"{p['release']}{' (current)' if p.get('current') else ''}",
        "Newest from / until": " / ".join(record["time"]["interval"]), "Keywords": ", ".join(p.get("keywords", [])),
        "Theme": ", ".join(c["id"] for t in p.get("themes", []) for c in t.get("concepts", [])),
        "Features": p.get("featureCount"), "Storage CRS": p.get("crs"), "Restricted": "yes" if p.get("restricted") else "no",
        "Built": lineage.get("buildTime"), "Built in release": lineage.get("builtInRelease"), "Carried over": lineage.get("carried"),
        "Extent (CRS84)": json.dumps(record["geometry"]["coordinates"][0][0] + record["geometry"]["coordinates"][0][2]) if record.get("geometry") else None,
    }  # fmt: skip
    rows = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in shown.items() if v is not None)
    sources = "\n".join(
        f"<tr><td>{_e(s['path'])}</td><td>{_e(s['role'])}</td><td>{_e(s['format'])}</td><td>{_e(s['declaredCrs'] or '—')}</td>"
        f"<td>{_e(s['embeddedCrs'] or '—')}</td><td>{_e(s['crs'])}</td><td><code>{_e(s['sha256'])}</code></td>"
        f"<td>{_e(s['featuresRead'])}</td><td>{_e(s['featuresKept'])}</td>"
        f"<td>{_e(', '.join(f'{k} {v}' for k, v in s['findings'].items()) or 'none')}</td><td>{_crosscheck(s.get('crosscheck'))}</td></tr>"
        for s in lineage.get("sources", [])
    )
    qa = "\n".join(
        f"<tr><td>{_e(rule)}</td><td>{_e(action)}</td><td>{_e(n)}</td></tr>"
        for rule, actions in lineage.get("qa", {}).get("byRule", {}).items()
        for action, n in actions.items()
    )
    self_href = next((link["href"] for link in record["links"] if link["rel"] == "self"), "")
    return _page(
        "record.html", base=_e(base), json=_e(self_href), id=_e(record["id"]), title=_e(p["title"]),
        description=_e(p.get("description")), rows=rows, sources=sources, qa=qa, links=_links(record["links"]),
        config_file=_e(lineage.get("configFile") or "config"),
        config=_e(json.dumps(lineage.get("config"), ensure_ascii=False, indent=1)),
    )  # fmt: skip
