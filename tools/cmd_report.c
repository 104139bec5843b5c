/* cmd_report.c — `cpyprof report`: the top-functions table, text or JSON. */
#include "cli.h"
#include "report/text.h"
#include "report/alloc.h"
#include "report/samples_table.h"
#include "report/table.h"

#include <getopt.h>
#include <string.h>

static void help(void)
{
    printf("Usage: cpyprof report FILE... [OPTIONS]\n"
           "Print the functions of a profile with their calls, self and total time\n"
           "(sample counts and percentages for a sampled profile). Several files, or a\n"
           "directory (record --subprocesses -o DIR/), are merged: each process becomes a\n"
           "root frame 'process PID: COMMAND' of its threads' trees.\n\n"
           "  -s, --sort KEY   calls, self (default), total, self-per-call, total-per-call, name\n"
           "  -n, --limit N    show the first N functions (default 30; 0 = all)\n"
           "      --json       JSON (schema cpyprof.report/1, see docs/format.md); all\n"
           "                   functions unless --limit is given\n"
           "      --threads    one table per thread instead of all threads merged\n"
           "      --lines      sampled profiles: also a table per source line (function and\n"
           "                   the line number it was executing), with self%% and total%%\n"
           "  -h, --help       this help\n\n"
           "Self time excludes callees; total time includes them, counting a recursive\n"
           "function once per outermost call. For a sampled profile (record --mode sample)\n"
           "the table shows self%% and total%% of all samples and the sample counts;\n"
           "sort keys other than total and name sort by self samples.\n\n"
           "A profile recorded with --alloc also gets a table of allocations per function\n"
           "(allocations, bytes, frees, freed bytes and net bytes while the function was\n"
           "the innermost frame; total bytes including callees), the peak and the stack\n"
           "that reached it, and the garbage collections: their number, total time and\n"
           "the functions during which they ran.\n");
}

int cmd_report(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_THREADS, OPT_LINES };
    static const struct option opts[] = {
        {"sort", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"threads", no_argument, NULL, OPT_THREADS},
        {"lines", no_argument, NULL, OPT_LINES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cp_table_options o = {.sort = CP_SORT_SELF, .limit = 30};
    bool json = false, limit_given = false;
    unsigned long long n;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (cp_sort_key_parse(optarg, &o.sort))
                return cli_usage("report",
                                 "--sort: '%s' is not a sort key (expected calls, "
                                 "self, total, self-per-call, total-per-call, name)",
                                 optarg);
            break;
        case 'n':
            if (!cli_parse_uint(optarg, 0, SIZE_MAX, &n))
                return cli_usage("report", "--limit: '%s' is not a number (0 = all)", optarg);
            o.limit = (size_t)n;
            limit_given = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_THREADS:
            o.per_thread = true;
            break;
        case OPT_LINES:
            o.lines = true;
            break;
        case 'h':
            help();
            return CLI_OK;
        default:
            return cli_getopt_error("report", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("report", "missing the profile FILE");
    const char *path = argv[optind];
    if (json && !limit_given)
        o.limit = 0;
    o.source = path;

    cp_profile p;
    if (cli_load_many(argv + optind, (size_t)(argc - optind), &p, json) != CLI_OK)
        return CLI_FAIL;
    if (o.lines && !p.samples) {
        cli_error("%s: --lines needs a sampled profile (record --mode sample): a traced "
                  "profile has no line numbers",
                  path);
        cp_profile_free(&p);
        return CLI_FAIL;
    }
    char err[1024];
    cp_alloc_data alloc;
    memset(&alloc, 0, sizeof alloc);
    /* Allocation tables are per file (they name its function ids): several
     * processes merged show calls and times only. */
    bool merged = cp_profile_meta(&p, "processes") != NULL;
    if (!merged && cp_alloc_load(path, &alloc, err, sizeof err) != 0) {
        cli_error("%s", err);
        cp_profile_free(&p);
        return CLI_FAIL;
    }
    o.alloc = &alloc;
    int r = json        ? cp_report_json_write(stdout, &p, &o, err, sizeof err)
            : p.samples ? cp_samples_table_write(stdout, &p, &o, err, sizeof err)
                        : cp_table_write(stdout, &p, &o, err, sizeof err);
    if (r == 0 && !json) {
        /* after the table's own check: the allocation section is written
         * after it and needs its own */
        cp_alloc_print(stdout, &p, &alloc, o.limit);
        r = cp_flush_checked(stdout, "cannot write the report", err, sizeof err);
    }
    cp_alloc_free(&alloc);
    cp_profile_free(&p);
    if (r) {
        cli_error("%s", err);
        return CLI_FAIL;
    }
    return CLI_OK;
}
