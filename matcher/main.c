/*  mce-matcher — owns the order books, the matcher journal and the trade bus.  */
#include "cli.h"
#include "log.h"
#include "matcher_server.h"

#include <czmq.h>

int main (int argc, char **argv)
{
    static const cli_info_t info = {
        "mce-matcher",
        "The matcher: owns the order books, decides every command, journals the events with\n"
        "group commit and publishes them on the sequenced trade bus.",
        "Binds: matcher.commands (ROUTER, from gateways), matcher.bus (PUB, events),\n"
        "       matcher.replay (ROUTER, events from a seq). Journal: matcher.journal_dir."};
    mce_config_t cfg;
    int status;
    if (cli_start (argc, argv, &info, &cfg, &status))
        return status;
    matcher_server_t *server = matcher_server_new (&cfg);
    if (!server) {
        log_error ("matcher", "cannot start (the reason is logged above)");
        return 1;
    }
    int rc = matcher_server_run (server);
    matcher_server_destroy (&server);
    return rc ? 1 : 0;
}
