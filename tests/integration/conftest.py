"""Shared machinery for the integration tests.

The tests run real Python programs under the profiler (through `cpyprof
record`, a raw LD_PRELOAD, the `cpyprof` package or `python -m cpyprof`) and
assert on what `cpyprof report --json` and `cpyprof convert --to folded` say.

Build directory: $CPYPROF_BUILD_DIR, or <repo>/build. It must hold the
`cpyprof` command, `libcpyprof.so` and `python/` (the assembled package).

Pythons: Debian's /usr/bin/python3 (libpython linked statically into the
executable) always, plus every other CPython 3.11 found that links a shared
libpython (python3 / python3.11 on PATH, ~/.pyenv/versions/3.11*/bin/python3).
A test that takes the `py` argument runs once per Python.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("CPYPROF_BUILD_DIR") or REPO / "build").resolve()
CLI = BUILD / "cpyprof"
LIB = BUILD / "libcpyprof.so"
PYPKG = BUILD / "python"

TIMEOUT = 120  # seconds, for every subprocess

DEBIAN_PYTHON = "/usr/bin/python3"


# --------------------------------------------------------------------------
# Pythons
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Python:
    exe: str        # real path of the interpreter
    id: str         # test id: debian-static, shared-3.11.7
    version: str
    shared: bool

    def __str__(self):
        return self.id


_PROBE = (
    "import os, sys, sysconfig\n"
    "print(os.path.realpath(sys.executable))\n"
    "print('%d.%d.%d' % sys.version_info[:3])\n"
    "print(int(bool(sysconfig.get_config_var('Py_ENABLE_SHARED'))))\n"
    "print(int(hasattr(sys, 'gettotalrefcount')))\n"
)


def _probe(candidate):
    try:
        p = subprocess.run([candidate, "-c", _PROBE], capture_output=True,
                           text=True, timeout=30, env=clean_env())
    except (OSError, subprocess.SubprocessError):
        return None
    if p.returncode != 0:
        return None
    lines = p.stdout.split()
    if len(lines) != 4:
        return None
    exe, version, shared, debug = lines
    return exe, version, shared == "1", debug == "1"


def _discover_pythons():
    found = []
    seen = set()
    deb = _probe(DEBIAN_PYTHON)
    if deb is not None:
        exe, version, shared, _ = deb
        found.append(Python(exe, "debian-static", version, shared))
        seen.add(exe)
    candidates = []
    for name in ("python3", "python3.11"):
        w = shutil.which(name)
        if w:
            candidates.append(w)
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.11*/bin/python3")))
    for c in candidates:
        if os.path.realpath(c) in seen:
            continue
        info = _probe(c)
        if info is None:
            continue
        exe, version, shared, debug = info
        if exe in seen:
            continue
        seen.add(exe)
        if not version.startswith("3.11.") or not shared or debug:
            continue
        found.append(Python(exe, "shared-" + version, version, shared))
    return found


def pytest_generate_tests(metafunc):
    if "py" in metafunc.fixturenames:
        metafunc.parametrize("py", PYTHONS, ids=[p.id for p in PYTHONS])


def pytest_report_header(config):
    return ["cpyprof build dir: %s" % BUILD,
            "pythons: " + ", ".join("%s=%s" % (p.id, p.exe) for p in PYTHONS)]


@pytest.fixture(autouse=True)
def _need_build(request):
    """Fail (not skip) clearly when the build is missing: the suite is
    meaningless without it."""
    missing = [str(p) for p in (CLI, LIB, PYPKG) if not p.exists()]
    if missing:
        pytest.fail("build incomplete, missing: %s (build with `cmake -S . -B build -G Ninja"
                    " && cmake --build build`, or set CPYPROF_BUILD_DIR)" % ", ".join(missing))


# --------------------------------------------------------------------------
# Environment and programs
# --------------------------------------------------------------------------

_DROP_ENV = ("LD_PRELOAD", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT",
             "PYTHONWARNINGS", "PYTHONDEVMODE", "PYTHONTRACEMALLOC", "PYTHONPROFILEIMPORTTIME",
             "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONSAFEPATH", "PYTHONOPTIMIZE",
             "PYTHONVERBOSE", "PYTHONFAULTHANDLER", "PYTHONBREAKPOINT", "PYENV_VERSION")


def clean_env(**extra):
    """os.environ without any CPYPROF_* variable, LD_PRELOAD or PYTHON* knobs
    that change how a program runs, plus `extra` (None values remove)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CPYPROF_") and k not in _DROP_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["LC_ALL"] = "C.UTF-8"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


PYTHONS = _discover_pythons()


def write_prog(directory, source, name="prog.py"):
    path = Path(directory) / name
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path


def line_of(path, needle):
    """1-based number of the first line of `path` containing `needle`."""
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in %s" % (needle, path))


def run(argv, *, env=None, cwd=None, input=None, stdin=None, timeout=TIMEOUT):
    """subprocess.run with bytes capture and a timeout."""
    kw = dict(capture_output=True, timeout=timeout, cwd=cwd, env=env if env is not None else clean_env())
    if stdin is not None:
        kw["stdin"] = stdin
    else:
        kw["input"] = input if input is not None else b""
    return subprocess.run([str(a) for a in argv], **kw)


def describe(p):
    """A readable account of a finished process, for assertion messages."""
    def cut(b):
        s = b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        return s if len(s) < 4000 else s[:2000] + "\n...\n" + s[-2000:]
    return "\n$ %s\nreturncode: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        " ".join(str(a) for a in p.args), p.returncode, cut(p.stdout), cut(p.stderr))


# --------------------------------------------------------------------------
# Reading profiles
# --------------------------------------------------------------------------

def strip_frame(frame):
    """`fib (/x/prog.py:3)` -> `fib`; `len (builtins)` -> `len`."""
    if frame.endswith(")") and " (" in frame:
        return frame.rsplit(" (", 1)[0]
    return frame


def parse_folded(text):
    """Folded text -> list of (frames, value)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, _, value = line.rpartition(" ")
        assert stack, "folded line without a value: %r" % line
        out.append((stack.split(";"), int(value)))
    return out


class Profile:
    """A profile file, read through the `cpyprof` command."""

    def __init__(self, path):
        self.path = Path(path)
        self.report_proc = run([CLI, "report", self.path, "--json"])
        assert self.report_proc.returncode == 0, "report --json failed" + describe(self.report_proc)
        try:
            self.json = json.loads(self.report_proc.stdout)
        except ValueError as e:
            raise AssertionError("report --json is not JSON: %s%s" % (e, describe(self.report_proc)))
        self.folded_proc = run([CLI, "convert", self.path, "--to", "folded", "-o", "-"])
        assert self.folded_proc.returncode == 0, "convert --to folded failed" + describe(self.folded_proc)
        self.folded_text = self.folded_proc.stdout.decode()
        self.folded = parse_folded(self.folded_text)
        self.check_invariants()

    def check_invariants(self):
        """What holds for every profile, whatever the program."""
        j = self.json
        assert j.get("schema") == "cpyprof.report/1", j.get("schema")
        assert isinstance(j.get("truncated"), bool) and isinstance(j.get("dropped"), int), \
            {k: j.get(k) for k in ("truncated", "dropped")}
        for f in j["functions"]:
            assert f["calls"] >= 0 and 0 <= f["self_ns"] <= f["total_ns"], f
        for frames, value in self.folded:
            assert value >= 0 and all(frames), (frames, value)
        ids = [t["id"] for t in j["threads"]]
        assert len(ids) == len(set(ids)), j["threads"]

    # -- functions --
    @property
    def functions(self):
        return self.json["functions"]

    def funcs(self, name, file=None):
        return [f for f in self.functions
                if f["name"] == name and (file is None or f["file"] == str(file))]

    def calls(self, name, file=None):
        """Calls of function `name` (summed over entries, e.g. threads)."""
        return sum(f["calls"] for f in self.funcs(name, file))

    def func(self, name, file=None):
        fs = self.funcs(name, file)
        assert len(fs) == 1, "expected one function %r (file %s), got %r\n%s" % (
            name, file, fs, self.summary())
        return fs[0]

    def names(self):
        return sorted({f["name"] for f in self.functions})

    # -- stacks --
    def stacks(self):
        """Folded stacks with frame details stripped: list of (names, value)."""
        return [([strip_frame(f) for f in frames], v) for frames, v in self.folded]

    def stacks_under(self, name):
        """Set of stack suffixes starting at the first frame called `name`."""
        out = set()
        for names, _ in self.stacks():
            if name in names:
                out.add(tuple(names[names.index(name):]))
        return out

    # -- misc --
    @property
    def threads(self):
        return self.json["threads"]

    @property
    def truncated(self):
        return self.json["truncated"]

    @property
    def dropped(self):
        return self.json["dropped"]

    def summary(self):
        fs = sorted(self.functions, key=lambda f: (-f["calls"], f["name"]))
        lines = ["functions (%d):" % len(fs)]
        for f in fs[:25]:
            lines.append("  %-40s %-30s calls=%s total_ns=%s" % (
                f["name"], "%s:%s" % (os.path.basename(str(f["file"])), f["line"]),
                f["calls"], f["total_ns"]))
        lines.append("threads: %r" % self.threads)
        lines.append("folded (first 25 lines):")
        lines += ["  " + (l if len(l) < 300 else l[:150] + " ... " + l[-140:])
                  for l in self.folded_text.splitlines()[:25]]
        return "\n".join(lines)


def load_profile(proc, out):
    out = Path(out)
    assert out.exists(), "no profile written at %s%s" % (out, describe(proc))
    return Profile(out)


# --------------------------------------------------------------------------
# Running under the profiler
# --------------------------------------------------------------------------

def run_record(py, script_argv, tmp_path, *, opts=(), out=None, env=None, cwd=None,
               input=None, stdin=None, expect_profile=True, quiet=True):
    """`cpyprof record -o OUT [--quiet] [opts] -- PY script_argv...`. With
    --quiet the command adds nothing to the program's output."""
    out = Path(out or Path(tmp_path) / "record.cpyprof")
    q = ["--quiet"] if quiet else []
    p = run([CLI, "record", "-o", out, *q, *opts, "--", py.exe, *script_argv],
            env=env or clean_env(), cwd=cwd or tmp_path, input=input, stdin=stdin)
    return p, (load_profile(p, out) if expect_profile else None)


# The environment that selects each way of running the preloaded library,
# for tests that repeat one program in every mode (a test picks the
# modes it needs: modes_env("trace", "gil")).
MODE_ENV = {
    "trace": {},
    "ring": {"CPYPROF_TRANSPORT": "ring"},
    "sample": {"CPYPROF_MODE": "sample"},
    "timeline": {"CPYPROF_MODE": "timeline"},
    "gil": {"CPYPROF_GIL": "exact"},
    "alloc": {"CPYPROF_ALLOC": "on"},
}


def modes_env(*names):
    """{mode: its environment} for the modes named (all when none)."""
    return {n: dict(MODE_ENV[n]) for n in (names or MODE_ENV)}


def preload_env(out, **extra):
    return clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out, **extra)


def run_preload(py, py_argv, tmp_path, *, out=None, env_extra=None, cwd=None, input=None,
                stdin=None, expect_profile=True):
    """`LD_PRELOAD=libcpyprof.so CPYPROF_OUTPUT=OUT PY py_argv...`."""
    out = Path(out or Path(tmp_path) / "preload.cpyprof")
    env = preload_env(out, **(env_extra or {}))
    p = run([py.exe, *py_argv], env=env, cwd=cwd or tmp_path, input=input, stdin=stdin)
    return p, (load_profile(p, out) if expect_profile else None)


def run_beside_plain(py, src, tmp_path, env_extra):
    """Runs the program `src` without the profiler, then preloaded with
    `env_extra` (e.g. MODE_ENV[mode]); both must exit 0 with the same
    stdout. Returns (program path, profiled run, plain run, its Profile)."""
    prog = write_prog(tmp_path, src)
    plain = run_plain(py, [prog], tmp_path)
    assert plain.returncode == 0, describe(plain)
    out = Path(tmp_path) / "p.cpyprof"
    p = run([py.exe, prog], env=preload_env(out, **env_extra), cwd=tmp_path)
    assert p.returncode == 0, describe(p)
    assert p.stdout == plain.stdout, "with cpyprof:%s\nwithout:%s" % (describe(p),
                                                                      describe(plain))
    return prog, p, plain, Profile(out)


def run_import(py, py_argv, out, tmp_path, *, env_extra=None, cwd=None, input=None,
               expect_profile=True):
    """A program that uses the `cpyprof` package itself (PYTHONPATH=build/python);
    `out` is where the program writes its profile."""
    env = clean_env(PYTHONPATH=PYPKG, **(env_extra or {}))
    p = run([py.exe, *py_argv], env=env, cwd=cwd or tmp_path, input=input)
    return p, (load_profile(p, out) if expect_profile else None)


def run_module(py, args, tmp_path, *, out=None, cwd=None, input=None, expect_profile=True):
    """`PY -m cpyprof record -o OUT args...`."""
    out = Path(out or Path(tmp_path) / "module.cpyprof")
    env = clean_env(PYTHONPATH=PYPKG)
    p = run([py.exe, "-m", "cpyprof", "record", "-o", out, *args], env=env,
            cwd=cwd or tmp_path, input=input)
    return p, (load_profile(p, out) if expect_profile else None)


def run_plain(py, py_argv, tmp_path, *, cwd=None, input=None, stdin=None, env_extra=None):
    """The same program without any profiler, as the reference."""
    return run([py.exe, *py_argv], env=clean_env(**(env_extra or {})), cwd=cwd or tmp_path,
               input=input, stdin=stdin)


def frame_file(frame):
    """`fib (/x/prog.py:3)` -> `/x/prog.py`; `len (builtins)` -> `builtins`."""
    if frame.endswith(")") and " (" in frame:
        detail = frame.rsplit(" (", 1)[1][:-1]
        head, sep, tail = detail.rpartition(":")
        return head if sep and tail.isdigit() else detail
    return ""


def root_ok(frames, prog):
    """A folded stack (raw frames) starts at a root: `<module>`, a thread's
    entry frame, or code the interpreter itself runs from C (importlib at
    start-up, threading._shutdown at exit, ...). A function of the program
    other than its `<module>` is never a root: finding one there means a
    frame was lost (an orphan)."""
    first = frames[0]
    name = strip_frame(first)
    if name == "<module>" or name.startswith("Thread._bootstrap"):
        return True
    return frame_file(first) != str(prog)
