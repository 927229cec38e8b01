/*  test_chaos — the whole system under load while each part of it fails in turn, and nothing
    acknowledged is lost and nothing is paid twice.

    Everything is real: Postgres, Redis, the local ledger running the SPL Token programs, and
    the five executables on loopback ports, with the market's defaults: escrow on. The users
    sign up with the ledger's funded wallets and deposit energy and money through the chain
    into the platform's vaults; then a load thread keeps placing crossing orders through the
    gateway's HTTP API, remembering every order the gateway acknowledged (201 with an order
    id).

    Under that load, in turn: kill -9 of the matcher, the persister, the settler, the
    broadcaster and the gateway, each restarted once the load has run into the hole; then
    Postgres stopped, Redis stopped (it comes back empty), the ledger frozen (SIGSTOP), each
    for a stretch of the load, then brought back. Every step waits on the load's progress or
    on a log line, with a deadline; nothing sleeps.

    At the end:
    - every acknowledged order is in the matcher's journal and in Postgres;
    - Postgres equals the bus: its offset is the journal's last seq, and it holds every
      accepted order and every trade of the journal once, with the same sums;
    - every trade is settled exactly once: one confirmed settlement in Postgres each, its id
      in the memo of exactly one landed transaction on the ledger, no stray ones, and every
      balance is the net position of all the trades, paid out of the vaults;
    - `mcectl reconcile` finds each vault on chain equal to the books, to the unit.
*/
#include "clock.h"
#include "harness.h"
#include "ledgertest.h"
#include "pg.h"
#include "pgtest.h"
#include "proto.h"
#include "redistest.h"
#include "settlertest.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_USERS    8
#define S_FEE_PPM  2000
#define S_STRETCH  400 //  orders the load places through each outage (about 2 s of it)
#define S_PACE_MS  4   //  between two orders of the load: ~200 orders/s at most
#define S_FINAL_MS 180000
//  What each user deposits of each asset before the load (energy in kWh, money in currency
//  units), far more than the load can spend, out of what the ledger mints each (S_MINT_*,
//  base units: Wh and µ), so no order is refused for its balance.
#define S_DEPOSIT      "50000"
#define S_MINT_ENERGY  "100000000"
#define S_MINT_PAYMENT "100000000000"

static harness_t s_h;
static pgtest_t s_pg;
static redistest_t s_redis;
static ledgertest_t s_ledger;
static pg_t *s_db;

//  The processes, by name; each keeps one log for all its runs, so a restart waits for the
//  runs-th occurrence of its ready line.
typedef struct {
    const char *exe;
    const char *ready;
    int index; //  in the harness, -1 when not running
    int runs;
} s_proc_t;

static s_proc_t s_procs[] = {
    {"mce-gateway", "HTTP API on", -1, 0},      {"mce-matcher", "commands on", -1, 0},
    {"mce-persister", "Postgres ready", -1, 0}, {"mce-settler", "settler: ready", -1, 0},
    {"mce-broadcaster", "WebSocket on", -1, 0},
};
#define S_PROCS (sizeof s_procs / sizeof s_procs[0])

static void s_start (s_proc_t *p)
{
    p->index = harness_start (&s_h, p->exe);
    p->runs++;
    cr_assert (harness_wait_log_count (&s_h, p->index, p->ready, p->runs, HARNESS_DEADLINE_MS),
               "%s run %d did not get ready", p->exe, p->runs);
}

//  The load: one thread, one order at a time, as a client would.
typedef struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t progress; //  signalled after each order, under lock
    uint64_t *acked;         //  order ids the gateway acknowledged
    size_t count, cap;
    long attempts, failures; //  under lock, as count
    atomic_long malformed;   //  201s without an order id
    atomic_bool stop;
    bool started; //  the thread runs (until joined)
    char tokens[S_USERS][1024];
    uint64_t rand;
} s_load_t;

static s_load_t s_load;

static uint64_t s_next (uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

//  Places one order; its id when the gateway acknowledged it, else 0.
static uint64_t s_place (int user, bool buy, int64_t wh, int64_t price)
{
    char body[256];
    snprintf (body, sizeof body,
              "{\"market\":\"campus-1\",\"side\":\"%s\",\"energy_amount\":\"%lld.%03lld\","
              "\"price\":\"0.%04lld\"}",
              buy ? "Buy" : "Sell", (long long) (wh / 1000), (long long) (wh % 1000),
              (long long) (price / 100));
    harness_response_t r;
    harness_request (s_h.port_http,
                     &(harness_request_t){.method = "POST",
                                          .path = "/api/trading/orders",
                                          .body = body,
                                          .token = s_load.tokens[user]},
                     &r);
    uint64_t id = 0;
    if (r.status == 201) {
        json_t *j = json_loads (r.body, 0, NULL);
        const char *text = json_string_value (json_object_get (j, "order_id"));
        id = text ? strtoull (text, NULL, 10) : 0;
        if (!id) //  not a Criterion assertion: this runs on the load's thread
            atomic_fetch_add (&s_load.malformed, 1);
        json_decref (j);
    }
    harness_response_free (&r);
    return id;
}

static void *s_load_run (void *arg)
{
    (void) arg;
    while (!atomic_load (&s_load.stop)) {
        //  a seller, then a buyer at the same price: most pairs trade
        int seller = (int) (s_next (&s_load.rand) % S_USERS);
        int buyer = (seller + 1 + (int) (s_next (&s_load.rand) % (S_USERS - 1))) % S_USERS;
        int64_t wh = 100 + (int64_t) (s_next (&s_load.rand) % 4900);
        int64_t price = 140000 + 1000 * (int64_t) (s_next (&s_load.rand) % 20);
        for (int leg = 0; leg < 2; leg++) {
            uint64_t id =
                leg == 0 ? s_place (seller, false, wh, price) : s_place (buyer, true, wh, price);
            pthread_mutex_lock (&s_load.lock);
            s_load.attempts++;
            if (id) {
                if (s_load.count == s_load.cap) {
                    s_load.cap = s_load.cap ? 2 * s_load.cap : 4096;
                    s_load.acked = realloc (s_load.acked, s_load.cap * sizeof *s_load.acked);
                    if (!s_load.acked)
                        abort ();
                }
                s_load.acked[s_load.count++] = id;
            }
            else
                s_load.failures++;
            pthread_cond_broadcast (&s_load.progress);
            pthread_mutex_unlock (&s_load.lock);
            zclock_sleep (S_PACE_MS); //  pacing the load, not waiting for anything
        }
    }
    return NULL;
}

static size_t s_acked (void)
{
    pthread_mutex_lock (&s_load.lock);
    size_t n = s_load.count;
    pthread_mutex_unlock (&s_load.lock);
    return n;
}

//  Waits on the load's progress, with a deadline, until it made `attempts` more orders and
//  the gateway acknowledged `acked` more. false at the deadline.
static bool s_wait_load (long attempts, size_t acked)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += HARNESS_DEADLINE_MS * 2 / 1000;
    pthread_mutex_lock (&s_load.lock);
    long want_attempts = s_load.attempts + attempts;
    size_t want_acked = s_load.count + acked;
    int rc = 0;
    while (rc == 0 && (s_load.attempts < want_attempts || s_load.count < want_acked))
        rc = pthread_cond_timedwait (&s_load.progress, &s_load.lock, &deadline);
    bool done = s_load.attempts >= want_attempts && s_load.count >= want_acked;
    pthread_mutex_unlock (&s_load.lock);
    return done;
}

//  Waits until the load made n more attempts (ran into whatever is down).
static void s_wait_attempts (long n, const char *during)
{
    cr_assert (s_wait_load (n, 0), "the load stalled %s", during);
}

//  Waits until the gateway acknowledged n more orders: the system works again.
static void s_wait_acked (size_t n, const char *after)
{
    if (s_wait_load (0, n))
        return;
    pthread_mutex_lock (&s_load.lock);
    long attempts = s_load.attempts, failures = s_load.failures;
    pthread_mutex_unlock (&s_load.lock);
    cr_assert_fail ("no orders were acknowledged after %s (%ld attempts, %ld failed)", after,
                    attempts, failures);
}

static void s_outage (const char *what, int64_t since)
{
    fprintf (stderr, "chaos: %s down for %lld ms (%zu acknowledged so far)\n", what,
             (long long) (zclock_mono () - since), s_acked ());
}

static void s_fini (void)
{
    atomic_store (&s_load.stop, true);
    if (s_load.started) //  a failed assertion: the load stops before everything else does
        pthread_join (s_load.thread, NULL);
    harness_cleanup (&s_h);
    ledgertest_stop (&s_ledger);
    redistest_stop (&s_redis);
    pg_destroy (&s_db);
    pgtest_stop (&s_pg);
}

static int64_t s_query_int (const char *sql)
{
    pg_result_t *r = pg_exec (s_db, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (s_db));
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

//  Polls sql until it answers want, with a deadline (Postgres and the services catch up).
static void s_wait_query (const char *sql, int64_t want, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms, got = -1;
    while (zclock_mono () < deadline) {
        pg_result_t *r = pg_exec (s_db, sql, 0, NULL);
        if (r) {
            got = pg_int (r, 0, 0);
            pg_result_free (&r);
            if (got == want)
                return;
        }
        zclock_sleep (50);
    }
    cr_assert_fail ("%s: %lld, expected %lld", sql, (long long) got, (long long) want);
}

//  Redis: mce:persister:seq reaches seq (polled with a deadline), and then there is one
//  mce:order:<id> key per order resting in Postgres, and each is one of them.
static void s_check_redis (uint64_t seq)
{
    redisContext *r = redistest_connect (&s_redis);
    cr_assert_not_null (r);
    int64_t deadline = zclock_mono () + S_FINAL_MS;
    long long got = -1;
    while (got != (long long) seq) {
        cr_assert (zclock_mono () < deadline, "Redis's seq is %lld, not %llu", got,
                   (unsigned long long) seq);
        redisReply *v = redisCommand (r, "GET mce:persister:seq");
        got = v && v->type == REDIS_REPLY_STRING ? strtoll (v->str, NULL, 10) : -1;
        freeReplyObject (v);
        if (got != (long long) seq)
            zclock_sleep (50);
    }
    int64_t keys = 0;
    char cursor[32] = "0";
    do {
        redisReply *v = redisCommand (r, "SCAN %s MATCH mce:order:* COUNT 1000", cursor);
        cr_assert (v && v->type == REDIS_REPLY_ARRAY && v->elements == 2);
        snprintf (cursor, sizeof cursor, "%s", v->element[0]->str);
        for (size_t i = 0; i < v->element[1]->elements; i++) {
            const char *id = v->element[1]->element[i]->str + strlen ("mce:order:");
            const char *params[1] = {id};
            pg_result_t *q = pg_exec (s_db,
                                      "SELECT count(*) FROM orders WHERE order_id = $1::bigint "
                                      "AND status IN ('open', 'partially_filled')",
                                      1, params);
            cr_assert_not_null (q, "%s", pg_error (s_db));
            cr_assert_eq (pg_int (q, 0, 0), 1, "Redis holds order %s, not resting in Postgres", id);
            pg_result_free (&q);
            keys++;
        }
        freeReplyObject (v);
    } while (strcmp (cursor, "0") != 0);
    cr_assert_eq (keys,
                  s_query_int ("SELECT count(*) FROM orders "
                               "WHERE status IN ('open', 'partially_filled')"),
                  "a Redis key for every resting order");
    redisFree (r);
}

//  What the matcher's journal says.
typedef struct {
    uint64_t last_seq;
    uint64_t *accepted; //  order ids
    size_t accepted_count, accepted_cap;
    int64_t trades, trade_qty, trade_value;
} s_truth_t;

static void s_journal_event (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                             void *arg)
{
    (void) ev;
    (void) len;
    s_truth_t *t = arg;
    t->last_seq = seq;
    if (msg->kind == PROTO_order_accepted) {
        if (t->accepted_count == t->accepted_cap) {
            t->accepted_cap = t->accepted_cap ? 2 * t->accepted_cap : 4096;
            t->accepted = realloc (t->accepted, t->accepted_cap * sizeof *t->accepted);
            cr_assert_not_null (t->accepted);
        }
        t->accepted[t->accepted_count++] = msg->order_accepted.order_id;
    }
    else if (msg->kind == PROTO_trade) {
        t->trades++;
        t->trade_qty += msg->trade.qty;
        t->trade_value += msg->trade.value;
    }
}

static int s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void s_sign_up (void)
{
    size_t i;
    json_t *u;
    json_array_foreach (json_object_get (s_ledger.setup, "users"), i, u)
    {
        cr_assert_lt (i, S_USERS);
        const char *name = json_string_value (json_object_get (u, "name"));
        //  each proves its funded wallet with the key the ledger's setup holds
        harness_wallet_t w;
        harness_wallet (&w, json_string_value (json_object_get (u, "walletSecretSeedHex")));
        cr_assert_str_eq (w.address, json_string_value (json_object_get (u, "wallet")));
        char *answer = NULL;
        long status = harness_sign_up (s_h.port_http, name, "chaos monkey pw", &w, &answer);
        cr_assert_eq (status, 201, "register %s: %ld %s", name, status, answer);
        free (answer);
        harness_token (name, "user", s_load.tokens[i], sizeof s_load.tokens[i]);
    }
}

Test (chaos, everything_fails_in_turn_and_nothing_is_lost_or_paid_twice, .fini = s_fini,
      .timeout = 900)
{
    cr_assert_eq (curl_global_init (CURL_GLOBAL_DEFAULT), 0);
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    cr_assert_eq (redistest_start (&s_redis), 0);
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; "
              "fee_ppm = %d; } );\n"
              "postgres = { url = \"%s\"; };\nredis = { url = \"%s\"; };\n",
              S_FEE_PPM, s_pg.conninfo, s_redis.url);
    harness_init (&s_h, config);
    cr_assert_eq (ledgertest_start (&s_ledger, s_h.dir,
                                    (const char *[]){"--users", "8", "--slot-ms", "100",
                                                     "--energy-amount", S_MINT_ENERGY,
                                                     "--payment-amount", S_MINT_PAYMENT, NULL}),
                  0);
    //  the settler's ledger and platform key; short calls and many attempts, so an outage
    //  is waited out rather than failed
    setenv ("MCE_SETTLER_RPC_URL", s_ledger.url, 1);
    setenv ("MCE_SETTLER_KEYS_FILE", s_ledger.setup_path, 1);
    setenv ("MCE_SETTLER_RPC_TIMEOUT_MS", "1000", 1);
    setenv ("MCE_SETTLER_RETRY_ATTEMPTS", "1000", 1);
    setenv ("MCE_SETTLER_BACKOFF_CAP_MS", "1000", 1);
    //  an order the matcher cannot take (it is down) is answered 504 soon
    setenv ("MCE_GATEWAY_REQUEST_TIMEOUT_MS", "1000", 1);
    for (size_t i = 0; i < S_PROCS; i++)
        s_start (&s_procs[i]);
    s_sign_up ();
    for (int u = 0; u < S_USERS; u++)
        for (int a = 0; a < 2; a++)
            cr_assert_eq (harness_deposit (s_h.port_http, s_load.tokens[u],
                                           a ? "payment" : "energy", S_DEPOSIT, S_FINAL_MS),
                          0);
    //  the chain's balances once the deposits are in the vaults: trades move them from there
    ledgertest_book_t book;
    cr_assert_eq (ledgertest_book (&s_ledger, &book), 0);

    pthread_mutex_init (&s_load.lock, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init (&monotonic);
    pthread_condattr_setclock (&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init (&s_load.progress, &monotonic);
    pthread_condattr_destroy (&monotonic);
    s_load.rand = 0x9E3779B97F4A7C15ull;
    cr_assert_eq (pthread_create (&s_load.thread, NULL, s_load_run, NULL), 0);
    s_load.started = true;
    s_wait_acked (S_STRETCH, "the start");

    //  1. kill -9 each process in turn; the matcher and the gateway are down for a few of the
    //  load's orders (each of which fails), the others for a whole stretch
    const char *order[] = {"mce-matcher", "mce-persister", "mce-settler", "mce-broadcaster",
                           "mce-gateway"};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        s_proc_t *p = NULL;
        for (size_t i = 0; i < S_PROCS; i++)
            if (strcmp (s_procs[i].exe, order[k]) == 0)
                p = &s_procs[i];
        bool front = strcmp (p->exe, "mce-matcher") == 0 || strcmp (p->exe, "mce-gateway") == 0;
        harness_stop (&s_h, p->index, SIGKILL);
        p->index = -1;
        int64_t down = zclock_mono ();
        s_wait_attempts (front ? 4 : S_STRETCH, p->exe);
        s_start (p);
        fprintf (stderr, "chaos: %s killed -9 and back after %lld ms (%zu acknowledged so far)\n",
                 p->exe, (long long) (zclock_mono () - down), s_acked ());
        s_wait_acked (S_STRETCH / 4, p->exe);
    }

    //  2. the stores and the ledger, each down for a stretch of the load
    int64_t down = zclock_mono ();
    cr_assert_eq (pgtest_stop_server (&s_pg), 0);
    s_wait_attempts (S_STRETCH, "while Postgres was down");
    cr_assert_eq (pgtest_restart (&s_pg), 0);
    s_outage ("Postgres", down);
    s_wait_acked (S_STRETCH / 4, "Postgres came back");

    down = zclock_mono ();
    cr_assert_eq (redistest_stop_server (&s_redis), 0);
    s_wait_attempts (S_STRETCH, "while Redis was down");
    cr_assert_eq (redistest_restart (&s_redis), 0);
    s_outage ("Redis", down);
    s_wait_acked (S_STRETCH / 4, "Redis came back");

    down = zclock_mono ();
    cr_assert_eq (kill (s_ledger.pid, SIGSTOP), 0);
    s_wait_attempts (S_STRETCH * 2, "while the ledger was frozen");
    cr_assert_eq (kill (s_ledger.pid, SIGCONT), 0);
    s_outage ("the ledger", down);
    s_wait_acked (S_STRETCH / 4, "the ledger came back");

    atomic_store (&s_load.stop, true);
    pthread_join (s_load.thread, NULL);
    s_load.started = false;
    size_t acked = s_load.count;
    cr_assert_eq (atomic_load (&s_load.malformed), 0, "an acknowledgement without an order id");
    fprintf (stderr, "chaos: load stopped: %ld orders tried, %zu acknowledged, %ld failed\n",
             s_load.attempts, acked, s_load.failures);

    //  every acknowledged order is in the journal ...
    s_truth_t t = {0};
    cr_assert_geq (harness_journal_events (&s_h, s_journal_event, &t), 0);
    qsort (t.accepted, t.accepted_count, sizeof *t.accepted, s_cmp_u64);
    for (size_t i = 0; i < acked; i++)
        cr_assert_not_null (
            bsearch (&s_load.acked[i], t.accepted, t.accepted_count, sizeof *t.accepted, s_cmp_u64),
            "acknowledged order %llu is not in the journal", (unsigned long long) s_load.acked[i]);
    cr_assert_gt (t.trades, 0);

    //  ... Postgres equals the bus (a connection made now: the server was restarted) ...
    char err[256];
    s_db = pg_connect (s_pg.conninfo, 5000, err, sizeof err);
    cr_assert_not_null (s_db, "%s", err);
    char sql[256];
    snprintf (sql, sizeof sql,
              "SELECT coalesce(max(last_seq), -1) FROM consumer_offsets "
              "WHERE stream = 'm'");
    s_wait_query (sql, (int64_t) t.last_seq, S_FINAL_MS);
    cr_assert_eq (s_query_int ("SELECT count(*) FROM orders"), (int64_t) t.accepted_count,
                  "every accepted order once");
    cr_assert_eq (s_query_int ("SELECT count(*) FROM trades"), t.trades, "every trade once");
    cr_assert_eq (s_query_int ("SELECT coalesce(sum(qty), 0) FROM trades"), t.trade_qty);
    cr_assert_eq (s_query_int ("SELECT coalesce(sum(value), 0) FROM trades"), t.trade_value);
    cr_assert_eq (s_query_int ("SELECT coalesce(sum(filled), 0) FROM orders"), 2 * t.trade_qty,
                  "each trade fills a buy and a sell");
    //  ... so every acknowledged order is in Postgres too (the ids are the journal's)
    for (size_t i = 0; i < acked; i++) {
        char id[32];
        snprintf (id, sizeof id, "%llu", (unsigned long long) s_load.acked[i]);
        const char *params[1] = {id};
        pg_result_t *r =
            pg_exec (s_db, "SELECT count(*) FROM orders WHERE order_id = $1", 1, params);
        cr_assert_not_null (r, "%s", pg_error (s_db));
        cr_assert_eq (pg_int (r, 0, 0), 1, "acknowledged order %s is not in Postgres", id);
        pg_result_free (&r);
    }

    //  ... Redis (restarted empty halfway) holds the view of Postgres at the same offset: its
    //  seq, and a key for each resting order ...
    s_check_redis (t.last_seq);

    //  ... and every trade settled exactly once: by the settler's records in Postgres ...
    s_wait_query ("SELECT count(*) FROM settlements WHERE state = 'confirmed'", t.trades,
                  S_FINAL_MS);
    cr_assert_eq (s_query_int ("SELECT count(*) FROM settlements"), t.trades);
    //  ... and by the chain
    ledgertest_trade_t *trades;
    size_t n = settlertest_journal_trades (&s_h, S_FEE_PPM, &trades);
    cr_assert_eq ((int64_t) n, t.trades);
    uint64_t *ids = malloc (n * sizeof *ids);
    int *counts = malloc (n * sizeof *counts);
    for (size_t i = 0; i < n; i++)
        ids[i] = trades[i].trade_id;
    size_t strays;
    int txs = ledgertest_memo_counts (&s_ledger, ids, n, counts, &strays);
    cr_assert_gt (txs, 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq (counts[i], 1, "trade %llu is in %d landed transactions",
                      (unsigned long long) ids[i], counts[i]);
    cr_assert_eq (strays, 0);
    cr_assert_eq (ledgertest_check_escrow (&s_ledger, &book, trades, n), 0);

    //  ... and the vaults hold exactly what the books say the users own
    char *out = NULL;
    int rc = harness_run ("mcectl", (const char *[]){"-c", s_h.config, "reconcile", NULL}, &out);
    cr_assert_eq (rc, 0, "mcectl reconcile: %s", out);
    fprintf (stderr, "chaos: %s", out);
    free (out);
    fprintf (stderr,
             "chaos: %zu orders acknowledged, %zu accepted in all, %lld trades settled in %d "
             "transactions, journal through seq %llu\n",
             acked, t.accepted_count, (long long) t.trades, txs, (unsigned long long) t.last_seq);
    free (ids);
    free (counts);
    free (trades);
    free (t.accepted);
    free (s_load.acked);
}
