"""Distributed build benchmark: the prepare step (read → checks → reproject → normalise → dedupe →
cross-check; no publishing) of N buildings single-process and on a LocalCluster of worker processes.

    .venv/bin/python -m bench.build_distributed --features 200000 --workers 2
        # -> bench/results/build_distributed.json

The GeoPackage holds the demo city's buildings replicated to N footprints (bench/data.py) in Web
Mercator (EPSG:3857), plus a second layer with every tenth building (heights changed for some) that
verifies it; the storage CRS is EPSG:4326. Both runs prepare the same config in this process; the
distributed one is timed with the cluster already up (its start is reported apart) and is checked to
give the same layer and QA records. Per-step seconds come from the progress lines' timestamps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.build import city_config
from cim.build import load_config, prepare
from cim.build.cluster import open_scale
from cim.build.partitions import DEFAULT_PARTITION_ROWS
from cim.build.progress import Progress

class Timeline(Progress):
    """Progress lines with the seconds since the start: per-step times."""

    def __init__(self) -> None:
        super().__init__(self._line)
        self.start = time.monotonic()
        self.lines: list[tuple[float, str]] = []

    def _line(self, text: str) -> None:
        self.lines.append((round(time.monotonic() - self.start, 2), text))


def run(config_path: Path) -> tuple[float, Any, Timeline]:
    timeline = Timeline()
    started = time.monotonic()
    prepared = prepare(load_config(config_path), progress=timeline)
    return time.monotonic() - started, prepared, timeline


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partition-rows", type=int, default=DEFAULT_PARTITION_ROWS)
    parser.add_argument("--work", type=Path, default=None, help="where the GeoPackage goes (kept for reruns)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/build_distributed.json"))
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.gettempdir()) / "cim-bench-build-distributed"
    config, _ = city_config(work, args.features)

    load = os.getloadavg()[0]
    single_s, single, single_log = run(config)
    started = time.monotonic()
    with open_scale(workers=args.workers, rows_per_partition=args.partition_rows):
        up_s = time.monotonic() - started
        spread_s, spread, spread_log = run(config)
    assert spread.report.records == single.report.records, "the QA records differ"
    for a, b in zip(single.draft.layers, spread.draft.layers):
        pd.testing.assert_frame_equal(pd.DataFrame(a.frame), pd.DataFrame(b.frame))
    report = {
        "suite": "build-distributed",
        "features": args.features,
        "workers": args.workers,
        "partition_rows": args.partition_rows,
        "cores": os.cpu_count(),
        "load_average_1min_at_start": load,
        "machine": platform.platform(),
        "prepare_s": {"single": round(single_s, 1), "distributed": round(spread_s, 1)},
        "cluster_start_s": round(up_s, 1),
        "speedup": round(single_s / spread_s, 2),
        "same_layers_and_qa": True,
        "qa_records": len(single.report.records),
        "timeline": {"single": single_log.lines, "distributed": spread_log.lines},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(json.dumps({k: v for k, v in report.items() if k != "timeline"}, indent=1))


if __name__ == "__main__":
    main()
