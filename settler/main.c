/*  mce-settler — settles every trade on Solana and publishes settlement events. See
    settler_server.h for how, and proto/messages.def for the records of its bus (stream s).
*/
#include "cli.h"
#include "log.h"
#include "settler_server.h"

#include <curl/curl.h>
#include <sodium.h>

int main (int argc, char **argv)
{
    static const cli_info_t info = {
        "mce-settler",
        "The settler: turns every trade on the matcher bus into SPL-token transfers on Solana\n"
        "(several trades per transaction), journals its intent and each signature before\n"
        "sending, follows every transaction to confirmation with retries, and publishes\n"
        "settlement events on its own replayable bus.",
        "Connects: matcher.bus, matcher.replay, settler.rpc_url (Solana JSON-RPC), postgres.url\n"
        "(users' wallets, read-only; unless settler.wallets = \"keys_file\").\n"
        "Binds: settler.bus (PUB), settler.replay (ROUTER), settler.commands (ROUTER, admin:\n"
        "list and retry settlements), settler.metrics_port. Journal: settler.journal_dir.\n"
        "Keys: settler.keys_file (platform key, mints, treasury; the ledger's setup JSON)."};
    mce_config_t cfg;
    int status;
    if (cli_start (argc, argv, &info, &cfg, &status))
        return status;
    if (sodium_init () < 0 || curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error ("settler", "cannot initialise libsodium or libcurl");
        return 1;
    }
    settler_server_t *server = settler_server_new (&cfg);
    if (!server) {
        log_error ("settler", "cannot start (the reason is logged above)");
        curl_global_cleanup ();
        return 1;
    }
    int rc = settler_server_run (server);
    settler_server_destroy (&server);
    curl_global_cleanup ();
    return rc ? 1 : 0;
}
