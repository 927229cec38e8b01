/*  cli — see cli.h. Exit statuses: 0 fine, 2 bad usage or bad configuration (as BSD's EX_USAGE
    family would say, kept to one number so scripts need check only one).
*/
#include "cli.h"
#include "log.h"

#include <czmq.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXIT_USAGE 2

static void s_help (const cli_info_t *info)
{
    printf ("Usage: %s [-c FILE] [--check-config] [--log-level LEVEL] [--help] [--version]\n\n"
            "%s\n\n"
            "Options:\n"
            "  -c, --config FILE    configuration file (libconfig syntax; see compose/mce.cfg).\n"
            "                       Without it, built-in defaults for one machine are used.\n"
            "      --check-config   load and check the configuration, print the effective\n"
            "                       values, and exit: 0 if valid, 2 if not\n"
            "      --log-level L    error, warn, info (default) or debug; overrides log_level\n"
            "  -h, --help           this help\n"
            "  -V, --version        print the version\n\n"
            "Any key can also be set from the environment as MCE_<KEY>, dots as underscores:\n"
            "  MCE_MATCHER_FSYNC=never  MCE_GATEWAY_HTTP_PORT=8090  MCE_DATA_DIR=/var/lib/mce\n",
            info->name, info->summary);
    if (info->details)
        printf ("\n%s\n", info->details);
}

int cli_start (int argc, char **argv, const cli_info_t *info, mce_config_t *cfg, int *exit_code)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},    {"check-config", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *level = NULL;
    int check = 0, opt;
    log_init (info->name);
    optind = 1;
    while ((opt = getopt_long (argc, argv, "c:hV", options, NULL)) != -1) {
        switch (opt) {
            case 'c':
                path = optarg;
                break;
            case 'k':
                check = 1;
                break;
            case 'l':
                level = optarg;
                break;
            case 'h':
                s_help (info);
                *exit_code = 0;
                return 1;
            case 'V':
                printf ("%s %s\n", info->name, MCE_VERSION);
                *exit_code = 0;
                return 1;
            default:
                fprintf (stderr, "%s: try --help\n", info->name);
                *exit_code = S_EXIT_USAGE;
                return 1;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "%s: unexpected argument '%s' (try --help)\n", info->name, argv[optind]);
        *exit_code = S_EXIT_USAGE;
        return 1;
    }
    char err[CONFIG_ERR_MAX];
    if (config_load (cfg, path, err, sizeof err)) {
        fprintf (stderr, "%s: configuration error: %s\n", info->name, err);
        *exit_code = S_EXIT_USAGE;
        return 1;
    }
    if (level && log_level_parse (level) < 0) {
        fprintf (stderr, "%s: --log-level: must be error, warn, info or debug\n", info->name);
        *exit_code = S_EXIT_USAGE;
        return 1;
    }
    log_set_level (log_level_parse (level ? level : cfg->log_level));
    if (check) {
        log_set_level (MCE_LOG_INFO);
        config_log (cfg, "config", MCE_LOG_INFO); //  the check shows what is in effect
        printf ("%s: configuration %s is valid\n", info->name, path ? path : "(built-in defaults)");
        *exit_code = 0;
        return 1;
    }
    //  czmq's own logging would bypass ours; its signal handler sets zsys_interrupted, which
    //  every loop checks to stop cleanly on SIGINT/SIGTERM.
    zsys_init ();
    zsys_set_logstream (NULL);
    config_log (cfg, "config", MCE_LOG_DEBUG); //  once, at start; --check-config shows it too
    return 0;
}
