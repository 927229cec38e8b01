/*  mce-persister — writes every matcher and settler event exactly once into Postgres, and
    keeps Redis's view of the books, market totals, newest trades and balances. See
    persister_server.h.
*/
#include "cli.h"
#include "log.h"
#include "persister_server.h"

int main (int argc, char **argv)
{
    static const cli_info_t info = {
        "mce-persister",
        "The persister: follows the matcher and settler buses and writes every event exactly\n"
        "once into Postgres (orders, trades, epochs, settlements, balances and their movements,\n"
        "deposits, withdrawals), in batches that carry their own bus offset, then the current\n"
        "books, market totals, newest trades and balances into Redis (rewritten whole after a\n"
        "Redis outage).",
        "Connects: matcher.bus, matcher.replay, settler.bus, settler.replay, postgres.url\n"
        "(waits for it, with backoff),\n"
        "redis.url (empty: no Redis; while unreachable, retried with backoff)."};
    mce_config_t cfg;
    int status;
    if (cli_start (argc, argv, &info, &cfg, &status))
        return status;
    persister_server_t *server = persister_server_new (&cfg);
    if (!server) {
        log_error ("persister", "cannot start (the reason is logged above)");
        return 1;
    }
    int rc = persister_server_run (server);
    persister_server_destroy (&server);
    return rc ? 1 : 0;
}
