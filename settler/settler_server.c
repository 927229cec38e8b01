/*  settler_server — see settler_server.h. The admin port is in settler_admin.c; the state both
    share is in settler_internal.h.  */
#include "settler_internal.h"
#include "base58.h"
#include "clock.h"
#include "journal.h"
#include "log.h"
#include "money.h"
#include "solpda.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_IDLE_MS         1000 //  longest wait of the loop (bus_sub wants a turn this often)
#define S_PENDING_WAIT_MS 100  //  wait while settlements wait for their retry time
#define S_LAG_EVERY_MS    1000
#define S_PG_BACKOFF_MS   500
#define S_PG_BACKOFF_CAP  10000
#define S_VAULTS_EVERY_MS 5000 //  the vaults' balances, for the metrics
#define S_NOTIFY_MAX      4096 //  matcher commands sent per loop turn, at most

//  --------------------------------------------------------------------------------------------
//  Backoff

//  base × 2^n capped, with "equal jitter": half of it fixed, half random, so that settlers
//  (or settlements) that failed together do not retry together.
static int64_t s_backoff_ms (const settler_server_t *self, int n)
{
    int64_t base = self->cfg->settler.backoff_ms, cap = self->cfg->settler.backoff_cap_ms;
    int64_t d = base;
    for (int i = 0; i < n && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    int64_t half = d / 2;
    return half + (int64_t) randombytes_uniform ((uint32_t) (d - half + 1));
}

static void s_ledger_ok (settler_server_t *self)
{
    if (self->ledger_failures)
        log_info ("settler", "ledger: answering again after %d failed calls",
                  self->ledger_failures);
    self->ledger_failures = 0;
    self->ledger_retry_at = 0;
    atomic_store (&self->m.ledger_up, 1);
    atomic_store (&self->m.backoff_ms, 0);
}

//  metric: an rpc_fail_t, or SETTLER_RPC_UNHEALTHY for a JSON-RPC "try later" error.
static void s_ledger_fail (settler_server_t *self, int metric, int retry_after_ms, const char *what)
{
    int64_t delay = s_backoff_ms (self, self->ledger_failures++);
    if (delay < retry_after_ms)
        delay = retry_after_ms;
    self->ledger_retry_at = clock_mono_ns () + delay * MCE_NS_PER_MSEC;
    atomic_fetch_add (&self->m.rpc_errors[metric], 1);
    atomic_store (&self->m.ledger_up, 0);
    atomic_store (&self->m.backoff_ms, (uint64_t) delay);
    log_warn ("settler", "ledger %s: %s; next call in %" PRId64 " ms", self->cfg->settler.rpc_url,
              what, delay);
}

static void s_ledger_failure (settler_server_t *self, const rpc_failure_t *f)
{
    s_ledger_fail (self, f->kind, f->retry_after_ms, f->text);
}

//  JSON-RPC errors that mean "not now" rather than "not this transaction".
static bool s_transient_code (int64_t code)
{
    return code == -32005     //  node unhealthy / behind
           || code == -32004  //  block not available
           || code == -32016  //  minimum context slot not reached
           || code == -32603; //  internal error
}

int settler_wallet (settler_server_t *self, const char *user, bool fresh, const wallet_t **out,
                    char *why, size_t whylen)
{
    int64_t now = clock_mono_ns ();
    if (now < self->pg_retry_at) {
        snprintf (why, whylen, "the wallets cannot be looked up now (Postgres); retrying");
        return -1;
    }
    int rc = fresh ? wallets_get_fresh (self->wallets, user, out, why, whylen)
                   : wallets_get (self->wallets, user, out, why, whylen);
    if (rc < 0) {
        int64_t delay = S_PG_BACKOFF_MS << (self->pg_failures < 5 ? self->pg_failures : 5);
        if (delay > S_PG_BACKOFF_CAP)
            delay = S_PG_BACKOFF_CAP;
        self->pg_failures++;
        self->pg_retry_at = now + delay * MCE_NS_PER_MSEC;
        atomic_store (&self->m.postgres_up, 0);
        log_warn ("settler", "wallets: %s; next lookup in %" PRId64 " ms", why, delay);
        return -1;
    }
    if (self->pg_failures) {
        log_info ("settler", "wallets: lookups work again");
        self->pg_failures = 0;
    }
    atomic_store (&self->m.postgres_up, 1);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Records: every change of state is a record on stream s, applied as it is journaled

int settler_record (settler_server_t *self, proto_msg_t *msg)
{
    uint64_t seq = bus_pub_last_seq (self->bus) + 1;
    int64_t now = clock_wall_ns ();
    if (msg->kind == PROTO_settlement) {
        msg->settlement.seq = seq;
        msg->settlement.ts = now;
    }
    else if (msg->kind == PROTO_transfer) {
        msg->transfer.seq = seq;
        msg->transfer.ts = now;
    }
    else {
        msg->epoch_state.seq = seq;
        msg->epoch_state.ts = now;
    }
    if (bus_pub_append (self->bus, msg)) {
        log_error ("settler", "journal: cannot append seq %" PRIu64, seq);
        return -1;
    }
    settle_store_apply (self->store, msg);
    if (msg->kind == PROTO_transfer && (msg->transfer.state == PROTO_TRANSFER_STATE_CONFIRMED ||
                                        msg->transfer.state == PROTO_TRANSFER_STATE_FAILED))
        self->next_notify = 0; //  the matcher may be owed a command now
    return 0;
}

int settler_commit (settler_server_t *self)
{
    if (!bus_pub_appended (self->bus))
        return 0;
    if (bus_pub_commit (self->bus)) {
        log_error ("settler", "journal: commit failed at seq %" PRIu64 "; stopping",
                   bus_pub_committed_seq (self->bus));
        return -1;
    }
    atomic_store (&self->m.journal_seq, bus_pub_committed_seq (self->bus));
    return 0;
}

static void s_counts (settler_server_t *self)
{
    atomic_store (&self->m.pending, settle_store_count (self->store, PROTO_SETTLE_STATE_PENDING));
    atomic_store (&self->m.processing,
                  settle_store_count (self->store, PROTO_SETTLE_STATE_PROCESSING));
    atomic_store (&self->m.failed, settle_store_count (self->store, PROTO_SETTLE_STATE_FAILED));
    atomic_store (&self->m.in_flight, settle_store_tx_count (self->store));
    static const proto_transfer_state_t states[SETTLER_TSTATE_COUNT] = {
        PROTO_TRANSFER_STATE_PENDING, PROTO_TRANSFER_STATE_PROCESSING,
        PROTO_TRANSFER_STATE_CONFIRMED, PROTO_TRANSFER_STATE_FAILED};
    for (int k = 0; k < SETTLER_KINDS; k++)
        for (int s = 0; s < SETTLER_TSTATE_COUNT; s++)
            atomic_store (&self->m.transfers[k][s],
                          settle_store_transfer_count (self->store,
                                                       k ? PROTO_TRANSFER_KIND_WITHDRAWAL
                                                         : PROTO_TRANSFER_KIND_DEPOSIT,
                                                       states[s]));
}

void settler_settlement_msg (const settlement_t *s, proto_settle_state_t state, proto_msg_t *msg)
{
    memset (msg, 0, sizeof *msg);
    msg->kind = PROTO_settlement;
    proto_settlement_t *r = &msg->settlement;
    snprintf (r->market, sizeof r->market, "%s", s->market);
    r->epoch = s->epoch;
    r->trade_id = s->trade_id;
    r->settlement_id = s->id;
    r->state = state;
    r->attempts = s->attempts;
    r->value = s->value;
    r->fee = s->fee;
}

static int s_fail (settler_server_t *self, settlement_t *s, const char *why)
{
    proto_msg_t msg;
    settler_settlement_msg (s, PROTO_SETTLE_STATE_FAILED, &msg);
    snprintf (msg.settlement.error, sizeof msg.settlement.error, "%s", why);
    log_warn ("settler", "settlement %" PRIu64 " (trade %" PRIu64 ", %s → %s) failed: %s", s->id,
              s->trade_id, s->seller, s->buyer, why);
    atomic_fetch_add (&self->m.failed_total, 1);
    return settler_record (self, &msg);
}

int settler_repend (settler_server_t *self, settlement_t *s, uint32_t attempts, const char *why,
                    int64_t retry_at)
{
    proto_msg_t msg;
    settler_settlement_msg (s, PROTO_SETTLE_STATE_PENDING, &msg);
    msg.settlement.attempts = attempts;
    snprintf (msg.settlement.error, sizeof msg.settlement.error, "%s", why);
    if (settler_record (self, &msg))
        return -1;
    s->retry_at = retry_at;
    return 0;
}

//  Records `settled` for every epoch whose trades are all confirmed.
static int s_settle_epochs (settler_server_t *self)
{
    settle_epoch_t *e;
    while ((e = settle_store_epoch_due (self->store))) {
        proto_msg_t msg = {.kind = PROTO_epoch_state};
        proto_epoch_state_t *r = &msg.epoch_state;
        snprintf (r->market, sizeof r->market, "%s", e->market);
        r->epoch = e->epoch;
        r->state = PROTO_EPOCH_PHASE_SETTLED;
        r->start = e->start;
        r->end = e->end;
        r->clearing_price = e->clearing_price;
        r->volume = e->volume;
        r->trades = e->expected;
        r->mseq = e->mseq; //  the matcher's cleared event this settled state follows
        log_info ("settler", "epoch %" PRId64 " of %s settled: %" PRIu64 " trades confirmed",
                  e->epoch, e->market, e->expected);
        if (settler_record (self, &msg)) //  removes e
            return -1;
        atomic_fetch_add (&self->m.epochs_settled, 1);
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Transfers: records

static int s_kindex (const transfer_t *t)
{
    return t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL;
}

static const char *s_unit (proto_asset_t asset)
{
    return asset == PROTO_ASSET_ENERGY ? "Wh" : "µ";
}

//  A transfer record with the fields every record carries.
static void s_tmsg (const transfer_t *t, proto_transfer_state_t state, proto_msg_t *msg)
{
    memset (msg, 0, sizeof *msg);
    msg->kind = PROTO_transfer;
    proto_transfer_t *r = &msg->transfer;
    r->kind = t->kind;
    r->id = t->id;
    r->state = state;
    r->attempts = t->attempts;
}

static int s_tfail (settler_server_t *self, transfer_t *t, const char *why)
{
    proto_msg_t msg;
    s_tmsg (t, PROTO_TRANSFER_STATE_FAILED, &msg);
    snprintf (msg.transfer.error, sizeof msg.transfer.error, "%s", why);
    log_warn ("settler", "%s %" PRIu64 " (%s, %" PRId64 " %s) failed%s: %s",
              proto_transfer_kind_name (t->kind), t->id, t->user, t->amount, s_unit (t->asset),
              t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL ? ", to be refunded" : "", why);
    atomic_fetch_add (&self->m.transfer_events[s_kindex (t)][SETTLER_TEVENT_FAILED], 1);
    return settler_record (self, &msg);
}

static int s_trepend (settler_server_t *self, transfer_t *t, uint32_t attempts, const char *why,
                      int64_t retry_at)
{
    proto_msg_t msg;
    s_tmsg (t, PROTO_TRANSFER_STATE_PENDING, &msg);
    msg.transfer.attempts = attempts;
    snprintf (msg.transfer.error, sizeof msg.transfer.error, "%s", why);
    if (settler_record (self, &msg))
        return -1;
    t->retry_at = retry_at;
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Matcher events

static int s_on_trade (settler_server_t *self, const proto_trade_t *t)
{
    proto_msg_t msg = {.kind = PROTO_settlement};
    proto_settlement_t *r = &msg.settlement;
    r->settlement_id = settle_store_next_id (self->store);
    r->trade_id = t->trade_id;
    snprintf (r->market, sizeof r->market, "%s", t->market);
    r->epoch = t->epoch;
    r->state = PROTO_SETTLE_STATE_PENDING;
    snprintf (r->buyer, sizeof r->buyer, "%s", t->buyer);
    snprintf (r->seller, sizeof r->seller, "%s", t->seller);
    r->qty = t->qty;
    r->price = t->price;
    r->value = t->value;
    r->escrow = t->escrow; //  how it was paid for decides how it is paid, whatever the config
    r->grid = t->grid;
    r->mseq = t->seq;
    const char *why = NULL;
    const config_market_t *market = config_market (self->cfg, t->market);
    int64_t fee = 0;
    if (!market)
        why = "the market is not in the settler's configuration";
    else if (t->qty <= 0 || t->value < 0 || money_fee (t->value, market->fee_ppm, &fee))
        why = "the trade has no quantity or a negative value";
    r->fee = fee;
    if (t->qty <= 0)
        r->qty = 1; //  an intent record needs a quantity; this one fails at once
    if (settler_record (self, &msg))
        return -1;
    atomic_fetch_add (&self->m.created, 1);
    log_debug ("settler",
               "trade %" PRIu64 " (matcher seq %" PRIu64 "): settlement %" PRIu64
               " pending, %" PRId64 " Wh %s → %s, value %" PRId64 " µ, fee %" PRId64 "%s",
               t->trade_id, t->seq, r->settlement_id, t->qty, t->seller, t->buyer, t->value, fee,
               t->escrow ? ", out of escrow" : "");
    settlement_t *s = settle_store_find (self->store, r->settlement_id);
    return why && s ? s_fail (self, s, why) : 0;
}

static int s_on_epoch (settler_server_t *self, const proto_epoch_state_t *e)
{
    if (e->state != PROTO_EPOCH_PHASE_CLEARED)
        return 0;
    proto_msg_t msg = {.kind = PROTO_epoch_state};
    msg.epoch_state = *e;
    msg.epoch_state.mseq = e->seq;
    if (settler_record (self, &msg))
        return -1;
    return s_settle_epochs (self);
}

//  A withdrawal the matcher debited: the settler is to pay it. Its intent carries the event's
//  seq, so the matcher bus resumes after it like after a trade.
static int s_on_withdrawal (settler_server_t *self, const proto_withdrawal_t *w)
{
    if (w->state != PROTO_WITHDRAWAL_PHASE_REQUESTED)
        return 0; //  paid, refunded: the matcher's echo of the settler's own commands
    if (settle_store_transfer (self->store, PROTO_TRANSFER_KIND_WITHDRAWAL, w->withdrawal_id)) {
        log_warn ("settler", "withdrawal %" PRIu64 " (matcher seq %" PRIu64 "): known already",
                  w->withdrawal_id, w->seq);
        return 0;
    }
    if (!w->user[0] || w->amount <= 0 ||
        (w->asset != PROTO_ASSET_ENERGY && w->asset != PROTO_ASSET_PAYMENT) ||
        w->withdrawal_id > TRANSFER_LINK_ID_MAX) {
        log_error ("settler",
                   "withdrawal %" PRIu64 " (matcher seq %" PRIu64 "): user \"%s\", %" PRId64
                   " of %s cannot be paid: ignored",
                   w->withdrawal_id, w->seq, w->user, w->amount, proto_asset_name (w->asset));
        return 0;
    }
    proto_msg_t msg = {.kind = PROTO_transfer};
    proto_transfer_t *r = &msg.transfer;
    r->kind = PROTO_TRANSFER_KIND_WITHDRAWAL;
    r->id = w->withdrawal_id;
    r->state = PROTO_TRANSFER_STATE_PENDING;
    snprintf (r->user, sizeof r->user, "%s", w->user);
    r->asset = w->asset;
    r->amount = w->amount;
    r->mseq = w->seq;
    if (settler_record (self, &msg))
        return -1;
    atomic_fetch_add (&self->m.transfer_events[1][SETTLER_TEVENT_CREATED], 1);
    log_debug ("settler", "withdrawal %" PRIu64 " (matcher seq %" PRIu64 "): %" PRId64 " %s to %s",
               w->withdrawal_id, w->seq, w->amount, s_unit (w->asset), w->user);
    return 0;
}

static int s_drain_bus (settler_server_t *self)
{
    bus_event_t ev;
    int rc = 0;
    for (int n = 0; n < SETTLER_EVENTS_MAX && (rc = bus_sub_recv (self->sub, &ev, 0)) == 1; n++) {
        if (log_enabled (MCE_LOG_DEBUG)) {
            const char *market = proto_msg_market (&ev.msg);
            log_debug ("settler", "stream m event seq %" PRIu64 ": %s%s%s", ev.seq,
                       proto_kind_name (ev.msg.kind), market ? " market " : "",
                       market ? market : "");
        }
        if (ev.msg.kind == PROTO_trade && s_on_trade (self, &ev.msg.trade))
            return -1;
        if (ev.msg.kind == PROTO_epoch_state && s_on_epoch (self, &ev.msg.epoch_state))
            return -1;
        if (ev.msg.kind == PROTO_withdrawal && s_on_withdrawal (self, &ev.msg.withdrawal))
            return -1;
    }
    atomic_store (&self->m.matcher_seq, bus_sub_last_seq (self->sub));
    uint64_t head = bus_sub_head_seq (self->sub), last = bus_sub_last_seq (self->sub);
    atomic_store (&self->m.matcher_behind, head > last ? head - last : 0);
    return rc < 0 ? -1 : 0;
}

//  --------------------------------------------------------------------------------------------
//  Resolving a transaction: confirmed, or failed (whose fault?)

static int s_ttx_confirmed (settler_server_t *self, settle_tx_t *tx)
{
    transfer_t *items[SETTLE_TX_ITEMS_MAX];
    size_t n = tx->count;
    memcpy (items, tx->transfers, n * sizeof items[0]);
    char sig[SOL_SIG_TEXT];
    memcpy (sig, tx->signature, sizeof sig);
    for (size_t i = 0; i < n; i++) {
        transfer_t *t = items[i];
        if (!t)
            continue;
        proto_msg_t msg;
        s_tmsg (t, PROTO_TRANSFER_STATE_CONFIRMED, &msg);
        snprintf (msg.transfer.signature, sizeof msg.transfer.signature, "%s", sig);
        int k = s_kindex (t);
        if (settler_record (self, &msg)) //  the last one frees tx
            return -1;
        atomic_fetch_add (&self->m.transfer_events[k][SETTLER_TEVENT_CONFIRMED], 1);
    }
    atomic_fetch_add (&self->m.confirmed_txs, 1);
    log_debug ("settler", "transaction %s confirmed: %zu transfers", sig, n);
    return 0;
}

static int s_tx_confirmed (settler_server_t *self, settle_tx_t *tx)
{
    if (tx->kind == SETTLE_TX_TRANSFERS)
        return s_ttx_confirmed (self, tx);
    settlement_t *items[SETTLE_TX_ITEMS_MAX];
    size_t n = tx->count;
    memcpy (items, tx->items, n * sizeof items[0]);
    char sig[SOL_SIG_TEXT];
    memcpy (sig, tx->signature, sizeof sig);
    for (size_t i = 0; i < n; i++) {
        if (!items[i])
            continue;
        proto_msg_t msg;
        settler_settlement_msg (items[i], PROTO_SETTLE_STATE_CONFIRMED, &msg);
        snprintf (msg.settlement.signature, sizeof msg.settlement.signature, "%s", sig);
        if (settler_record (self, &msg)) //  the last one frees tx
            return -1;
        atomic_fetch_add (&self->m.confirmed, 1);
    }
    atomic_fetch_add (&self->m.confirmed_txs, 1);
    log_debug ("settler", "transaction %s confirmed: %zu settlements", sig, n);
    return s_settle_epochs (self);
}

//  Instruction errors that are the transaction's, not one settlement's.
static bool s_transaction_wide (const sol_err_t *err)
{
    static const char *names[] = {"ComputationalBudgetExceeded", "ProgramFailedToComplete",
                                  "MaxInstructionTraceLengthExceeded", "CallDepth",
                                  "ProgramFailedToCompile"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp (err->name, names[i]) == 0)
            return true;
    return false;
}

//  The item of tx the failing instruction belongs to (and which of its transfers it is), or
//  -1 when the error is not one settlement's.
static int s_culprit (const settle_tx_t *tx, const sol_err_t *err, int *transfer)
{
    if (err->kind != SOL_ERR_INSTRUCTION || s_transaction_wide (err))
        return -1;
    int ix = 0;
    for (size_t k = 0; k < tx->count; k++) {
        const settlement_t *s = tx->items[k];
        if (!s)
            return -1; //  cannot count its instructions
        int n = (int) settle_instructions (s);
        if (err->ix < ix + n) {
            int which = err->ix - ix;
            //  0 energy; 1 payment, or the fee when there is no payment; 2 fee
            *transfer = which == 0 ? 0 : (which == 1 && s->value - s->fee > 0) ? 1 : 2;
            return (int) k;
        }
        ix += n;
    }
    return -1; //  the memo
}

static const char *s_token_error (int64_t code)
{
    static const char *names[] = {"account below the rent-exempt minimum",
                                  "insufficient funds",
                                  "invalid mint",
                                  "account not for this mint",
                                  "owner or delegate does not match",
                                  "fixed supply",
                                  "account already in use",
                                  "invalid number of signers",
                                  "invalid number of required signers",
                                  "account not initialized",
                                  "native tokens not supported",
                                  "non-native account holds a balance",
                                  "invalid instruction",
                                  "invalid state for the operation",
                                  "amount overflow",
                                  "authority type not supported",
                                  "mint cannot freeze",
                                  "account frozen",
                                  "decimals do not match the mint"};
    return code >= 0 && code < (int64_t) (sizeof names / sizeof names[0]) ? names[code]
                                                                          : "program error";
}

#define S_TOKEN_INSUFFICIENT_FUNDS 1 //  TokenError::InsufficientFunds
#define S_TOKEN_OWNER_MISMATCH     4 //  TokenError::OwnerMismatch: not the owner nor the delegate

static const char *s_ix_error (const sol_err_t *err)
{
    return err->custom >= 0 ? s_token_error (err->custom)
           : strcmp (err->name, "InvalidAccountData") == 0 ||
                   strcmp (err->name, "UninitializedAccount") == 0 ||
                   strcmp (err->name, "IncorrectProgramId") == 0
               ? "token account missing or not a token account"
               : err->name;
}

static void s_describe (const sol_err_t *err, int transfer, bool escrow, char *out, size_t size)
{
    static const char *what[2][3] = {
        {"energy seller→buyer", "payment buyer→seller", "fee buyer→treasury"},
        {"energy vault→buyer", "payment vault→seller", "fee vault→treasury"}};
    snprintf (out, size, "%s: %.60s %.60s", what[escrow][transfer], s_ix_error (err), err->text);
}

//  A transfer the chain refused: why, as a person reads it.
static void s_tdescribe (const transfer_t *t, const sol_err_t *err, char *out, size_t size)
{
    bool deposit = t->kind == PROTO_TRANSFER_KIND_DEPOSIT;
    const char *why =
        err->custom == S_TOKEN_INSUFFICIENT_FUNDS
            ? deposit ? "insufficient funds (or too small an approval)" : "the vault is short"
        : err->custom == S_TOKEN_OWNER_MISMATCH && deposit
            ? "the platform is not the account's approved delegate"
            : s_ix_error (err);
    snprintf (out, size, "%s: %.60s %.50s", deposit ? "user→vault" : "vault→user", why, err->text);
}

//  tx (of transfers) cannot land any more: its transfers are failed or pending again.
static int s_ttx_failed (settler_server_t *self, settle_tx_t *tx, const sol_err_t *err,
                         settler_retry_t reason_metric)
{
    transfer_t *items[SETTLE_TX_ITEMS_MAX];
    size_t n = tx->count;
    memcpy (items, tx->transfers, n * sizeof items[0]);
    char sig[SOL_SIG_TEXT];
    memcpy (sig, tx->signature, sizeof sig);
    sol_err_t e = *err; //  err may live in tx, which the records free
    //  one instruction per transfer, then the memo
    int culprit =
        e.kind == SOL_ERR_INSTRUCTION && !s_transaction_wide (&e) && e.ix >= 0 && (size_t) e.ix < n
            ? e.ix
            : -1;
    log_info ("settler", "transaction %s (%zu transfers) will not land: %s", sig, n, e.text);
    int64_t now = clock_mono_ns ();
    for (size_t k = 0; k < n; k++) {
        transfer_t *t = items[k];
        if (!t)
            continue;
        int rc;
        char why[PROTO_STR128_MAX + 1];
        if ((int) k == culprit) {
            s_tdescribe (t, &e, why, sizeof why);
            rc = s_tfail (self, t, why);
        }
        else if (culprit >= 0) {
            atomic_fetch_add (&self->m.retries[SETTLER_RETRY_BATCH], 1);
            rc = s_trepend (self, t, t->attempts ? t->attempts - 1 : 0,
                            "another transfer of its transaction failed", now);
        }
        else if (t->attempts >= (uint32_t) self->cfg->settler.retry_attempts) {
            snprintf (why, sizeof why, "gave up after %u attempts: %.90s", t->attempts, e.text);
            rc = s_tfail (self, t, why);
        }
        else {
            atomic_fetch_add (&self->m.retries[reason_metric], 1);
            int64_t delay = s_backoff_ms (self, (int) t->attempts - 1);
            rc = s_trepend (self, t, t->attempts, e.text, now + delay * MCE_NS_PER_MSEC);
        }
        if (rc)
            return -1;
    }
    return 0;
}

//  tx cannot land any more (refused before it could have been sent, landed with an error, or
//  expired): its settlements (or transfers) are failed or pending again. reason_metric: the
//  retry counter for those that go back to pending through no fault of their own.
static int s_tx_failed (settler_server_t *self, settle_tx_t *tx, const sol_err_t *err,
                        settler_retry_t reason_metric)
{
    if (tx->kind == SETTLE_TX_TRANSFERS)
        return s_ttx_failed (self, tx, err, reason_metric);
    settlement_t *items[SETTLE_TX_ITEMS_MAX];
    size_t n = tx->count;
    memcpy (items, tx->items, n * sizeof items[0]);
    char sig[SOL_SIG_TEXT];
    memcpy (sig, tx->signature, sizeof sig);
    int transfer = 0;
    int culprit = s_culprit (tx, err, &transfer);
    sol_err_t e = *err; //  err may live in tx, which the records free
    log_info ("settler", "transaction %s (%zu settlements) will not land: %s", sig, n, e.text);
    int64_t now = clock_mono_ns ();
    for (size_t k = 0; k < n; k++) {
        settlement_t *s = items[k];
        if (!s)
            continue;
        int rc;
        char why[PROTO_STR128_MAX + 1];
        bool escrow = s->escrow;
        if ((int) k == culprit && (escrow || s->grid) && e.custom == S_TOKEN_INSUFFICIENT_FUNDS) {
            //  out of escrow the source is a vault: short only if the books and the chain
            //  disagree; or it is the grid's wallet, which the operator keeps funded. The
            //  trade happened; it waits for the funds rather than fail.
            s_describe (&e, transfer, escrow, why, sizeof why);
            log_error ("settler", "settlement %" PRIu64 " (trade %" PRIu64 "): %s; waiting", s->id,
                       s->trade_id, why);
            atomic_fetch_add (&self->m.retries[s->grid ? SETTLER_RETRY_GRID : SETTLER_RETRY_VAULT],
                              1);
            int64_t delay = self->cfg->settler.backoff_cap_ms;
            rc = settler_repend (self, s, s->attempts ? s->attempts - 1 : 0, why,
                                 now + delay * MCE_NS_PER_MSEC);
        }
        else if ((int) k == culprit) {
            s_describe (&e, transfer, escrow, why, sizeof why);
            rc = s_fail (self, s, why);
        }
        else if (culprit >= 0) {
            atomic_fetch_add (&self->m.retries[SETTLER_RETRY_BATCH], 1);
            rc = settler_repend (self, s, s->attempts ? s->attempts - 1 : 0,
                                 "another settlement of its transaction failed", now);
        }
        else if (s->attempts >= (uint32_t) self->cfg->settler.retry_attempts) {
            snprintf (why, sizeof why, "gave up after %u attempts: %.90s", s->attempts, e.text);
            rc = s_fail (self, s, why);
        }
        else {
            atomic_fetch_add (&self->m.retries[reason_metric], 1);
            int64_t delay = s_backoff_ms (self, (int) s->attempts - 1);
            rc = settler_repend (self, s, s->attempts, e.text, now + delay * MCE_NS_PER_MSEC);
        }
        if (rc)
            return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Status round

static int s_resolve (settler_server_t *self, settle_tx_t *tx, const rpc_sig_status_t *st,
                      uint64_t height)
{
    if (st->known) {
        if (st->err.kind != SOL_ERR_NONE)
            return s_tx_failed (self, tx, &st->err, SETTLER_RETRY_FAILED_ON_CHAIN);
        if (st->level >= SOL_LEVEL_CONFIRMED)
            return s_tx_confirmed (self, tx);
        tx->landed = true; //  processed: confirmation follows
        return 0;
    }
    if (height <= tx->last_valid)
        return 0; //  may still land
    sol_err_t expired = {.kind = SOL_ERR_OTHER, .ix = -1, .custom = -1};
    if (tx->rejected)
        expired = tx->error;
    else
        snprintf (expired.text, sizeof expired.text,
                  "expired: block height %" PRIu64 " passed %" PRIu64 " and it never landed",
                  height, tx->last_valid);
    return s_tx_failed (self, tx, &expired,
                        tx->rejected ? SETTLER_RETRY_REJECTED : SETTLER_RETRY_EXPIRED);
}

static int s_status_round (settler_server_t *self)
{
    size_t n = settle_store_tx_count (self->store);
    if (n == 0)
        return 0;
    settle_tx_t **txs = malloc (n * sizeof *txs);
    rpc_sig_status_t *st = malloc (n * sizeof *st);
    int rc = 0;
    if (!txs || !st) {
        rc = -1;
        goto done;
    }
    size_t i = 0;
    for (settle_tx_t *tx = settle_store_in_flight (self->store); tx && i < n; tx = tx->next)
        txs[i++] = tx;
    //  the height first: whatever is unknown after it, and expired by it, never lands
    rpc_failure_t fail;
    rpc_begin (self->rpc);
    rpc_add_height (self->rpc);
    if (rpc_run (self->rpc, self->answers, &fail)) {
        s_ledger_failure (self, &fail);
        goto done;
    }
    if (self->answers[0].code) {
        s_ledger_fail (self, SETTLER_RPC_UNHEALTHY, 0, self->answers[0].message);
        goto done;
    }
    uint64_t height = self->answers[0].height;
    for (size_t off = 0; off < n;) {
        rpc_begin (self->rpc);
        while (off < n && rpc_calls (self->rpc) < RPC_CALLS_MAX) {
            const char *sigs[RPC_STATUSES_MAX];
            size_t k = 0;
            for (; k < RPC_STATUSES_MAX && off + k < n; k++)
                sigs[k] = txs[off + k]->signature;
            rpc_add_statuses (self->rpc, sigs, k, st + off);
            off += k;
        }
        size_t calls = rpc_calls (self->rpc);
        if (rpc_run (self->rpc, self->answers, &fail)) {
            s_ledger_failure (self, &fail);
            goto done;
        }
        for (size_t c = 0; c < calls; c++)
            if (self->answers[c].code) {
                s_ledger_fail (self, SETTLER_RPC_UNHEALTHY, 0, self->answers[c].message);
                goto done;
            }
    }
    s_ledger_ok (self);
    for (i = 0; i < n && rc == 0; i++)
        rc = s_resolve (self, txs[i], &st[i], height);
    if (rc == 0 && self->recovering) {
        self->recovering = false;
        log_info ("settler",
                  "recovery: the chain answered for all %zu transactions in flight; "
                  "%zu still in flight, signing new ones from now on",
                  n, settle_store_tx_count (self->store));
    }
done:
    free (txs);
    free (st);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Sending

static int s_on_sent (settler_server_t *self, settle_tx_t *tx, const rpc_answer_t *a)
{
    int64_t now = clock_mono_ns ();
    if (a->code == 0 || a->err.kind == SOL_ERR_ALREADY_PROCESSED) {
        if (a->code == 0 && strcmp (a->signature, tx->signature) != 0)
            log_warn ("settler", "transaction %s: the node answered signature %s", tx->signature,
                      a->signature);
        tx->acked = true;
        tx->maybe_sent = true;
        if (!tx->first_sent)
            tx->first_sent = now;
        tx->last_sent = now;
        return 0;
    }
    if (s_transient_code (a->code)) {
        char what[200];
        snprintf (what, sizeof what, "sendTransaction: %" PRId64 " %s", a->code, a->message);
        if (self->ledger_retry_at <= now)
            s_ledger_fail (self, SETTLER_RPC_UNHEALTHY, 0, what);
        return 0; //  not acked: sent again after the backoff
    }
    tx->rejected = true;
    tx->error = a->err;
    if (a->err.kind == SOL_ERR_NONE) {
        tx->error.kind = SOL_ERR_OTHER;
        snprintf (tx->error.text, sizeof tx->error.text, "RPC error %" PRId64 ": %.100s", a->code,
                  a->message);
    }
    if (!tx->maybe_sent)
        return s_tx_failed (self, tx, &tx->error, SETTLER_RETRY_REJECTED);
    log_info ("settler",
              "transaction %s refused (%s) after a send whose outcome is unknown: the chain will "
              "resolve it once its blockhash expires",
              tx->signature, tx->error.text);
    return 0;
}

//  Sends txs (all signed and journaled). 0, or -1 on a fatal error; a ledger that does not
//  answer is not fatal (the transactions are sent again after the backoff).
static int s_send (settler_server_t *self, settle_tx_t **txs, size_t n)
{
    for (size_t off = 0; off < n; off += SETTLER_SEND_CHUNK) {
        size_t k = n - off < SETTLER_SEND_CHUNK ? n - off : SETTLER_SEND_CHUNK;
        rpc_begin (self->rpc);
        for (size_t i = 0; i < k; i++)
            rpc_add_send (self->rpc, txs[off + i]->bytes, txs[off + i]->len);
        rpc_failure_t fail;
        int rc = rpc_run (self->rpc, self->answers, &fail);
        atomic_fetch_add (&self->m.sent, k);
        if (self->crash_after_send && ++self->send_requests == self->crash_after_send) {
            log_warn ("settler", "test hook: exiting right after send request %ld",
                      self->send_requests);
            _exit (SETTLER_CRASH_EXIT);
        }
        if (rc) {
            for (size_t i = 0; i < k; i++)
                txs[off + i]->maybe_sent |= fail.maybe_processed;
            s_ledger_failure (self, &fail);
            return 0;
        }
        s_ledger_ok (self);
        for (size_t i = 0; i < k; i++)
            if (s_on_sent (self, txs[off + i], &self->answers[i]))
                return -1;
        if (self->ledger_retry_at > clock_mono_ns ())
            return 0; //  a -32005 put the ledger on hold
    }
    return 0;
}

//  Packs ready pending settlements into batches[first …] (first fit). Returns how many
//  batches, -1 when a record failed.
static int s_pack (settler_server_t *self, size_t first, size_t max_batches)
{
    int64_t now = clock_mono_ns ();
    settle_batch_t *batches = self->batches + first;
    size_t nb = 0, per_tx = (size_t) self->cfg->settler.max_trades_per_tx;
    size_t scan_max = max_batches * per_tx * 2 + 64, scanned = 0;
    settlement_t *next;
    for (settlement_t *s = settle_store_pending (self->store); s && scanned < scan_max; s = next) {
        next = s->next; //  s may move to the failed list
        if (s->retry_at > now)
            continue;
        scanned++;
        const wallet_t *buyer, *seller;
        char why[160];
        int rb = settler_wallet (self, s->buyer, false, &buyer, why, sizeof why);
        int rs = rb == 1 ? settler_wallet (self, s->seller, false, &seller, why, sizeof why) : rb;
        if (rb < 0 || rs < 0)
            break;
        if (rb == 0 || rs == 0) {
            if (s_fail (self, s, why))
                return -1;
            continue;
        }
        bool escrow = s->escrow;
        bool placed = false;
        for (size_t i = 0; i < nb && !placed; i++)
            placed = settle_batch_add (&batches[i], s, buyer, seller, escrow);
        if (!placed && nb < max_batches) {
            settle_batch_init (&batches[nb], &self->keys, SETTLE_BATCH_TRADES, per_tx);
            placed = settle_batch_add (&batches[nb], s, buyer, seller, escrow);
            if (placed)
                nb++;
            else if (s_fail (self, s, "does not fit in one transaction"))
                return -1;
        }
    }
    return (int) nb;
}

//  The user's token account of t's asset, into t->account: from the wallet its records name,
//  or (a withdrawal's first transaction) the user's wallet now. 1, 0 when it has none (why
//  says why), -1 when the wallets cannot be asked now.
static int s_account (settler_server_t *self, transfer_t *t, char *why, size_t whylen)
{
    bool energy = t->asset == PROTO_ASSET_ENERGY;
    if (!t->wallet[0]) {
        const wallet_t *w;
        //  a withdrawal pays the wallet the user has now, not the one cached a minute ago
        int rc = settler_wallet (self, t->user, t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL, &w, why,
                                 whylen);
        if (rc != 1)
            return rc;
        //  journaled with the transaction's processing record, which rebuilds it after a crash
        snprintf (t->wallet, sizeof t->wallet, "%s", w->wallet.text);
        t->account = energy ? w->energy : w->payment;
        return 1;
    }
    sol_key_t wallet;
    if (sol_key_parse (&wallet, t->wallet) ||
        sol_ata (&wallet, energy ? &self->keys.energy_mint : &self->keys.payment_mint,
                 &t->account)) {
        snprintf (why, whylen, "wallet \"%.60s\" of %.50s is not a base58 public key", t->wallet,
                  t->user);
        t->account.text[0] = '\0';
        return 0;
    }
    return 1;
}

//  Packs ready pending transfers into batches[0 …] (first fit; deposits and withdrawals apart).
//  Returns how many batches, -1 when a record failed.
static int s_pack_transfers (settler_server_t *self, size_t max_batches)
{
    int64_t now = clock_mono_ns ();
    size_t nb = 0, per_tx = (size_t) self->cfg->settler.max_transfers_per_tx;
    size_t scan_max = max_batches * per_tx * 2 + 64, scanned = 0;
    bool lookups = true; //  the wallets answer
    transfer_t *next;
    for (transfer_t *t = settle_store_transfers_pending (self->store); t && scanned < scan_max;
         t = next) {
        next = t->next; //  t may fail
        if (t->retry_at > now || (!t->wallet[0] && !lookups))
            continue;
        scanned++;
        char why[160];
        int rc = t->account.text[0] ? 1 : s_account (self, t, why, sizeof why);
        if (rc < 0) {
            lookups = false; //  deposits, and withdrawals whose wallet is known, still go
            continue;
        }
        if (rc == 0) {
            if (s_tfail (self, t, why))
                return -1;
            continue;
        }
        bool placed = false;
        for (size_t i = 0; i < nb && !placed; i++)
            placed = settle_batch_add_transfer (&self->batches[i], t, &t->account);
        if (!placed && nb < max_batches) {
            settle_batch_init (&self->batches[nb], &self->keys,
                               t->kind == PROTO_TRANSFER_KIND_DEPOSIT ? SETTLE_BATCH_DEPOSITS
                                                                      : SETTLE_BATCH_WITHDRAWALS,
                               per_tx);
            placed = settle_batch_add_transfer (&self->batches[nb], t, &t->account);
            if (placed)
                nb++;
            else if (s_tfail (self, t, "does not fit in one transaction"))
                return -1;
        }
    }
    return (int) nb;
}

static bool s_pending_ready (settler_server_t *self, int64_t now)
{
    for (settlement_t *s = settle_store_pending (self->store); s; s = s->next)
        if (s->retry_at <= now)
            return true;
    for (transfer_t *t = settle_store_transfers_pending (self->store); t; t = t->next)
        if (t->retry_at <= now)
            return true;
    return false;
}

//  The processing records of a sealed batch: the intent with its signature, journaled before
//  anything is sent.
static int s_processing (settler_server_t *self, const settle_batch_t *batch, const char *sig,
                         const char *blockhash, uint64_t last_valid)
{
    for (size_t i = 0; i < batch->count; i++) {
        proto_msg_t msg;
        if (batch->kind == SETTLE_BATCH_TRADES) {
            settlement_t *s = batch->items[i];
            settler_settlement_msg (s, PROTO_SETTLE_STATE_PROCESSING, &msg);
            proto_settlement_t *r = &msg.settlement;
            r->attempts = s->attempts + 1;
            snprintf (r->signature, sizeof r->signature, "%s", sig);
            snprintf (r->blockhash, sizeof r->blockhash, "%s", blockhash);
            r->last_valid = last_valid;
        }
        else {
            transfer_t *t = batch->transfers[i];
            s_tmsg (t, PROTO_TRANSFER_STATE_PROCESSING, &msg);
            proto_transfer_t *r = &msg.transfer;
            r->attempts = t->attempts + 1;
            snprintf (r->signature, sizeof r->signature, "%s", sig);
            snprintf (r->blockhash, sizeof r->blockhash, "%s", blockhash);
            r->last_valid = last_valid;
            snprintf (r->wallet, sizeof r->wallet, "%s", t->wallet);
        }
        if (settler_record (self, &msg))
            return -1;
    }
    return 0;
}

static int s_send_round (settler_server_t *self)
{
    int64_t now = clock_mono_ns ();
    size_t in_flight = settle_store_tx_count (self->store);
    size_t room = (size_t) self->cfg->settler.max_in_flight > in_flight
                      ? (size_t) self->cfg->settler.max_in_flight - in_flight
                      : 0;
    if (!self->have_keys || room == 0 || now < self->ledger_retry_at ||
        !s_pending_ready (self, now))
        return 0;
    size_t cap = room < SETTLER_ROUND_TXS ? room : SETTLER_ROUND_TXS;
    //  deposits and withdrawals get up to half the round, so that trades do not starve them
    int nt =
        settle_store_transfers_pending (self->store) ? s_pack_transfers (self, (cap + 1) / 2) : 0;
    int ns = nt < 0 ? -1 : s_pack (self, (size_t) nt, cap - (size_t) nt);
    if (nt < 0 || ns < 0)
        return -1;
    int nb = nt + ns;
    if (nb == 0)
        return 0;
    rpc_failure_t fail;
    rpc_begin (self->rpc);
    rpc_add_blockhash (self->rpc);
    if (rpc_run (self->rpc, self->answers, &fail)) {
        s_ledger_failure (self, &fail);
        return 0; //  nothing recorded: the settlements stay pending
    }
    if (self->answers[0].code) {
        s_ledger_fail (self, SETTLER_RPC_UNHEALTHY, 0, self->answers[0].message);
        return 0;
    }
    uint8_t blockhash[SOL_HASH_BYTES];
    memcpy (blockhash, self->answers[0].blockhash, sizeof blockhash);
    uint64_t last_valid = self->answers[0].last_valid;
    char blockhash_text[SOL_KEY_TEXT];
    base58_encode (blockhash, sizeof blockhash, blockhash_text, sizeof blockhash_text);
    settle_tx_t *txs[SETTLER_ROUND_TXS];
    size_t n = 0;
    for (int b = 0; b < nb; b++) {
        settle_batch_t *batch = &self->batches[b];
        uint8_t bytes[SOL_TX_MAX];
        char sig[SOL_SIG_TEXT];
        int len = settle_batch_seal (batch, blockhash, bytes, sig);
        if (len < 0) {
            log_error ("settler", "cannot build a transaction of %zu items", batch->count);
            continue;
        }
        if (s_processing (self, batch, sig, blockhash_text, last_valid))
            return -1;
        settle_tx_t *tx = settle_store_tx (self->store, sig);
        if (!tx)
            continue;
        memcpy (tx->bytes, bytes, (size_t) len);
        tx->len = (size_t) len;
        txs[n++] = tx;
        atomic_fetch_add (&self->m.signed_txs, 1);
        log_debug ("settler", "transaction %s: %zu %s, %d bytes, valid through height %" PRIu64,
                   sig, batch->count,
                   batch->kind == SETTLE_BATCH_TRADES     ? "settlements"
                   : batch->kind == SETTLE_BATCH_DEPOSITS ? "deposits"
                                                          : "withdrawals",
                   len, last_valid);
    }
    if (settler_commit (self))
        return -1;
    if (self->crash_before_send && ++self->send_commits == self->crash_before_send) {
        log_warn ("settler", "test hook: exiting after journaling send %ld, before sending it",
                  self->send_commits);
        _exit (SETTLER_CRASH_EXIT);
    }
    return s_send (self, txs, n);
}

//  Transactions to send (again): never answered (after a failed send), or unconfirmed for
//  SETTLER_RESEND_MS while still within confirmation_timeout_ms.
static int s_resend_round (settler_server_t *self)
{
    int64_t now = clock_mono_ns ();
    int64_t resend = SETTLER_RESEND_MS * MCE_NS_PER_MSEC;
    int64_t timeout = self->cfg->settler.confirmation_timeout_ms * MCE_NS_PER_MSEC;
    settle_tx_t *txs[SETTLER_ROUND_TXS];
    size_t n = 0;
    if (now < self->ledger_retry_at)
        return 0; //  the send round just failed
    for (settle_tx_t *tx = settle_store_in_flight (self->store); tx && n < SETTLER_ROUND_TXS;
         tx = tx->next) {
        if (tx->len == 0 || tx->landed || tx->rejected)
            continue;
        bool again =
            tx->acked ? now - tx->last_sent >= resend && now - tx->first_sent < timeout : true;
        if (again)
            txs[n++] = tx;
    }
    return n ? s_send (self, txs, n) : 0;
}

//  --------------------------------------------------------------------------------------------
//  The matcher's side of a transfer: deposit_credit and withdrawal_close until acknowledged

//  The command an owed transfer waits to have acknowledged, 0 when it is not owed.
static transfer_link_what_t s_owed_what (const transfer_t *t)
{
    if (t->state == PROTO_TRANSFER_STATE_CONFIRMED)
        return t->kind == PROTO_TRANSFER_KIND_DEPOSIT ? TRANSFER_LINK_CREDIT : TRANSFER_LINK_CLOSE;
    if (t->state == PROTO_TRANSFER_STATE_FAILED && t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL)
        return TRANSFER_LINK_REFUND;
    return 0;
}

static const char *s_what_name (transfer_link_what_t what)
{
    return what == TRANSFER_LINK_CREDIT  ? "deposit_credit"
           : what == TRANSFER_LINK_CLOSE ? "withdrawal_close (paid)"
                                         : "withdrawal_close (refund)";
}

//  Sends every owed transfer's command that is due (the first time, or again after
//  command_resend_ms without an acknowledgement; longer after refusals).
static void s_notify (settler_server_t *self)
{
    int64_t now = clock_mono_ns ();
    if (now < self->next_notify)
        return;
    int64_t resend = self->cfg->settler.command_resend_ms * MCE_NS_PER_MSEC, next = INT64_MAX;
    size_t sent = 0;
    for (transfer_t *t = settle_store_owed (self->store); t; t = t->next) {
        if (t->notify_at > now) {
            next = t->notify_at < next ? t->notify_at : next;
            continue;
        }
        if (sent == S_NOTIFY_MAX) {
            next = now; //  the rest on the next turn
            break;
        }
        transfer_link_what_t what = s_owed_what (t);
        if (transfer_link_send (self->link, what, t) == 0) {
            sent++;
            t->notices++;
            atomic_fetch_add (&self->m.commands[SETTLER_COMMAND_SENT], 1);
            if (t->notices == 1)
                log_debug ("settler", "%s %" PRIu64 ": %s sent to the matcher",
                           proto_transfer_kind_name (t->kind), t->id, s_what_name (what));
            else if (t->notices % 30 == 0)
                log_warn ("settler", "%s %" PRIu64 ": %s sent %u times, not acknowledged yet",
                          proto_transfer_kind_name (t->kind), t->id, s_what_name (what),
                          t->notices);
        }
        int64_t delay =
            t->refusals ? s_backoff_ms (self, (int) t->refusals) * MCE_NS_PER_MSEC : resend;
        t->notify_at = now + (delay > resend ? delay : resend);
        next = t->notify_at < next ? t->notify_at : next;
    }
    self->next_notify = next;
}

//  The matcher's answers: an acknowledgement ends the transfer (credited, closed, refunded);
//  a refusal is logged and the command goes again later.
static int s_drain_link (settler_server_t *self)
{
    transfer_link_reply_t r;
    while (transfer_link_recv (self->link, &r) == 1) {
        proto_transfer_kind_t kind = r.what == TRANSFER_LINK_CREDIT
                                         ? PROTO_TRANSFER_KIND_DEPOSIT
                                         : PROTO_TRANSFER_KIND_WITHDRAWAL;
        transfer_t *t = settle_store_transfer (self->store, kind, r.id);
        if (!t || s_owed_what (t) != r.what) {
            log_debug ("settler", "matcher: an answer to the %s of %s %" PRIu64 " that is done",
                       s_what_name (r.what), proto_transfer_kind_name (kind), r.id);
            continue;
        }
        if (!r.ack) {
            t->refusals++;
            atomic_fetch_add (&self->m.commands[SETTLER_COMMAND_REJECTED], 1);
            int64_t delay = r.reason == PROTO_REJECT_REASON_OVERLOADED
                                ? self->cfg->settler.command_resend_ms
                                : s_backoff_ms (self, (int) t->refusals);
            t->notify_at = clock_mono_ns () + delay * MCE_NS_PER_MSEC;
            log_warn ("settler",
                      "%s %" PRIu64 ": the matcher refused its %s: %s %s; again in %" PRId64 " ms",
                      proto_transfer_kind_name (kind), r.id, s_what_name (r.what),
                      proto_reject_reason_name (r.reason), r.message, delay);
            continue;
        }
        if (self->crash_after_ack && ++self->acks == self->crash_after_ack) {
            log_warn ("settler",
                      "test hook: exiting on the matcher's acknowledgement %ld (%s %" PRIu64
                      "), before journaling it",
                      self->acks, proto_transfer_kind_name (kind), r.id);
            _exit (SETTLER_CRASH_EXIT);
        }
        atomic_fetch_add (
            &self->m.commands[r.duplicate ? SETTLER_COMMAND_DUPLICATE : SETTLER_COMMAND_ACKED], 1);
        proto_transfer_state_t state =
            r.what == TRANSFER_LINK_CREDIT  ? PROTO_TRANSFER_STATE_CREDITED
            : r.what == TRANSFER_LINK_CLOSE ? PROTO_TRANSFER_STATE_CLOSED
                                            : PROTO_TRANSFER_STATE_REFUNDED;
        settler_tevent_t event = r.what == TRANSFER_LINK_CREDIT  ? SETTLER_TEVENT_CREDITED
                                 : r.what == TRANSFER_LINK_CLOSE ? SETTLER_TEVENT_CLOSED
                                                                 : SETTLER_TEVENT_REFUNDED;
        int k = s_kindex (t);
        proto_msg_t msg;
        s_tmsg (t, state, &msg);
        if (r.what == TRANSFER_LINK_CREDIT)
            msg.transfer.mseq = r.seq; //  where the credit is on the matcher bus
        log_debug ("settler", "%s %" PRIu64 ": %s by the matcher (seq %" PRIu64 "%s)",
                   proto_transfer_kind_name (kind), r.id, proto_transfer_state_name (state), r.seq,
                   r.duplicate ? ", already applied" : "");
        if (settler_record (self, &msg)) //  frees t
            return -1;
        atomic_fetch_add (&self->m.transfer_events[k][event], 1);
    }
    return 0;
}

//  A token balance the ledger answered, or -1 (an error: no such account yet, say).
static int64_t s_balance_of (const rpc_answer_t *a)
{
    return a->code || a->amount > INT64_MAX ? -1 : (int64_t) a->amount;
}

//  The grid's wallet of every market with a grid, for the metrics: whether the operator must
//  fund it before its trades' settlements wait. A batch of at most RPC_CALLS_MAX calls each.
static void s_grid_balances (settler_server_t *self)
{
    const mce_config_t *cfg = self->cfg;
    int market[RPC_CALLS_MAX / 2];
    int n = 0;
    for (int i = 0; i <= cfg->market_count; i++) {
        const config_market_t *m = i < cfg->market_count ? &cfg->markets[i] : NULL;
        const wallet_t *w = NULL;
        char why[128];
        if (m && (m->grid_import_price > 0 || m->grid_feed_in_price > 0) &&
            wallets_get (self->wallets, m->grid_user, &w, why, sizeof why) == 1) {
            if (n == 0)
                rpc_begin (self->rpc);
            rpc_add_token_balance (self->rpc, w->energy.text);
            rpc_add_token_balance (self->rpc, w->payment.text);
            market[n++] = i;
        }
        if (n && (!m || n == RPC_CALLS_MAX / 2)) {
            rpc_failure_t fail;
            if (rpc_run (self->rpc, self->answers, &fail)) {
                s_ledger_failure (self, &fail);
                return;
            }
            for (int k = 0; k < n; k++)
                for (int a = 0; a < 2; a++)
                    atomic_store (&self->m.grid[market[k]][a],
                                  s_balance_of (&self->answers[2 * k + a]));
            n = 0;
        }
    }
}

//  The vaults' balances, for the metrics (and whoever reconciles): one small request now and
//  then, while the ledger answers.
static void s_vaults (settler_server_t *self)
{
    int64_t now = clock_mono_ns ();
    if (!self->have_keys || now < self->next_vaults || now < self->ledger_retry_at)
        return;
    self->next_vaults = now + S_VAULTS_EVERY_MS * MCE_NS_PER_MSEC;
    rpc_failure_t fail;
    rpc_begin (self->rpc);
    rpc_add_token_balance (self->rpc, self->keys.vault_energy.text);
    rpc_add_token_balance (self->rpc, self->keys.vault_payment.text);
    if (rpc_run (self->rpc, self->answers, &fail)) {
        s_ledger_failure (self, &fail);
        return;
    }
    for (int i = 0; i < 2; i++) //  an error: no such account yet, say
        atomic_store (&self->m.vault[i], s_balance_of (&self->answers[i]));
    atomic_store (&self->m.vaults_at, clock_wall_ns ());
    s_grid_balances (self);
}

//  --------------------------------------------------------------------------------------------
//  Recovery

//  Reads the whole journal into the store.
static int s_replay_journal (settler_server_t *self, const char *dir)
{
    uint64_t last = bus_pub_last_seq (self->bus);
    if (last == 0)
        return 0;
    journal_reader_t *r = journal_reader_new (dir, 1);
    if (!r)
        return -1;
    uint64_t seq, records = 0;
    const uint8_t *data;
    size_t len;
    int rc;
    while ((rc = journal_reader_next (r, last, &seq, &data, &len)) == 1) {
        const char *topic;
        const uint8_t *event;
        size_t topic_len, event_len;
        proto_msg_t msg;
        char err[160];
        if (bus_record_split (data, len, &topic, &topic_len, &event, &event_len) ||
            proto_decode (event, event_len, &msg, err, sizeof err)) {
            log_error ("settler", "journal: record %" PRIu64 " does not decode; ignored", seq);
            continue;
        }
        settle_store_apply (self->store, &msg);
        records++;
    }
    journal_reader_destroy (&r);
    if (rc < 0)
        return -1;
    log_info ("settler", "journal: %" PRIu64 " records replayed through seq %" PRIu64, records,
              last);
    return 0;
}

//  Fills b with what tx holds, as its records say. false when something cannot be rebuilt.
static bool s_refill (settler_server_t *self, settle_tx_t *tx, settle_batch_t *b)
{
    char why[160];
    if (tx->kind == SETTLE_TX_TRANSFERS) {
        transfer_t *first = tx->count ? tx->transfers[0] : NULL;
        if (!first)
            return false;
        settle_batch_init (b, &self->keys,
                           first->kind == PROTO_TRANSFER_KIND_DEPOSIT ? SETTLE_BATCH_DEPOSITS
                                                                      : SETTLE_BATCH_WITHDRAWALS,
                           SETTLE_TX_ITEMS_MAX);
        for (size_t i = 0; i < tx->count; i++) {
            transfer_t *t = tx->transfers[i];
            //  the wallet is the journaled one: no lookup
            if (!t || !t->wallet[0] || s_account (self, t, why, sizeof why) != 1 ||
                !settle_batch_add_transfer (b, t, &t->account))
                return false;
        }
        return true;
    }
    settle_batch_init (b, &self->keys, SETTLE_BATCH_TRADES, SETTLE_TX_ITEMS_MAX);
    for (size_t i = 0; i < tx->count; i++) {
        settlement_t *s = tx->items[i];
        const wallet_t *buyer, *seller;
        if (!s || wallets_get (self->wallets, s->buyer, &buyer, why, sizeof why) != 1 ||
            wallets_get (self->wallets, s->seller, &seller, why, sizeof why) != 1 ||
            !settle_batch_add (b, s, buyer, seller, s->escrow))
            return false;
    }
    return true;
}

//  Rebuilds the bytes of a transaction in flight from its records: kept (for resending) only
//  when the signature comes out the same, which proves they are the same bytes.
static void s_rebuild (settler_server_t *self, settle_tx_t *tx)
{
    settle_batch_t *b = &self->batches[0];
    if (!s_refill (self, tx, b))
        return;
    uint8_t bytes[SOL_TX_MAX];
    char sig[SOL_SIG_TEXT];
    int len = settle_batch_seal (b, tx->blockhash, bytes, sig);
    if (len > 0 && strcmp (sig, tx->signature) == 0) {
        memcpy (tx->bytes, bytes, (size_t) len);
        tx->len = (size_t) len;
    }
    else
        log_warn ("settler", "transaction %s: rebuilt bytes differ; only its status will tell",
                  tx->signature);
}

static size_t s_tcount (settler_server_t *self, proto_transfer_state_t state)
{
    return settle_store_transfer_count (self->store, PROTO_TRANSFER_KIND_DEPOSIT, state) +
           settle_store_transfer_count (self->store, PROTO_TRANSFER_KIND_WITHDRAWAL, state);
}

static int s_recover (settler_server_t *self, const char *dir)
{
    if (s_replay_journal (self, dir))
        return -1;
    size_t rebuilt = 0;
    for (settle_tx_t *tx = settle_store_in_flight (self->store); tx; tx = tx->next) {
        tx->recovered = true;
        tx->maybe_sent = true; //  the crash may have come after the send
        if (self->have_keys) {
            s_rebuild (self, tx);
            rebuilt += tx->len > 0;
        }
    }
    self->recovering = settle_store_tx_count (self->store) > 0;
    log_info ("settler",
              "recovered: %zu pending, %zu processing in %zu transactions (%zu rebuilt), %zu "
              "failed, %zu epochs open; next settlement %" PRIu64 "; matcher seq %" PRIu64,
              settle_store_count (self->store, PROTO_SETTLE_STATE_PENDING),
              settle_store_count (self->store, PROTO_SETTLE_STATE_PROCESSING),
              settle_store_tx_count (self->store), rebuilt,
              settle_store_count (self->store, PROTO_SETTLE_STATE_FAILED),
              settle_store_epoch_count (self->store), settle_store_next_id (self->store),
              settle_store_mseq (self->store));
    log_info ("settler",
              "recovered transfers: %zu pending, %zu processing, %zu confirmed and %zu failed "
              "withdrawals waiting for the matcher; next deposit %" PRIu64,
              s_tcount (self, PROTO_TRANSFER_STATE_PENDING),
              s_tcount (self, PROTO_TRANSFER_STATE_PROCESSING),
              s_tcount (self, PROTO_TRANSFER_STATE_CONFIRMED),
              s_tcount (self, PROTO_TRANSFER_STATE_FAILED),
              settle_store_next_deposit_id (self->store));
    //  a crash between the last confirmation of an epoch and its record
    if (s_settle_epochs (self) || settler_commit (self))
        return -1;
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Life cycle

settler_server_t *settler_server_new (const mce_config_t *cfg)
{
    settler_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    proto_buf_init (&self->buf);
    atomic_store (&self->m.vault[0], -1);
    atomic_store (&self->m.vault[1], -1);
    for (int i = 0; i < CONFIG_MARKETS_MAX; i++)
        for (int a = 0; a < 2; a++)
            atomic_store (&self->m.grid[i][a], -1);
    self->m.cfg = cfg;
    const char *hook = getenv ("MCE_SETTLER_CRASH_BEFORE_SEND");
    self->crash_before_send = hook ? atol (hook) : 0;
    hook = getenv ("MCE_SETTLER_CRASH_AFTER_SEND");
    self->crash_after_send = hook ? atol (hook) : 0;
    hook = getenv ("MCE_SETTLER_CRASH_AFTER_ACK");
    self->crash_after_ack = hook ? atol (hook) : 0;
    const char *keys_file = cfg->settler.keys_file;
    if (keys_file[0]) {
        char err[512];
        if (keys_load (&self->keys, keys_file, err, sizeof err)) {
            log_error ("settler", "keys: %s", err);
            goto fail;
        }
        self->have_keys = true;
        log_info ("settler",
                  "keys: platform %s, energy mint %s, payment mint %s, treasury %s, vaults %s "
                  "(energy) and %s (payment), %zu users",
                  self->keys.platform.text, self->keys.energy_mint.text,
                  self->keys.payment_mint.text, self->keys.treasury.text,
                  self->keys.vault_energy.text, self->keys.vault_payment.text,
                  self->keys.user_count);
    }
    else
        log_warn ("settler", "settler.keys_file is empty: settlements are recorded and wait; "
                             "nothing is signed until keys are configured");
    self->batches = calloc (SETTLER_ROUND_TXS, sizeof *self->batches);
    self->store = settle_store_new ();
    self->wallets = wallets_new (cfg, &self->keys);
    self->rpc = rpc_new (cfg->settler.rpc_url, (int) cfg->settler.rpc_timeout_ms);
    if (!self->batches || !self->store || !self->wallets || !self->rpc)
        goto fail;
    char dir[CONFIG_PATH_MAX + 16];
    self->curve = curve_new (cfg, "settler", true);
    if (!self->curve)
        goto fail;
    bus_pub_opts_t pub = {.stream = "s",
                          .curve = self->curve,
                          .pub_endpoint = cfg->settler.bus.pub,
                          .replay_endpoint = cfg->settler.bus.replay,
                          .journal_dir = config_journal_dir (cfg, "settler", dir, sizeof dir),
                          .journal = {.fsync = (journal_fsync_t) cfg->settler.fsync},
                          .sndhwm = BUS_PUB_HWM};
    self->bus = bus_pub_new (&pub);
    if (!self->bus || s_recover (self, dir))
        goto fail;
    s_counts (self);
    atomic_store (&self->m.journal_seq, bus_pub_committed_seq (self->bus));
    atomic_store (&self->m.ledger_up, 1);
    atomic_store (&self->m.postgres_up, 1);
    self->sub = bus_sub_new_for (cfg, self->curve, "m", "settler", settle_store_mseq (self->store));
    self->link = transfer_link_new (cfg->matcher.commands, self->curve);
    if (!self->sub || !self->link)
        goto fail;
    if (cfg->settler.commands[0]) {
        self->admin = zsock_new (ZMQ_ROUTER);
        if (self->admin)
            zsock_set_maxmsgsize (self->admin, PROTO_MAX_SIZE);
        if (!self->admin || curve_server (self->curve, self->admin) < 0 ||
            zsock_bind (self->admin, "%s", cfg->settler.commands) < 0) {
            log_error ("settler", "cannot bind settler.commands %s", cfg->settler.commands);
            goto fail;
        }
    }
    self->http = metrics_http_new ("settler", cfg->metrics_address, (int) cfg->settler.metrics_port,
                                   settler_metrics_render, &self->m);
    log_info ("settler",
              "ready: ledger %s, following stream m after seq %" PRIu64
              ", matcher commands to %s, admin commands on %s",
              cfg->settler.rpc_url, settle_store_mseq (self->store), cfg->matcher.commands,
              cfg->settler.commands[0] ? cfg->settler.commands : "(none)");
    return self;
fail:
    settler_server_destroy (&self);
    return NULL;
}

void settler_server_destroy (settler_server_t **self_p)
{
    settler_server_t *self = *self_p;
    if (!self)
        return;
    metrics_http_destroy (&self->http);
    zsock_destroy (&self->admin);
    transfer_link_destroy (&self->link);
    bus_sub_destroy (&self->sub);
    bus_pub_destroy (&self->bus);
    rpc_destroy (&self->rpc);
    wallets_destroy (&self->wallets);
    settle_store_destroy (&self->store);
    curve_destroy (&self->curve); //  after every socket it serves
    free (self->batches);
    keys_clear (&self->keys);
    proto_buf_free (&self->buf);
    free (self);
    *self_p = NULL;
}

//  Age of the oldest settlement not confirmed, for the metrics.
static void s_lag (settler_server_t *self)
{
    int64_t oldest = 0;
    for (settlement_t *s = settle_store_pending (self->store); s; s = s->next)
        if (!oldest || s->created < oldest)
            oldest = s->created;
    for (settle_tx_t *tx = settle_store_in_flight (self->store); tx; tx = tx->next)
        for (size_t i = 0; i < tx->count; i++)
            if (tx->items[i] && (!oldest || tx->items[i]->created < oldest))
                oldest = tx->items[i]->created;
    int64_t now = clock_wall_ns ();
    atomic_store (&self->m.lag_ms,
                  oldest && now > oldest ? (uint64_t) ((now - oldest) / MCE_NS_PER_MSEC) : 0);
}

//  How long the loop may sleep: until the ledger may be called again, the next status round,
//  a pending item's retry time, or the next matcher command due; never past S_IDLE_MS.
static long s_timeout (settler_server_t *self, int64_t now)
{
    int64_t wake = now + S_IDLE_MS * MCE_NS_PER_MSEC;
    bool pending = settle_store_count (self->store, PROTO_SETTLE_STATE_PENDING) ||
                   settle_store_transfers_pending (self->store);
    bool work = settle_store_tx_count (self->store) > 0 || (self->have_keys && pending);
    if (work) {
        int64_t at = self->ledger_retry_at > now ? self->ledger_retry_at
                     : settle_store_tx_count (self->store)
                         ? self->next_status
                         : now + S_PENDING_WAIT_MS * MCE_NS_PER_MSEC;
        if (self->pg_retry_at > at && !settle_store_tx_count (self->store))
            at = self->pg_retry_at;
        if (at < wake)
            wake = at;
    }
    if (settle_store_owed (self->store) && self->next_notify < wake)
        wake = self->next_notify;
    return wake <= now ? 0 : (long) ((wake - now + MCE_NS_PER_MSEC - 1) / MCE_NS_PER_MSEC);
}

int settler_server_run (settler_server_t *self)
{
    zmq_pollitem_t items[4];
    bus_sub_pollitems (self->sub, items);
    int count = 2;
    items[count++] = (zmq_pollitem_t){transfer_link_socket (self->link), 0, ZMQ_POLLIN, 0};
    if (self->admin)
        items[count++] = (zmq_pollitem_t){zsock_resolve (self->admin), 0, ZMQ_POLLIN, 0};
    int rc = 0;
    while (!zsys_interrupted) {
        long timeout = s_timeout (self, clock_mono_ns ());
        if (zmq_poll (items, count, timeout) < 0 && zmq_errno () != EINTR) {
            log_error ("settler", "poll: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        if (s_drain_bus (self) || (self->admin && settler_admin_serve (self)) ||
            s_drain_link (self) || settler_commit (self)) {
            rc = -1;
            break;
        }
        int64_t now = clock_mono_ns ();
        if (now >= self->ledger_retry_at && settle_store_tx_count (self->store) &&
            now >= self->next_status) {
            self->next_status = now + SETTLER_STATUS_MS * MCE_NS_PER_MSEC;
            if (s_status_round (self) || settler_commit (self)) {
                rc = -1;
                break;
            }
        }
        if (!self->recovering && clock_mono_ns () >= self->ledger_retry_at &&
            (s_send_round (self) || settler_commit (self) || s_resend_round (self) ||
             settler_commit (self))) {
            rc = -1;
            break;
        }
        if (!self->recovering && settle_store_tx_count (self->store) == 0)
            self->next_status = 0;
        //  only what is committed is told to the matcher: a confirmation, a failure
        s_notify (self);
        s_vaults (self);
        s_counts (self);
        now = clock_mono_ns ();
        if (now >= self->next_lag) {
            self->next_lag = now + S_LAG_EVERY_MS * MCE_NS_PER_MSEC;
            s_lag (self);
        }
    }
    log_info ("settler", "stopping: journal at seq %" PRIu64 ", %zu transactions in flight",
              bus_pub_committed_seq (self->bus), settle_store_tx_count (self->store));
    return rc;
}
