#!/usr/bin/env bash
# tools/run-tests.sh — every test: builds if needed (the same configuration
# as tools/setup.sh), then runs
#   1. the C unit suites:        ctest --test-dir build --output-on-failure
#      (with CI=true, ctest also runs cpython.quick: CPython's tests, 8 modules)
#   2. the integration tests:    /usr/bin/python3 -m pytest -q tests/integration
# Both always run; the exit status is non-zero if either fails.
#
# Extra arguments go to pytest, e.g.  tools/run-tests.sh -k threads -x
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tools/run-tests.sh [--no-build] [--unit-only | --integration-only] [PYTEST_ARGS...]

Builds cpyprof if needed, runs the C unit suites (ctest) and the integration
tests (pytest, Debian's /usr/bin/python3). Exit status 0 when all pass.

  --no-build            use the build directory as it is
  --unit-only           only ctest
  --integration-only    only pytest
  -h, --help            this help

Environment: CPYPROF_BUILD_DIR  the build directory (default: build)
             PYTHON             the Python that builds and runs pytest
                                (default: /usr/bin/python3)
             CPYPROF_SKIP_INSTALL_TEST=1  skip the slow `pip install .` test
EOF
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${CPYPROF_BUILD_DIR:-build}"
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
PYTHON="${PYTHON:-/usr/bin/python3}"
export CPYPROF_BUILD_DIR="$BUILD"

# Each suite has a time limit: a hung test must not hang CI. The whole run
# takes a few minutes on 2 cores; the limits are far above that.
UNIT_TIMEOUT="${UNIT_TIMEOUT:-3000}"        # seconds, all of ctest (CI: CPython subset)
INTEGRATION_TIMEOUT="${INTEGRATION_TIMEOUT:-3000}"  # seconds, all of pytest

build=1
unit=1
integration=1
pytest_args=()
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --unit-only) integration=0 ;;
        --integration-only) unit=0 ;;
        -h|--help) usage; exit 0 ;;
        *) pytest_args+=("$arg") ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }

if [ "$build" = 1 ]; then
    "$REPO/tools/setup.sh" --no-apt --no-demo
fi
[ -x "$BUILD/cpyprof" ] || { echo "run-tests.sh: no build in $BUILD (run tools/setup.sh)" >&2; exit 1; }

start=$SECONDS
unit_rc=skipped
integration_rc=skipped

if [ "$unit" = 1 ]; then
    step "Unit suites (ctest)"
    set +e
    timeout --foreground -k 30 "$UNIT_TIMEOUT" \
        ctest --test-dir "$BUILD" --output-on-failure --timeout 600
    unit_rc=$?
    set -e
    [ "$unit_rc" = 124 ] && echo "run-tests.sh: ctest took longer than ${UNIT_TIMEOUT}s: stopped" >&2
fi

if [ "$integration" = 1 ]; then
    step "Integration tests (pytest, $PYTHON)"
    cd "$REPO"
    set +e
    timeout --foreground -k 30 "$INTEGRATION_TIMEOUT" \
        "$PYTHON" -m pytest -q tests/integration "${pytest_args[@]}"
    integration_rc=$?
    set -e
    [ "$integration_rc" = 124 ] &&
        echo "run-tests.sh: pytest took longer than ${INTEGRATION_TIMEOUT}s: stopped" >&2
fi

verdict() { case "$1" in 0) echo passed ;; skipped) echo skipped ;; *) echo "FAILED (exit $1)" ;; esac; }
step "Summary ($((SECONDS - start)) s)"
echo "unit suites:       $(verdict "$unit_rc")"
echo "integration tests: $(verdict "$integration_rc")"
for rc in "$unit_rc" "$integration_rc"; do
    [ "$rc" = 0 ] || [ "$rc" = skipped ] || exit 1
done
exit 0
