/*  test_persister — every matcher event lands in Postgres exactly once, whatever happens to the
    persister: killed with -9 at twenty random moments under load, and through a Postgres
    outage. Postgres is compared with the matcher's journal at the end: every accepted order
    and every trade there, none twice, and the same sums per epoch.
*/
#include "clock.h"
#include "harness.h"
#include "pg.h"
#include "pgtest.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define S_KILLS   20
#define S_CLIENTS 2

static harness_t s_h;
static pgtest_t s_pg;

static void s_fini (void)
{
    harness_cleanup (&s_h);
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

//  What the journal says should be in Postgres.
typedef struct {
    uint64_t last_seq;
    int64_t orders, trades, trade_qty, trade_value;
} s_truth_t;

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
    t->last_seq = seq;
}

static s_truth_t s_journal_truth (void)
{
    s_truth_t t = {0};
    cr_assert_geq (harness_journal_events (&s_h, s_journal_event, &t), 0);
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
//  stops the last batch ends exactly at the journal's last seq.
static void s_wait_applied (int persister, uint64_t seq)
{
    char line[64];
    snprintf (line, sizeof line, "events through seq %llu\n", (unsigned long long) seq);
    cr_assert (harness_wait_log (&s_h, persister, line, HARNESS_DEADLINE_MS * 2),
               "Postgres never reached seq %llu", (unsigned long long) seq);
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

static void s_compare (pg_t *pg, int persister)
{
    s_truth_t t = s_journal_truth ();
    s_wait_applied (persister, t.last_seq);
    cr_assert_eq (s_query_int (pg, "SELECT last_seq FROM consumer_offsets WHERE stream = 'm'"),
                  (int64_t) t.last_seq);
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM orders"), t.orders,
                  "every accepted order once");
    cr_assert_eq (s_query_int (pg, "SELECT count(*) FROM trades"), t.trades, "every trade once");
    cr_assert_eq (s_query_int (pg, "SELECT coalesce(sum(qty), 0) FROM trades"), t.trade_qty);
    cr_assert_eq (s_query_int (pg, "SELECT coalesce(sum(value), 0) FROM trades"), t.trade_value);
    //  per order: what the trades filled is what the order says it has filled
    cr_assert_eq (s_query_int (pg,
                               "SELECT count(*) FROM orders o WHERE o.filled <> coalesce ((SELECT "
                               "sum(qty) FROM trades t WHERE t.buy_order_id = o.order_id OR "
                               "t.sell_order_id = o.order_id), 0)"),
                  0, "each order's filled equals the sum of its trades");
    cr_assert_gt (t.trades, 10, "the load made trades (%lld)", (long long) t.trades);
    fprintf (stderr, "persister: %lld orders, %lld trades, seq %llu in Postgres\n",
             (long long) t.orders, (long long) t.trades, (unsigned long long) t.last_seq);
}

Test (persister, kill_nine_twenty_times_under_load, .fini = s_fini, .timeout = 300)
{
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    char config[512];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; } );\n"
              "postgres = { url = \"%s\"; };\n",
              s_pg.conninfo);
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
        clients[c] = zsock_new_dealer (endpoint);
        zsock_set_rcvtimeo (clients[c], HARNESS_DEADLINE_MS);
    }
    char err[256];
    pg_t *pg = pg_connect (s_pg.conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "%s", err);
    uint64_t rid = 1;
    for (int round = 0; round < S_KILLS; round++) {
        //  Load, and a kill at a random moment of the persister's work on it: after a random
        //  number of the matcher's acknowledgements (each one an event on its way to Postgres).
        int sent = 50 + (int) (s_rand () % 200);
        s_send_orders (clients, sent, &rid);
        int kill_after = (int) (s_rand () % (uint64_t) (sent * S_CLIENTS));
        for (int got = 0; got < sent * S_CLIENTS; got++) {
            if (got == kill_after)
                cr_assert_eq (WTERMSIG (harness_stop (&s_h, persister, SIGKILL)), SIGKILL);
            zframe_t *f = zframe_recv (clients[got % S_CLIENTS]);
            cr_assert_not_null (f, "round %d: the matcher stopped answering", round);
            zframe_destroy (&f);
        }
        persister = harness_start (&s_h, "mce-persister");
        cr_assert (harness_wait_log_count (&s_h, persister, "Postgres ready", round + 2,
                                           HARNESS_DEADLINE_MS),
                   "round %d: the persister did not come back", round);
    }
    s_send_orders (clients, 100, &rid);
    s_drain (clients, 100);
    s_compare (pg, persister);
    //  A Postgres outage under load: the persister waits, keeps its place, and catches up.
    cr_assert_eq (pgtest_stop_server (&s_pg), 0);
    s_send_orders (clients, 200, &rid);
    s_drain (clients, 200);
    cr_assert (harness_wait_log (&s_h, persister, "not applied", HARNESS_DEADLINE_MS),
               "the persister noticed the outage");
    cr_assert_eq (pgtest_restart (&s_pg), 0);
    pg_reset (pg);
    cr_assert (harness_wait_log (&s_h, persister, "Postgres is back", HARNESS_DEADLINE_MS * 2));
    s_compare (pg, persister);
    //  The metrics say where it is: the journal's end, nothing behind.
    char *metrics = NULL;
    cr_assert_eq (harness_http_port (s_h.port_ws, "GET", "/metrics", NULL, &metrics), 200);
    char want_seq[64];
    snprintf (want_seq, sizeof want_seq, "mce_persister_applied_seq %llu\n",
              (unsigned long long) s_journal_truth ().last_seq);
    cr_assert_not_null (strstr (metrics, want_seq), "%s wanted in:\n%s", want_seq, metrics);
    cr_assert_not_null (strstr (metrics, "mce_persister_failures_total "), "%s", metrics);
    free (metrics);
    unsetenv ("MCE_PERSISTER_METRICS_PORT");
    unsetenv ("MCE_LOG_LEVEL");
    //  The gateway reads a user's whole trade history from these tables.
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
}
