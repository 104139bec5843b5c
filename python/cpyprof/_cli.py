"""`python -m cpyprof`: record a program in-process, or hand the other
commands (report, flame, convert, ...) to the `cpyprof` executable.

`record` runs the program inside this interpreter, the way `python -m cProfile`
does: the script, module, code string or standard input is run by runpy (or
exec) with sys.argv and sys.path[0] set as `python` itself would set them;
profiling starts just before the program's first line and stops in a
`finally`, so the profile is written however the program ends (normal end,
sys.exit, an exception, Ctrl-C). The program's exit status is passed through.
"""
import argparse
import os
import shutil
import sys
import sysconfig
import threading
import traceback

PROG = "python -m cpyprof"

# Commands implemented by the `cpyprof` executable (C): forwarded as they are.
FORWARDED = {
    "report": "print the top functions of a profile (text or JSON)",
    "flame": "draw an interactive SVG flamegraph",
    "convert": "export a profile to another format (folded stacks, speedscope)",
    "diff": "compare profiles function by function; fail on regressions",
}


def _version():
    try:
        from . import _cpyprof
        return _cpyprof.__version__
    except ImportError:
        return "unknown (native extension not built)"


# --------------------------------------------------------------------------
# record
# --------------------------------------------------------------------------

# (flags, settings-key, takes a value, constant when it does not, help)
_RECORD_OPTIONS = [
    (("-o", "--output"), "output", True, None,
     "the profile to write (default cpyprof.out)"),
    (("--mode",), "mode", True, None,
     "trace: every call, exact counts (default); sample: timer-driven stack samples; "
     "timeline: every call and return with its time (cpyprof convert --to chrome)"),
    (("--no-builtins",), "builtins", False, False,
     "do not profile C functions (len, list.append, ...)"),
    (("--builtins",), "builtins", False, True, argparse.SUPPRESS),
    (("--max-depth",), "max_depth", True, None,
     "deepest stack tracked, 16..100000 frames (default 2048)"),
    (("--ring-size",), "ring_size", True, None,
     "per-thread buffer, 4K..1G, suffix K/M/G (default 1M)"),
    (("--transport",), "transport", True, None,
     "inline (default): hooks update per-thread call trees; ring: records go "
     "through per-thread rings to a writer thread"),
    (("-q", "--quiet"), "quiet", False, True,
     "no messages except errors"),
    (("--rate",), "rate", True, None,
     "sampling: samples per second per thread, 1..10000 (default 100)"),
    (("--clock",), "clock", True, None,
     "sampling: cpu (default) or wall time"),
    (("--idle",), "idle", False, True,
     "sampling, wall clock: keep samples of idle threads (default)"),
    (("--no-idle",), "idle", False, False,
     "sampling, wall clock: drop samples of idle threads"),
    (("--native",), "native", False, True,
     "sampling: native (C) frames in samples too (libunwind)"),
    (("--gil-rate",), "gil_rate", True, None,
     "--gil=sample: reads of the GIL's holder per second, 1..1000 (default 100)"),
    (("--buffer",), "buffer", True, None,
     "timeline: per-thread event buffer, 64K..1G, suffix K/M/G (default 4M)"),
    (("--keep",), "keep", True, None,
     "timeline: all (default): stream every event to the file, drops counted; "
     "last: flight recorder, only the newest events that fit the buffer"),
    (("--subprocesses",), "subprocesses", False, True,
     "follow child processes (fork, subprocess, multiprocessing): each writes "
     "its own file, FILE with the pid before the extension, or DIR/cpyprof.PID.out "
     "for -o DIR/"),
]

# Options whose value is optional and attached with '=' only (--alloc,
# --alloc=native), as in `cpyprof record`: (flags, key, value alone, help).
_OPTIONAL_VALUE_OPTIONS = [
    (("--gil",), "gil", "exact",
     "GIL hold and wait times per thread: --gil or --gil=exact (every GIL "
     "transition); --gil=sample (hold shares only, the holder read --gil-rate "
     "times a second)"),
    (("--alloc",), "alloc", "on",
     "count allocations per function (PyMem allocators) and record garbage "
     "collections: --alloc or --alloc=on; --alloc=native: malloc/free of C code too"),
]

_METAVARS = {"output": "FILE", "mode": "MODE", "max_depth": "N", "ring_size": "SIZE",
             "transport": "T", "rate": "HZ", "clock": "CLOCK", "buffer": "SIZE",
             "keep": "WHICH", "gil_rate": "HZ"}

_RECORD_USAGE = ("%s record [-o FILE] [options] "
                 "(script.py | -m module | -c code | -) [args ...]" % PROG)

_RECORD_EPILOG = """\
The program runs in this interpreter, like `python -m cProfile`: `script.py`
(a file, a directory or a zip file with __main__.py), `-m module`, `-c code`,
or `-` / nothing for standard input. Options must come before the program;
everything after it is the program's own sys.argv[1:]. The exit status is the
program's.

Examples:
  %(prog)s -o app.cpyprof app.py --its-own-flag
  %(prog)s -o tests.cpyprof -m pytest -q tests/
  cpyprof report app.cpyprof
""" % {"prog": PROG + " record"}


def _record_parser():
    p = argparse.ArgumentParser(
        prog=PROG + " record", usage=_RECORD_USAGE, allow_abbrev=False,
        description="Run a Python program in this interpreter under the profiler "
                    "and write a profile.",
        epilog=_RECORD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flags, key, takes_value, const, help_text in _RECORD_OPTIONS:
        if takes_value:
            p.add_argument(*flags, dest=key, metavar=_METAVARS[key], help=help_text)
        else:
            p.add_argument(*flags, dest=key, action="store_const", const=const,
                           help=help_text)
    for flags, key, const, help_text in _OPTIONAL_VALUE_OPTIONS:
        p.add_argument(*flags, dest=key, nargs="?", const=const, metavar="HOW", help=help_text)
    p.set_defaults(output="cpyprof.out")
    target = p.add_argument_group("the program (one of)")
    target.add_argument("-m", dest="module", metavar="MODULE",
                        help="run library module MODULE as a script")
    target.add_argument("-c", dest="code", metavar="CODE",
                        help="run the program passed as a string")
    target.add_argument("script", nargs="?", metavar="script.py | -",
                        help="run a file, directory or zip; '-' or nothing: standard input")
    target.add_argument("args", nargs="*", metavar="args",
                        help="the program's arguments (sys.argv[1:])")
    return p


def _split_record_argv(argv):
    """Splits `record`'s arguments into (our options, target, target args).

    Options end at the program: the first word that is not an option or an
    option's value, `-m MODULE`, `-c CODE`, `-`, or whatever follows `--`.
    target is ("script", path) | ("module", name) | ("code", text) |
    ("stdin", "-" or "") | None (parse error left for argparse)."""
    with_value = {f for flags, _, takes, _, _ in _RECORD_OPTIONS if takes for f in flags}
    opts = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest = argv[i + 1:]
            if not rest:
                return opts, ("stdin", ""), []
            if rest[0] == "-":
                return opts, ("stdin", "-"), rest[1:]
            return opts, ("script", rest[0]), rest[1:]
        if a == "-":
            return opts, ("stdin", "-"), argv[i + 1:]
        for flag, kind in (("-m", "module"), ("-c", "code")):
            if a == flag:
                if i + 1 >= len(argv):
                    return opts + [a], None, []  # argparse: "expected one argument"
                return opts, (kind, argv[i + 1]), argv[i + 2:]
            if a.startswith(flag) and not a.startswith("--"):
                return opts, (kind, a[len(flag):]), argv[i + 1:]
        if not a.startswith("-"):
            return opts, ("script", a), argv[i + 1:]
        opts.append(a)
        if a in with_value:  # "--output FILE": the value may start with '-'
            if i + 1 < len(argv):
                opts.append(argv[i + 1])
            i += 2
            continue
        i += 1
    return opts, ("stdin", ""), []


class _Target:
    """What to run and how: the code is prepared (file read, module found,
    source compiled) before profiling starts, so a missing file fails fast
    and the profile holds only the program."""

    def __init__(self, kind, value, args):
        self.kind = kind
        self.value = value
        self.args = args

    def prepare(self):
        """Sets sys.argv and sys.path[0] like `python` and loads the code.
        Returns an error message, or None."""
        # What runpy imports on first use is imported now, before profiling.
        import pkgutil  # noqa: F401
        import runpy  # noqa: F401
        kind, value = self.kind, self.value
        safe_path = getattr(sys.flags, "safe_path", False)
        if kind == "script":
            path = os.path.abspath(value)
            if not os.path.exists(path):
                return "can't open file %r: [Errno 2] No such file or directory" % (path,)
            self.path = path
            sys.argv[:] = [value, *self.args]
            if not safe_path:
                if os.path.isdir(path) or not path.endswith((".py", ".pyc", ".pyw")) and \
                        _is_zip(path):
                    # runpy puts the directory or zip file itself first in sys.path
                    _set_path0(None)
                else:
                    _set_path0(os.path.dirname(os.path.realpath(path)))
        elif kind == "module":
            import importlib.util
            sys.argv[:] = [value, *self.args]  # runpy sets argv[0] to the module's file
            if not safe_path:
                _set_path0(os.getcwd())
            try:
                spec = importlib.util.find_spec(value)
            except (ImportError, ValueError) as e:
                return "error while finding module specification for %r (%s: %s)" % (
                    value, type(e).__name__, e)
            if spec is None:
                return "No module named %s" % (value,)
        else:
            if kind == "code":
                source, filename, argv0 = value, "<string>", "-c"
            else:
                argv0 = value
                filename = "<stdin>"
                source = sys.stdin.buffer.read() if sys.stdin is not None else b""
            sys.argv[:] = [argv0, *self.args]
            if not safe_path:
                _set_path0("")
            self.code = compile(source, filename, "exec")  # SyntaxError: the caller shows it
        return None

    def run(self):
        import runpy
        if self.kind == "script":
            runpy.run_path(self.path, run_name="__main__")
        elif self.kind == "module":
            runpy.run_module(self.value, run_name="__main__", alter_sys=True)
        else:
            _exec_main(self.code, "<stdin>" if self.kind == "stdin" else None)


def _is_zip(path):
    import zipfile
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _set_path0(entry):
    """Replaces the entry `python -m cpyprof` put first in sys.path (the
    current directory) with what `python TARGET` would have put there, or
    just removes it (entry None)."""
    if sys.path:
        del sys.path[0]
    if entry is not None:
        sys.path.insert(0, entry)


def _exec_main(code, file):
    """Runs a code object as the __main__ module (for -c and stdin)."""
    import builtins
    import types
    main = types.ModuleType("__main__")
    main.__dict__.update(__builtins__=builtins, __loader__=None, __spec__=None,
                         __package__=None, __annotations__={})
    if file is not None:
        main.__file__ = file
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _wait_for_threads():
    """Joins the program's non-daemon threads, as the interpreter does when
    the main module ends, so their work is in the profile."""
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and t is not threading.main_thread() and not t.daemon and t.is_alive():
            t.join()


def _own_frame(frame):
    """True for frames of runpy and of this module (trimmed from the
    program's tracebacks)."""
    import runpy
    name = frame.f_code.co_filename
    if name == "<frozen runpy>":
        return True
    own = {os.path.normcase(os.path.abspath(f)) for f in (__file__, runpy.__file__)}
    return os.path.normcase(os.path.abspath(name)) in own


def _print_program_error(exc):
    """Prints an exception of the program like the interpreter would,
    without our own frames on top."""
    tb = exc.__traceback__
    while tb is not None and _own_frame(tb.tb_frame):
        tb = tb.tb_next
    # The default hook prints the exception's own __traceback__: replace it.
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _record(argv):
    opts, target, args = _split_record_argv(argv)
    parser = _record_parser()
    ns = parser.parse_args(opts)  # --help and usage errors exit here
    if target is None:
        parser.error("the program to run is missing")
    kind, value = target

    from . import _cpyprof
    settings = {}
    keys = [key for _, key, _, _, _ in _RECORD_OPTIONS]
    keys += [key for _, key, _, _ in _OPTIONAL_VALUE_OPTIONS]
    for key in keys:
        v = getattr(ns, key, None)
        if v is None or key == "output":
            continue
        settings[key] = ("1" if v else "0") if isinstance(v, bool) else str(v)
    output = ns.output
    quiet = bool(ns.quiet)

    prog = _Target(kind, value, args)
    try:
        err = prog.prepare()
    except SyntaxError as e:
        _print_program_error(e)
        return 1
    if err:
        print("%s: %s" % (PROG + " record", err), file=sys.stderr)
        return 2 if kind == "script" else 1

    try:
        _cpyprof.start(output, settings)
    except ValueError as e:
        parser.print_usage(sys.stderr)
        print("%s: error: %s" % (PROG + " record", e), file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as e:
        print("cpyprof: %s" % (e,), file=sys.stderr)
        return 1
    if settings.get("subprocesses") == "1":
        from . import _export_for_children
        _export_for_children(output, settings)

    pid = os.getpid()
    completed = False
    try:
        try:
            prog.run()
            completed = True
        except SystemExit:
            completed = True
            raise
        finally:
            if os.getpid() == pid:  # not in a forked child that got here
                try:
                    if completed:
                        _wait_for_threads()
                finally:
                    written = _cpyprof.stop()
                    if written and not quiet:
                        print("cpyprof: wrote %s (view it: cpyprof report %s)"
                              % (written, written), file=sys.stderr)
    except (SystemExit, KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as e:  # noqa: B902 - the program's uncaught error
        _print_program_error(e)
        return 1
    return 0


# --------------------------------------------------------------------------
# the other commands: the `cpyprof` executable
# --------------------------------------------------------------------------

def find_executable():
    """The `cpyprof` command that belongs to this package: in the build tree
    when the package is imported from build/python (build/cpyprof), next to
    this interpreter (a venv's or prefix's bin/, where `pip install` puts
    it), then on PATH. Returns a path or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    build_dir = os.path.join(here, os.pardir, os.pardir)
    if os.path.isfile(os.path.join(build_dir, "CMakeCache.txt")):
        candidates.append(os.path.join(build_dir, "cpyprof"))
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(os.path.join(scripts, "cpyprof"))
    if sys.executable:
        candidates.append(os.path.join(os.path.dirname(sys.executable), "cpyprof"))
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    return shutil.which("cpyprof")


def _forward(argv):
    exe = find_executable()
    if exe is None:
        print("%s: cannot find the `cpyprof` command (looked next to %s, in the build tree "
              "and on PATH): 'pip install .' installs it, 'cmake --build build' builds it "
              "as build/cpyprof" % (PROG, sys.executable), file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(exe, ["cpyprof", *argv])
    except OSError as e:
        print("%s: cannot run %s: %s" % (PROG, exe, e.strerror), file=sys.stderr)
        return 1


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

_MAIN_DESCRIPTION = """\
A native profiler for CPython 3.11.

commands:
  record    run a Python program in this interpreter under the profiler
  report    print the top functions of a profile (text or JSON)
  flame     draw an interactive SVG flamegraph
  convert   export a profile to another format (folded stacks, speedscope)

`record` runs here; the other commands are the `cpyprof` executable's
(the same as running `cpyprof COMMAND ...`). `%(prog)s COMMAND --help` shows
a command's options.

examples:
  %(prog)s record -o app.cpyprof app.py
  %(prog)s report app.cpyprof
  %(prog)s flame app.cpyprof -o app.svg
"""


def _main_parser():
    p = argparse.ArgumentParser(
        prog=PROG, usage="%s [--version] COMMAND [ARGS ...]" % PROG,
        description=_MAIN_DESCRIPTION % {"prog": PROG},
        formatter_class=argparse.RawDescriptionHelpFormatter, add_help=True)
    p.add_argument("--version", action="version", version="cpyprof " + _version())
    p.add_argument("command", nargs="?", metavar="COMMAND", help=argparse.SUPPRESS)
    return p


def main(argv=None):
    """Entry point of `python -m cpyprof`. Returns the exit status (raises
    SystemExit with the program's status when `record`'s program exits)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "record":
        return _record(argv[1:])
    if argv and not argv[0].startswith("-"):
        return _forward(argv)
    parser = _main_parser()
    parser.parse_args(argv)  # --help, --version, or an error
    parser.print_usage(sys.stderr)
    print("%s: error: a COMMAND is needed (record, report, flame, convert)" % PROG,
          file=sys.stderr)
    return 2
