/*
 * cmd_convert.c — `cpyprof convert`: export a profile to another format.
 *
 * Adding a format is one function with the `exporter_fn` signature and one
 * line in the `formats` table.
 */
#include "cli.h"
#include "convert.h"
#include "report/folded.h"

#include <getopt.h>
#include <string.h>

static int export_folded(FILE *out, const cp_profile *p, const convert_options *o, char *err,
                         size_t errlen)
{
    return cp_folded_write(out, p, o->per_thread, err, errlen);
}

static const struct {
    const char *name;
    exporter_fn run;
    const char *summary;
} formats[] = {
    {"folded", export_folded,
     "collapsed stacks 'frame;frame value' (self ns, or self samples of a\n"
     "              sampled profile) for flamegraph.pl, inferno, speedscope"},
    {"speedscope", export_speedscope,
     "speedscope JSON (https://www.speedscope.app), one profile per thread"},
};

static void help(void)
{
    printf("Usage: cpyprof convert FILE --to FORMAT -o OUT [OPTIONS]\n"
           "Export a profile to another format.\n\n"
           "  -t, --to FORMAT   the output format (see below)\n"
           "  -o, --output OUT  the output file; '-' is standard output\n"
           "      --threads     keep threads apart (a 'thread NAME' root frame)\n"
           "  -h, --help        this help\n\n"
           "Formats:\n");
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        printf("  %-11s %s\n", formats[i].name, formats[i].summary);
}

int cmd_convert(int argc, char **argv)
{
    enum { OPT_THREADS = 256 };
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"threads", no_argument, NULL, OPT_THREADS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *to = NULL, *output = NULL;
    convert_options o = {0};
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
        case 'h':
            help();
            return CLI_OK;
        default:
            return cli_getopt_error("convert", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("convert", "missing the profile FILE");
    if (argc - optind > 1)
        return cli_usage("convert", "unexpected argument '%s'", argv[optind + 1]);
    if (!to)
        return cli_usage("convert", "missing --to FORMAT");
    if (!output)
        return cli_usage("convert", "missing -o OUT ('-' for standard output)");
    exporter_fn run = NULL;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (strcmp(to, formats[i].name) == 0)
            run = formats[i].run;
    if (!run)
        return cli_usage("convert", "--to: unknown format '%s' (see --help)", to);
    o.source = argv[optind];

    cp_profile p;
    if (cli_load(argv[optind], &p, true) != CLI_OK)
        return CLI_FAIL;
    FILE *out = cli_open_output(output);
    if (!out) {
        cp_profile_free(&p);
        return CLI_FAIL;
    }
    char err[1024];
    int r = run(out, &p, &o, err, sizeof err);
    cp_profile_free(&p);
    if (r) {
        cli_error("%s", err);
        if (out != stdout)
            fclose(out);
        return CLI_FAIL;
    }
    return cli_close_output(out, output);
}
