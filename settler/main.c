/*  mce-settler — settles every trade on Solana and publishes settlement events.

    Walking skeleton: it follows the matcher bus through bus_sub and logs each event, and it
    already owns its own journaled bus (settler.bus, settler.replay, heartbeats from bus_pub),
    so consumers of the settlement stream connect as DESIGN.md draws them. Settlement itself
    comes with the settler issue.
*/
#include "bus_pub.h"
#include "bus_sub.h"
#include "cli.h"
#include "log.h"

#include <czmq.h>
#include <inttypes.h>

static int s_on_event (void *arg, bus_sub_t *sub, const bus_event_t *ev)
{
    bus_event_log ("settler", sub, ev);
    return 0;
}

int main (int argc, char **argv)
{
    static const cli_info_t info = {
        "mce-settler",
        "The settler: turns every trade on the matcher bus into SPL-token transfers on Solana,\n"
        "journals its intent before sending, and publishes settlement events.",
        "Connects: matcher.bus, matcher.replay.\n"
        "Binds: settler.bus (PUB), settler.replay (ROUTER). Journal: settler.journal_dir."};
    mce_config_t cfg;
    int status;
    if (cli_start (argc, argv, &info, &cfg, &status))
        return status;
    char dir[CONFIG_PATH_MAX + 16];
    bus_pub_opts_t pub = {.stream = "s",
                          .pub_endpoint = cfg.settler.bus.pub,
                          .replay_endpoint = cfg.settler.bus.replay,
                          .journal_dir = config_journal_dir (&cfg, "settler", dir, sizeof dir),
                          .sndhwm = BUS_PUB_HWM};
    bus_pub_t *bus = bus_pub_new (&pub);
    bus_sub_t *sub = bus_sub_new_for (&cfg, "m", "settler", 0);
    int rc = -1;
    if (bus && sub) {
        rc = bus_sub_follow (&(bus_follow_t){.subs = &sub, .count = 1, .on_event = s_on_event});
    }
    bus_sub_destroy (&sub);
    bus_pub_destroy (&bus);
    return rc ? 1 : 0;
}
