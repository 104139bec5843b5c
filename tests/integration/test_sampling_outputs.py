"""Outputs of a sampled profile (--mode sample): speedscope JSON checked
against the speedscope file format, folded stacks and the SVG flamegraph in
sample counts, `report` with self%/total% per function, per line (--lines)
and per thread (--threads), and `report --json` with samples_self /
samples_total. Workloads are loop counts, not time."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import CLI, describe, line_of, parse_folded, run, run_record, write_prog

SCHEMA = Path(__file__).parent / "data" / "speedscope_sampled.schema.json"

PROG = """
import threading

def hot():
    s = 0
    for i in range(N):
        s += (i * i) % 7 + (i << 3) % 5 - (i ^ 9) // 3   # HOT LINE
    return s

def worker_body():
    s = 0
    for i in range(N):  # long enough to be sampled under load
        s += i
    return s

N = 1_500_000
t = threading.Thread(target=worker_body, name="worker-7")
t.start()
hot()
t.join()
"""


@pytest.fixture
def sampled(py, tmp_path):
    """A sampled profile of PROG (1 kHz wall clock: both threads sampled)."""
    prog = write_prog(tmp_path, PROG)
    p, prof = run_record(py, [prog], tmp_path,
                         opts=["--mode", "sample", "--clock", "wall", "--rate", "1000"])
    assert p.returncode == 0, describe(p)
    return prog, prof.path


def cli_ok(*args):
    p = run([CLI, *args])
    assert p.returncode == 0, describe(p)
    return p.stdout.decode()


def report_json(out, *extra):
    return json.loads(cli_ok("report", out, "--json", *extra))


def check_speedscope_structure(doc):
    """The cross-field rules of the format, and (without jsonschema) the
    schema's own rules, checked by hand."""
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert isinstance(frames, list)
    for f in frames:
        assert isinstance(f["name"], str)
        assert isinstance(f.get("file", ""), str)
        assert isinstance(f.get("line", 0), int) and f.get("line", 0) >= 0
    for prof in doc["profiles"]:
        for key in ("type", "name", "unit", "startValue", "endValue", "samples", "weights"):
            assert key in prof, key
        assert prof["type"] == "sampled"
        assert isinstance(prof["name"], str)
        assert len(prof["samples"]) == len(prof["weights"])
        for stack in prof["samples"]:
            assert all(isinstance(i, int) and 0 <= i < len(frames) for i in stack), stack
        assert all(isinstance(w, int) and w >= 0 for w in prof["weights"])
        assert prof["endValue"] - prof["startValue"] == sum(prof["weights"])


def test_speedscope_matches_the_file_format(sampled, tmp_path):
    prog, out = sampled
    ss = tmp_path / "s.speedscope.json"
    cli_ok("convert", out, "--to", "speedscope", "-o", ss)
    doc = json.loads(ss.read_text())
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        schema = json.loads(SCHEMA.read_text())
        jsonschema.validate(doc, schema)
        # the schema has teeth: a wrong profile type or unit is refused
        bad = json.loads(json.dumps(doc))
        bad["profiles"][0]["type"] = "evented"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        bad = json.loads(json.dumps(doc))
        bad["profiles"][0]["unit"] = "samples"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    check_speedscope_structure(doc)

    rep = report_json(out)
    # sample counts, one profile per thread, named by the thread's name
    assert {p["unit"] for p in doc["profiles"]} == {"none"}
    assert len(doc["profiles"]) == len(rep["threads"]) == 2
    names = [p["name"] for p in doc["profiles"]]
    assert names[0].startswith("MainThread"), names
    assert names[1].startswith("worker-7"), names
    assert sum(sum(p["weights"]) for p in doc["profiles"]) == rep["samples"]
    frames = doc["shared"]["frames"]
    main = doc["profiles"][0]
    hot = [w for s, w in zip(main["samples"], main["weights"])
           if s and frames[s[-1]]["name"] == "hot"]
    assert sum(hot) > 0.5 * sum(main["weights"]), (sum(hot), sum(main["weights"]))


def test_folded_and_flame_use_sample_counts(sampled, tmp_path):
    prog, out = sampled
    rep = report_json(out)
    stacks = parse_folded(cli_ok("convert", out, "--to", "folded", "-o", "-"))
    assert sum(v for _, v in stacks) == rep["samples"] > 0
    svg = tmp_path / "s.svg"
    cli_ok("flame", out, "-o", svg)
    text = svg.read_text()
    ET.fromstring(text)  # well-formed
    assert "samples" in text and "sample (wall clock, 1000 Hz)" in text


def test_report_self_and_total_percent(sampled):
    prog, out = sampled
    text = cli_ok("report", out)
    assert "self%" in text and "total%" in text and "samples:" in text, text
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].endswith("%") and parts[0] != "self%":
            # the program's own <module>, not those of what it imports
            if parts[4] == "<module>" and str(prog) not in line:
                continue
            rows[parts[4]] = (float(parts[0][:-1]), float(parts[1][:-1]))
    assert rows["hot"][0] >= 50.0, text
    assert rows["<module>"][0] < 5.0 and rows["<module>"][1] >= rows["hot"][1], text


def test_report_lines_shows_the_hot_line(sampled):
    prog, out = sampled
    hot_line = line_of(prog, "# HOT LINE")
    text = cli_ok("report", out, "--lines", "-n", "0")
    assert "lines:" in text, text
    table = text.split("lines:", 1)[1].splitlines()[2:]
    hot_rows = [l.split() for l in table if l.split()[5:6] == ["hot"]]
    assert hot_rows, text
    # sorted by self: the first row of `hot` is its hottest line
    assert int(hot_rows[0][4]) == hot_line, text
    hot_self = sum(int(r[2]) for r in hot_rows)
    assert int(hot_rows[0][2]) >= 0.5 * hot_self, text


def test_report_json_sample_fields(sampled):
    prog, out = sampled
    rep = report_json(out, "--lines", "--threads")
    assert rep["schema"] == "cpyprof.report/1"
    assert rep["meta"]["mode"] == "sample"
    # by name; the program's own <module>, not those of what it imports
    funcs = {f["name"]: f for f in rep["functions"]
             if f["name"] != "<module>" or f["file"] == str(prog)}
    for f in rep["functions"]:
        assert f["calls"] == 0
        assert 0 <= f["samples_self"] <= f["samples_total"] <= rep["samples"]
        assert f["self_ns"] == f["samples_self"] * 1_000_000  # 1 kHz: 1 ms per sample
    assert sum(f["samples_self"] for f in rep["functions"]) == rep["samples"]
    assert funcs["<module>"]["samples_total"] >= funcs["hot"]["samples_total"]
    hot_line = line_of(prog, "# HOT LINE")
    lines = [l for l in rep["lines"] if l["name"] == "hot"]
    assert max(lines, key=lambda l: l["samples_self"])["line"] == hot_line
    assert all(l["first_line"] == funcs["hot"]["line"] for l in lines)
    assert sum(l["samples_self"] for l in rep["lines"]) == rep["samples"]
    # --threads: each thread's own functions; the worker's body is in its own
    by_name = {t["name"]: t for t in rep["threads"]}
    wnames = {f["name"] for f in by_name["worker-7"]["functions"]}
    mnames = {f["name"] for f in by_name["MainThread"]["functions"]}
    assert "worker_body" in wnames and "hot" not in wnames
    assert "hot" in mnames and "worker_body" not in mnames
    assert all("lines" in t for t in rep["threads"])


def test_report_threads_text(sampled):
    prog, out = sampled
    text = cli_ok("report", out, "--threads", "--lines")
    assert "thread 0: MainThread" in text and ": worker-7 (native tid" in text, text
    worker = text.split(": worker-7 (native tid", 1)[1]
    assert "worker_body" in worker and " hot (" not in worker, text


def test_lines_refused_for_a_trace_profile(py, tmp_path):
    prog = write_prog(tmp_path, "def f():\n    return 1\nf()\n")
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    r = run([CLI, "report", prof.path, "--lines"])
    assert r.returncode != 0
    assert b"--lines needs a sampled profile" in r.stderr, describe(r)


def test_help_texts():
    rep = cli_ok("report", "--help")
    assert "--lines" in rep and "line number" in rep, rep
    rec = cli_ok("record", "--help")
    assert "kernel" in rec and "tick" in rec and "10000" in rec, rec
