#!/bin/sh
# run.sh [SECONDS] — fuzz the profile reader and its consumers.
#
# Builds build-fuzz/ with clang and CPYPROF_FUZZ=ON, records a seed corpus
# with build/cpyprof (builds build/ if needed) from tests/fuzz/programs/*.py,
# adds tests/fuzz/crashers/, and runs fuzz_reader for SECONDS (default 60)
# into a temporary work corpus. Exits non-zero when libFuzzer finds a crash,
# a leak or a timeout; the reproducer lands in build-fuzz/artifacts/.
#
# Environment: FUZZ_JOBS=N runs N workers (libFuzzer -fork=N, default 1);
# FUZZ_TIMEOUT (seconds per input, default 10: the committed seed
# crashers/edge-tree-deep-chain takes ~2 s instrumented, as its pprof export
# repeats every node's whole stack); FUZZ_MAX_LEN (default 65536);
# FUZZ_ARGS adds libFuzzer options (e.g. -ignore_crashes=1 with FUZZ_JOBS);
# FUZZ_KEEP_CORPUS=DIR keeps the work corpus in DIR instead of a temp dir.
set -eu
SECONDS_TO_RUN=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CC_FUZZ=${CC_FUZZ:-clang}
command -v "$CC_FUZZ" >/dev/null || { echo "run.sh: $CC_FUZZ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

if [ ! -x build/cpyprof ] || [ ! -f build/python/cpyprof/libcpyprof.so ]; then
    cmake -S . -B build -G Ninja >/dev/null
    cmake --build build
fi
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER="$CC_FUZZ" -DCPYPROF_FUZZ=ON \
    -DCPYPROF_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz_reader

SEEDS=build-fuzz/seeds
mkdir -p "$SEEDS" build-fuzz/artifacts
seed() { # seed NAME RECORD-OPTIONS... -- PROGRAM
    out="$SEEDS/$1"
    shift
    [ -s "$out" ] && return 0
    build/cpyprof record -q -o "$out" "$@" >/dev/null || echo "run.sh: warning: no seed $out" >&2
}
for prog in tests/fuzz/programs/*.py; do
    name=$(basename "$prog" .py)
    seed "$name.trace" -- /usr/bin/python3 "$prog"
    seed "$name.shallow" --no-builtins --max-depth 16 -- /usr/bin/python3 "$prog"
    seed "$name.smallring" --ring-size 4K -- /usr/bin/python3 "$prog"
    seed "$name.sample" -m sample --rate 1000 -- /usr/bin/python3 "$prog"
    seed "$name.alloc" --alloc -- /usr/bin/python3 "$prog"
    seed "$name.timeline" -m timeline --buffer 64K -- /usr/bin/python3 "$prog"
    seed "$name.flight" -m timeline --buffer 64K --keep last -- /usr/bin/python3 "$prog"
done
cp tests/fuzz/crashers/* "$SEEDS/" 2>/dev/null || true

if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
    WORK=$FUZZ_KEEP_CORPUS
    mkdir -p "$WORK"
    CLEAN=
else
    WORK=$(mktemp -d /tmp/cpyprof-fuzz.XXXXXX)
    CLEAN=$WORK
fi
trap '[ -n "$CLEAN" ] && rm -rf "$CLEAN"' EXIT

# UBSan is built recoverable; halt on anything not in ubsan.supp.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/tests/fuzz/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

JOBS=${FUZZ_JOBS:-1}
FORK=
[ "$JOBS" -gt 1 ] && FORK="-fork=$JOBS"
before=$(ls build-fuzz/artifacts | wc -l)
set +e
build-fuzz/fuzz_reader $FORK -max_total_time="$SECONDS_TO_RUN" -timeout="${FUZZ_TIMEOUT:-10}" \
    -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1 \
    -artifact_prefix=build-fuzz/artifacts/ ${FUZZ_ARGS:-} "$WORK" "$SEEDS"
rc=$?
set -e
after=$(ls build-fuzz/artifacts | wc -l)
# With -fork and -ignore_*, libFuzzer exits 0 but still saves reproducers.
[ $rc -eq 0 ] && [ "$after" -gt "$before" ] && rc=1
if [ $rc -ne 0 ]; then
    echo "run.sh: fuzz_reader failed (exit $rc); see build-fuzz/artifacts/" >&2
fi
exit $rc
