/*  settlertest — the steps the settler's integration tests share: a real Postgres with the
    gateway's users table holding the ledger users' wallets, the local ledger, a real matcher
    fed with crossing orders (and withdrawals), the real settler (as often as a test restarts
    it), a consumer of the settler bus that remembers what became of every trade, deposit and
    withdrawal, the settler's admin port (deposits come in there), and the matcher's journal
    read back to count what the matcher credited, paid and refunded.
    Every wait has a deadline; none sleeps.
*/
#ifndef MCE_SETTLERTEST_H
#define MCE_SETTLERTEST_H

#include "bus_sub.h"
#include "harness.h"
#include "ledgertest.h"
#include "pg.h"
#include "pgtest.h"
#include "proto.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define SETTLERTEST_TRADES_MAX    100000
#define SETTLERTEST_TRANSFERS_MAX 20000 //  deposit ids and withdrawal ids, each

typedef struct {
    uint8_t confirmed; //  confirmed events seen for the trade (must end at exactly 1)
    uint8_t failed;    //  failed events seen
    uint8_t state;     //  latest proto_settle_state_t
    uint64_t settlement_id;
    char error[PROTO_STR128_MAX + 1];
} settlertest_seen_t;

//  What the settler bus said about one deposit or withdrawal.
typedef struct {
    uint8_t state; //  latest proto_transfer_state_t
    uint8_t pending, confirmed, failed, credited, closed, refunded; //  records of each state
    uint64_t mseq;                                                  //  of the credited record
    char error[PROTO_STR128_MAX + 1];
    char user[PROTO_STR64_MAX + 1]; //  from the intent
    uint8_t asset;
    int64_t amount;
} settlertest_tseen_t;

typedef struct {
    harness_t h;
    pgtest_t pg;
    ledgertest_t ledger;
    pg_t *db;
    int matcher;
    int settler;      //  harness index of the settler running now, -1 when none
    int settler_runs; //  settlers started so far (their "ready" lines share one log)
    zsock_t *orders;  //  DEALER to the matcher
    bus_sub_t *bus;   //  the settler's bus, stream s
    uint64_t rid;
    int metrics_port;
    char admin[64];
    settlertest_seen_t *seen;         //  by trade id
    settlertest_tseen_t *deposits;    //  by deposit id
    settlertest_tseen_t *withdrawals; //  by withdrawal id
    uint64_t epochs_settled;
    int64_t last_settled_epoch;
    uint64_t last_settled_mseq; //  the matcher seq of the clear it follows
} settlertest_t;

//  Postgres, the ledger (ledger_args: NULL-terminated extra flags, or NULL) with its users
//  registered in the users table, the config (markets etc. in extra_config), the matcher. The
//  settler's endpoints and keys go to it through the environment (MCE_SETTLER_*), so a test
//  may setenv more settler keys before settlertest_settler.
void settlertest_init (settlertest_t *t, const char *extra_config, const char *const *ledger_args);
//  Stops everything (settler, matcher, ledger, Postgres) and frees. For .fini.
void settlertest_fini (settlertest_t *t);

//  Subscribes to the settler's bus from its first seq (settlertest_init does not: a test that
//  kills the settler while it publishes keeps no subscriber meanwhile, as libzmq may abort a
//  subscriber whose publisher dies halfway through a multipart message). What an earlier
//  subscriber saw is forgotten: the new one sees it all again.
void settlertest_follow (settlertest_t *t);
//  Starts a settler and waits until it is ready (its log says so). Returns its index.
int settlertest_settler (settlertest_t *t);
//  kill -9 of the running settler.
void settlertest_kill (settlertest_t *t);

//  Registers (or re-registers) a user's wallet in the users table.
void settlertest_register (settlertest_t *t, const char *user, const char *wallet);
//  A trade: a sell order of seller, then a crossing buy of buyer, both at price for qty, in
//  epoch (0 = the current one). Waits for both replies.
void settlertest_trade (settlertest_t *t, const char *seller, const char *buyer, int64_t qty,
                        int64_t price, int64_t epoch);
//  An admin's market_control action on campus-1 (e.g. clear_epoch). Waits for the reply.
void settlertest_control (settlertest_t *t, proto_control_action_t action);
//  A crossing pair like settlertest_trade, when the matcher may refuse the orders (escrow: not
//  enough balance). true when both were accepted.
bool settlertest_try_trade (settlertest_t *t, const char *seller, const char *buyer, int64_t qty,
                            int64_t price);
//  One GTC limit order of user on campus-1. true when it was accepted.
bool settlertest_order (settlertest_t *t, const char *user, proto_side_t side, int64_t qty,
                        int64_t price);

//  A deposit asked of the settler's admin port, as the gateway asks it. Returns the status of
//  the reply; *id is the deposit id (0 when none), message (when not NULL) the reply's.
proto_settler_status_t settlertest_deposit (settlertest_t *t, const char *owner,
                                            proto_asset_t asset, int64_t amount, uint64_t *id,
                                            char *message, size_t size);
//  A withdrawal asked of the matcher. Returns its id, or 0 when the matcher refused it (the
//  reason into *reason when not NULL).
uint64_t settlertest_withdraw (settlertest_t *t, const char *user, proto_asset_t asset,
                               int64_t amount, proto_reject_reason_t *reason);
//  Follows the settler bus until every transfer of kind with ids[0..n) is final (a deposit
//  credited or failed, a withdrawal closed or refunded), or the deadline passes.
bool settlertest_wait_transfers (settlertest_t *t, proto_transfer_kind_t kind, const uint64_t *ids,
                                 size_t n, int timeout_ms);
//  The seen-record of a transfer.
settlertest_tseen_t *settlertest_tseen (settlertest_t *t, proto_transfer_kind_t kind, uint64_t id);

//  What the matcher's journal holds about transfers, counted by id.
typedef struct {
    char user[PROTO_STR64_MAX + 1];
    int64_t held[2]; //  energy, payment: available + reserved after its latest balance event
} settlertest_holder_t;

typedef struct {
    uint32_t credits[SETTLERTEST_TRANSFERS_MAX + 1];   //  balance events of cause deposit
    uint32_t requested[SETTLERTEST_TRANSFERS_MAX + 1]; //  withdrawal events, by phase
    uint32_t paid[SETTLERTEST_TRANSFERS_MAX + 1];
    uint32_t refunds[SETTLERTEST_TRANSFERS_MAX + 1]; //  balance events of cause refund
    uint32_t refunded[SETTLERTEST_TRANSFERS_MAX + 1];
    uint64_t deposit_commands;      //  deposit_credit commands journaled (resends included)
    uint64_t close_commands;        //  withdrawal_close commands journaled
    settlertest_holder_t users[64]; //  every user with a balance event (the first 64)
    size_t user_count;
    int64_t held[2]; //  energy, payment: the sum over users (what the vaults must hold)
} settlertest_matcher_t;

//  Reads the matcher's journal into a new settlertest_matcher_t (caller frees).
settlertest_matcher_t *settlertest_matcher (settlertest_t *t);
//  A user's balance in the matcher (its latest balance event), 0 and 0 when none.
void settlertest_balance (settlertest_t *t, const char *user, proto_asset_t asset,
                          int64_t *available, int64_t *reserved);

//  The trades in the matcher's journal (fees with fee_ppm), into a new array (caller frees).
size_t settlertest_journal_trades (harness_t *h, int64_t fee_ppm, ledgertest_trade_t **out);
//  Follows the settler bus until every trade id in 1..last has a settlement in a final state
//  (confirmed, or failed when allow_failed), or the deadline passes. true when it got there.
bool settlertest_wait_final (settlertest_t *t, uint64_t last, bool allow_failed, int timeout_ms);
//  Follows the settler bus until an epoch_state settled for epoch arrives.
bool settlertest_wait_epoch_settled (settlertest_t *t, int64_t epoch, int timeout_ms);
//  Takes what the settler bus has now (no waiting).
void settlertest_drain (settlertest_t *t);
//  Takes the next event of the settler bus, waiting up to timeout_ms. false when none came.
bool settlertest_next (settlertest_t *t, int timeout_ms);

//  Sends an admin command; the records of the answer (settlements, or a deposit's transfer)
//  go to views (at most max), the reply to *reply. Returns how many came, -1 when no answer
//  came.
int settlertest_admin (settlertest_t *t, const proto_settler_command_t *cmd, proto_msg_t *views,
                       size_t max, proto_settler_reply_t *reply);
//  A metric of the settler (its first sample whose line starts with name), -1 if absent.
double settlertest_metric (settlertest_t *t, const char *name);

//  The current delivery epoch of a market of epoch_seconds.
int64_t settlertest_epoch_now (int64_t epoch_seconds);

#endif
