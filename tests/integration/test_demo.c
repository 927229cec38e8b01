/*  test_demo — mce-demo end to end: a short simulated day (three hours around noon, 2-second
    auction epochs, 2 prosumers and 3 consumers) against a real matcher, gateway and settler
    with Postgres and the local ledger, in a market with the defaults (escrow on). Every user
    deposits through the chain first (each deposit in exactly one landed transaction), every
    hour's epoch clears with trades, every trade is confirmed on chain (and its id is in the
    memo of exactly one landed transaction), the table has a row per hour, and the chart is an
    SVG document. Then two hours of night with the grid as backstop: no prosumer has anything
    to sell, the grid sells every consumer's demand, and those trades settle on chain too.
*/
#include "harness.h"
#include "ledgertest.h"
#include "pgtest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static harness_t s_h;
static pgtest_t s_pg;
static ledgertest_t s_ledger;

static void s_fini (void)
{
    harness_cleanup (&s_h);
    ledgertest_stop (&s_ledger);
    pgtest_stop (&s_pg);
}

typedef struct {
    uint64_t ids[1000];
    size_t count;
} s_trades_t;

static void s_trade (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len, void *arg)
{
    s_trades_t *all = arg;
    if (msg->kind == PROTO_trade && all->count < sizeof all->ids / sizeof all->ids[0])
        all->ids[all->count++] = msg->trade.trade_id;
}

static char *s_read (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    static char text[1 << 20];
    size_t n = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text[n] = '\0';
    return text;
}

//  Postgres for the gateway's users (the settler finds their wallets there), the local ledger
//  with `users` funded wallets, and the processes the demo talks to, for an auction market
//  with 2-second epochs and `market` added to its settings.
static void s_start (const char *market, const char *users)
{
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    char config[512];
    snprintf (config, sizeof config,
              "postgres = { url = \"%s\"; };\n"
              "markets = ( { id = \"campus-1\"; mode = \"auction\"; epoch_seconds = 2; %s } );\n",
              s_pg.conninfo, market);
    harness_init (&s_h, config);
    harness_t *h = &s_h;
    cr_assert_eq (ledgertest_start (&s_ledger, h->dir,
                                    (const char *[]){"--users", users, "--slot-ms", "100", NULL}),
                  0);
    setenv ("MCE_SETTLER_RPC_URL", s_ledger.url, 1);
    setenv ("MCE_SETTLER_KEYS_FILE", s_ledger.setup_path, 1);
    harness_start (h, "mce-matcher");
    int settler = harness_start (h, "mce-settler");
    harness_start (h, "mce-gateway");
    cr_assert (harness_wait_log (h, settler, "settler: ready", HARNESS_DEADLINE_MS));
    cr_assert (harness_wait_http (h, "/api/health", HARNESS_DEADLINE_MS));
}

//  The JSON object on the last line of the demo's output that starts with '{'.
static json_t *s_result (const char *out)
{
    const char *last = NULL;
    for (const char *p = out; p && *p; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
        if (*p == '{')
            last = p;
    cr_assert_not_null (last, "no JSON line");
    json_error_t err;
    json_t *result = json_loads (last, JSON_DISABLE_EOF_CHECK, &err);
    cr_assert_not_null (result, "%s", err.text);
    return result;
}

Test (demo, a_short_day_clears_and_settles_every_trade, .fini = s_fini, .timeout = 180)
{
    s_start ("", "5");
    harness_t *h = &s_h;

    char svg[sizeof h->dir + 16], svg_arg[sizeof svg + 8];
    snprintf (svg, sizeof svg, "%.*s/demo.svg", (int) sizeof h->dir, h->dir);
    snprintf (svg_arg, sizeof svg_arg, "--svg=%s", svg);
    char *out = NULL;
    int rc = harness_run ("mce-demo",
                          (const char *[]){"-c", h->config, "--wallets", s_ledger.setup_path,
                                           "--hours=3", "--start-hour=11", "--prosumers=2",
                                           "--consumers=3", svg_arg, "--json", NULL},
                          &out);
    cr_assert_not_null (out);
    fprintf (stderr, "%s", out);
    cr_assert_eq (rc, 0, "mce-demo failed");

    //  A progress line as each epoch cleared, and a row per hour in the table.
    static const char *const hours[] = {"11:00", "12:00", "13:00"};
    for (int i = 0; i < 3; i++) {
        char progress[32];
        snprintf (progress, sizeof progress, "demo: %s  epoch ", hours[i]);
        cr_assert_not_null (strstr (out, progress), "no progress line for %s", hours[i]);
        char row[32];
        snprintf (row, sizeof row, "\n%s ", hours[i]);
        cr_assert_not_null (strstr (out, row), "no table row for %s", hours[i]);
    }
    cr_assert_not_null (strstr (out, "\ntotal "));

    //  The JSON on the last line: daylight, so every hour traded, and all of it settled.
    json_t *result = s_result (out);
    cr_assert_str_eq (json_string_value (json_object_get (result, "mode")), "auction");
    json_t *rows = json_object_get (result, "hours");
    cr_assert_eq (json_array_size (rows), 3);
    int64_t trades = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *r = json_array_get (rows, i);
        cr_assert_eq (json_integer_value (json_object_get (r, "hour")), 11 + (int) i);
        cr_assert (json_is_true (json_object_get (r, "cleared")));
        cr_assert_eq (json_integer_value (json_object_get (r, "refused")), 0);
        int64_t n = json_integer_value (json_object_get (r, "trades"));
        cr_assert_gt (n, 0, "hour %zu of daylight made no trade", 11 + i);
        cr_assert (json_is_string (json_object_get (r, "clearing_price")));
        cr_assert_eq (json_integer_value (json_object_get (r, "settled")), n,
                      "hour %zu: every trade settled", 11 + i);
        trades += n;
    }
    json_t *totals = json_object_get (result, "totals");
    cr_assert_eq (json_integer_value (json_object_get (totals, "trades")), trades);
    cr_assert_eq (json_integer_value (json_object_get (totals, "settled")), trades);
    cr_assert_eq (json_integer_value (json_object_get (totals, "failed")), 0);
    json_decref (result);

    //  What the demo counted is what the matcher made and the chain holds: each trade of the
    //  journal in the memo of exactly one landed transaction.
    s_trades_t made = {0};
    cr_assert_geq (harness_journal_events (h, s_trade, &made), 0);
    size_t n = made.count;
    const uint64_t *ids = made.ids;
    cr_assert_eq ((int64_t) n, trades);
    int *counts = calloc (n, sizeof *counts);
    size_t strays = 0;
    cr_assert_geq (ledgertest_memo_counts (&s_ledger, ids, n, counts, &strays), 1);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq (counts[i], 1, "trade %llu in %d landed transactions",
                      (unsigned long long) ids[i], counts[i]);
    cr_assert_eq (strays, 0);
    free (counts);

    //  The market has escrow (the default): before trading, each of the five users deposited
    //  into the vaults, each deposit in exactly one landed transaction (the settler numbers
    //  them from 1).
    uint64_t deposits[5] = {1, 2, 3, 4, 5};
    int landed[5] = {0};
    cr_assert_geq (ledgertest_memo_ids (&s_ledger, "mce:d=", deposits, 5, landed, &strays), 1);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq (landed[i], 1, "deposit %zu in %d landed transactions", i + 1, landed[i]);
    cr_assert_eq (strays, 0);

    //  The chart: one self-contained SVG document with the bars and the price line.
    const char *doc = s_read (svg);
    cr_assert_not_null (doc, "no chart at %s", svg);
    cr_assert_eq (strncmp (doc, "<svg ", 5), 0, "%.40s", doc);
    size_t len = strlen (doc);
    cr_assert (len > 8 && strcmp (doc + len - 7, "</svg>\n") == 0);
    cr_assert_not_null (strstr (doc, "<rect "));
    cr_assert_not_null (strstr (doc, "<polyline "));
    cr_assert_not_null (strstr (doc, "clearing price"));
    free (out);
}

//  Night with the grid as backstop (import 0.24, feed-in 0.07): the prosumers' roofs give
//  nothing, so the grid sells each hour's whole demand at its import price, the table and the
//  JSON say so hour by hour, and every one of those trades settles on chain against the grid's
//  own wallet (the sixth of the ledger's: one more than the demo's users).
Test (demo, a_night_with_the_grid_is_served_and_settled, .fini = s_fini, .timeout = 180)
{
    s_start ("grid_import_price = \"0.24\"; grid_feed_in_price = \"0.07\"; grid_user = \"grid\";",
             "6");
    char svg[sizeof s_h.dir + 24];
    snprintf (svg, sizeof svg, "--svg=%.*s/demo.svg", (int) sizeof s_h.dir, s_h.dir);
    char *out = NULL;
    int rc = harness_run ("mce-demo",
                          (const char *[]){"-c", s_h.config, "--wallets", s_ledger.setup_path,
                                           "--hours=2", "--start-hour=21", "--prosumers=2",
                                           "--consumers=3", svg, "--json", NULL},
                          &out);
    cr_assert_not_null (out);
    fprintf (stderr, "%s", out);
    cr_assert_eq (rc, 0, "mce-demo failed");
    cr_assert_not_null (strstr (out, "grid in"), "the table has the grid's columns");
    json_t *result = s_result (out);
    json_t *rows = json_object_get (result, "hours");
    cr_assert_eq (json_array_size (rows), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *r = json_array_get (rows, i);
        const char *volume = json_string_value (json_object_get (r, "volume"));
        const char *grid_in = json_string_value (json_object_get (r, "grid_in"));
        cr_assert (volume && grid_in && strcmp (volume, "0") != 0, "hour %zu traded", 21 + i);
        cr_assert_str_eq (grid_in, volume, "hour %zu: all of it from the grid", 21 + i);
        cr_assert_str_eq (json_string_value (json_object_get (r, "clearing_price")), "0.24");
        cr_assert_eq (json_integer_value (json_object_get (r, "settled")),
                      json_integer_value (json_object_get (r, "trades")),
                      "hour %zu: every trade settled", 21 + i);
    }
    json_t *totals = json_object_get (result, "totals");
    cr_assert_eq (json_integer_value (json_object_get (totals, "failed")), 0);
    cr_assert_gt (json_integer_value (json_object_get (totals, "settled")), 0);
    json_decref (result);
    free (out);
}
