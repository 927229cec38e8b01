/*  test_settler_escrow — the escrow end to end, with the real ledger, the real matcher and the
    real settler: deposits into the vaults, trades of an escrow market settled out of the
    vaults, withdrawals out of them.

    1. Deposits (the settler's admin port, as the gateway sends them): sellers deposit energy,
       buyers payment. Each is journaled before it is answered, lands on chain once (its id in
       the memo of exactly one landed transaction), and is credited by the matcher once (one
       balance event of cause deposit per deposit id) — the settler journals `credited` with
       the matcher seq of that credit.
    2. Deposits that cannot be: a user with no funds, one who never approved the platform as
       delegate, one without token accounts (each ends failed with the chain's reason, and
       nothing is credited), a user with no wallet (no_wallet), and malformed commands.
    3. Trades of the escrow market settle out of the vaults: the buyer's energy account gets
       the quantity, the seller's payment account value − fee, the treasury the fee, the vaults
       give exactly that — checked token account by token account on the ledger.
    4. Withdrawals (the matcher's withdraw command): paid once from the vault to the user's
       token account, and closed at the matcher once. A withdrawal to a wallet without token
       accounts (the user changed wallet after depositing) fails with the chain's reason and is
       refunded once — never paid.
    5. The metrics say the same, and the vault balances they report are the chain's.
*/
#include "clock.h"
#include "settlertest.h"
#include "soltx.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_FEE_PPM 2500
#define S_PRICE   150000 //  µ/kWh

static settlertest_t s_t;

static void s_fini (void)
{
    unsetenv ("MCE_SETTLER_WALLET_TTL_MS");
    unsetenv ("MCE_SETTLER_GRID_LOW_ENERGY");
    settlertest_fini (&s_t);
}

static const char s_config[] = "markets = ( { id = \"campus-1\"; tick = \"0.001\"; "
                               "epoch_seconds = 2592000; fee_ppm = 2500; escrow = true; } );";

//  mce_addUser with extra JSON fields; registers the wallet unless register_it is false.
static void s_add_user (const char *name, const char *extra, bool register_it)
{
    char params[256];
    snprintf (params, sizeof params, "{\"name\":\"%s\"%s%s}", name, extra ? "," : "",
              extra ? extra : "");
    json_t *u = ledgertest_rpc (&s_t.ledger, "mce_addUser", params);
    cr_assert_not_null (u, "mce_addUser %s", params);
    if (register_it)
        settlertest_register (&s_t, name, json_string_value (json_object_get (u, "wallet")));
    json_decref (u);
}

static int64_t s_chain (const char *user, bool energy)
{
    json_t *u = ledgertest_user (&s_t.ledger, user);
    cr_assert_not_null (u, "%s in the setup", user);
    return ledgertest_balance (&s_t.ledger, json_string_value (json_object_get (
                                                u, energy ? "energyAccount" : "paymentAccount")));
}

static int64_t s_vault (bool energy)
{
    return ledgertest_balance (
        &s_t.ledger, ledgertest_field (&s_t.ledger, "vaults", energy ? "energy" : "payment"));
}

static uint64_t s_deposit_ok (const char *owner, proto_asset_t asset, int64_t amount)
{
    uint64_t id;
    char msg[160];
    proto_settler_status_t st =
        settlertest_deposit (&s_t, owner, asset, amount, &id, msg, sizeof msg);
    cr_assert_eq (st, PROTO_SETTLER_STATUS_OK, "deposit of %s: %s %s", owner,
                  proto_settler_status_name (st), msg);
    cr_assert_gt (id, 0);
    return id;
}

Test (settler_escrow, deposits_trades_withdrawals, .fini = s_fini, .timeout = 300)
{
    cr_assert_eq (sodium_init () < 0, 0);
    settlertest_init (&s_t, s_config, (const char *[]){"--users", "4", "--slot-ms", "100", NULL});
    settlertest_t *t = &s_t;
    s_add_user ("poor", "\"energyAmount\":0,\"paymentAmount\":0", true);
    s_add_user ("noapprove", "\"approve\":false", true);
    s_add_user ("notokens", "\"tokenAccounts\":false", true);
    s_add_user ("mover", NULL, true);
    cr_assert_eq (ledgertest_reload (&t->ledger), 0);
    //  every lookup asks Postgres: the mover's new wallet is seen at once
    setenv ("MCE_SETTLER_WALLET_TTL_MS", "0", 1);
    settlertest_follow (t);
    settlertest_settler (t);

    //  1. Deposits
    int64_t e0 = s_chain ("user1", true), p0 = s_chain ("user3", false);
    int64_t ve0 = s_vault (true), vp0 = s_vault (false);
    cr_assert_eq (ve0, 0, "the vaults start empty");
    cr_assert_eq (vp0, 0);
    uint64_t dep[6];
    dep[0] = s_deposit_ok ("user1", PROTO_ASSET_ENERGY, 300000);
    dep[1] = s_deposit_ok ("user2", PROTO_ASSET_ENERGY, 200000);
    dep[2] = s_deposit_ok ("user3", PROTO_ASSET_PAYMENT, 200000000);
    dep[3] = s_deposit_ok ("user4", PROTO_ASSET_PAYMENT, 150000000);
    dep[4] = s_deposit_ok ("mover", PROTO_ASSET_PAYMENT, 1000000);
    for (int i = 1; i < 5; i++)
        cr_assert_eq (dep[i], dep[i - 1] + 1, "deposit ids are consecutive");
    cr_assert (
        settlertest_wait_transfers (t, PROTO_TRANSFER_KIND_DEPOSIT, dep, 5, HARNESS_DEADLINE_MS),
        "every deposit credited");
    for (int i = 0; i < 5; i++) {
        settlertest_tseen_t *x = settlertest_tseen (t, PROTO_TRANSFER_KIND_DEPOSIT, dep[i]);
        cr_assert_eq (x->state, PROTO_TRANSFER_STATE_CREDITED, "deposit %llu: %s",
                      (unsigned long long) dep[i], x->error);
        cr_assert_eq (x->confirmed, 1);
        cr_assert_eq (x->credited, 1);
        cr_assert_gt (x->mseq, 0, "credited names the matcher seq of the credit");
    }
    cr_assert_eq (s_chain ("user1", true), e0 - 300000);
    cr_assert_eq (s_chain ("user3", false), p0 - 200000000);
    cr_assert_eq (s_vault (true), 500000);
    cr_assert_eq (s_vault (false), 351000000);
    int64_t avail, resv;
    settlertest_balance (t, "user3", PROTO_ASSET_PAYMENT, &avail, &resv);
    cr_assert_eq (avail, 200000000, "the matcher credited it");

    //  2. Deposits that cannot be
    uint64_t bad[3];
    bad[0] = s_deposit_ok ("poor", PROTO_ASSET_PAYMENT, 1000);
    bad[1] = s_deposit_ok ("noapprove", PROTO_ASSET_ENERGY, 1000);
    bad[2] = s_deposit_ok ("notokens", PROTO_ASSET_ENERGY, 1000);
    uint64_t none;
    char msg[160];
    cr_assert_eq (settlertest_deposit (t, "nobody", PROTO_ASSET_ENERGY, 5, &none, msg, sizeof msg),
                  PROTO_SETTLER_STATUS_NO_WALLET, "%s", msg);
    cr_assert_eq (none, 0);
    cr_assert_eq (settlertest_deposit (t, "user1", PROTO_ASSET_ENERGY, 0, &none, msg, sizeof msg),
                  PROTO_SETTLER_STATUS_MALFORMED);
    cr_assert_eq (settlertest_deposit (t, "user1", PROTO_ASSET_NONE, 5, &none, msg, sizeof msg),
                  PROTO_SETTLER_STATUS_MALFORMED);
    cr_assert_eq (settlertest_deposit (t, "", PROTO_ASSET_ENERGY, 5, &none, msg, sizeof msg),
                  PROTO_SETTLER_STATUS_MALFORMED);
    cr_assert (
        settlertest_wait_transfers (t, PROTO_TRANSFER_KIND_DEPOSIT, bad, 3, HARNESS_DEADLINE_MS));
    const char *want[3] = {"insufficient funds", "not the account's approved delegate",
                           "token account missing"};
    for (int i = 0; i < 3; i++) {
        settlertest_tseen_t *x = settlertest_tseen (t, PROTO_TRANSFER_KIND_DEPOSIT, bad[i]);
        cr_assert_eq (x->state, PROTO_TRANSFER_STATE_FAILED);
        cr_assert_not_null (strstr (x->error, want[i]), "deposit %llu: %s",
                            (unsigned long long) bad[i], x->error);
        cr_assert_eq (x->confirmed + x->credited, 0);
    }
    fprintf (stderr, "settler escrow: failed deposits: %s | %s | %s\n",
             settlertest_tseen (t, PROTO_TRANSFER_KIND_DEPOSIT, bad[0])->error,
             settlertest_tseen (t, PROTO_TRANSFER_KIND_DEPOSIT, bad[1])->error,
             settlertest_tseen (t, PROTO_TRANSFER_KIND_DEPOSIT, bad[2])->error);

    //  3. Trades out of escrow
    ledgertest_book_t book;
    cr_assert_eq (ledgertest_book (&t->ledger, &book), 0);
    cr_assert_eq (book.vault_energy0, 500000);
    const char *pairs[][2] = {{"user1", "user3"}, {"user2", "user4"}, {"user1", "user4"},
                              {"user2", "user3"}, {"user1", "user3"}, {"user2", "user4"}};
    for (int k = 0; k < 12; k++)
        cr_assert (settlertest_try_trade (t, pairs[k % 6][0], pairs[k % 6][1], 10000 + 777 * k,
                                          S_PRICE + 1000 * (k % 5)),
                   "trade %d accepted", k);
    cr_assert (settlertest_wait_final (t, 12, false, HARNESS_DEADLINE_MS), "every trade confirmed");
    ledgertest_trade_t *trades;
    size_t count = settlertest_journal_trades (&t->h, S_FEE_PPM, &trades);
    cr_assert_eq (count, 12);
    cr_assert_eq (ledgertest_check_escrow (&t->ledger, &book, trades, count), 0,
                  "buyers, sellers, treasury and vaults as the trades say");
    uint64_t ids[12];
    int counts[12];
    size_t strays;
    for (size_t i = 0; i < count; i++)
        ids[i] = trades[i].trade_id;
    cr_assert_gt (ledgertest_memo_counts (&t->ledger, ids, count, counts, &strays), 0);
    for (size_t i = 0; i < count; i++)
        cr_assert_eq (counts[i], 1, "trade %llu landed %d times", (unsigned long long) ids[i],
                      counts[i]);
    free (trades);

    //  4. Withdrawals
    int64_t e1 = s_chain ("user1", true), ve1 = s_vault (true);
    uint64_t w1 = settlertest_withdraw (t, "user1", PROTO_ASSET_ENERGY, 50000, NULL);
    cr_assert_gt (w1, 0);
    proto_reject_reason_t reason = 0;
    cr_assert_eq (settlertest_withdraw (t, "user1", PROTO_ASSET_ENERGY, 1000000000, &reason), 0);
    cr_assert_eq (reason, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE);
    //  the mover moves to a wallet without token accounts, then withdraws
    uint8_t pk[32], sk[64];
    crypto_sign_keypair (pk, sk);
    sol_key_t moved;
    sol_key_set (&moved, pk);
    settlertest_register (t, "mover", moved.text);
    int64_t vp1 = s_vault (false);
    uint64_t w2 = settlertest_withdraw (t, "mover", PROTO_ASSET_PAYMENT, 400000, NULL);
    cr_assert_gt (w2, 0);
    settlertest_balance (t, "mover", PROTO_ASSET_PAYMENT, &avail, &resv);
    cr_assert_eq (avail, 600000, "debited while it is paid");
    uint64_t ws[2] = {w1, w2};
    cr_assert (
        settlertest_wait_transfers (t, PROTO_TRANSFER_KIND_WITHDRAWAL, ws, 2, HARNESS_DEADLINE_MS));
    settlertest_tseen_t *x1 = settlertest_tseen (t, PROTO_TRANSFER_KIND_WITHDRAWAL, w1);
    cr_assert_eq (x1->state, PROTO_TRANSFER_STATE_CLOSED, "%s", x1->error);
    cr_assert_eq (x1->confirmed, 1);
    cr_assert_eq (x1->closed, 1);
    cr_assert_eq (s_chain ("user1", true), e1 + 50000);
    cr_assert_eq (s_vault (true), ve1 - 50000);
    settlertest_tseen_t *x2 = settlertest_tseen (t, PROTO_TRANSFER_KIND_WITHDRAWAL, w2);
    cr_assert_eq (x2->state, PROTO_TRANSFER_STATE_REFUNDED);
    cr_assert_eq (x2->failed, 1);
    cr_assert_eq (x2->refunded, 1);
    cr_assert_eq (x2->confirmed + x2->closed, 0, "never paid");
    cr_assert_not_null (strstr (x2->error, "token account missing"), "%s", x2->error);
    fprintf (stderr, "settler escrow: failed withdrawal: %s\n", x2->error);
    cr_assert_eq (s_vault (false), vp1, "nothing left the vault");
    settlertest_balance (t, "mover", PROTO_ASSET_PAYMENT, &avail, &resv);
    cr_assert_eq (avail, 1000000, "refunded");

    //  The matcher's journal: every deposit credited once, the failed ones never; each
    //  withdrawal requested once and then paid or refunded once, never both.
    settlertest_matcher_t *m = settlertest_matcher (t);
    for (int i = 0; i < 5; i++)
        cr_assert_eq (m->credits[dep[i]], 1, "deposit %llu credited %u times",
                      (unsigned long long) dep[i], m->credits[dep[i]]);
    for (int i = 0; i < 3; i++)
        cr_assert_eq (m->credits[bad[i]], 0);
    cr_assert_eq (m->requested[w1], 1);
    cr_assert_eq (m->paid[w1], 1);
    cr_assert_eq (m->refunded[w1] + m->refunds[w1], 0);
    cr_assert_eq (m->requested[w2], 1);
    cr_assert_eq (m->paid[w2], 0);
    cr_assert_eq (m->refunded[w2], 1);
    cr_assert_eq (m->refunds[w2], 1);
    free (m);
    //  and the chain: each deposit and withdrawal id in exactly one landed memo, only those
    //  that landed
    int dcounts[5], wcounts[2];
    cr_assert_gt (ledgertest_memo_ids (&t->ledger, "mce:d=", dep, 5, dcounts, &strays), 0);
    cr_assert_eq (strays, 0, "no failed deposit landed");
    for (int i = 0; i < 5; i++)
        cr_assert_eq (dcounts[i], 1);
    cr_assert_gt (ledgertest_memo_ids (&t->ledger, "mce:w=", ws, 2, wcounts, &strays), 0);
    cr_assert_eq (wcounts[0], 1);
    cr_assert_eq (wcounts[1], 0);

    //  5. The metrics
    cr_assert_eq (
        settlertest_metric (t, "mce_settler_transfers_total{kind=\"deposit\",event=\"credited\"}"),
        5);
    cr_assert_eq (
        settlertest_metric (t, "mce_settler_transfers_total{kind=\"deposit\",event=\"failed\"}"),
        3);
    cr_assert_eq (settlertest_metric (
                      t, "mce_settler_transfers_total{kind=\"withdrawal\",event=\"refunded\"}"),
                  1);
    cr_assert_eq (
        settlertest_metric (t, "mce_settler_transfers{kind=\"deposit\",state=\"confirmed\"}"), 0);
    cr_assert_geq (settlertest_metric (t, "mce_settler_matcher_commands_total{event=\"acked\"}"),
                   7);
    //  the vault gauges follow the chain (read every few seconds)
    double want_e = (double) s_vault (true), want_p = (double) s_vault (false);
    int64_t deadline = clock_mono_ns () + HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while ((settlertest_metric (t, "mce_settler_vault_balance{asset=\"energy\"}") != want_e ||
            settlertest_metric (t, "mce_settler_vault_balance{asset=\"payment\"}") != want_p) &&
           clock_mono_ns () < deadline)
        settlertest_next (t, 250); //  a bounded wait on the settler bus, not a sleep
    cr_assert_eq (settlertest_metric (t, "mce_settler_vault_balance{asset=\"energy\"}"), want_e);
    cr_assert_eq (settlertest_metric (t, "mce_settler_vault_balance{asset=\"payment\"}"), want_p);
    fprintf (stderr, "settler escrow: vaults hold %.0f Wh and %.0f µ\n", want_e, want_p);
}

static int64_t s_treasury (void)
{
    return ledgertest_balance (&s_t.ledger,
                               ledgertest_field (&s_t.ledger, "treasury", "paymentAccount"));
}

//  The grid as backstop, end to end: an escrow market whose grid (user4's wallet) sells at
//  0.200 and buys at 0.050. A buy with no ask to meet buys from the grid, a sell with no bid
//  sells to it; both settle on chain with the grid's side paid from or to the grid's own
//  wallet (it never paid into a vault) and the participant's side out of the vault. The
//  grid's balances at the matcher stay untouched: it is exempt from reservation.
Test (settler_escrow, grid_trades_settle_against_the_grids_wallet, .fini = s_fini, .timeout = 300)
{
    cr_assert_eq (sodium_init () < 0, 0);
    settlertest_init (&s_t,
                      "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; "
                      "fee_ppm = 2500; escrow = true; grid_import_price = \"0.2\"; "
                      "grid_feed_in_price = \"0.05\"; grid_user = \"user4\"; } );",
                      (const char *[]){"--users", "4", "--slot-ms", "100", NULL});
    settlertest_t *t = &s_t;
    settlertest_follow (t);
    setenv ("MCE_SETTLER_GRID_LOW_ENERGY", "999", 1); //  kWh: the grid's 1000 will run below it
    settlertest_settler (t);
    uint64_t dep[2] = {s_deposit_ok ("user1", PROTO_ASSET_ENERGY, 100000),
                       s_deposit_ok ("user3", PROTO_ASSET_PAYMENT, 10000000)};
    cr_assert (
        settlertest_wait_transfers (t, PROTO_TRANSFER_KIND_DEPOSIT, dep, 2, HARNESS_DEADLINE_MS));
    int64_t buyer_energy = s_chain ("user3", true), seller_payment = s_chain ("user1", false);
    int64_t grid_energy = s_chain ("user4", true), grid_payment = s_chain ("user4", false);
    int64_t vault_energy = s_vault (true), vault_payment = s_vault (false);
    int64_t treasury = s_treasury ();

    //  user3 bids 0.25 for 5 kWh with no ask: the grid sells at 0.200 (value 1 000 000 µ)
    cr_assert (settlertest_order (t, "user3", PROTO_SIDE_BUY, 5000, 250000));
    //  user1 asks 0.010 for 3 kWh with no bid: the grid buys at 0.050 (value 150 000 µ)
    cr_assert (settlertest_order (t, "user1", PROTO_SIDE_SELL, 3000, 10000));
    cr_assert (settlertest_wait_final (t, 2, false, HARNESS_DEADLINE_MS), "both trades confirmed");

    //  the grid sold: energy from its wallet, payment out of the vault to it
    cr_assert_eq (s_chain ("user3", true), buyer_energy + 5000);
    //  the grid bought: energy out of the vault to it, payment from its wallet
    cr_assert_eq (s_chain ("user1", false), seller_payment + 150000 - 375);
    cr_assert_eq (s_chain ("user4", true), grid_energy - 5000 + 3000);
    cr_assert_eq (s_chain ("user4", false), grid_payment + 1000000 - 2500 - 150000);
    cr_assert_eq (s_vault (true), vault_energy - 3000);
    cr_assert_eq (s_vault (false), vault_payment - 1000000);
    cr_assert_eq (s_treasury (), treasury + 2500 + 375);

    int64_t avail, resv;
    settlertest_balance (t, "user3", PROTO_ASSET_PAYMENT, &avail, &resv);
    cr_assert_eq (avail, 10000000 - 1000000, "the buyer paid the import price, not its limit");
    cr_assert_eq (resv, 0);
    settlertest_balance (t, "user4", PROTO_ASSET_PAYMENT, &avail, &resv);
    cr_assert_eq (avail + resv, 0, "the grid holds no balance at the matcher");
    settlertest_balance (t, "user4", PROTO_ASSET_ENERGY, &avail, &resv);
    cr_assert_eq (avail + resv, 0);

    //  The metrics read the grid's wallet from the chain (every few seconds): its energy is
    //  below the 999 kWh set as low, its money is not below the default 100.
    const char *energy = "mce_settler_grid_balance{market=\"campus-1\",asset=\"energy\"}";
    int64_t want = s_chain ("user4", true);
    int64_t deadline = clock_mono_ns () + HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (settlertest_metric (t, energy) != (double) want && clock_mono_ns () < deadline)
        zclock_sleep (50); //  a poll with a deadline: the settler reads it every 5 s
    cr_assert_eq (settlertest_metric (t, energy), (double) want);
    cr_assert_eq (
        settlertest_metric (t, "mce_settler_grid_balance{market=\"campus-1\",asset=\"payment\"}"),
        (double) s_chain ("user4", false));
    cr_assert_eq (
        settlertest_metric (t, "mce_settler_grid_low{market=\"campus-1\",asset=\"energy\"}"), 1);
    cr_assert_eq (
        settlertest_metric (t, "mce_settler_grid_low{market=\"campus-1\",asset=\"payment\"}"), 0);
}
