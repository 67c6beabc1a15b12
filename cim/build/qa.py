"""The QA record of a build: every change, rejection and finding, with counts per rule and per source.

Each :class:`Record` names the layer, the source file (as written in the build config), the source's
feature id, the rule, what was done and why. :class:`QAReport` collects them with per-source
statistics; its :meth:`~QAReport.summary` (counts only) goes into the release, and
:meth:`~QAReport.write` saves ``qa.json`` (everything) and ``qa.md`` (a readable page).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cim.heights import DEFAULT_RULE, HEIGHT_SOURCES, HeightRule

if TYPE_CHECKING:
    import pandas as pd

Action = Literal["repaired", "rejected", "removed", "cleared", "flagged"]

#: every rule the build applies, with what it means
RULES: dict[str, str] = {
    "geometry.invalid": "invalid geometry: repaired with make_valid, or rejected, per the layer's policy",
    "geometry.missing": (
        "no usable geometry in the source (none, empty, unparseable WKT or coordinates, a ring of fewer than 4 "
        "points or not closed, a NaN coordinate, coordinates nested wrongly)"
    ),
    "geometry.type": "geometry not of the layer's type",
    "attribute.required": "a required attribute is missing",
    "attribute.type": "a value is not of the field's type; it was cleared",
    "attribute.enum": "a value outside the field's code list (kept)",
    "duplicate.geometry": "same geometry as an earlier feature of the same source; removed",
    "duplicate.id": "same source id as an earlier feature of the same source (kept)",
    "crs.override": "the declared CRS differs from the one in the file; the declared one was used",
    "field.absent": "a mapped OSM tag occurs nowhere in the extract",
    "crosscheck.missing_in_primary": "a feature of a secondary source has no match in the primary source",
    "crosscheck.conflict": "matched features of two sources disagree beyond the tolerance",
    "edits.conflict": "an edit of a feature this release does not have (by source and source_id): kept aside, not applied",
    "raster.nodata": "a raster source has pixels without data (its nodata value or mask); they stay transparent",
    "build.carried": "the layer was carried over from an earlier release unchanged: its sources and config are the same",
    "height.rule": (
        "LOD1 blocks (3D Tiles): a footprint is extruded to height_m when above 0, else floors × storey_m, else "
        "default_m (cim/heights.py); counted per source, no record per feature"
    ),
}
#: how many records per rule and source the Markdown page lists (qa.json has all)
MARKDOWN_LIMIT = 50


@dataclass(frozen=True)
class Record:
    layer: str
    source: str
    feature: str | None
    rule: str
    action: Action
    reason: str


@dataclass
class SourceStats:
    """What happened to one source."""

    layer: str
    source: str
    format: str
    #: the CRS the source was read in (the declared one, else the file's)
    crs: str = ""
    #: the CRS the build config declares for the source ("" when none)
    declared_crs: str = ""
    #: the CRS the file itself carries ("" when none or unreadable)
    embedded_crs: str = ""
    #: features read (after ``where``)
    read: int = 0
    #: features left out by ``where``
    filtered: int = 0
    #: features that went into the layer (primary source) or were compared (secondary sources)
    kept: int = 0
    primary: bool = True


@dataclass
class QAReport:
    city: str
    config: str
    records: list[Record] = field(default_factory=list)
    sources: list[SourceStats] = field(default_factory=list)
    crosschecks: list[dict[str, Any]] = field(default_factory=list)
    features: dict[str, int] = field(default_factory=dict)
    #: per raster layer: size, bands, CRS, resolution, nodata share, value range, COG overviews
    rasters: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    #: layers carried over from an earlier release (cim/build/carry.py): their sources' entries as
    #: that release's summary has them, by layer
    carried: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: number of the release the build published (None until published)
    release: int | None = None
    #: per lod1 layer: how many footprints take their height from each source of the height rule
    #: (``height_m``, ``floors``, ``default``) and the rule (``order``, ``storey_m``, ``default_m``)
    heights: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, layer: str, source: str, feature: object, rule: str, action: Action, reason: str) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown QA rule {rule!r}")
        self.records.append(Record(layer, source, None if feature is None else str(feature), rule, action, reason))

    def add_many(
        self, layer: str, source: str, features: Iterable[object], rule: str, action: Action, reasons: Iterable[str]
    ) -> None:
        for feature, reason in zip(features, reasons):
            self.add(layer, source, feature, rule, action, reason)

    def find(self, rule: str | None = None, action: str | None = None, source: str | None = None) -> list[Record]:
        """The records matching every given criterion."""
        return [
            r
            for r in self.records
            if (rule is None or r.rule == rule)
            and (action is None or r.action == action)
            and (source is None or r.source == source)
        ]

    def count_heights(self, layer: str, frame: pd.DataFrame, rule: HeightRule = DEFAULT_RULE) -> dict[str, Any]:
        """Count the footprints of lod1 ``layer`` (its final features) by where the height rule
        takes their height from; a layer without a ``height_m`` or ``floors`` column has none of them."""
        heights = frame["height_m"] if "height_m" in frame.columns else None
        floors = frame["floors"] if "floors" in frame.columns else None
        _, sources = rule.resolve(heights, floors, size=len(frame))
        counts = Counter(int(code) for code in sources)
        entry = {name: counts.get(code, 0) for code, name in enumerate(HEIGHT_SOURCES)}
        self.heights[layer] = {**entry, "rule": rule.to_dict()}
        return self.heights[layer]

    def carry(self, layer: str, number: int, earlier: dict[str, Any]) -> None:
        """Keep the QA of ``layer`` carried over from release ``number`` (whose summary is ``earlier``):
        its sources' entries, cross-checks, feature count and raster summary, so the lineage of the
        new release is complete."""
        by_source = {
            key: {**entry, "carried_from": number}
            for key, entry in (earlier.get("by_source") or {}).items()
            if isinstance(entry, dict) and entry.get("layer") == layer
        }
        earlier_rules = (earlier.get("by_layer") or {}).get(layer)
        self.carried[layer] = {
            "from": number, "by_source": by_source, "by_layer": earlier_rules if isinstance(earlier_rules, dict) else {},
        }
        self.crosschecks.extend(c for c in earlier.get("crosschecks") or () if isinstance(c, dict) and c.get("layer") == layer)
        count = (earlier.get("features") or {}).get(layer)
        if isinstance(count, int):
            self.features[layer] = count
        raster = (earlier.get("rasters") or {}).get(layer)
        if isinstance(raster, dict):
            self.rasters[layer] = raster
        heights = (earlier.get("heights") or {}).get(layer)
        if isinstance(heights, dict):
            self.heights[layer] = heights

    def summary(self) -> dict[str, Any]:
        """Counts only: what a release keeps."""
        by_rule: dict[str, dict[str, int]] = {}
        for (rule, action), n in sorted(Counter((r.rule, r.action) for r in self.records).items()):
            by_rule.setdefault(rule, {})[action] = n
        by_source: dict[str, dict[str, Any]] = {}
        for stats in self.sources:
            rules = Counter(r.rule for r in self.records if r.layer == stats.layer and r.source == stats.source)
            by_source[f"{stats.layer}/{stats.source}"] = {**asdict(stats), "rules": dict(sorted(rules.items()))}
        for carried in self.carried.values():
            by_source.update(carried["by_source"])
        by_layer: dict[str, dict[str, dict[str, int]]] = {}
        for (layer, rule, action), n in sorted(Counter((r.layer, r.rule, r.action) for r in self.records).items()):
            by_layer.setdefault(layer, {}).setdefault(rule, {})[action] = n
        for layer, carried in self.carried.items():  # the carried layer's findings when it was built, and build.carried
            for rule, actions in carried.get("by_layer", {}).items():
                by_layer.setdefault(layer, {}).setdefault(rule, {}).update(actions)
        return {
            "city": self.city,
            "config": self.config,
            "created": self.created,
            "features": dict(self.features),
            "records": len(self.records),
            "by_rule": by_rule,
            "by_layer": by_layer,
            "by_source": by_source,
            "crosschecks": list(self.crosschecks),
            "rasters": dict(self.rasters),
            "carried": {layer: carried["from"] for layer, carried in self.carried.items()},
            "heights": {layer: dict(entry) for layer, entry in self.heights.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "release": self.release, "rules": RULES, "items": [asdict(r) for r in self.records]}

    def to_markdown(self) -> str:
        s = self.summary()
        published = f", published as release {self.release}" if self.release is not None else ""
        lines = [f"# QA report: {self.city}", "", f"Config `{self.config}`, built {self.created}{published}.", ""]
        lines += ["## Layers", "", "| layer | features |", "|---|---:|"]
        lines += [f"| {name} | {n} |" for name, n in s["features"].items()]
        lines += [
            "",
            "## Sources",
            "",
            "| layer | source | format | CRS | role | read | left out by where | kept | findings |",
        ]
        lines += ["|---|---|---|---|---|---:|---:|---:|---|"]
        for stats in s["by_source"].values():
            found = ", ".join(f"{rule} {n}" for rule, n in stats["rules"].items()) or "none"
            role = "primary" if stats["primary"] else "verifies"
            lines.append(
                f"| {stats['layer']} | {stats['source']} | {stats['format']} | {stats['crs']} | {role} "
                f"| {stats['read']} | {stats['filtered']} | {stats['kept']} | {found} |"
            )
        if self.rasters:
            lines += [
                "",
                "## Rasters",
                "",
                "| layer | size (px) | bands | type | source CRS | pixel (EPSG:3857 m) | no data | values | overviews |",
                "|---|---|---:|---|---|---:|---:|---|---|",
            ]
            for name, r in self.rasters.items():
                values = f"{r['min']:.6g} .. {r['max']:.6g}" if r.get("min") is not None else "—"
                lines.append(
                    f"| {name} | {r['width']} × {r['height']} | {r['bands']} | {r['dtype']} | {r['crs']} "
                    f"| {r['pixel_size_m']:.3g} | {100 * r['nodata_fraction']:.2f} % | {values} | {r['overviews']} |"
                )
        if self.heights:
            lines += [
                "",
                "## Heights of LOD1 blocks",
                "",
                f"Rule `height.rule`: {RULES['height.rule']}.",
                "",
                "| layer | from height_m | from floors (× storey) | default | storey | default height |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for name, h in self.heights.items():
                rule = h.get("rule") or {}
                lines.append(
                    f"| {name} | {h.get('height_m', 0)} | {h.get('floors', 0)} | {h.get('default', 0)} "
                    f"| {rule.get('storey_m', '—')} m | {rule.get('default_m', '—')} m |"
                )
        lines += ["", "## Counts per rule", "", "| rule | action | count | meaning |", "|---|---|---:|---|"]
        for rule, actions in s["by_rule"].items():
            lines += [f"| {rule} | {action} | {n} | {RULES[rule]} |" for action, n in actions.items()]
        if self.crosschecks:
            lines += [
                "",
                "## Cross-checks",
                "",
                "| layer | primary | secondary | compared | matched | missing in primary | conflicts |",
            ]
            lines += ["|---|---|---|---:|---:|---:|---:|"]
            lines += [
                f"| {c['layer']} | {c['primary']} | {c['secondary']} | {c['compared']} | {c['matched']} "
                f"| {c['missing_in_primary']} | {c['conflicts']} |"
                for c in self.crosschecks
            ]
        lines += ["", "## Findings", ""]
        if not self.records:
            lines.append("None.")
        groups: dict[tuple[str, str, str], list[Record]] = {}
        for r in self.records:
            groups.setdefault((r.layer, r.source, r.rule), []).append(r)
        for (layer, source, rule), records in groups.items():
            lines += [
                f"### {layer} / {source} / {rule} ({len(records)})",
                "",
                "| feature | action | reason |",
                "|---|---|---|",
            ]
            lines += [f"| {r.feature or '—'} | {r.action} | {_cell(r.reason)} |" for r in records[:MARKDOWN_LIMIT]]
            if len(records) > MARKDOWN_LIMIT:
                lines.append(f"| … | | {len(records) - MARKDOWN_LIMIT} more in qa.json |")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``qa.json`` and ``qa.md`` into ``directory`` (created if needed)."""
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path = directory / "qa.json", directory / "qa.md"
        json_path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
