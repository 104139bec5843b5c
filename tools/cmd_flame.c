/*
 * cmd_flame.c — `cpyprof flame`: an interactive SVG flamegraph.
 *
 * The merged tree of the profile (report/model.h) is flattened into the
 * pre-order node array cp_svg_write() takes: node 0 is the root "all",
 * values are inclusive times in ns (sample counts for a sampled profile).
 */
#include "cli.h"
#include "report/alloc.h"
#include "report/flame_diff.h"
#include "report/gil.h"
#include "report/model.h"
#include "report/svg.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("Usage: cpyprof flame FILE... -o OUT.svg [OPTIONS]\n"
           "Draw the profile's call trees, all threads merged, as a flamegraph that opens\n"
           "in any browser (click to zoom, Ctrl-F to search). Widths are total time, or\n"
           "sample counts for a sampled profile. Several files, or a directory (record\n"
           "--subprocesses -o DIR/), are merged under one 'process PID: COMMAND' frame\n"
           "per process.\n\n"
           "  -o, --output OUT   the SVG file; '-' is standard output\n"
           "      --title TEXT   the title (default: the profiled command)\n"
           "      --width PX     the image width (default 1200)\n"
           "      --inverted     icicle graph: roots on top\n"
           "      --threads      one tower per thread, under a 'thread NAME' frame\n"
           "      --gil-wait     the stacks that waited for the GIL, by wait time\n"
           "      --gil-hold     the stacks that held the GIL, by hold time (--gil profiles)\n"
           "      --alloc-bytes  the stacks that allocated, by bytes allocated (--alloc\n"
           "                     profiles; one tower per thread)\n"
           "      --alloc-count  the same, by number of allocations\n"
           "      --diff         differential: FILE... is BASE NEW; widths from NEW, red\n"
           "                     where NEW is slower, blue where faster, stronger for larger\n"
           "                     changes (4x = full colour); tooltips show both values\n"
           "  -h, --help         this help\n");
}

typedef struct flame_args {
    const char *output;
    const char *title;
    unsigned width;
    bool inverted;
    bool per_thread;
    int gil;   /* 0: call trees; 1: GIL wait stacks; 2: GIL hold stacks */
    int alloc; /* 0: not; 1: bytes allocated; 2: allocation count */
    bool diff; /* BASE NEW: a differential flamegraph */
} flame_args;

/* The title: --title, else "cpyprof WHAT: COMMAND" ("cpyprof: COMMAND"
 * when what is NULL). */
static void make_title(const cp_profile *p, const flame_args *a, const char *what, char *title,
                       size_t n)
{
    char command[1024];
    const char *sep = what ? " " : "";
    if (!what)
        what = "";
    if (a->title)
        snprintf(title, n, "%s", a->title);
    else if (cli_profile_command(p, command, sizeof command))
        snprintf(title, n, "cpyprof%s%s: %s", sep, what, command);
    else
        snprintf(title, n, "cpyprof%s%s", sep, what);
}

/* Writes the towers a cp_gil_flame / cp_alloc_flame call built (r: its
 * result; nothing to write unless 0) and frees them. */
static int write_towers(const cp_profile *p, const flame_args *a, FILE *out, int r,
                        cp_flame_node *nodes, size_t n, char *names, const char *what,
                        const char *subtitle, const char *unit, char *err, size_t errlen)
{
    if (r != 0)
        return r;
    char title[1200];
    make_title(p, a, what, title, sizeof title);
    cp_svg_options opt = {.title = title,
                          .subtitle = subtitle,
                          .unit = unit,
                          .width = a->width,
                          .inverted = a->inverted};
    r = cp_svg_write(out, nodes, n, &opt, err, errlen);
    free(nodes);
    free(names);
    return r;
}

/* --gil-wait / --gil-hold: the GIL stack trees, one tower per thread. */
static int draw_gil(const cp_profile *p, const char *path, const flame_args *a, FILE *out,
                    char *err, size_t errlen)
{
    cp_gil_data g;
    if (cp_gil_load(path, &g, err, errlen) != 0)
        return -1;
    cp_flame_node *nodes = NULL;
    size_t n = 0;
    char *names = NULL;
    bool wait = a->gil == 1;
    int r = cp_gil_flame(p, &g, wait ? 0 : 1, &nodes, &n, &names, err, errlen);
    r = write_towers(p, a, out, r, nodes, n, names, wait ? "GIL wait" : "GIL hold",
                     wait ? "time spent waiting for the GIL, by stack"
                          : "time holding the GIL, by the stack that released it",
                     "ns", err, errlen);
    cp_gil_free(&g);
    return r;
}

/* --alloc-bytes / --alloc-count: the allocation trees, one tower per thread. */
static int draw_alloc(const cp_profile *p, const char *path, const flame_args *a, FILE *out,
                      char *err, size_t errlen)
{
    cp_alloc_data ad;
    if (cp_alloc_load(path, &ad, err, errlen) != 0)
        return -1;
    cp_flame_node *nodes = NULL;
    size_t n = 0;
    char *names = NULL;
    bool bytes = a->alloc == 1;
    int r = cp_alloc_flame(p, &ad, bytes ? CP_ALLOC_BYTES : CP_ALLOC_COUNT, &nodes, &n, &names, err,
                           errlen);
    r = write_towers(p, a, out, r, nodes, n, names, bytes ? "bytes allocated" : "allocations",
                     bytes ? "bytes allocated, by the stack that allocated"
                           : "allocations, by the stack that allocated",
                     bytes ? "bytes" : "allocations", err, errlen);
    cp_alloc_free(&ad);
    return r;
}

/* Builds the svg nodes and writes them. */
static int draw(const cp_profile *p, const cp_profile *base, const flame_args *a, FILE *out,
                char *err, size_t errlen)
{
    cp_merged m, bm = {0};
    if (cp_merged_build(p, a->per_thread, &m, err, errlen))
        return -1;
    if (base && cp_merged_build(base, a->per_thread, &bm, err, errlen)) {
        cp_merged_free(&m);
        return -1;
    }
    uint32_t *order = malloc(m.n * sizeof *order);
    uint32_t *pos = malloc(m.n * sizeof *pos); /* merged index -> position in order */
    cp_flame_node *nodes = malloc(m.n * sizeof *nodes);
    cp_flame_base *bases = base ? malloc(m.n * sizeof *bases) : NULL;
    int r = -1;
    if (!order || !pos || !nodes || (base && !bases)) {
        snprintf(err, errlen, "out of memory while drawing the flamegraph");
        goto out;
    }
    cp_merged_preorder(&m, order);
    for (size_t k = 0; k < m.n; k++)
        pos[order[k]] = (uint32_t)k;
    for (size_t k = 0; k < m.n; k++) {
        const cp_mnode *n = &m.nodes[order[k]];
        if (k == 0) {
            nodes[0] = (cp_flame_node){"all", NULL, UINT32_MAX, n->total_ns, CPYPROF_FUNC_SPECIAL};
            continue;
        }
        const cp_mframe *f = &m.frames[n->frame];
        nodes[k] = (cp_flame_node){f->name, f->detail, pos[n->parent], n->total_ns, f->kind};
    }
    if (base && cp_flame_diff_fill(base, &bm, p, &m, order, bases, err, errlen))
        goto out;

    char title[1200], subtitle[512];
    make_title(p, a, NULL, title, sizeof title);
    const char *mode = cp_profile_meta(p, "mode");
    char mode_text[128];
    if (p->samples) {
        const char *clock = cp_profile_meta(p, "sample_clock");
        const char *rate = cp_profile_meta(p, "sample_rate");
        snprintf(mode_text, sizeof mode_text, "sample (%.20s clock, %.20s Hz)", clock ? clock : "?",
                 rate ? rate : "?");
        mode = mode_text;
    }
    int len = snprintf(subtitle, sizeof subtitle, "%s, %zu thread%s, ", mode ? mode : "trace",
                       p->n_threads, p->n_threads == 1 ? "" : "s");
    if (base)
        snprintf(subtitle + len, sizeof subtitle - (size_t)len,
                 "width: NEW; red: slower than BASE, blue: faster");
    else if (p->has_trailer)
        snprintf(subtitle + len, sizeof subtitle - (size_t)len, "%llu records dropped",
                 (unsigned long long)p->trailer.events_dropped);
    else
        snprintf(subtitle + len, sizeof subtitle - (size_t)len, "truncated profile");
    cp_svg_options opt = {.title = title,
                          .subtitle = subtitle,
                          .unit = p->samples ? "samples" : "ns",
                          .width = a->width,
                          .inverted = a->inverted};
    r = cp_svg_write_diff(out, nodes, m.n, bases, &opt, err, errlen);
out:
    free(order);
    free(pos);
    free(nodes);
    free(bases);
    cp_merged_free(&m);
    if (base)
        cp_merged_free(&bm);
    return r;
}

/* --diff BASE NEW */
static int flame_diff(const char *base_path, const char *new_path, const flame_args *a)
{
    cp_profile base, p;
    if (cli_load(base_path, &base, true) != CLI_OK)
        return CLI_FAIL;
    if (cli_load(new_path, &p, true) != CLI_OK) {
        cp_profile_free(&base);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    char err[1024];
    if (base.samples != p.samples) {
        cli_error("flame --diff: %s is %s and %s is not: record both in the same --mode",
                  base.samples ? base_path : new_path, "a sampled profile",
                  base.samples ? new_path : base_path);
        goto done;
    }
    FILE *out = cli_open_output(a->output);
    if (!out)
        goto done;
    int r = draw(&p, &base, a, out, err, sizeof err);
    rc = cli_finish_output(out, a->output, r, err);
done:
    cp_profile_free(&base);
    cp_profile_free(&p);
    return rc;
}

int cmd_flame(int argc, char **argv)
{
    enum {
        OPT_TITLE = 256,
        OPT_WIDTH,
        OPT_INVERTED,
        OPT_THREADS,
        OPT_GIL_WAIT,
        OPT_GIL_HOLD,
        OPT_ALLOC_BYTES,
        OPT_ALLOC_COUNT,
        OPT_DIFF
    };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"title", required_argument, NULL, OPT_TITLE},
        {"width", required_argument, NULL, OPT_WIDTH},
        {"inverted", no_argument, NULL, OPT_INVERTED},
        {"threads", no_argument, NULL, OPT_THREADS},
        {"gil-wait", no_argument, NULL, OPT_GIL_WAIT},
        {"gil-hold", no_argument, NULL, OPT_GIL_HOLD},
        {"alloc-bytes", no_argument, NULL, OPT_ALLOC_BYTES},
        {"alloc-count", no_argument, NULL, OPT_ALLOC_COUNT},
        {"diff", no_argument, NULL, OPT_DIFF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    flame_args a = {0};
    unsigned long long n;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            a.output = optarg;
            break;
        case OPT_TITLE:
            a.title = optarg;
            break;
        case OPT_WIDTH:
            if (!cli_parse_uint(optarg, 100, 100000, &n))
                return cli_usage("flame",
                                 "--width: '%s' is not a width (expected 100..100000 "
                                 "pixels)",
                                 optarg);
            a.width = (unsigned)n;
            break;
        case OPT_INVERTED:
            a.inverted = true;
            break;
        case OPT_THREADS:
            a.per_thread = true;
            break;
        case OPT_GIL_WAIT:
            a.gil = 1;
            break;
        case OPT_GIL_HOLD:
            a.gil = 2;
            break;
        case OPT_ALLOC_BYTES:
            a.alloc = 1;
            break;
        case OPT_ALLOC_COUNT:
            a.alloc = 2;
            break;
        case OPT_DIFF:
            a.diff = true;
            break;
        case 'h':
            help();
            return CLI_OK;
        default:
            return cli_getopt_error("flame", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("flame", "missing the profile FILE");
    if ((a.gil || a.alloc) && argc - optind > 1)
        return cli_usage("flame", "--gil-* and --alloc-* take one profile, not %d", argc - optind);
    if (!a.output)
        return cli_usage("flame", "missing -o OUT.svg ('-' for standard output)");
    if (a.diff && (a.gil || a.alloc))
        return cli_usage("flame", "--diff draws call trees: not with --gil-* or --alloc-*");
    if (a.diff && argc - optind != 2)
        return cli_usage("flame", "--diff takes two profiles, BASE and NEW, not %d", argc - optind);
    if (a.diff)
        return flame_diff(argv[optind], argv[optind + 1], &a);

    cp_profile p;
    if (cli_load_many(argv + optind, (size_t)(argc - optind), &p, true) != CLI_OK)
        return CLI_FAIL;
    FILE *out = cli_open_output(a.output);
    if (!out) {
        cp_profile_free(&p);
        return CLI_FAIL;
    }
    char err[1024];
    if (a.gil && a.alloc) {
        cp_profile_free(&p);
        if (out != stdout)
            fclose(out);
        return cli_usage("flame", "--gil-wait/--gil-hold and --alloc-bytes/--alloc-count "
                                  "exclude each other");
    }
    int r = a.gil     ? draw_gil(&p, argv[optind], &a, out, err, sizeof err)
            : a.alloc ? draw_alloc(&p, argv[optind], &a, out, err, sizeof err)
                      : draw(&p, NULL, &a, out, err, sizeof err);
    cp_profile_free(&p);
    return cli_finish_output(out, a.output, r, err);
}
