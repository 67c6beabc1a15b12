#!/usr/bin/env bash
# The peers we measure against, in their own venv (never mixed with ours): tipg and pygeoapi with
# its PostgreSQL provider. Usage: bash bench/setup-peers.sh  -> bench/.venv-peers
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
venv="$CIM_ROOT/bench/.venv-peers"
if [[ ! -x $venv/bin/python ]]; then
    py=$(find_python312) || exit 1
    log "creating $venv with $py"
    "$py" -m venv "$venv"
fi
log "installing tipg and pygeoapi (PostgreSQL provider) into $venv"
"$venv/bin/python" -m pip install -qq tipg pygeoapi psycopg2-binary geoalchemy2 pygeofilter uvicorn </dev/null
command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y -q wrk </dev/null >/dev/null; }
# nginx: the static-file baseline for cached tiles (its default site is stopped; bench runs its own)
if [[ ! -x /usr/sbin/nginx ]]; then
    log "installing nginx-light"
    apt-get install -y -q --no-install-recommends nginx-light </dev/null >/dev/null
    service nginx stop >/dev/null 2>&1 || true
fi
ogr2ogr --version >/dev/null 2>&1 || { log "installing gdal-bin"; apt-get install -y -q gdal-bin </dev/null >/dev/null; }
"$venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(tipg|pygeoapi) '
