#!/usr/bin/env bash
# cpython-tests.sh — CPython's own regression tests under the preloaded
# profiler, compared with a run without it (docs/testing.md).
#
# Runs a fixed subset of Debian's libpython3.11-testsuite with
# /usr/bin/python3 -m test, once without the profiler and once per mode,
# then compares the outcome of every test module (passed / failed / skipped /
# ...). Exit status 0 when every mode gives the same outcomes as the
# baseline, 1 when one differs, 2 on a usage or setup error.
set -u

usage() {
    cat <<'EOF'
Usage: tools/cpython-tests.sh [-j N] [--timeout S] [--modes LIST] [--quick | --modules LIST]
                              [--keep DIR]

Runs CPython 3.11's regression tests (Debian package libpython3.11-testsuite)
with /usr/bin/python3 -m test: once without the profiler, then once per mode
with LD_PRELOAD=build/libcpyprof.so and CPYPROF_SUBPROCESSES=1 (the test
workers are children of regrtest: every Python process is profiled), and
compares the outcome of each test module with the baseline.

  -j N           parallel test workers (default 2)
  --timeout S    per-test-module timeout in seconds (default 900)
  --modes LIST   comma-separated, from: trace, sample, gil, alloc
                 (default: trace,sample,gil, and alloc when the library has it)
  --quick        a small subset (CI): 8 modules
  --modules LIST comma-separated test modules instead of the subset (to rerun
                 the ones that differed, e.g. test_subprocess,test_threading)
  --keep DIR     keep the logs and profiles in DIR (default: a temporary
                 directory, removed at the end)
  -h, --help     this help

CPYPROF_LIBRARY overrides the library; CPYPROF_BUILD_DIR the build directory.
EOF
}

here=$(cd "$(dirname "$0")/.." && pwd)
build=${CPYPROF_BUILD_DIR:-$here/build}
lib=${CPYPROF_LIBRARY:-$build/libcpyprof.so}
cli=$build/cpyprof
py=/usr/bin/python3
jobs=2
timeout=900
modes=""
quick=0
only=""
keep=""

while [ $# -gt 0 ]; do
    case "$1" in
        -j) jobs=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --modes) modes=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --modules) only=$2; shift 2 ;;
        --keep) keep=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "cpython-tests.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

# The subset (docs/testing.md says why each group is there).
MODULES=(
    # required by issue 9: threads, processes, signals, profiling hooks
    test_threading test_subprocess test_signal test_multiprocessing_fork test_asyncio
    test_gc test_sys_setprofile test_tracemalloc test_faulthandler test_io
    # processes, fork, exit paths
    test_os test_posix test_fork1 test_wait4 test_atexit test_eintr test_threadsignals
    test_embed test_pty
    # threads and synchronisation
    test_thread test_threading_local test_queue test_sched test_select test_selectors
    # the interpreter's call and frame machinery, which the profile hook sees
    test_sys test_sys_settrace test_generators test_coroutines test_contextlib
    test_contextlib_async test_exceptions test_traceback test_frame test_scope test_with
    test_raise test_descr test_class test_functools test_itertools test_weakref
    test_profile test_cprofile test_deque
    # allocation-heavy code (the allocator wrappers of --alloc)
    test_dict test_list test_set test_re test_json test_pickle test_bytes test_unicode
)
QUICK=(test_sys_setprofile test_threading test_signal test_gc test_atexit test_fork1
       test_generators test_sys_settrace)
[ "$quick" = 1 ] && MODULES=("${QUICK[@]}")
[ -n "$only" ] && IFS=, read -r -a MODULES <<< "$only"

die() { echo "cpython-tests.sh: $*" >&2; exit 2; }
[ -d /usr/lib/python3.11/test ] && [ -f /usr/lib/python3.11/test/test_gc.py ] ||
    die "CPython's test suite is missing: apt-get install libpython3.11-testsuite"
[ -f "$lib" ] || die "no library at $lib (build first: cmake --build build)"
[ -x "$cli" ] || die "no cpyprof at $cli (build first)"

if [ -z "$modes" ]; then
    modes=trace,sample,gil
    "$cli" record --help 2>/dev/null | grep -q -- '--alloc' && modes=$modes,alloc
fi

if [ -n "$keep" ]; then
    work=$keep
    mkdir -p "$work" || die "cannot create $work"
else
    work=$(mktemp -d /tmp/cpyprof-cpython-tests.XXXXXX) || die "mktemp failed"
    trap 'rm -rf "$work"' EXIT
fi

# The environment of every run: minimal and the same, plus the profiler's.
base_env=(env -i PATH=/usr/bin:/bin HOME="$work/home" LANG=C.UTF-8 LC_ALL=C.UTF-8
          TMPDIR="$work/tmp")
mkdir -p "$work/home" "$work/tmp"

run_one() { # NAME [ENV...]
    local name=$1; shift
    local dir=$work/$name
    mkdir -p "$dir/cwd"
    local start=$SECONDS
    ( cd "$dir/cwd" && "${base_env[@]}" "$@" "$py" -m test -j "$jobs" --timeout "$timeout" \
        "${MODULES[@]}" > "$dir/log" 2>&1 )
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - start)) s" | tee -a "$work/times"
}

echo "cpython-tests: ${#MODULES[@]} modules, -j $jobs, modes: baseline $modes; logs in $work"
run_one baseline
IFS=, read -r -a mode_list <<< "$modes"
for m in "${mode_list[@]}"; do
    case "$m" in
        trace) opts=(CPYPROF_MODE=trace) ;;
        sample) opts=(CPYPROF_MODE=sample CPYPROF_RATE=250) ;;
        gil) opts=(CPYPROF_GIL=exact) ;;
        alloc) opts=(CPYPROF_ALLOC=on) ;;
        *) die "unknown mode '$m' (trace, sample, gil, alloc)" ;;
    esac
    mkdir -p "$work/$m/profiles"
    run_one "$m" LD_PRELOAD="$lib" CPYPROF_SUBPROCESSES=1 CPYPROF_QUIET=1 \
        CPYPROF_OUTPUT="$work/$m/profiles/" "${opts[@]}"
done

# Outcomes per module, compared with the baseline; and every profile written
# must be readable (complete or truncated, never corrupt).
"$py" - "$work" "$cli" baseline "${mode_list[@]}" <<'EOF'
import os, re, subprocess, sys
work, cli, names = sys.argv[1], sys.argv[2], sys.argv[3:]
line = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\] (test_\w+) (.*)$")

def outcomes(name):
    res = {}
    with open(os.path.join(work, name, "log"), errors="replace") as f:
        for l in f:
            m = line.search(l.rstrip())
            if m:
                word = m.group(2)
                status = ("passed" if word.startswith("passed") else
                          "skipped" if word.startswith("skipped") else
                          "env changed" if "env changed" in word else
                          "resource denied" if "resource denied" in word else
                          "failed" if word.startswith("failed") else
                          "crashed" if "crashed" in word else
                          "timeout" if "timed out" in word or "timeout" in word else word)
                res[m.group(1)] = status
    return res

base = outcomes("baseline")
bad = 0
print("\n%-28s %s" % ("module", "  ".join("%-10s" % n for n in names)))
results = {n: outcomes(n) for n in names}
for mod in sorted(set().union(*results.values())):
    row = [results[n].get(mod, "missing") for n in names]
    differs = any(r != row[0] for r in row)
    bad += differs
    print("%-28s %s%s" % (mod, "  ".join("%-10s" % r for r in row), "   <-- differs" if differs else ""))
counts = {n: {} for n in names}
for n in names:
    for s in results[n].values():
        counts[n][s] = counts[n].get(s, 0) + 1
print()
for n in names:
    print("%-9s %s" % (n, ", ".join("%d %s" % (v, k) for k, v in sorted(counts[n].items()))))
for n in names[1:]:
    d = os.path.join(work, n, "profiles")
    files = [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []
    corrupt = truncated = empty = 0
    for f in files:
        if os.path.getsize(f) == 0:
            # a process killed between creating its file and writing the
            # header (tests kill children): nothing was kept, and the
            # reader says exactly that; not a corrupt file
            empty += 1
            continue
        p = subprocess.run([cli, "report", f, "--limit", "1"], capture_output=True)
        if p.returncode != 0:
            corrupt += 1
            print("unreadable profile:", f, p.stderr.decode(errors="replace").strip())
        elif b"truncated" in p.stderr:
            truncated += 1
    size = sum(os.path.getsize(f) for f in files)
    print("%-9s %d profiles (%.1f MB), %d truncated, %d empty, %d unreadable" % (
        n, len(files), size / 1e6, truncated, empty, corrupt))
    bad += corrupt > 0
print("\nRESULT: %s" % ("same outcomes in every mode" if not bad else "%d difference(s)" % bad))
sys.exit(1 if bad else 0)
EOF
