"""`cpyprof diff` on real profiles: regressions flagged by name, exit codes,
the four output formats, and profiles taken in different directories."""
import json
import xml.etree.ElementTree as ET

import pytest

from conftest import CLI, PYTHONS, describe, run, run_record, write_prog

PROG = """
import sys

def helper():
    return sum(range(200))

def slow(k):
    # k x the work: a deterministic slowdown
    t = 0
    for _ in range(k):
        for i in range(20000):
            t += i
    return t

def main(n, k):
    for _ in range(n):
        helper()
    slow(k)

main(int(sys.argv[1]), int(sys.argv[2]))
print("done")
"""


def record(py, tmp_path, sub, n, k, name="run.cpyprof"):
    d = tmp_path / sub
    d.mkdir(exist_ok=True)
    prog = write_prog(d, PROG)
    out = d / name
    p, _ = run_record(py, [prog, str(n), str(k)], d, out=out, expect_profile=False)
    assert p.returncode == 0 and p.stdout == b"done\n", describe(p)
    return out


def diff(*args):
    return run([CLI, "diff", *args])


def test_more_calls_flagged_by_name_across_directories(py, tmp_path):
    # the same program in two checkouts: functions match by prog.py:NAME
    base = record(py, tmp_path, "checkout-a", 10, 1)
    new = record(py, tmp_path, "checkout-b", 100, 1)
    p = diff(base, new, "--fail-on", "calls:+0")
    out = p.stdout.decode()
    assert p.returncode == 1, describe(p)
    assert "FAIL calls       helper (prog.py): 10 -> 100 (+900.0%) breaks calls:+0" in out, out
    assert "result: FAIL" in out
    # sum is called once per helper call
    assert "sum (builtins): 10 -> 100" in out, out
    # main, slow, <module>: one call each on both sides, not flagged
    for name in ("main (prog.py)", "slow (prog.py)"):
        assert "FAIL calls       " + name not in out, out
    # with one run per side, time rules are reported, not judged
    p = diff(base, new, "--fail-on", "time:+10%")
    assert p.returncode == 0, describe(p)
    assert "significance cannot be assessed" in p.stdout.decode()


def test_same_profile_passes(tmp_path):
    py = PYTHONS[0]
    a = record(py, tmp_path, "a", 50, 1)
    p = diff(a, a, "--fail-on", "calls:+0", "--fail-on", "time:+0%", "--threshold-only")
    assert p.returncode == 0, describe(p)
    assert "result: OK (every rule holds)" in p.stdout.decode()
    assert "No function changed." in p.stdout.decode()


def test_time_regression_with_repeated_runs(tmp_path):
    """slow() does 20x the work in NEW: 5 runs per side, Mann-Whitney with
    the Holm correction flags it by name; the program against itself (5 vs
    5 other runs) is not flagged."""
    py = PYTHONS[0]
    for i in range(5):
        record(py, tmp_path, "base", 10, 2, "base-%d.cpyprof" % i)
        record(py, tmp_path, "same", 10, 2, "same-%d.cpyprof" % i)
        record(py, tmp_path, "new", 10, 40, "new-%d.cpyprof" % i)
    p = diff("--base", str(tmp_path / "base" / "base-*.cpyprof"),
             "--new", str(tmp_path / "new" / "new-*.cpyprof"),
             "--fail-on", "self:+10%", "--format", "json")
    assert p.returncode == 1, describe(p)
    doc = json.loads(p.stdout)
    assert len(doc["base"]) == 5 and len(doc["new"]) == 5
    failed = [(r["function"], r["metric"]) for r in doc["rows"] if r["verdict"] == "fail"]
    assert failed == [("slow", "self")], failed
    row = [r for r in doc["rows"] if r["verdict"] == "fail"][0]
    assert row["new"] > 10 * row["base"], row
    assert row["p_rule"] <= 0.05 and row["file"] == "prog.py", row

    p = diff("--base", str(tmp_path / "base" / "base-*.cpyprof"),
             "--new", str(tmp_path / "same" / "same-*.cpyprof"),
             "--fail-on", "time:+10%", "--fail-on", "calls:+0")
    assert p.returncode == 0, describe(p)

    # BASE and NEW as two quoted globs: the same sets of runs
    p = diff(str(tmp_path / "base" / "base-*.cpyprof"), str(tmp_path / "new" / "new-*.cpyprof"),
             "--fail-on", "self:+10%", "--format", "json")
    assert p.returncode == 1, describe(p)
    doc = json.loads(p.stdout)
    assert len(doc["base"]) == 5 and len(doc["new"]) == 5, doc["base"]
    assert [(r["function"], r["metric"]) for r in doc["rows"] if r["verdict"] == "fail"] == \
        [("slow", "self")]


def test_formats(tmp_path):
    py = PYTHONS[0]
    base = record(py, tmp_path, "a", 10, 1)
    new = record(py, tmp_path, "b", 30, 1)
    rules = ["--fail-on", "calls:+0:*helper", "--fail-on", "alloc-bytes:+5%"]
    p = diff(base, new, *rules, "--format", "markdown")
    assert p.returncode == 1, describe(p)
    md = p.stdout.decode()
    assert md.startswith("### cpyprof diff: :x: 1 regression\n"), md
    assert "| :x: | `helper (prog.py)` | calls | 10 | 30 | +200.0% | - | `calls:+0:*helper` |" in md

    p = diff(base, new, *rules, "--format", "junit")
    assert p.returncode == 1, describe(p)
    suite = ET.fromstring(p.stdout).find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    fail = cases["calls:+0:*helper"].find("failure")
    assert "helper (prog.py): 10 -> 30" in fail.text, fail.text
    assert cases["alloc-bytes:+5%"].find("failure") is None

    out = tmp_path / "d.json"
    p = diff(base, new, *rules, "--format", "json", "-o", out)
    assert p.returncode == 1 and p.stdout == b"", describe(p)
    doc = json.loads(out.read_text())
    assert doc["schema"] == "cpyprof.diff/1" and doc["failures"] == 1
    # no --alloc in these profiles: no allocation rows
    assert not [r for r in doc["rows"] if r["metric"].startswith("alloc")]


@pytest.mark.parametrize("args, message", [
    (["a"], "missing the NEW profile"),
    (["a", "b", "c"], "expected BASE and NEW, got 3 files"),
    (["--base", "a"], "missing the --new profiles"),
    (["a", "b", "--fail-on", "speed:+1%"], "unknown metric 'speed'"),
    (["a", "b", "--fail-on", "time:10%"], "must start with '+'"),
    (["a", "b", "--format", "html"], "'html' is not a format"),
    (["a", "b", "--confidence", "2"], "--confidence: '2' is not in"),
    (["a", "b", "--bogus"], "unknown option '--bogus'"),
    (["--base", "nothing-*.cpyprof", "--new", "b"], "no profile matches"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    p = run([CLI, "diff", *args], cwd=tmp_path)
    assert p.returncode == 2, describe(p)
    assert message in p.stderr.decode(), describe(p)
    assert p.stdout == b""


def test_unreadable_profiles_exit_2(tmp_path):
    py = PYTHONS[0]
    good = record(py, tmp_path, "a", 1, 1)
    bad = tmp_path / "bad.cpyprof"
    bad.write_bytes(b"not a profile at all")
    for args in ([good, tmp_path / "missing.cpyprof"], [good, bad]):
        p = diff(*args, "--fail-on", "calls:+0")
        assert p.returncode == 2, describe(p)
        err = p.stderr.decode()
        assert err.count("\n") == 1 and str(args[1]) in err, err


def test_flame_diff(tmp_path):
    """flame --diff: widths from NEW, slow() (20x the work) full red with
    both values in its tooltip; helper (same calls) close to grey."""
    py = PYTHONS[0]
    base = record(py, tmp_path, "a", 10, 2)
    new = record(py, tmp_path, "b", 10, 40)
    out = tmp_path / "d.svg"
    p = run([CLI, "flame", "--diff", base, new, "-o", out])
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    svg = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    frames = {}
    for g in svg.iter(ns + "g"):
        title, rect = g.find(ns + "title"), g.find(ns + "rect")
        if title is not None and rect is not None:
            frames[title.text.split("\n")[0]] = (title.text, rect.get("fill"))
    text, fill = frames["slow"]
    assert "\nBASE: " in text and "%)" in text, text
    assert fill == "rgb(225,45,45)", (text, fill)  # 20x slower: full red
    assert "red: slower than BASE" in out.read_text()

    p = run([CLI, "flame", "--diff", base, "-o", out])
    assert p.returncode == 2 and b"--diff takes two profiles" in p.stderr, describe(p)


def test_instruction_counter_detected(py, tmp_path):
    """perf_event_open instructions: a count when the machine has hardware
    counters, else one clear reason in META (these VMs have none)."""
    prog = write_prog(tmp_path, "print(sum(range(100000)))\n")
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"4999950000\n", describe(p)
    meta = prof.json["meta"]
    if "instructions" in meta:
        assert int(meta["instructions"]) > 100000, meta
        assert "instructions_unavailable" not in meta
    else:
        why = meta["instructions_unavailable"]
        assert why.startswith("perf_event_open(instructions): "), why
    # nothing about it on the program's output or the command's stderr
    assert b"perf_event" not in p.stderr


def test_same_program_never_flagged_over_20_comparisons(tmp_path):
    """The issue's bar, on real runs: 12 runs of one program (times noisy:
    this machine is shared), then 20 comparisons of 5 runs against 5 others
    drawn from them (a fixed seed) with a call rule on everything and a time
    rule of +25% (the limit the docs advise: above run-to-run noise). Runs
    of one program are exchangeable, so any flag would be a false one; none
    may occur. The 5-vs-5 test does flag a real 20x slowdown of one
    function (test_time_regression_with_repeated_runs)."""
    import random
    py = PYTHONS[0]
    runs = [record(py, tmp_path, "pool", 10, 4, "run-%02d.cpyprof" % i) for i in range(12)]
    rng = random.Random(20261123)
    flagged, tested = [], 0
    for k in range(20):
        pick = rng.sample(runs, 10)
        p = diff("--base", *pick[:5], "--new", *pick[5:], "--fail-on", "calls:+0",
                 "--fail-on", "time:+25%", "--format", "json")
        assert p.returncode in (0, 1), describe(p)
        doc = json.loads(p.stdout)
        assert len(doc["base"]) == 5 and len(doc["new"]) == 5
        # 5 vs 5 can reach the confidence: a flag was possible
        assert not [n for n in doc["notes"] if "cannot" in n], doc["notes"]
        tested += sum(r["p_rule"] is not None for r in doc["rows"])
        if doc["failures"]:
            flagged.append((k, [(r["function"], r["metric"], r["base"], r["new"], r["p_rule"])
                                for r in doc["rows"] if r["verdict"] == "fail"]))
    assert flagged == [], flagged
    print("20 self-vs-self comparisons: %d time rows above +25%% tested, none flagged" % tested)
