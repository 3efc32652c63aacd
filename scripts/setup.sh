#!/usr/bin/env bash
# Set up this checkout for development and tests: the Debian packages the code and the tests
# need (installed when this runs as root or with passwordless sudo, else named with the command
# that installs them), then .venv with the `dev` extra, and with --export .venv-export with the
# `export` extra. It is README.md's set-up command and .ci/run's; running it again is harmless
# and picks up new dependencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}

# Debian packages, each with what goes wrong without it. To add a group, add its names here
# and a line to WHY. The GStreamer group is Debian's own RTSP server, which the camera tests
# run (under Debian's python3, the one with gi) to serve real RTSP streams.
GSTREAMER=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly)
PACKAGES=(libgl1 libglib2.0-0 chromium git "${GSTREAMER[@]}")
declare -A WHY=(
    [python3-venv]="Python cannot make virtual environments (no ensurepip)"
    [libgl1]="OpenCV (cv2) does not import: the edge and most tests fail"
    [libglib2.0-0]="OpenCV (cv2) does not import: the edge and most tests fail"
    [chromium]="the browser tests fail, naming the package"
    [git]="tests/system/test_repo.py cannot list the tracked files"
    [python3-gi]="the RTSP camera tests cannot start GStreamer's RTSP server"
    [gir1.2-gst-rtsp-server-1.0]="the RTSP camera tests cannot start GStreamer's RTSP server"
    [gstreamer1.0-plugins-base]="the RTSP camera tests cannot start GStreamer's RTSP server"
    [gstreamer1.0-plugins-good]="the RTSP camera tests cannot start GStreamer's RTSP server"
    [gstreamer1.0-plugins-bad]="the RTSP camera tests cannot start GStreamer's RTSP server"
    [gstreamer1.0-plugins-ugly]="the RTSP camera tests cannot start GStreamer's RTSP server"
)

usage() {
    cat <<'EOF'
usage: scripts/setup.sh [--export]

Installs the Debian packages the tests need (as root or with passwordless sudo; otherwise
prints them with the command to install them), makes .venv and installs the project with its
`dev` extra into it. Safe to run again.

  --export   also make .venv-export with the `export` extra (Ultralytics and torch), for
             `edge models export` and the export tests; STREETWATCH_REQUIRE_EXPORT=1 asks
             for it too (CI sets it)
  PYTHON=... the interpreter for the environments (default python3; 3.11 or newer)
EOF
}

say() { printf '== %s\n' "$*"; }
warn() { printf 'setup: %s\n' "$*" >&2; }

want_export=0
if [[ "${STREETWATCH_REQUIRE_EXPORT:-}" == 1 ]]; then want_export=1; fi
for arg in "$@"; do
    case "$arg" in
        --export) want_export=1 ;;
        -h | --help) usage; exit 0 ;;
        *) warn "unknown option: $arg"; usage >&2; exit 2 ;;
    esac
done

# --- Debian packages ---------------------------------------------------------------------

installed() {
    # Installed under its name, or provided by an installed package (Debian 13's t64 renames:
    # libglib2.0-0t64 provides libglib2.0-0).
    local name=$1
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null)" == installed ]] && return 0
    dpkg-query -W -f='${db:Status-Status} ${Provides}\n' 2>/dev/null |
        awk -v n="$name" '$1 == "installed" { for (i = 2; i <= NF; i++) { p = $i; sub(/,$/, "", p); if (p == n) found = 1 } } END { exit !found }'
}

missing_packages() {
    local pkg
    for pkg in "$@"; do installed "$pkg" || printf '%s\n' "$pkg"; done
}

if ! command -v "$PYTHON" >/dev/null; then
    warn "$PYTHON not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)"
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    warn "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'); 3.11 or newer is needed"
    exit 1
fi
wanted=("${PACKAGES[@]}")
# Debian splits ensurepip out of python3: without it `python3 -m venv` fails.
if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then wanted=(python3-venv "${wanted[@]}"); fi

missing=()
say "Debian packages: ${wanted[*]}"
if ! command -v dpkg-query >/dev/null; then
    warn "not a Debian system: install the equivalents of these packages yourself: ${wanted[*]}"
else
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if ((${#missing[@]} == 0)); then
        say "all installed"
    else
        sudo=()
        if ((EUID != 0)); then
            if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
        fi
        if [[ "${sudo[*]-}" == none ]]; then
            warn "not root and no passwordless sudo: not installing ${missing[*]}"
        else
            say "installing ${missing[*]} (apt-get update, then apt-get install)"
            apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq)
            if ! { "${apt[@]}" update && "${apt[@]}" install -y "${missing[@]}" >/dev/null; }; then
                warn "apt-get failed (see above)"
            fi
            mapfile -t missing < <(missing_packages "${missing[@]}")
        fi
    fi
fi

report_missing() {
    ((${#missing[@]} > 0)) || return 0
    warn "missing Debian packages: ${missing[*]}"
    local pkg
    for pkg in "${missing[@]}"; do warn "  without $pkg: ${WHY[$pkg]:-?}"; done
    warn "  install them with: sudo apt-get update && sudo apt-get install ${missing[*]}"
}
report_missing
for pkg in "${missing[@]}"; do
    if [[ "$pkg" == python3-venv ]]; then
        warn "cannot make .venv without python3-venv; install it and run scripts/setup.sh again"
        exit 1
    fi
done

# --- Python environments -----------------------------------------------------------------

make_env() {
    local dir=$1 extra=$2
    if [[ ! -x "$dir/bin/python" ]]; then
        say "creating $dir"
        "$PYTHON" -m venv "$dir"
    fi
    say "installing the project with its '$extra' extra into $dir (minutes on a fresh machine)"
    "$dir/bin/pip" install -q -e ".[$extra]"
}

make_env .venv dev
if ((want_export)); then
    # Ultralytics and torch stay out of .venv, so that the runtime provably needs no torch.
    make_env .venv-export export
fi

say "done: run the tests with .venv/bin/python -m pytest -n 2 --dist loadfile"
report_missing
