/*
 * cmd_record.c — `cpyprof record`: run a program with the profiler
 * preloaded, then say what was written.
 *
 * The options are the profiler's settings (src/core/config.h). Each one is
 * validated here with cp_config_set(), so a typo fails before the program
 * starts, and handed over as a CPYPROF_<KEY> variable: the preloaded library
 * parses the same text with the same function. CPYPROF_PID names the one
 * process that may activate (the child itself, not the processes it starts).
 *
 * Signals: the terminal sends Ctrl-C/Ctrl-\ to the whole foreground process
 * group, so the child gets them directly; the parent ignores them while it
 * waits, or it would die before reporting. SIGTERM/SIGHUP sent to the parent
 * alone (a job runner, a closed terminal) are forwarded to the child. When
 * the child dies by a signal, the parent dies by the same signal so that
 * shells and CI see the real cause.
 */
#include "cli.h"
#include "core/config.h"
#include "core/writer.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* CONFIG_HZ from a config file's text, or 0. */
static unsigned hz_from(FILE *f)
{
    char line[256];
    unsigned hz = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "CONFIG_HZ=", 10) == 0)
            hz = (unsigned)strtoul(line + 10, NULL, 10);
    return hz;
}

/* The kernel's timer tick (CONFIG_HZ), which caps CPU-clock timers: from
 * /boot/config-RELEASE, else /proc/config.gz (through gzip, if both exist);
 * 0 when neither says. */
static unsigned kernel_hz(void)
{
    struct utsname u;
    char path[400];
    unsigned hz = 0;
    if (uname(&u) == 0) {
        snprintf(path, sizeof path, "/boot/config-%s", u.release);
        FILE *f = fopen(path, "r");
        if (f) {
            hz = hz_from(f);
            fclose(f);
        }
    }
    if (hz == 0 && access("/proc/config.gz", R_OK) == 0) {
        fflush(stdout);
        FILE *f = popen("gzip -dc /proc/config.gz 2>/dev/null", "r");
        if (f) {
            hz = hz_from(f);
            pclose(f);
        }
    }
    return hz;
}

static void help(void)
{
    char tick[96];
    unsigned hz = kernel_hz();
    if (hz)
        snprintf(tick, sizeof tick, "%u Hz here (CONFIG_HZ)", hz);
    else
        snprintf(tick, sizeof tick, "typically 250 Hz");
    printf("Usage: cpyprof record [OPTIONS] [--] PROGRAM [ARGS...]\n"
           "Run PROGRAM (a Python 3.11 program, e.g. 'python3 app.py') under the profiler\n"
           "and write a profile.\n\n"
           "  -o, --output FILE     the profile to write (default cpyprof.out)\n"
           "  -m, --mode MODE       trace: every call, exact counts (default)\n"
           "                        sample: timer-driven stack samples\n"
           "                        timeline: every call and return with its time, for\n"
           "                        'cpyprof convert --to chrome' (and trace's counts)\n"
           "      --no-builtins     do not profile C functions (len, list.append, ...)\n"
           "      --max-depth N     deepest stack tracked, 16..100000 (default 2048)\n"
           "      --ring-size SIZE  per-thread buffer, 4K..1G, suffix K/M/G (default 1M)\n"
           "      --rate HZ         samples per second per thread, 1..10000 (default 100);\n"
           "                        with --clock cpu the real rate is at most the kernel\n"
           "                        tick, %s: a higher rate gives fewer\n"
           "                        samples, each weighted by the periods it stands for;\n"
           "                        with --clock wall up to 10000 (a few us of CPU per\n"
           "                        sample of a running thread; none while it sleeps)\n"
           "      --clock CLOCK     cpu (default): every 1/HZ s of each thread's CPU time;\n"
           "                        wall: every 1/HZ s of real time, waiting threads too;\n"
           "                        a thread's first sample comes 1/2 to 1 period after it\n"
           "                        starts: a thread living less than that has none\n"
           "      --idle, --no-idle keep or drop samples of idle threads (wall clock)\n"
           "      --native          native (C) frames in samples too\n"
           "      --gil[=HOW]       GIL hold and wait times per thread: exact (default;\n"
           "                        every GIL transition) or sample (hold shares only)\n"
           "      --gil-rate HZ     --gil=sample: reads of the GIL's holder per second,\n"
           "                        1..1000 (default 100; 1000 costs a few %% here)\n"
           "      --alloc[=HOW]     count allocations per function (PyMem allocators) and\n"
           "                        record garbage collections: on (default) or native\n"
           "                        (malloc/free of C code too, by GOT patching)\n"
           "      --buffer SIZE     timeline: per-thread event buffer, 64K..1G, suffix\n"
           "                        K/M/G (default 4M; 16 bytes per event)\n"
           "      --keep WHICH      timeline: all (default): stream every event to the\n"
           "                        file, events that find the buffer full are dropped\n"
           "                        and counted; last: flight recorder, only the newest\n"
           "                        events that fit the buffer are kept (fixed memory)\n"
           "      --subprocesses    follow child processes (fork, subprocess, multiprocessing\n"
           "                        fork/spawn/forkserver): each Python process writes its\n"
           "                        own file, FILE with the pid before the extension\n"
           "                        (out.cpyprof -> out.PID.cpyprof), or DIR/cpyprof.PID.out\n"
           "                        for -o DIR/; report and flame take several files\n"
           "  -q, --quiet           no messages except errors\n"
           "  -h, --help            this help\n\n"
           "The exit status is the program's. CPYPROF_LIBRARY overrides the path of the\n"
           "preloaded libcpyprof.so; other CPYPROF_* variables set further options.\n",
           tick);
}

/* One validated setting, exported as CPYPROF_<KEY>=value. */
typedef struct setting {
    const char *key;
    const char *value;
} setting;

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
    int saved = errno;
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
    errno = saved;
}

static int export_setting(const setting *s)
{
    char name[64] = "CPYPROF_";
    size_t k = strlen(name);
    for (const char *c = s->key; *c && k + 1 < sizeof name; c++)
        name[k++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    name[k] = '\0';
    return setenv(name, s->value, 1);
}

/* Did the run (re)write the file? The library truncates or replaces it, so
 * its identity, size or times change; an untouched file is a stale one. */
static bool file_changed(bool existed, const struct stat *before, const struct stat *after)
{
    if (!existed)
        return true;
    return before->st_ino != after->st_ino || before->st_dev != after->st_dev ||
           before->st_size != after->st_size || before->st_mtim.tv_sec != after->st_mtim.tv_sec ||
           before->st_mtim.tv_nsec != after->st_mtim.tv_nsec ||
           before->st_ctim.tv_sec != after->st_ctim.tv_sec ||
           before->st_ctim.tv_nsec != after->st_ctim.tv_nsec;
}

/* The one line after the run. */
static void summarize(const char *shown, const char *path, bool existed, const struct stat *before,
                      bool quiet, bool signaled)
{
    struct stat after;
    if (stat(path, &after) != 0 || !file_changed(existed, before, &after)) {
        if (!signaled)
            cli_error("no profile was written to '%s' (not a Python 3.11 program, or the "
                      "profiler could not start: see above)",
                      shown);
        return;
    }
    cp_profile p;
    char err[1024], warn[512];
    if (cp_profile_load(&p, path, err, sizeof err) != 0) {
        cli_error("%s", err);
        return;
    }
    if (!quiet) {
        bool truncated = cp_profile_warning(&p, warn, sizeof warn);
        fprintf(stderr,
                "cpyprof: wrote %s (%zu function%s, %zu thread%s, %llu records dropped)%s%s\n",
                shown, p.n_funcs, p.n_funcs == 1 ? "" : "s", p.n_threads,
                p.n_threads == 1 ? "" : "s", (unsigned long long)p.trailer.events_dropped,
                truncated ? "; warning: " : "", truncated ? warn : "");
    }
    cp_profile_free(&p);
}

/* Puts `path` into c->output, cut to fit (the caller checked the length). */
static void set_output(cp_config *c, const char *path)
{
    size_t n = strnlen(path, sizeof c->output - 1);
    memcpy(c->output, path, n);
    c->output[n] = '\0';
}

/* --subprocesses: the other processes' files, i.e. the names that
 * cp_output_path gives for some pid other than `root`, modified since
 * `since`. Counted by listing the directory: the pids are not known here. */
static void summarize_children(const cp_config *cfg, long root, time_t since, bool quiet)
{
    char pattern[CP_PATH_MAX + 32], err[256];
    /* The path for pid 0 splits into the text before and after the pid. */
    if (quiet || cp_output_path(cfg, 0, pattern, sizeof pattern, err, sizeof err) != 0)
        return;
    char *slash = strrchr(pattern, '/');
    char dir[CP_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - pattern) : 1, slash ? pattern : ".");
    const char *name = slash ? slash + 1 : pattern;
    const char *zero = strstr(name, ".0");
    while (zero && zero[2] != '.' && zero[2] != '\0')
        zero = strstr(zero + 1, ".0");
    if (!zero)
        return;
    size_t pre = (size_t)(zero - name) + 1; /* through the dot */
    const char *post = zero + 2;
    DIR *d = opendir(dir[0] ? dir : "/");
    if (!d)
        return;
    unsigned long count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t len = strlen(n), plen = strlen(post);
        if (len <= pre + plen || strncmp(n, name, pre) != 0 || strcmp(n + len - plen, post) != 0)
            continue;
        char *end;
        long pid = strtol(n + pre, &end, 10);
        if (end != n + len - plen || pid <= 0 || pid == root)
            continue;
        char full[2 * CP_PATH_MAX];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, n);
        if (stat(full, &st) == 0 && st.st_mtime >= since)
            count++;
    }
    closedir(d);
    if (count)
        fprintf(stderr, "cpyprof: and %lu profile%s of child processes (%s/%.*sPID%s)\n", count,
                count == 1 ? "" : "s", dir, (int)pre, name, post);
}

/* Dies by `sig` like the child did; returns only if that fails. */
static int die_like(int sig)
{
    fflush(stdout);
    fflush(stderr);
    /* The child's core dump (if any) is the interesting one, not ours. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    return 128 + sig;
}

/* Runs argv[0] with the environment already set. Returns the exit code.
 * With cfg->subprocesses, `path` is the output pattern (cp_output_path). */
static int run_child(char **args, const char *shown, const char *path, const cp_config *cfg)
{
    bool quiet = cfg->quiet;
    struct stat before;
    bool existed = !cfg->subprocesses && stat(path, &before) == 0;
    time_t started = time(NULL) - 1;

    static const int handled[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP};
    struct sigaction old_act[4];
    sigset_t block, old_mask;
    sigemptyset(&block);
    for (int i = 0; i < 4; i++)
        sigaddset(&block, handled[i]);
    /* Blocked across fork so nothing arrives before our handlers exist; the
     * child unblocks before exec, keeping the dispositions we started with. */
    sigprocmask(SIG_BLOCK, &block, &old_mask);

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        cli_error("cannot run '%s': %s", args[0], strerror(errno));
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        return CLI_FAIL;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("cannot run '%s': %s", args[0], strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        return CLI_FAIL;
    }
    if (pid == 0) {
        close(pfd[0]);
        char v[32];
        snprintf(v, sizeof v, "%ld", (long)getpid());
        setenv("CPYPROF_PID", v, 1);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        execvp(args[0], args);
        /* Report errno through the close-on-exec pipe: the parent prints
         * the message, so it comes once and in our format. */
        int e = errno;
        ssize_t w;
        do {
            w = write(pfd[1], &e, sizeof e);
        } while (w < 0 && errno == EINTR);
        _exit(127);
    }
    close(pfd[1]);
    child_pid = pid;
    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward_signal};
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    fwd.sa_flags = SA_RESTART;
    for (int i = 0; i < 4; i++)
        sigaction(handled[i], i < 2 ? &ign : &fwd, &old_act[i]);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    int exec_errno = 0;
    ssize_t got;
    do {
        got = read(pfd[0], &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    close(pfd[0]);
    if (got != (ssize_t)sizeof exec_errno)
        exec_errno = 0;

    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            cli_error("cannot wait for '%s': %s", args[0], strerror(errno));
            status = 1 << 8;
            break;
        }
    }
    child_pid = 0;
    for (int i = 0; i < 4; i++)
        sigaction(handled[i], &old_act[i], NULL);

    if (exec_errno) {
        cli_error("cannot run '%s': %s", args[0], strerror(exec_errno));
        return 127;
    }
    char own[CP_PATH_MAX + 32], own_shown[CP_PATH_MAX + 32], err[256];
    if (cfg->subprocesses) {
        /* The program's own file is named after its pid. */
        cp_config c = *cfg;
        set_output(&c, path);
        if (cp_output_path(&c, (long)pid, own, sizeof own, err, sizeof err) != 0)
            snprintf(own, sizeof own, "%s", path);
        set_output(&c, shown);
        if (cp_output_path(&c, (long)pid, own_shown, sizeof own_shown, err, sizeof err) != 0)
            snprintf(own_shown, sizeof own_shown, "%s", shown);
        path = own;
        shown = own_shown;
    }
    if (WIFSIGNALED(status)) {
        summarize(shown, path, existed, &before, quiet, true);
        if (cfg->subprocesses)
            summarize_children(cfg, (long)pid, started, quiet);
        return die_like(WTERMSIG(status));
    }
    summarize(shown, path, existed, &before, quiet, false);
    if (cfg->subprocesses)
        summarize_children(cfg, (long)pid, started, quiet);
    return WIFEXITED(status) ? WEXITSTATUS(status) : CLI_FAIL;
}

int cmd_record(int argc, char **argv)
{
    enum {
        OPT_NO_BUILTINS = 256,
        OPT_BUILTINS,
        OPT_MAX_DEPTH,
        OPT_RING_SIZE,
        OPT_RATE,
        OPT_CLOCK,
        OPT_IDLE,
        OPT_NO_IDLE,
        OPT_NATIVE,
        OPT_GIL,
        OPT_ALLOC,
        OPT_BUFFER,
        OPT_KEEP,
        OPT_SUBPROCESSES,
        OPT_GIL_RATE,
    };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"mode", required_argument, NULL, 'm'},
        {"no-builtins", no_argument, NULL, OPT_NO_BUILTINS},
        {"builtins", no_argument, NULL, OPT_BUILTINS},
        {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
        {"ring-size", required_argument, NULL, OPT_RING_SIZE},
        {"rate", required_argument, NULL, OPT_RATE},
        {"clock", required_argument, NULL, OPT_CLOCK},
        {"idle", no_argument, NULL, OPT_IDLE},
        {"no-idle", no_argument, NULL, OPT_NO_IDLE},
        {"native", no_argument, NULL, OPT_NATIVE},
        {"gil", optional_argument, NULL, OPT_GIL},
        {"alloc", optional_argument, NULL, OPT_ALLOC},
        {"buffer", required_argument, NULL, OPT_BUFFER},
        {"keep", required_argument, NULL, OPT_KEEP},
        {"subprocesses", no_argument, NULL, OPT_SUBPROCESSES},
        {"gil-rate", required_argument, NULL, OPT_GIL_RATE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cp_config cfg;
    cp_config_defaults(&cfg);
    setting settings[64];
    size_t n_settings = 0;
    char err[1024];
    int c;
    opterr = 0;
    /* '+': options end at PROGRAM, whose own options are left alone. */
    while ((c = getopt_long(argc, argv, "+:o:m:qh", opts, NULL)) != -1) {
        setting s = {NULL, optarg};
        switch (c) {
        case 'o':
            s.key = "output";
            break;
        case 'm':
            s.key = "mode";
            break;
        case OPT_NO_BUILTINS:
            s = (setting){"builtins", "0"};
            break;
        case OPT_BUILTINS:
            s = (setting){"builtins", "1"};
            break;
        case OPT_MAX_DEPTH:
            s.key = "max_depth";
            break;
        case OPT_RING_SIZE:
            s.key = "ring_size";
            break;
        case OPT_RATE:
            s.key = "rate";
            break;
        case OPT_CLOCK:
            s.key = "clock";
            break;
        case OPT_IDLE:
            s = (setting){"idle", "1"};
            break;
        case OPT_NO_IDLE:
            s = (setting){"idle", "0"};
            break;
        case OPT_NATIVE:
            s = (setting){"native", "1"};
            break;
        case OPT_GIL: /* --gil alone means exact accounting */
            s = (setting){"gil", optarg ? optarg : "exact"};
            break;
        case OPT_ALLOC: /* --alloc alone means the PyMem allocators */
            s = (setting){"alloc", optarg ? optarg : "on"};
            break;
        case OPT_BUFFER:
            s.key = "buffer";
            break;
        case OPT_KEEP:
            s.key = "keep";
            break;
        case OPT_SUBPROCESSES:
            s = (setting){"subprocesses", "1"};
            break;
        case OPT_GIL_RATE:
            s.key = "gil_rate";
            break;
        case 'q':
            s = (setting){"quiet", "1"};
            break;
        case 'h':
            help();
            return CLI_OK;
        default:
            return cli_getopt_error("record", c, argv);
        }
        if (cp_config_set(&cfg, s.key, s.value, "--", err, sizeof err) != 0)
            return cli_usage("record", "%s", err);
        if (n_settings == sizeof settings / sizeof *settings)
            return cli_usage("record", "too many options");
        settings[n_settings++] = s;
    }
    if (optind >= argc)
        return cli_usage("record", "missing the PROGRAM to run (e.g. -- python3 app.py)");

    /* The child may chdir: give it an absolute path. */
    char path[CP_PATH_MAX + 1];
    if (cfg.output[0] == '/') {
        snprintf(path, sizeof path, "%s", cfg.output);
    } else {
        char cwd[CP_PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            cli_error("cannot get the current directory: %s", strerror(errno));
            return CLI_FAIL;
        }
        if ((size_t)snprintf(path, sizeof path, "%s/%s", cwd, cfg.output) >= sizeof path) {
            cli_error("the output path '%s' is too long", cfg.output);
            return CLI_FAIL;
        }
    }
    if (cfg.subprocesses) {
        /* Check where the files will go with a name of our own pid. */
        size_t plen = strlen(path);
        if (plen > 1 && path[plen - 1] == '/')
            (void)mkdir(path, 0777); /* "-o DIR/": made if missing */
        cp_config c = cfg;
        set_output(&c, path);
        char probe[CP_PATH_MAX + 32];
        if (cp_output_path(&c, (long)getpid(), probe, sizeof probe, err, sizeof err) != 0 ||
            cp_writer_check_path(probe, err, sizeof err) != 0) {
            cli_error("%s", err);
            return CLI_FAIL;
        }
    } else if (cp_writer_check_path(path, err, sizeof err) != 0) {
        cli_error("%s", err);
        return CLI_FAIL;
    }

    char lib[CP_PATH_MAX];
    if (cli_find_library(lib, sizeof lib, err, sizeof err) != 0) {
        cli_error("%s", err);
        return CLI_FAIL;
    }
    /* The dynamic loader splits LD_PRELOAD at spaces and colons. */
    if (strpbrk(lib, " :")) {
        cli_error("cannot preload '%s': LD_PRELOAD cannot hold a path with a space or a colon; "
                  "set CPYPROF_LIBRARY to another copy",
                  lib);
        return CLI_FAIL;
    }
    const char *old = getenv("LD_PRELOAD");
    size_t need = strlen(lib) + (old ? strlen(old) : 0) + 2;
    char *preload = malloc(need);
    if (!preload) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    snprintf(preload, need, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
    bool ok = setenv("LD_PRELOAD", preload, 1) == 0 && setenv("CPYPROF_OUTPUT", path, 1) == 0;
    free(preload);
    for (size_t i = 0; i < n_settings && ok; i++)
        if (strcmp(settings[i].key, "output") != 0)
            ok = export_setting(&settings[i]) == 0;
    unsetenv("CPYPROF_PID");
    if (!ok) {
        cli_error("cannot set the environment: %s", strerror(errno));
        return CLI_FAIL;
    }
    return run_child(argv + optind, cfg.output, path, &cfg);
}
