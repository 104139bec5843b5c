/*
 * cli.h — what the `cpyprof` subcommands share: exit codes, messages,
 * loading a profile, opening outputs, parsing numbers.
 *
 * Every subcommand is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * subcommand's name, and returns the process exit code.
 */
#ifndef CPYPROF_TOOLS_CLI_H
#define CPYPROF_TOOLS_CLI_H

#include "report/profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_flame(int argc, char **argv);
int cmd_convert(int argc, char **argv);

/** Prints "cpyprof: MESSAGE" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Prints "cpyprof CMD: MESSAGE" and "see cpyprof CMD --help" to stderr;
 *  returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Turns getopt_long's last error into a cli_usage() message. `c` is what
 *  getopt_long returned ('?' or ':'); argv/optind locate the option. */
int cli_getopt_error(const char *cmd, int c, char **argv);

/** Loads a profile; prints the error and returns CLI_FAIL, or returns
 *  CLI_OK. With `warn`, a truncated profile's warning goes to stderr. */
int cli_load(const char *path, cp_profile *p, bool warn);

/** Loads the profiles named by paths[0..n): one file is loaded as it is;
 *  several files, or a directory (every regular file in it, as written by
 *  record --subprocesses -o DIR/), are merged with one root frame per
 *  process (cp_profile_merge). Messages and return values as cli_load. */
int cli_load_many(char *const *paths, size_t n, cp_profile *p, bool warn);

/** Opens `path` for writing ("-" = stdout). NULL after printing why. */
FILE *cli_open_output(const char *path);

/** Flushes and closes what cli_open_output returned; CLI_OK or CLI_FAIL
 *  after printing the write error. */
int cli_close_output(FILE *f, const char *path);

/** Ends an output after its writer returned `rc` with `err` set on failure:
 *  rc != 0 prints err and closes the file unchecked (what it holds is cut
 *  short anyway), CLI_FAIL; rc == 0 is cli_close_output. */
int cli_finish_output(FILE *f, const char *path, int rc, const char *err);

/** Parses a decimal unsigned number in [min, max]. */
bool cli_parse_uint(const char *text, unsigned long long min, unsigned long long max,
                    unsigned long long *out);

/** Parses a duration: a number of ns, or a decimal number with a unit ns,
 *  us, ms or s ("20us", "1.5ms"). */
bool cli_parse_duration(const char *text, uint64_t *ns);

/** The command line stored in the profile ("python3 app.py"), or NULL. */
const char *cli_profile_command(const cp_profile *p, char *buf, size_t n);

/** Finds libcpyprof.so for LD_PRELOAD (see libpath.c for the order).
 *  Returns 0 with the absolute path in buf, or -1 with err set. */
int cli_find_library(char *buf, size_t n, char *err, size_t errlen);

#endif
