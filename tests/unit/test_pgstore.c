/*  test_pgstore — the persister's Postgres store against a real PostgreSQL.

    As in test_pg, the runner starts one server for the binary in ReportHook (PRE_ALL) and
    each test works in a database of its own. The tests build matcher events by hand, apply
    them, and read the tables back with SQL: the rows a batch leaves, the offset, the refusal
    of a batch applied twice or out of place, and the rollback of a batch that fails halfway.
*/
#include "clock.h"
#include "pg.h"
#include "pgstore.h"
#include "pgtest.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The runner's server. Only the runner process touches it (in the two hooks).
static pgtest_t s_server;

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) != 0 || pgtest_export (&s_server) != 0)
        fprintf (stderr, "test_pgstore: no PostgreSQL: every test will fail\n");
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
    (void) stats;
    pgtest_stop (&s_server);
}

#define MKT "campus-1"
#define EP  1234567
//  2025-11-21T21:40:00.123456789Z: the nanoseconds below a microsecond are dropped
#define T0 1763761200123456789LL

//  A fresh database of the shared server: its conninfo in conninfo.
static void s_fresh (const char *name, char *conninfo, size_t size)
{
    pgtest_t server;
    cr_assert_eq (pgtest_attach (&server), 0, "no shared PostgreSQL: see the runner's output");
    cr_assert_eq (pgtest_create_db (&server, name, conninfo, size), 0);
}

static pgstore_t *s_open (const char *conninfo)
{
    char err[512];
    pgstore_t *store = pgstore_new (conninfo, err, sizeof err);
    cr_assert_not_null (store, "pgstore_new: %s", err);
    return store;
}

//  A plain connection to look at the tables.
static pg_t *s_look (const char *conninfo)
{
    char err[PG_ERROR_MAX];
    pg_t *pg = pg_connect (conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "connect: %s", err);
    return pg;
}

static int64_t s_int (pg_t *pg, const char *sql)
{
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    cr_assert_eq (pg_rows (r), 1, "%s: %d rows", sql, pg_rows (r));
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

//  The query's rows as "a|b|c;a|b|c" (NULL as "-"), for comparing whole rows at once.
static void s_rows (pg_t *pg, const char *sql, char *out, size_t size)
{
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < pg_rows (r); i++)
        for (int j = 0; j < pg_cols (r); j++) {
            const char *v = pg_value (r, i, j);
            int n = snprintf (out + len, size - len, "%s%s", v ? v : "-",
                              j + 1 < pg_cols (r) ? "|" : (i + 1 < pg_rows (r) ? ";" : ""));
            cr_assert (n >= 0 && (size_t) n < size - len, "%s: answer too long", sql);
            len += (size_t) n;
        }
    pg_result_free (&r);
}

#define s_assert_rows(pg, sql, expected)                                                           \
    do {                                                                                           \
        char got_[8192];                                                                           \
        s_rows (pg, sql, got_, sizeof got_);                                                       \
        cr_assert_str_eq (got_, expected, "%s\n got: %s\nwant: %s", sql, got_, expected);          \
    } while (0)

//  Every row of every table, for "nothing changed" checks.
static void s_everything (pg_t *pg, char *out, size_t size)
{
    s_rows (pg,
            "SELECT (SELECT count(*) FROM markets), (SELECT count(*) FROM epochs), "
            "(SELECT count(*) FROM orders), (SELECT count(*) FROM order_events), "
            "(SELECT count(*) FROM trades), (SELECT count(*) FROM audit_log), "
            "(SELECT string_agg (stream || '=' || last_seq, ',') FROM consumer_offsets), "
            "(SELECT md5 (string_agg (o::text, ',' ORDER BY order_id)) FROM orders o), "
            "(SELECT md5 (string_agg (e::text, ',' ORDER BY market, epoch)) FROM epochs e)",
            out, size);
}

#define S_MIGRATIONS 7 //  files in persister/migrations

//  --------------------------------------------------------------------------------------------
//  Events, as the matcher would publish them

static proto_msg_t s_accepted (uint64_t seq, uint64_t oid, const char *user, proto_side_t side,
                               int64_t qty, int64_t price)
{
    proto_msg_t m = {.kind = PROTO_order_accepted};
    proto_order_accepted_t *e = &m.order_accepted;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->order_id = oid;
    snprintf (e->user, sizeof e->user, "%s", user);
    snprintf (e->client_order_id, sizeof e->client_order_id, "c-%" PRIu64, oid);
    e->side = side;
    e->type = PROTO_ORDER_TYPE_LIMIT;
    e->tif = PROTO_TIF_GTC;
    e->qty = qty;
    e->price = price;
    snprintf (e->source, sizeof e->source, "solar");
    return m;
}

static proto_msg_t s_trade (uint64_t seq, uint64_t tid, uint64_t boid, uint64_t soid,
                            const char *buyer, const char *seller, int64_t qty, int64_t price)
{
    proto_msg_t m = {.kind = PROTO_trade};
    proto_trade_t *e = &m.trade;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->trade_id = tid;
    e->buy_order_id = boid;
    e->sell_order_id = soid;
    snprintf (e->buyer, sizeof e->buyer, "%s", buyer);
    snprintf (e->seller, sizeof e->seller, "%s", seller);
    e->qty = qty;
    e->price = price;
    e->value = qty * price / 1000; //  µ: Wh × µ/kWh / 1000
    e->aggressor = PROTO_SIDE_BUY;
    return m;
}

static proto_msg_t s_cancelled (uint64_t seq, uint64_t oid, const char *user, int64_t left)
{
    proto_msg_t m = {.kind = PROTO_order_cancelled};
    proto_order_cancelled_t *e = &m.order_cancelled;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->order_id = oid;
    snprintf (e->user, sizeof e->user, "%s", user);
    e->remaining = left;
    e->reason = PROTO_CANCEL_REASON_USER;
    return m;
}

static proto_msg_t s_expired (uint64_t seq, uint64_t oid, const char *user, int64_t left)
{
    proto_msg_t m = {.kind = PROTO_order_expired};
    proto_order_expired_t *e = &m.order_expired;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->order_id = oid;
    snprintf (e->user, sizeof e->user, "%s", user);
    e->remaining = left;
    e->reason = PROTO_EXPIRE_REASON_EPOCH_CLOSE;
    return m;
}

static proto_msg_t s_amended (uint64_t seq, uint64_t oid, const char *user, int64_t qty,
                              int64_t price)
{
    proto_msg_t m = {.kind = PROTO_order_amended};
    proto_order_amended_t *e = &m.order_amended;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->order_id = oid;
    snprintf (e->user, sizeof e->user, "%s", user);
    e->qty = qty;
    e->price = price;
    return m;
}

static proto_msg_t s_epoch (uint64_t seq, proto_epoch_phase_t state, int64_t cpx, int64_t vol,
                            uint64_t trades)
{
    proto_msg_t m = {.kind = PROTO_epoch_state};
    proto_epoch_state_t *e = &m.epoch_state;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->state = state;
    e->start = (int64_t) EP * 900 * MCE_NS_PER_SEC;
    e->end = e->start + 900 * MCE_NS_PER_SEC;
    e->clearing_price = cpx;
    e->volume = vol;
    e->trades = trades;
    return m;
}

static proto_msg_t s_control (uint64_t seq, const char *user, proto_control_action_t action)
{
    proto_msg_t m = {.kind = PROTO_market_control};
    proto_market_control_t *e = &m.market_control;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    e->rid = 99;
    snprintf (e->user, sizeof e->user, "%s", user);
    e->role = PROTO_ROLE_ADMIN;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->action = action;
    return m;
}

static proto_msg_t s_market_state (uint64_t seq, proto_market_status_t state)
{
    proto_msg_t m = {.kind = PROTO_market_state};
    proto_market_state_t *e = &m.market_state;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->state = state;
    e->action = PROTO_CONTROL_ACTION_PAUSE_TRADING;
    snprintf (e->by, sizeof e->by, "root");
    return m;
}

static proto_msg_t s_book_level (uint64_t seq)
{
    proto_msg_t m = {.kind = PROTO_book_level};
    proto_book_level_t *e = &m.book_level;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->side = PROTO_SIDE_BUY;
    e->price = 150000;
    e->qty = 400;
    e->count = 1;
    return m;
}

static proto_msg_t s_clock (uint64_t seq)
{
    return (proto_msg_t){.kind = PROTO_clock, .clock = {.seq = seq, .ts = T0}};
}

static proto_msg_t s_rejected (uint64_t seq)
{
    proto_msg_t m = {.kind = PROTO_order_rejected};
    proto_order_rejected_t *e = &m.order_rejected;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    snprintf (e->user, sizeof e->user, "mallory");
    e->reason = PROTO_REJECT_REASON_OFF_TICK;
    return m;
}

//  A day in one market: three orders, two trades (one against an amended order), a cancel,
//  an expiry, the epoch from active to cleared, an admin's pause, and events that store
//  nothing. Fills events[] (room for 16) and returns their count; seqs 1...15.
static size_t s_day (proto_msg_t *ev)
{
    size_t n = 0;
    ev[n++] = s_epoch (1, PROTO_EPOCH_PHASE_ACTIVE, 0, 0, 0);
    ev[n++] = s_accepted (2, 11, "alice", PROTO_SIDE_BUY, 1000, 150000);
    ev[n++] = s_accepted (3, 12, "bob", PROTO_SIDE_SELL, 600, 140000);
    ev[n++] = s_trade (4, 501, 11, 12, "alice", "bob", 600, 150000); //  bob's order filled
    ev[n++] = s_accepted (5, 13, "carol", PROTO_SIDE_SELL, 500, 160000);
    ev[n++] = s_amended (6, 13, "carol", 300, 155000); //  carol: 300 at 155000
    ev[n++] = s_trade (7, 502, 11, 13, "alice", "carol", 200, 155000);
    ev[n++] = s_cancelled (8, 11, "alice", 200); //  alice: 800 filled, 200 cancelled
    ev[n++] = s_book_level (9);
    ev[n++] = s_clock (10);
    ev[n++] = s_rejected (11);
    ev[n++] = s_control (12, "root", PROTO_CONTROL_ACTION_PAUSE_TRADING);
    ev[n++] = s_market_state (13, PROTO_MARKET_STATUS_PAUSED);
    ev[n++] = s_epoch (14, PROTO_EPOCH_PHASE_CLEARED, 150000, 800, 2);
    ev[n++] = s_expired (15, 13, "carol", 100); //  carol: 200 filled, 100 expired
    return n;
}

//  The tables after s_day, however it was cut into batches.
static void s_assert_day (pg_t *pg)
{
    s_assert_rows (pg,
                   "SELECT order_id, market, epoch, username, client_order_id, side, order_type, "
                   "tif, post_only, qty, price, filled, remaining, status, source, expires_at, "
                   "created_at, updated_at, seq FROM orders ORDER BY order_id",
                   "11|campus-1|1234567|alice|c-11|buy|limit|gtc|f|1000|150000|800|200|cancelled|"
                   "solar|-|2025-11-21 21:40:00.123456+00|2025-11-21 21:40:00.123456+00|8;"
                   "12|campus-1|1234567|bob|c-12|sell|limit|gtc|f|600|140000|600|0|filled|"
                   "solar|-|2025-11-21 21:40:00.123456+00|2025-11-21 21:40:00.123456+00|4;"
                   "13|campus-1|1234567|carol|c-13|sell|limit|gtc|f|300|155000|200|100|expired|"
                   "solar|-|2025-11-21 21:40:00.123456+00|2025-11-21 21:40:00.123456+00|15");
    s_assert_rows (pg,
                   "SELECT trade_id, market, epoch, buy_order_id, sell_order_id, buyer, seller, "
                   "qty, price, value, aggressor, seq, at FROM trades ORDER BY trade_id",
                   "501|campus-1|1234567|11|12|alice|bob|600|150000|90000|buy|4|"
                   "2025-11-21 21:40:00.123456+00;"
                   "502|campus-1|1234567|11|13|alice|carol|200|155000|31000|buy|7|"
                   "2025-11-21 21:40:00.123456+00");
    s_assert_rows (pg,
                   "SELECT seq, order_id, kind, qty, price, trade_id, reason FROM order_events "
                   "ORDER BY seq, order_id",
                   "2|11|accepted|1000|150000|-|-;3|12|accepted|600|140000|-|-;"
                   "4|11|trade|600|150000|501|-;4|12|trade|600|150000|501|-;"
                   "5|13|accepted|500|160000|-|-;6|13|amended|300|155000|-|lost_priority;"
                   "7|11|trade|200|155000|502|-;7|13|trade|200|155000|502|-;"
                   "8|11|cancelled|200|-|-|user;15|13|expired|100|-|-|epoch_close");
    s_assert_rows (pg,
                   "SELECT market, epoch, state, start_at, end_at, clearing_price, volume, trades, "
                   "seq FROM epochs",
                   "campus-1|1234567|cleared|2005-03-18 01:45:00+00|2005-03-18 02:00:00+00|150000|"
                   "800|2|14");
    s_assert_rows (pg, "SELECT id, status, seq FROM markets", "campus-1|paused|13");
    s_assert_rows (pg, "SELECT seq, username, action, market, at FROM audit_log",
                   "12|root|pause_trading|campus-1|2025-11-21 21:40:00.123456+00");
    s_assert_rows (pg, "SELECT stream, last_seq FROM consumer_offsets", "m|15");
}

//  --------------------------------------------------------------------------------------------

Test (pgstore, migrates_once_and_a_second_open_changes_nothing)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_migrate", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    cr_assert (pgstore_ok (store));
    cr_assert_eq (pgstore_offset (store, "m"), 0);
    proto_msg_t ev[16];
    size_t n = s_day (ev);
    cr_assert_eq (pgstore_apply (store, "m", ev, n), 0, "%s", pgstore_error (store));
    pgstore_destroy (&store);
    cr_assert_null (store);
    pgstore_destroy (&store); //  idempotent

    pg_t *pg = s_look (conninfo);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM schema_migrations WHERE component = "
                             "'persister'"),
                  S_MIGRATIONS);
    //  every order and trade of the day has its epoch's delivery period beside it
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM trades_delivery WHERE delivery_start IS NOT "
                             "NULL AND delivery_end > delivery_start"),
                  2);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM orders_delivery WHERE delivery_start IS NOT "
                             "NULL"),
                  3);
    char before[4096], after[4096];
    s_everything (pg, before, sizeof before);

    store = s_open (conninfo); //  nothing left to migrate
    cr_assert_eq (pgstore_offset (store, "m"), 15);
    pgstore_destroy (&store);
    s_everything (pg, after, sizeof after);
    cr_assert_str_eq (after, before);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM schema_migrations WHERE component = "
                             "'persister'"),
                  S_MIGRATIONS);

    //  a binary older than the database refuses to start
    pg_result_t *r = pg_exec (pg,
                              "INSERT INTO schema_migrations (component, version, name) "
                              "VALUES ('persister', 999, 'future')",
                              0, NULL);
    cr_assert_not_null (r, "%s", pg_error (pg));
    pg_result_free (&r);
    char err[512] = "";
    cr_assert_null (pgstore_new (conninfo, err, sizeof err));
    cr_assert (strstr (err, "version 999"), "%s", err);
    pg_destroy (&pg);
}

Test (pgstore, a_batch_writes_the_rows_and_moves_the_offset)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_batch", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    proto_msg_t ev[16];
    size_t n = s_day (ev);
    cr_assert_eq (pgstore_apply (store, "m", ev, n), 0, "%s", pgstore_error (store));
    cr_assert_eq (pgstore_offset (store, "m"), 15);
    cr_assert_eq (pgstore_offset (store, "s"), 0);
    pg_t *pg = s_look (conninfo);
    s_assert_day (pg);
    //  an empty batch changes nothing
    cr_assert_eq (pgstore_apply (store, "m", NULL, 0), 0);
    cr_assert_eq (pgstore_offset (store, "m"), 15);
    pg_destroy (&pg);
    pgstore_destroy (&store);
}

Test (pgstore, one_event_per_batch_ends_the_same_as_one_batch)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_single", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    pg_t *pg = s_look (conninfo);
    proto_msg_t ev[16];
    size_t n = s_day (ev);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq (pgstore_apply (store, "m", &ev[i], 1), 0, "seq %zu: %s", i + 1,
                      pgstore_error (store));
        if (i == 0) //  active: nothing cleared yet
            s_assert_rows (pg, "SELECT state, clearing_price, volume, trades FROM epochs",
                           "active|-|-|-");
        if (i == 3) //  after the first trade
            s_assert_rows (pg,
                           "SELECT order_id, filled, remaining, status FROM orders "
                           "ORDER BY order_id",
                           "11|600|400|partially_filled;12|600|0|filled");
    }
    s_assert_day (pg);
    pg_destroy (&pg);
    pgstore_destroy (&store);
}

Test (pgstore, a_batch_applied_twice_or_past_a_gap_is_refused)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_twice", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    pg_t *pg = s_look (conninfo);
    proto_msg_t ev[16];
    size_t n = s_day (ev);
    cr_assert_eq (pgstore_apply (store, "m", ev, 8), 0, "%s", pgstore_error (store));
    char before[4096], after[4096];
    s_everything (pg, before, sizeof before);

    //  the same batch again, and one overlapping it
    cr_assert_eq (pgstore_apply (store, "m", ev, 8), -1);
    cr_assert (strstr (pgstore_error (store), "already applied"), "%s", pgstore_error (store));
    cr_assert_eq (pgstore_apply (store, "m", ev + 5, 5), -1);
    //  a batch past a gap
    cr_assert_eq (pgstore_apply (store, "m", ev + 9, n - 9), -1);
    cr_assert (strstr (pgstore_error (store), "gap"), "%s", pgstore_error (store));
    //  a batch whose seqs are not consecutive
    proto_msg_t holey[2] = {ev[8], ev[10]};
    cr_assert_eq (pgstore_apply (store, "m", holey, 2), -1);
    s_everything (pg, after, sizeof after);
    cr_assert_str_eq (after, before);
    cr_assert_eq (pgstore_offset (store, "m"), 8);

    //  the rest, in its place, completes the day
    cr_assert_eq (pgstore_apply (store, "m", ev + 8, n - 8), 0, "%s", pgstore_error (store));
    s_assert_day (pg);
    pg_destroy (&pg);
    pgstore_destroy (&store);
}

Test (pgstore, a_batch_that_fails_halfway_leaves_nothing)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_fail", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    pg_t *pg = s_look (conninfo);
    proto_msg_t ev[16];
    size_t n = s_day (ev);

    //  a trade of 0 Wh breaks a CHECK after the markets, epochs and orders are inserted
    proto_msg_t bad[16];
    memcpy (bad, ev, sizeof bad);
    bad[3].trade.qty = 0;
    cr_assert_eq (pgstore_apply (store, "m", bad, n), -1);
    cr_assert_str_eq (pgstore_sqlstate (store), PG_CHECK_VIOLATION, "%s", pgstore_error (store));
    cr_assert (strstr (pgstore_error (store), "insert trades"), "%s", pgstore_error (store));
    char empty[4096], now[4096];
    s_rows (pg,
            "SELECT (SELECT count(*) FROM markets) + (SELECT count(*) FROM epochs) + "
            "(SELECT count(*) FROM orders) + (SELECT count(*) FROM order_events) + "
            "(SELECT count(*) FROM trades) + (SELECT count(*) FROM audit_log) + "
            "(SELECT count(*) FROM consumer_offsets)",
            empty, sizeof empty);
    cr_assert_str_eq (empty, "0");
    cr_assert_eq (pgstore_offset (store, "m"), 0);

    //  the last statement failing (the audit log is gone) undoes all the ones before it
    pg_result_t *r = pg_exec (pg, "ALTER TABLE audit_log RENAME TO audit_log_away", 0, NULL);
    cr_assert_not_null (r, "%s", pg_error (pg));
    pg_result_free (&r);
    cr_assert_eq (pgstore_apply (store, "m", ev, n), -1);
    cr_assert (strstr (pgstore_error (store), "audit_log"), "%s", pgstore_error (store));
    s_rows (pg,
            "SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM trades) + "
            "(SELECT count(*) FROM consumer_offsets)",
            now, sizeof now);
    cr_assert_str_eq (now, "0");
    cr_assert (pgstore_ok (store));

    //  once the table is back the same batch goes through
    r = pg_exec (pg, "ALTER TABLE audit_log_away RENAME TO audit_log", 0, NULL);
    cr_assert_not_null (r, "%s", pg_error (pg));
    pg_result_free (&r);
    cr_assert_eq (pgstore_apply (store, "m", ev, n), 0, "%s", pgstore_error (store));
    s_assert_day (pg);
    pg_destroy (&pg);
    pgstore_destroy (&store);
}

Test (pgstore, ten_thousand_events_in_one_batch)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_bulk", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    pg_t *pg = s_look (conninfo);

    //  2 500 rounds of: a buy, a sell, a trade (in full on even rounds, half on odd ones) and
    //  a book level: 5 000 orders (90 000 parameters: two INSERTs) and 2 500 trades
    enum { ROUNDS = 2500, COUNT = ROUNDS * 4 };
    proto_msg_t *ev = calloc (COUNT, sizeof *ev);
    cr_assert_not_null (ev);
    uint64_t seq = 1;
    int64_t traded = 0;
    for (uint64_t i = 0; i < ROUNDS; i++) {
        uint64_t buy = 1000 + 2 * i, sell = buy + 1;
        int64_t qty = 100 + (int64_t) (i % 50) * 10;
        int64_t fill = i % 2 ? qty / 2 : qty;
        ev[seq - 1] = s_accepted (seq, buy, "alice", PROTO_SIDE_BUY, qty, 150000);
        seq++;
        ev[seq - 1] = s_accepted (seq, sell, "bob", PROTO_SIDE_SELL, qty, 140000);
        seq++;
        ev[seq - 1] = s_trade (seq, 1 + i, buy, sell, "alice", "bob", fill, 150000);
        seq++;
        ev[seq - 1] = s_book_level (seq);
        seq++;
        traded += fill;
    }
    int64_t t0 = clock_mono_ns ();
    cr_assert_eq (pgstore_apply (store, "m", ev, COUNT), 0, "%s", pgstore_error (store));
    int64_t ns = clock_mono_ns () - t0;
    fprintf (stderr, "test_pgstore: %d events in one batch in %.1f ms: %.0f events/s\n", COUNT,
             (double) ns / 1e6, COUNT / ((double) ns / 1e9));

    cr_assert_eq (pgstore_offset (store, "m"), COUNT);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM orders"), 2 * ROUNDS);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM trades"), ROUNDS);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM order_events"), 4 * ROUNDS);
    cr_assert_eq (s_int (pg, "SELECT sum(qty) FROM trades"), traded);
    cr_assert_eq (s_int (pg, "SELECT sum(filled) FROM orders"), 2 * traded);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM orders WHERE status = 'filled'"), ROUNDS);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM orders WHERE status = 'partially_filled'"),
                  ROUNDS);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM orders WHERE filled + remaining <> qty"), 0);
    cr_assert_eq (s_int (pg, "SELECT sum(value) FROM trades"), traded * 150000 / 1000);
    free (ev);
    pg_destroy (&pg);
    pgstore_destroy (&store);
}

//  The replica loaded from the tables is the replica that followed the same events: the resting
//  GTC limit orders (an IOC order the tables still show open is not one), the market's totals
//  and its newest trades (times as exact as timestamptz keeps them), at the offset.
Test (pgstore, loads_the_replica_the_events_make)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_replica", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    proto_msg_t ev[20];
    size_t n = s_day (ev) - 2; //  before the epoch clears: carol's order still rests
    ev[n] = s_accepted (n + 1, 14, "dave", PROTO_SIDE_BUY, 100, 150000);
    ev[n].order_accepted.tif = PROTO_TIF_IOC; //  its cancel is in a later batch
    n++;
    ev[n] = s_accepted (n + 1, 15, "erin", PROTO_SIDE_BUY, 700, 145000);
    n++;
    cr_assert_eq (pgstore_apply (store, "m", ev, n), 0, "%s", pgstore_error (store));

    replica_t *followed = replica_new (1);
    cr_assert_eq (replica_apply (followed, ev, n), 0);
    replica_t *loaded = replica_new (1);
    int64_t offset;
    cr_assert_eq (pgstore_load_replica (store, "m", loaded, &offset), 0, "%s",
                  pgstore_error (store));
    cr_assert_eq (offset, (int64_t) n);
    cr_assert_eq (replica_seq (loaded), n);
    cr_assert_eq (replica_order_count (loaded), 2, "carol's 13 and erin's 15");
    cr_assert_eq (replica_order_count (followed), 2);
    const uint64_t ids[] = {13, 15};
    for (size_t i = 0; i < 2; i++) {
        const replica_order_t *a = replica_order (loaded, ids[i]);
        const replica_order_t *b = replica_order (followed, ids[i]);
        cr_assert_not_null (a, "order %" PRIu64, ids[i]);
        cr_assert_not_null (b);
        cr_assert_eq (a->epoch, b->epoch);
        cr_assert_eq (a->price, b->price);
        cr_assert_eq (a->qty, b->qty);
        cr_assert_eq (a->filled, b->filled);
        cr_assert_eq (a->remaining, b->remaining);
        cr_assert_eq (a->side, b->side);
        cr_assert_eq (a->seq, b->seq);
        cr_assert_str_eq (a->user, b->user);
        cr_assert_str_eq (replica_market (loaded, a->market)->id, MKT);
    }
    cr_assert_eq (replica_order (loaded, 13)->remaining, 100);
    cr_assert_eq (replica_market_count (loaded), 1);
    const replica_market_t *a = replica_market (loaded, 0), *b = replica_market (followed, 0);
    cr_assert_eq (a->trades, 2);
    cr_assert_eq (a->trades, b->trades);
    cr_assert_eq (a->volume, b->volume);
    cr_assert_eq (a->value, b->value);
    cr_assert_eq (a->seq, b->seq);
    cr_assert_eq (a->ring_count, 1, "only the newest is kept");
    const replica_trade_t *ta = replica_trade (a, 0), *tb = replica_trade (b, 0);
    cr_assert_eq (ta->trade_id, 502);
    cr_assert_eq (ta->trade_id, tb->trade_id);
    cr_assert_eq (ta->seq, tb->seq);
    cr_assert_eq (ta->epoch, tb->epoch);
    cr_assert_eq (ta->buy_order_id, tb->buy_order_id);
    cr_assert_eq (ta->sell_order_id, tb->sell_order_id);
    cr_assert_eq (ta->qty, tb->qty);
    cr_assert_eq (ta->price, tb->price);
    cr_assert_eq (ta->value, tb->value);
    cr_assert_eq (ta->aggressor, tb->aggressor);
    cr_assert_eq (ta->ts, tb->ts / 1000 * 1000, "to the microsecond");
    replica_destroy (&loaded);
    replica_destroy (&followed);
    pgstore_destroy (&store);
}

//  --------------------------------------------------------------------------------------------
//  The settler's stream

static proto_msg_t s_settlement (uint64_t seq, uint64_t tid, proto_settle_state_t state,
                                 const char *sig, const char *err, bool creating)
{
    proto_msg_t m = {.kind = PROTO_settlement};
    proto_settlement_t *e = &m.settlement;
    e->seq = seq;
    e->ts = T0 + (int64_t) seq;
    snprintf (e->market, sizeof e->market, "%s", MKT);
    e->epoch = EP;
    e->trade_id = tid;
    e->settlement_id = 100 + tid;
    e->state = state;
    e->attempts = state == PROTO_SETTLE_STATE_PENDING ? 0 : 1;
    snprintf (e->signature, sizeof e->signature, "%s", sig);
    snprintf (e->error, sizeof e->error, "%s", err);
    if (creating) {
        e->value = 1500000;
        e->fee = 1500;
        snprintf (e->buyer, sizeof e->buyer, "alice");
        snprintf (e->seller, sizeof e->seller, "bob");
        e->qty = 10000;
        e->price = 150000;
    }
    return m;
}

Test (pgstore, the_settler_stream_fills_settlements_and_settles_epochs_in_either_order)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_settler", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    //  trade 1: created, sent, confirmed, across two batches; trade 2: created and failed
    proto_msg_t s1[] = {s_settlement (1, 1, PROTO_SETTLE_STATE_PENDING, "", "", true),
                        s_settlement (2, 1, PROTO_SETTLE_STATE_PROCESSING, "5igA", "", false),
                        s_settlement (3, 2, PROTO_SETTLE_STATE_PENDING, "", "", true)};
    cr_assert_eq (pgstore_apply (store, "s", s1, 3), 0, "%s", pgstore_error (store));
    //  the settler says the epoch is settled before the persister has the matcher's cleared
    proto_msg_t settled = s_epoch (6, PROTO_EPOCH_PHASE_SETTLED, 150000, 10000, 1);
    settled.epoch_state.mseq = 42;
    proto_msg_t s2[] = {
        s_settlement (4, 1, PROTO_SETTLE_STATE_CONFIRMED, "", "", false),
        s_settlement (5, 2, PROTO_SETTLE_STATE_FAILED, "", "InsufficientFundsForFee", false),
        settled};
    cr_assert_eq (pgstore_apply (store, "s", s2, 3), 0, "%s", pgstore_error (store));
    cr_assert_eq (pgstore_offset (store, "s"), 6);
    cr_assert_eq (pgstore_offset (store, "m"), 0, "the streams' offsets are apart");
    //  the matcher's cleared event, applied later, does not take the epoch back
    proto_msg_t cleared = s_epoch (1, PROTO_EPOCH_PHASE_CLEARED, 150000, 10000, 1);
    cr_assert_eq (pgstore_apply (store, "m", &cleared, 1), 0, "%s", pgstore_error (store));
    pg_t *pg = s_look (conninfo);
    s_assert_rows (
        pg,
        "SELECT trade_id, settlement_id, state, signature, reason, attempts, value, fee, "
        "buyer, seller, seq FROM settlements ORDER BY trade_id",
        "1|101|confirmed|5igA|-|1|1500000|1500|alice|bob|4;"
        "2|102|failed|-|InsufficientFundsForFee|1|1500000|1500|alice|bob|5");
    s_assert_rows (pg, "SELECT state, clearing_price, volume, trades FROM epochs",
                   "settled|150000|10000|1");
    //  a settler batch delivered twice is refused, and changes nothing
    cr_assert_eq (pgstore_apply (store, "s", s2, 3), -1);
    s_assert_rows (pg, "SELECT count(*) FROM settlements", "2");
    pg_destroy (&pg);
    pgstore_destroy (&store);
}

//  --------------------------------------------------------------------------------------------
//  Accounts: balances, deposits and withdrawals

//  2025-11-21T21:40:00Z: T1 + k seconds reads back as 21:40:0k
#define T1      1763761200000000000LL
#define S_AT(k) (T1 + (int64_t) (k) *MCE_NS_PER_SEC)

static proto_msg_t s_balance (uint64_t seq, const char *user, proto_asset_t asset, int64_t avail,
                              int64_t resv, int64_t davail, int64_t dresv,
                              proto_balance_cause_t cause, uint64_t ref, const char *market)
{
    proto_msg_t m = {.kind = PROTO_balance};
    proto_balance_t *e = &m.balance;
    e->seq = seq;
    e->ts = S_AT (seq);
    snprintf (e->user, sizeof e->user, "%s", user);
    e->asset = asset;
    e->available = avail;
    e->reserved = resv;
    e->d_available = davail;
    e->d_reserved = dresv;
    e->cause = cause;
    e->ref = ref;
    snprintf (e->market, sizeof e->market, "%s", market);
    return m;
}

//  Deposits of two users, an order of each reserving, and a trade between them: every cause
//  but release and refund, alice's payment three times and bob's energy twice in the batch.
//  Fills events[] (room for 10) and returns their count; seqs 1...9.
static size_t s_balance_day (proto_msg_t *ev)
{
    size_t n = 0;
    const proto_asset_t E = PROTO_ASSET_ENERGY, P = PROTO_ASSET_PAYMENT;
    ev[n++] = s_balance (1, "alice", P, 1000000, 0, 1000000, 0, PROTO_BALANCE_CAUSE_DEPOSIT, 1, "");
    ev[n++] = s_balance (2, "bob", E, 600, 0, 600, 0, PROTO_BALANCE_CAUSE_DEPOSIT, 2, "");
    ev[n++] = s_balance (3, "alice", P, 850000, 150000, -150000, 150000, PROTO_BALANCE_CAUSE_ORDER,
                         11, MKT);
    ev[n++] = s_balance (4, "bob", E, 0, 600, -600, 600, PROTO_BALANCE_CAUSE_ORDER, 12, MKT);
    ev[n++] = s_book_level (5);
    ev[n++] =
        s_balance (6, "alice", P, 910000, 0, 60000, -150000, PROTO_BALANCE_CAUSE_TRADE, 501, MKT);
    ev[n++] = s_balance (7, "alice", E, 600, 0, 600, 0, PROTO_BALANCE_CAUSE_TRADE, 501, MKT);
    ev[n++] = s_balance (8, "bob", E, 0, 0, 0, -600, PROTO_BALANCE_CAUSE_TRADE, 501, MKT);
    ev[n++] = s_balance (9, "bob", P, 90000, 0, 90000, 0, PROTO_BALANCE_CAUSE_TRADE, 501, MKT);
    return n;
}

static void s_assert_balance_day (pg_t *pg)
{
    s_assert_rows (pg,
                   "SELECT username, asset, available, reserved, updated_seq, updated_at "
                   "FROM balances ORDER BY username, asset",
                   "alice|energy|600|0|7|2025-11-21 21:40:07+00;"
                   "alice|payment|910000|0|6|2025-11-21 21:40:06+00;"
                   "bob|energy|0|0|8|2025-11-21 21:40:08+00;"
                   "bob|payment|90000|0|9|2025-11-21 21:40:09+00");
    s_assert_rows (pg,
                   "SELECT seq, username, asset, cause, ref, market, d_available, d_reserved, "
                   "available, reserved, ts FROM balance_movements ORDER BY seq",
                   "1|alice|payment|deposit|1|-|1000000|0|1000000|0|2025-11-21 21:40:01+00;"
                   "2|bob|energy|deposit|2|-|600|0|600|0|2025-11-21 21:40:02+00;"
                   "3|alice|payment|order|11|campus-1|-150000|150000|850000|150000|"
                   "2025-11-21 21:40:03+00;"
                   "4|bob|energy|order|12|campus-1|-600|600|0|600|2025-11-21 21:40:04+00;"
                   "6|alice|payment|trade|501|campus-1|60000|-150000|910000|0|"
                   "2025-11-21 21:40:06+00;"
                   "7|alice|energy|trade|501|campus-1|600|0|600|0|2025-11-21 21:40:07+00;"
                   "8|bob|energy|trade|501|campus-1|0|-600|0|0|2025-11-21 21:40:08+00;"
                   "9|bob|payment|trade|501|campus-1|90000|0|90000|0|2025-11-21 21:40:09+00");
    //  each balance is the sum of its movements
    s_assert_rows (pg,
                   "SELECT count(*) FROM balances b WHERE (b.available, b.reserved) <> (SELECT "
                   "sum (d_available), sum (d_reserved) FROM balance_movements m WHERE "
                   "m.username = b.username AND m.asset = b.asset)",
                   "0");
}

Test (pgstore, balances_fold_per_user_and_asset_and_movements_keep_every_event)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_balances", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    pg_t *pg = s_look (conninfo);
    proto_msg_t ev[10];
    size_t n = s_balance_day (ev);
    //  one batch: alice's payment changes three times in it, and is upserted once
    cr_assert_eq (pgstore_apply (store, "m", ev, n), 0, "%s", pgstore_error (store));
    s_assert_balance_day (pg);
    //  the same batch again, or a part of it, takes no effect
    char before[4096], after[4096];
    s_rows (pg,
            "SELECT (SELECT md5 (string_agg (b::text, ',' ORDER BY username, asset)) FROM "
            "balances b), (SELECT md5 (string_agg (m::text, ',' ORDER BY seq)) FROM "
            "balance_movements m)",
            before, sizeof before);
    cr_assert_eq (pgstore_apply (store, "m", ev, n), -1);
    cr_assert (strstr (pgstore_error (store), "already applied"), "%s", pgstore_error (store));
    cr_assert_eq (pgstore_apply (store, "m", ev + 5, n - 5), -1);
    s_rows (pg,
            "SELECT (SELECT md5 (string_agg (b::text, ',' ORDER BY username, asset)) FROM "
            "balances b), (SELECT md5 (string_agg (m::text, ',' ORDER BY seq)) FROM "
            "balance_movements m)",
            after, sizeof after);
    cr_assert_str_eq (after, before);
    s_assert_balance_day (pg);
    pg_destroy (&pg);
    pgstore_destroy (&store);

    //  one event per batch, and batches of three, end the same
    for (size_t size = 1; size <= 3; size += 2) {
        char name[48];
        snprintf (name, sizeof name, "ps_balances_%zu", size);
        s_fresh (name, conninfo, sizeof conninfo);
        store = s_open (conninfo);
        pg = s_look (conninfo);
        for (size_t i = 0; i < n; i += size) {
            size_t count = n - i < size ? n - i : size;
            cr_assert_eq (pgstore_apply (store, "m", ev + i, count), 0, "seq %zu: %s", i + 1,
                          pgstore_error (store));
        }
        s_assert_balance_day (pg);
        pg_destroy (&pg);
        pgstore_destroy (&store);
    }
}

//  The replica loaded from the tables has the balances the events left.
Test (pgstore, loads_the_balances_into_the_replica)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_replica_balances", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    proto_msg_t ev[10];
    size_t n = s_balance_day (ev);
    cr_assert_eq (pgstore_apply (store, "m", ev, n), 0, "%s", pgstore_error (store));
    replica_t *followed = replica_new (1), *loaded = replica_new (1);
    cr_assert_eq (replica_apply (followed, ev, n), 0);
    int64_t offset;
    cr_assert_eq (pgstore_load_replica (store, "m", loaded, &offset), 0, "%s",
                  pgstore_error (store));
    cr_assert_eq (offset, (int64_t) n);
    cr_assert_eq (replica_balance_count (loaded), 2);
    cr_assert_eq (replica_balance_count (followed), 2);
    cr_assert_eq (replica_balance_change_count (loaded), 0, "loading changes nothing");
    const char *users[] = {"alice", "bob"};
    for (size_t i = 0; i < 2; i++) {
        const replica_balance_t *a = replica_balance_find (loaded, users[i]);
        const replica_balance_t *b = replica_balance_find (followed, users[i]);
        cr_assert_not_null (a, "%s", users[i]);
        cr_assert_not_null (b);
        cr_assert_eq (memcmp (a->asset, b->asset, sizeof a->asset), 0, "%s", users[i]);
        cr_assert_eq (a->seq, b->seq, "%s", users[i]);
    }
    const replica_balance_t *alice = replica_balance_find (loaded, "alice");
    cr_assert_eq (alice->asset[REPLICA_ENERGY].available, 600);
    cr_assert_eq (alice->asset[REPLICA_PAYMENT].available, 910000);
    cr_assert_eq (alice->seq, 7);
    replica_destroy (&loaded);
    replica_destroy (&followed);
    pgstore_destroy (&store);
}

//  A settler record: the kind, id, state, and what every record carries.
static proto_msg_t s_transfer (uint64_t seq, int at, proto_transfer_kind_t kind, uint64_t id,
                               proto_transfer_state_t state, const char *sig, uint32_t attempts,
                               const char *err)
{
    proto_msg_t m = {.kind = PROTO_transfer};
    proto_transfer_t *e = &m.transfer;
    e->seq = seq;
    e->ts = S_AT (at);
    e->kind = kind;
    e->id = id;
    e->state = state;
    snprintf (e->signature, sizeof e->signature, "%s", sig);
    e->attempts = attempts;
    snprintf (e->error, sizeof e->error, "%s", err);
    return m;
}

//  The record that creates a transfer: pending, with user, asset, amount (and wallet).
static proto_msg_t s_transfer_new (uint64_t seq, int at, proto_transfer_kind_t kind, uint64_t id,
                                   const char *user, proto_asset_t asset, int64_t amount,
                                   const char *wallet)
{
    proto_msg_t m = s_transfer (seq, at, kind, id, PROTO_TRANSFER_STATE_PENDING, "", 0, "");
    proto_transfer_t *e = &m.transfer;
    snprintf (e->user, sizeof e->user, "%s", user);
    e->asset = asset;
    e->amount = amount;
    snprintf (e->wallet, sizeof e->wallet, "%s", wallet);
    return m;
}

#define DEP PROTO_TRANSFER_KIND_DEPOSIT
#define WDL PROTO_TRANSFER_KIND_WITHDRAWAL

//  Deposit 1 goes through a retry to credited; deposit 2 fails; a record of a deposit never
//  created and one in a state no deposit has are skipped. seqs 1...10.
static size_t s_deposit_day (proto_msg_t *ev)
{
    size_t n = 0;
    ev[n++] = s_transfer_new (1, 1, DEP, 1, "dave", PROTO_ASSET_PAYMENT, 2000000, "Wa11et1");
    ev[n++] = s_transfer (2, 2, DEP, 1, PROTO_TRANSFER_STATE_PROCESSING, "sigP", 1, "");
    ev[n++] = s_transfer_new (3, 2, DEP, 2, "erin", PROTO_ASSET_ENERGY, 3000, "Wa11et2");
    ev[n++] = s_transfer (4, 3, DEP, 1, PROTO_TRANSFER_STATE_PENDING, "", 1, "blockhash expired");
    ev[n++] = s_transfer (5, 3, DEP, 2, PROTO_TRANSFER_STATE_FAILED, "", 0, "no tokens to move");
    ev[n++] = s_transfer (6, 4, DEP, 1, PROTO_TRANSFER_STATE_PROCESSING, "sigQ", 2, "");
    ev[n++] = s_transfer (7, 5, DEP, 1, PROTO_TRANSFER_STATE_CONFIRMED, "sigQ", 2, "");
    ev[n++] = s_transfer (8, 6, DEP, 1, PROTO_TRANSFER_STATE_CREDITED, "", 2, "");
    ev[n++] = s_transfer (9, 6, DEP, 77, PROTO_TRANSFER_STATE_PROCESSING, "sigX", 1, "");
    ev[n++] = s_transfer (10, 7, DEP, 1, PROTO_TRANSFER_STATE_CLOSED, "", 2, "");
    return n;
}

static void s_assert_deposit_day (pg_t *pg)
{
    s_assert_rows (pg,
                   "SELECT deposit_id, username, asset, amount, wallet, state, signature, "
                   "attempts, error, created_at, updated_at, seq FROM deposits ORDER BY deposit_id",
                   "1|dave|payment|2000000|Wa11et1|credited|sigQ|2|-|2025-11-21 21:40:01+00|"
                   "2025-11-21 21:40:06+00|8;"
                   "2|erin|energy|3000|Wa11et2|failed|-|0|no tokens to move|"
                   "2025-11-21 21:40:02+00|2025-11-21 21:40:03+00|5");
}

Test (pgstore, deposits_follow_the_settler_however_its_records_are_batched)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    proto_msg_t ev[10];
    size_t n = s_deposit_day (ev);
    //  all in one batch, one by one, and in twos and threes
    for (size_t size = 10; size >= 1; size = size == 10 ? 3 : size - 1) {
        char name[48];
        snprintf (name, sizeof name, "ps_deposits_%zu", size);
        s_fresh (name, conninfo, sizeof conninfo);
        pgstore_t *store = s_open (conninfo);
        pg_t *pg = s_look (conninfo);
        for (size_t i = 0; i < n; i += size) {
            size_t count = n - i < size ? n - i : size;
            cr_assert_eq (pgstore_apply (store, "s", ev + i, count), 0, "seq %zu: %s", i + 1,
                          pgstore_error (store));
            if (size == 1 && i == 3) //  a retry: pending again, with why
                s_assert_rows (pg,
                               "SELECT state, signature, attempts, error FROM deposits "
                               "WHERE deposit_id = 1",
                               "pending|sigP|1|blockhash expired");
        }
        s_assert_deposit_day (pg);
        cr_assert_eq (pgstore_offset (store, "s"), 10);
        //  applied twice: refused, nothing changes
        cr_assert_eq (pgstore_apply (store, "s", ev, n), -1);
        s_assert_deposit_day (pg);
        pg_destroy (&pg);
        pgstore_destroy (&store);
    }
}

//  Three withdrawals as both streams tell them, with the times they happen at: 1 paid after a
//  retry, 2 failed and refunded, 3 still on its way. The matcher's stream (seqs 1...8) has
//  bob's balance events and a clock too; the settler's (seqs 1...12) its records, in an order
//  of its own.
static size_t s_matcher_withdrawals (proto_msg_t *ev)
{
    size_t n = 0;
    const proto_asset_t E = PROTO_ASSET_ENERGY, P = PROTO_ASSET_PAYMENT;
    const struct {
        int at;
        uint64_t id;
        const char *user;
        proto_asset_t asset;
        int64_t amount;
        proto_withdrawal_phase_t state;
    } w[] = {{1, 1, "alice", E, 5000, PROTO_WITHDRAWAL_PHASE_REQUESTED},
             {2, 2, "bob", P, 700000, PROTO_WITHDRAWAL_PHASE_REQUESTED},
             {3, 3, "carol", E, 100, PROTO_WITHDRAWAL_PHASE_REQUESTED},
             {8, 1, "alice", E, 5000, PROTO_WITHDRAWAL_PHASE_PAID},
             {9, 2, "bob", P, 700000, PROTO_WITHDRAWAL_PHASE_REFUNDED}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        proto_msg_t m = {.kind = PROTO_withdrawal};
        proto_withdrawal_t *e = &m.withdrawal;
        e->seq = n + 1;
        e->ts = S_AT (w[i].at);
        e->withdrawal_id = w[i].id;
        snprintf (e->user, sizeof e->user, "%s", w[i].user);
        e->asset = w[i].asset;
        e->amount = w[i].amount;
        e->state = w[i].state;
        ev[n++] = m;
        if (i == 1 || i == 4) { //  bob's debit, and his refund
            bool refund = i == 4;
            ev[n] = s_balance (
                n + 1, "bob", P, refund ? 700000 : 0, 0, refund ? 700000 : -700000, 0,
                refund ? PROTO_BALANCE_CAUSE_REFUND : PROTO_BALANCE_CAUSE_WITHDRAWAL, 2, "");
            n++;
        }
    }
    ev[n] = s_clock (n + 1);
    n++;
    return n;
}

static size_t s_settler_withdrawals (proto_msg_t *ev)
{
    size_t n = 0;
    const proto_asset_t E = PROTO_ASSET_ENERGY, P = PROTO_ASSET_PAYMENT;
    ev[n++] = s_transfer_new (1, 2, WDL, 1, "alice", E, 5000, "");
    ev[n++] = s_transfer_new (2, 3, WDL, 2, "bob", P, 700000, "");
    ev[n++] = s_transfer (3, 4, WDL, 1, PROTO_TRANSFER_STATE_PROCESSING, "sigA", 1, "");
    ev[n++] = s_transfer_new (4, 4, WDL, 3, "carol", E, 100, "");
    ev[n++] = s_transfer (5, 5, WDL, 1, PROTO_TRANSFER_STATE_PENDING, "", 1, "blockhash expired");
    ev[n++] = s_transfer (6, 5, WDL, 3, PROTO_TRANSFER_STATE_PROCESSING, "sigD", 1, "");
    ev[n++] = s_transfer (7, 6, WDL, 1, PROTO_TRANSFER_STATE_PROCESSING, "sigB", 2, "");
    ev[n++] = s_transfer (8, 6, WDL, 2, PROTO_TRANSFER_STATE_PROCESSING, "sigC", 1, "");
    ev[n++] = s_transfer (9, 7, WDL, 1, PROTO_TRANSFER_STATE_CONFIRMED, "sigB", 2, "");
    ev[n++] = s_transfer (10, 7, WDL, 2, PROTO_TRANSFER_STATE_FAILED, "", 1, "account frozen");
    ev[n++] = s_transfer (11, 10, WDL, 1, PROTO_TRANSFER_STATE_CLOSED, "", 2, "");
    ev[n++] = s_transfer (12, 11, WDL, 2, PROTO_TRANSFER_STATE_REFUNDED, "", 1, "");
    return n;
}

#define S_WITHDRAWALS_SQL                                                                          \
    "SELECT withdrawal_id, username, asset, amount, state, signature, attempts, error, "           \
    "created_at, updated_at, mseq, sseq FROM withdrawals ORDER BY withdrawal_id"
#define S_WITHDRAWALS_END                                                                          \
    "1|alice|energy|5000|paid|sigB|2|-|2025-11-21 21:40:01+00|2025-11-21 21:40:10+00|5|11;"        \
    "2|bob|payment|700000|refunded|sigC|1|account frozen|2025-11-21 21:40:02+00|"                  \
    "2025-11-21 21:40:11+00|6|12;"                                                                 \
    "3|carol|energy|100|processing|sigD|1|-|2025-11-21 21:40:03+00|2025-11-21 21:40:05+00|4|6"

Test (pgstore, withdrawals_end_the_same_whatever_order_the_two_streams_come_in)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ps_withdrawals", conninfo, sizeof conninfo);
    pgstore_t *store = s_open (conninfo);
    pg_t *pg = s_look (conninfo);
    proto_msg_t m[16], s[16];
    size_t nm = s_matcher_withdrawals (m), ns = s_settler_withdrawals (s);
    cr_assert_eq (nm, 8);
    cr_assert_eq (ns, 12);

    //  Schedules: the matcher's all first, the settler's all first, then random interleavings
    //  in random batch sizes. Each starts from empty tables.
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int run = 0; run < 24; run++) {
        pg_result_t *r = pg_exec (pg,
                                  "TRUNCATE withdrawals, balances, balance_movements, "
                                  "consumer_offsets",
                                  0, NULL);
        cr_assert_not_null (r, "%s", pg_error (pg));
        pg_result_free (&r);
        size_t im = 0, is = 0;
        while (im < nm || is < ns) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            bool matcher = run == 0   ? im < nm
                           : run == 1 ? is >= ns
                                      : (im < nm && (is >= ns || (rng & 1)));
            size_t size = run < 2 ? (size_t) (1 + run * 5) : 1 + (size_t) ((rng >> 8) % 4);
            const char *stream = matcher ? "m" : "s";
            proto_msg_t *ev = matcher ? m + im : s + is;
            size_t left = matcher ? nm - im : ns - is;
            size_t count = size < left ? size : left;
            cr_assert_eq (pgstore_apply (store, stream, ev, count), 0, "run %d: %s", run,
                          pgstore_error (store));
            //  a batch delivered again is refused and changes nothing
            if (rng & 0x100)
                cr_assert_eq (pgstore_apply (store, stream, ev, count), -1, "run %d", run);
            if (matcher)
                im += count;
            else
                is += count;
        }
        s_assert_rows (pg, S_WITHDRAWALS_SQL, S_WITHDRAWALS_END);
        s_assert_rows (pg, "SELECT username, asset, available FROM balances", "bob|payment|700000");
    }

    //  Midway, each stream's view shows: the debit before the settler has it, the settler's
    //  states, and a final state that a late record of the other stream does not undo.
    pg_result_t *r = pg_exec (
        pg, "TRUNCATE withdrawals, balances, balance_movements, consumer_offsets", 0, NULL);
    pg_result_free (&r);
    cr_assert_eq (pgstore_apply (store, "m", m, 4), 0, "%s", pgstore_error (store));
    s_assert_rows (pg,
                   "SELECT withdrawal_id, state, signature, mseq, sseq FROM withdrawals "
                   "ORDER BY withdrawal_id",
                   "1|requested|-|1|-;2|requested|-|2|-;3|requested|-|4|-");
    cr_assert_eq (pgstore_apply (store, "s", s, 5), 0, "%s", pgstore_error (store));
    s_assert_rows (pg,
                   "SELECT withdrawal_id, state, signature, attempts, error FROM withdrawals "
                   "ORDER BY withdrawal_id",
                   "1|pending|sigA|1|blockhash expired;2|pending|-|0|-;3|pending|-|0|-");
    cr_assert_eq (pgstore_apply (store, "m", m + 4, nm - 4), 0, "%s", pgstore_error (store));
    s_assert_rows (pg, "SELECT withdrawal_id, state FROM withdrawals ORDER BY withdrawal_id",
                   "1|paid;2|refunded;3|pending");
    cr_assert_eq (pgstore_apply (store, "s", s + 5, ns - 5), 0, "%s", pgstore_error (store));
    s_assert_rows (pg, S_WITHDRAWALS_SQL, S_WITHDRAWALS_END);
    pg_destroy (&pg);
    pgstore_destroy (&store);
}
