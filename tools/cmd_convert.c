/*
 * cmd_convert.c — `cpyprof convert`: export a profile to another format.
 *
 * Adding a format is one function with the `exporter_fn` signature and one
 * line in the `formats` table.
 */
#include "cli.h"
#include "convert.h"
#include "report/chrome.h"
#include "report/folded.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_GLOBS = 64 };

static int export_folded(FILE *out, const cp_profile *p, const convert_options *o, char *err,
                         size_t errlen)
{
    return cp_folded_write(out, p, o->per_thread, err, errlen);
}

/* Chrome trace JSON: streamed from the file, never loaded whole. */
static int export_chrome(FILE *out, const char *path, const convert_options *o, char *err,
                         size_t errlen)
{
    cp_tl_file t;
    if (cp_tl_open(&t, path, err, errlen) != 0)
        return -1;
    char warn[512];
    if (cp_profile_warning(&t.p, warn, sizeof warn))
        cli_error("warning: %s: %s", path, warn);
    const char *mode = cp_profile_meta(&t.p, "mode");
    if (t.n_chunks == 0 && (!mode || strcmp(mode, "timeline") != 0)) {
        snprintf(err, errlen,
                 "%s: no timeline in this profile (mode %s): record it with --mode timeline", path,
                 mode ? mode : "unknown");
        cp_tl_close(&t);
        return -1;
    }
    char command[1024];
    const char *title = cli_profile_command(&t.p, command, sizeof command);
    cp_chrome_stats st;
    int r = cp_chrome_write(out, &t, title ? title : path, &o->filter, &t.alloc, &st, err, errlen);
    if (r == 0 && st.unmatched)
        cli_error("warning: %s: %llu timeline ends without a begin were ignored", path,
                  (unsigned long long)st.unmatched);
    cp_tl_close(&t);
    return r;
}

static const struct {
    const char *name;
    exporter_fn run;
    const char *summary;
    stream_exporter_fn stream; /* reads the file itself; run is NULL */
} formats[] = {
    {"folded", export_folded,
     "collapsed stacks 'frame;frame value' (self ns, or self samples of a\n"
     "              sampled profile) for flamegraph.pl, inferno, speedscope",
     NULL},
    {"speedscope", export_speedscope,
     "speedscope JSON (https://www.speedscope.app), one profile per thread", NULL},
    {"pprof", export_pprof,
     "gzipped pprof protobuf (go tool pprof, Pyroscope, Parca, Grafana):\n"
     "              calls and wall ns (trace, timeline) or samples and cpu|wall\n"
     "              ns (sample mode) per stack, a 'thread' label",
     NULL},
    {"chrome", NULL,
     "Chrome Trace Event JSON of a timeline (--mode timeline) for\n"
     "              Perfetto UI and chrome://tracing: a track per thread, a\n"
     "              complete event per call",
     export_chrome},
};

static void help(void)
{
    printf("Usage: cpyprof convert FILE... --to FORMAT -o OUT [OPTIONS]\n"
           "Export a profile to another format. Several files, or a directory (record\n"
           "--subprocesses -o DIR/), are merged under one 'process PID: COMMAND' root\n"
           "frame per process.\n\n"
           "  -t, --to FORMAT   the output format (see below)\n"
           "  -o, --output OUT  the output file; '-' is standard output\n"
           "      --threads     keep threads apart (a 'thread NAME' root frame)\n"
           "  -h, --help        this help\n\n"
           "Filters (chrome):\n"
           "      --min-duration TIME  leave out calls shorter than TIME: a number of ns,\n"
           "                           or with a unit: 500ns, 20us, 1.5ms, 2s\n"
           "      --max-depth N        leave out calls deeper than N (1 = outermost)\n"
           "      --include GLOB       keep only functions whose file or qualified name\n"
           "                           matches GLOB ('*' matches '/' too; repeatable)\n"
           "      --exclude GLOB       leave out functions whose file or name matches\n"
           "                           (repeatable; applied after --include)\n"
           "  A call left out does not hide the calls it made.\n\n"
           "Formats:\n");
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        printf("  %-11s %s\n", formats[i].name, formats[i].summary);
}

int cmd_convert(int argc, char **argv)
{
    enum { OPT_THREADS = 256, OPT_MIN_DURATION, OPT_MAX_DEPTH, OPT_INCLUDE, OPT_EXCLUDE };
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"threads", no_argument, NULL, OPT_THREADS},
        {"min-duration", required_argument, NULL, OPT_MIN_DURATION},
        {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
        {"include", required_argument, NULL, OPT_INCLUDE},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *to = NULL, *output = NULL;
    convert_options o = {0};
    static const char *include[MAX_GLOBS], *exclude[MAX_GLOBS];
    bool filtered = false;
    unsigned long long ull;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            to = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_THREADS:
            o.per_thread = true;
            break;
        case OPT_MIN_DURATION:
            if (!cli_parse_duration(optarg, &o.filter.min_duration_ns))
                return cli_usage("convert",
                                 "--min-duration: '%s' is not a duration (e.g. 5000, 20us, "
                                 "1.5ms, 2s)",
                                 optarg);
            filtered = true;
            break;
        case OPT_MAX_DEPTH:
            if (!cli_parse_uint(optarg, 1, 1000000, &ull))
                return cli_usage("convert", "--max-depth: '%s' is not a number in 1..1000000",
                                 optarg);
            o.filter.max_depth = (uint32_t)ull;
            filtered = true;
            break;
        case OPT_INCLUDE:
        case OPT_EXCLUDE: {
            bool inc = c == OPT_INCLUDE;
            size_t *n = inc ? &o.filter.n_include : &o.filter.n_exclude;
            if (*n == MAX_GLOBS)
                return cli_usage("convert", "too many --%s patterns (at most %d)",
                                 inc ? "include" : "exclude", MAX_GLOBS);
            (inc ? include : exclude)[(*n)++] = optarg;
            o.filter.include = include;
            o.filter.exclude = exclude;
            filtered = true;
            break;
        }
        case 'h':
            help();
            return CLI_OK;
        default:
            return cli_getopt_error("convert", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("convert", "missing the profile FILE");
    if (!to)
        return cli_usage("convert", "missing --to FORMAT");
    if (!output)
        return cli_usage("convert", "missing -o OUT ('-' for standard output)");
    exporter_fn run = NULL;
    stream_exporter_fn stream = NULL;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (strcmp(to, formats[i].name) == 0) {
            run = formats[i].run;
            stream = formats[i].stream;
        }
    if (!run && !stream)
        return cli_usage("convert", "--to: unknown format '%s' (see --help)", to);
    if (filtered && strcmp(to, "chrome") != 0)
        return cli_usage("convert", "--min-duration, --max-depth, --include and --exclude "
                                    "apply to --to chrome only");
    o.source = argv[optind];

    if (stream) {
        char err[1024];
        FILE *out = cli_open_output(output);
        if (!out)
            return CLI_FAIL;
        int r = stream(out, argv[optind], &o, err, sizeof err);
        return cli_finish_output(out, output, r, err);
    }

    cp_profile p;
    if (cli_load_many(argv + optind, (size_t)(argc - optind), &p, true) != CLI_OK)
        return CLI_FAIL;
    FILE *out = cli_open_output(output);
    if (!out) {
        cp_profile_free(&p);
        return CLI_FAIL;
    }
    char err[1024];
    int r = run(out, &p, &o, err, sizeof err);
    cp_profile_free(&p);
    return cli_finish_output(out, output, r, err);
}
