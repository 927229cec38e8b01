/*  test_settler_crash — kill -9 the settler again and again while trades keep coming, and no
    trade is ever paid twice and none is left unpaid.

    Twenty-four kills come at random moments of its work (after a random number of its steps
    since the round began, as its debug log tells them: intents, transactions signed and
    journaled, confirmations). Eight more
    come from the settler's test hooks at the two moments that matter most: right after a
    sendTransaction request returned but before its answer was recorded, and right after the
    signatures were journaled but before anything was sent. Each time a new settler starts,
    recovers from its journal, asks the chain about every transaction that was in flight, and
    goes on.

    At the end every trade in the matcher's journal has exactly one confirmed record on the
    settler's bus, its id is in the memo of exactly one landed successful transaction on the
    ledger, and every balance is the net position of all the trades.
*/
#include "clock.h"
#include "settlertest.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define S_FEE_PPM      1500
#define S_USERS        8
#define S_RANDOM_KILLS 24
#define S_HOOK_KILLS   8
#define S_STEP         "settler: t" //  "settler: trade …", "settler: transaction …"

static settlertest_t s_t;

static void s_fini (void)
{
    unsetenv ("MCE_SETTLER_CRASH_AFTER_SEND");
    unsetenv ("MCE_SETTLER_CRASH_BEFORE_SEND");
    unsetenv ("MCE_LOG_LEVEL");
    settlertest_fini (&s_t);
}

static uint64_t s_rand (void)
{
    static uint64_t x = 0x9E3779B97F4A7C15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static uint64_t s_trades; //  trades made so far (their ids are 1..s_trades)

static void s_load (settlertest_t *t, int pairs)
{
    for (int i = 0; i < pairs; i++) {
        int seller = 1 + (int) (s_rand () % S_USERS);
        int buyer = 1 + (int) ((seller + s_rand () % (S_USERS - 1)) % S_USERS);
        char s[16], b[16];
        snprintf (s, sizeof s, "user%d", seller);
        snprintf (b, sizeof b, "user%d", buyer);
        settlertest_trade (t, s, b, 1000 + (int64_t) (s_rand () % 4000),
                           140000 + 1000 * (int64_t) (s_rand () % 20), 0);
        s_trades++;
    }
}

//  Starts the next settler, with a crash hook when hook is not NULL ("...=N").
static void s_start (settlertest_t *t, const char *hook, long n)
{
    if (hook) {
        char value[16];
        snprintf (value, sizeof value, "%ld", n);
        setenv (hook, value, 1);
    }
    settlertest_settler (t);
    unsetenv ("MCE_SETTLER_CRASH_AFTER_SEND");
    unsetenv ("MCE_SETTLER_CRASH_BEFORE_SEND");
}

Test (settler_crash, no_trade_paid_twice_or_left_unpaid, .fini = s_fini, .timeout = 600)
{
    settlertest_init (
        &s_t,
        "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = "
        "2592000; fee_ppm = 1500; escrow = false; } );",
        (const char *[]){"--users", "8", "--slot-ms", "100", "--blockhash-validity", "30", NULL});
    settlertest_t *t = &s_t;
    //  a short wait on a silent ledger, so recovery is quick; attempts to spare
    setenv ("MCE_SETTLER_RPC_TIMEOUT_MS", "2000", 1);
    setenv ("MCE_SETTLER_RETRY_ATTEMPTS", "20", 1);
    ledgertest_book_t book;
    cr_assert_eq (ledgertest_book (&t->ledger, &book), 0);
    //  the settler says what it does at debug level: each intent ("settler: trade …"), each
    //  signed transaction and each confirmation ("settler: transaction …") is a moment to die
    setenv ("MCE_LOG_LEVEL", "debug", 1);
    s_start (t, NULL, 0);
    int hooks = 0;
    for (int round = 0; round < S_RANDOM_KILLS + S_HOOK_KILLS; round++) {
        bool hooked = round % 4 == 3; //  this round's settler was started with a hook
        if (!hooked) {
            //  a random moment: after a random number of the settler's steps from now
            int pairs = 10 + (int) (s_rand () % 50);
            int steps = harness_count_log (&t->h, t->settler, S_STEP);
            //  at least this many steps follow: an intent per trade, and two (signed,
            //  confirmed) per transaction of at most 16 settlements
            int reach = pairs + 2 * ((pairs + 15) / 16);
            int target = steps + 1 + (int) (s_rand () % (uint64_t) reach);
            s_load (t, pairs);
            harness_wait_log_count (&t->h, t->settler, S_STEP, target, 5000);
            settlertest_kill (t);
        }
        else {
            //  the hook fires on one of the next sends: trades until it did
            hooks++;
            for (int tries = 0; tries < 40; tries++) {
                s_load (t, 5);
                int steps = harness_count_log (&t->h, t->settler, S_STEP);
                harness_wait_log_count (&t->h, t->settler, S_STEP, steps + 1, 1000);
                if (harness_count_log (&t->h, t->settler, "test hook: exiting") >= hooks)
                    break;
            }
            cr_assert (harness_wait_log_count (&t->h, t->settler, "test hook: exiting", hooks,
                                               HARNESS_DEADLINE_MS),
                       "round %d: the hook fired", round);
            settlertest_kill (t); //  reaps it
        }
        //  the next settler; every fourth one with a hook, alternating the two
        bool next_hooked = (round + 1) % 4 == 3;
        if (next_hooked)
            s_start (t,
                     (round / 4) % 2 ? "MCE_SETTLER_CRASH_BEFORE_SEND"
                                     : "MCE_SETTLER_CRASH_AFTER_SEND",
                     1 + (long) (s_rand () % 3));
        else
            s_start (t, NULL, 0);
    }
    s_load (t, 20);
    //  no more kills: now the whole settler bus, from its first seq
    settlertest_follow (t);
    cr_assert (settlertest_wait_final (t, s_trades, false, 90000), "every trade confirmed");

    //  exactly once, by the settler's own records
    for (uint64_t id = 1; id <= s_trades; id++)
        cr_assert_eq (t->seen[id].confirmed, 1, "trade %llu confirmed %d times",
                      (unsigned long long) id, t->seen[id].confirmed);
    //  and by the chain
    ledgertest_trade_t *trades;
    size_t n = settlertest_journal_trades (&t->h, S_FEE_PPM, &trades);
    cr_assert_eq (n, s_trades);
    uint64_t *ids = malloc (n * sizeof *ids);
    int *counts = malloc (n * sizeof *counts);
    for (size_t i = 0; i < n; i++)
        ids[i] = trades[i].trade_id;
    size_t strays;
    int txs = ledgertest_memo_counts (&t->ledger, ids, n, counts, &strays);
    cr_assert_gt (txs, 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq (counts[i], 1, "trade %llu is in %d landed transactions",
                      (unsigned long long) ids[i], counts[i]);
    cr_assert_eq (strays, 0);
    cr_assert_eq (ledgertest_check_balances (&t->ledger, &book, trades, n), 0);
    json_t *stats = ledgertest_rpc (&t->ledger, "mce_stats", NULL);
    fprintf (stderr,
             "settler crash: %d kills (%d by hook), %zu trades in %d transactions; ledger: %lld "
             "sent, %lld landed, %lld rejected, %lld duplicates\n",
             S_RANDOM_KILLS + S_HOOK_KILLS, S_HOOK_KILLS, n, txs,
             (long long) json_integer_value (json_object_get (stats, "txSent")),
             (long long) json_integer_value (json_object_get (stats, "txLanded")),
             (long long) json_integer_value (json_object_get (stats, "txRejected")),
             (long long) json_integer_value (json_object_get (stats, "txDuplicate")));
    json_decref (stats);
    free (ids);
    free (counts);
    free (trades);
}
