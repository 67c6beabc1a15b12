"""Parsing warning documents: the samples, the worst documents the limits let through, and the
hostile ones (refused before any parser runs).

    .venv/bin/python -m bench.warnings_parse        # prints one line per case: bytes, best of N in ms

Best of N wall-clock runs of ``cim.warnings.geojson_input.parse_warning`` in this process (no
store, no HTTP). Figures and the machine in docs/warnings/cap.md ("Cost").
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from cim.warnings.geojson_input import parse_warning

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "warnings"
CORPUS = ROOT / "tests" / "corpus" / "warnings"
SQUARE = "39.10,117.15 39.10,117.25\n               39.20,117.25\n               39.20,117.15 39.10,117.15"


def best_ms(data: bytes, media: str | None, runs: int) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        try:
            parse_warning(data, media)
        except Exception:  # the hostile cases are refused: that is what is timed
            pass
        best = min(best, time.perf_counter() - start)
    return best * 1000


def cases() -> list[tuple[str, bytes, str | None, int]]:
    cap = "application/cap+xml"
    out: list[tuple[str, bytes, str | None, int]] = [
        (name, (FIXTURES / name).read_bytes(), cap, 50) for name in ("polygon.xml", "circle.xml", "multi.xml", "gbt35965.xml")
    ]
    out.append(("warning.geojson", (FIXTURES / "warning.geojson").read_bytes(), "application/geo+json", 50))
    circle = (FIXTURES / "circle.xml").read_text(encoding="utf-8")
    circles = "".join(f"<circle>{39.0 + i * 0.0003:.4f},117.20 2</circle>" for i in range(1000))
    out.append(("1000 overlapping circles (the limit)", circle.replace("<circle>39.12,117.20 2</circle>", circles).encode(), cap, 3))
    ring = [(39.1 + 0.05 * math.sin(2 * math.pi * k / 30000), 117.2 + 0.05 * math.cos(2 * math.pi * k / 30000)) for k in range(30000)]
    ring.append(ring[0])
    text = " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in ring)
    polygon = (FIXTURES / "polygon.xml").read_text(encoding="utf-8").replace(SQUARE, text)
    out.append(("one polygon of 30000 points", polygon.encode(), cap, 3))
    for name in ("billion-laughs.xml", "xxe.xml", "utf16-doctype.xml", "depth-bomb.xml", "schema-invalid.xml"):
        out.append((name, (CORPUS / name).read_bytes(), cap, 50))
    out.append(("10 MB body", b"<alert>" + b"x" * (10 * 1024 * 1024) + b"</alert>", cap, 50))
    return out


def main() -> None:
    for label, data, media, runs in cases():
        print(f"{label:40s} {len(data):>10,d} B  {best_ms(data, media, runs):9.2f} ms")


if __name__ == "__main__":
    main()
