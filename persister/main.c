/*  mce-persister — follows the matcher and settler buses into Postgres and Redis.

    Walking skeleton: it follows both buses through bus_sub (so it sees every event exactly
    once, in order, across its own restarts and the producers') and logs each one. The stores
    come with the persister issue.
*/
#include "bus_sub.h"
#include "cli.h"
#include "log.h"

#include <czmq.h>
#include <inttypes.h>

static int s_on_event (void *arg, bus_sub_t *sub, const bus_event_t *ev)
{
    bus_event_log ("persister", sub, ev);
    return 0;
}

int main (int argc, char **argv)
{
    static const cli_info_t info = {
        "mce-persister",
        "The persister: follows the matcher and settler buses and writes every event exactly\n"
        "once into Postgres and Redis.",
        "Connects: matcher.bus, matcher.replay, settler.bus, settler.replay."};
    mce_config_t cfg;
    int status;
    if (cli_start (argc, argv, &info, &cfg, &status))
        return status;
    bus_sub_t *subs[2] = {bus_sub_new_for (&cfg, "m", "persister", 0),
                          bus_sub_new_for (&cfg, "s", "persister", 0)};
    int rc = -1;
    if (subs[0] && subs[1])
        rc = bus_sub_follow (&(bus_follow_t){.subs = subs, .count = 2, .on_event = s_on_event});
    bus_sub_destroy (&subs[0]);
    bus_sub_destroy (&subs[1]);
    return rc ? 1 : 0;
}
