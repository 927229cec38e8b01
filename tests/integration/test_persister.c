/*  test_persister — every matcher event lands in Postgres exactly once, whatever happens to the
    persister: killed with -9 at twenty random moments under load, and through a Postgres
    outage. Postgres is compared with the matcher's journal at the end: every accepted order
    and every trade there, none twice, and the same sums per epoch.

    The accounts ride along: a third client credits deposits, places orders in an escrow market
    (reserving, trading, releasing), asks for withdrawals and closes them as paid or refunded,
    as the settler would. Every balance event must be one row of balance_movements, each
    user's balances in Postgres and in Redis (mce:balance:<user>) must be the journal's last
    word on them, and every withdrawal must show the matcher's last state. Then Redis loses
    everything and a restarted persister rewrites the balances from Postgres.
*/
#include "clock.h"
#include "harness.h"
#include "pg.h"
#include "pgtest.h"
#include "proto.h"
#include "redistest.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define S_KILLS        20
#define S_CLIENTS      2
#define S_ESCROW_MKT   "campus-2"
#define S_ESCROW_BURST 24 //  escrow commands per round
#define S_ACCOUNTS     4  //  payer0, payer1 deposit payment; maker0, maker1 energy
#define S_WITHDRAWALS  4096
#define S_RESTING      256 //  escrow orders the load remembers as maybe resting, to cancel

static harness_t s_h;
static pgtest_t s_pg;
static redistest_t s_redis;

static void s_fini (void)
{
    harness_cleanup (&s_h);
    redistest_stop (&s_redis);
    pgtest_stop (&s_pg);
}

static uint64_t s_rand (void)
{
    static uint64_t x = 0x2545F4914F6CDD1Dull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static const char *const s_accounts[S_ACCOUNTS] = {"payer0", "payer1", "maker0", "maker1"};

//  What the journal says should be in Postgres.
typedef struct {
    uint64_t last_seq;
    int64_t orders, trades, trade_qty, trade_value;
    int64_t balance_events;
    struct {
        bool seen;
        int64_t available, reserved;
        uint64_t seq;
    } balance[S_ACCOUNTS][2]; //  [account][0 energy, 1 payment]: the last balance event's
    struct {
        proto_withdrawal_phase_t state; //  NONE: no such withdrawal
        int account;
        int64_t amount;
    } withdrawal[S_WITHDRAWALS]; //  by id
    int64_t withdrawals;
} s_truth_t;

static int s_account (const char *user)
{
    for (int a = 0; a < S_ACCOUNTS; a++)
        if (strcmp (user, s_accounts[a]) == 0)
            return a;
    cr_assert_fail ("a balance event of %s, who is none of the test's accounts", user);
    return -1;
}

static void s_journal_event (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                             void *arg)
{
    (void) ev;
    (void) len;
    s_truth_t *t = arg;
    if (msg->kind == PROTO_order_accepted)
        t->orders++;
    else if (msg->kind == PROTO_trade) {
        t->trades++;
        t->trade_qty += msg->trade.qty;
        t->trade_value += msg->trade.value;
    }
    else if (msg->kind == PROTO_balance) {
        const proto_balance_t *e = &msg->balance;
        int a = s_account (e->user), k = e->asset == PROTO_ASSET_ENERGY ? 0 : 1;
        t->balance[a][k].seen = true;
        t->balance[a][k].available = e->available;
        t->balance[a][k].reserved = e->reserved;
        t->balance[a][k].seq = e->seq;
        t->balance_events++;
    }
    else if (msg->kind == PROTO_withdrawal) {
        const proto_withdrawal_t *e = &msg->withdrawal;
        cr_assert_lt (e->withdrawal_id, (uint64_t) S_WITHDRAWALS);
        if (!t->withdrawal[e->withdrawal_id].state)
            t->withdrawals++;
        t->withdrawal[e->withdrawal_id].state = e->state;
        t->withdrawal[e->withdrawal_id].account = s_account (e->user);
        t->withdrawal[e->withdrawal_id].amount = e->amount;
    }
    t->last_seq = seq;
}

static s_truth_t *s_journal_truth (void)
{
    s_truth_t *t = calloc (1, sizeof *t);
    cr_assert_not_null (t);
    cr_assert_geq (harness_journal_events (&s_h, s_journal_event, t), 0);
    return t;
}

static int64_t s_query_int (pg_t *pg, const char *sql)
{
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

//  Waits until the running persister says (in its debug log, which this test turns on) that
//  it applied the bus through seq: a batch ends at the last event it has, so once the load
//  stops the last batch ends exactly at the journal's last seq. Redis takes each batch after
//  Postgres ("redis: at seq S"), or all of them in a rewrite ("...; at seq S").
static void s_wait_applied (int persister, uint64_t seq)
{
    char line[64];
    snprintf (line, sizeof line, "events through seq %llu\n", (unsigned long long) seq);
    cr_assert (harness_wait_log (&s_h, persister, line, HARNESS_DEADLINE_MS * 2),
               "Postgres never reached seq %llu", (unsigned long long) seq);
    snprintf (line, sizeof line, "at seq %llu\n", (unsigned long long) seq);
    cr_assert (harness_wait_log (&s_h, persister, line, HARNESS_DEADLINE_MS * 2),
               "Redis never reached seq %llu", (unsigned long long) seq);
}

//  --------------------------------------------------------------------------------------------
//  The accounts' load: deposits, orders of the escrow market, withdrawals and their closing

typedef struct {
    zsock_t *dealer;
    uint64_t rid;
    uint64_t next_deposit;
    proto_kind_t sent[S_ESCROW_BURST]; //  this round's commands, by rid - first rid
    uint64_t first_rid;
    uint64_t open[S_WITHDRAWALS]; //  withdrawals acknowledged and not closed yet
    size_t nopen;
    struct {
        uint64_t id;
        int account;
    } resting[S_RESTING], sent_order[S_ESCROW_BURST]; //  orders that may rest; this round's
    size_t nresting;
    int64_t acks, rejects;
} s_escrow_t;

static void s_send (zsock_t *dealer, const proto_msg_t *cmd)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (cmd, &buf), 0);
    cr_assert_eq (zmq_send (zsock_resolve (dealer), buf.data, buf.len, 0), (int) buf.len);
    proto_buf_free (&buf);
}

//  One command: a deposit credited, an order (some IOC), a cancel of an order that may rest
//  (releasing what it held), a withdrawal (refused when the balance does not cover it), or the
//  close of an open one.
static proto_kind_t s_escrow_command (s_escrow_t *e, uint64_t rid)
{
    proto_msg_t cmd = {0};
    uint64_t dice = s_rand () % 10;
    int a = (int) (s_rand () % S_ACCOUNTS);
    bool payer = a < 2;
    proto_asset_t asset = payer ? PROTO_ASSET_PAYMENT : PROTO_ASSET_ENERGY;
    if (dice < 3) {
        cmd.kind = PROTO_deposit_credit;
        proto_deposit_credit_t *d = &cmd.deposit_credit;
        d->rid = rid;
        d->deposit_id = e->next_deposit++;
        snprintf (d->user, sizeof d->user, "%s", s_accounts[a]);
        d->asset = asset;
        d->amount = payer ? 2000000 : 10000; //  µ: 2 units; Wh: 10 kWh
        d->ts = 1;
    }
    else if (dice == 6 && e->nresting) {
        cmd.kind = PROTO_cancel_order;
        proto_cancel_order_t *o = &cmd.cancel_order;
        size_t k = (size_t) (s_rand () % e->nresting);
        o->rid = rid;
        snprintf (o->user, sizeof o->user, "%s", s_accounts[e->resting[k].account]);
        snprintf (o->market, sizeof o->market, S_ESCROW_MKT);
        o->order_id = e->resting[k].id;
        o->ts = 1;
        e->resting[k] = e->resting[--e->nresting];
    }
    else if (dice < 7) {
        cmd.kind = PROTO_new_order;
        e->sent_order[rid - e->first_rid].account = a;
        proto_new_order_t *o = &cmd.new_order;
        o->rid = rid;
        snprintf (o->user, sizeof o->user, "%s", s_accounts[a]);
        snprintf (o->market, sizeof o->market, S_ESCROW_MKT);
        o->side = payer ? PROTO_SIDE_BUY : PROTO_SIDE_SELL;
        o->type = PROTO_ORDER_TYPE_LIMIT;
        o->tif = s_rand () % 4 ? PROTO_TIF_GTC : PROTO_TIF_IOC;
        o->qty = (int64_t) (1 + s_rand () % 5) * 1000;
        o->price = 140000 + (int64_t) (s_rand () % 21) * 1000;
        o->ts = 1;
    }
    else if (dice < 9 || e->nopen == 0) {
        cmd.kind = PROTO_withdraw;
        proto_withdraw_t *w = &cmd.withdraw;
        w->rid = rid;
        snprintf (w->user, sizeof w->user, "%s", s_accounts[a]);
        w->asset = s_rand () % 4 ? asset : (payer ? PROTO_ASSET_ENERGY : PROTO_ASSET_PAYMENT);
        w->amount = (int64_t) (1 + s_rand () % 1000);
        w->ts = 1;
    }
    else {
        cmd.kind = PROTO_withdrawal_close;
        proto_withdrawal_close_t *c = &cmd.withdrawal_close;
        size_t k = (size_t) (s_rand () % e->nopen);
        c->rid = rid;
        c->withdrawal_id = e->open[k];
        c->refund = s_rand () & 1;
        c->ts = 1;
        e->open[k] = e->open[--e->nopen];
    }
    s_send (e->dealer, &cmd);
    return cmd.kind;
}

static void s_escrow_send (s_escrow_t *e)
{
    e->first_rid = e->rid;
    for (int i = 0; i < S_ESCROW_BURST; i++) {
        uint64_t rid = e->rid++;
        e->sent[rid - e->first_rid] = s_escrow_command (e, rid);
    }
}

//  Takes the round's replies; a withdrawal acknowledged is open until a later round closes it.
static void s_escrow_recv (s_escrow_t *e)
{
    for (int i = 0; i < S_ESCROW_BURST; i++) {
        zframe_t *f = zframe_recv (e->dealer);
        cr_assert_not_null (f, "the matcher stopped answering the escrow client");
        proto_msg_t reply;
        cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
        zframe_destroy (&f);
        if (reply.kind == PROTO_reject) {
            e->rejects++; //  insufficient_balance, or a cancel of an order that traded away
            continue;
        }
        cr_assert_eq (reply.kind, PROTO_ack);
        e->acks++;
        uint64_t slot = reply.ack.rid - e->first_rid;
        cr_assert_lt (slot, (uint64_t) S_ESCROW_BURST);
        if (e->sent[slot] == PROTO_withdraw) {
            cr_assert (reply.ack.ref > 0 && e->nopen < S_WITHDRAWALS);
            e->open[e->nopen++] = reply.ack.ref;
        }
        bool rests = reply.ack.status == PROTO_ORDER_STATUS_OPEN ||
                     reply.ack.status == PROTO_ORDER_STATUS_PARTIALLY_FILLED;
        if (e->sent[slot] == PROTO_new_order && rests) {
            size_t k = e->nresting < S_RESTING ? e->nresting++ : (size_t) (s_rand () % S_RESTING);
            e->resting[k].id = reply.ack.order_id;
            e->resting[k].account = e->sent_order[slot].account;
        }
    }
}

static void s_send_orders (zsock_t **clients, int count, uint64_t *rid)
{
    for (int c = 0; c < S_CLIENTS; c++)
        for (int i = 0; i < count; i++) {
            bool buy = s_rand () & 1;
            int64_t price = 150000 + (int64_t) (s_rand () % 20) * 1000 - 10000;
            harness_order (clients[c], (*rid)++, buy ? "buyer" : "seller", buy,
                           (int64_t) (1 + s_rand () % 10) * 1000, price);
        }
}

//  Takes count replies from each client.
static void s_drain (zsock_t **clients, int count)
{
    for (int i = 0; i < count * S_CLIENTS; i++) {
        zframe_t *f = zframe_recv (clients[i % S_CLIENTS]);
        cr_assert_not_null (f, "the matcher stopped answering");
        zframe_destroy (&f);
    }
}

//  One row of a query with text parameters, its columns joined with '|' (NULL as "-").
static void s_query_row (pg_t *pg, const char *sql, int nparams, const char *const *params,
                         char *out, size_t size)
{
    pg_result_t *r = pg_exec (pg, sql, nparams, params);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    cr_assert_eq (pg_rows (r), 1, "%s: %d rows", sql, pg_rows (r));
    size_t len = 0;
    out[0] = '\0';
    for (int c = 0; c < pg_cols (r); c++) {
        const char *v = pg_value (r, 0, c);
        len += (size_t) snprintf (out + len, size - len, "%s%s", c ? "|" : "", v ? v : "-");
        cr_assert_lt (len, size);
    }
    pg_result_free (&r);
}

//  The accounts in Postgres and Redis against the journal.
static void s_compare_accounts (pg_t *pg, const s_truth_t *t)
{
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM balance_movements"), t->balance_events,
                  "every balance event once");
    cr_assert_eq (s_query_int (pg,
                               "SELECT count(*) FROM balances b WHERE (b.available, b.reserved) <> "
                               "(SELECT sum (d_available), sum (d_reserved) FROM balance_movements "
                               "m WHERE m.username = b.username AND m.asset = b.asset)"),
                  0, "each balance is the sum of its movements");
    char causes[256];
    s_query_row (pg, "SELECT string_agg (DISTINCT cause, ',') FROM balance_movements", 0, NULL,
                 causes, sizeof causes);
    cr_assert_str_eq (causes, "deposit,order,refund,release,trade,withdrawal",
                      "the load moved balances for every cause, not only %s", causes);
    redisContext *c = redistest_connect (&s_redis);
    cr_assert_not_null (c);
    int64_t rows = 0, users = 0;
    for (int a = 0; a < S_ACCOUNTS; a++) {
        int64_t want[2][2] = {{0}};
        bool any = false;
        for (int k = 0; k < 2; k++) {
            if (!t->balance[a][k].seen)
                continue;
            any = true;
            rows++;
            want[k][0] = t->balance[a][k].available;
            want[k][1] = t->balance[a][k].reserved;
            char expected[128], got[128];
            snprintf (expected, sizeof expected, "%" PRId64 "|%" PRId64 "|%" PRIu64, want[k][0],
                      want[k][1], t->balance[a][k].seq);
            const char *params[] = {s_accounts[a], k ? "payment" : "energy"};
            s_query_row (pg,
                         "SELECT available, reserved, updated_seq FROM balances WHERE "
                         "username = $1 AND asset = $2",
                         2, params, got, sizeof got);
            cr_assert_str_eq (got, expected, "%s's %s", s_accounts[a], params[1]);
        }
        if (!any)
            continue;
        users++;
        redisReply *r = redisCommand (c,
                                      "HMGET mce:balance:%s energy_available energy_reserved "
                                      "payment_available payment_reserved",
                                      s_accounts[a]);
        cr_assert (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4, "redis: %s", c->errstr);
        for (size_t f = 0; f < 4; f++) {
            cr_assert_eq (r->element[f]->type, REDIS_REPLY_STRING, "%s field %zu", s_accounts[a],
                          f);
            cr_assert_eq (strtoll (r->element[f]->str, NULL, 10), want[f / 2][f % 2],
                          "Redis: %s field %zu", s_accounts[a], f);
        }
        freeReplyObject (r);
    }
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM balances"), rows);
    redisReply *r = redisCommand (c, "KEYS mce:balance:*");
    cr_assert (r && r->type == REDIS_REPLY_ARRAY);
    cr_assert_eq ((int64_t) r->elements, users, "a hash per user with a balance");
    freeReplyObject (r);
    redisFree (c);
    cr_assert_gt (users, 2, "the load moved balances of several users");

    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM withdrawals"), t->withdrawals,
                  "every withdrawal once");
    int64_t closed = 0;
    for (uint64_t id = 1; id < S_WITHDRAWALS; id++) {
        if (!t->withdrawal[id].state)
            continue;
        char idtext[24], expected[128], got[128];
        snprintf (idtext, sizeof idtext, "%" PRIu64, id);
        snprintf (expected, sizeof expected, "%s|%" PRId64 "|%s",
                  s_accounts[t->withdrawal[id].account], t->withdrawal[id].amount,
                  proto_withdrawal_phase_name (t->withdrawal[id].state));
        const char *params[] = {idtext};
        s_query_row (pg, "SELECT username, amount, state FROM withdrawals WHERE withdrawal_id = $1",
                     1, params, got, sizeof got);
        cr_assert_str_eq (got, expected, "withdrawal %" PRIu64, id);
        closed += t->withdrawal[id].state != PROTO_WITHDRAWAL_PHASE_REQUESTED;
    }
    cr_assert_gt (closed, 0, "the load closed withdrawals");
    fprintf (stderr,
             "persister: %" PRId64 " balance events of %" PRId64 " users, %" PRId64
             " withdrawals (%" PRId64 " closed) in Postgres and Redis\n",
             t->balance_events, users, t->withdrawals, closed);
}

static void s_compare (pg_t *pg, int persister)
{
    s_truth_t *t = s_journal_truth ();
    s_wait_applied (persister, t->last_seq);
    cr_assert_eq (s_query_int (pg, "SELECT last_seq FROM consumer_offsets WHERE stream = 'm'"),
                  (int64_t) t->last_seq);
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM orders"), t->orders,
                  "every accepted order once");
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM trades"), t->trades, "every trade once");
    cr_assert_eq (s_query_int (pg, "SELECT coalesce(sum(qty), 0) FROM trades"), t->trade_qty);
    cr_assert_eq (s_query_int (pg, "SELECT coalesce(sum(value), 0) FROM trades"), t->trade_value);
    //  per order: what the trades filled is what the order says it has filled
    cr_assert_eq (s_query_int (pg,
                               "SELECT count(*) FROM orders o LEFT JOIN (SELECT id, sum (qty) AS "
                               "qty FROM (SELECT buy_order_id AS id, qty FROM trades UNION ALL "
                               "SELECT sell_order_id, qty FROM trades) AS sides GROUP BY id) AS f "
                               "ON f.id = o.order_id WHERE o.filled <> coalesce (f.qty, 0)"),
                  0, "each order's filled equals the sum of its trades");
    cr_assert_gt (t->trades, 10, "the load made trades (%lld)", (long long) t->trades);
    fprintf (stderr, "persister: %lld orders, %lld trades, seq %llu in Postgres\n",
             (long long) t->orders, (long long) t->trades, (unsigned long long) t->last_seq);
    s_compare_accounts (pg, t);
    free (t);
}

Test (persister, kill_nine_twenty_times_under_load, .fini = s_fini, .timeout = 300)
{
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    cr_assert_eq (redistest_start (&s_redis), 0);
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; "
              "escrow = false; },\n"
              "  { id = \"" S_ESCROW_MKT "\"; tick = \"0.001\"; epoch_seconds = 2592000; "
              "escrow = true; } );\n"
              "postgres = { url = \"%s\"; };\nredis = { url = \"%s\"; };\n",
              s_pg.conninfo, s_redis.url);
    harness_init (&s_h, config);
    harness_start (&s_h, "mce-matcher");
    char port[16];
    snprintf (port, sizeof port, "%d", s_h.port_ws); //  free, and unused here
    setenv ("MCE_PERSISTER_METRICS_PORT", port, 1);  //  for every persister this test starts
    setenv ("MCE_LOG_LEVEL", "debug", 1);            //  the persister says what it applied
    int persister = harness_start (&s_h, "mce-persister");
    cr_assert (harness_wait_log (&s_h, persister, "following stream m", HARNESS_DEADLINE_MS));
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *clients[S_CLIENTS];
    for (int c = 0; c < S_CLIENTS; c++) {
        clients[c] = harness_dealer (&s_h, "matcher", endpoint);
        zsock_set_rcvtimeo (clients[c], HARNESS_DEADLINE_MS);
    }
    static s_escrow_t escrow; //  big: the open withdrawals
    escrow = (s_escrow_t){
        .rid = 1, .next_deposit = 1, .dealer = harness_dealer (&s_h, "matcher", endpoint)};
    cr_assert_not_null (escrow.dealer);
    zsock_set_rcvtimeo (escrow.dealer, HARNESS_DEADLINE_MS);
    char err[256];
    pg_t *pg = pg_connect (s_pg.conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "%s", err);
    uint64_t rid = 1;
    for (int round = 0; round < S_KILLS; round++) {
        //  Load, and a kill at a random moment of the persister's work on it: after a random
        //  number of the matcher's acknowledgements (each one an event on its way to Postgres).
        int sent = 50 + (int) (s_rand () % 200);
        s_send_orders (clients, sent / 2, &rid);
        s_escrow_send (&escrow); //  amid the orders: a kill may fall before, in or after them
        s_send_orders (clients, sent - sent / 2, &rid);
        int kill_after = (int) (s_rand () % (uint64_t) (sent * S_CLIENTS));
        for (int got = 0; got < sent * S_CLIENTS; got++) {
            if (got == kill_after)
                cr_assert_eq (WTERMSIG (harness_stop (&s_h, persister, SIGKILL)), SIGKILL);
            zframe_t *f = zframe_recv (clients[got % S_CLIENTS]);
            cr_assert_not_null (f, "round %d: the matcher stopped answering", round);
            zframe_destroy (&f);
        }
        s_escrow_recv (&escrow);
        persister = harness_start (&s_h, "mce-persister");
        cr_assert (harness_wait_log_count (&s_h, persister, "Postgres ready", round + 2,
                                           HARNESS_DEADLINE_MS),
                   "round %d: the persister did not come back", round);
    }
    s_escrow_send (&escrow);
    s_send_orders (clients, 100, &rid);
    s_drain (clients, 100);
    s_escrow_recv (&escrow);
    s_compare (pg, persister);
    //  A Postgres outage under load: the persister waits, keeps its place, and catches up.
    cr_assert_eq (pgtest_stop_server (&s_pg), 0);
    s_escrow_send (&escrow);
    s_send_orders (clients, 200, &rid);
    s_drain (clients, 200);
    s_escrow_recv (&escrow);
    cr_assert (harness_wait_log (&s_h, persister, "not applied", HARNESS_DEADLINE_MS),
               "the persister noticed the outage");
    cr_assert_eq (pgtest_restart (&s_pg), 0);
    pg_reset (pg);
    cr_assert (harness_wait_log (&s_h, persister, "Postgres is back", HARNESS_DEADLINE_MS * 2));
    s_compare (pg, persister);
    //  Redis loses everything while the persister is down: the next one loads the balances
    //  (and the books) from Postgres and rewrites them.
    cr_assert_eq (WTERMSIG (harness_stop (&s_h, persister, SIGKILL)), SIGKILL);
    int rewrites = harness_count_log (&s_h, persister, "book rewritten");
    cr_assert_eq (redistest_stop_server (&s_redis), 0);
    cr_assert_eq (redistest_restart (&s_redis), 0);
    persister = harness_start (&s_h, "mce-persister");
    cr_assert (harness_wait_log_count (&s_h, persister, "book rewritten", rewrites + 1,
                                       HARNESS_DEADLINE_MS),
               "the persister rewrote Redis");
    s_compare (pg, persister);
    //  The metrics say where it is: the journal's end, nothing behind.
    char *metrics = NULL;
    cr_assert_eq (harness_http_port (s_h.port_ws, "GET", "/metrics", NULL, &metrics), 200);
    char want_seq[64];
    s_truth_t *truth = s_journal_truth ();
    snprintf (want_seq, sizeof want_seq, "mce_persister_applied_seq %llu\n",
              (unsigned long long) truth->last_seq);
    free (truth);
    cr_assert_not_null (strstr (metrics, want_seq), "%s wanted in:\n%s", want_seq, metrics);
    cr_assert_not_null (strstr (metrics, "mce_persister_failures_total "), "%s", metrics);
    free (metrics);
    unsetenv ("MCE_PERSISTER_METRICS_PORT");
    unsetenv ("MCE_LOG_LEVEL");
    //  The gateway reads a user's whole trade history from these tables (for a user who
    //  exists: the gateway refuses tokens of anyone else).
    harness_user_add (s_pg.conninfo, "buyer", "user");
    harness_start (&s_h, "mce-gateway");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS));
    char token[1024];
    harness_response_t r;
    harness_request (
        s_h.port_http,
        &(harness_request_t){.method = "GET",
                             .path = "/api/market/trades/my-history?limit=5",
                             .token = harness_token ("buyer", "user", token, sizeof token)},
        &r);
    cr_assert_eq (r.status, 200, "%s", r.body);
    char want[64];
    snprintf (want, sizeof want, "\"total\":%lld",
              (long long) s_query_int (pg, "SELECT count(*) FROM trades WHERE buyer = 'buyer'"));
    cr_assert_not_null (strstr (r.body, "\"source\":\"postgres\""), "%s", r.body);
    cr_assert_not_null (strstr (r.body, want), "%s wanted in %s", want, r.body);
    harness_response_free (&r);
    pg_destroy (&pg);
    for (int c = 0; c < S_CLIENTS; c++)
        zsock_destroy (&clients[c]);
    fprintf (stderr, "persister: escrow commands: %" PRId64 " acknowledged, %" PRId64 " refused\n",
             escrow.acks, escrow.rejects);
    zsock_destroy (&escrow.dealer);
}
