"""`pip install .` into a fresh venv of Debian's Python, then the installed
pieces: the `cpyprof` command, the package, and a record/report round trip
that finds the installed libcpyprof.so on its own.

Slow (pip builds the C code with CMake and fetches scikit-build-core from
PyPI): CPYPROF_SKIP_INSTALL_TEST=1 skips it.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, clean_env, describe

DEBIAN_PYTHON = "/usr/bin/python3"
PIP_TIMEOUT = 1800  # seconds: a CMake build of the whole project, plus downloads
RUN_TIMEOUT = 120

pytestmark = pytest.mark.skipif(
    os.environ.get("CPYPROF_SKIP_INSTALL_TEST", "") not in ("", "0"),
    reason="CPYPROF_SKIP_INSTALL_TEST is set")


def _venv_missing_reason():
    """Why `python3 -m venv` cannot work here, or None. Debian splits venv's
    pip bootstrap (ensurepip) into the python3-venv package."""
    if not os.path.exists(DEBIAN_PYTHON):
        return "%s does not exist" % DEBIAN_PYTHON
    p = subprocess.run([DEBIAN_PYTHON, "-c", "import ensurepip, venv"], capture_output=True,
                       timeout=RUN_TIMEOUT, env=clean_env())
    if p.returncode != 0:
        return "python3-venv is not installed (apt-get install python3-venv)"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv of Debian's Python with cpyprof pip-installed: its bin/ dir."""
    reason = _venv_missing_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("install")
    env_dir = base / "venv"
    # clean_env drops CPYPROF_*, LD_PRELOAD and PYTHON* knobs of the test run.
    # pip builds in a temporary directory (scikit-build-core), never in the
    # repository's build/, so a stale build tree cannot leak into the wheel.
    env = clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    p = subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(env_dir)], capture_output=True,
                       timeout=RUN_TIMEOUT, env=env)
    assert p.returncode == 0, describe(p)
    bin_dir = env_dir / "bin"
    try:
        p = subprocess.run([str(bin_dir / "pip"), "install", str(REPO)], capture_output=True,
                           timeout=PIP_TIMEOUT, env=env, cwd=base)
    except subprocess.TimeoutExpired:
        pytest.fail("pip install took more than %d s" % PIP_TIMEOUT)
    assert p.returncode == 0, describe(p)
    return bin_dir


def run(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, timeout=RUN_TIMEOUT,
                          env=clean_env(), **kw)


def test_command_version(installed):
    p = run([installed / "cpyprof", "--version"])
    assert p.returncode == 0, describe(p)
    assert p.stdout.decode().startswith("cpyprof "), describe(p)


def test_package_imports_from_site_packages(installed, tmp_path):
    p = run([installed / "python", "-c",
             "import os, cpyprof\n"
             "print(cpyprof.__version__)\n"
             "print(os.path.dirname(cpyprof.__file__))\n"
             "print(cpyprof.library_path())\n"], cwd=tmp_path)
    assert p.returncode == 0, describe(p)
    version, pkg_dir, lib = p.stdout.decode().splitlines()
    assert "site-packages" in pkg_dir, pkg_dir
    assert lib == os.path.join(pkg_dir, "libcpyprof.so")
    assert os.path.isfile(lib)
    v = run([installed / "cpyprof", "--version"])
    assert v.stdout.decode().split()[1] == version, describe(v)


def test_record_and_report_roundtrip(installed, tmp_path):
    out = tmp_path / "installed.cpyprof"
    code = ("def marker(i):\n"
            "    return i * 2\n"
            "print(sum(marker(i) for i in range(7)))\n")
    p = run([installed / "cpyprof", "record", "-q", "-o", out, "--",
             installed / "python", "-c", code], cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == b"42\n", describe(p)
    assert p.stderr == b"", describe(p)
    r = run([installed / "cpyprof", "report", out, "--json"])
    assert r.returncode == 0, describe(r)
    rep = json.loads(r.stdout)
    assert rep["schema"] == "cpyprof.report/1"
    assert not rep["truncated"]
    calls = {f["name"]: f["calls"] for f in rep["functions"] if f["file"] == "<string>"}
    assert calls.get("marker") == 7, rep["functions"]


def test_python_m_cpyprof_installed(installed, tmp_path):
    """`python -m cpyprof record` from the venv, and `report` forwarded to
    the venv's own `cpyprof` command (not found on PATH here)."""
    out = tmp_path / "module.cpyprof"
    p = run([installed / "python", "-m", "cpyprof", "record", "-q", "-o", out,
             "-c", "print(sorted([3, 1, 2]))"], cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == b"[1, 2, 3]\n", describe(p)
    r = run([installed / "python", "-m", "cpyprof", "report", out, "--json"], cwd=tmp_path)
    assert r.returncode == 0, describe(r)
    names = {f["name"] for f in json.loads(r.stdout)["functions"]}
    assert "sorted" in names, names


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
