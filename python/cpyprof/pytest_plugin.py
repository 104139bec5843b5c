"""cpyprof's pytest plugin: per-test budgets of exact counters, and baselines
a repository can commit.

Load it with ``pytest -p cpyprof.pytest_plugin`` (an installed cpyprof also
registers it through the ``pytest11`` entry point; it does nothing for a test
without the marker unless --cpyprof-save or --cpyprof-compare is given).

Budgets, per test::

    @pytest.mark.cpyprof(max_calls={"mymod.parse": 100, "len": 1000},
                         max_alloc_bytes=1_000_000, max_gil_wait=0.5,
                         max_instructions=50_000_000)
    def test_parse():
        ...

- ``max_calls``: {function: most calls}. A key matches a function by its
  qualified name ("parse", "Parser.feed"), or by "module.qualname" or any
  dotted tail of it ("mymod.parse", "pkg.mymod.parse", "builtins.len"), or as
  an fnmatch pattern ("mymod.*"); the calls of all functions a key matches
  are added up.
- ``max_alloc_bytes`` / ``max_alloc_count``: the bytes / number of
  allocations made during the test (an int), or {function: limit} per
  function. Profiles the test with ``alloc="on"``.
- ``max_gil_wait``: seconds all threads waited for the GIL during the test
  (a float), or {function: seconds}. Profiles with ``gil="exact"``.
- ``max_instructions``: user-space instructions the test's thread retired
  (a hardware counter: the whole test, not per function). Where the machine
  offers no counter (many virtual machines) the budget is not checked and
  the test gets a warning saying why; the other budgets still apply.

The test body is profiled (from just before the test function to just
after; fixtures are not), every thread. A budget exceeded fails the test
with the functions and numbers, e.g.::

    cpyprof budget exceeded in test_parse:
      max_calls mymod.parse: 1000 calls > 100 (mymod.py:parse)

Baselines: ``--cpyprof-save=NAME`` writes each test's profile to
``.cpyprof/NAME/<test id>.cpyprof`` (``--cpyprof-dir`` moves the
directory; commit it). ``--cpyprof-compare=NAME`` profiles each test again
and runs ``cpyprof diff BASELINE NEW --fail-on RULE...`` on it (rules from
``--cpyprof-fail-on``, default ``calls:+0``): a broken rule fails the test
and names the functions. Call counts are exact, so the comparison cannot
flake as long as the code under test is deterministic; restrict the rule to
your own code (``--cpyprof-fail-on 'calls:+0:mypkg/*'``) when it calls into
caches or the import system whose counts depend on which tests ran before.
A test without a baseline gets a warning, not a failure.
"""
import fnmatch
import json
import os
import re
import subprocess
import tempfile

import pytest

_MARK = "cpyprof"
_BUDGETS = ("max_calls", "max_alloc_bytes", "max_alloc_count", "max_gil_wait",
            "max_instructions")


def pytest_addoption(parser):
    g = parser.getgroup("cpyprof", "cpyprof budgets and baselines")
    g.addoption("--cpyprof-save", metavar="NAME", default=None,
                help="profile every test and save the profiles as baseline NAME "
                     "(.cpyprof/NAME/<test id>.cpyprof)")
    g.addoption("--cpyprof-compare", metavar="NAME", default=None,
                help="profile every test and fail it when `cpyprof diff` against baseline "
                     "NAME breaks a rule (--cpyprof-fail-on)")
    g.addoption("--cpyprof-fail-on", metavar="RULE", action="append", default=None,
                help="a cpyprof diff rule for --cpyprof-compare, repeatable "
                     "(default calls:+0)")
    g.addoption("--cpyprof-dir", metavar="DIR", default=None,
                help="where baselines live (default: .cpyprof under the rootdir)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cpyprof(max_calls=None, max_alloc_bytes=None, max_alloc_count=None, "
        "max_gil_wait=None, max_instructions=None): profile the test with cpyprof and fail it when a budget "
        "is exceeded")
    if config.getoption("--cpyprof-save") and config.getoption("--cpyprof-compare"):
        raise pytest.UsageError("--cpyprof-save and --cpyprof-compare cannot be combined")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _cli():
    from cpyprof._cli import find_executable
    exe = find_executable()
    if exe is None:
        raise RuntimeError("cpyprof: cannot find the `cpyprof` command (pip install . "
                           "installs it; cmake --build build builds build/cpyprof)")
    return exe


def _baseline_dir(config, name):
    base = config.getoption("--cpyprof-dir") or os.path.join(str(config.rootpath), ".cpyprof")
    return os.path.join(base, name)


def _test_file_name(nodeid):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("_") + ".cpyprof"


def _module_of(file_key):
    """"pkg/mod.py" -> "pkg.mod"; "builtins" -> "builtins"."""
    m = file_key[:-3] if file_key.endswith(".py") else file_key
    m = m.replace("/", ".")
    if m.endswith(".__init__"):
        m = m[: -len(".__init__")]
    return m


def _matches(key, name, file_key):
    dotted = _module_of(file_key) + "." + name if file_key else name
    if key == name or dotted == key or dotted.endswith("." + key):
        return True
    if any(c in key for c in "*?["):
        return fnmatch.fnmatchcase(dotted, key) or fnmatch.fnmatchcase(name, key)
    return False


def _summary(path):
    """Per function and metric values of one profile: `cpyprof diff P P
    --format json` lists every function with its calls, times and, when
    recorded, allocations and GIL wait (base == new), and the run's
    instruction count or why there is none."""
    p = subprocess.run([_cli(), "diff", path, path, "--format", "json"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("cpyprof diff failed on %s: %s" % (path, p.stderr.strip()))
    return json.loads(p.stdout)


def _check_budget(rows, metric, budget, what, unit, scale, problems):
    """budget: a number (the sum over all functions) or {key: limit}."""
    mine = [r for r in rows if r["metric"] == metric]
    if isinstance(budget, dict):
        for key, limit in budget.items():
            hit = [r for r in mine if _matches(key, r["function"], r["file"])]
            total = sum(r["base"] for r in hit)
            if total > limit * scale:
                where = ", ".join("%s:%s %g" % (r["file"], r["function"], r["base"] / scale)
                                  for r in sorted(hit, key=lambda r: -r["base"])[:5])
                problems.append("%s %s: %g %s > %g (%s)"
                                % (what, key, total / scale, unit, limit, where))
    else:
        total = sum(r["base"] for r in mine)
        if total > budget * scale:
            top = sorted(mine, key=lambda r: -r["base"])[:5]
            problems.append("%s: %g %s > %g; most in %s"
                            % (what, total / scale, unit, budget,
                               ", ".join("%s:%s %g" % (r["file"], r["function"], r["base"] / scale)
                                         for r in top)))


# --------------------------------------------------------------------------
# the hook
# --------------------------------------------------------------------------

def _new_style_wrappers():
    """pluggy 1.1 (pytest 7.4+) has new-style hook wrappers, which may
    fail the test after it ran; raising from an old-style wrapper's teardown
    works but warns (PluggyTeardownRaisedWarning) from pluggy 1.2 on. Older
    pluggy (Debian bookworm's 1.0) has only the old style."""
    import pluggy
    try:
        return tuple(int(x) for x in pluggy.__version__.split(".")[:2]) >= (1, 1)
    except ValueError:
        return False


if _new_style_wrappers():
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(item):
        """Innermost wrapper of the test call: the profile holds the test
        function and as few framework frames as possible."""
        return (yield from _profiled_call(item, True))
else:
    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_call(item):
        yield from _profiled_call(item, False)


def _profiled_call(item, new_style):
    """The wrapper's body. The test runs at the `yield`: new style, it
    gives the test's result or raises its exception; old style, an outcome
    object holding either."""
    config = item.config
    mark = item.get_closest_marker(_MARK)
    save = config.getoption("--cpyprof-save")
    compare = config.getoption("--cpyprof-compare")
    if mark is None and not save and not compare:
        return (yield)
    import cpyprof

    budgets = dict(mark.kwargs) if mark is not None else {}
    unknown = set(budgets) - set(_BUDGETS)
    if unknown:
        pytest.fail("@pytest.mark.cpyprof: unknown argument(s) %s (expected %s)"
                    % (", ".join(sorted(unknown)), ", ".join(_BUDGETS)), pytrace=False)
    opts = {"quiet": True}
    if "max_alloc_bytes" in budgets or "max_alloc_count" in budgets:
        opts["alloc"] = "on"
    if "max_gil_wait" in budgets:
        opts["gil"] = "exact"
    tmpdir = None
    if save:
        d = _baseline_dir(config, save)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, _test_file_name(item.nodeid))
    else:
        tmpdir = tempfile.mkdtemp(prefix="cpyprof-test-")
        path = os.path.join(tmpdir, "test.cpyprof")
    try:
        cpyprof.start(path, **opts)
        try:
            result = yield  # new style: raises the test's own failure, the report
        finally:
            cpyprof.stop()
        if not new_style:
            if result.excinfo is not None:
                return None  # the test failed by itself: that is the report
            result = None
        problems = []
        if budgets:
            doc = _summary(path)
            rows = doc["rows"]
            if budgets.get("max_calls") is not None:
                if not isinstance(budgets["max_calls"], dict):
                    pytest.fail("@pytest.mark.cpyprof: max_calls must be a dict "
                                "{function: most calls}", pytrace=False)
                _check_budget(rows, "calls", budgets["max_calls"], "max_calls", "calls", 1,
                              problems)
            if budgets.get("max_alloc_bytes") is not None:
                _check_budget(rows, "alloc-bytes", budgets["max_alloc_bytes"],
                              "max_alloc_bytes", "bytes", 1, problems)
            if budgets.get("max_alloc_count") is not None:
                _check_budget(rows, "alloc-count", budgets["max_alloc_count"],
                              "max_alloc_count", "allocations", 1, problems)
            if budgets.get("max_gil_wait") is not None:
                _check_budget(rows, "gil-wait", budgets["max_gil_wait"], "max_gil_wait", "s",
                              1e9, problems)
            if budgets.get("max_instructions") is not None:
                _check_instructions(item, doc["instructions"], budgets["max_instructions"],
                                    problems)
        if problems:
            pytest.fail("cpyprof budget exceeded in %s:\n  %s"
                        % (item.name, "\n  ".join(problems)), pytrace=False)
        if compare:
            _compare(item, config, compare, path)
        return result
    finally:
        if tmpdir:
            for f in os.listdir(tmpdir):
                os.unlink(os.path.join(tmpdir, f))
            os.rmdir(tmpdir)


def _check_instructions(item, instr, budget, problems):
    if isinstance(budget, dict):
        pytest.fail("@pytest.mark.cpyprof: max_instructions is a number (the whole test: "
                    "there are no per-function instruction counts)", pytrace=False)
    if not instr["available"]:
        item.warn(pytest.PytestWarning(
            "cpyprof: max_instructions not checked in %s: %s"
            % (item.name, instr["base_unavailable"])))
        return
    if instr["base"] > budget:
        problems.append("max_instructions: %d instructions > %d (user space, the test's "
                        "thread)" % (instr["base"], budget))


def _compare(item, config, name, path):
    baseline = os.path.join(_baseline_dir(config, name), _test_file_name(item.nodeid))
    if not os.path.exists(baseline):
        item.warn(pytest.PytestWarning(
            "cpyprof: no baseline %s for this test (record it with --cpyprof-save=%s)"
            % (baseline, name)))
        return
    rules = config.getoption("--cpyprof-fail-on") or ["calls:+0"]
    argv = [_cli(), "diff", baseline, path, "--format", "json"]
    for r in rules:
        argv += ["--fail-on", r]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode == 2:
        raise RuntimeError("cpyprof diff: %s" % p.stderr.strip())
    if p.returncode == 1:
        doc = json.loads(p.stdout)
        lines = []
        for r in doc["rows"]:
            if r["verdict"] != "fail":
                continue
            lines.append("%s %s%s: %s -> %s breaks %s"
                         % (r["metric"], r["function"],
                            " (%s)" % r["file"] if r["file"] else "",
                            _fmt(r["base"], r["unit"]), _fmt(r["new"], r["unit"]), r["rule"]))
        pytest.fail("cpyprof regression against baseline '%s' (%s):\n  %s"
                    % (name, os.path.relpath(baseline), "\n  ".join(lines)), pytrace=False)


def _fmt(v, unit):
    if unit == "ns":
        return "%.3gms" % (v / 1e6)
    return "%g" % v
