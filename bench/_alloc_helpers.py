"""The allocation benchmarks' rows that are not cpyprof: each C helper's
source, the module it builds, and how a child process turns it on and off.

One table for the scripts that build the helpers (bench_alloc_ab.build_helper)
and for their child processes (which import this file from bench/, with the
built modules on sys.path).
"""
import importlib

# row -> (source in bench/, module name, install()'s arguments)
HELPERS = {
    "floor": ("passalloc.c", "_cpyprof_bench_passalloc", ()),  # pass-through wrappers
    "least": ("leastcount.c", "_cpyprof_bench_leastcount", (True,)),  # least-work counting
    "least-counts": ("leastcount.c", "_cpyprof_bench_leastcount", (False,)),  # without sizes
}


def hooks(row):
    """(install, uninstall) of a HELPERS row, its module imported."""
    _, module, args = HELPERS[row]
    m = importlib.import_module(module)
    return (lambda: m.install(*args)), m.uninstall
