/*
 * cmd_gil.c — `cpyprof gil`: GIL hold and wait per thread (a profile
 * recorded with --gil), and what the numbers say in plain words.
 */
#include "cli.h"
#include "report/gil.h"
#include "report/text.h"

#include <getopt.h>

int cmd_gil(int argc, char **argv);

static void help(void)
{
    printf("Usage: cpyprof gil FILE\n"
           "Print the GIL accounting of a profile recorded with --gil (or CPYPROF_GIL,\n"
           "or cpyprof.start(gil=True)): per thread the time it held the GIL and the\n"
           "time it waited for it (shares of wall time), how often it acquired it, its\n"
           "longest hold and wait; the GIL's busy share and switches per second; and a\n"
           "reading of those numbers in plain words.\n\n"
           "      --json   JSON instead (schema cpyprof.gil/1)\n"
           "  -h, --help   this help\n\n"
           "Stacks: cpyprof flame --gil-wait FILE -o wait.svg (where threads waited)\n"
           "        cpyprof flame --gil-hold FILE -o hold.svg (what held the GIL)\n");
}

int cmd_gil(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'h':
            help();
            return CLI_OK;
        default:
            return cli_getopt_error("gil", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("gil", "missing the profile FILE");
    if (argc - optind > 1)
        return cli_usage("gil", "unexpected argument '%s'", argv[optind + 1]);
    cp_profile p;
    if (cli_load(argv[optind], &p, true) != CLI_OK)
        return CLI_FAIL;
    cp_gil_data g;
    char err[1024];
    if (cp_gil_load(argv[optind], &g, err, sizeof err) != 0) {
        cli_error("%s", err);
        cp_profile_free(&p);
        return CLI_FAIL;
    }
    int rc = CLI_OK;
    const char *why = cp_profile_meta(&p, "gil_disabled");
    if (!g.present && why) {
        cli_error("%s has no GIL data: GIL accounting was asked for but disabled in the run: %s",
                  argv[optind], why);
        rc = CLI_FAIL;
    } else if (!g.present) {
        cli_error("%s has no GIL data: record with --gil (cpyprof record --gil -- python3 "
                  "app.py), CPYPROF_GIL=1 or cpyprof.start(gil=True)",
                  argv[optind]);
        rc = CLI_FAIL;
    } else {
        if (json)
            cp_gil_print_json(stdout, &p, &g);
        else
            cp_gil_print(stdout, &p, &g);
        if (cp_flush_checked(stdout, "cannot write the GIL report", err, sizeof err) != 0) {
            cli_error("%s", err);
            rc = CLI_FAIL;
        }
    }
    cp_gil_free(&g);
    cp_profile_free(&p);
    return rc;
}
