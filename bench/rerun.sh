#!/usr/bin/env bash
# Re-run every benchmark of docs/benchmarks.md once and print a before/after table against the
# recorded runs (bench/results/*.json). Run it on a quiet machine: nothing else running.
#
#   bash bench/rerun.sh [OUT_DIR]     # default: bench/results/rerun-<UTC date-time>/
#
# In order: the features suite (cim-basemap, tipg, pygeoapi over the 1,000,000 buildings in the
# PostGIS database cim_bench), the tiles suite (one run; the docs' table has two), the edits bench
# (300 edits on the embedded store), the build bench (one ogr2ogr / cim build pair), and the
# embedded-store reads of "Hardening's cost" (bench/embedded.py), and the data-sharing bench
# (bench/sharing.py: downloads against ogr2ogr, change feeds, incremental builds) and the 3D Tiles bench
# (bench/threed.py: plan, export, GLB requests against nginx, the 3D viewer). Each writes its JSON and its log
# into OUT_DIR (never over bench/results/*.json); then bench/compare.py prints the table, also
# kept as OUT_DIR/table.md, and OUT_DIR/times.txt says how long each part took.
#
# Takes about 11 minutes at these settings on the 2-core machine: features ~4.5 min (3 servers x
# 5 scenarios x (2 s warm-up + 10 s), plus following next links to row 50,000 and starting each
# server), tiles ~3.5 min (the size survey of ~2,000 tiles, 500 tiles fetched for the cached
# scenario, the z10 pass on tipg at ~2 s a tile), edits ~0.5 min, build ~1.5 min (one ogr2ogr /
# cim build pair of 1,000,000 features), embedded ~1.2 min (5 x 12 s; twice with CIM_BENCH_BEFORE),
# sharing ~9 min at 1M (download ~1 min, change feeds ~2.5 min, 2 x 7 builds of 1,000,000 buildings ~5.5 min; its data,
# bench/sharing_data.py, ~2 min, made once into /work/benchdata when missing).
# The smoke test below took 6.5 min at 1-s settings on a machine at load average 30-50 (features
# 127 s, tiles 177 s, edits 14 s, build 19 s, embedded 21-34 s). Made once per machine, only when
# missing: the peers' venv (setup-peers.sh, ~35 s), the 1,000,000 buildings in cim_bench (~35 s),
# the build's 1,000,000-feature GeoPackage in /tmp/cim-bench-build (~45 s), the demo store in
# /tmp/cim-bench-embedded (~5 s).
#
# Settings (environment): CIM_BENCH_SECONDS (10) per timed scenario, CIM_BENCH_EDITS (300),
# CIM_BENCH_BUILD_FEATURES (1000000), CIM_BENCH_BUILD_REPEAT (1), CIM_BENCH_SHARING_FEATURES
# (1000000), CIM_BENCH_SHARING_REPEAT (3 build pairs), CIM_BENCH_THREED_FEATURES (1000000), CIM_BENCH_SUITES (all of
# "features tiles edits build embedded sharing threed"), CIM_BENCH_BEFORE=/path/to/cim: also run the embedded
# reads with that executable (another checkout's .venv/bin/cim, e.g. of 91c674d) just before ours,
# for a before/after pair under the same machine state. The smoke test of this script was:
#   CIM_BENCH_SECONDS=1 CIM_BENCH_EDITS=20 CIM_BENCH_BUILD_FEATURES=20000 bash bench/rerun.sh /tmp/x
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$CIM_ROOT" || exit 1

py="$CIM_VENV/bin/python"
[[ -x $py ]] || die "no .venv in $CIM_ROOT: run ./scripts/test or ./scripts/demo once to make it"
seconds=${CIM_BENCH_SECONDS:-10}
edits=${CIM_BENCH_EDITS:-300}
build_features=${CIM_BENCH_BUILD_FEATURES:-1000000}
build_repeat=${CIM_BENCH_BUILD_REPEAT:-1}
sharing_features=${CIM_BENCH_SHARING_FEATURES:-1000000}
sharing_repeat=${CIM_BENCH_SHARING_REPEAT:-3}
threed_features=${CIM_BENCH_THREED_FEATURES:-1000000}
suites=${CIM_BENCH_SUITES:-features tiles edits build embedded sharing threed}
out=${1:-bench/results/rerun-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)

if [[ ! -x bench/.venv-peers/bin/uvicorn ]] || ! command -v wrk >/dev/null || [[ ! -x /usr/sbin/nginx ]] \
    || ! command -v ogr2ogr >/dev/null; then
    bash bench/setup-peers.sh || die "bench/setup-peers.sh failed"
fi

{
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | grep -q . && echo '(uncommitted changes)')"
    echo "started: $(date -u +%FT%TZ)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "settings: seconds=$seconds edits=$edits build_features=$build_features build_repeat=$build_repeat sharing_features=$sharing_features sharing_repeat=$sharing_repeat suites='$suites'"
} >"$out/run-info.txt"
cat "$out/run-info.txt"
: >"$out/times.txt"
failed=()

# step NAME COMMAND...: run one part, its output into OUT/NAME.log, its time into OUT/times.txt
step() {
    local name=$1 started status
    shift
    [[ " $suites " == *" $name "* ]] || return 0
    log "$name: $*"
    started=$(date +%s)
    "$@" >"$out/$name.log" 2>&1
    status=$?
    printf '%-12s %5d s  exit %d  (load average after: %s)\n' "$name" $(($(date +%s) - started)) "$status" \
        "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$out/times.txt"
    if ((status != 0)); then
        failed+=("$name")
        tail -n 20 "$out/$name.log" >&2
    fi
}

step features "$py" -m bench.run --suite features --seconds "$seconds" --out "$out/features.json"
step tiles "$py" -m bench.run --suite tiles --seconds "$seconds" --out "$out/tiles.json"
step edits "$py" -m bench.edits --edits "$edits" --out "$out/edits.json"
step build "$py" -m bench.build --features "$build_features" --repeat "$build_repeat" --out "$out/build.json"
if [[ -n ${CIM_BENCH_BEFORE:-} ]]; then
    suites="$suites embedded-before"
    step embedded-before "$py" -m bench.embedded --seconds "$seconds" --cim "$CIM_BENCH_BEFORE" --out "$out/embedded-before.json"
fi
step embedded "$py" -m bench.embedded --seconds "$seconds" --out "$out/embedded.json"
step sharing "$py" -m bench.sharing all --features "$sharing_features" --repeat "$sharing_repeat" --out "$out/sharing.json"
step threed "$py" -m bench.threed all --features "$threed_features" --seconds "$seconds" --out "$out/threed.json"

echo "finished: $(date -u +%FT%TZ)" >>"$out/run-info.txt"
"$py" -m bench.compare "$out" | tee "$out/table.md"
log "outputs in $out (JSON, logs, times.txt, table.md)"
if ((${#failed[@]})); then
    die "failed: ${failed[*]} (see their logs in $out)"
fi
