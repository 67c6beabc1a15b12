"""Where a layer of a release came from: its sources, their checksums and roles, the cross-checks and
QA counts, the build's time and config — read from what the release recorded (``ReleaseInfo.config``,
``.checksums``, ``.qa``: the build's ``QAReport.summary()``).

The first source of a layer is authoritative (一数一源: the one the features come from); the others
verify it (cim/build/crosscheck.py) and never add or change a feature. A layer an incremental build
carried over (``config["cim_build"]["layers"][name]["carried_from"]``) was not read again: its
lineage is the one of the release it was carried from, when that release is still kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from cim.store import ReleaseInfo

AUTHORITATIVE, VERIFIES = "authoritative", "verifies"
#: the QA rules of a cross-check's findings
CROSSCHECK_RULES = ("crosscheck.missing_in_primary", "crosscheck.conflict")


def carried_from(release: ReleaseInfo, layer: str) -> int | None:
    """The release an incremental build took ``layer`` over from, unchanged (None: built anew)."""
    build = release.config.get("cim_build")
    layers = build.get("layers") if isinstance(build, Mapping) else None
    entry = layers.get(layer) if isinstance(layers, Mapping) else None
    value = entry.get("carried_from") if isinstance(entry, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def layer_config(release: ReleaseInfo, layer: str) -> dict[str, Any] | None:
    """The layer's section of the build config the release was built with."""
    layers = release.config.get("layers")
    section = layers.get(layer) if isinstance(layers, Mapping) else None
    return dict(section) if isinstance(section, Mapping) else None


def _declared_sources(release: ReleaseInfo, layer: str) -> list[Mapping[str, Any]]:
    section = layer_config(release, layer) or {}
    sources = section.get("sources")
    return [s for s in sources if isinstance(s, Mapping)] if isinstance(sources, list) else []


def _files(label: str, checksums: Mapping[str, str]) -> dict[str, str]:
    """The checksums of a source's files: the file itself and, for a Shapefile, its sidecars
    (recorded under the same name with their own suffix)."""
    stem = PurePosixPath(label).with_suffix("")
    files = {label: checksums[label]} if label in checksums else {}
    if label.lower().endswith(".shp"):
        files.update({name: digest for name, digest in checksums.items() if name != label and PurePosixPath(name).with_suffix("") == stem})
    return files


def _crosscheck(qa: Mapping[str, Any], layer: str, secondary: str) -> dict[str, Any] | None:
    for check in qa.get("crosschecks") or []:
        if isinstance(check, Mapping) and check.get("layer") == layer and check.get("secondary") == secondary:
            compared, matched = int(check.get("compared", 0)), int(check.get("matched", 0))
            result = {
                "compared": compared,
                "matched": matched,
                "matchedShare": round(matched / compared, 4) if compared else None,
                "missingInAuthoritative": int(check.get("missing_in_primary", 0)),
                "conflicts": int(check.get("conflicts", 0)),
                "verifies": check.get("primary"),
            }
            tolerance = {k: check[k] for k in ("min_iou", "max_distance_m", "tolerances") if k in check}
            if tolerance:
                result["tolerance"] = {
                    {"min_iou": "minIoU", "max_distance_m": "maxDistanceMetres"}.get(k, k): v for k, v in tolerance.items()
                }
            return result
    return None


def _source(
    position: int, stats: Mapping[str, Any] | None, declared: Mapping[str, Any] | None, release: ReleaseInfo, layer: str
) -> dict[str, Any]:
    stats = stats or {}
    declared = declared or {}
    label = str(stats.get("source") or declared.get("path") or "")
    files = _files(label, release.checksums)
    declared_crs = stats.get("declared_crs") or declared.get("crs") or None
    entry: dict[str, Any] = {
        "file": PurePosixPath(label).name,
        "path": label,
        "format": stats.get("format") or declared.get("format"),
        "role": AUTHORITATIVE if position == 0 else VERIFIES,
        "declaredCrs": declared_crs,
        "embeddedCrs": stats.get("embedded_crs") or None,
        "crs": stats.get("crs") or None,
        "sha256": files.get(label),
        "files": [{"name": name, "sha256": digest} for name, digest in files.items()],
        "featuresRead": stats.get("read"),
        "featuresFilteredOut": stats.get("filtered"),
        "featuresKept": stats.get("kept"),
        "findings": dict(stats.get("rules") or {}),
    }
    if position > 0:
        entry["crosscheck"] = _crosscheck(release.qa, layer, label)
    return entry


def sources(release: ReleaseInfo, layer: str) -> list[dict[str, Any]]:
    """The layer's sources in the config's order (the first is authoritative), with what the build
    recorded of each; empty when the release recorded none (a live layer, a carried one)."""
    by_source = release.qa.get("by_source") or {}
    recorded = [s for key, s in by_source.items() if isinstance(s, Mapping) and key.startswith(f"{layer}/")]
    declared = _declared_sources(release, layer)
    by_label = {str(s.get("source")): s for s in recorded}
    result = []
    for position, source in enumerate(declared):
        label = str(source.get("path", ""))
        result.append(_source(position, by_label.pop(label, None), source, release, layer))
    # sources recorded but not found in the config (a config without per-source paths): in QA order
    for stats in by_label.values():
        position = 0 if stats.get("primary") and not result else max(1, len(result))
        result.append(_source(position, stats, None, release, layer))
    return result if recorded else []


def qa_counts(release: ReleaseInfo, layer: str) -> dict[str, Any]:
    """The layer's QA findings: counts by rule and action (``byRule``), and the total."""
    by_layer = (release.qa.get("by_layer") or {}).get(layer)
    if isinstance(by_layer, Mapping):
        by_rule = {rule: dict(actions) for rule, actions in by_layer.items()}
    else:  # a release built before counts per layer were kept: per rule, over the layer's sources
        by_rule = {}
        for key, stats in (release.qa.get("by_source") or {}).items():
            if key.startswith(f"{layer}/") and isinstance(stats, Mapping):
                for rule, n in (stats.get("rules") or {}).items():
                    by_rule.setdefault(rule, {}).setdefault("any", 0)
                    by_rule[rule]["any"] += n
    total = sum(n for actions in by_rule.values() for n in actions.values())
    return {"findings": total, "byRule": by_rule}


def lineage(release: ReleaseInfo, layer: str, releases: Mapping[int, ReleaseInfo]) -> dict[str, Any]:
    """The lineage of ``layer`` in ``release`` (``releases``: the kept ones by number, to follow a
    carried layer to the release that built it)."""
    carried = carried_from(release, layer)
    built_in = release
    while carried is not None and carried in releases and built_in.number != carried:
        built_in = releases[carried]
        carried = carried_from(built_in, layer)
    config_file = release.config.get("config_file")
    result: dict[str, Any] = {
        "builtInRelease": built_in.number,
        "buildTime": built_in.qa.get("created") or built_in.created.isoformat(),
        "city": built_in.qa.get("city") or release.config.get("city"),
        "configFile": PurePosixPath(str(config_file)).name if config_file else None,
        "config": layer_config(built_in, layer),
        "sources": sources(built_in, layer),
        "qa": qa_counts(built_in, layer),
    }
    first_carry = carried_from(release, layer)
    if first_carry is not None:
        result["carriedFrom"] = first_carry
        result["carried"] = (
            f"carried over unchanged from release {first_carry} (same sources and config; not read again)"
            + ("" if built_in.number != release.number else f"; release {first_carry} is no longer kept")
        )
    return result


__all__ = ["AUTHORITATIVE", "VERIFIES", "carried_from", "layer_config", "lineage", "qa_counts", "sources"]
