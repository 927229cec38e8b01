/*  ledgertest — the local Solana ledger (tools/ledger/ledger.js) for integration tests and the
    settler's benchmark: started on a free port with --watch-pid (it exits when the test
    process does, however that ends), its ready line awaited with a deadline, its setup file
    read, JSON-RPC calls made to it, and stopped by pid.

    Also the checks every settler test makes at the end: the chain's token balances against
    the net positions the trades imply, and the memos of the landed transactions against the
    trade ids (every trade in exactly one successful transaction).
*/
#ifndef MCE_LEDGERTEST_H
#define MCE_LEDGERTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LEDGERTEST_DEADLINE_MS 20000

typedef struct {
    pid_t pid;
    int port;
    char url[64];
    char setup_path[256];
    char log_path[256];
    json_t *setup; //  the setup file (users, mints, treasury)
} ledgertest_t;

//  Starts `node tools/ledger/ledger.js --port 0 --setup-out <dir>/ledger.json --watch-pid
//  <this process>` with args (NULL-terminated, may be NULL), stderr into <dir>/ledger.log.
//  0, or -1 (reason on stderr).
int ledgertest_start (ledgertest_t *l, const char *dir, const char *const *args);
//  SIGTERM, then SIGKILL after a deadline. Idempotent.
void ledgertest_stop (ledgertest_t *l);
//  Reads the setup file again (after mce_addUser). 0 or -1.
int ledgertest_reload (ledgertest_t *l);

//  One JSON-RPC call; params is JSON text ("[]" when NULL). Returns the result (the caller
//  owns it), or NULL on an HTTP or JSON-RPC error (printed).
json_t *ledgertest_rpc (ledgertest_t *l, const char *method, const char *params);
//  Base units in a token account, -1 on error.
int64_t ledgertest_balance (ledgertest_t *l, const char *account);
//  The user `name` of the setup file, NULL if absent (borrowed from l->setup).
json_t *ledgertest_user (ledgertest_t *l, const char *name);
//  A string field of the setup ("treasury", "paymentAccount"), borrowed.
const char *ledgertest_field (ledgertest_t *l, const char *object, const char *field);

//  A trade as the checks need it.
typedef struct {
    uint64_t trade_id;
    char buyer[65], seller[65];
    int64_t qty, value, fee;
} ledgertest_trade_t;

//  Counts, over every landed transaction without error whose memo starts with "mce:t=", how
//  often each trade id appears: ids[i] must come back with counts[i]. Returns the number of
//  such transactions, -1 on error. Also counts ids that are not in the list (*strays).
int ledgertest_memo_counts (ledgertest_t *l, const uint64_t *ids, size_t n, int *counts,
                            size_t *strays);

//  Balances before anything settled, per user of the setup (energy and payment), and the
//  treasury's.
typedef struct {
    char name[65];
    char energy[64], payment[64];
    int64_t energy0, payment0;
} ledgertest_account_t;

typedef struct {
    ledgertest_account_t users[64];
    size_t count;
    char treasury[64];
    int64_t treasury0;
    char vault_energy[64], vault_payment[64]; //  the escrow (the setup's vaults)
    int64_t vault_energy0, vault_payment0;
} ledgertest_book_t;

//  Takes the starting balances of every user in the setup file (but those made without token
//  accounts), the treasury's and the vaults'.
int ledgertest_book (ledgertest_t *l, ledgertest_book_t *book);
//  Compares the chain with the book moved by the trades (energy seller → buyer, value − fee
//  buyer → seller, fee buyer → treasury). Returns the number of mismatches (printed).
int ledgertest_check_balances (ledgertest_t *l, const ledgertest_book_t *book,
                               const ledgertest_trade_t *trades, size_t n);
//  The same for trades settled out of escrow: energy vault → buyer, value − fee vault →
//  seller, fee vault → treasury; the sellers' energy and the buyers' payment stay as booked.
int ledgertest_check_escrow (ledgertest_t *l, const ledgertest_book_t *book,
                             const ledgertest_trade_t *trades, size_t n);
//  Counts, over every landed transaction without error whose memo starts with prefix ("mce:d="
//  deposits, "mce:w=" withdrawals, "mce:t=" trades), how often each id appears, as
//  ledgertest_memo_counts does.
int ledgertest_memo_ids (ledgertest_t *l, const char *prefix, const uint64_t *ids, size_t n,
                         int *counts, size_t *strays);

#endif
