/*  test_escrow — the whole path of money through a running system (docs/clearing.md, Accounts and
    escrow), as users and an attacker would take it: the real gateway, matcher, persister and
    settler, Postgres and the local ledger running the SPL Token program.

    Two users prove the wallets the ledger funded and deposit through the API; their deposits
    reach the vaults on chain and their balances. An order the balance does not cover is
    refused, an order that is covered trades, and the trade settles out of the vaults. A
    withdrawal pays the wallet. A user who never deposited can place nothing, and nobody can
    withdraw what their open orders hold. `mcectl reconcile` finds the vaults equal to the
    books, to the unit. Last, a user changes wallet (proven, and with the password) and
    withdraws at once: the new wallet is paid, not the one the settler had cached.
*/
#include "auth.h"
#include "harness.h"
#include "ledgertest.h"
#include "pgtest.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pgtest_t s_pg;
static harness_t s_h;
static ledgertest_t s_ledger;

static void s_fini (void)
{
    harness_cleanup (&s_h);
    ledgertest_stop (&s_ledger);
    pgtest_stop (&s_pg);
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

//  The answer must have this status; its body as JSON (the caller decrefs).
static json_t *s_expect (const char *method, const char *path, const char *token, const char *body,
                         long status)
{
    harness_response_t r = s_call (method, path, token, body);
    cr_assert_eq (r.status, status, "%s %s %s -> %ld %s", method, path, body ? body : "", r.status,
                  r.body);
    json_t *j = json_loads (r.body ? r.body : "", 0, NULL);
    cr_assert_not_null (j, "not JSON: %s", r.body);
    harness_response_free (&r);
    return j;
}

static const char *s_str (json_t *j, const char *key)
{
    return json_string_value (json_object_get (j, key));
}

//  Signs up the ledger's user `name` with the wallet the ledger funded; its token into out.
static void s_sign_up (const char *name, char *token, size_t size)
{
    json_t *u = ledgertest_user (&s_ledger, name);
    cr_assert_not_null (u, "the ledger has %s", name);
    harness_wallet_t w;
    harness_wallet (&w, json_string_value (json_object_get (u, "walletSecretSeedHex")));
    char *answer = NULL;
    long status = harness_sign_up (s_h.port_http, name, "escrow test pw", &w, &answer);
    cr_assert_eq (status, 201, "register %s: %ld %s", name, status, answer);
    free (answer);
    harness_token (name, "user", token, size);
}

//  Polls GET path until the first item of list `key` whose `id_key` is id has status `want`.
static void s_wait_status (const char *token, const char *path, const char *key, const char *id_key,
                           const char *id, const char *want)
{
    int64_t deadline = zclock_mono () + 3 * HARNESS_DEADLINE_MS;
    const char *last = "(none)";
    char seen[64] = "(none)";
    for (;;) {
        harness_response_t r = s_call ("GET", path, token, NULL);
        json_t *j = r.status == 200 ? json_loads (r.body, 0, NULL) : NULL; //  503: not migrated
        harness_response_free (&r);
        size_t i;
        json_t *row;
        bool done = false;
        json_array_foreach (json_object_get (j, key), i, row)
        {
            if (strcmp (s_str (row, id_key), id) != 0)
                continue;
            last = s_str (row, "status");
            snprintf (seen, sizeof seen, "%s", last ? last : "?");
            done = last && strcmp (last, want) == 0;
        }
        json_decref (j);
        if (done)
            return;
        cr_assert_lt (zclock_mono (), deadline, "%s %s never became %s (last %s)", key, id, want,
                      seen);
        zclock_sleep (50); //  a poll with a deadline: the chain, the settler and the persister
    }
}

//  Polls the balances until asset's available is `available`.
static void s_wait_available (const char *token, const char *asset, const char *available)
{
    int64_t deadline = zclock_mono () + 3 * HARNESS_DEADLINE_MS;
    for (;;) {
        json_t *j = s_expect ("GET", "/api/account/balances", token, NULL, 200);
        const char *a =
            s_str (json_object_get (json_object_get (j, "balances"), asset), "available");
        bool done = a && strcmp (a, available) == 0;
        char seen[64];
        snprintf (seen, sizeof seen, "%s", a ? a : "?");
        json_decref (j);
        if (done)
            return;
        cr_assert_lt (zclock_mono (), deadline, "%s available %s, never %s", asset, seen,
                      available);
        zclock_sleep (50);
    }
}

static void s_deposit (const char *token, const char *body, char *id, size_t size)
{
    json_t *j = s_expect ("POST", "/api/account/deposits", token, body, 202);
    snprintf (id, size, "%s", s_str (j, "deposit_id"));
    cr_assert_str_eq (s_str (j, "status"), "pending");
    json_decref (j);
}

Test (escrow, deposit_trade_settle_withdraw_and_reconcile, .fini = s_fini, .timeout = 300)
{
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.01\"; lot = \"0.1\"; min_qty = \"0.1\"; "
              "epoch_seconds = 2592000; fee_ppm = 10000; escrow = true; } );\n"
              "postgres = { url = \"%s\"; };\n",
              s_pg.conninfo);
    harness_init (&s_h, config);
    cr_assert_eq (ledgertest_start (&s_ledger, s_h.dir, (const char *[]){"--users", "4", NULL}), 0);
    setenv ("MCE_SETTLER_RPC_URL", s_ledger.url, 1);
    setenv ("MCE_SETTLER_KEYS_FILE", s_ledger.setup_path, 1);
    char port[16];
    snprintf (port, sizeof port, "%d", s_h.port_ws); //  free, and unused here
    setenv ("MCE_PERSISTER_METRICS_PORT", port, 1);
    setenv ("MCE_SETTLER_MAX_OPEN_DEPOSITS_PER_USER", "2", 1);
    const char *ready[][2] = {{"mce-matcher", "commands on"},
                              {"mce-persister", "Postgres ready"},
                              {"mce-settler", "settler: ready"},
                              {"mce-gateway", "HTTP API on"}};
    for (size_t i = 0; i < 4; i++) {
        int p = harness_start (&s_h, ready[i][0]);
        cr_assert (harness_wait_log (&s_h, p, ready[i][1], HARNESS_DEADLINE_MS), "%s is ready",
                   ready[i][0]);
    }
    char seller[1024], buyer[1024], stranger[1024];
    s_sign_up ("user1", seller, sizeof seller);
    s_sign_up ("user2", buyer, sizeof buyer);
    s_sign_up ("user3", stranger, sizeof stranger);

    //  A user with no balance can place nothing, nor withdraw.
    const char *buy = "{\"market\":\"campus-1\",\"side\":\"buy\",\"energy_amount\":\"2\","
                      "\"price\":\"0.50\"}";
    json_decref (s_expect ("POST", "/api/trading/orders", stranger, buy, 422));
    json_decref (s_expect ("POST", "/api/account/withdrawals", stranger,
                           "{\"asset\":\"payment\",\"amount\":\"1\"}", 422));

    //  Deposits not yet final are bounded per user (settler.max_open_deposits_per_user, 2
    //  here): each costs a transaction whether or not the wallet can pay. Two are taken at once,
    //  the third refused while they are open, and taken once they are done.
    //  The ledger holds its confirmations meanwhile: the first two are still open when the
    //  third is asked, however slowly this test runs (under the sanitizers the chain could
    //  otherwise confirm them between two requests).
    const char *cent = "{\"asset\":\"payment\",\"amount\":\"0.01\"}";
    char open1[32], open2[32], open3[32];
    json_t *held = ledgertest_rpc (&s_ledger, "mce_setFaults", "{\"confirmDelayMs\":600000}");
    cr_assert_not_null (held);
    json_decref (held);
    s_deposit (stranger, cent, open1, sizeof open1);
    s_deposit (stranger, cent, open2, sizeof open2);
    json_t *refused = s_expect ("POST", "/api/account/deposits", stranger, cent, 429);
    cr_assert_str_eq (
        json_string_value (json_object_get (json_object_get (refused, "error"), "code")),
        "too_many_deposits");
    json_decref (refused);
    held = ledgertest_rpc (&s_ledger, "mce_setFaults", "{\"confirmDelayMs\":0}");
    cr_assert_not_null (held);
    json_decref (held);
    s_wait_status (stranger, "/api/account/deposits", "deposits", "deposit_id", open1, "credited");
    s_wait_status (stranger, "/api/account/deposits", "deposits", "deposit_id", open2, "credited");
    s_deposit (stranger, cent, open3, sizeof open3);
    s_wait_status (stranger, "/api/account/deposits", "deposits", "deposit_id", open3, "credited");

    //  Deposits: the seller's energy, the buyer's money, through the chain into the vaults.
    char d1[32], d2[32];
    s_deposit (seller, "{\"asset\":\"energy\",\"amount\":\"5\"}", d1, sizeof d1);
    s_deposit (buyer, "{\"asset\":\"payment\",\"amount\":\"3\"}", d2, sizeof d2);
    s_wait_status (seller, "/api/account/deposits", "deposits", "deposit_id", d1, "credited");
    s_wait_status (buyer, "/api/account/deposits", "deposits", "deposit_id", d2, "credited");
    s_wait_available (seller, "energy", "5");
    s_wait_available (buyer, "payment", "3");

    //  More than the balance covers is refused before it can trade; what it covers trades.
    json_decref (s_expect ("POST", "/api/trading/orders", seller,
                           "{\"market\":\"campus-1\",\"side\":\"sell\",\"energy_amount\":\"6\","
                           "\"price\":\"0.40\"}",
                           422));
    json_decref (s_expect ("POST", "/api/trading/orders", buyer,
                           "{\"market\":\"campus-1\",\"side\":\"buy\",\"energy_amount\":\"7\","
                           "\"price\":\"0.50\"}",
                           422));
    json_decref (s_expect ("POST", "/api/trading/orders", seller,
                           "{\"market\":\"campus-1\",\"side\":\"sell\",\"energy_amount\":\"4\","
                           "\"price\":\"0.40\"}",
                           201));
    //  The buyer bids 5 kWh at 0.50 (2.50 held) and buys 4 at 0.40: 1.60 paid, 1 kWh rests.
    json_t *order = s_expect ("POST", "/api/trading/orders", buyer,
                              "{\"market\":\"campus-1\",\"side\":\"buy\",\"energy_amount\":\"5\","
                              "\"price\":\"0.50\"}",
                              201);
    cr_assert_str_eq (s_str (order, "filled_amount"), "4");
    json_decref (order);
    s_wait_available (buyer, "payment", "0.9");

    //  What the resting bid holds (0.50) cannot be withdrawn; the rest can.
    json_decref (s_expect ("POST", "/api/account/withdrawals", buyer,
                           "{\"asset\":\"payment\",\"amount\":\"1\"}", 422));
    json_t *w = s_expect ("POST", "/api/account/withdrawals", buyer,
                          "{\"asset\":\"payment\",\"amount\":\"0.9\"}", 201);
    char wid[32];
    snprintf (wid, sizeof wid, "%s", s_str (w, "withdrawal_id"));
    json_decref (w);
    s_wait_status (buyer, "/api/account/withdrawals", "withdrawals", "withdrawal_id", wid, "paid");

    //  The trade settled out of the vaults, and the buyer sees it with its order and signature.
    int64_t deadline = zclock_mono () + 3 * HARNESS_DEADLINE_MS;
    for (;;) {
        json_t *h = s_expect ("GET", "/api/market/trades/my-history", buyer, NULL, 200);
        json_t *t = json_array_get (json_object_get (h, "trades"), 0);
        bool done = t && s_str (t, "settlement_status") &&
                    strcmp (s_str (t, "settlement_status"), "confirmed") == 0;
        if (done) {
            cr_assert_not_null (s_str (t, "order_id"));
            cr_assert_not_null (s_str (t, "signature"));
        }
        json_decref (h);
        if (done)
            break;
        cr_assert_lt (zclock_mono (), deadline, "the trade settled");
        zclock_sleep (50);
    }

    //  The vaults hold exactly what the books say: the buyer's 0.50 held by its bid, the
    //  stranger's three deposits of 0.01, the seller's 1 kWh left, nothing else (the trade and
    //  the withdrawal are paid out).
    char *out = NULL;
    int rc = harness_run ("mcectl", (const char *[]){"-c", s_h.config, "--json", "reconcile", NULL},
                          &out);
    cr_assert_eq (rc, 0, "mcectl reconcile: %s", out);
    json_t *rows = json_loads (strchr (out, '[') ? strchr (out, '[') : "", 0, NULL);
    cr_assert_eq (json_array_size (rows), 2, "%s", out);
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row)
    {
        cr_assert_str_eq (s_str (row, "difference"), "0", "%s", out);
        cr_assert_str_eq (s_str (row, "vault_balance"), i == 0 ? "1" : "0.53", "%s", out);
    }
    json_decref (rows);
    fprintf (stderr, "escrow: %s", out);
    free (out);

    //  The same through mcectl, as a user would: the bid still holds 0.50; a stranger's
    //  withdrawal is refused with the gateway's reason and exit status 1.
    rc = harness_run (
        "mcectl", (const char *[]){"-c", s_h.config, "--as", "user2", "--json", "balances", NULL},
        &out);
    cr_assert_eq (rc, 0, "%s", out);
    json_t *b = json_loads (strchr (out, '{') ? strchr (out, '{') : "", 0, NULL);
    cr_assert_str_eq (
        s_str (json_object_get (json_object_get (b, "balances"), "payment"), "reserved"), "0.5",
        "%s", out);
    json_decref (b);
    free (out);
    rc = harness_run ("mcectl",
                      (const char *[]){"-c", s_h.config, "--as", "user3", "withdraw", "--asset",
                                       "payment", "--amount", "1", NULL},
                      &out);
    cr_assert_eq (rc, 1, "%s", out);
    cr_assert_not_null (strstr (out, "insufficient_balance"), "%s", out);
    free (out);

    //  The seller moves to another wallet (user4's, which has token accounts), proven and with
    //  the password, and withdraws at once: the settler, which paid the old wallet for the
    //  trade a moment ago and caches it, pays the new one.
    json_t *fresh = ledgertest_user (&s_ledger, "user4");
    harness_wallet_t w4;
    harness_wallet (&w4, s_str (fresh, "walletSecretSeedHex"));
    char body[512];
    snprintf (body, sizeof body, "{\"wallet\":\"%s\",\"username\":\"user1\"}", w4.address);
    json_t *c = s_expect ("POST", "/api/auth/challenge", NULL, body, 200);
    char signature[AUTH_SIGNATURE_TEXT_MAX];
    const char *message = s_str (c, "message");
    cr_assert_eq (
        auth_wallet_sign (w4.seed, message, strlen (message), signature, sizeof signature), 0);
    json_decref (c);
    snprintf (body, sizeof body,
              "{\"wallet\":\"%s\",\"signature\":\"%s\",\"password\":\"escrow test pw\"}",
              w4.address, signature);
    json_decref (s_expect ("POST", "/api/auth/wallet", seller, body, 200));
    int64_t old_energy = ledgertest_balance (
        &s_ledger, s_str (ledgertest_user (&s_ledger, "user1"), "energyAccount"));
    int64_t new_energy = ledgertest_balance (&s_ledger, s_str (fresh, "energyAccount"));
    w = s_expect ("POST", "/api/account/withdrawals", seller,
                  "{\"asset\":\"energy\",\"amount\":\"1\"}", 201);
    snprintf (wid, sizeof wid, "%s", s_str (w, "withdrawal_id"));
    json_decref (w);
    s_wait_status (seller, "/api/account/withdrawals", "withdrawals", "withdrawal_id", wid, "paid");
    cr_assert_eq (ledgertest_balance (&s_ledger, s_str (fresh, "energyAccount")), new_energy + 1000,
                  "the new wallet is paid the 1 kWh");
    cr_assert_eq (ledgertest_balance (
                      &s_ledger, s_str (ledgertest_user (&s_ledger, "user1"), "energyAccount")),
                  old_energy, "the old wallet is not");
    unsetenv ("MCE_SETTLER_RPC_URL");
    unsetenv ("MCE_SETTLER_KEYS_FILE");
    unsetenv ("MCE_PERSISTER_METRICS_PORT");
    unsetenv ("MCE_SETTLER_MAX_OPEN_DEPOSITS_PER_USER");
}
