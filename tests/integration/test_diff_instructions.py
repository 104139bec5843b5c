"""`cpyprof diff` and hardware instruction counts (META `instructions`).

These virtual machines have no hardware counters, so the profiles recorded
here carry `instructions_unavailable`: that path is tested for real. The
comparison itself is tested on copies of real profiles whose META is
rewritten to carry counts (profile_meta.with_meta)."""
import json
import xml.etree.ElementTree as ET

import pytest

from conftest import CLI, PYTHONS, describe, run, run_record, write_prog
from profile_meta import with_meta

PROG = """
def f():
    return sum(range(100))

for _ in range(50):
    f()
print("ok")
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    d = tmp_path_factory.mktemp("instr")
    prog = write_prog(d, PROG)
    p, prof = run_record(PYTHONS[0], [prog], d, out=d / "real.cpyprof")
    assert p.returncode == 0 and p.stdout == b"ok\n", describe(p)
    return d, d / "real.cpyprof", prof.json["meta"]


def diff(*args):
    return run([CLI, "diff", *[str(a) for a in args]])


def crafted(d, name, count):
    return with_meta(d / "real.cpyprof", d / name, drop=("instructions_unavailable",),
                     instructions=str(count))


def test_counts_compared_in_every_format(recorded):
    d, _, _ = recorded
    base = [crafted(d, "b%d.cpyprof" % i, 10_000_000 + i) for i in range(3)]
    new = [crafted(d, "n%d.cpyprof" % i, 10_500_000 + i) for i in range(3)]
    sides = ["--base", *base, "--new", *new]

    p = diff(*sides, "--fail-on", "instructions:+2%", "--fail-on", "calls:+0")
    out = p.stdout.decode()
    assert p.returncode == 1, describe(p)
    assert "instructions: 10000001 -> 10500001 (+5.0%; user space, whole run)\n" in out, out
    assert ("FAIL instructions (program): 10000001 -> 10500001 (+5.0%) breaks "
            "instructions:+2%") in out, out
    assert "REGRESSIONS (1):" in out, out  # the same program: calls unchanged
    assert "not available" not in out, out

    p = diff(*sides, "--fail-on", "instructions:+2%", "--format", "markdown")
    md = p.stdout.decode()
    assert p.returncode == 1, describe(p)
    assert "Instructions (user space, whole run): 10000001 → 10500001 (+5.0%)" in md, md
    assert ("| :x: | `(program)` | instructions | 10000001 | 10500001 | +5.0% | - | "
            "`instructions:+2%` |") in md, md

    p = diff(*sides, "--fail-on", "instructions:+10%", "--format", "json")
    assert p.returncode == 0, describe(p)
    doc = json.loads(p.stdout)
    assert doc["instructions"] == {"available": True, "base": 10000001, "new": 10500001,
                                   "change": pytest.approx(0.05, rel=1e-4),
                                   "verdict": "ok", "rule": "instructions:+10%"}, doc
    rows = [r for r in doc["rows"] if r["metric"] == "instructions"]
    assert len(rows) == 1 and rows[0]["key"] == "(program)", rows
    assert doc["notes"] == [], doc["notes"]

    p = diff(*sides, "--fail-on", "instructions:+2%", "--format", "junit")
    assert p.returncode == 1, describe(p)
    suite = ET.fromstring(p.stdout).find("testsuite")
    props = {q.get("name"): q.get("value") for q in suite.find("properties")}
    assert props == {"instructions.base": "10000001", "instructions.new": "10500001",
                     "instructions.change": "+5.0%"}, props
    fail = suite.find("testcase").find("failure")
    assert fail.get("message") == "the whole run broke instructions:+2%"
    assert "instructions (program): 10000001 -> 10500001 (+5.0%)" in fail.text


def test_unavailable_for_real(recorded):
    """The profile recorded on this machine: whatever the counter said is
    what diff reports, and an instructions rule never fails for lack of data."""
    d, real, meta = recorded
    if "instructions" in meta:
        pytest.skip("this machine has hardware counters (instructions=%s)" % meta["instructions"])
    why = meta["instructions_unavailable"]
    assert why.startswith("perf_event_open(instructions): "), why

    p = diff(real, real, "--fail-on", "instructions:+0")
    out = p.stdout.decode()
    assert p.returncode == 0, describe(p)
    line = "note: instructions: not available in BASE or NEW (%s): instruction rules " \
           "are not checked\n" % why
    assert line in out, out
    assert "FAIL" not in out

    # one side counted, the other did not: which side, and why
    other = crafted(d, "counted.cpyprof", 5_000_000)
    p = diff(other, real, "--format", "json")
    assert p.returncode == 0, describe(p)
    doc = json.loads(p.stdout)
    assert doc["instructions"] == {"available": False, "base_unavailable": None,
                                   "new_unavailable": why}, doc["instructions"]
    assert "instructions: not available in NEW (%s)" % why in doc["notes"], doc["notes"]
    assert not [r for r in doc["rows"] if r["metric"] == "instructions"]

    p = diff(real, other, "--format", "markdown")
    assert "> instructions: not available in BASE (%s)\n" % why in p.stdout.decode()

    p = diff(real, other, "--format", "junit")
    suite = ET.fromstring(p.stdout).find("testsuite")
    props = {q.get("name"): q.get("value") for q in suite.find("properties")}
    assert props == {"instructions.base.unavailable": why}, props


def test_instruction_rule_takes_no_pattern(recorded):
    _, real, _ = recorded
    p = diff(real, real, "--fail-on", "instructions:+2%:mypkg/*")
    assert p.returncode == 2, describe(p)
    assert ("instructions are counted for the whole run, not per function: drop "
            "':mypkg/*'") in p.stderr.decode(), describe(p)
