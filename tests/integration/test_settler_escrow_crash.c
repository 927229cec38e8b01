/*  test_settler_escrow_crash — deposits and withdrawals keep coming while the settler is killed
    (kill -9) again and again, at random moments and at its three crash hooks (right after the
    signatures are journaled and before anything is sent; right after a sendTransaction request
    returned and before its answer is looked at; right when the matcher acknowledged a credit
    or a close and before the settler journaled it, so that the next settler asks again and the
    matcher answers "duplicate"), and the matcher and the persister are killed too. Meanwhile
    the ledger misbehaves for a while: HTTP 429 and 5xx on a share of the calls, then
    blockhashes that expire before their transactions land, then a pause. Withdrawals of one
    user go to a wallet without token accounts: they fail and are refunded, through the same
    kills.

    At the end, by the settler's bus, the matcher's journal and the chain:
      - every deposit the settler journaled is credited or failed; a credited one is confirmed
        once, in the memo of exactly one landed transaction, and credited by the matcher
        exactly once (one balance event of cause deposit); a failed one never landed and was
        never credited;
      - every withdrawal the matcher debited is paid once (one landed memo, one paid event) or
        refunded once (no landed memo, one refund), never both;
      - the vaults hold exactly what the matcher's balances say (the reconciliation of
        docs/clearing.md, Accounts and escrow), and every user's token accounts moved by exactly
        their deposits and paid withdrawals.
*/
#include "clock.h"
#include "settlertest.h"
#include "soltx.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_USERS     6
#define S_ROUNDS    27
#define S_STEP      "settler: " //  every debug line of the settler is a moment to die
#define S_HOOK      "test hook: exiting"
#define S_ANSWER_MS 3000    //  a deposit's answer, when the settler may be dying
#define S_ROVER     "rover" //  withdraws to a wallet without token accounts

static settlertest_t s_t;

static void s_fini (void)
{
    unsetenv ("MCE_SETTLER_CRASH_AFTER_SEND");
    unsetenv ("MCE_SETTLER_CRASH_BEFORE_SEND");
    unsetenv ("MCE_SETTLER_CRASH_AFTER_ACK");
    unsetenv ("MCE_LOG_LEVEL");
    unsetenv ("MCE_SETTLER_WALLET_TTL_MS");
    unsetenv ("MCE_SETTLER_COMMAND_RESEND_MS");
    unsetenv ("MCE_SETTLER_RPC_TIMEOUT_MS");
    unsetenv ("MCE_SETTLER_RETRY_ATTEMPTS");
    settlertest_fini (&s_t);
}

static uint64_t s_rand (void)
{
    static uint64_t x = 0x853C49E6748FEA9Bull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

//  A deposit that does not insist: the settler may die before it answers (what it journaled
//  the bus tells at the end). The id, or 0.
static uint64_t s_deposit (const char *owner, proto_asset_t asset, int64_t amount)
{
    zsock_t *d = harness_dealer (&s_t.h, "settler", s_t.admin);
    zsock_set_rcvtimeo (d, S_ANSWER_MS);
    zsock_set_linger (d, 0);
    proto_msg_t m = {.kind = PROTO_settler_command};
    proto_settler_command_t *c = &m.settler_command;
    c->rid = s_t.rid++;
    c->action = PROTO_SETTLER_ACTION_DEPOSIT;
    snprintf (c->owner, sizeof c->owner, "%s", owner);
    c->asset = asset;
    c->amount = amount;
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&m, &buf), 0);
    zmq_send (zsock_resolve (d), buf.data, buf.len, 0);
    proto_buf_free (&buf);
    zmsg_t *answer = zmsg_recv (d);
    zsock_destroy (&d);
    uint64_t id = 0;
    zframe_t *last = answer ? zmsg_last (answer) : NULL;
    proto_msg_t reply;
    if (last && proto_decode (zframe_data (last), zframe_size (last), &reply, NULL, 0) == 0 &&
        reply.kind == PROTO_settler_reply && reply.settler_reply.status == PROTO_SETTLER_STATUS_OK)
        id = reply.settler_reply.id;
    zmsg_destroy (&answer);
    return id;
}

//  Some deposits and withdrawals between the users (never more than they hold).
static void s_load (int n, bool deposits)
{
    for (int i = 0; i < n; i++) {
        char user[16];
        snprintf (user, sizeof user, "user%d", 1 + (int) (s_rand () % S_USERS));
        bool energy = s_rand () % 2;
        proto_asset_t asset = energy ? PROTO_ASSET_ENERGY : PROTO_ASSET_PAYMENT;
        int64_t amount =
            energy ? 100 + (int64_t) (s_rand () % 900) : 10000 + (int64_t) (s_rand () % 90000);
        if (deposits && i % 2 == 0)
            s_deposit (user, asset, amount);
        else if (i % 5 == 4)
            settlertest_withdraw (&s_t, S_ROVER, PROTO_ASSET_PAYMENT, 20000, NULL);
        else
            settlertest_withdraw (&s_t, user, asset, amount / 2, NULL);
    }
}

static void s_start (const char *hook, long n)
{
    if (hook) {
        char value[16];
        snprintf (value, sizeof value, "%ld", n);
        setenv (hook, value, 1);
    }
    settlertest_settler (&s_t);
    unsetenv ("MCE_SETTLER_CRASH_AFTER_SEND");
    unsetenv ("MCE_SETTLER_CRASH_BEFORE_SEND");
    unsetenv ("MCE_SETTLER_CRASH_AFTER_ACK");
}

static void s_faults (const char *json)
{
    json_t *r = ledgertest_rpc (&s_t.ledger, "mce_setFaults", json);
    cr_assert_not_null (r, "mce_setFaults %s", json);
    json_decref (r);
}

static int s_matcher_runs = 1;

static void s_restart_matcher (void)
{
    harness_stop (&s_t.h, s_t.matcher, SIGKILL);
    s_t.matcher = harness_start (&s_t.h, "mce-matcher");
    s_matcher_runs++;
    cr_assert (harness_wait_log_count (&s_t.h, s_t.matcher, "commands on", s_matcher_runs,
                                       HARNESS_DEADLINE_MS),
               "matcher run %d", s_matcher_runs);
}

Test (settler_escrow_crash, transfers_once_through_kills, .fini = s_fini, .timeout = 900)
{
    cr_assert_eq (sodium_init () < 0, 0);
    settlertest_init (
        &s_t,
        "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = "
        "2592000; fee_ppm = 1500; escrow = true; } );",
        (const char *[]){"--users", "6", "--slot-ms", "100", "--blockhash-validity", "30", NULL});
    settlertest_t *t = &s_t;
    json_t *u = ledgertest_rpc (&t->ledger, "mce_addUser", "{\"name\":\"" S_ROVER "\"}");
    cr_assert_not_null (u);
    settlertest_register (t, S_ROVER, json_string_value (json_object_get (u, "wallet")));
    json_decref (u);
    cr_assert_eq (ledgertest_reload (&t->ledger), 0);
    setenv ("MCE_SETTLER_RPC_TIMEOUT_MS", "2000", 1);
    setenv ("MCE_SETTLER_RETRY_ATTEMPTS", "20", 1);
    setenv ("MCE_SETTLER_WALLET_TTL_MS", "0", 1);
    setenv ("MCE_SETTLER_COMMAND_RESEND_MS", "200", 1);
    int persister = harness_start (&t->h, "mce-persister");
    ledgertest_book_t book;
    cr_assert_eq (ledgertest_book (&t->ledger, &book), 0);

    //  Balances to withdraw from, credited before the kills begin
    settlertest_follow (t);
    s_start (NULL, 0);
    uint64_t first[2 * S_USERS + 1];
    size_t nfirst = 0;
    for (int i = 1; i <= S_USERS; i++) {
        char user[16];
        snprintf (user, sizeof user, "user%d", i);
        settlertest_deposit (t, user, PROTO_ASSET_ENERGY, 400000, &first[nfirst++], NULL, 0);
        settlertest_deposit (t, user, PROTO_ASSET_PAYMENT, 400000000, &first[nfirst++], NULL, 0);
    }
    settlertest_deposit (t, S_ROVER, PROTO_ASSET_PAYMENT, 50000000, &first[nfirst++], NULL, 0);
    cr_assert (settlertest_wait_transfers (t, PROTO_TRANSFER_KIND_DEPOSIT, first, nfirst,
                                           HARNESS_DEADLINE_MS));
    bus_sub_destroy (&t->bus); //  no subscriber while the settler dies (settlertest.h)
    //  the rover moves to a wallet without token accounts: its withdrawals cannot be paid
    uint8_t pk[32], sk[64];
    crypto_sign_keypair (pk, sk);
    sol_key_t moved;
    sol_key_set (&moved, pk);
    settlertest_register (t, S_ROVER, moved.text);

    setenv ("MCE_LOG_LEVEL", "debug", 1);
    settlertest_kill (t);
    s_start (NULL, 0);
    int hooks = 0;
    for (int round = 0; round < S_ROUNDS; round++) {
        bool hooked = round % 3 == 2; //  this round's settler was started with a hook
        if (round == 6)
            s_faults ("{\"http429Rate\":0.2,\"http5xxRate\":0.05,\"retryAfterS\":1}");
        if (round == 12) //  nothing lands before its blockhash expires
            s_faults ("{\"http429Rate\":0,\"http5xxRate\":0,\"landDelayMs\":1200,"
                      "\"blockhashValidity\":5}");
        if (round == 14)
            s_faults ("{\"landDelayMs\":0,\"blockhashValidity\":30,\"pausedMs\":3000}");
        if (round == 16)
            json_decref (ledgertest_rpc (&t->ledger, "mce_resetFaults", NULL));
        if (!hooked) {
            int steps = harness_count_log (&t->h, t->settler, S_STEP);
            int target = steps + 1 + (int) (s_rand () % 60);
            s_load (6 + (int) (s_rand () % 10), true);
            harness_wait_log_count (&t->h, t->settler, S_STEP, target, 5000);
        }
        else {
            hooks++;
            for (int tries = 0; tries < 40; tries++) {
                //  withdrawals only once the settler may be dying: a deposit would wait for
                //  an answer that does not come
                s_load (3, harness_count_log (&t->h, t->settler, S_HOOK) < hooks);
                int steps = harness_count_log (&t->h, t->settler, "settler: transaction");
                harness_wait_log_count (&t->h, t->settler, "settler: transaction", steps + 1, 1000);
                if (harness_count_log (&t->h, t->settler, S_HOOK) >= hooks)
                    break;
            }
            cr_assert (
                harness_wait_log_count (&t->h, t->settler, S_HOOK, hooks, HARNESS_DEADLINE_MS),
                "round %d: the hook fired", round);
        }
        settlertest_kill (t); //  kill -9 (or reap the one the hook ended)
        if (round % 6 == 4)
            s_restart_matcher ();
        if (round == 7) {
            harness_stop (&t->h, persister, SIGKILL);
            persister = harness_start (&t->h, "mce-persister");
        }
        bool next_hooked = (round + 1) % 3 == 2;
        static const char *hooks_in_turn[3] = {"MCE_SETTLER_CRASH_AFTER_SEND",
                                               "MCE_SETTLER_CRASH_BEFORE_SEND",
                                               "MCE_SETTLER_CRASH_AFTER_ACK"};
        if (next_hooked)
            s_start (hooks_in_turn[(round / 3) % 3], 1 + (long) (s_rand () % 3));
        else
            s_start (NULL, 0);
    }
    //  No more kills: the last ones (their ids are the highest), then the whole bus
    uint64_t last_deposit = 0, last_withdrawal = 0;
    settlertest_deposit (t, "user1", PROTO_ASSET_ENERGY, 1000, &last_deposit, NULL, 0);
    last_withdrawal = settlertest_withdraw (t, "user2", PROTO_ASSET_PAYMENT, 1000, NULL);
    cr_assert_gt (last_deposit, 0);
    cr_assert_gt (last_withdrawal, 0);
    settlertest_follow (t);
    uint64_t *dids = malloc (last_deposit * sizeof *dids);
    uint64_t *wids = malloc (last_withdrawal * sizeof *wids);
    for (uint64_t i = 0; i < last_deposit; i++)
        dids[i] = i + 1;
    for (uint64_t i = 0; i < last_withdrawal; i++)
        wids[i] = i + 1;
    cr_assert (
        settlertest_wait_transfers (t, PROTO_TRANSFER_KIND_DEPOSIT, dids, last_deposit, 120000),
        "every deposit credited or failed");
    cr_assert (settlertest_wait_transfers (t, PROTO_TRANSFER_KIND_WITHDRAWAL, wids, last_withdrawal,
                                           120000),
               "every withdrawal closed or refunded");

    //  The settler's records, the matcher's journal, the chain
    settlertest_matcher_t *m = settlertest_matcher (t);
    uint64_t *credited = malloc (last_deposit * sizeof *credited);
    uint64_t *paid = malloc (last_withdrawal * sizeof *paid);
    size_t ncredited = 0, npaid = 0, nfailed = 0, nrefunded = 0;
    int64_t moved_in[64][2] = {{0}}; //  by book user: deposits credited − withdrawals paid
    for (uint64_t id = 1; id <= last_deposit; id++) {
        settlertest_tseen_t *x = settlertest_tseen (t, PROTO_TRANSFER_KIND_DEPOSIT, id);
        cr_assert_eq (x->pending >= 1, true, "deposit %llu has its intent",
                      (unsigned long long) id);
        if (x->state == PROTO_TRANSFER_STATE_CREDITED) {
            cr_assert_eq (x->confirmed, 1, "deposit %llu confirmed %u times",
                          (unsigned long long) id, x->confirmed);
            cr_assert_eq (x->credited, 1);
            cr_assert_eq (m->credits[id], 1, "deposit %llu credited %u times by the matcher",
                          (unsigned long long) id, m->credits[id]);
            credited[ncredited++] = id;
            for (size_t b = 0; b < book.count; b++)
                if (strcmp (book.users[b].name, x->user) == 0)
                    moved_in[b][x->asset == PROTO_ASSET_PAYMENT] -= x->amount;
        }
        else {
            cr_assert_eq (x->state, PROTO_TRANSFER_STATE_FAILED);
            cr_assert_eq (x->confirmed + x->credited, 0);
            cr_assert_eq (m->credits[id], 0);
            nfailed++;
            fprintf (stderr, "settler escrow crash: deposit %llu failed: %s\n",
                     (unsigned long long) id, x->error);
        }
    }
    for (uint64_t id = 1; id <= last_withdrawal; id++) {
        settlertest_tseen_t *x = settlertest_tseen (t, PROTO_TRANSFER_KIND_WITHDRAWAL, id);
        cr_assert_eq (m->requested[id], 1, "withdrawal %llu", (unsigned long long) id);
        cr_assert_eq (m->paid[id] + m->refunded[id], 1, "withdrawal %llu paid %u, refunded %u",
                      (unsigned long long) id, m->paid[id], m->refunded[id]);
        if (x->state == PROTO_TRANSFER_STATE_CLOSED) {
            cr_assert_eq (x->confirmed, 1);
            cr_assert_eq (x->closed, 1);
            cr_assert_eq (x->failed + x->refunded, 0);
            cr_assert_eq (m->paid[id], 1);
            cr_assert_eq (m->refunds[id], 0);
            paid[npaid++] = id;
            for (size_t b = 0; b < book.count; b++)
                if (strcmp (book.users[b].name, x->user) == 0)
                    moved_in[b][x->asset == PROTO_ASSET_PAYMENT] += x->amount;
        }
        else {
            cr_assert_eq (x->state, PROTO_TRANSFER_STATE_REFUNDED);
            cr_assert_eq (x->refunded, 1);
            cr_assert_eq (x->confirmed + x->closed, 0, "withdrawal %llu never paid",
                          (unsigned long long) id);
            cr_assert_eq (m->refunded[id], 1);
            cr_assert_eq (m->refunds[id], 1);
            cr_assert_str_eq (x->user, S_ROVER, "only the rover's fail: %s", x->error);
            nrefunded++;
        }
    }
    int *counts = malloc ((last_deposit + last_withdrawal) * sizeof *counts);
    size_t strays;
    cr_assert_gt (ledgertest_memo_ids (&t->ledger, "mce:d=", credited, ncredited, counts, &strays),
                  0);
    cr_assert_eq (strays, 0, "no failed deposit landed");
    for (size_t i = 0; i < ncredited; i++)
        cr_assert_eq (counts[i], 1, "deposit %llu landed %d times",
                      (unsigned long long) credited[i], counts[i]);
    cr_assert_gt (ledgertest_memo_ids (&t->ledger, "mce:w=", paid, npaid, counts, &strays), 0);
    cr_assert_eq (strays, 0, "no refunded withdrawal landed");
    for (size_t i = 0; i < npaid; i++)
        cr_assert_eq (counts[i], 1, "withdrawal %llu landed %d times", (unsigned long long) paid[i],
                      counts[i]);
    //  the reconciliation: what the vaults hold is what the matcher's users hold
    int64_t ve = ledgertest_balance (&t->ledger, book.vault_energy);
    int64_t vp = ledgertest_balance (&t->ledger, book.vault_payment);
    cr_assert_eq (ve, m->held[0], "energy vault %lld, users hold %lld", (long long) ve,
                  (long long) m->held[0]);
    cr_assert_eq (vp, m->held[1], "payment vault %lld, users hold %lld", (long long) vp,
                  (long long) m->held[1]);
    for (size_t b = 0; b < book.count; b++) {
        const ledgertest_account_t *a = &book.users[b];
        cr_assert_eq (ledgertest_balance (&t->ledger, a->energy), a->energy0 + moved_in[b][0],
                      "%s energy", a->name);
        cr_assert_eq (ledgertest_balance (&t->ledger, a->payment), a->payment0 + moved_in[b][1],
                      "%s payment", a->name);
    }
    //  every transaction in flight at a crash was rebuilt byte for byte from the journal
    cr_assert_gt (harness_count_log (&t->h, t->settler, "recovered transfers:"), S_ROUNDS);
    cr_assert_eq (harness_count_log (&t->h, t->settler, "rebuilt bytes differ"), 0);
    json_t *stats = ledgertest_rpc (&t->ledger, "mce_stats", NULL);
    fprintf (stderr,
             "settler escrow crash: %d rounds (%d hooks), %zu deposits credited, %zu failed; %zu "
             "withdrawals paid, %zu refunded; matcher: %llu deposit_credit and %llu "
             "withdrawal_close commands; ledger: %lld sent, %lld landed, %lld duplicates, %lld "
             "expired, %lld HTTP 429, %lld HTTP 5xx\n",
             S_ROUNDS, hooks, ncredited, nfailed, npaid, nrefunded,
             (unsigned long long) m->deposit_commands, (unsigned long long) m->close_commands,
             (long long) json_integer_value (json_object_get (stats, "txSent")),
             (long long) json_integer_value (json_object_get (stats, "txLanded")),
             (long long) json_integer_value (json_object_get (stats, "txDuplicate")),
             (long long) json_integer_value (json_object_get (stats, "txExpired")),
             (long long) json_integer_value (json_object_get (stats, "http429")),
             (long long) json_integer_value (json_object_get (stats, "http5xx")));
    cr_assert_gt (json_integer_value (json_object_get (stats, "txExpired")), 0);
    cr_assert_gt (json_integer_value (json_object_get (stats, "http429")), 0);
    cr_assert_gt (nrefunded, 0, "some withdrawals were refunded");
    cr_assert_gt (m->deposit_commands + m->close_commands, ncredited + npaid + nrefunded,
                  "the matcher was asked again about some (and changed nothing)");
    cr_assert_gt (npaid, 10);
    json_decref (stats);
    free (counts);
    free (credited);
    free (paid);
    free (dids);
    free (wids);
    free (m);
    (void) persister;
}
