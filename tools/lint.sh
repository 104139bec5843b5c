#!/usr/bin/env bash
# tools/lint.sh — the static checks the project keeps clean:
#   1. clang-format (.clang-format at the root) on every tracked C file;
#   2. cppcheck (warning, performance, portability) on every translation unit
#      of the CMake build, with the compile commands CMake writes.
# Exit status 0 when both are clean, 1 otherwise; the findings on stderr.
#
#   bash tools/lint.sh              # both
#   bash tools/lint.sh --format     # clang-format only
#   bash tools/lint.sh --cppcheck   # cppcheck only
#   bash tools/lint.sh --fix        # rewrite the files clang-format would change
#
# Why cppcheck does not see Python's headers: its preprocessor stops at
# pyconfig.h/pyport.h (#error on values only the compiler defines), and then
# skips the whole file. The compile commands are filtered to leave the
# python3.11 include directories out; the few macros our code needs from
# them to parse (the version check, Py_RETURN_NONE) are defined here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

do_format=1 do_cppcheck=1 fix=0
case "${1:-}" in
"") ;;
--format) do_cppcheck=0 ;;
--cppcheck) do_format=0 ;;
--fix) do_cppcheck=0 fix=1 ;;
-h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "lint.sh: unknown option '$1' (see --help)" >&2
    exit 2
    ;;
esac

status=0
if [ "$do_format" = 1 ]; then
    command -v clang-format >/dev/null || {
        echo "lint.sh: clang-format not found (apt-get install clang-format)" >&2
        exit 2
    }
    mapfile -t files < <(git ls-files '*.c' '*.h')
    if [ "$fix" = 1 ]; then
        clang-format -i "${files[@]}"
        echo "clang-format: ${#files[@]} files formatted"
    elif ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/cpyprof-lint-format.$$; then
        n=$(grep -cE '(warning|error): code should be' /tmp/cpyprof-lint-format.$$ || true)
        { grep -E '(warning|error): code should be' /tmp/cpyprof-lint-format.$$ || true; } |
            cut -d: -f1 | sort | uniq -c >&2
        echo "clang-format: $n places differ (bash tools/lint.sh --fix rewrites them)" >&2
        status=1
    else
        echo "clang-format: ${#files[@]} files clean"
    fi
    rm -f /tmp/cpyprof-lint-format.$$
fi

if [ "$do_cppcheck" = 1 ]; then
    command -v cppcheck >/dev/null || {
        echo "lint.sh: cppcheck not found (apt-get install cppcheck)" >&2
        exit 2
    }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cmake -S "$ROOT" -B "$tmp/build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
    python3 - "$tmp/build/compile_commands.json" "$tmp/cc.json" <<'EOF'
import json, re, sys
cc = json.load(open(sys.argv[1]))
for e in cc:
    e["command"] = re.sub(r"\s-(I|isystem)\s*\S*python3\.11\S*", "", e["command"])
json.dump(cc, open(sys.argv[2], "w"))
EOF
    if cppcheck --quiet --error-exitcode=1 --project="$tmp/cc.json" \
        --enable=warning,performance,portability \
        --suppress=missingIncludeSystem --suppress=missingInclude \
        -D__x86_64__ -D__linux__ -DPY_MAJOR_VERSION=3 -DPY_MINOR_VERSION=11 \
        '-DElfW(type)=Elf64_##type' '-DPy_RETURN_NONE=return Py_None' \
        -j"$(nproc)"; then
        echo "cppcheck: clean ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/cc.json") translation units)"
    else
        echo "cppcheck: findings above" >&2
        status=1
    fi
fi
exit $status
