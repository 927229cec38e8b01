/*  settlertest — the steps the settler's integration tests share: a real Postgres with the
    gateway's users table holding the ledger users' wallets, the local ledger, a real matcher
    fed with crossing orders, the real settler (as often as a test restarts it), a consumer of
    the settler bus that remembers what became of every trade, and the settler's admin port.
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

#define SETTLERTEST_TRADES_MAX 100000

typedef struct {
    uint8_t confirmed; //  confirmed events seen for the trade (must end at exactly 1)
    uint8_t failed;    //  failed events seen
    uint8_t state;     //  latest proto_settle_state_t
    uint64_t settlement_id;
    char error[PROTO_STR128_MAX + 1];
} settlertest_seen_t;

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
    settlertest_seen_t *seen; //  by trade id
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
//  subscriber whose publisher dies halfway through a multipart message).
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

//  Sends an admin command; the settlements of the answer go to views (at most max), the
//  reply to *reply. Returns how many settlements came, -1 when no answer came.
int settlertest_admin (settlertest_t *t, const proto_settler_command_t *cmd, proto_msg_t *views,
                       size_t max, proto_settler_reply_t *reply);
//  A metric of the settler (its first sample whose line starts with name), -1 if absent.
double settlertest_metric (settlertest_t *t, const char *name);

//  The current delivery epoch of a market of epoch_seconds.
int64_t settlertest_epoch_now (int64_t epoch_seconds);

#endif
