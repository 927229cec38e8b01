/*  test_settler — trades from a real matcher settle on the local ledger with the real settler:
    afterwards every user's energy and payment balances and the treasury's are exactly the net
    positions the trades imply (to the Wh and the micro-unit, fees rounded half-even), every
    trade id is in the memo of exactly one landed transaction, and the epoch they traded in is
    recorded settled once the matcher cleared it.

    Then what fails: a buyer without the funds (the chain refuses that one instruction; the
    other settlements of its transaction still settle), a buyer whose wallet has no token
    accounts, and a buyer with no wallet at all. Each ends failed with the reason, an admin
    sees them through the settler's command port, and after the last user registers a wallet an
    admin retry settles that trade.
*/
#include "clock.h"
#include "settlertest.h"
#include "solpda.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#define S_FEE_PPM    2500
#define S_EPOCH_SECS 2592000 //  30 days: no gate closure falls inside the test by itself
#define S_GOOD       40

static settlertest_t s_t;

static void s_fini (void)
{
    settlertest_fini (&s_t);
}

static const char s_config[] = "markets = ( { id = \"campus-1\"; tick = \"0.001\"; "
                               "epoch_seconds = 2592000; fee_ppm = 2500; escrow = false; } );";

//  mce_addUser: a wallet with token accounts, as the ledger's setup makes them.
static const char *s_add_user (const char *name, int64_t payment)
{
    char params[160];
    snprintf (params, sizeof params, "{\"name\":\"%s\",\"paymentAmount\":%lld}", name,
              (long long) payment);
    json_t *u = ledgertest_rpc (&s_t.ledger, "mce_addUser", params);
    cr_assert_not_null (u);
    json_decref (u);
    cr_assert_eq (ledgertest_reload (&s_t.ledger), 0);
    json_t *user = ledgertest_user (&s_t.ledger, name);
    cr_assert_not_null (user);
    return json_string_value (json_object_get (user, "wallet"));
}

Test (settler, trades_settle_to_the_net_positions, .fini = s_fini, .timeout = 240)
{
    cr_assert_eq (sodium_init () < 0, 0);
    settlertest_init (&s_t, s_config, (const char *[]){"--users", "6", "--slot-ms", "100", NULL});
    settlertest_t *t = &s_t;
    settlertest_follow (t);

    //  The token accounts the settler derives are the ones the ledger created.
    sol_key_t energy_mint, payment_mint;
    cr_assert_eq (
        sol_key_parse (&energy_mint, ledgertest_field (&t->ledger, "energyMint", "address")), 0);
    cr_assert_eq (
        sol_key_parse (&payment_mint, ledgertest_field (&t->ledger, "paymentMint", "address")), 0);
    size_t i;
    json_t *u;
    json_array_foreach (json_object_get (t->ledger.setup, "users"), i, u)
    {
        sol_key_t wallet, ata;
        cr_assert_eq (sol_key_parse (&wallet, json_string_value (json_object_get (u, "wallet"))),
                      0);
        cr_assert_eq (sol_ata (&wallet, &energy_mint, &ata), 0);
        cr_assert_str_eq (ata.text, json_string_value (json_object_get (u, "energyAccount")));
        cr_assert_eq (sol_ata (&wallet, &payment_mint, &ata), 0);
        cr_assert_str_eq (ata.text, json_string_value (json_object_get (u, "paymentAccount")));
    }

    //  Users for the failures: too poor to pay, a wallet without token accounts, and one who
    //  registers a wallet only later.
    settlertest_register (t, "poor", s_add_user ("poor", 1000));
    const char *late_wallet = s_add_user ("late", 1000000000);
    char late[64];
    snprintf (late, sizeof late, "%s", late_wallet);
    uint8_t pk[32], sk[64];
    crypto_sign_keypair (pk, sk);
    sol_key_t ghost;
    sol_key_set (&ghost, pk);
    settlertest_register (t, "ghost", ghost.text);
    ledgertest_book_t book;
    cr_assert_eq (ledgertest_book (&t->ledger, &book), 0);

    settlertest_settler (t);
    int64_t epoch = settlertest_epoch_now (S_EPOCH_SECS);
    for (int k = 0; k < S_GOOD; k++) {
        char seller[16], buyer[16];
        snprintf (seller, sizeof seller, "user%d", 1 + k % 6);
        snprintf (buyer, sizeof buyer, "user%d", 1 + (k + 1 + k / 6) % 6);
        if (strcmp (seller, buyer) == 0)
            snprintf (buyer, sizeof buyer, "user%d", 1 + (k + 2) % 6);
        //  odd quantities and prices, so that fees need rounding
        settlertest_trade (t, seller, buyer, 1000 + 37 * k, 150000 + 1000 * (k % 7), 0);
    }
    cr_assert (settlertest_wait_final (t, S_GOOD, false, HARNESS_DEADLINE_MS),
               "every trade confirmed");

    //  The epoch clears: with every trade confirmed it is settled.
    settlertest_control (t, PROTO_CONTROL_ACTION_CLEAR_EPOCH);
    cr_assert (settlertest_wait_epoch_settled (t, epoch, HARNESS_DEADLINE_MS), "epoch %lld settled",
               (long long) epoch);
    cr_assert_gt (t->last_settled_mseq, 0, "it names the matcher's clear");

    //  Failures, in the next epoch (this one's gate is closed).
    settlertest_trade (t, "user1", "poor", 2000, 150000, epoch + 1);  //  41: no funds
    settlertest_trade (t, "user2", "user3", 1500, 151000, epoch + 1); //  42
    settlertest_trade (t, "user4", "ghost", 1000, 150000, epoch + 1); //  43: no token account
    settlertest_trade (t, "user5", "late", 1000, 150000, epoch + 1);  //  44: no wallet yet
    settlertest_trade (t, "user6", "user1", 1700, 152000, epoch + 1); //  45
    cr_assert (settlertest_wait_final (t, 45, true, HARNESS_DEADLINE_MS));
    cr_assert_eq (t->seen[42].state, PROTO_SETTLE_STATE_CONFIRMED);
    cr_assert_eq (t->seen[45].state, PROTO_SETTLE_STATE_CONFIRMED);
    cr_assert_eq (t->seen[41].state, PROTO_SETTLE_STATE_FAILED);
    cr_assert_not_null (strstr (t->seen[41].error, "payment buyer→seller: insufficient funds"),
                        "%s", t->seen[41].error);
    cr_assert_eq (t->seen[43].state, PROTO_SETTLE_STATE_FAILED);
    cr_assert_not_null (strstr (t->seen[43].error, "energy seller→buyer"), "%s", t->seen[43].error);
    cr_assert_eq (t->seen[44].state, PROTO_SETTLE_STATE_FAILED);
    cr_assert_not_null (strstr (t->seen[44].error, "user late has no registered wallet"), "%s",
                        t->seen[44].error);
    fprintf (stderr, "settler: failures: [41] %s | [43] %s | [44] %s\n", t->seen[41].error,
             t->seen[43].error, t->seen[44].error);

    //  An admin sees the three, with their reasons.
    proto_msg_t views[8];
    proto_settler_reply_t reply;
    int n = settlertest_admin (
        t, &(proto_settler_command_t){.rid = 7, .action = PROTO_SETTLER_ACTION_LIST}, views, 8,
        &reply);
    cr_assert_eq (n, 3);
    cr_assert_eq (reply.rid, 7);
    cr_assert_eq (reply.status, PROTO_SETTLER_STATUS_OK);
    cr_assert_eq (reply.count, 3);
    cr_assert_eq (views[0].settlement.trade_id, 41);
    cr_assert_eq (views[1].settlement.trade_id, 43);
    cr_assert_eq (views[2].settlement.trade_id, 44);
    cr_assert_str_eq (views[0].settlement.buyer, "poor");
    cr_assert_str_eq (views[0].settlement.error, t->seen[41].error);
    cr_assert_eq (views[0].settlement.state, PROTO_SETTLE_STATE_FAILED);
    //  paging
    n = settlertest_admin (t,
                           &(proto_settler_command_t){.rid = 8,
                                                      .action = PROTO_SETTLER_ACTION_LIST,
                                                      .after = views[0].settlement.settlement_id,
                                                      .limit = 1},
                           views + 3, 1, &reply);
    cr_assert_eq (n, 1);
    cr_assert_eq (views[3].settlement.trade_id, 43);
    cr_assert (reply.more);
    //  what cannot be retried
    n = settlertest_admin (t,
                           &(proto_settler_command_t){.rid = 9,
                                                      .action = PROTO_SETTLER_ACTION_RETRY,
                                                      .settlement_id = t->seen[42].settlement_id},
                           views, 8, &reply);
    cr_assert_eq (reply.status, PROTO_SETTLER_STATUS_NOT_FOUND, "confirmed: not kept");
    cr_assert_eq (n, 0);

    //  The same through the gateway's admin routes (which ask the settler's admin port), and
    //  the settlements in Postgres through the persister (the settler's bus, stream s).
    harness_user_add (t->pg.conninfo, "ops", "admin"); //  the gateway knows its token's user
    harness_start (&t->h, "mce-gateway");
    int persister = harness_start (&t->h, "mce-persister");
    cr_assert (harness_wait_http (&t->h, "/api/health", HARNESS_DEADLINE_MS));
    char admin[1024], user[1024];
    harness_token ("ops", "admin", admin, sizeof admin);
    harness_token ("user1", "user", user, sizeof user);
    harness_response_t r;
    harness_request (t->h.port_http,
                     &(harness_request_t){.method = "GET",
                                          .path = "/api/admin/settlements?state=failed",
                                          .token = admin},
                     &r);
    cr_assert_eq (r.status, 200, "%s", r.body);
    json_t *list = json_loads (r.body, 0, NULL);
    cr_assert_not_null (list, "%s", r.body);
    json_t *items = json_object_get (list, "settlements");
    cr_assert_eq (json_array_size (items), 3, "%s", r.body);
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (items, 0), "trade_id")),
                      "41");
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (items, 0), "error")),
                      t->seen[41].error);
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (items, 0), "buyer")),
                      "poor");
    json_decref (list);
    harness_response_free (&r);
    harness_request (t->h.port_http,
                     &(harness_request_t){.method = "GET",
                                          .path = "/api/admin/settlements?state=settled",
                                          .token = admin},
                     &r);
    cr_assert_eq (r.status, 400, "%s", r.body);
    harness_response_free (&r);
    harness_request (
        t->h.port_http,
        &(harness_request_t){.method = "GET", .path = "/api/admin/settlements", .token = user}, &r);
    cr_assert_eq (r.status, 403, "%s", r.body);
    harness_response_free (&r);
    char path[96];
    snprintf (path, sizeof path, "/api/admin/settlements/%llu/retry",
              (unsigned long long) t->seen[42].settlement_id);
    harness_request (t->h.port_http,
                     &(harness_request_t){.method = "POST", .path = path, .token = admin}, &r);
    cr_assert_eq (r.status, 404, "a confirmed settlement is not in flight: %s", r.body);
    harness_response_free (&r);
    //  Postgres: every trade's settlement, its state and the reason of each failure
    int64_t pg_deadline = clock_mono_ns () + HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    int64_t rows = 0;
    while (clock_mono_ns () < pg_deadline) {
        pg_result_t *res = pg_exec (t->db, "SELECT count(*) FROM settlements", 0, NULL);
        rows = res ? pg_int (res, 0, 0) : 0;
        pg_result_free (&res);
        if (rows == 45)
            break;
        settlertest_next (t, 100); //  bounded wait on the settler bus, not a sleep
    }
    cr_assert_eq (rows, 45, "the persister wrote every settlement");
    pg_result_t *res = pg_exec (t->db,
                                "SELECT count(*) FILTER (WHERE state = 'confirmed'), "
                                "count(*) FILTER (WHERE state = 'failed'), "
                                "(SELECT reason FROM settlements WHERE trade_id = 41), "
                                "(SELECT state FROM epochs ORDER BY epoch LIMIT 1) "
                                "FROM settlements",
                                0, NULL);
    cr_assert_not_null (res, "%s", pg_error (t->db));
    cr_assert_eq (pg_int (res, 0, 0), 42);
    cr_assert_eq (pg_int (res, 0, 1), 3);
    cr_assert_str_eq (pg_value (res, 0, 2), t->seen[41].error);
    cr_assert_str_eq (pg_value (res, 0, 3), "settled", "the settler's word on the epoch");
    pg_result_free (&res);
    (void) persister;

    //  The late user registers; an admin retries; it settles.
    settlertest_register (t, "late", late);
    uint64_t late_sid = t->seen[44].settlement_id;
    n = settlertest_admin (t,
                           &(proto_settler_command_t){.rid = 10,
                                                      .action = PROTO_SETTLER_ACTION_RETRY,
                                                      .user = "ops",
                                                      .settlement_id = late_sid},
                           views, 8, &reply);
    cr_assert_eq (reply.status, PROTO_SETTLER_STATUS_OK, "%s", reply.message);
    cr_assert_eq (n, 1);
    cr_assert_eq (views[0].settlement.settlement_id, late_sid);
    cr_assert_eq (views[0].settlement.state, PROTO_SETTLE_STATE_PENDING);
    cr_assert_eq (views[0].settlement.attempts, 0, "a new retry budget");
    int64_t deadline = clock_mono_ns () + HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (!t->seen[44].confirmed && clock_mono_ns () < deadline)
        settlertest_next (t, 200);
    cr_assert_eq (t->seen[44].state, PROTO_SETTLE_STATE_CONFIRMED);
    n = settlertest_admin (t,
                           &(proto_settler_command_t){.rid = 11,
                                                      .action = PROTO_SETTLER_ACTION_RETRY,
                                                      .settlement_id = t->seen[41].settlement_id},
                           views, 8, &reply);
    cr_assert_eq (reply.status, PROTO_SETTLER_STATUS_OK, "41 may be retried (it fails again)");
    deadline = clock_mono_ns () + HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (t->seen[41].failed < 2 && clock_mono_ns () < deadline)
        settlertest_next (t, 200);
    cr_assert_eq (t->seen[41].failed, 2, "failed again, for the same reason");

    //  The chain: balances and memos.
    ledgertest_trade_t *trades;
    size_t count = settlertest_journal_trades (&t->h, S_FEE_PPM, &trades);
    cr_assert_eq (count, 45);
    cr_assert (settlertest_wait_final (t, 45, true, HARNESS_DEADLINE_MS));
    ledgertest_trade_t settled[64];
    uint64_t ids[64];
    size_t m = 0;
    for (size_t k = 0; k < count; k++)
        if (t->seen[trades[k].trade_id].state == PROTO_SETTLE_STATE_CONFIRMED) {
            settled[m] = trades[k];
            ids[m++] = trades[k].trade_id;
        }
    cr_assert_eq (m, 43, "all but the two that cannot settle");
    cr_assert_eq (ledgertest_check_balances (&t->ledger, &book, settled, m), 0,
                  "balances are the net positions");
    int counts[64];
    size_t strays;
    int txs = ledgertest_memo_counts (&t->ledger, ids, m, counts, &strays);
    cr_assert_gt (txs, 0);
    for (size_t k = 0; k < m; k++)
        cr_assert_eq (counts[k], 1, "trade %llu in %d landed transactions",
                      (unsigned long long) ids[k], counts[k]);
    cr_assert_eq (strays, 0, "no failed trade landed");
    for (uint64_t id = 1; id <= 45; id++)
        cr_assert_leq (t->seen[id].confirmed, 1);
    fprintf (stderr, "settler: %zu trades confirmed in %d transactions\n", m, txs);

    //  The metrics tell the same.
    cr_assert_eq (settlertest_metric (t, "mce_settler_settlements{state=\"failed\"}"), 2);
    cr_assert_eq (settlertest_metric (t, "mce_settler_settlements{state=\"pending\"}"), 0);
    cr_assert_eq (settlertest_metric (t, "mce_settler_ledger_up"), 1);
    cr_assert_geq (settlertest_metric (t, "mce_settler_epochs_settled_total"), 1);
    cr_assert_geq (settlertest_metric (t, "mce_settler_settlements_total{event=\"confirmed\"}"),
                   43);
    free (trades);
}
