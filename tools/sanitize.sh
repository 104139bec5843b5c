#!/usr/bin/env bash
# sanitize.sh — the tools and unit tests under ASan + UBSan, and the tools
# under valgrind, on real profiles (docs/testing.md).
#
#   1. build-san/ with -DCPYPROF_SANITIZE=ON: every unit suite (ctest) runs
#      with AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer
#      (halting on the first report);
#   2. real profiles of every kind are recorded with the normal build/
#      (trace, ring transport, sample, --native, --gil, --alloc, several
#      processes with --subprocesses), plus a truncated copy of each;
#   3. build-san/cpyprof reads them: report (text, --json, --threads,
#      --lines), flame (and --gil-*/--alloc-*), convert to every format,
#      gil, and the merge of several files;
#   4. the same commands with build/cpyprof under valgrind memcheck
#      (--leak-check=full, any error fails).
# Exit status 0 when everything is clean.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}
fail=0
note() { printf '==> %s\n' "$*"; }
bad() { printf 'sanitize.sh: FAILED: %s\n' "$*" >&2; fail=1; }

command -v valgrind >/dev/null || { echo "sanitize.sh: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
[ -x build/cpyprof ] && [ -f build/libcpyprof.so ] ||
    { cmake -S . -B build >/dev/null && cmake --build build -j "$JOBS"; } || exit 2

note "building build-san (ASan + UBSan)"
cmake -S . -B build-san -DCPYPROF_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build build-san -j "$JOBS" >/dev/null || { echo "sanitize.sh: build-san failed" >&2; exit 2; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export LSAN_OPTIONS=exitcode=88

note "unit tests under ASan + UBSan (ctest in build-san)"
# The fork-per-test mode of Check and LeakSanitizer do not mix: run the
# suites without forking (CK_FORK=no) so leaks are checked in one process.
# test_symbols is left out: ASan interposes libc functions (qsort resolves to
# __interceptor_qsort in libasan), and that test checks libc's own names.
(cd build-san && CK_FORK=no ctest --output-on-failure -j "$JOBS" -E unit.test_symbols) ||
    bad "ctest under sanitizers"

work=$(mktemp -d /tmp/cpyprof-sanitize.XXXXXX)
trap 'rm -rf "$work"' EXIT
prog=$work/prog.py
cat > "$prog" <<'EOF'
import threading, json, zlib, re
def leaf(n):
    return sum(range(n))
def middle(n):
    return [leaf(i) for i in range(n)]
def worker(k):
    for _ in range(30):
        middle(40)
        json.dumps({"k": [k] * 50})
        zlib.compress(b"x" * 5000)
        re.sub("a+", "b", "caaat" * 20)
ts = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
for t in ts:
    t.start()
worker(9)
for t in ts:
    t.join()
EOF
mpprog=$work/mp.py
cat > "$mpprog" <<'EOF'
import os, subprocess, sys
def child():
    return sum(range(1000))
pid = os.fork()
if pid == 0:
    child()
    os._exit(0)
os.waitpid(pid, 0)
subprocess.run([sys.executable, "-c", "print(sum(range(10)))"], stdout=subprocess.DEVNULL)
EOF

note "recording real profiles with build/cpyprof"
rec() { # NAME OPTIONS...
    local name=$1
    shift
    build/cpyprof record -q -o "$work/$name.cpyprof" "$@" -- /usr/bin/python3 "$prog" ||
        bad "record $name"
}
rec trace
CPYPROF_TRANSPORT=ring rec ring
rec sample --mode sample --clock wall --rate 1000
rec native --mode sample --native
rec gil --gil
build/cpyprof record --help | grep -q -- '--alloc' && rec alloc --alloc
build/cpyprof record -q --subprocesses -o "$work/multi/" -- /usr/bin/python3 "$mpprog" ||
    bad "record --subprocesses"
for f in "$work"/*.cpyprof; do # a truncated copy of each: the reader's other path
    size=$(stat -c %s "$f")
    head -c $((size * 2 / 3)) "$f" > "${f%.cpyprof}.cut.cpyprof"
done

# The commands, each on one profile; "$@" is the tool (possibly under
# valgrind). A command may refuse an input (exit 1 or 2: e.g. a format that
# needs another kind of profile); only a sanitizer's or valgrind's exit code
# (86-88, 99) or a death by a signal counts. Prints one line per finding.
try() { # LABEL COMMAND...
    local label=$1
    shift
    "$@" > /dev/null 2> "$work/err"
    local rc=$?
    if [ "$rc" -ge 86 ] && { [ "$rc" -le 88 ] || [ "$rc" = 99 ] || [ "$rc" -ge 128 ]; }; then
        echo "$label (exit $rc): $(grep -m1 -E 'ERROR|runtime error|definitely|Invalid|uninitialised' "$work/err")"
    fi
}
commands() {
    local f out=$work/out fmt
    local formats
    formats=$("$@" convert --help 2>/dev/null | awk '/^Formats:/{on=1; next} on && /^  [a-z]/{print $1}')
    for f in "$work"/*.cpyprof; do
        try "report $f" "$@" report "$f"
        try "report --json $f" "$@" report "$f" --json
        try "report --threads $f" "$@" report "$f" --threads -n 5
        try "report --lines $f" "$@" report "$f" --lines
        try "flame $f" "$@" flame "$f" -o "$out.svg"
        try "flame --threads $f" "$@" flame "$f" --threads --inverted -o "$out.svg"
        try "gil $f" "$@" gil "$f"
        try "flame --gil-wait $f" "$@" flame --gil-wait "$f" -o "$out.svg"
        for fmt in $formats; do
            try "convert --to $fmt $f" "$@" convert "$f" --to "$fmt" -o "$out.$fmt"
        done
    done
    try "report (merged directory)" "$@" report "$work/multi"
    try "flame (merged directory)" "$@" flame "$work/multi" -o "$out.svg"
    try "convert (two files merged)" "$@" convert "$work/trace.cpyprof" "$work/ring.cpyprof" \
        --to folded -o "$out.folded"
}

note "the tools under ASan + UBSan (build-san/cpyprof)"
failed=$(commands build-san/cpyprof)
[ -z "$failed" ] || bad "under sanitizers: $(echo "$failed" | tr '\n' ';')"

note "the tools under valgrind memcheck (build/cpyprof)"
vg=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect)
failed=$(commands "${vg[@]}" build/cpyprof)
[ -z "$failed" ] || bad "under valgrind: $(echo "$failed" | tr '\n' ';')"

note "the preloaded library under valgrind memcheck (tools/valgrind-preload.sh)"
bash tools/valgrind-preload.sh || bad "libcpyprof.so under valgrind"

if [ "$fail" = 0 ]; then
    note "sanitize.sh: clean"
fi
exit "$fail"
