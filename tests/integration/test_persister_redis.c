/*  test_persister_redis — Redis shows the matcher's books, whatever happens (docs/architecture.md,
    the persister). A real matcher takes load from two clients (new orders from several users,
    so self-trade prevention cancels some; cancels; amendments of quantity and price); a real
    persister writes Postgres and Redis; the test folds the matcher's journal itself and
    compares:
    - Redis: every book (members and scores), every resting order's hash (and its TTL, about
      24 h), no other order hash, the per-price totals the matcher itself published (its
      book_level events), each market's totals, the newest trades list in order, the seq;
    - Postgres: every accepted order and trade once, the same sums, the offset, the orders'
      fills and the resting orders.
    Three runs: plain load with a kill -9 of the persister in the middle; Redis killed for 30 s
    under load and back empty; Postgres stopped for 30 s under load. After each, everything is
    caught up and nothing is lost.
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
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define S_CLIENTS     2
#define S_USERS       6     //  u0..u5: a user's orders may meet, and self-trade prevention acts
#define S_BURST       25    //  commands per client per round
#define S_ROUND_MS    100   //  a paced round's length: 500 commands/s from the two clients
#define S_OUTAGE_MS   30000 //  how long Postgres or Redis stays away (the 30 s)
#define S_OPEN_MAX    512   //  orders the load remembers as maybe resting (to cancel or amend)
#define S_TRADES_KEPT 1000  //  REPLICA_TRADES_DEFAULT: the Redis list's length
#define S_TTL_S       86400 //  RSTORE_TTL_S
#define S_CATCH_UP_MS (HARNESS_DEADLINE_MS * 4)
#define MKT           "campus-1"

static harness_t s_h;
static pgtest_t s_pg;
static redistest_t s_redis;
static zsock_t *s_clients[S_CLIENTS];

static void s_fini (void)
{
    for (int c = 0; c < S_CLIENTS; c++)
        zsock_destroy (&s_clients[c]);
    harness_cleanup (&s_h);
    redistest_stop (&s_redis);
    pgtest_stop (&s_pg);
}

static uint64_t s_rng = 0x9E3779B97F4A7C15ull;

static uint64_t s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static int64_t s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------------------------
//  The load: new orders, cancels and amendments, straight to the matcher as a gateway sends them

typedef enum { S_NEW, S_CANCEL, S_AMEND } s_kind_t;

typedef struct {
    zsock_t *clients[S_CLIENTS];
    uint64_t rid;
    struct {
        uint64_t id;
        int user;
    } open[S_OPEN_MAX]; //  orders acknowledged as resting (some may have traded since)
    size_t nopen;
    struct {
        s_kind_t kind;
        int user;
    } sent[S_CLIENTS * S_BURST]; //  this round's commands, by rid - first rid of the round
    uint64_t acks, rejects;
} s_load_t;

static void s_send (zsock_t *client, const proto_msg_t *cmd)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (cmd, &buf), 0);
    cr_assert_eq (zmq_send (zsock_resolve (client), buf.data, buf.len, 0), (int) buf.len);
    proto_buf_free (&buf);
}

static void s_user (char *out, size_t size, int user)
{
    snprintf (out, size, "u%d", user);
}

//  One command from client c: mostly new orders, some cancels and amendments of known orders.
static void s_command (s_load_t *load, int c, size_t slot)
{
    uint64_t rid = load->rid++;
    uint64_t dice = s_rand () % 10;
    if (dice < 8 || load->nopen == 0) {
        int user = (int) (s_rand () % S_USERS);
        bool buy = s_rand () & 1;
        int64_t price = 150000 + ((int64_t) (s_rand () % 21) - 10) * 1000;
        char name[16];
        s_user (name, sizeof name, user);
        harness_order (load->clients[c], rid, name, buy, (int64_t) (1 + s_rand () % 10) * 1000,
                       price);
        load->sent[slot].kind = S_NEW;
        load->sent[slot].user = user;
        return;
    }
    size_t k = (size_t) (s_rand () % load->nopen);
    proto_msg_t cmd = {0};
    if (dice == 8) {
        cmd.kind = PROTO_cancel_order;
        proto_cancel_order_t *o = &cmd.cancel_order;
        o->rid = rid;
        s_user (o->user, sizeof o->user, load->open[k].user);
        snprintf (o->market, sizeof o->market, MKT);
        o->order_id = load->open[k].id;
        o->ts = 1;
        load->open[k] = load->open[--load->nopen];
        load->sent[slot].kind = S_CANCEL;
    }
    else {
        cmd.kind = PROTO_amend_order;
        proto_amend_order_t *o = &cmd.amend_order;
        o->rid = rid;
        s_user (o->user, sizeof o->user, load->open[k].user);
        snprintf (o->market, sizeof o->market, MKT);
        o->order_id = load->open[k].id;
        o->qty = (int64_t) (1 + s_rand () % 10) * 1000; //  less keeps priority, more loses it
        o->price = s_rand () & 1 ? 150000 + ((int64_t) (s_rand () % 21) - 10) * 1000 : 0;
        o->ts = 1;
        load->sent[slot].kind = S_AMEND;
    }
    s_send (load->clients[c], &cmd);
}

//  One round: S_BURST commands from each client, then every reply.
static void s_round (s_load_t *load)
{
    uint64_t first = load->rid;
    for (int i = 0; i < S_BURST; i++)
        for (int c = 0; c < S_CLIENTS; c++)
            s_command (load, c, (size_t) (load->rid - first));
    for (int i = 0; i < S_BURST * S_CLIENTS; i++) {
        zframe_t *f = zframe_recv (load->clients[i % S_CLIENTS]);
        cr_assert_not_null (f, "the matcher stopped answering");
        proto_msg_t reply;
        cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
        zframe_destroy (&f);
        if (reply.kind == PROTO_reject) {
            load->rejects++; //  a cancel or amendment of an order that had traded away
            continue;
        }
        cr_assert_eq (reply.kind, PROTO_ack);
        load->acks++;
        uint64_t slot = reply.ack.rid - first;
        cr_assert_lt (slot, (uint64_t) (S_BURST * S_CLIENTS));
        bool rests = reply.ack.status == PROTO_ORDER_STATUS_OPEN ||
                     reply.ack.status == PROTO_ORDER_STATUS_PARTIALLY_FILLED;
        if (load->sent[slot].kind == S_NEW && rests) {
            size_t k = load->nopen < S_OPEN_MAX ? load->nopen++ : (size_t) (s_rand () % S_OPEN_MAX);
            load->open[k].id = reply.ack.order_id;
            load->open[k].user = load->sent[slot].user;
        }
    }
}

static void s_rounds (s_load_t *load, int rounds)
{
    for (int r = 0; r < rounds; r++)
        s_round (load);
}

//  Rounds for ms milliseconds, paced at one per S_ROUND_MS: load that keeps flowing through an
//  outage. The pause between rounds is the pace of the load, not a wait for anything.
static void s_rounds_for (s_load_t *load, int ms)
{
    int64_t start = s_now_ms ();
    for (int64_t round = 0; s_now_ms () - start < ms; round++) {
        s_round (load);
        int64_t ahead = start + (round + 1) * S_ROUND_MS - s_now_ms ();
        if (ahead > 0)
            zclock_sleep ((int) ahead);
    }
}

//  --------------------------------------------------------------------------------------------
//  The truth: the matcher's journal, folded

typedef struct {
    int64_t epoch, price, qty, filled, remaining;
    proto_side_t side;
    char user[PROTO_STR64_MAX + 1];
    bool resting;
} s_order_t;

typedef struct {
    uint64_t tid, seq, boid, soid;
    int64_t epoch, px, qty, val, ts;
    proto_side_t aggr;
} s_trade_t;

typedef struct {
    int64_t epoch, price;
    proto_side_t side;
    int64_t qty;
    uint32_t count;
} s_level_t;

typedef struct {
    s_order_t *orders; //  by order id
    size_t orders_cap;
    s_trade_t *trades;
    size_t ntrades;
    s_level_t *levels; //  the matcher's book_level events, the last of each level
    size_t nlevels;
    uint64_t last_seq;
    int64_t accepted, volume, value;
    size_t resting;
} s_truth_t;

static void s_truth_free (s_truth_t *t)
{
    free (t->orders);
    free (t->trades);
    free (t->levels);
    memset (t, 0, sizeof *t);
}

static s_order_t *s_truth_order (s_truth_t *t, uint64_t id)
{
    if (id >= t->orders_cap) {
        size_t cap = t->orders_cap ? t->orders_cap : 1024;
        while (cap <= id)
            cap *= 2;
        t->orders = realloc (t->orders, cap * sizeof *t->orders);
        cr_assert_not_null (t->orders);
        memset (t->orders + t->orders_cap, 0, (cap - t->orders_cap) * sizeof *t->orders);
        t->orders_cap = cap;
    }
    return &t->orders[id];
}

static void s_truth_gone (s_truth_t *t, uint64_t id)
{
    s_order_t *o = s_truth_order (t, id);
    if (o->resting) {
        o->resting = false;
        t->resting--;
    }
}

static void s_truth_event (s_truth_t *t, const proto_msg_t *m)
{
    switch (m->kind) {
        case PROTO_order_accepted: {
            const proto_order_accepted_t *e = &m->order_accepted;
            cr_assert_eq (e->tif, PROTO_TIF_GTC, "the load only sends GTC limit orders");
            s_order_t *o = s_truth_order (t, e->order_id);
            *o = (s_order_t){.epoch = e->epoch,
                             .price = e->price,
                             .qty = e->qty,
                             .remaining = e->qty,
                             .side = e->side,
                             .resting = true};
            snprintf (o->user, sizeof o->user, "%s", e->user);
            t->accepted++;
            t->resting++;
            break;
        }
        case PROTO_trade: {
            const proto_trade_t *e = &m->trade;
            t->trades = realloc (t->trades, (t->ntrades + 1) * sizeof *t->trades);
            cr_assert_not_null (t->trades);
            t->trades[t->ntrades++] = (s_trade_t){.tid = e->trade_id,
                                                  .seq = e->seq,
                                                  .boid = e->buy_order_id,
                                                  .soid = e->sell_order_id,
                                                  .epoch = e->epoch,
                                                  .px = e->price,
                                                  .qty = e->qty,
                                                  .val = e->value,
                                                  .ts = e->ts,
                                                  .aggr = e->aggressor};
            t->volume += e->qty;
            t->value += e->value;
            const uint64_t ids[2] = {e->buy_order_id, e->sell_order_id};
            for (int i = 0; i < 2; i++) {
                s_order_t *o = s_truth_order (t, ids[i]);
                o->filled += e->qty;
                o->remaining -= e->qty;
                if (o->remaining == 0)
                    s_truth_gone (t, ids[i]);
            }
            break;
        }
        case PROTO_order_cancelled:
            s_truth_gone (t, m->order_cancelled.order_id);
            break;
        case PROTO_order_expired:
            s_truth_gone (t, m->order_expired.order_id);
            break;
        case PROTO_order_amended: {
            const proto_order_amended_t *e = &m->order_amended;
            s_order_t *o = s_truth_order (t, e->order_id);
            o->remaining = e->qty;
            o->qty = o->filled + e->qty;
            o->price = e->price;
            break;
        }
        case PROTO_book_level: {
            const proto_book_level_t *e = &m->book_level;
            size_t i = 0;
            while (i < t->nlevels &&
                   !(t->levels[i].epoch == e->epoch && t->levels[i].side == e->side &&
                     t->levels[i].price == e->price))
                i++;
            if (i == t->nlevels) {
                t->levels = realloc (t->levels, (t->nlevels + 1) * sizeof *t->levels);
                cr_assert_not_null (t->levels);
                t->nlevels++;
            }
            t->levels[i] = (s_level_t){e->epoch, e->price, e->side, e->qty, e->count};
            break;
        }
        default:
            break;
    }
}

static void s_journal_event (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                             void *arg)
{
    (void) ev;
    (void) len;
    s_truth_t *t = arg;
    s_truth_event (t, msg);
    t->last_seq = seq;
}

static s_truth_t s_journal_truth (void)
{
    s_truth_t t = {0};
    cr_assert_geq (harness_journal_events (&s_h, s_journal_event, &t), 0);
    return t;
}

//  --------------------------------------------------------------------------------------------
//  Looking at Redis and Postgres

static redisReply *s_redis_cmd (redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    redisReply *r = redisvCommand (c, fmt, ap);
    va_end (ap);
    cr_assert_not_null (r, "redis: %s", c->errstr);
    cr_assert_neq (r->type, REDIS_REPLY_ERROR, "redis: %s", r->str);
    return r;
}

//  Redis's seq; 0 when absent or Redis is not answering.
static uint64_t s_redis_seq (void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", s_redis.port, tv);
    uint64_t seq = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand (c, "GET mce:persister:seq");
        if (r && r->type == REDIS_REPLY_STRING)
            seq = strtoull (r->str, NULL, 10);
        freeReplyObject (r);
    }
    redisFree (c);
    return seq;
}

//  Waits until the persister says (in its debug log) that Redis took a batch.
static void s_wait_redis_moved (int persister)
{
    cr_assert (harness_wait_log (&s_h, persister, "redis: at seq ", S_CATCH_UP_MS),
               "Redis never got a batch");
}

static int64_t s_query_int (pg_t *pg, const char *sql)
{
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

//  Postgres's offset, or -1 while it is not answering.
static int64_t s_pg_offset (pg_t *pg)
{
    if (!pg_ok (pg) && pg_reset (pg) != 0)
        return -1;
    const char *sql = "SELECT last_seq FROM consumer_offsets WHERE stream = 'm'";
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    if (!r && pg_reset (pg) == 0) //  a connection from before an outage fails once, then works
        r = pg_exec (pg, sql, 0, NULL);
    int64_t v = r && pg_rows (r) ? pg_int (r, 0, 0) : -1;
    pg_result_free (&r);
    return v;
}

//  Waits until the persister says (in its debug log) that Postgres and, when redis, Redis are
//  at seq: a batch ends at the last event it has, so once the load stops the last batch of
//  each ends exactly at the journal's last seq ("applied N events through seq S" for Postgres;
//  "redis: at seq S" after a batch, or "...; at seq S" after a rewrite, for Redis). Then the
//  offsets themselves say so.
static void s_wait_caught_up (pg_t *pg, int persister, uint64_t seq, bool redis)
{
    char line[64];
    snprintf (line, sizeof line, "events through seq %" PRIu64 "\n", seq);
    cr_assert (harness_wait_log (&s_h, persister, line, S_CATCH_UP_MS),
               "Postgres never reached seq %" PRIu64 " (offset %" PRId64 ")", seq,
               s_pg_offset (pg));
    cr_assert_eq (s_pg_offset (pg), (int64_t) seq);
    if (!redis)
        return;
    snprintf (line, sizeof line, "at seq %" PRIu64 "\n", seq);
    cr_assert (harness_wait_log (&s_h, persister, line, S_CATCH_UP_MS),
               "Redis never reached seq %" PRIu64 " (it is at %" PRIu64 ")", seq, s_redis_seq ());
    cr_assert_eq (s_redis_seq (), seq);
}

static void s_compare_postgres (pg_t *pg, const s_truth_t *t)
{
    cr_assert_eq (s_pg_offset (pg), (int64_t) t->last_seq);
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM orders"), t->accepted,
                  "every accepted order once");
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM trades"), (int64_t) t->ntrades,
                  "every trade once");
    cr_assert_eq (s_query_int (pg, "SELECT coalesce(sum(qty), 0) FROM trades"), t->volume);
    cr_assert_eq (s_query_int (pg, "SELECT coalesce(sum(value), 0) FROM trades"), t->value);
    cr_assert_eq (s_query_int (pg,
                               "SELECT count(*) FROM orders o LEFT JOIN (SELECT id, sum (qty) AS "
                               "qty FROM (SELECT buy_order_id AS id, qty FROM trades UNION ALL "
                               "SELECT sell_order_id, qty FROM trades) AS sides GROUP BY id) AS f "
                               "ON f.id = o.order_id WHERE o.filled <> coalesce (f.qty, 0)"),
                  0, "each order's filled equals the sum of its trades");
    pg_result_t *r = pg_exec (pg,
                              "SELECT order_id, price, remaining FROM orders WHERE status IN "
                              "('open', 'partially_filled')",
                              0, NULL);
    cr_assert_not_null (r, "%s", pg_error (pg));
    cr_assert_eq ((size_t) pg_rows (r), t->resting, "the resting orders");
    for (int i = 0; i < pg_rows (r); i++) {
        uint64_t id = (uint64_t) pg_int (r, i, 0);
        cr_assert (id < t->orders_cap && t->orders[id].resting, "order %" PRIu64 " rests", id);
        cr_assert_eq (pg_int (r, i, 1), t->orders[id].price);
        cr_assert_eq (pg_int (r, i, 2), t->orders[id].remaining);
    }
    pg_result_free (&r);
}

//  Number of keys matching pattern, by SCAN.
static size_t s_count_keys (redisContext *c, const char *pattern)
{
    size_t n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = s_redis_cmd (c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        snprintf (cursor, sizeof cursor, "%s", r->element[0]->str);
        n += r->element[1]->elements;
        freeReplyObject (r);
    } while (strcmp (cursor, "0") != 0);
    return n;
}

static void s_compare_redis (const s_truth_t *t)
{
    redisContext *c = redistest_connect (&s_redis);
    cr_assert_not_null (c);
    redisReply *r = s_redis_cmd (c, "GET mce:persister:seq");
    cr_assert_eq (strtoull (r->str, NULL, 10), t->last_seq);
    freeReplyObject (r);

    //  Every book: exactly the resting orders of its epoch and side, scored by their price.
    size_t members = 0, books = 0;
    for (size_t id = 0; id < t->orders_cap; id++) {
        const s_order_t *o = &t->orders[id];
        if (!o->resting)
            continue;
        const char *side = o->side == PROTO_SIDE_BUY ? "bids" : "asks";
        //  (hiredis's format knows %llu, not %zu)
        unsigned long long oid = id;
        r = s_redis_cmd (c, "ZSCORE mce:book:" MKT ":%lld:%s %llu", (long long) o->epoch, side,
                         oid);
        cr_assert_eq (r->type, REDIS_REPLY_STRING, "order %zu is not in its book", id);
        cr_assert_eq (strtoll (r->str, NULL, 10), o->price, "order %zu's score", id);
        freeReplyObject (r);
        //  and its hash, whole, with its TTL
        r = s_redis_cmd (c,
                         "HMGET mce:order:%llu market epoch side price qty filled remaining user "
                         "status",
                         oid);
        char want[9][80];
        snprintf (want[0], sizeof want[0], MKT);
        snprintf (want[1], sizeof want[1], "%lld", (long long) o->epoch);
        snprintf (want[2], sizeof want[2], "%s", o->side == PROTO_SIDE_BUY ? "buy" : "sell");
        snprintf (want[3], sizeof want[3], "%lld", (long long) o->price);
        snprintf (want[4], sizeof want[4], "%lld", (long long) o->qty);
        snprintf (want[5], sizeof want[5], "%lld", (long long) o->filled);
        snprintf (want[6], sizeof want[6], "%lld", (long long) o->remaining);
        snprintf (want[7], sizeof want[7], "%s", o->user);
        snprintf (want[8], sizeof want[8], "%s", o->filled ? "partially_filled" : "open");
        for (int f = 0; f < 9; f++) {
            cr_assert_eq (r->element[f]->type, REDIS_REPLY_STRING, "order %zu field %d", id, f);
            cr_assert_str_eq (r->element[f]->str, want[f], "order %zu field %d", id, f);
        }
        freeReplyObject (r);
        r = s_redis_cmd (c, "TTL mce:order:%llu", oid);
        cr_assert (r->integer > S_TTL_S - 600 && r->integer <= S_TTL_S, "order %zu TTL %lld", id,
                   r->integer);
        freeReplyObject (r);
        members++;
    }
    cr_assert_eq (members, t->resting);
    //  ... and nothing else: the books hold no more members, no stale order hash is left
    for (size_t i = 0; i < t->nlevels; i++) {
        if (!t->levels[i].qty)
            continue;
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= t->levels[k].qty && t->levels[k].epoch == t->levels[i].epoch &&
                    t->levels[k].side == t->levels[i].side;
        if (seen)
            continue;
        books++;
    }
    size_t in_books = 0;
    for (size_t i = 0; i < t->nlevels; i++) {
        //  each book once: the first level of each (epoch, side)
        bool first = true;
        for (size_t k = 0; k < i; k++)
            first &= !(t->levels[k].epoch == t->levels[i].epoch &&
                       t->levels[k].side == t->levels[i].side);
        if (!first)
            continue;
        r = s_redis_cmd (c, "ZCARD mce:book:" MKT ":%lld:%s", (long long) t->levels[i].epoch,
                         t->levels[i].side == PROTO_SIDE_BUY ? "bids" : "asks");
        in_books += (size_t) r->integer;
        freeReplyObject (r);
    }
    cr_assert_eq (in_books, t->resting, "the books hold the resting orders and nothing more");
    cr_assert_eq (s_count_keys (c, "mce:book:*"), books, "one key per non-empty book");
    cr_assert_eq (s_count_keys (c, "mce:order:*"), t->resting, "a hash per resting order only");

    //  The matcher's own view of its books: the total and count at every price level
    for (size_t i = 0; i < t->nlevels; i++) {
        const s_level_t *l = &t->levels[i];
        int64_t qty = 0;
        uint32_t count = 0;
        for (size_t id = 0; id < t->orders_cap; id++) {
            const s_order_t *o = &t->orders[id];
            if (o->resting && o->epoch == l->epoch && o->side == l->side && o->price == l->price) {
                qty += o->remaining;
                count++;
            }
        }
        cr_assert_eq (qty, l->qty, "level %lld of side %d: Redis %lld, the matcher %lld",
                      (long long) l->price, l->side, (long long) qty, (long long) l->qty);
        cr_assert_eq (count, l->count, "orders at level %lld", (long long) l->price);
    }

    //  The market's totals and its newest trades, newest first
    cr_assert_gt (t->ntrades, S_TRADES_KEPT, "the load made more trades than the list keeps");
    const s_trade_t *last = &t->trades[t->ntrades - 1];
    r = s_redis_cmd (c, "HMGET mce:stats:" MKT " trades volume value last_price last_trade_id");
    cr_assert_eq (strtoull (r->element[0]->str, NULL, 10), t->ntrades);
    cr_assert_eq (strtoll (r->element[1]->str, NULL, 10), t->volume);
    cr_assert_eq (strtoll (r->element[2]->str, NULL, 10), t->value);
    cr_assert_eq (strtoll (r->element[3]->str, NULL, 10), last->px);
    cr_assert_eq (strtoull (r->element[4]->str, NULL, 10), last->tid);
    freeReplyObject (r);
    r = s_redis_cmd (c, "LRANGE mce:trades:" MKT " 0 -1");
    cr_assert_eq (r->elements, S_TRADES_KEPT);
    for (size_t i = 0; i < r->elements; i++) {
        const s_trade_t *want = &t->trades[t->ntrades - 1 - i];
        json_error_t err;
        json_t *j = json_loads (r->element[i]->str, 0, &err);
        cr_assert_not_null (j, "%s: %s", r->element[i]->str, err.text);
        cr_assert_eq ((uint64_t) json_integer_value (json_object_get (j, "tid")), want->tid,
                      "trade %zu of the list", i);
        cr_assert_eq ((uint64_t) json_integer_value (json_object_get (j, "seq")), want->seq);
        cr_assert_eq (json_integer_value (json_object_get (j, "px")), want->px);
        cr_assert_eq (json_integer_value (json_object_get (j, "qty")), want->qty);
        cr_assert_eq (json_integer_value (json_object_get (j, "val")), want->val);
        cr_assert_eq ((uint64_t) json_integer_value (json_object_get (j, "boid")), want->boid);
        cr_assert_eq ((uint64_t) json_integer_value (json_object_get (j, "soid")), want->soid);
        cr_assert_eq (json_integer_value (json_object_get (j, "ep")), want->epoch);
        cr_assert_str_eq (json_string_value (json_object_get (j, "aggr")),
                          proto_side_name (want->aggr));
        char at[40];
        cr_assert_gt (clock_format_rfc3339 (want->ts, at, sizeof at), 0);
        cr_assert_str_eq (json_string_value (json_object_get (j, "at")), at, "trade %zu", i);
        json_decref (j);
    }
    freeReplyObject (r);
    redisFree (c);
}

//  Waits until both stores hold the whole journal, then compares both with it.
static void s_compare (pg_t *pg, int persister)
{
    s_truth_t t = s_journal_truth ();
    s_wait_caught_up (pg, persister, t.last_seq, true);
    s_compare_postgres (pg, &t);
    s_compare_redis (&t);
    fprintf (stderr,
             "persister_redis: seq %" PRIu64 ": %lld orders, %zu trades, %zu resting, %zu "
             "levels: Postgres and Redis agree with the journal\n",
             t.last_seq, (long long) t.accepted, t.ntrades, t.resting, t.nlevels);
    s_truth_free (&t);
}

//  --------------------------------------------------------------------------------------------
//  Setup: Postgres, Redis, a matcher and a persister; the load's clients; a look at Postgres

static int s_setup (s_load_t *load, pg_t **pg)
{
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    cr_assert_eq (redistest_start (&s_redis), 0);
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"" MKT
              "\"; tick = \"0.001\"; epoch_seconds = 2592000; escrow = false; } );\n"
              "postgres = { url = \"%s\"; };\nredis = { url = \"%s\"; };\n",
              s_pg.conninfo, s_redis.url);
    harness_init (&s_h, config);
    harness_start (&s_h, "mce-matcher");
    char port[16];
    snprintf (port, sizeof port, "%d", s_h.port_ws); //  free, and unused here
    setenv ("MCE_PERSISTER_METRICS_PORT", port, 1);
    setenv ("MCE_LOG_LEVEL", "debug", 1); //  the persister says what it applied, where
    int persister = harness_start (&s_h, "mce-persister");
    cr_assert (harness_wait_log (&s_h, persister, "following stream m", HARNESS_DEADLINE_MS));
    cr_assert (harness_wait_log (&s_h, persister, "redis: ready", HARNESS_DEADLINE_MS));
    memset (load, 0, sizeof *load);
    load->rid = 1;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_h.port_commands);
    for (int c = 0; c < S_CLIENTS; c++) {
        load->clients[c] = s_clients[c] = harness_dealer (&s_h, "matcher", endpoint);
        cr_assert_not_null (load->clients[c]);
        zsock_set_rcvtimeo (load->clients[c], HARNESS_DEADLINE_MS);
    }
    char err[256];
    *pg = pg_connect (s_pg.conninfo, 5000, err, sizeof err);
    cr_assert_not_null (*pg, "%s", err);
    return persister;
}

static void s_teardown (s_load_t *load, pg_t **pg)
{
    fprintf (stderr, "persister_redis: %" PRIu64 " commands acknowledged, %" PRIu64 " refused\n",
             load->acks, load->rejects);
    for (int c = 0; c < S_CLIENTS; c++) {
        zsock_destroy (&s_clients[c]);
        load->clients[c] = NULL;
    }
    pg_destroy (pg);
    unsetenv ("MCE_PERSISTER_METRICS_PORT");
    unsetenv ("MCE_LOG_LEVEL");
}

//  The persister's metrics text contains want.
static void s_metrics_say (const char *want)
{
    char *metrics = NULL;
    cr_assert_eq (harness_http_port (s_h.port_ws, "GET", "/metrics", NULL, &metrics), 200);
    cr_assert_not_null (strstr (metrics, want), "%s wanted in:\n%s", want, metrics);
    free (metrics);
}

//  --------------------------------------------------------------------------------------------

Test (persister_redis, redis_shows_the_books_under_load_and_across_a_kill, .fini = s_fini,
      .timeout = 600)
{
    s_load_t load;
    pg_t *pg;
    int persister = s_setup (&load, &pg);
    s_rounds (&load, 40);
    s_wait_redis_moved (persister);
    //  kill -9 under load (while it works through these rounds), then a start with Redis
    //  possibly one batch short of Postgres
    s_rounds (&load, 40);
    cr_assert_eq (WTERMSIG (harness_stop (&s_h, persister, SIGKILL)), SIGKILL);
    s_rounds (&load, 20);
    //  and Redis lost everything meanwhile: the new persister finds it behind and rewrites it
    redisContext *c = redistest_connect (&s_redis);
    cr_assert_not_null (c);
    freeReplyObject (s_redis_cmd (c, "FLUSHALL"));
    redisFree (c);
    persister = harness_start (&s_h, "mce-persister");
    cr_assert (harness_wait_log_count (&s_h, persister, "redis: ready", 2, HARNESS_DEADLINE_MS));
    cr_assert (harness_wait_log (&s_h, persister, "ready; book rewritten", HARNESS_DEADLINE_MS));
    s_compare (pg, persister); //  all of it from what the new persister loaded from Postgres
    s_rounds (&load, 100);
    s_compare (pg, persister);
    s_metrics_say ("mce_persister_redis_up 1\n");
    char want[64];
    snprintf (want, sizeof want, "mce_persister_redis_applied_seq %" PRIu64 "\n", s_redis_seq ());
    s_metrics_say (want);
    s_teardown (&load, &pg);
}

Test (persister_redis, a_redis_outage_of_30_s_under_load_is_caught_up, .fini = s_fini,
      .timeout = 600)
{
    s_load_t load;
    pg_t *pg;
    int persister = s_setup (&load, &pg);
    s_rounds (&load, 60);
    s_compare (pg, persister);
    cr_assert_eq (redistest_stop_server (&s_redis), 0);
    int64_t down = s_now_ms ();
    s_round (&load);
    cr_assert (
        harness_wait_log (&s_h, persister, "Postgres goes on without it", HARNESS_DEADLINE_MS),
        "the persister noticed the outage");
    s_rounds_for (&load, (int) (S_OUTAGE_MS - (s_now_ms () - down)));
    //  Postgres did not wait for Redis
    s_truth_t t = s_journal_truth ();
    s_wait_caught_up (pg, persister, t.last_seq, false);
    s_truth_free (&t);
    s_metrics_say ("mce_persister_redis_up 0\n");
    cr_assert_eq (redistest_restart (&s_redis), 0); //  empty: it had no persistence
    s_rounds (&load, 5);
    cr_assert (harness_wait_log (&s_h, persister, "redis: back after", S_CATCH_UP_MS));
    s_compare (pg, persister);
    //  and incremental again after the rewrite
    s_rounds (&load, 20);
    s_compare (pg, persister);
    s_metrics_say ("mce_persister_redis_up 1\n");
    s_teardown (&load, &pg);
}

Test (persister_redis, a_postgres_outage_of_30_s_under_load_is_caught_up, .fini = s_fini,
      .timeout = 600)
{
    s_load_t load;
    pg_t *pg;
    int persister = s_setup (&load, &pg);
    s_rounds (&load, 60);
    s_compare (pg, persister);
    cr_assert_eq (pgtest_stop_server (&s_pg), 0);
    int64_t down = s_now_ms ();
    s_round (&load);
    cr_assert (harness_wait_log (&s_h, persister, "not applied", HARNESS_DEADLINE_MS),
               "the persister noticed the outage");
    s_rounds_for (&load, (int) (S_OUTAGE_MS - (s_now_ms () - down)));
    cr_assert_eq (pgtest_restart (&s_pg), 0);
    cr_assert (harness_wait_log (&s_h, persister, "Postgres is back", S_CATCH_UP_MS));
    s_compare (pg, persister);
    s_metrics_say ("mce_persister_postgres_up 1\n");
    s_metrics_say ("mce_persister_redis_up 1\n");
    s_teardown (&load, &pg);
}
