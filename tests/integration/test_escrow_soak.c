/*  test_escrow_soak — many users at once, some of them adversarial, against the whole
    system with escrow on (docs/clearing.md, Accounts and escrow): the real gateway, matcher,
    persister and settler, Postgres and the local ledger running the SPL Token program.

    200 users prove the wallets the ledger funded and open their accounts with a deposit of each
    asset. Then worker threads, each owning a slice of the users, make them deposit, place
    orders (now and then more than their balance covers), cancel them, withdraw (now and then
    more than is available) and read their balances at random, through the HTTP API as clients
    do. One user in ten also drains its wallet outside the platform: it asks for a deposit of
    each asset and at once signs an SPL Token TransferChecked of everything its token accounts
    hold to an account the platform does not know (the ledger's last user), racing the settler
    for its own tokens; once nothing of its is in flight any more it sweeps again. From then on
    it only buys with what the platform holds for it, and asks for deposits it cannot fund.

    The randomness comes from a fixed seed (printed; MCE_SOAK_SEED replays another): each
    worker draws the same choices on every run; the interleaving of the workers, and so the
    answers they get, vary. MCE_SOAK_OPS (operations per user, 40 by default) makes a longer
    soak.

    When the load has stopped and everything has come to rest:
    - every trade has one settlement and it is confirmed; none ever waited for lack of funds;
    - every deposit asked for after a drain failed for lack of funds and credited nothing, every
      deposit of a funded wallet was credited once with its amount (those that raced a drain
      may end either way, each consistently), every withdrawal was paid or refunded with a
      reason, and Postgres has no deposit or withdrawal the API did not acknowledge;
    - `mcectl reconcile` finds the vaults on chain equal to the books, to the unit;
    - every wallet on chain holds what its history says (start, deposits credited, withdrawals
      paid, trades settled to it, sweeps), the treasury every fee, the sink every sweep; every
      credited deposit, paid withdrawal and trade is in the memo of exactly one landed
      transaction, a failed deposit in none;
    - no balance is negative, each user's reservation is exactly what its open orders hold,
      the gateway shows each user the balances Postgres has, and the drained payment accounts
      are still empty.

    The ledger lands transactions 150 ms after accepting them and confirms them 100 ms later,
    as a cluster would take its time: a sweep can overtake a deposit already sent, and the
    other way round.

    Waiting is on the system's state (HTTP answers, Postgres, the chain), with deadlines.
*/
#include "base58.h"
#include "decimal.h"
#include "grow.h"
#include "harness.h"
#include "ledgertest.h"
#include "pg.h"
#include "pgtest.h"
#include "soltx.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_USERS            200 //  who sign up and trade; the ledger's user S_USERS + 1 is the sink
#define S_WORKERS          8   //  load threads, each with its own slice of the users
#define S_OPS_PER_USER     40  //  random operations per user after the opening deposits
#define S_DRAIN_EVERY      10  //  every tenth user drains its wallet at some point
#define S_DRAIN_PCT        12  //  chance (%) that an operation of such a user is the drain
#define S_LAMPORTS         100000000 //  each wallet's SOL (0.1), for the fees of its transfers
#define S_FEE_PPM          10000
#define S_SEED             0x17C0FFEEull
#define S_WAIT_MS          (6 * HARNESS_DEADLINE_MS) //  for the whole system to come to rest
#define S_SLOT_MS          "100"                     //  the ledger's slot
#define S_LAND_DELAY_MS    "150"                     //  from accepted to landed
#define S_CONFIRM_DELAY_MS "100"                     //  from landed to confirmed

static pgtest_t s_pg;
static harness_t s_h;
static ledgertest_t s_ledger;
static pg_t *s_db; //  the main thread's

//  The chain's addresses the drains need, and what the sink and the treasury held at the start.
static struct {
    sol_key_t token_program, energy_mint, payment_mint, sink_energy, sink_payment;
    int64_t sink_energy0, sink_payment0, treasury0;
} s_chain;

typedef enum { S_DEPOSIT_NORMAL, S_DEPOSIT_RACING, S_DEPOSIT_DRAINED } s_deposit_kind_t;

typedef struct {
    uint64_t id;    //  first: s_id_array reads it
    int64_t amount; //  Wh or µ
    s_deposit_kind_t kind;
} s_deposit_t;

typedef struct {
    char name[16];
    char token[1024];
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    sol_key_t wallet, energy, payment;   //  the owner and its token accounts
    bool drains;                         //  will drain its wallet
    bool draining;                       //  is: its deposits race the drain
    bool drained;                        //  has: its wallet holds nothing and gets nothing
    int64_t energy0, payment0;           //  what its token accounts held at the start
    int64_t swept_energy, swept_payment; //  what it sent to the sink
    uint64_t *orders;                    //  every order the gateway acknowledged
    size_t order_count, order_cap;
    s_deposit_t *deposits;
    size_t deposit_count, deposit_cap;
    uint64_t *withdrawals;
    size_t withdrawal_count, withdrawal_cap;
} s_user_t;

static s_user_t s_users[S_USERS];

//  What a worker did; summed at the end.
typedef struct {
    long orders, orders_refused, cancels, cancels_missed, withdrawals_refused, reads, sweeps,
        retries;
} s_counts_t;

typedef struct {
    int index;
    pthread_t thread;
    bool started;
    bool opening; //  the opening deposits, else the random operations
    uint64_t rand;
    pg_t *pg; //  this thread's own connection, for the drains' waits
    s_counts_t n;
    int errors; //  not Criterion assertions: this runs on a load thread
    char error[512];
} s_worker_t;

static s_worker_t s_workers[S_WORKERS];
static int s_ops_per_user = S_OPS_PER_USER; //  MCE_SOAK_OPS makes a longer soak

static uint64_t s_next (uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int s_rand (s_worker_t *w, int n)
{
    return (int) (s_next (&w->rand) % (uint64_t) n);
}

static void s_error (s_worker_t *w, const char *format, ...)
{
    if (w->errors++ == 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (w->error, sizeof w->error, format, args);
        va_end (args);
        fprintf (stderr, "soak: worker %d: %s\n", w->index, w->error);
    }
}

static void s_fini (void)
{
    for (int i = 0; i < S_WORKERS; i++) {
        if (s_workers[i].started) //  a failed assertion: the load stops before the servers
            pthread_join (s_workers[i].thread, NULL);
        s_workers[i].started = false;
        pg_destroy (&s_workers[i].pg);
    }
    harness_cleanup (&s_h);
    ledgertest_stop (&s_ledger);
    pg_destroy (&s_db);
    pgtest_stop (&s_pg);
    unsetenv ("MCE_SETTLER_RPC_URL"); //  mcectl reconcile reads them too
    unsetenv ("MCE_SETTLER_KEYS_FILE");
    unsetenv ("MCE_PERSISTER_METRICS_PORT");
    for (int i = 0; i < S_USERS; i++) {
        free (s_users[i].orders);
        free (s_users[i].deposits);
        free (s_users[i].withdrawals);
    }
}

//  --------------------------------------------------------------------------------------------
//  The API, as a client uses it

//  One request; 429 and 503 (the gateway or the settler is busy: the command had no effect)
//  are tried again after a pause that grows, as a client would, within the deadline. Returns
//  the status and the body as JSON in *json (NULL when it is not JSON; the caller decrefs).
static long s_http (s_worker_t *w, const char *method, const char *path, const char *token,
                    const char *body, json_t **json)
{
    int64_t deadline = zclock_mono () + HARNESS_DEADLINE_MS;
    for (int attempt = 0;; attempt++) {
        harness_response_t r;
        harness_request (
            s_h.port_http,
            &(harness_request_t){.method = method, .path = path, .token = token, .body = body}, &r);
        if ((r.status == 429 || r.status == 503) && zclock_mono () < deadline) {
            harness_response_free (&r);
            if (w)
                w->n.retries++;
            zclock_sleep (10 << (attempt < 5 ? attempt : 5)); //  a client's backoff
            continue;
        }
        if (json)
            *json = json_loads (r.body ? r.body : "", 0, NULL);
        harness_response_free (&r);
        return r.status;
    }
}

static const char *s_str (json_t *j, const char *key)
{
    return json_string_value (json_object_get (j, key));
}

//  The code of an error answer ({"error": {"code", "message", "field"}}), "" if none.
static const char *s_error_code (json_t *j)
{
    const char *code = s_str (json_object_get (j, "error"), "code");
    return code ? code : "";
}

static uint64_t s_id (json_t *j, const char *key)
{
    const char *text = s_str (j, key);
    return text ? strtoull (text, NULL, 10) : 0;
}

//  Appends value to a growing array; out of memory, nothing sensible is left to do.
#define S_APPEND(array, count, cap, value)                                                         \
    do {                                                                                           \
        if (!grow_to ((void **) &(array), &(cap), (count) + 1, sizeof *(array)))                   \
            abort ();                                                                              \
        (array)[(count)++] = (value);                                                              \
    } while (0)

//  An amount in the API's units: kWh for energy (3 decimals), currency units for payment (6).
static void s_amount_text (bool energy, int64_t units, char *out, size_t size)
{
    int64_t scale = energy ? 1000 : 1000000;
    snprintf (out, size, energy ? "%lld.%03lld" : "%lld.%06lld", (long long) (units / scale),
              (long long) (units % scale));
}

static void s_deposit (s_worker_t *w, s_user_t *u, bool energy, int64_t units)
{
    char amount[32], body[96];
    s_amount_text (energy, units, amount, sizeof amount);
    snprintf (body, sizeof body, "{\"asset\":\"%s\",\"amount\":\"%s\"}",
              energy ? "energy" : "payment", amount);
    json_t *j = NULL;
    long status = s_http (w, "POST", "/api/account/deposits", u->token, body, &j);
    uint64_t id = s_id (j, "deposit_id");
    if (status != 202 || !id)
        s_error (w, "%s deposits %s: %ld %s", u->name, body, status, s_error_code (j));
    else {
        s_deposit_t d = {id, units,
                         u->drained    ? S_DEPOSIT_DRAINED
                         : u->draining ? S_DEPOSIT_RACING
                                       : S_DEPOSIT_NORMAL};
        S_APPEND (u->deposits, u->deposit_count, u->deposit_cap, d);
    }
    json_decref (j);
}

static void s_order (s_worker_t *w, s_user_t *u, bool buy)
{
    //  0.1 to 3 kWh mostly; now and then up to 60, more than most balances cover
    int lots = 1 + s_rand (w, s_rand (w, 10) ? 30 : 600);
    int cents = 30 + s_rand (w, 21);
    char body[160];
    snprintf (body, sizeof body,
              "{\"market\":\"campus-1\",\"side\":\"%s\",\"energy_amount\":\"%d.%d\","
              "\"price\":\"0.%02d\"}",
              buy ? "buy" : "sell", lots / 10, lots % 10, cents);
    json_t *j = NULL;
    long status = s_http (w, "POST", "/api/trading/orders", u->token, body, &j);
    uint64_t id = s_id (j, "order_id");
    if (status == 201 && id) {
        S_APPEND (u->orders, u->order_count, u->order_cap, id);
        w->n.orders++;
    }
    else if (status == 422 && strcmp (s_error_code (j), "insufficient_balance") == 0)
        w->n.orders_refused++; //  a business outcome: the balance does not cover it
    else
        s_error (w, "%s orders %s: %ld %s", u->name, body, status, s_error_code (j));
    json_decref (j);
}

//  Cancels order id; a filled (or already cancelled) one is answered 404.
static void s_cancel (s_worker_t *w, s_user_t *u, uint64_t id)
{
    char path[64];
    snprintf (path, sizeof path, "/api/trading/orders/%llu", (unsigned long long) id);
    json_t *j = NULL;
    long status = s_http (w, "DELETE", path, u->token, NULL, &j);
    if (status == 200)
        w->n.cancels++;
    else if (status == 404 && strcmp (s_error_code (j), "order_not_found") == 0)
        w->n.cancels_missed++;
    else
        s_error (w, "%s cancels %s: %ld %s", u->name, path, status, s_error_code (j));
    json_decref (j);
}

static void s_withdraw (s_worker_t *w, s_user_t *u)
{
    bool energy = s_rand (w, 2);
    char amount[32], body[96];
    //  0.1 to 5 mostly; now and then up to 60, often more than is available
    int tenths = 1 + s_rand (w, s_rand (w, 5) ? 50 : 600);
    s_amount_text (energy, tenths * (energy ? 100 : 100000), amount, sizeof amount);
    snprintf (body, sizeof body, "{\"asset\":\"%s\",\"amount\":\"%s\"}",
              energy ? "energy" : "payment", amount);
    json_t *j = NULL;
    long status = s_http (w, "POST", "/api/account/withdrawals", u->token, body, &j);
    uint64_t id = s_id (j, "withdrawal_id");
    if (status == 201 && id) {
        S_APPEND (u->withdrawals, u->withdrawal_count, u->withdrawal_cap, id);
    }
    else if (status == 422 && strcmp (s_error_code (j), "insufficient_balance") == 0)
        w->n.withdrawals_refused++; //  more than is available (open orders hold the rest)
    else
        s_error (w, "%s withdraws %s: %ld %s", u->name, body, status, s_error_code (j));
    json_decref (j);
}

//  Reads the balances: none is ever negative.
static void s_read (s_worker_t *w, s_user_t *u)
{
    json_t *j = NULL;
    long status = s_http (w, "GET", "/api/account/balances", u->token, NULL, &j);
    if (status != 200)
        s_error (w, "%s reads its balances: %ld", u->name, status);
    const char *key;
    json_t *asset;
    json_object_foreach (json_object_get (j, "balances"), key, asset)
    {
        const char *a = s_str (asset, "available"), *r = s_str (asset, "reserved");
        if (!a || !r || *a == '-' || *r == '-')
            s_error (w, "%s's %s balance: available %s, reserved %s", u->name, key, a ? a : "?",
                     r ? r : "?");
    }
    w->n.reads++;
    json_decref (j);
}

//  --------------------------------------------------------------------------------------------
//  Draining a wallet on the ledger, as its owner, outside the platform

static void s_racing_deposits (s_worker_t *w, s_user_t *u)
{
    s_deposit (w, u, true, (1 + s_rand (w, 10)) * 1000);
    s_deposit (w, u, false, (1 + s_rand (w, 10)) * 1000000);
}

//  Sends what u's token accounts hold to the sink in one transaction u signs and pays for, and
//  waits until the chain confirms it; with `deposit`, u asks for a deposit of each asset while
//  that transaction is on its way. A deposit landing first makes it fail (the amounts are
//  stale): it is read and sent again. 0, or -1 (w has the reason).
static int s_sweep (s_worker_t *w, s_user_t *u, bool deposit)
{
    int64_t deadline = zclock_mono () + HARNESS_DEADLINE_MS;
    while (zclock_mono () < deadline) {
        int64_t energy = ledgertest_balance (&s_ledger, u->energy.text);
        int64_t payment = ledgertest_balance (&s_ledger, u->payment.text);
        json_t *latest =
            ledgertest_rpc (&s_ledger, "getLatestBlockhash", "[{\"commitment\":\"confirmed\"}]");
        const char *hash = s_str (json_object_get (latest, "value"), "blockhash");
        uint8_t blockhash[SOL_HASH_BYTES];
        bool ok =
            energy >= 0 && payment >= 0 && hash &&
            base58_decode (hash, strlen (hash), blockhash, sizeof blockhash) == SOL_HASH_BYTES;
        json_decref (latest);
        if (!ok) {
            s_error (w, "%s: the ledger did not answer its balances or a blockhash", u->name);
            return -1;
        }
        if (energy == 0 && payment == 0)
            return 0;
        sol_msg_t msg;
        sol_msg_init (&msg, &u->wallet);
        if ((energy && sol_msg_transfer_checked (&msg, &s_chain.token_program, &u->energy,
                                                 &s_chain.energy_mint, &s_chain.sink_energy,
                                                 &u->wallet, (uint64_t) energy, 3)) ||
            (payment && sol_msg_transfer_checked (&msg, &s_chain.token_program, &u->payment,
                                                  &s_chain.payment_mint, &s_chain.sink_payment,
                                                  &u->wallet, (uint64_t) payment, 6)))
            abort (); //  two instructions always fit
        uint8_t message[SOL_TX_MAX], tx[SOL_TX_MAX], sig[SOL_SIG_BYTES];
        int len = sol_msg_compile (&msg, blockhash, message, sizeof message);
        int n = len < 0 ? -1 : sol_tx_sign (message, (size_t) len, u->secret, tx, sizeof tx, sig);
        char params[2 * SOL_TX_MAX + 128], signature[SOL_SIG_TEXT];
        if (n < 0 || base58_encode (sig, sizeof sig, signature, sizeof signature) < 0)
            abort ();
        size_t o = (size_t) snprintf (params, sizeof params, "[\"");
        sodium_bin2base64 (params + o, sizeof params - o, tx, (size_t) n,
                           sodium_base64_VARIANT_ORIGINAL);
        o = strlen (params);
        snprintf (params + o, sizeof params - o,
                  "\",{\"encoding\":\"base64\",\"preflightCommitment\":\"confirmed\"}]");
        json_t *sent = ledgertest_rpc (&s_ledger, "sendTransaction", params);
        bool accepted = json_is_string (sent);
        json_decref (sent);
        if (!accepted)
            continue; //  refused in preflight (printed): a deposit moved the balance first
        if (deposit)
            s_racing_deposits (w, u);
        deposit = false;
        snprintf (params, sizeof params, "[[\"%s\"],{\"searchTransactionHistory\":true}]",
                  signature);
        for (;;) {
            json_t *st = ledgertest_rpc (&s_ledger, "getSignatureStatuses", params);
            json_t *s = json_array_get (json_object_get (st, "value"), 0); //  null: not landed
            s = json_is_object (s) ? s : NULL;
            const char *level = s_str (s, "confirmationStatus");
            bool failed = s && !json_is_null (json_object_get (s, "err"));
            bool confirmed = level && !failed && strcmp (level, "processed") != 0;
            json_decref (st);
            if (confirmed) {
                u->swept_energy += energy;
                u->swept_payment += payment;
                w->n.sweeps++;
                return 0;
            }
            if (failed || zclock_mono () > deadline)
                break;
            zclock_sleep (20); //  a poll with a deadline: the ledger confirms it
        }
    }
    s_error (w, "%s could not drain its wallet", u->name);
    return -1;
}

//  A Postgres array literal ("{1,2,3}") of the n ids that start items of stride bytes; the
//  caller frees it.
static char *s_id_array (const void *items, size_t n, size_t stride)
{
    char *text = malloc (24 * n + 3);
    if (!text)
        abort ();
    size_t o = 0;
    text[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        memcpy (&id, (const char *) items + i * stride, sizeof id);
        o += (size_t) sprintf (text + o, "%s%llu", i ? "," : "", (unsigned long long) id);
    }
    text[o++] = '}';
    text[o] = '\0';
    return text;
}

static int64_t s_pg_int (s_worker_t *w, const char *sql, const char *a, const char *b)
{
    const char *params[2] = {a, b};
    pg_result_t *r = pg_exec (w->pg, sql, b ? 2 : 1, params);
    if (!r) {
        s_error (w, "%s: %s", sql, pg_error (w->pg));
        return -1;
    }
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

//  What of u's is still moving: orders not final, its trades not confirmed on chain, deposits
//  and withdrawals not final, as Postgres shows them (an id it has not seen yet counts).
static int64_t s_in_flight (s_worker_t *w, s_user_t *u)
{
    char *orders = s_id_array (u->orders, u->order_count, sizeof *u->orders);
    char *deposits = s_id_array (u->deposits, u->deposit_count, sizeof *u->deposits);
    char *withdrawals = s_id_array (u->withdrawals, u->withdrawal_count, sizeof *u->withdrawals);
    char n[3][24];
    snprintf (n[0], sizeof n[0], "%zu", u->order_count);
    snprintf (n[1], sizeof n[1], "%zu", u->deposit_count);
    snprintf (n[2], sizeof n[2], "%zu", u->withdrawal_count);
    int64_t left =
        s_pg_int (w,
                  "SELECT $2::bigint - count(*) FROM orders WHERE order_id = ANY ($1::bigint[]) "
                  "AND status NOT IN ('open', 'partially_filled')",
                  orders, n[0]) +
        s_pg_int (w,
                  "SELECT count(*) FROM trades t LEFT JOIN settlements s USING (trade_id) "
                  "WHERE (t.buyer = $1 OR t.seller = $1) AND s.state IS DISTINCT FROM "
                  "'confirmed'",
                  u->name, NULL) +
        s_pg_int (w,
                  "SELECT $2::bigint - count(*) FROM deposits WHERE deposit_id = ANY "
                  "($1::bigint[]) AND state IN ('credited', 'failed')",
                  deposits, n[1]) +
        s_pg_int (w,
                  "SELECT $2::bigint - count(*) FROM withdrawals WHERE withdrawal_id = ANY "
                  "($1::bigint[]) AND state IN ('paid', 'refunded')",
                  withdrawals, n[2]);
    free (orders);
    free (deposits);
    free (withdrawals);
    return left;
}

//  u's deposits not final yet race the drain: either end is right.
static void s_mark_racing (s_worker_t *w, s_user_t *u)
{
    char *ids = s_id_array (u->deposits, u->deposit_count, sizeof *u->deposits);
    const char *params[1] = {ids};
    pg_result_t *r = pg_exec (w->pg,
                              "SELECT deposit_id FROM deposits WHERE deposit_id = ANY "
                              "($1::bigint[]) AND state IN ('credited', 'failed')",
                              1, params);
    free (ids);
    if (!r) {
        s_error (w, "%s: %s", u->name, pg_error (w->pg));
        return;
    }
    for (size_t i = 0; i < u->deposit_count; i++) {
        bool final = false;
        for (int k = 0; k < pg_rows (r) && !final; k++)
            final = (uint64_t) pg_int (r, k, 0) == u->deposits[i].id;
        if (!final)
            u->deposits[i].kind = S_DEPOSIT_RACING;
    }
    pg_result_free (&r);
}

//  Cancels u's open orders: those it placed, and any the gateway lists as still open.
static void s_cancel_all (s_worker_t *w, s_user_t *u)
{
    for (size_t i = 0; i < u->order_count; i++)
        s_cancel (w, u, u->orders[i]);
    const char *lists[] = {"/api/trading/orders?status=open&limit=1000",
                           "/api/trading/orders?status=partially_filled&limit=1000"};
    for (int k = 0; k < 2; k++) {
        json_t *j = NULL;
        if (s_http (w, "GET", lists[k], u->token, NULL, &j) != 200)
            s_error (w, "%s lists its orders: not answered", u->name);
        size_t i;
        json_t *o;
        json_array_foreach (json_object_get (j, "orders"), i, o)
        {
            s_error (w, "%s: order %s is open after every order was cancelled", u->name,
                     s_str (o, "order_id"));
            s_cancel (w, u, s_id (o, "order_id"));
        }
        json_decref (j);
    }
}

//  The drain: no orders left to trade into the wallet; a deposit of each asset asked for just
//  before everything is taken out of the wallet at once, or while that transfer is on its way
//  (racing those deposits, and u's withdrawals and settlements); then once more when nothing
//  of u's is in flight. Afterwards nothing pays into its payment account: u only buys.
static void s_drain (s_worker_t *w, s_user_t *u)
{
    s_mark_racing (w, u);
    u->draining = true;
    s_cancel_all (w, u);
    bool deposits_first = s_rand (w, 2);
    if (deposits_first)
        s_racing_deposits (w, u);
    if (s_sweep (w, u, !deposits_first))
        return;
    int64_t deadline = zclock_mono () + S_WAIT_MS, left;
    while ((left = s_in_flight (w, u)) != 0) {
        if (w->errors)
            return;
        if (zclock_mono () > deadline) {
            s_error (w, "%s: %lld transfers, trades or orders still in flight", u->name,
                     (long long) left);
            return;
        }
        zclock_sleep (50); //  a poll with a deadline: the settler, the chain, the persister
    }
    if (s_sweep (w, u, false))
        return;
    u->draining = false;
    u->drained = true;
}

//  --------------------------------------------------------------------------------------------
//  The load

static void s_operate (s_worker_t *w, s_user_t *u)
{
    int dice = s_rand (w, 100);
    if (u->drains && !u->drained && dice < S_DRAIN_PCT) {
        s_drain (w, u);
        return;
    }
    if (u->drained) {
        //  buys paid out of escrow; deposits its wallet can no longer fund
        if (dice < 50)
            s_order (w, u, true);
        else if (dice < 75 && u->order_count)
            s_cancel (w, u, u->orders[s_rand (w, (int) u->order_count)]);
        else
            s_deposit (w, u, false, (1 + s_rand (w, 10)) * 1000000);
        return;
    }
    if (dice < 40)
        s_order (w, u, s_rand (w, 2));
    else if (dice < 55 && u->order_count)
        s_cancel (w, u, u->orders[s_rand (w, (int) u->order_count)]);
    else if (dice < 70) {
        bool energy = s_rand (w, 2);
        s_deposit (w, u, energy, (1 + s_rand (w, 10)) * (energy ? 1000 : 1000000));
    }
    else if (dice < 85)
        s_withdraw (w, u);
    else
        s_read (w, u);
}

static void *s_work (void *arg)
{
    s_worker_t *w = arg;
    if (w->opening) {
        //  each user opens its account with some energy and some money
        for (int i = w->index; i < S_USERS; i += S_WORKERS) {
            s_deposit (w, &s_users[i], true, (30 + s_rand (w, 31)) * 1000);
            s_deposit (w, &s_users[i], false, (30 + s_rand (w, 31)) * 1000000);
        }
        return NULL;
    }
    int mine = (S_USERS - w->index + S_WORKERS - 1) / S_WORKERS;
    for (int k = 0; k < s_ops_per_user * mine && w->errors == 0; k++)
        s_operate (w, &s_users[w->index + S_WORKERS * s_rand (w, mine)]);
    //  every user meant to drain has, and tries to deposit what it no longer has
    for (int i = w->index; i < S_USERS && w->errors == 0; i += S_WORKERS) {
        s_user_t *u = &s_users[i];
        if (u->drains && !u->drained)
            s_drain (w, u);
        for (int d = 0; u->drained && d < 2; d++)
            s_deposit (w, u, false, (1 + s_rand (w, 10)) * 1000000);
    }
    return NULL;
}

//  Runs the workers (opening deposits, or the random operations) until all are done.
static void s_run_workers (bool opening, uint64_t seed)
{
    for (int i = 0; i < S_WORKERS; i++) {
        s_worker_t *w = &s_workers[i];
        w->index = i;
        w->opening = opening;
        w->rand = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t) (i + 1 + (opening ? 0 : S_WORKERS)));
        s_next (&w->rand);
        if (!w->pg) {
            char err[256];
            w->pg = pg_connect (s_pg.conninfo, 5000, err, sizeof err);
            cr_assert_not_null (w->pg, "%s", err);
        }
        cr_assert_eq (pthread_create (&w->thread, NULL, s_work, w), 0);
        w->started = true;
    }
    for (int i = 0; i < S_WORKERS; i++) {
        pthread_join (s_workers[i].thread, NULL);
        s_workers[i].started = false;
    }
    for (int i = 0; i < S_WORKERS; i++)
        cr_assert_eq (s_workers[i].errors, 0, "worker %d: %d errors, the first: %s", i,
                      s_workers[i].errors, s_workers[i].error);
}

//  --------------------------------------------------------------------------------------------
//  The checks, on the main thread

static int64_t s_query_int (const char *sql)
{
    pg_result_t *r = pg_exec (s_db, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (s_db));
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

//  Polls sql until it answers want, with a deadline.
static void s_wait_query (const char *sql, int64_t want)
{
    int64_t deadline = zclock_mono () + S_WAIT_MS, got = -1;
    while (zclock_mono () < deadline) {
        got = s_query_int (sql);
        if (got == want)
            return;
        zclock_sleep (50); //  a poll with a deadline: the settler, the chain, the persister
    }
    cr_assert_fail ("%s: %lld, expected %lld", sql, (long long) got, (long long) want);
}

static int s_cmp_deposit (const void *a, const void *b)
{
    uint64_t x = ((const s_deposit_t *) a)->id, y = ((const s_deposit_t *) b)->id;
    return x < y ? -1 : x > y;
}

static int s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

typedef struct {
    long credited, failed, racing_credited, racing_failed, drained_failed;
} s_deposit_outcomes_t;

//  Every deposit the API acknowledged ended as its kind says, and nothing else was deposited.
static void s_check_deposits (s_deposit_t *all, size_t n, s_deposit_outcomes_t *out)
{
    qsort (all, n, sizeof *all, s_cmp_deposit);
    pg_result_t *r = pg_exec (s_db,
                              "SELECT d.deposit_id, d.state, d.error, d.amount, coalesce "
                              "(m.moves, 0), coalesce (m.credited, 0) FROM deposits d LEFT "
                              "JOIN (SELECT ref, count(*) AS moves, sum (d_available) AS "
                              "credited FROM balance_movements WHERE cause = 'deposit' GROUP BY "
                              "ref) m ON m.ref = d.deposit_id",
                              0, NULL);
    cr_assert_not_null (r, "%s", pg_error (s_db));
    cr_assert_eq ((size_t) pg_rows (r), n, "Postgres has %d deposits, the API acknowledged %zu",
                  pg_rows (r), n);
    for (int k = 0; k < pg_rows (r); k++) {
        s_deposit_t key = {.id = (uint64_t) pg_int (r, k, 0)};
        s_deposit_t *d = bsearch (&key, all, n, sizeof *all, s_cmp_deposit);
        cr_assert_not_null (d, "deposit %llu was never acknowledged", (unsigned long long) key.id);
        const char *state = pg_value (r, k, 1), *error = pg_value (r, k, 2);
        int64_t moves = pg_int (r, k, 4), credited = pg_int (r, k, 5);
        cr_assert_eq (pg_int (r, k, 3), d->amount, "deposit %llu's amount",
                      (unsigned long long) d->id);
        bool ok = strcmp (state, "credited") == 0;
        if (ok) {
            cr_assert (d->kind != S_DEPOSIT_DRAINED,
                       "deposit %llu from a drained wallet was credited",
                       (unsigned long long) d->id);
            cr_assert (moves == 1 && credited == d->amount,
                       "deposit %llu credited %lld in %lld movements, not %lld once",
                       (unsigned long long) d->id, (long long) credited, (long long) moves,
                       (long long) d->amount);
            if (d->kind == S_DEPOSIT_RACING)
                out->racing_credited++;
            else
                out->credited++;
            continue;
        }
        cr_assert_str_eq (state, "failed", "deposit %llu is %s", (unsigned long long) d->id, state);
        cr_assert (d->kind != S_DEPOSIT_NORMAL, "deposit %llu from a funded wallet failed: %s",
                   (unsigned long long) d->id, error ? error : "(no reason)");
        cr_assert (error && strstr (error, "insufficient funds"),
                   "deposit %llu failed, but not for lack of funds: %s", (unsigned long long) d->id,
                   error ? error : "(no reason)");
        cr_assert_eq (moves, 0, "failed deposit %llu credited something",
                      (unsigned long long) d->id);
        if (d->kind == S_DEPOSIT_RACING)
            out->racing_failed++;
        else
            out->drained_failed++;
        out->failed++;
    }
    pg_result_free (&r);
}

//  Every withdrawal the API acknowledged was paid, or refunded with a reason.
static void s_check_withdrawals (uint64_t *all, size_t n, long *paid, long *refunded)
{
    qsort (all, n, sizeof *all, s_cmp_u64);
    pg_result_t *r = pg_exec (s_db, "SELECT withdrawal_id, state, error FROM withdrawals", 0, NULL);
    cr_assert_not_null (r, "%s", pg_error (s_db));
    cr_assert_eq ((size_t) pg_rows (r), n, "Postgres has %d withdrawals, the API acknowledged %zu",
                  pg_rows (r), n);
    for (int k = 0; k < pg_rows (r); k++) {
        uint64_t id = (uint64_t) pg_int (r, k, 0);
        cr_assert_not_null (bsearch (&id, all, n, sizeof *all, s_cmp_u64),
                            "withdrawal %llu was never acknowledged", (unsigned long long) id);
        const char *state = pg_value (r, k, 1), *error = pg_value (r, k, 2);
        if (strcmp (state, "paid") == 0)
            (*paid)++;
        else {
            cr_assert_str_eq (state, "refunded", "withdrawal %llu is %s", (unsigned long long) id,
                              state);
            cr_assert (error && *error, "withdrawal %llu refunded without a reason",
                       (unsigned long long) id);
            (*refunded)++;
        }
    }
    pg_result_free (&r);
}

static int64_t s_user_sum (const char *sql, const char *user)
{
    const char *params[1] = {user};
    pg_result_t *r = pg_exec (s_db, sql, 1, params);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (s_db));
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

//  Each of ids is in the memo (prefix) of `want (i)` landed transactions, and no other id is.
static void s_check_memos (const char *prefix, const uint64_t *ids, const int *want, size_t n)
{
    int *counts = calloc (n ? n : 1, sizeof *counts);
    size_t strays = 0;
    cr_assert_geq (ledgertest_memo_ids (&s_ledger, prefix, ids, n, counts, &strays), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq (counts[i], want[i], "%s%llu is in %d landed transactions, not %d", prefix,
                      (unsigned long long) ids[i], counts[i], want[i]);
    cr_assert_eq (strays, 0, "%zu landed transactions of %s ids nobody asked for", strays, prefix);
    free (counts);
}

//  The chain, account by account: each wallet holds what it held, less its credited deposits
//  and what it swept away, plus its paid withdrawals and what its trades paid it out of escrow;
//  the treasury got every fee and the sink every sweep. And every credited deposit, paid
//  withdrawal and trade is in exactly one landed transaction, a failed deposit in none.
static void s_check_chain (const s_deposit_t *deposits, size_t deposit_count)
{
    int64_t swept_energy = 0, swept_payment = 0;
    for (int i = 0; i < S_USERS; i++) {
        s_user_t *u = &s_users[i];
        int64_t energy =
            u->energy0 - u->swept_energy +
            s_user_sum ("SELECT coalesce (sum (qty), 0) FROM trades WHERE buyer = $1", u->name) +
            s_user_sum ("SELECT coalesce (sum (amount), 0) FROM withdrawals WHERE "
                        "username = $1 AND asset = 'energy' AND state = 'paid'",
                        u->name) -
            s_user_sum ("SELECT coalesce (sum (amount), 0) FROM deposits WHERE "
                        "username = $1 AND asset = 'energy' AND state = 'credited'",
                        u->name);
        int64_t payment =
            u->payment0 - u->swept_payment +
            s_user_sum ("SELECT coalesce (sum (s.value - s.fee), 0) FROM trades t JOIN "
                        "settlements s USING (trade_id) WHERE t.seller = $1",
                        u->name) +
            s_user_sum ("SELECT coalesce (sum (amount), 0) FROM withdrawals WHERE username = $1 "
                        "AND asset = 'payment' AND state = 'paid'",
                        u->name) -
            s_user_sum ("SELECT coalesce (sum (amount), 0) FROM deposits WHERE username = $1 AND "
                        "asset = 'payment' AND state = 'credited'",
                        u->name);
        int64_t chain[2] = {ledgertest_balance (&s_ledger, u->energy.text),
                            ledgertest_balance (&s_ledger, u->payment.text)};
        cr_assert_eq (chain[0], energy, "%s's energy account on chain: %lld Wh, expected %lld",
                      u->name, (long long) chain[0], (long long) energy);
        cr_assert_eq (chain[1], payment, "%s's payment account on chain: %lld µ, expected %lld",
                      u->name, (long long) chain[1], (long long) payment);
        swept_energy += u->swept_energy;
        swept_payment += u->swept_payment;
    }
    cr_assert_eq (ledgertest_balance (&s_ledger, s_chain.sink_energy.text),
                  s_chain.sink_energy0 + swept_energy);
    cr_assert_eq (ledgertest_balance (&s_ledger, s_chain.sink_payment.text),
                  s_chain.sink_payment0 + swept_payment);
    cr_assert_eq (
        ledgertest_balance (&s_ledger, ledgertest_field (&s_ledger, "treasury", "paymentAccount")),
        s_chain.treasury0 + s_query_int ("SELECT coalesce (sum (fee), 0) FROM settlements"),
        "the treasury has every fee");

    //  the memos: deposits (credited once, failed never), withdrawals, trades
    uint64_t *ids = malloc ((deposit_count ? deposit_count : 1) * sizeof *ids);
    int *want = malloc ((deposit_count ? deposit_count : 1) * sizeof *want);
    pg_result_t *r = pg_exec (s_db, "SELECT deposit_id, state = 'credited' FROM deposits", 0, NULL);
    cr_assert_not_null (r, "%s", pg_error (s_db));
    cr_assert_eq ((size_t) pg_rows (r), deposit_count);
    (void) deposits;
    for (int k = 0; k < pg_rows (r); k++) {
        ids[k] = (uint64_t) pg_int (r, k, 0);
        want[k] = strcmp (pg_value (r, k, 1), "t") == 0;
    }
    s_check_memos ("mce:d=", ids, want, deposit_count);
    pg_result_free (&r);
    const char *lists[][2] = {{"mce:w=", "SELECT withdrawal_id FROM withdrawals"},
                              {"mce:t=", "SELECT trade_id FROM trades"}};
    for (int l = 0; l < 2; l++) {
        r = pg_exec (s_db, lists[l][1], 0, NULL);
        cr_assert_not_null (r, "%s", pg_error (s_db));
        size_t n = (size_t) pg_rows (r);
        ids = realloc (ids, (n ? n : 1) * sizeof *ids);
        want = realloc (want, (n ? n : 1) * sizeof *want);
        for (size_t k = 0; k < n; k++) {
            ids[k] = (uint64_t) pg_int (r, (int) k, 0);
            want[k] = 1; //  every withdrawal was paid (checked before), every trade settled
        }
        pg_result_free (&r);
        s_check_memos (lists[l][0], ids, want, n);
    }
    free (ids);
    free (want);
}

//  The gateway's read model shows each user the balances Postgres has.
static void s_check_read_model (void)
{
    for (int i = 0; i < S_USERS; i++) {
        s_user_t *u = &s_users[i];
        json_t *j = NULL;
        cr_assert_eq (s_http (NULL, "GET", "/api/account/balances", u->token, NULL, &j), 200);
        const char *assets[] = {"energy", "payment"};
        for (int a = 0; a < 2; a++) {
            json_t *b = json_object_get (json_object_get (j, "balances"), assets[a]);
            int64_t api[2] = {-1, -1};
            const char *keys[] = {"available", "reserved"};
            for (int k = 0; k < 2; k++) {
                const char *text = s_str (b, keys[k]);
                cr_assert (text && decimal_parse (text, strlen (text),
                                                  a ? DECIMAL_PRICE_SCALE : DECIMAL_KWH_SCALE,
                                                  &api[k]) == DECIMAL_OK,
                           "%s's %s %s: %s", u->name, assets[a], keys[k], text ? text : "none");
            }
            const char *params[] = {u->name, assets[a]};
            pg_result_t *r = pg_exec (s_db,
                                      "SELECT coalesce (max (available), 0), coalesce (max "
                                      "(reserved), 0) FROM balances WHERE username = $1 AND "
                                      "asset = $2",
                                      2, params);
            cr_assert_not_null (r, "%s", pg_error (s_db));
            cr_assert (api[0] == pg_int (r, 0, 0) && api[1] == pg_int (r, 0, 1),
                       "%s's %s: the gateway shows %lld available, %lld reserved; Postgres "
                       "%lld, %lld",
                       u->name, assets[a], (long long) api[0], (long long) api[1],
                       (long long) pg_int (r, 0, 0), (long long) pg_int (r, 0, 1));
            pg_result_free (&r);
        }
        json_decref (j);
    }
}

//  mcectl reconcile, until it finds nothing in flight (the tables follow the buses); then the
//  vaults must equal the books to the unit.
static void s_reconcile (void)
{
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    for (;;) {
        char *out = NULL;
        int rc = harness_run (
            "mcectl", (const char *[]){"-c", s_h.config, "--json", "reconcile", NULL}, &out);
        json_t *rows = json_loads (strchr (out, '[') ? strchr (out, '[') : "", 0, NULL);
        json_int_t in_flight = 0;
        size_t i;
        json_t *row;
        json_array_foreach (rows, i, row) in_flight +=
            json_integer_value (json_object_get (row, "in_flight"));
        bool settled = json_array_size (rows) == 2 && in_flight == 0;
        json_decref (rows);
        if (settled || zclock_mono () > deadline) {
            cr_assert (settled, "reconcile never came to rest: %s", out);
            cr_assert_eq (rc, 0, "mcectl reconcile: the vaults and the books differ: %s", out);
            fprintf (stderr, "soak: reconcile: %s", out);
            free (out);
            return;
        }
        free (out);
        zclock_sleep (200); //  a poll with a deadline
    }
}

//  What the matcher's journal says.
typedef struct {
    uint64_t last_seq;
    int64_t trades;
} s_journal_t;

static void s_journal_event (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                             void *arg)
{
    (void) ev;
    (void) len;
    s_journal_t *j = arg;
    j->last_seq = seq;
    if (msg->kind == PROTO_trade)
        j->trades++;
}

static void s_start_system (void)
{
    cr_assert_eq (curl_global_init (CURL_GLOBAL_DEFAULT), 0);
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.01\"; lot = \"0.1\"; min_qty = \"0.1\"; "
              "epoch_seconds = 2592000; fee_ppm = %d; escrow = true; } );\n"
              "postgres = { url = \"%s\"; };\n",
              S_FEE_PPM, s_pg.conninfo);
    harness_init (&s_h, config);
    char users[16], lamports[24];
    snprintf (users, sizeof users, "%d", S_USERS + 1);
    snprintf (lamports, sizeof lamports, "%d", S_LAMPORTS);
    cr_assert_eq (ledgertest_start (&s_ledger, s_h.dir,
                                    (const char *[]){"--users", users, "--user-lamports", lamports,
                                                     "--slot-ms", S_SLOT_MS, "--land-delay-ms",
                                                     S_LAND_DELAY_MS, "--confirm-delay-ms",
                                                     S_CONFIRM_DELAY_MS, NULL}),
                  0);
    setenv ("MCE_SETTLER_RPC_URL", s_ledger.url, 1);
    setenv ("MCE_SETTLER_KEYS_FILE", s_ledger.setup_path, 1);
    char port[16];
    snprintf (port, sizeof port, "%d", s_h.port_ws); //  free, and unused here
    setenv ("MCE_PERSISTER_METRICS_PORT", port, 1);
    const char *ready[][2] = {{"mce-matcher", "commands on"},
                              {"mce-persister", "Postgres ready"},
                              {"mce-settler", "settler: ready"},
                              {"mce-gateway", "HTTP API on"}};
    for (size_t i = 0; i < 4; i++) {
        int p = harness_start (&s_h, ready[i][0]);
        cr_assert (harness_wait_log (&s_h, p, ready[i][1], HARNESS_DEADLINE_MS), "%s is ready",
                   ready[i][0]);
    }
    char err[256];
    s_db = pg_connect (s_pg.conninfo, 5000, err, sizeof err);
    cr_assert_not_null (s_db, "%s", err);
}

//  Every user proves the wallet the ledger funded; its keys are kept for the drains.
static void s_sign_up (void)
{
    cr_assert_eq (sol_key_parse (&s_chain.token_program, SOL_TOKEN_PROGRAM), 0);
    cr_assert_eq (
        sol_key_parse (&s_chain.energy_mint, ledgertest_field (&s_ledger, "energyMint", "address")),
        0);
    cr_assert_eq (sol_key_parse (&s_chain.payment_mint,
                                 ledgertest_field (&s_ledger, "paymentMint", "address")),
                  0);
    char sink_name[16];
    snprintf (sink_name, sizeof sink_name, "user%d", S_USERS + 1);
    json_t *sink = ledgertest_user (&s_ledger, sink_name);
    cr_assert_not_null (sink);
    cr_assert_eq (sol_key_parse (&s_chain.sink_energy, s_str (sink, "energyAccount")), 0);
    cr_assert_eq (sol_key_parse (&s_chain.sink_payment, s_str (sink, "paymentAccount")), 0);
    s_chain.sink_energy0 = ledgertest_balance (&s_ledger, s_chain.sink_energy.text);
    s_chain.sink_payment0 = ledgertest_balance (&s_ledger, s_chain.sink_payment.text);
    s_chain.treasury0 =
        ledgertest_balance (&s_ledger, ledgertest_field (&s_ledger, "treasury", "paymentAccount"));
    cr_assert (s_chain.sink_energy0 >= 0 && s_chain.sink_payment0 >= 0 && s_chain.treasury0 >= 0);
    for (int i = 0; i < S_USERS; i++) {
        s_user_t *u = &s_users[i];
        snprintf (u->name, sizeof u->name, "user%d", i + 1);
        json_t *l = ledgertest_user (&s_ledger, u->name);
        cr_assert_not_null (l, "the ledger has %s", u->name);
        harness_wallet_t wallet;
        harness_wallet (&wallet, s_str (l, "walletSecretSeedHex"));
        uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
        crypto_sign_seed_keypair (public_key, u->secret, wallet.seed);
        cr_assert_eq (sol_key_parse (&u->wallet, wallet.address), 0);
        cr_assert_eq (sol_key_parse (&u->energy, s_str (l, "energyAccount")), 0);
        cr_assert_eq (sol_key_parse (&u->payment, s_str (l, "paymentAccount")), 0);
        u->energy0 = ledgertest_balance (&s_ledger, u->energy.text);
        u->payment0 = ledgertest_balance (&s_ledger, u->payment.text);
        cr_assert (u->energy0 > 0 && u->payment0 > 0, "%s's wallet is funded", u->name);
        u->drains = i % S_DRAIN_EVERY == S_DRAIN_EVERY / 2;
        char *answer = NULL;
        long status = harness_sign_up (s_h.port_http, u->name, "soak test pw", &wallet, &answer);
        cr_assert_eq (status, 201, "register %s: %ld %s", u->name, status, answer);
        free (answer);
        harness_token (u->name, "user", u->token, sizeof u->token);
    }
}

Test (escrow_soak, many_users_deposit_trade_withdraw_and_drain_and_the_books_hold, .fini = s_fini,
      .timeout = 600)
{
    uint64_t seed =
        getenv ("MCE_SOAK_SEED") ? strtoull (getenv ("MCE_SOAK_SEED"), NULL, 0) : S_SEED;
    if (getenv ("MCE_SOAK_OPS"))
        s_ops_per_user = atoi (getenv ("MCE_SOAK_OPS"));
    cr_assert_gt (s_ops_per_user, 0, "MCE_SOAK_OPS: operations per user");
    fprintf (stderr,
             "soak: seed 0x%llx, %d operations per user (MCE_SOAK_SEED, MCE_SOAK_OPS change "
             "them)\n",
             (unsigned long long) seed, s_ops_per_user);
    int64_t start = zclock_mono ();
    s_start_system ();
    s_sign_up ();
    int64_t ready = zclock_mono ();

    //  the opening deposits, all credited before the trading starts
    s_run_workers (true, seed);
    s_wait_query ("SELECT count(*) FROM deposits WHERE state = 'credited'", 2 * S_USERS);
    int64_t opened = zclock_mono ();

    //  the load
    s_run_workers (false, seed);
    int64_t loaded = zclock_mono ();
    s_counts_t n = {0};
    s_deposit_t *deposits = NULL;
    uint64_t *withdrawals = NULL;
    size_t deposit_count = 0, deposit_cap = 0, withdrawal_count = 0, withdrawal_cap = 0;
    long drained_users = 0;
    for (int i = 0; i < S_WORKERS; i++) {
        const s_counts_t *c = &s_workers[i].n;
        n.orders += c->orders;
        n.orders_refused += c->orders_refused;
        n.cancels += c->cancels;
        n.cancels_missed += c->cancels_missed;
        n.withdrawals_refused += c->withdrawals_refused;
        n.reads += c->reads;
        n.sweeps += c->sweeps;
        n.retries += c->retries;
    }
    for (int i = 0; i < S_USERS; i++) {
        s_user_t *u = &s_users[i];
        for (size_t k = 0; k < u->deposit_count; k++)
            S_APPEND (deposits, deposit_count, deposit_cap, u->deposits[k]);
        for (size_t k = 0; k < u->withdrawal_count; k++)
            S_APPEND (withdrawals, withdrawal_count, withdrawal_cap, u->withdrawals[k]);
        cr_assert_eq (u->drains, u->drained, "%s drained as planned", u->name);
        drained_users += u->drained;
    }

    //  everything comes to rest: every deposit and withdrawal final ...
    s_wait_query ("SELECT count(*) FROM deposits WHERE state IN ('credited', 'failed')",
                  (int64_t) deposit_count);
    s_wait_query ("SELECT count(*) FROM withdrawals WHERE state IN ('paid', 'refunded')",
                  (int64_t) withdrawal_count);
    //  ... Postgres has the whole journal of the matcher (nothing writes to it any more) ...
    s_journal_t journal = {0};
    cr_assert_gt (harness_journal_events (&s_h, s_journal_event, &journal), 0);
    cr_assert_gt (journal.trades, 0, "the load traded");
    char sql[128];
    snprintf (sql, sizeof sql,
              "SELECT coalesce (max (last_seq), -1) FROM consumer_offsets WHERE stream = 'm'");
    s_wait_query (sql, (int64_t) journal.last_seq);
    cr_assert_eq (s_query_int ("SELECT count(*) FROM trades"), journal.trades);
    //  ... and every trade is settled, out of escrow, without ever waiting for funds
    s_wait_query ("SELECT count(*) FROM settlements WHERE state = 'confirmed'", journal.trades);
    cr_assert_eq (s_query_int ("SELECT count(*) FROM settlements"), journal.trades);
    cr_assert_eq (s_query_int ("SELECT count(*) FROM trades t LEFT JOIN settlements s USING "
                               "(trade_id) WHERE s.state IS DISTINCT FROM 'confirmed'"),
                  0, "a trade without a confirmed settlement");
    //  (the fee is the settler's: trades.fee stays 0, the settlement has it)
    cr_assert_eq (s_query_int ("SELECT count(*) FROM trades t JOIN settlements s USING "
                               "(trade_id) WHERE s.value IS DISTINCT FROM t.value OR s.fee IS "
                               "NULL OR s.fee < 0 OR s.fee > t.value"),
                  0, "a settlement that does not pay its trade's value");
    cr_assert_eq (s_query_int ("SELECT count(*) FROM settlements WHERE reason ILIKE "
                               "'%insufficient%' OR reason ILIKE '%short%'"),
                  0, "a settlement waited for funds");
    int64_t settled = zclock_mono ();

    //  deposits and withdrawals ended as they should
    s_deposit_outcomes_t d = {0};
    s_check_deposits (deposits, deposit_count, &d);
    cr_assert_gt (d.drained_failed, 0, "deposits from drained wallets were tried");
    long paid = 0, refunded = 0;
    s_check_withdrawals (withdrawals, withdrawal_count, &paid, &refunded);

    //  the vaults hold what the books say, to the unit; each wallet what its history says
    s_reconcile ();
    s_check_chain (deposits, deposit_count);
    s_check_read_model ();

    //  no balance is negative, and each reservation is what its open orders hold (a buy of R Wh
    //  at L µ/kWh holds R × L / 1000: exact with this market's lot and tick)
    cr_assert_eq (s_query_int ("SELECT count(*) FROM balances WHERE available < 0 OR "
                               "reserved < 0"),
                  0, "a negative balance");
    cr_assert_eq (
        s_query_int (
            "SELECT count(*) FROM balances b FULL JOIN (SELECT username, CASE side WHEN 'buy' "
            "THEN 'payment' ELSE 'energy' END AS asset, sum (CASE side WHEN 'buy' THEN "
            "(remaining * price + 999) / 1000 ELSE remaining END) AS held FROM orders WHERE "
            "status IN ('open', 'partially_filled') GROUP BY 1, 2) o ON o.username = "
            "b.username AND o.asset = b.asset WHERE coalesce (b.reserved, 0) <> coalesce "
            "(o.held, 0)"),
        0, "a reservation that is not what the open orders hold");
    //  the drained wallets got nothing back: no payment ever paid into them again
    for (int i = 0; i < S_USERS; i++)
        if (s_users[i].drained)
            cr_assert_eq (ledgertest_balance (&s_ledger, s_users[i].payment.text), 0,
                          "%s's drained payment account", s_users[i].name);

    json_t *stats = ledgertest_rpc (&s_ledger, "mce_stats", NULL);
    cr_assert_not_null (stats);
    int64_t end = zclock_mono ();
    fprintf (stderr,
             "soak: %d users (%ld drained their wallets, %ld sweeps), %d workers, seed 0x%llx\n"
             "soak: operations: %ld orders placed (%ld refused: insufficient balance), "
             "%ld cancelled (%ld already gone), %zu deposits, %zu withdrawals (%ld refused), "
             "%ld balance reads, %ld answers 429/503 tried again\n"
             "soak: %lld trades, all settled; deposits: %ld credited, %ld failed (%ld from "
             "drained wallets, %ld racing a drain; %ld racing ones credited); withdrawals: %ld "
             "paid, %ld refunded; journal through seq %llu\n"
             "soak: the ledger: %lld transactions landed (%lld of them failing), %lld refused in "
             "preflight\n"
             "soak: elapsed %.1f s: start and sign-up %.1f, opening deposits %.1f, load %.1f, "
             "coming to rest %.1f, checks %.1f\n",
             S_USERS, drained_users, n.sweeps, S_WORKERS, (unsigned long long) seed, n.orders,
             n.orders_refused, n.cancels, n.cancels_missed, deposit_count, withdrawal_count,
             n.withdrawals_refused, n.reads, n.retries, (long long) journal.trades, d.credited,
             d.failed, d.drained_failed, d.racing_failed, d.racing_credited, paid, refunded,
             (unsigned long long) journal.last_seq,
             (long long) json_integer_value (json_object_get (stats, "txLanded")),
             (long long) json_integer_value (json_object_get (stats, "txFailed")),
             (long long) json_integer_value (json_object_get (stats, "txRejected")),
             (end - start) / 1000.0, (ready - start) / 1000.0, (opened - ready) / 1000.0,
             (loaded - opened) / 1000.0, (settled - loaded) / 1000.0, (end - settled) / 1000.0);
    json_decref (stats);
    free (deposits);
    free (withdrawals);
}
