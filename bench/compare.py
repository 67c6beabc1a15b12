"""Before/after table: the recorded runs (bench/results/*.json, the figures of docs/benchmarks.md)
against a re-run's JSON files in another folder (bench/rerun.sh writes them).

    .venv/bin/python -m bench.compare bench/results/rerun-20261203-0900   # markdown table on stdout
    .venv/bin/python -m bench.compare NEW --before OTHER_FOLDER            # against another re-run

Each row: the scenario, the recorded figure, the new one, new ÷ recorded, and a verdict. Rates
(req/s, features/s) are better higher, times and memory lower; "slower" marks a change beyond
``--noise`` (default 25 %: this machine's speed drifts by about that much from minute to minute,
docs/benchmarks.md). The peers' rows (tipg, pygeoapi, nginx, ogr2ogr) run no code of ours: they
show how fast the machine was compared with the recorded run, so a drop that they share is the
machine's. Rows marked "same" (tile sizes, QA records, counts) are deterministic and must be equal:
a difference there is a change of behaviour, not of speed. A missing file or figure shows as "–".
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).resolve().parent / "results"
#: a report's settings, named under the table when the two runs differ in them
SETTINGS = ("features", "edits", "workers", "seconds", "repeat")


@dataclass(frozen=True)
class Row:
    label: str
    suite: str  # the JSON file's stem
    value: Callable[[dict[str, Any]], float | int | None]
    kind: str  # "rate" (higher is better), "time" (lower is better), "same" (must be equal)
    control: bool = False  # a peer's figure: the machine's speed, not our code's


def at(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def get(report: dict[str, Any]) -> Any:
        value: Any = report
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    return get


def ratio(a: Callable[[dict[str, Any]], Any], b: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def get(report: dict[str, Any]) -> Any:
        x, y = a(report), b(report)
        return round(x / y, 2) if x is not None and y else None

    return get


def rows() -> list[Row]:
    out: list[Row] = []
    cim, tipg, pga = ("results", "cim-basemap"), ("results", "tipg"), ("results", "pygeoapi")
    for server, control in ((cim, False), (tipg, True), (pga, True)):
        name = server[1]
        out += [
            Row(f"features: {name} items limit=100, 16 conn (req/s)", "features", at(*server, "items_limit100", "rps"), "rate", control),
            Row(f"features: {name} bbox ~1,000 (req/s)", "features", at(*server, "bbox_1000", "rps"), "rate", control),
            Row(f"features: {name} first page, 1 conn (p50 ms)", "features", at(*server, "first_page", "p50_ms"), "time", control),
            Row(f"features: {name} page 50,000 by next link (p50 ms)", "features", at(*server, "next_link_50000", "p50_ms"), "time", control),
            Row(f"features: {name} offset=50000 (p50 ms)", "features", at(*server, "offset_50000", "p50_ms"), "time", control),
        ]  # fmt: skip
    out += [
        Row("features: cim ÷ tipg, items", "features", ratio(at(*cim, "items_limit100", "rps"), at(*tipg, "items_limit100", "rps")), "rate"),
        Row("features: cim ÷ tipg, bbox", "features", ratio(at(*cim, "bbox_1000", "rps"), at(*tipg, "bbox_1000", "rps")), "rate"),
        Row("tiles: cim z14 uncached (req/s)", "tiles", at(*cim, "mvt_z14_uncached", "rps"), "rate"),
        Row("tiles: cim z14 uncached (p50 ms)", "tiles", at(*cim, "mvt_z14_uncached", "p50_ms"), "time"),
        Row("tiles: cim z10 uncached, 16 tiles once (req/s)", "tiles", at(*cim, "mvt_z10_uncached", "rps"), "rate"),
        Row("tiles: cim z14 cached (req/s)", "tiles", at(*cim, "mvt_z14_cached", "rps"), "rate"),
        Row("tiles: tipg z14 uncached (req/s)", "tiles", at(*tipg, "mvt_z14_uncached", "rps"), "rate", True),
        Row("tiles: tipg z10 uncached (req/s)", "tiles", at(*tipg, "mvt_z10_uncached", "rps"), "rate", True),
        Row("tiles: nginx z14 cached (req/s)", "tiles", at("results", "nginx", "mvt_z14_cached", "rps"), "rate", True),
        Row("tiles: cim ÷ tipg, z14 uncached", "tiles", ratio(at(*cim, "mvt_z14_uncached", "rps"), at(*tipg, "mvt_z14_uncached", "rps")), "rate"),
        Row("tiles: cim ÷ nginx, z14 cached", "tiles", ratio(at(*cim, "mvt_z14_cached", "rps"), at("results", "nginx", "mvt_z14_cached", "rps")), "rate"),
        Row("tiles: cim z14 cached, mean tile (bytes)", "tiles", at(*cim, "mvt_z14_cached", "mean_tile_bytes"), "same"),
    ]  # fmt: skip
    for tileset, zooms in (("buildings", ("10", "12", "14", "16")), ("basemap", ("10", "12", "14", "16"))):
        for z in zooms:
            for stat in ("max_bytes", "p50_bytes"):
                out.append(Row(f"tiles: {tileset} z{z} {stat.replace('_bytes', '')} size (bytes)", "tiles",
                               at(*cim, "sizes", tileset, z, stat), "same"))  # fmt: skip
    ogr, ours = ("results", "ogr2ogr"), ("results", "cim-basemap")
    out += [
        Row("edits: p50 wall (ms)", "edits", at("p50_ms"), "time"),
        Row("edits: p95 wall (ms)", "edits", at("p95_ms"), "time"),
        Row("edits: p50 CPU (ms)", "edits", at("cpu_p50_ms"), "time"),
        Row("edits: p95 CPU (ms)", "edits", at("cpu_p95_ms"), "time"),
        Row("edits: overlay files afterwards", "edits", at("overlay_files"), "same"),
        Row("edits: overlay bytes afterwards", "edits", at("overlay_bytes"), "time"),
        Row("build: ogr2ogr (s)", "build", at(*ogr, "seconds"), "time", True),
        Row("build: cim build, release live (s)", "build", at(*ours, "seconds"), "time"),
        Row("build: cim build, then tile geometry (s)", "build", at(*ours, "tile_geometry_seconds"), "time"),
        Row("build: cim build exits (s)", "build", at(*ours, "total_seconds"), "time"),
        Row("build: cim ÷ ogr2ogr (features/s, median of pairs)", "build", at("ratio_vs_ogr2ogr"), "rate"),
        Row("build: cim build peak memory (MiB)", "build", at(*ours, "peak_mib"), "time"),
        Row("build: QA records", "build", at(*ours, "qa_records"), "same"),
        Row("build: features published", "build", at(*ours, "features"), "same"),
        Row("build: tile geometry tables", "build", at(*ours, "tile_geometry_tables"), "same"),
        Row("embedded: items limit=100 (req/s)", "embedded", at(*cim, "items_limit100", "rps"), "rate"),
        Row("embedded: bbox limit=100 (req/s)", "embedded", at(*cim, "bbox_limit100", "rps"), "rate"),
        Row("embedded: tile of the docs' table, a 404 (req/s)", "embedded", at(*cim, "tile_doc_url", "rps"), "rate"),
        Row("embedded: tile z15 with buildings (req/s)", "embedded", at(*cim, "tile_z15", "rps"), "rate"),
        Row("embedded: single feature (req/s)", "embedded", at(*cim, "feature", "rps"), "rate"),
    ]  # fmt: skip
    return out + sharing_rows() + threed_rows()


def sharing_rows() -> list[Row]:
    """bench/sharing.py (data sharing): downloads against ogr2ogr, change feeds, incremental builds."""
    download = ("parts", "download", "result", "summary")
    out = [
        Row(f"sharing: ogr2ogr → {fmt} (features/s)", "sharing", at(*download, "ogr2ogr_features_per_s", fmt), "rate", True)
        for fmt in ("gpkg", "fgb")
    ]
    for fmt in ("parquet", "gpkg", "fgb"):
        out += [
            Row(f"sharing: download {fmt}, cold (features/s)", "sharing", at(*download, fmt, "cold_features_per_s"), "rate"),
            Row(f"sharing: download {fmt}, cached (features/s)", "sharing", at(*download, fmt, "cached_features_per_s"), "rate"),
            Row(f"sharing: download {fmt} cold ÷ ogr2ogr", "sharing", at(*download, fmt, "ratio_cold"), "rate"),
        ]  # fmt: skip
    for backend in ("postgis", "duckdb"):
        changes = ("parts", "changes", "result", backend)
        build = ("parts", "build", "result", backend, "summary")
        out += [
            Row(f"sharing: {backend} change feed, limit=1000 (s)", "sharing", at(*changes, "http_limit_1000", "seconds"), "time"),
            Row(f"sharing: {backend} change feed, limit=10000 (s)", "sharing", at(*changes, "http_limit_10000", "seconds"), "time"),
            Row(f"sharing: {backend} change feed, features", "sharing", at(*changes, "http_limit_1000", "features"), "same"),
            Row(f"sharing: {backend} full build (s)", "sharing", at(*build, "full_seconds"), "time"),
            Row(f"sharing: {backend} incremental build, POIs changed (s)", "sharing", at(*build, "incremental_seconds"), "time"),
            Row(f"sharing: {backend} incremental ÷ full", "sharing", at(*build, "ratio_of_medians"), "time"),
        ]  # fmt: skip
    return out


def threed_rows() -> list[Row]:
    """bench/threed.py (3D Tiles): plan, export, GLB requests against nginx, the 3D viewer."""
    out: list[Row] = []
    for backend in ("postgis", "duckdb"):
        plan, export = ("parts", "plan", "result", backend), ("parts", "export", "result", backend)
        serve, viewer = ("parts", "serve", "result", backend), ("parts", "viewer", "result", backend)
        out += [
            Row(f"3d: {backend} plan, cold (s)", "threed", at(*plan, "cold_median_s"), "time"),
            Row(f"3d: {backend} plan, leaves", "threed", at(*plan, "shape", "leaves"), "same"),
            Row(f"3d: {backend} export 3dtiles (s)", "threed", at(*export, "seconds"), "time"),
            Row(f"3d: {backend} export bytes", "threed", at(*export, "bytes"), "same"),
            Row(f"3d: {backend} GLB cold, p50 (ms)", "threed", at(*serve, "cold", "ms", "p50"), "time"),
            Row(f"3d: {backend} GLB warm, p50 (ms)", "threed", at(*serve, "warm", "ms", "p50"), "time"),
            Row(f"3d: {backend} GLB warm, 16 connections (req/s)", "threed", at(*serve, "wrk_warm", "rps"), "rate"),
            Row(f"3d: nginx, export of {backend}, 16 connections (req/s)", "threed", at(*serve, "nginx", "wrk", "rps"), "rate", True),
            Row(f"3d: {backend} viewer ready, median (ms)", "threed", at(*viewer, "ready_ms_median"), "time"),
        ]  # fmt: skip
    return out


def load(folder: Path, suite: str, name: str | None = None) -> dict[str, Any] | None:
    path = folder / f"{name or suite}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(kind: str, old: Any, new: Any, noise: float) -> tuple[str, str]:
    """(new ÷ old, verdict) of one row."""
    if old is None or new is None:
        return "–", "–"
    if kind == "same":
        return "", "same" if old == new else "**DIFFERS**"
    if not old:
        return "–", "–"
    r = new / old
    worse = r < 1 / (1 + noise) if kind == "rate" else r > 1 + noise
    better = r > 1 + noise if kind == "rate" else r < 1 / (1 + noise)
    return f"{r:.2f}", "**slower**" if worse else "faster" if better else "within noise"


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}"


def table(before: Path, after: Path, noise: float) -> str:
    """The markdown table of every row found in either folder."""
    lines = [
        f"recorded: {before}  \nnew: {after}",
        "",
        "| scenario | recorded | new | new ÷ recorded | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    cache: dict[tuple[Path, str], dict[str, Any] | None] = {}
    slower = differs = 0
    for row in rows():
        reports = []
        for folder in (before, after):
            if (folder, row.suite) not in cache:
                cache[folder, row.suite] = load(folder, row.suite)
            reports.append(cache[folder, row.suite])
        if reports[1] is None:  # the suite was not run
            continue
        old = row.value(reports[0]) if reports[0] else None
        new = row.value(reports[1])
        if old is None and new is None:
            continue
        r, word = verdict(row.kind, old, new, noise)
        if row.control and word != "–":
            word = f"({word}: control)"
        slower += word == "**slower**"
        differs += word == "**DIFFERS**"
        lines.append(f"| {row.label}{' (control)' if row.control else ''} | {fmt(old)} | {fmt(new)} | {r} | {word} |")
    lines.append("")
    for suite in dict.fromkeys(row.suite for row in rows()):
        old, new = cache.get((before, suite)), cache.get((after, suite))
        if old and new:
            changed = [f"{key} {old.get(key)} → {new.get(key)}" for key in SETTINGS if old.get(key) != new.get(key)]
            if changed:
                lines.append(f"- {suite}: settings differ: {', '.join(changed)}")
    if missing := [suite for suite in dict.fromkeys(row.suite for row in rows()) if cache.get((after, suite)) is None]:
        lines.append(f"- not in {after}: {', '.join(missing)}")
    lines.append(f"- {slower} of our figures slower beyond ±{noise:.0%}, {differs} deterministic figures differ "
                 "(controls excluded; compare them with our rows before calling a drop ours).")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("after", type=Path, help="the re-run's folder of JSON files")
    parser.add_argument("--before", type=Path, default=RECORDED, help="[default: bench/results, the recorded runs]")
    parser.add_argument("--noise", type=float, default=0.25)
    args = parser.parse_args(argv)
    print(table(args.before, args.after, args.noise))
    if (args.after / "embedded-before.json").exists():  # the same scenarios on another checkout, same machine state
        print("\nEmbedded store, before and after in the same run (bench/rerun.sh with CIM_BENCH_BEFORE):\n")
        embedded = [row for row in rows() if row.suite == "embedded"]
        before = load(args.after, "embedded", "embedded-before")
        after = load(args.after, "embedded")
        print("| scenario | before | after | after ÷ before | verdict |\n|---|---:|---:|---:|---|")
        for row in embedded:
            old = row.value(before) if before else None
            new = row.value(after) if after else None
            r, word = verdict(row.kind, old, new, args.noise)
            print(f"| {row.label} | {fmt(old)} | {fmt(new)} | {r} | {word} |")


if __name__ == "__main__":
    main()
