/*  cli — the command line every mce executable shares:
        mce-<name> [-c FILE] [--check-config] [--log-level LEVEL] [--help] [--version]
    It loads and checks the configuration, sets up the logger, prints help and version, and
    tells main whether to run or to exit with a status.
*/
#ifndef MCE_CLI_H
#define MCE_CLI_H

#include "config.h"

typedef struct {
    const char *name;    //  "mce-matcher"
    const char *summary; //  one line: what the process does
    const char *details; //  more help text (endpoints it binds and connects), or NULL
} cli_info_t;

//  Returns 0 when main should run with *cfg loaded (and logged, and czmq initialised), else 1
//  with *exit_code set (help and version printed, config checked, or an error explained).
int cli_start (int argc, char **argv, const cli_info_t *info, mce_config_t *cfg, int *exit_code);

#endif
