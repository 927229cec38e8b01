/*  mce-broadcaster — fans market data out over WebSocket and a ZeroMQ XPUB.

    It follows both buses from their first event (bus_sub replays what it missed, across its
    own restarts and the producers'), keeps the read model the gateway keeps, and serves the
    channels of broadcaster/PROTOCOL.md: a snapshot on subscribe, then shared updates.
*/
#include "broadcaster_server.h"
#include "cli.h"
#include "log.h"

#include <czmq.h>
#include <sys/resource.h>

//  A descriptor per client: the soft limit (often 1024) goes up to the hard one.
static void s_raise_fd_limit (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit) < 0)
            log_warn ("broadcaster", "cannot raise the descriptor limit to %llu",
                      (unsigned long long) limit.rlim_max);
    }
}

int main (int argc, char **argv)
{
    static const cli_info_t info = {
        "mce-broadcaster",
        "The broadcaster: follows the matcher and settler buses and fans market data out to\n"
        "WebSocket clients (channels depth, trades, ticker, epochs, indicative, settlements, and "
        "each\n"
        "user's orders; see broadcaster/PROTOCOL.md) and to ZeroMQ monitors on an XPUB.",
        "Listens: broadcaster.ws_address:ws_port (WebSocket), broadcaster.xpub (monitors),\n"
        "broadcaster.metrics_port. Connects: matcher.bus, matcher.replay, settler.bus,\n"
        "settler.replay. The orders channel checks tokens with gateway.jwt_secret."};
    mce_config_t cfg;
    int status;
    if (cli_start (argc, argv, &info, &cfg, &status))
        return status;
    s_raise_fd_limit ();
    broadcaster_server_t *server = broadcaster_server_new (&cfg);
    if (!server)
        return 1;
    int rc = broadcaster_server_run (server);
    broadcaster_server_destroy (&server);
    //  every process says when it stops, so a log shows a stop from a crash
    if (rc)
        log_error ("broadcaster", "stopped after an error (the reason is logged above)");
    else
        log_info ("broadcaster", "stopped");
    return rc ? 1 : 0;
}
