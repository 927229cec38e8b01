/*  test_settler_faults — the ledger misbehaves and everything still settles, once.

    1. HTTP 429 (with Retry-After), HTTP 500/503 and JSON-RPC -32005 on a good share of the
       calls: the settler backs off and retries, the metrics count each kind.
    2. Expired blockhashes: the blockhash is valid for half a second and accepted transactions
       land 1.5 s later, so none lands; the settler sees each one expire (unknown to the chain
       and past its lastValidBlockHeight), signs its settlements again, and once the ledger is
       healthy they land.
    3. A 30 s pause: the ledger holds every request unanswered. The settler backs off (no busy
       loop: little CPU and few requests during the pause), says ledger_up 0 and its backoff in
       the metrics, and settles everything once the ledger answers again.

    At the end each trade settled exactly once (memos) or failed with a reason, and the
    balances are the net positions of the settled trades.
*/
#include "clock.h"
#include "settlertest.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_FEE_PPM 3000
#define S_USERS   8

static settlertest_t s_t;
static uint64_t s_trades;

static void s_fini (void)
{
    settlertest_fini (&s_t);
}

static uint64_t s_rand (void)
{
    static uint64_t x = 0xD1B54A32D192ED03ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static void s_load (int pairs)
{
    for (int i = 0; i < pairs; i++) {
        int seller = 1 + (int) (s_rand () % S_USERS);
        int buyer = 1 + (int) ((seller + s_rand () % (S_USERS - 1)) % S_USERS);
        char s[16], b[16];
        snprintf (s, sizeof s, "user%d", seller);
        snprintf (b, sizeof b, "user%d", buyer);
        settlertest_trade (&s_t, s, b, 500 + (int64_t) (s_rand () % 3000),
                           140000 + 1000 * (int64_t) (s_rand () % 20), 0);
        s_trades++;
    }
}

static void s_faults (const char *json)
{
    json_t *r = ledgertest_rpc (&s_t.ledger, "mce_setFaults", json);
    cr_assert_not_null (r, "mce_setFaults %s", json);
    json_decref (r);
}

//  CPU seconds the process has used (user + system).
static double s_cpu (pid_t pid)
{
    char path[64], text[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    cr_assert_not_null (f);
    size_t n = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text[n] = '\0';
    const char *p = strrchr (text, ')'); //  the name may hold spaces
    unsigned long utime = 0, stime = 0;
    cr_assert_eq (
        sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime), 2);
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

static int64_t s_stat (const char *field)
{
    json_t *stats = ledgertest_rpc (&s_t.ledger, "mce_stats", NULL);
    int64_t v = json_integer_value (json_object_get (stats, field));
    json_decref (stats);
    return v;
}

Test (settler_faults, everything_settles_through_the_faults, .fini = s_fini, .timeout = 300)
{
    settlertest_init (&s_t,
                      "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = "
                      "2592000; fee_ppm = 3000; escrow = false; } );",
                      (const char *[]){"--users", "8", "--slot-ms", "100", NULL});
    settlertest_t *t = &s_t;
    settlertest_follow (t);
    setenv ("MCE_SETTLER_RPC_TIMEOUT_MS", "1000", 1);
    setenv ("MCE_SETTLER_BACKOFF_MS", "50", 1);
    setenv ("MCE_SETTLER_BACKOFF_CAP_MS", "2000", 1);
    setenv ("MCE_SETTLER_RETRY_ATTEMPTS", "10", 1);
    setenv ("MCE_SETTLER_CONFIRMATION_TIMEOUT_MS", "3000", 1);
    ledgertest_book_t book;
    cr_assert_eq (ledgertest_book (&t->ledger, &book), 0);
    int settler = settlertest_settler (t);
    pid_t pid = t->h.procs[settler].pid;

    //  1. 429s, 5xx and unhealthy nodes
    s_faults ("{\"http429Rate\":0.2,\"http5xxRate\":0.15,\"unhealthyRate\":0.05,"
              "\"retryAfterS\":1,\"faultSeed\":7}");
    //  rounds of trades until each kind of fault has happened at least once
    for (int round = 0; round < 20; round++) {
        s_load (10);
        cr_assert (settlertest_wait_final (t, s_trades, true, 60000), "phase 1 settles");
        if (s_stat ("http429") && s_stat ("http5xx") && s_stat ("unhealthy"))
            break;
    }
    //  the settler met every one of them (nobody else calls the ledger's faulted methods)
    cr_assert_eq (settlertest_metric (t, "mce_settler_rpc_errors_total{kind=\"http429\"}"),
                  (double) s_stat ("http429"));
    cr_assert_eq (settlertest_metric (t, "mce_settler_rpc_errors_total{kind=\"http5xx\"}"),
                  (double) s_stat ("http5xx"));
    cr_assert_gt (s_stat ("http429"), 0);
    cr_assert_gt (s_stat ("http5xx"), 0);
    fprintf (stderr, "faults: phase 1: %lld HTTP 429, %lld HTTP 5xx, %lld unhealthy answered\n",
             (long long) s_stat ("http429"), (long long) s_stat ("http5xx"),
             (long long) s_stat ("unhealthy"));
    json_decref (ledgertest_rpc (&t->ledger, "mce_resetFaults", NULL));

    //  2. expired blockhashes: nothing lands until the faults are gone
    s_faults ("{\"blockhashValidity\":5,\"landDelayMs\":1500}");
    s_load (20);
    cr_assert (harness_wait_log (&t->h, settler, "will not land: expired", HARNESS_DEADLINE_MS),
               "a transaction expired");
    json_decref (ledgertest_rpc (&t->ledger, "mce_resetFaults", NULL));
    cr_assert (settlertest_wait_final (t, s_trades, true, 60000), "phase 2 settles");
    cr_assert_geq (settlertest_metric (t, "mce_settler_retries_total{reason=\"expired\"}"), 1);

    //  3. a 30 s pause, every request held unanswered
    int warnings = harness_count_log (&t->h, settler, "next call in");
    double cpu0 = s_cpu (pid);
    int64_t paused0 = s_stat ("pausedRequests");
    int64_t start = clock_mono_ns ();
    s_faults ("{\"pausedMs\":30000}");
    s_load (40);
    cr_assert (
        harness_wait_log_count (&t->h, settler, "next call in", warnings + 1, HARNESS_DEADLINE_MS),
        "the settler noticed");
    cr_assert_eq (settlertest_metric (t, "mce_settler_ledger_up"), 0);
    cr_assert_gt (settlertest_metric (t, "mce_settler_backoff_seconds"), 0);
    cr_assert (settlertest_wait_final (t, s_trades, true, 90000), "phase 3 settles");
    double took = (double) (clock_mono_ns () - start) / 1e9;
    double cpu = s_cpu (pid) - cpu0;
    int64_t held = s_stat ("pausedRequests") - paused0;
    fprintf (stderr,
             "faults: pause: settled after %.1f s; %.2f s of CPU, %lld requests meanwhile\n", took,
             cpu, (long long) held);
    cr_assert_geq (took, 29, "nothing could settle during the pause");
    cr_assert_lt (cpu, 5, "no busy loop during the pause (%.2f s of CPU)", cpu);
    cr_assert_lt (held, 200, "backoff, not a storm of requests (%lld)", (long long) held);
    cr_assert_eq (settlertest_metric (t, "mce_settler_ledger_up"), 1);

    //  Exactly once, or failed with a reason; the balances of what settled.
    ledgertest_trade_t *trades;
    size_t n = settlertest_journal_trades (&t->h, S_FEE_PPM, &trades);
    cr_assert_eq (n, s_trades);
    ledgertest_trade_t *settled = malloc (n * sizeof *settled);
    uint64_t *ids = malloc (n * sizeof *ids);
    int *counts = malloc (n * sizeof *counts);
    size_t m = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        settlertest_seen_t *x = &t->seen[trades[i].trade_id];
        cr_assert_leq (x->confirmed, 1);
        if (x->state == PROTO_SETTLE_STATE_CONFIRMED) {
            settled[m] = trades[i];
            ids[m++] = trades[i].trade_id;
        }
        else {
            cr_assert_eq (x->state, PROTO_SETTLE_STATE_FAILED);
            cr_assert (x->error[0], "trade %llu failed with a reason",
                       (unsigned long long) trades[i].trade_id);
            fprintf (stderr, "faults: trade %llu failed: %s\n",
                     (unsigned long long) trades[i].trade_id, x->error);
            failed++;
        }
    }
    size_t strays;
    int txs = ledgertest_memo_counts (&t->ledger, ids, m, counts, &strays);
    cr_assert_gt (txs, 0);
    for (size_t i = 0; i < m; i++)
        cr_assert_eq (counts[i], 1, "trade %llu in %d landed transactions",
                      (unsigned long long) ids[i], counts[i]);
    cr_assert_eq (strays, 0, "a failed trade landed");
    cr_assert_eq (ledgertest_check_balances (&t->ledger, &book, settled, m), 0);
    fprintf (stderr, "faults: %zu trades settled in %d transactions, %zu failed\n", m, txs, failed);
    free (settled);
    free (ids);
    free (counts);
    free (trades);
}
