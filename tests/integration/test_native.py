"""Sampling with native frames (--native / CPYPROF_NATIVE=1): C functions
appear between the Python frames, under the Python function that called
them (src/native/unwind.c, docs/architecture.md "Native frames")."""
import subprocess
import textwrap

import pytest

from conftest import run_record, run_import, describe, write_prog, clean_env

OPTS = ("--mode", "sample", "--native", "--rate", "1000")


def has_module(py, name):
    p = subprocess.run([py.exe, "-c", "import " + name], env=clean_env(),
                       capture_output=True, timeout=60)
    return p.returncode == 0


def native_under(prof, caller, obj_pred):
    """Samples whose stack has `caller` with, somewhere below it, a frame of
    a native object accepted by obj_pred (the text in the label's
    parentheses)."""
    total = 0
    for frames, v in prof.folded:
        names = [f.rsplit(" (", 1)[0] for f in frames]
        if caller not in names:
            continue
        below = frames[names.index(caller) + 1:]
        if any(f.endswith(")") and obj_pred(f.rsplit(" (", 1)[1][:-1]) for f in below):
            total += v
    return total


ZLIB = """
import os, zlib
data = os.urandom(1 << 20) + bytes(range(256)) * (1 << 14)
def squash():
    n = 0
    for _ in range(25):
        n += len(zlib.compress(data, 9))
    return n
print(squash() > 0)
"""


def test_zlib_frames_under_caller(py, tmp_path):
    prog = write_prog(tmp_path, textwrap.dedent(ZLIB))
    p, prof = run_record(py, [prog], tmp_path, opts=OPTS)
    assert p.returncode == 0, describe(p)
    samples = sum(v for _, v in prof.folded)
    libz = native_under(prof, "squash", lambda o: o.startswith("libz.so"))
    assert samples > 50, prof.summary()
    # compression is nearly all of the run: most samples end inside libz
    assert libz > samples // 2, prof.summary()
    # an exported libz function is named
    names = {f.rsplit(" (", 1)[0] for fr, _ in prof.folded for f in fr}
    assert names & {"deflate", "compress2", "adler32_z", "adler32", "crc32_z"}, prof.summary()
    # the eval loop itself never shows up: it is replaced by Python frames
    assert "_PyEval_EvalFrameDefault" not in names, prof.summary()
    # the outermost frames are native (main / libc start)
    roots = {fr[0].rsplit(" (", 1)[0] for fr, _ in prof.folded}
    assert roots & {"_start", "__libc_start_main", "main", "Py_BytesMain"}, roots


NUMPY = """
import numpy as np
a = np.random.default_rng(1).random((300, 300))
def crunch():
    s = 0.0
    for _ in range(60):
        s += float(np.sort(a, axis=None)[0]) + float((a @ a)[0, 0])
    return s
print(crunch() > 0)
"""


def test_numpy_frames_under_caller(py, tmp_path):
    if not has_module(py, "numpy"):
        pytest.skip("numpy is not installed for %s" % py.exe)
    prog = write_prog(tmp_path, textwrap.dedent(NUMPY))
    p, prof = run_record(py, [prog], tmp_path, opts=OPTS)
    assert p.returncode == 0, describe(p)
    n = native_under(prof, "crunch",
                     lambda o: "_multiarray_umath" in o or "openblas" in o.lower()
                     or o.startswith("libblas") or "numpy" in o)
    assert n > 10, prof.summary()


THREADS = """
import threading, zlib, json, os
data = os.urandom(1 << 16)
def work(k):
    for i in range(300):
        zlib.compress(data)
        json.dumps([i] * 200)
        sum(range(2000))
ts = [threading.Thread(target=work, args=(k,)) for k in range(6)]
for t in ts: t.start()
for t in ts: t.join()
print("ok")
"""


def test_threads_no_crash(py, tmp_path):
    prog = write_prog(tmp_path, textwrap.dedent(THREADS))
    p, prof = run_record(py, [prog], tmp_path,
                         opts=("--mode", "sample", "--native", "--rate", "5000",
                               "--clock", "wall"))
    assert p.returncode == 0, describe(p)
    assert p.stdout.strip().endswith(b"ok"), describe(p)
    # threads started after sampling began get native frames too
    assert native_under(prof, "work", lambda o: True) > 0, prof.summary()


def test_without_native_no_native_frames(py, tmp_path):
    prog = write_prog(tmp_path, textwrap.dedent(ZLIB))
    p, prof = run_record(py, [prog], tmp_path, opts=("--mode", "sample", "--rate", "1000"))
    assert p.returncode == 0, describe(p)
    assert native_under(prof, "squash", lambda o: o.startswith("libz.so")) == 0


EARLY_THREAD = """
import os, sys, threading, zlib
import cpyprof
data = os.urandom(1 << 20) + bytes(range(256)) * (1 << 14)
go = threading.Event()
def squash_early():
    n = 0
    for _ in range(20):
        n += len(zlib.compress(data, 9))
    return n
def early():
    go.wait()  # blocked in here when sampling starts
    print(squash_early() > 0)
t = threading.Thread(target=early, name="early")
t.start()
cpyprof.start(sys.argv[1], mode="sample", native=True, rate=1000, clock="cpu")
go.set()
t.join()
cpyprof.stop()
"""


def test_thread_existing_at_start_gets_native_frames(py, tmp_path):
    """A thread that existed before cpyprof.start() (not the starting one):
    libunwind is warmed up on it by a one-shot profile hook, so its samples
    have native frames too (src/python/sample_timer.c, arm_native_warmup)."""
    prog = write_prog(tmp_path, textwrap.dedent(EARLY_THREAD))
    out = tmp_path / "early.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and p.stdout == b"True\n", describe(p)
    samples = sum(v for fr, v in prof.folded
                  if "squash_early" in [f.rsplit(" (", 1)[0] for f in fr])
    libz = native_under(prof, "squash_early", lambda o: o.startswith("libz.so"))
    assert samples > 50, prof.summary()
    assert libz > samples // 2, prof.summary()
