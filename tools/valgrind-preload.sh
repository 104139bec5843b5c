#!/usr/bin/env bash
# valgrind-preload.sh — Python with the preloaded build/libcpyprof.so under
# valgrind memcheck, in each mode (trace, ring transport, sample, --gil,
# --alloc, timeline). Part of tools/sanitize.sh; runs alone in about a
# minute. Exit status 0 when every run is clean and its profile readable.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
fail=0
note() { printf '==> %s\n' "$*"; }
bad() { printf 'valgrind-preload.sh: FAILED: %s\n' "$*" >&2; fail=1; }
command -v valgrind >/dev/null || { echo "valgrind-preload.sh: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
[ -f build/libcpyprof.so ] && [ -x build/cpyprof ] || { echo "valgrind-preload.sh: build/ first (tools/setup.sh)" >&2; exit 2; }
work=$(mktemp -d /tmp/cpyprof-vgpreload.XXXXXX)
trap 'rm -rf "$work"' EXIT

# PYTHONMALLOC=malloc: pymalloc's arenas would hide (and fake) errors; every
# object goes through malloc so memcheck sees it. Definite leaks and every
# memory error fail; tools/valgrind-preload.supp holds the one deliberate
# leak. A small threaded workload: valgrind runs Python ~50 times slower.
cat > "$work/vgprog.py" <<'PYEOF'
import threading
def leaf(n):
    return sum(range(n))
def middle(n):
    return [leaf(i) for i in range(n)]
def worker():
    for _ in range(20):
        middle(30)
ts = [threading.Thread(target=worker) for _ in range(3)]
for t in ts: t.start()
worker()
for t in ts: t.join()
print("done")
PYEOF
for mode in trace ring sample gil alloc timeline; do
    case $mode in
        trace) extra=(CPYPROF_MODE=trace) ;;
        ring) extra=(CPYPROF_TRANSPORT=ring) ;;
        sample) extra=(CPYPROF_MODE=sample) ;;
        gil) extra=(CPYPROF_GIL=1) ;;
        alloc) extra=(CPYPROF_ALLOC=1) ;;
        timeline) extra=(CPYPROF_MODE=timeline) ;;
    esac
    out=$(env PYTHONMALLOC=malloc CPYPROF_OUTPUT="$work/vg-$mode.cpyprof" "${extra[@]}" \
        LD_PRELOAD="$ROOT/build/libcpyprof.so" valgrind -q --error-exitcode=99 \
        --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
        --suppressions="$ROOT/tools/valgrind-preload.supp" /usr/bin/python3 "$work/vgprog.py" 2>&1)
    rc=$?
    if [ "$rc" != 0 ] || [ "$(printf '%s\n' "$out" | tail -1)" != done ] ||
        ! build/cpyprof report "$work/vg-$mode.cpyprof" >/dev/null; then
        printf '%s\n' "$out" | tail -40 >&2
        bad "libcpyprof.so under valgrind, mode $mode (exit $rc)"
    else
        note "  $mode: clean"
    fi
done

[ "$fail" = 0 ] && note "valgrind-preload.sh: clean"
exit "$fail"
