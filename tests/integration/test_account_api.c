/*  test_account_api — balances, withdrawals and the reservation of funds through the HTTP API,
    with the real gateway, matcher and Postgres (docs/clearing.md, Accounts and escrow). Deposits
    are credited the way the settler credits them, with a deposit_credit command on the matcher's
    command port, so this test needs no ledger; the settler's own tests follow a deposit from the
    chain.

    What must hold: a user sees its own balances and no one else's; an order that the balance
    does not cover is refused with 422 insufficient_balance and changes nothing; what an open
    order holds cannot be withdrawn; a withdrawal within the available balance is debited at
    once; bad bodies are refused with a 4xx that names the field; with no settler, a deposit is
    answered 503 and nothing is recorded.
*/
#include "harness.h"
#include "pgtest.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pgtest_t s_server;
static harness_t s_h;
static char s_conninfo[PGTEST_CONNINFO_MAX];

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) || pgtest_export (&s_server))
        fprintf (stderr, "test_account_api: no PostgreSQL: the tests will fail\n");
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
    (void) stats;
    pgtest_stop (&s_server);
}

static void s_fini (void)
{
    harness_cleanup (&s_h);
}

static void s_start (const char *db)
{
    pgtest_t pg;
    cr_assert_eq (pgtest_attach (&pg), 0, "no shared PostgreSQL");
    cr_assert_eq (pgtest_create_db (&pg, db, s_conninfo, sizeof s_conninfo), 0);
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.01\"; lot = \"1\"; min_qty = \"1\"; "
              "max_price = \"10\"; epoch_seconds = 2592000; escrow = true; } );\n"
              "postgres = { url = \"%s\"; };\n",
              s_conninfo);
    harness_init (&s_h, config);
    harness_start (&s_h, "mce-matcher");
    char port[16];
    snprintf (port, sizeof port, "%d", s_h.port_ws); //  free, and unused here
    setenv ("MCE_PERSISTER_METRICS_PORT", port, 1);
    harness_start (&s_h, "mce-persister"); //  the lists of deposits and withdrawals
    unsetenv ("MCE_PERSISTER_METRICS_PORT");
    setenv ("MCE_GATEWAY_DOMAIN", "market.campus.example", 1); //  what challenges name
    harness_start (&s_h, "mce-gateway");
    unsetenv ("MCE_GATEWAY_DOMAIN");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS));
}

static harness_response_t s_call (const char *method, const char *path, const char *token,
                                  const char *body)
{
    harness_response_t resp;
    harness_request (
        s_h.port_http,
        &(harness_request_t){.method = method, .path = path, .token = token, .body = body}, &resp);
    return resp;
}

//  The response's status must be `status`; its body is returned as JSON (caller decrefs).
static json_t *s_expect (const char *method, const char *path, const char *token, const char *body,
                         long status)
{
    harness_response_t r = s_call (method, path, token, body);
    cr_assert_eq (r.status, status, "%s %s %s -> %ld %s", method, path, body ? body : "", r.status,
                  r.body);
    json_error_t err;
    json_t *j = json_loads (r.body ? r.body : "", 0, &err);
    cr_assert_not_null (j, "not JSON: %s", r.body);
    harness_response_free (&r);
    return j;
}

//  The error code of a refusal.
static void s_refused (const char *method, const char *path, const char *token, const char *body,
                       long status, const char *code)
{
    json_t *j = s_expect (method, path, token, body, status);
    const char *got = json_string_value (json_object_get (json_object_get (j, "error"), "code"));
    cr_assert_str_eq (got ? got : "(none)", code, "%s %s: %s", method, path, body);
    json_decref (j);
}

//  Credits a deposit as the settler does, and waits for the matcher's answer.
static void s_credit (const char *user, proto_asset_t asset, int64_t amount, uint64_t id)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, HARNESS_DEADLINE_MS);
    cr_assert_eq (harness_client (&s_h, dealer, HARNESS_KEY, "matcher"), 0);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", s_h.port_commands), 0);
    proto_msg_t cmd = {.kind = PROTO_deposit_credit};
    proto_deposit_credit_t *d = &cmd.deposit_credit;
    d->rid = id;
    d->deposit_id = id;
    snprintf (d->user, sizeof d->user, "%s", user);
    d->asset = asset;
    d->amount = amount;
    d->ts = 1;
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&cmd, &buf), 0);
    cr_assert_eq (zmq_send (zsock_resolve (dealer), buf.data, buf.len, 0), (int) buf.len);
    proto_buf_free (&buf);
    zframe_t *f = zframe_recv (dealer);
    cr_assert_not_null (f, "the matcher answered the deposit");
    proto_msg_t reply;
    cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
    cr_assert_eq (reply.kind, PROTO_ack);
    zframe_destroy (&f);
    zsock_destroy (&dealer);
}

//  Polls the user's balances until asset shows available/reserved (decimal strings).
static void s_wait_balance (const char *token, const char *asset, const char *available,
                            const char *reserved)
{
    int64_t deadline = zclock_mono () + HARNESS_DEADLINE_MS;
    for (;;) {
        json_t *j = s_expect ("GET", "/api/account/balances", token, NULL, 200);
        json_t *b = json_object_get (json_object_get (j, "balances"), asset);
        const char *a = json_string_value (json_object_get (b, "available"));
        const char *r = json_string_value (json_object_get (b, "reserved"));
        bool same = a && r && strcmp (a, available) == 0 && strcmp (r, reserved) == 0;
        if (!same && zclock_mono () > deadline)
            cr_assert_fail ("%s: available %s reserved %s, expected %s %s", asset, a, r, available,
                            reserved);
        json_decref (j);
        if (same)
            return;
        zclock_sleep (20); //  a poll with a deadline: the read model follows the bus
    }
}

Test (account_api, balances_orders_and_withdrawals, .fini = s_fini, .timeout = 120)
{
    s_start ("account_api");
    harness_user_add (s_conninfo, "alice", "user");
    harness_user_add (s_conninfo, "bob", "user");
    char alice[1024], bob[1024];
    harness_token ("alice", "user", alice, sizeof alice);
    harness_token ("bob", "user", bob, sizeof bob);

    //  Nobody without a token; a fresh user has nothing.
    s_refused ("GET", "/api/account/balances", NULL, NULL, 401, "unauthenticated");
    s_wait_balance (alice, "payment", "0", "0");

    //  An unfunded buyer is refused before anything happens.
    const char *buy = "{\"market\":\"campus-1\",\"side\":\"buy\",\"order_type\":\"limit\","
                      "\"energy_amount\":\"5\",\"price\":\"0.20\"}";
    s_refused ("POST", "/api/trading/orders", alice, buy, 422, "insufficient_balance");
    json_t *depth = s_expect ("GET", "/api/market/depth?market=campus-1", NULL, NULL, 200);
    cr_assert_eq (json_array_size (json_object_get (depth, "bids")), 0, "nothing rests");
    json_decref (depth);

    //  Funded with 1.5: the bid holds 1.00 and the rest is available.
    s_credit ("alice", PROTO_ASSET_PAYMENT, 1500000, 1);
    s_wait_balance (alice, "payment", "1.5", "0");
    json_decref (s_expect ("POST", "/api/trading/orders", alice, buy, 201));
    s_wait_balance (alice, "payment", "0.5", "1");

    //  An oversold seller is refused; a covered one trades: alice pays 0.60 for 3 kWh at 0.20
    //  (the resting bid's price), 2 kWh still rest.
    s_credit ("bob", PROTO_ASSET_ENERGY, 3000, 2);
    s_refused ("POST", "/api/trading/orders", bob,
               "{\"market\":\"campus-1\",\"side\":\"sell\",\"order_type\":\"limit\","
               "\"energy_amount\":\"4\",\"price\":\"0.10\"}",
               422, "insufficient_balance");
    json_decref (s_expect ("POST", "/api/trading/orders", bob,
                           "{\"market\":\"campus-1\",\"side\":\"sell\",\"order_type\":\"limit\","
                           "\"energy_amount\":\"3\",\"price\":\"0.10\"}",
                           201));
    s_wait_balance (bob, "energy", "0", "0");
    s_wait_balance (alice, "payment", "0.5", "0.4");

    //  What the resting bid holds cannot be withdrawn; what is available can.
    s_refused ("POST", "/api/account/withdrawals", alice,
               "{\"asset\":\"payment\",\"amount\":\"0.500001\"}", 422, "insufficient_balance");
    json_t *w = s_expect ("POST", "/api/account/withdrawals", alice,
                          "{\"asset\":\"payment\",\"amount\":\"0.5\"}", 201);
    char wid[32];
    snprintf (wid, sizeof wid, "%s", json_string_value (json_object_get (w, "withdrawal_id")));
    cr_assert_str_eq (json_string_value (json_object_get (w, "status")), "requested");
    json_decref (w);
    s_wait_balance (alice, "payment", "0", "0.4");

    //  The list (Postgres, once the persister has the event) shows it to alice alone.
    int64_t deadline = zclock_mono () + HARNESS_DEADLINE_MS;
    for (;;) {
        harness_response_t r = s_call ("GET", "/api/account/withdrawals", alice, NULL);
        cr_assert (r.status == 200 || r.status == 503, "%ld %s", r.status, r.body);
        json_t *list = json_loads (r.body ? r.body : "", 0, NULL); //  503: not migrated yet
        harness_response_free (&r);
        json_t *first = json_array_get (json_object_get (list, "withdrawals"), 0);
        bool there = first && strcmp (json_string_value (json_object_get (first, "withdrawal_id")),
                                      wid) == 0;
        if (there) {
            cr_assert_str_eq (json_string_value (json_object_get (first, "status")), "requested");
            cr_assert_str_eq (json_string_value (json_object_get (first, "amount")), "0.5");
            cr_assert_str_eq (json_string_value (json_object_get (first, "asset")), "payment");
        }
        json_decref (list);
        if (there)
            break;
        cr_assert_lt (zclock_mono (), deadline, "the withdrawal reached the list");
        zclock_sleep (20); //  a poll with a deadline: the persister follows the bus
    }
    json_t *none = s_expect ("GET", "/api/account/withdrawals", bob, NULL, 200);
    cr_assert_eq (json_array_size (json_object_get (none, "withdrawals")), 0, "not bob's");
    json_decref (none);
    none = s_expect ("GET", "/api/account/deposits", bob, NULL, 200);
    cr_assert_eq (json_integer_value (json_object_get (none, "total")), 0);
    json_decref (none);

    //  Bad bodies name the field, and change nothing.
    const char *bad[][3] = {
        {"{\"amount\":\"1\"}", "missing_field", "400"},
        {"{\"asset\":\"gold\",\"amount\":\"1\"}", "bad_field", "400"},
        {"{\"asset\":\"energy\",\"amount\":\"-1\"}", "bad_field", "400"},
        {"{\"asset\":\"energy\",\"amount\":\"0\"}", "not_positive", "400"},
        {"{\"asset\":\"energy\",\"amount\":\"0.0001\"}", "too_precise", "400"},
        {"{\"asset\":\"payment\",\"amount\":0.5}", "bad_field", "400"},
        {"{\"asset\":\"payment\",\"amount\":\"1\",\"user\":\"bob\"}", "unknown_field", "400"},
        {"{\"asset\":\"energy\",\"amount\":\"3000000000000000\"}", "bad_amount", "422"},
        {"[]", "bad_json", "400"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_refused ("POST", "/api/account/withdrawals", bob, bad[i][0], atol (bad[i][2]), bad[i][1]);
    s_wait_balance (bob, "energy", "0", "0");

    //  A wallet challenge names the configured domain, whatever Host the request says: a site
    //  relaying the API cannot have it name itself.
    harness_wallet_t carol;
    harness_wallet (&carol, NULL);
    char ask[256];
    snprintf (ask, sizeof ask, "{\"wallet\":\"%s\",\"username\":\"carol\"}", carol.address);
    json_t *c = s_expect ("POST", "/api/auth/challenge", NULL, ask, 200);
    const char *message = json_string_value (json_object_get (c, "message"));
    cr_assert_not_null (message);
    cr_assert_eq (strncmp (message, "market.campus.example wants you to register", 43), 0, "%s",
                  message);
    json_decref (c);

    //  No settler is configured here: a deposit cannot be recorded, and says so.
    s_refused ("POST", "/api/account/deposits", bob, "{\"asset\":\"energy\",\"amount\":\"1\"}", 503,
               "settler_unavailable");
}

//  A statement for the books: the trades of a window with side, value, fee and net, and the
//  withdrawals, with totals; the same as CSV; refused for a bad window. Postgres answers it,
//  so it is read once the persister has the trade (a poll with a deadline).
Test (account_api, a_statement_of_trades_and_transfers, .fini = s_fini, .timeout = 120)
{
    s_start ("account_statement");
    harness_user_add (s_conninfo, "alice", "user");
    harness_user_add (s_conninfo, "bob", "user");
    char alice[1024], bob[1024];
    harness_token ("alice", "user", alice, sizeof alice);
    harness_token ("bob", "user", bob, sizeof bob);
    s_credit ("alice", PROTO_ASSET_PAYMENT, 5000000, 1);
    s_credit ("bob", PROTO_ASSET_ENERGY, 10000, 2);
    s_wait_balance (alice, "payment", "5", "0");
    s_wait_balance (bob, "energy", "10", "0");
    json_t *o = s_expect ("POST", "/api/trading/orders", bob,
                          "{\"market\":\"campus-1\",\"side\":\"sell\",\"energy_amount\":\"4\","
                          "\"price\":\"0.25\",\"energy_source\":\"solar\"}",
                          201);
    json_decref (o);
    o = s_expect ("POST", "/api/trading/orders", alice,
                  "{\"market\":\"campus-1\",\"side\":\"buy\",\"energy_amount\":\"4\","
                  "\"price\":\"0.25\"}",
                  201);
    json_decref (o);
    o = s_expect ("POST", "/api/account/withdrawals", alice,
                  "{\"asset\":\"payment\",\"amount\":\"1\"}", 201);
    json_decref (o);

    json_t *st = NULL;
    int64_t deadline = zclock_mono () + HARNESS_DEADLINE_MS;
    while (zclock_mono () < deadline) {
        st = s_expect ("GET", "/api/account/statement", alice, NULL, 200);
        if (json_array_size (json_object_get (st, "trades")) == 1 &&
            json_array_size (json_object_get (st, "withdrawals")) == 1)
            break;
        json_decref (st);
        st = NULL;
        zclock_sleep (50); //  a poll with a deadline: the persister writes the trade
    }
    cr_assert_not_null (st, "the trade and the withdrawal reach the statement");
    json_t *t = json_array_get (json_object_get (st, "trades"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (t, "side")), "Buy");
    cr_assert_str_eq (json_string_value (json_object_get (t, "value")), "1");
    cr_assert_str_eq (json_string_value (json_object_get (t, "net")), "-1");
    cr_assert_str_eq (json_string_value (json_object_get (t, "energy_amount")), "4");
    json_t *totals = json_object_get (st, "totals");
    cr_assert_str_eq (json_string_value (json_object_get (totals, "bought")), "4");
    cr_assert_str_eq (json_string_value (json_object_get (totals, "paid")), "1");
    cr_assert_str_eq (json_string_value (json_object_get (totals, "sold")), "0");
    cr_assert (json_is_false (json_object_get (st, "truncated")));
    json_decref (st);
    //  bob, the seller: no fee in this market (fee_ppm 0), the whole value received
    st = s_expect ("GET", "/api/account/statement?format=json", bob, NULL, 200);
    t = json_array_get (json_object_get (st, "trades"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (t, "side")), "Sell");
    cr_assert_str_eq (json_string_value (json_object_get (t, "net")), "1");
    cr_assert_eq (json_array_size (json_object_get (st, "withdrawals")), 0, "not alice's");
    json_decref (st);

    //  the administrators' analytics: the trade by its energy source, the busiest traders
    char root[1024];
    harness_user_add (s_conninfo, "root", "admin");
    harness_token ("root", "admin", root, sizeof root);
    json_t *an = s_expect ("GET", "/api/admin/market/analytics?timeframe=1h", root, NULL, 200);
    json_t *src = json_array_get (json_object_get (an, "by_source"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (src, "energy_source")), "solar");
    cr_assert_str_eq (json_string_value (json_object_get (src, "volume")), "4");
    cr_assert_eq (json_integer_value (json_object_get (src, "trades")), 1);
    json_t *top = json_object_get (an, "top_traders");
    cr_assert_eq (json_array_size (top), 2, "alice and bob");
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (top, 0), "user")),
                      "alice", "equal volumes: by name");
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (top, 0), "bought")), "4");
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (top, 1), "sold")), "4");
    cr_assert_eq (json_integer_value (json_object_get (an, "trades")), 1, "the active epoch's");
    json_decref (an);

    //  CSV: the header, the trade and the withdrawal
    harness_response_t r = s_call ("GET", "/api/account/statement?format=csv", alice, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    char type[64];
    cr_assert (harness_response_header (&r, "Content-Type", type, sizeof type));
    cr_assert_str_eq (type, "text/csv; charset=utf-8");
    cr_assert_eq (strncmp (r.body, "kind,id,time,market,epoch,", 26), 0, "%s", r.body);
    cr_assert_not_null (strstr (r.body, "\ntrade,"), "%s", r.body);
    cr_assert_not_null (strstr (r.body, ",Buy,4,0.25,1,0,-1,"), "%s", r.body);
    cr_assert_not_null (strstr (r.body, "\nwithdrawal,"), "%s", r.body);
    harness_response_free (&r);

    //  a window that ends before it starts, one over a year, a time that is not one
    s_refused ("GET", "/api/account/statement?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
               alice, NULL, 400, "bad_query");
    s_refused ("GET", "/api/account/statement?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
               alice, NULL, 400, "bad_query");
    s_refused ("GET", "/api/account/statement?from=yesterday", alice, NULL, 400, "bad_query");
    s_refused ("GET", "/api/account/statement?format=xml", alice, NULL, 400, "bad_query");
    s_refused ("GET", "/api/account/statement", NULL, NULL, 401, "unauthenticated");
    //  the window excludes what is outside it
    st =
        s_expect ("GET", "/api/account/statement?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
                  alice, NULL, 200);
    cr_assert_eq (json_array_size (json_object_get (st, "trades")), 0);
    json_decref (st);
}
