#!/usr/bin/env bash
# Set up cortico on a fresh Debian/Ubuntu machine: system packages, .venv, torch, the project (editable).
#
#   scripts/setup.sh          # runtime set-up (what `cortico demo` needs)
#   scripts/setup.sh --dev    # plus the test and lint tools
#
# Idempotent: each step checks whether it is already done, so a second run takes about a second.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

extras=""
for arg in "$@"; do
    case "$arg" in
        --dev) extras="[dev]" ;;
        -h|--help) sed -n 2,7p "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (accepted: --dev, --help)" >&2; exit 2 ;;
    esac
done

say() { printf '[setup] %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------------------------
# libosmesa6: headless MuJoCo rendering on the CPU; libusb-1.0-0, libgl1, libgomp1: Open3D's import;
# ros-core and the python3-*-msgs packages: ROS 1 (roscore, rospy) for the deploy/ bridge and its tests.
apt_packages=(
    libosmesa6 libusb-1.0-0 libgl1 libgomp1
    ros-core python3-rospy python3-sensor-msgs python3-geometry-msgs python3-trajectory-msgs python3-std-msgs
)
missing=()
for pkg in "${apt_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: apt-get not found; install these packages with your system's package manager:" >&2
        echo "  ${missing[*]}" >&2
        exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo)
    else
        echo "setup.sh: these Debian packages are missing and neither root nor password-less sudo is available:" >&2
        echo "  ${missing[*]}" >&2
        echo "Ask an administrator to run: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. the virtual environment -----------------------------------------------------------------
python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python_bin" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
        echo "setup.sh: cortico needs Python >= 3.10; '$python_bin' is $("$python_bin" --version 2>&1)" >&2
        exit 1
    }
    say "creating .venv with $("$python_bin" --version 2>&1)"
    "$python_bin" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# --- 3. torch, pinned ---------------------------------------------------------------------------
# torch==2.13.0 resolves to the CPU build on disk on the reference machine; an unpinned torch would pull
# a multi-GB CUDA build. Elsewhere it is the normal wheel for the platform.
torch_version="2.13.0"
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$torch_version' else 1)" 2>/dev/null; then
    say "installing torch==$torch_version"
    "${pip[@]}" install "torch==$torch_version"
fi

# --- 4. the project, editable -------------------------------------------------------------------
stamp=".venv/.cortico-setup${extras:+-dev}"
fingerprint="$(cat pyproject.toml "$0" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$fingerprint" ]; then
    say "installing cortico (editable) and its dependencies${extras:+ with dev extras}"
    "${pip[@]}" install -e ".${extras}"
    echo "$fingerprint" > "$stamp"
fi
say "ready: $(.venv/bin/python --version), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')"
