"""cpyprof: a native, in-process profiler for CPython 3.11.

Profile a block of code::

    import cpyprof

    with cpyprof.profile("app.cpyprof"):
        run_the_slow_part()

or a function (each call writes the file again)::

    @cpyprof.profile("job.cpyprof", builtins=False)
    def job():
        ...

or drive it by hand::

    cpyprof.start("app.cpyprof")
    try:
        ...
    finally:
        cpyprof.stop()

Then look at the result with the ``cpyprof`` command::

    cpyprof report app.cpyprof
    cpyprof flame app.cpyprof -o app.svg

Whole programs are easier to profile from outside:
``cpyprof record -o app.cpyprof -- python3 app.py`` or
``python3 -m cpyprof record -o app.cpyprof app.py``.

One profiling run at a time per process. The run covers every thread:
threads that already exist when it starts and threads started later.
See docs/usage.md for every option.
"""
import functools as _functools
import inspect as _inspect
import os as _os

try:
    from . import _cpyprof
except ImportError as _e:  # pragma: no cover - depends on the installation
    raise ImportError(
        "cpyprof: the native extension cpyprof._cpyprof cannot be loaded (%s). "
        "cpyprof needs CPython 3.11 (not a debug build) and a built package: "
        "'pip install .' in the source tree, or PYTHONPATH=build/python after "
        "'cmake --build build'." % (_e,)) from _e

__all__ = ["start", "stop", "is_running", "profile", "library_path", "__version__"]

__version__ = _cpyprof.__version__

DEFAULT_OUTPUT = "cpyprof.out"

# Keyword arguments of start() and profile(), in the order of the settings
# table in docs/usage.md. Each becomes one "key": "text" setting of the
# native library (the same keys as the CPYPROF_<KEY> environment variables).
_OPTION_NAMES = ("mode", "builtins", "max_depth", "ring_size", "transport", "quiet",
                 "rate", "clock", "idle", "native", "gil", "gil_rate", "alloc", "buffer",
                 "keep", "subprocesses")


def _option_text(name, value):
    """One option value as the text the native config parser reads:
    booleans become "1"/"0", integers their decimal digits, strings stay."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError("cpyprof: option %s must be a str, int or bool, not %s"
                    % (name, type(value).__name__))


def _options(kwargs):
    """The options dict for _cpyprof.start(): None means "the default" and is
    left out, so the library's own defaults apply."""
    return {name: _option_text(name, value)
            for name, value in kwargs.items() if value is not None}


def start(output=DEFAULT_OUTPUT, *, mode="trace", builtins=True, max_depth=None,
          ring_size=None, transport=None, quiet=None, rate=None, clock=None, idle=None,
          native=None, gil=None, gil_rate=None, alloc=None, buffer=None, keep=None,
          subprocesses=None):
    """Start profiling this process; the profile goes to `output`.

    The file is written by stop(), or at interpreter exit if stop() is never
    called (normal end, sys.exit, an uncaught exception, Ctrl-C, SIGTERM).

    Options (None means the default; see docs/usage.md):
      mode       "trace": every call, exact counts (default); "sample":
                 timer-driven stack samples (statistical, no call counts,
                 full speed between samples); "timeline": every call and
                 return as a timestamped event (cpyprof convert --to chrome).
      builtins   also profile C functions such as len or list.append
                 (default True).
      max_depth  the deepest stack tracked, 16..100000 frames (default 2048).
      ring_size  per-thread buffer size in bytes, an int or a text such as
                 "64K" or "4M" (default "1M").
      transport  "inline" (default) or "ring".
      quiet      no messages on stderr except errors (default False).
      rate       sampling: samples per second per thread, 1..10000
                 (default 100).
      clock      sampling: "cpu" (default) or "wall" time.
      idle       sampling, wall clock: keep samples of threads that do not
                 hold the GIL (default True).
      native     sampling: native (C) frames in samples too, from libunwind
                 (default False).
      gil        GIL hold and wait time per thread: True or "exact" (every
                 GIL transition, with stacks), "sample" (hold shares: the
                 holder read gil_rate times a second), False/"off"
                 (default). Read the result with `cpyprof gil FILE`.
      gil_rate   gil="sample": reads per second, 1..1000 (default 100;
                 each read is a wake-up of cpyprof's writer thread, see
                 docs/usage.md).
      alloc      count allocations per function and record garbage
                 collections: True or "on" (the PyMem allocators), "native"
                 (malloc/free of C code too), False/"off" (default). Read
                 the result with `cpyprof report FILE` or `cpyprof flame
                 --alloc-bytes FILE`.
      buffer     timeline: per-thread event buffer in bytes, an int or a
                 text such as "64M" (default "4M"; 32 bytes per event
                 streamed, 16 per event kept by keep="last").
      keep       timeline: "all" (default: stream every event to the file,
                 drops counted) or "last" (flight recorder: only the newest
                 events that fit the buffer are kept).
      subprocesses  follow child processes (default False): forked children,
                 Python programs started by subprocess/os.exec*, and
                 multiprocessing workers (fork, spawn, forkserver) profile
                 too, each into its own file: `output` with the process id
                 before the extension ("out.cpyprof" -> "out.PID.cpyprof"), or
                 DIR/cpyprof.PID.out when `output` ends in "/". Exec'd
                 children are reached through LD_PRELOAD and CPYPROF_*
                 variables that start() puts in os.environ and stop() takes
                 out again.

    Profiling started inside a function begins with the frames active at
    that moment, so the call tree is still rooted at <module>.

    Raises ValueError for a bad option (the message names it), OSError if
    `output` cannot be written, RuntimeError if profiling is already running
    or this interpreter is not supported.
    """
    output = _os.fspath(output)
    if not isinstance(output, str):
        output = _os.fsdecode(output)
    options = _options(dict(mode=mode, builtins=builtins, max_depth=max_depth,
                            ring_size=ring_size, transport=transport, quiet=quiet, rate=rate,
                            clock=clock, idle=idle, native=native, gil=gil,
                            gil_rate=gil_rate, alloc=alloc, buffer=buffer, keep=keep,
                            subprocesses=subprocesses))
    if _cpyprof.is_running():
        raise RuntimeError(
            "cpyprof is already running in this process (one profiling run at a time): "
            "call cpyprof.stop() first")
    _cpyprof.start(output, options)
    if options.get("subprocesses") == "1":
        _export_for_children(output, options)


# The environment start(subprocesses=True) changed: name -> previous value
# (None: was unset), restored by stop().
_saved_environ = {}


def _export_for_children(output, options):
    """Makes Python programs this process execs profile themselves: the
    library is preloaded into them, and the CPYPROF_* variables carry the
    settings (as `cpyprof record` does). Forked children need none of this:
    the library restarts itself in them."""
    absolute = _os.path.abspath(output) + ("/" if output.endswith("/") else "")
    lib = library_path()
    preload = _os.environ.get("LD_PRELOAD", "")
    new = {"CPYPROF_OUTPUT": absolute}
    for key, text in options.items():
        new["CPYPROF_" + key.upper()] = text
    if lib and lib not in preload.replace(":", " ").split():
        new["LD_PRELOAD"] = lib + (":" + preload if preload else "")
    for name, value in new.items():
        _saved_environ.setdefault(name, _os.environ.get(name))
        _os.environ[name] = value


def _restore_environ():
    while _saved_environ:
        name, value = _saved_environ.popitem()
        if value is None:
            _os.environ.pop(name, None)
        else:
            _os.environ[name] = value


def stop():
    """Stop profiling and write the profile file.

    Returns the path of the file written, or None if profiling was not
    running. Raises OSError if the file could not be written completely.
    """
    _restore_environ()
    return _cpyprof.stop()


def is_running():
    """True while a profiling run is active in this process (started by
    start(), profile(), `python -m cpyprof record` or LD_PRELOAD)."""
    return _cpyprof.is_running()


def library_path():
    """The path of the libcpyprof.so this package uses, for LD_PRELOAD::

        LD_PRELOAD=$(python3 -c 'import cpyprof; print(cpyprof.library_path())') \\
            CPYPROF_OUTPUT=app.cpyprof python3 app.py
    """
    return _cpyprof.library_path()


class profile:
    """Profile a block or a function: a context manager and a decorator.

    As a context manager, profiling runs for the duration of the block and
    the file is written when it ends (also when it ends with an exception)::

        with cpyprof.profile("block.cpyprof") as p:
            work()
        print(p.path)          # the file written

    As a decorator, each call of the function is one profiling run that
    rewrites the file::

        @cpyprof.profile("job.cpyprof", builtins=False)
        def job(): ...

        @cpyprof.profile       # bare: output "cpyprof.out"
        def other(): ...

    Coroutine functions are supported (the run spans the whole coroutine,
    awaits included). Takes the same options as start().

    Only one profiling run exists at a time: entering a profile while one is
    running (nested `with`, a decorated function that recurses or is called
    from another profiled region) raises RuntimeError.
    """

    def __new__(cls, output=DEFAULT_OUTPUT, **options):
        if callable(output) and not isinstance(output, (str, bytes, _os.PathLike)):
            # Bare decorator: @cpyprof.profile
            return cls(DEFAULT_OUTPUT)(output)
        return super().__new__(cls)

    def __init__(self, output=DEFAULT_OUTPUT, **options):
        unknown = sorted(set(options) - set(_OPTION_NAMES))
        if unknown:
            raise TypeError("cpyprof.profile() got unknown option(s): %s (known: %s)"
                            % (", ".join(unknown), ", ".join(_OPTION_NAMES)))
        self.output = output
        self.options = options
        self.path = None  # the file written by the last run
        self._active = False

    def __repr__(self):
        opts = "".join(", %s=%r" % kv for kv in self.options.items())
        return "cpyprof.profile(%r%s)" % (self.output, opts)

    def __enter__(self):
        if self._active or _cpyprof.is_running():
            raise RuntimeError(
                "cpyprof.profile(%r): profiling is already running in this process; "
                "profiles cannot be nested (one run at a time: a function decorated with "
                "@cpyprof.profile must not recurse or be called from another profiled "
                "region)" % (self.output,))
        start(self.output, **self.options)
        self._active = True
        return self

    def __exit__(self, exc_type, exc, tb):
        self._active = False
        self.path = stop()
        return False

    def __call__(self, func):
        if _inspect.iscoroutinefunction(func):
            @_functools.wraps(func)
            async def async_wrapper(*args, **kwargs):
                with self:
                    return await func(*args, **kwargs)
            return async_wrapper

        @_functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return wrapper
