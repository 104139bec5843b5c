#!/usr/bin/env bash
# tools/setup.sh — from a fresh Debian bookworm to a built cpyprof and a
# profiled demo, in one command:
#
#   1. installs the build and test dependencies with apt-get (as root, or
#      through sudo), skipped when they are all present already;
#   2. configures and builds into build/ (or $CPYPROF_BUILD_DIR) against
#      Debian's /usr/bin/python3, whatever python3 comes first on PATH;
#   3. profiles python/cpyprof/demo.py and draws demo.svg.
#
# Safe to run again: each step does only what is missing.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tools/setup.sh [--no-apt] [--no-demo] [-h|--help]

Installs what cpyprof needs (Debian bookworm), builds it into build/ and
profiles a demo program into demo.svg.

  --no-apt    do not install packages (they are already there, or you
              install them yourself: see the list below)
  --no-demo   build only; do not profile the demo
  -h, --help  this help

Packages: build-essential cmake ninja-build pkg-config python3-dev
libunwind-dev libelf-dev check python3-pytest python3-venv python3.11-dbg
libxml2-utils

Environment: CPYPROF_BUILD_DIR  the build directory (default: build)
             PYTHON             the Python 3.11 to build against
                                (default: /usr/bin/python3)
EOF
}

PACKAGES=(
    build-essential   # gcc, make, libc headers, binutils (nm)
    cmake
    ninja-build
    pkg-config
    python3-dev       # Python.h for /usr/bin/python3 (3.11 on bookworm)
    libunwind-dev     # native stacks
    libelf-dev        # GOT patching
    check             # C unit test framework (ctest)
    zlib1g-dev        # gzip for `cpyprof convert --to pprof`
    python3-pytest    # integration tests
    python3-jsonschema # speedscope JSON checked against its schema (tests)
    python3-venv      # the pip-install test
    libpython3.11-testsuite # CPython's own tests, for tools/cpython-tests.sh
    python3.11-dbg    # the "debug builds are refused" test
    libxml2-utils     # xmllint: checking the SVG flamegraphs
)

do_apt=1
do_demo=1
for arg in "$@"; do
    case "$arg" in
        --no-apt) do_apt=0 ;;
        --no-demo) do_demo=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${CPYPROF_BUILD_DIR:-build}"
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
PYTHON="${PYTHON:-/usr/bin/python3}"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. packages -----------------------------------------------------------
missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]; then
            echo "$p"
        fi
    done
}

if [ "$do_apt" = 1 ]; then
    step "Checking the Debian packages"
    command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
        die "apt-get/dpkg-query not found: this script targets Debian bookworm; install the packages listed in --help yourself and run it with --no-apt"
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "All ${#PACKAGES[@]} packages are installed."
    else
        echo "Installing: ${missing[*]}"
        if [ "$(id -u)" = 0 ]; then
            SUDO=()
        elif command -v sudo >/dev/null; then
            SUDO=(sudo)
        else
            die "installing packages needs root: run as root, install sudo, or install '${missing[*]}' yourself and use --no-apt"
        fi
        export DEBIAN_FRONTEND=noninteractive
        "${SUDO[@]}" apt-get update
        "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

# --- 2. configure and build ------------------------------------------------
step "Building into $BUILD"
[ -x "$PYTHON" ] || die "$PYTHON not found: install python3 (Debian bookworm ships 3.11) or set PYTHON"
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$pyver" = 3.11 ] || die "$PYTHON is Python $pyver; cpyprof needs CPython 3.11 (set PYTHON to one)"
command -v cmake >/dev/null || die "cmake not found (install the 'cmake' package, or drop --no-apt)"

configure=(cmake -S "$REPO" -B "$BUILD" "-DPython3_EXECUTABLE=$PYTHON")
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    command -v ninja >/dev/null || die "ninja not found (install 'ninja-build', or drop --no-apt)"
    configure+=(-G Ninja)
fi
# An existing build directory keeps its generator and its other settings.
"${configure[@]}"
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)"
for f in cpyprof libcpyprof.so python/cpyprof/__init__.py; do
    [ -e "$BUILD/$f" ] || die "the build did not produce $BUILD/$f"
done
echo "Built: $BUILD/cpyprof, $BUILD/libcpyprof.so, $BUILD/python/cpyprof"

# --- 3. the demo -----------------------------------------------------------
if [ "$do_demo" = 1 ]; then
    step "Profiling the demo"
    cd "$REPO"
    # CPYPROF_SKIP_INSTALL_TEST belongs to the tests, not to the profiler
    # (which refuses CPYPROF_* names it does not know).
    env -u CPYPROF_SKIP_INSTALL_TEST \
        "$BUILD/cpyprof" record -o demo.cpyprof -- "$PYTHON" python/cpyprof/demo.py
    "$BUILD/cpyprof" report demo.cpyprof --limit 10
    "$BUILD/cpyprof" flame demo.cpyprof -o demo.svg
    step "Done"
    echo "Flamegraph: $REPO/demo.svg (open it in a browser: click to zoom, Ctrl-F to search)"
    echo "Profile:    $REPO/demo.cpyprof (cpyprof report / flame / convert read it)"
    echo "Next:       tools/run-tests.sh"
else
    step "Done (demo skipped)"
fi
