/*  mce-settler — settles every trade on Solana, carries deposits and withdrawals through the
    platform's vaults, and publishes settlement and transfer events. See
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
        "(several trades per transaction; out of the platform's vaults in escrow markets),\n"
        "moves deposits into the vaults and pays withdrawals out of them, journals its intent\n"
        "and each signature before sending, follows every transaction to confirmation with\n"
        "retries, tells the matcher what to credit or refund, and publishes settlement and\n"
        "transfer events on its own replayable bus.",
        "Connects: matcher.bus, matcher.replay, matcher.commands (deposit_credit,\n"
        "withdrawal_close), settler.rpc_url (Solana JSON-RPC), postgres.url (users' wallets,\n"
        "read-only; unless settler.wallets = \"keys_file\").\n"
        "Binds: settler.bus (PUB), settler.replay (ROUTER), settler.commands (ROUTER, admin:\n"
        "list and retry settlements, deposits), settler.metrics_port. Journal:\n"
        "settler.journal_dir. Keys: settler.keys_file (platform key, mints, treasury; the\n"
        "ledger's setup JSON; the vaults are the platform key's token accounts)."};
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
