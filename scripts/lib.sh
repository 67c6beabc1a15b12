# shellcheck shell=bash
# Shared helpers for scripts/test and scripts/demo. Source it, don't run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything here must work without a terminal or stdin (CI).

CIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CIM_VENV="$CIM_ROOT/.venv"

export DEBIAN_FRONTEND=noninteractive
export PIP_NO_INPUT=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

# shellcheck disable=SC2016  # the backticks are meant literally
CIM_PY_MISSING_MSG='cim-basemap needs Python 3.12 or newer; none found. Install it (e.g. `pyenv install 3.12`) or set CIM_PYTHON=/path/to/python3.12'

log() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root (we usually are root; otherwise use sudo without prompting).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

# _py312 CMD: if CMD is a working Python >= 3.12, print the path of the real
# interpreter behind it (resolves pyenv shims) and succeed; otherwise fail quietly.
_py312() {
    local cmd=$1
    [[ -n $cmd ]] || return 1
    if [[ $cmd == */* ]]; then
        [[ -x $cmd ]] || return 1
    else
        command -v "$cmd" >/dev/null 2>&1 || return 1
    fi
    "$cmd" -c 'import sys; assert sys.version_info >= (3, 12); print(sys.executable)' \
        </dev/null 2>/dev/null
}

# find_python312: print the path of a Python 3.12+ interpreter, or explain and exit 1.
# Order: $CIM_PYTHON, python3.12 / python3.13 on PATH, python3 (if >= 3.12), pyenv.
find_python312() {
    local cand root dir

    if [[ -n ${CIM_PYTHON:-} ]]; then
        _py312 "$CIM_PYTHON" && return 0
        die "CIM_PYTHON=$CIM_PYTHON is not a working Python 3.12 or newer"
    fi

    for cand in python3.12 python3.13 python3; do
        _py312 "$cand" && return 0
    done

    # pyenv: on PATH, or installed in the usual place but not on PATH.
    root=""
    if command -v pyenv >/dev/null 2>&1; then
        cand=$(pyenv prefix 3.12 2>/dev/null </dev/null | head -n1) || cand=""
        [[ -n $cand ]] && _py312 "$cand/bin/python3" && return 0
        root=$(pyenv root 2>/dev/null </dev/null) || root=""
    fi
    [[ -n $root ]] || root=${PYENV_ROOT:-$HOME/.pyenv}
    if [[ -d $root/versions ]]; then
        # Newest patch release first; 3.12 before 3.13 (the version CI uses).
        while IFS= read -r dir; do
            _py312 "$dir/bin/python3" && return 0
        done < <(
            { find "$root/versions" -mindepth 1 -maxdepth 1 -name '3.12.*' | sort -rV
              find "$root/versions" -mindepth 1 -maxdepth 1 -name '3.13.*' | sort -rV; } 2>/dev/null
        )
    fi

    printf '%s\n' "$CIM_PY_MISSING_MSG" >&2
    exit 1
}

# ensure_venv [SPEC]: create or reuse $CIM_ROOT/.venv (Python 3.12+) and
# `pip install -e SPEC` into it. SPEC defaults to '.[test]'; the demo uses '.'.
# The install is skipped when pyproject.toml is unchanged since the last successful
# install of the same (or a larger) spec; set CIM_REINSTALL=1 to force it.
ensure_venv() {
    local spec=${1:-.[test]} py stamp want
    local venv_py="$CIM_VENV/bin/python"

    if [[ -e $CIM_VENV ]] && ! _py312 "$venv_py" >/dev/null; then
        log "recreating .venv (its Python is missing or older than 3.12)"
        rm -rf "$CIM_VENV"
    fi
    if [[ ! -e $CIM_VENV ]]; then
        py=$(find_python312) || exit 1
        log "creating .venv with $py ($("$py" -V 2>&1))"
        "$py" -m venv "$CIM_VENV" || die "could not create $CIM_VENV with $py"
    fi

    want=$(sha256sum "$CIM_ROOT/pyproject.toml" | cut -d' ' -f1)
    stamp="$CIM_VENV/.cim-installed"
    if [[ ${CIM_REINSTALL:-0} != 1 && -f $stamp && -x $CIM_VENV/bin/cim ]]; then
        # stamp holds "<sha256> <spec>"; a '.[test]' install also satisfies '.'.
        local have_hash have_spec
        read -r have_hash have_spec <"$stamp" || true
        if [[ $have_hash == "$want" && ( $have_spec == "$spec" || $have_spec == ".[test]" ) ]]; then
            log "reusing .venv ($("$venv_py" -V 2>&1), cim-basemap $spec already installed)"
            return 0
        fi
    fi

    log "installing cim-basemap ($spec) into .venv"
    rm -f "$stamp"
    "$venv_py" -m pip install -qq --upgrade pip </dev/null \
        || die "could not upgrade pip in .venv"
    (cd "$CIM_ROOT" && "$venv_py" -m pip install -qq -e "$spec" </dev/null) \
        || die "pip install -e '$spec' failed (see the errors above)"
    printf '%s %s\n' "$want" "$spec" >"$stamp"
}

# --- MapLibre GL JS for the map viewer (/viewer) --------------------------------
# From the npm registry (never committed, never loaded from a CDN at run time): the package's
# dist/maplibre-gl.js and .css go into the git-ignored ogcapi/static/vendor/maplibre/, which the
# server serves at /viewer/vendor/. CIM_MAPLIBRE_VERSION overrides the pinned version.
CIM_MAPLIBRE_VERSION=${CIM_MAPLIBRE_VERSION:-5.24.1}
CIM_MAPLIBRE_DIR="$CIM_ROOT/ogcapi/static/vendor/maplibre"

# ensure_maplibre: install MapLibre GL JS $CIM_MAPLIBRE_VERSION into $CIM_MAPLIBRE_DIR unless
# that version is already there. Returns 1 with a message (does not exit) when it cannot.
ensure_maplibre() {
    local dir=$CIM_MAPLIBRE_DIR want=$CIM_MAPLIBRE_VERSION tmp tgz f
    if [[ -s $dir/maplibre-gl.js && -s $dir/maplibre-gl.css && -f $dir/VERSION \
          && $(<"$dir/VERSION") == "$want" ]]; then
        log "reusing MapLibre GL JS $want ($dir)"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        printf 'error: npm not found: the map viewer needs MapLibre GL JS from the npm registry; install Node.js 20 with npm (e.g. apt-get install nodejs npm) and run this again\n' >&2
        return 1
    fi
    log "installing MapLibre GL JS $want from npm into $dir"
    tmp=$(mktemp -d) || return 1
    if ! (cd "$tmp" && npm pack --loglevel=error --no-fund --no-audit --no-update-notifier \
              "maplibre-gl@$want" </dev/null >/dev/null); then
        rm -rf "$tmp"
        printf 'error: npm pack maplibre-gl@%s failed (see the errors above)\n' "$want" >&2
        return 1
    fi
    tgz=$(find "$tmp" -maxdepth 1 -name 'maplibre-gl-*.tgz' | head -n1)
    if [[ -z $tgz ]] || ! tar -xzf "$tgz" -C "$tmp" package/dist/maplibre-gl.js \
              package/dist/maplibre-gl.css package/LICENSE.txt; then
        rm -rf "$tmp"
        printf 'error: the maplibre-gl@%s package has no dist/maplibre-gl.js or .css\n' "$want" >&2
        return 1
    fi
    mkdir -p "$dir" || { rm -rf "$tmp"; return 1; }
    # each file renamed into place, VERSION last: an interrupted install is redone next time
    rm -f "$dir/VERSION"
    for f in dist/maplibre-gl.js dist/maplibre-gl.css LICENSE.txt; do
        cp "$tmp/package/$f" "$dir/.${f##*/}.tmp" && mv -f "$dir/.${f##*/}.tmp" "$dir/${f##*/}" \
            || { rm -rf "$tmp"; return 1; }
    done
    printf '%s\n' "$want" >"$dir/VERSION"
    rm -rf "$tmp"
}

# --- CesiumJS for the 3D viewer (/viewer/3d) --------------------------------------
# From the npm registry like MapLibre (never committed, never loaded from a CDN at run time): the
# package's Build/Cesium/ tree (Cesium.js, Workers/, Assets/, ThirdParty/, Widgets/) and LICENSE.md
# go into the git-ignored ogcapi/static/vendor/cesium/, which the server serves at /viewer/3d/vendor/.
# CIM_CESIUM_VERSION overrides the pinned version.
CIM_CESIUM_VERSION=${CIM_CESIUM_VERSION:-1.145.0}
CIM_CESIUM_DIR="$CIM_ROOT/ogcapi/static/vendor/cesium"

# ensure_cesium: install CesiumJS $CIM_CESIUM_VERSION into $CIM_CESIUM_DIR unless that version is
# already there. Returns 1 with a message (does not exit) when it cannot.
ensure_cesium() {
    local dir=$CIM_CESIUM_DIR want=$CIM_CESIUM_VERSION tmp tgz stage
    if [[ -s $dir/Cesium.js && -d $dir/Workers && -d $dir/Assets && -f $dir/VERSION \
          && $(<"$dir/VERSION") == "$want" ]]; then
        log "reusing CesiumJS $want ($dir)"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        printf 'error: npm not found: the 3D viewer needs CesiumJS from the npm registry; install Node.js 20 with npm (e.g. apt-get install nodejs npm) and run this again\n' >&2
        return 1
    fi
    log "installing CesiumJS $want from npm into $dir (a 23 MB package)"
    tmp=$(mktemp -d) || return 1
    if ! (cd "$tmp" && npm pack --loglevel=error --no-fund --no-audit --no-update-notifier \
              "cesium@$want" </dev/null >/dev/null); then
        rm -rf "$tmp"
        printf 'error: npm pack cesium@%s failed (see the errors above)\n' "$want" >&2
        return 1
    fi
    tgz=$(find "$tmp" -maxdepth 1 -name 'cesium-*.tgz' | head -n1)
    if [[ -z $tgz ]] || ! tar -xzf "$tgz" -C "$tmp" package/Build/Cesium package/LICENSE.md \
            || [[ ! -s $tmp/package/Build/Cesium/Cesium.js ]]; then
        rm -rf "$tmp"
        printf 'error: the cesium@%s package has no Build/Cesium/Cesium.js\n' "$want" >&2
        return 1
    fi
    # the tree is staged next to the target and swapped in whole, VERSION last: an interrupted
    # install is redone next time
    mkdir -p "${dir%/*}" || { rm -rf "$tmp"; return 1; }
    stage="$dir.tmp.$$"
    rm -rf "$stage"
    cp -R "$tmp/package/Build/Cesium" "$stage" && cp "$tmp/package/LICENSE.md" "$stage/LICENSE.md" \
        || { rm -rf "$tmp" "$stage"; return 1; }
    rm -rf "$dir" && mv "$stage" "$dir" || { rm -rf "$tmp" "$stage"; return 1; }
    printf '%s\n' "$want" >"$dir/VERSION"
    rm -rf "$tmp"
}

# --- Khronos glTF validator for the 3D Tiles content tests -----------------------------------
# The official validator (npm package gltf-validator, no dependencies) checks every GLB the tests
# make (tests/support/gltf_validator.py runs it with node). From the npm registry into the
# git-ignored .cache/gltf-validator/ (never committed, nothing fetched at test time).
# CIM_GLTF_VALIDATOR_VERSION overrides the pinned version.
CIM_GLTF_VALIDATOR_VERSION=${CIM_GLTF_VALIDATOR_VERSION:-2.0.0-dev.3.10}
CIM_GLTF_VALIDATOR_DIR="$CIM_ROOT/.cache/gltf-validator"

# ensure_gltf_validator: install gltf-validator $CIM_GLTF_VALIDATOR_VERSION into
# $CIM_GLTF_VALIDATOR_DIR unless that version is already there. Returns 1 with a message (does not
# exit) when it cannot.
ensure_gltf_validator() {
    local dir=$CIM_GLTF_VALIDATOR_DIR want=$CIM_GLTF_VALIDATOR_VERSION tmp tgz
    if [[ -s $dir/index.js && -s $dir/gltf_validator.dart.js && -f $dir/VERSION \
          && $(<"$dir/VERSION") == "$want" ]]; then
        log "reusing the glTF validator $want ($dir)"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        printf 'error: node or npm not found: the 3D Tiles tests validate glTF with the Khronos gltf-validator from the npm registry; install Node.js 20 with npm (e.g. apt-get install nodejs npm) and run this again\n' >&2
        return 1
    fi
    log "installing the glTF validator $want from npm into $dir"
    tmp=$(mktemp -d) || return 1
    if ! (cd "$tmp" && npm pack --loglevel=error --no-fund --no-audit --no-update-notifier \
              "gltf-validator@$want" </dev/null >/dev/null); then
        rm -rf "$tmp"
        printf 'error: npm pack gltf-validator@%s failed (see the errors above)\n' "$want" >&2
        return 1
    fi
    tgz=$(find "$tmp" -maxdepth 1 -name 'gltf-validator-*.tgz' | head -n1)
    if [[ -z $tgz ]] || ! tar -xzf "$tgz" -C "$tmp" package/index.js package/gltf_validator.dart.js \
              package/package.json package/LICENSE; then
        rm -rf "$tmp"
        printf 'error: the gltf-validator@%s package has no index.js or gltf_validator.dart.js\n' "$want" >&2
        return 1
    fi
    # the whole package renamed into place, VERSION last: an interrupted install is redone next time
    rm -rf "$dir.tmp" && mkdir -p "$(dirname "$dir")" && mv "$tmp/package" "$dir.tmp" \
        && rm -rf "$dir" && mv "$dir.tmp" "$dir" || { rm -rf "$tmp"; return 1; }
    printf '%s\n' "$want" >"$dir/VERSION"
    rm -rf "$tmp"
}
