/*
 * main.c — the `cpyprof` command: dispatch to the subcommands.
 *
 * Exit codes for every subcommand: 0 success, 1 failure (unreadable or
 * corrupt profile, cannot write), 2 usage error. `record` exits with the
 * profiled program's status instead; `diff` exits 1 when a rule is broken
 * and 2 for any usage or input error.
 */
#include "cli.h"
#include "core/version.h"

#include <string.h>

int cmd_gil(int argc, char **argv);  /* cmd_gil.c */
int cmd_diff(int argc, char **argv); /* cmd_diff.c */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"record", cmd_record, "run a Python program under the profiler"},
    {"report", cmd_report, "print the top functions of a profile (text or JSON)"},
    {"flame", cmd_flame, "draw an interactive SVG flamegraph"},
    {"convert", cmd_convert, "export a profile to another format (folded stacks, ...)"},
    {"gil", cmd_gil, "GIL hold and wait per thread, and what they mean"},
    {"diff", cmd_diff, "compare profiles function by function; fail on regressions"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: cpyprof COMMAND [OPTIONS] ...\n"
                 "A profiler for CPython 3.11.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "  cpyprof COMMAND --help   options of a command\n"
                 "  cpyprof --version        the version\n\n"
                 "Example:\n"
                 "  cpyprof record -o app.cpyprof -- python3 app.py\n"
                 "  cpyprof report app.cpyprof\n"
                 "  cpyprof flame app.cpyprof -o app.svg\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (strcmp(cmd, "help") == 0 && argc > 2) {
            /* "cpyprof help report" is "cpyprof report --help" */
            char *sub[] = {argv[2], "--help", NULL};
            for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                if (strcmp(argv[2], commands[i].name) == 0)
                    return commands[i].run(2, sub);
            cli_error("unknown command '%s'\nsee cpyprof --help", argv[2]);
            return CLI_USAGE;
        }
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("cpyprof %s\n", cp_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (cmd[0] == '-')
        cli_error("unknown option '%s'\nsee cpyprof --help", cmd);
    else
        cli_error("unknown command '%s'\nsee cpyprof --help", cmd);
    return CLI_USAGE;
}
