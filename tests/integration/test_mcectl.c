/*  test_mcectl — the operator's command line against the real gateway, matcher and Postgres:
    orders placed, amended and cancelled with mcectl and seen through mcectl, a trade in the
    market's trades and in each side's history, refusals with the gateway's own error and
    exit status, an administrator pausing and resuming a market, users made with `user add`,
    users signing up and changing wallet with a keypair file (`register`, `wallet`), signing
    in for a token (`login`), a token of nobody refused, `health` up and then down with the
    matcher stopped, and `load` running the load generator (which signs its users up). mcectl
    is run as a program (harness_run) and judged by its exit status and what it prints, --json
    parsed as JSON.
*/
#include "clock.h"
#include "harness.h"
#include "pgtest.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <czmq.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pgtest_t s_server; //  the runner's (ReportHook), shared by the tests through the env
static harness_t s_h;

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) || pgtest_export (&s_server))
        fprintf (stderr, "test_mcectl: no PostgreSQL: the tests will fail\n");
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

//  A loopback port nothing listens on right now.
static int s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert (fd >= 0 && bind (fd, (struct sockaddr *) &a, sizeof a) == 0 &&
               getsockname (fd, (struct sockaddr *) &a, &len) == 0);
    close (fd);
    return ntohs (a.sin_port);
}

//  A fresh database, a matcher (with its metrics endpoint, which `health` asks) and a
//  gateway. The environment carries the metrics port to the matcher and to mcectl alike.
static int s_start (const char *db)
{
    pgtest_t pg;
    cr_assert_eq (pgtest_attach (&pg), 0, "no shared PostgreSQL");
    char conninfo[PGTEST_CONNINFO_MAX], config[1024], port[16];
    cr_assert_eq (pgtest_create_db (&pg, db, conninfo, sizeof conninfo), 0);
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.001\"; lot = \"0.1\"; min_qty = "
              "\"0.1\"; max_qty = \"1000\"; max_price = \"10\"; epoch_seconds = 2592000; escrow = "
              "false; },\n"
              "            { id = \"campus-2\"; epoch_seconds = 2592000; escrow = false; } );\n"
              "postgres = { url = \"%s\"; };\n",
              conninfo);
    snprintf (port, sizeof port, "%d", s_free_port ());
    setenv ("MCE_MATCHER_METRICS_PORT", port, 1);
    harness_init (&s_h, config);
    int matcher = harness_start (&s_h, "mce-matcher");
    harness_start (&s_h, "mce-gateway");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS));
    return matcher;
}

//  mcectl -c <the test's config> args...; its exit status, its output (stdout and stderr) in
//  *out (the caller frees).
static int s_mcectl (char **out, const char *const *args)
{
    const char *argv[16] = {"-c", s_h.config};
    int n = 2;
    for (; args[n - 2] && n < 15; n++)
        argv[n] = args[n - 2];
    cr_assert_null (args[n - 2], "too many arguments for harness_run");
    argv[n] = NULL;
    return harness_run ("mcectl", argv, out);
}

#define S_MCECTL(out, ...) s_mcectl (out, (const char *const[]){__VA_ARGS__, NULL})

//  s_mcectl with input on its standard input (a password, as an operator would pipe it).
static int s_mcectl_input (const char *input, char **out, const char *const *args)
{
    char path[] = "/tmp/mce-stdin-XXXXXX";
    int fd = mkstemp (path);
    cr_assert (fd >= 0);
    cr_assert_eq (write (fd, input, strlen (input)), (ssize_t) strlen (input));
    lseek (fd, 0, SEEK_SET);
    int saved = dup (0);
    dup2 (fd, 0);
    int rc = s_mcectl (out, args);
    dup2 (saved, 0);
    close (saved);
    close (fd);
    unlink (path);
    return rc;
}

#define S_MCECTL_INPUT(input, out, ...)                                                            \
    s_mcectl_input (input, out, (const char *const[]){__VA_ARGS__, NULL})

//  A keypair file in the Solana CLI's format (seed, then public key) for w, in the test's
//  folder; its path in path.
static void s_keypair_file (const harness_wallet_t *w, const char *name, char *path, size_t size)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair (pk, sk, w->seed);
    snprintf (path, size, "%s/%s.json", s_h.dir, name);
    FILE *f = fopen (path, "w");
    cr_assert_not_null (f);
    for (int i = 0; i < 64; i++)
        fprintf (f, "%s%u", i ? "," : "[", i < 32 ? w->seed[i] : pk[i - 32]);
    fprintf (f, "]\n");
    fclose (f);
}

//  Signs user up with mcectl register and a wallet of its own.
static void s_register (const char *user)
{
    harness_wallet_t w;
    harness_wallet (&w, NULL);
    char path[256], *out;
    s_keypair_file (&w, user, path, sizeof path);
    int rc = S_MCECTL_INPUT ("correct horse battery\n", &out, "register", user, "--keypair", path);
    cr_assert_eq (rc, 0, "register %s: %s", user, out);
    free (out);
}

//  out as JSON: its last line (stderr, which comes first, may say something above it).
static json_t *s_json (const char *out)
{
    const char *line = out, *end = out + strlen (out);
    while (end > out && end[-1] == '\n')
        end--;
    for (const char *p = out; p < end; p++)
        if (*p == '\n')
            line = p + 1;
    json_error_t err;
    json_t *j = json_loadb (line, (size_t) (end - line), 0, &err);
    cr_assert_not_null (j, "not JSON (%s): %s", err.text, out);
    return j;
}

static const char *s_str (json_t *j, const char *key)
{
    return json_string_value (json_object_get (j, key));
}

//  Places an order that must be accepted; its answer.
static json_t *s_place (const char *user, const char *side, const char *qty, const char *price)
{
    char *out;
    int rc = S_MCECTL (&out, "--as", user, "--json", "order", "place", "--side", side, "--qty", qty,
                       "--price", price);
    cr_assert_eq (rc, 0, "order place: %d %s", rc, out);
    json_t *ack = s_json (out);
    free (out);
    cr_assert_not_null (s_str (ack, "order_id"));
    return ack;
}

Test (mcectl, a_sell_and_a_buy_trade_and_show_everywhere, .fini = s_fini, .timeout = 120)
{
    s_start ("mcectl_trade");
    s_register ("alice");
    s_register ("bob");
    json_t *sell = s_place ("alice", "sell", "10", "0.15");
    cr_assert_str_eq (s_str (sell, "status"), "open");
    json_t *buy = s_place ("bob", "buy", "4", "0.16");
    cr_assert_str_eq (s_str (buy, "status"), "filled");
    cr_assert_str_eq (s_str (buy, "filled_amount"), "4");

    //  the market's trades: the one trade, at the resting order's price
    char *out;
    cr_assert_eq (S_MCECTL (&out, "trades", "--market", "campus-1", "--json"), 0, "%s", out);
    json_t *j = s_json (out);
    json_t *trades = json_object_get (j, "trades");
    cr_assert_eq (json_array_size (trades), 1, "%s", out);
    cr_assert_str_eq (s_str (json_array_get (trades, 0), "price"), "0.15");
    cr_assert_str_eq (s_str (json_array_get (trades, 0), "energy_amount"), "4");
    cr_assert_str_eq (s_str (json_array_get (trades, 0), "aggressor"), "Buy");
    json_decref (j);
    free (out);
    //  the same, for people: a header and one row
    cr_assert_eq (S_MCECTL (&out, "trades"), 0, "%s", out);
    cr_assert_not_null (strstr (out, "AGGRESSOR"), "%s", out);
    cr_assert_not_null (strstr (out, "0.15"), "%s", out);
    free (out);
    //  each side's history, with a token given as one (--token) this time
    char token[1024];
    harness_token ("bob", "user", token, sizeof token);
    cr_assert_eq (S_MCECTL (&out, "--token", token, "trades", "--mine", "--json"), 0, "%s", out);
    j = s_json (out);
    trades = json_object_get (j, "trades");
    cr_assert_eq (json_array_size (trades), 1, "%s", out);
    cr_assert_str_eq (s_str (json_array_get (trades, 0), "side"), "Buy");
    json_decref (j);
    free (out);
    //  ... and as a table, with the order and its settlement's columns
    cr_assert_eq (S_MCECTL (&out, "--token", token, "trades", "--mine"), 0, "%s", out);
    cr_assert_not_null (strstr (out, "ORDER"), "%s", out);
    cr_assert_not_null (strstr (out, "SETTLEMENT"), "%s", out);
    free (out);
    //  alice's order is partly filled; the book shows what is left of it
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "orders", "--status", "open", "--json"), 0, "%s",
                  out);
    j = s_json (out);
    json_t *orders = json_object_get (j, "orders");
    cr_assert_eq (json_array_size (orders), 1, "%s", out);
    cr_assert_str_eq (s_str (json_array_get (orders, 0), "order_id"), s_str (sell, "order_id"));
    cr_assert_str_eq (s_str (json_array_get (orders, 0), "status"), "partially_filled");
    cr_assert_str_eq (s_str (json_array_get (orders, 0), "remaining_amount"), "6");
    json_decref (j);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "book", "--json"), 0, "%s", out);
    j = s_json (out);
    json_t *asks = json_object_get (j, "asks");
    cr_assert_eq (json_array_size (asks), 1, "%s", out);
    cr_assert_str_eq (s_str (json_array_get (asks, 0), "energy_amount"), "6");
    cr_assert_eq (json_array_size (json_object_get (j, "bids")), 0, "%s", out);
    json_decref (j);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "book"), 0, "%s", out);
    cr_assert_not_null (strstr (out, "ask"), "%s", out);
    free (out);
    json_decref (sell);
    json_decref (buy);

    //  mcectl load runs the load generator against the same gateway
    cr_assert_eq (S_MCECTL (&out, "load", "--target", "gateway-http", "--orders", "200",
                            "--connections", "2", "--window", "4", "--json"),
                  0, "%s", out);
    j = s_json (out);
    cr_assert (json_is_object (j), "%s", out);
    json_decref (j);
    free (out);
}

Test (mcectl, an_order_amended_and_cancelled, .fini = s_fini, .timeout = 120)
{
    s_start ("mcectl_amend");
    s_register ("alice");
    s_register ("mallory");
    json_t *ack = s_place ("alice", "buy", "10", "0.12");
    char id[32];
    snprintf (id, sizeof id, "%s", s_str (ack, "order_id"));
    json_decref (ack);

    char *out;
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "--json", "order", "amend", id, "--qty", "4",
                            "--price", "0.125"),
                  0, "%s", out);
    json_t *j = s_json (out);
    cr_assert_str_eq (s_str (j, "remaining_amount"), "4");
    json_decref (j);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "order", "show", id, "--json"), 0, "%s", out);
    j = s_json (out);
    cr_assert_str_eq (s_str (j, "price"), "0.125");
    cr_assert_str_eq (s_str (j, "remaining_amount"), "4");
    cr_assert_str_eq (s_str (j, "status"), "open");
    json_decref (j);
    free (out);
    //  someone else's order is unknown to them
    cr_assert_eq (S_MCECTL (&out, "--as", "mallory", "order", "cancel", id), 1, "%s", out);
    cr_assert_not_null (strstr (out, "order_not_found"), "%s", out);
    free (out);

    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "order", "cancel", id), 0, "%s", out);
    cr_assert_not_null (strstr (out, "cancelled"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "order", "show", id), 0, "%s", out);
    cr_assert_not_null (strstr (out, "cancelled"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "--json", "orders", "--status", "cancelled"), 0,
                  "%s", out);
    j = s_json (out);
    cr_assert_eq (json_array_size (json_object_get (j, "orders")), 1, "%s", out);
    json_decref (j);
    free (out);
    //  a second cancel is refused: nothing is open
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "order", "cancel", id), 1, "%s", out);
    cr_assert_not_null (strstr (out, "order_not_found"), "%s", out);
    free (out);
}

Test (mcectl, refusals_and_mistakes_have_their_exit_status, .fini = s_fini, .timeout = 120)
{
    s_start ("mcectl_refused");
    s_register ("bob");
    char *out;
    //  off the tick (0.001): the gateway refuses, its error on stderr, its JSON with --json
    cr_assert_eq (S_MCECTL (&out, "--as", "bob", "order", "place", "--side", "buy", "--qty", "1",
                            "--price", "0.1234"),
                  1, "%s", out);
    cr_assert_not_null (strstr (out, "422 off_tick"), "%s", out);
    cr_assert_not_null (strstr (out, "price must be a multiple of 0.001"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--json", "--as", "bob", "order", "place", "--side", "buy",
                            "--qty", "1", "--price", "0.1234"),
                  1, "%s", out);
    json_t *j = s_json (out);
    json_t *error = json_object_get (j, "error");
    cr_assert_str_eq (s_str (error, "code"), "off_tick");
    cr_assert_str_eq (s_str (error, "field"), "price");
    json_decref (j);
    free (out);
    //  nothing was placed
    cr_assert_eq (S_MCECTL (&out, "--as", "bob", "--json", "orders"), 0, "%s", out);
    j = s_json (out);
    cr_assert_eq (json_array_size (json_object_get (j, "orders")), 0, "%s", out);
    json_decref (j);
    free (out);
    //  not a number: a usage error, nothing sent
    cr_assert_eq (S_MCECTL (&out, "--as", "bob", "order", "place", "--side", "buy", "--qty", "1",
                            "--price", "cheap"),
                  2, "%s", out);
    cr_assert_not_null (strstr (out, "--price"), "%s", out);
    free (out);
    //  no token at all
    cr_assert_eq (S_MCECTL (&out, "orders"), 2, "%s", out);
    cr_assert_not_null (strstr (out, "needs a token"), "%s", out);
    free (out);
    //  a gateway that is not there
    cr_assert_eq (S_MCECTL (&out, "--url", "http://127.0.0.1:1", "book"), 3, "%s", out);
    cr_assert_not_null (strstr (out, "no answer from the gateway"), "%s", out);
    free (out);
    //  an unknown command, and help that answers
    cr_assert_eq (S_MCECTL (&out, "orderz"), 2, "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "order", "place", "--help"), 0, "%s", out);
    cr_assert_not_null (strstr (out, "--side buy|sell"), "%s", out);
    free (out);
}

Test (mcectl, an_admin_pauses_and_resumes_a_market, .fini = s_fini, .timeout = 120)
{
    s_start ("mcectl_admin");
    s_register ("alice");
    harness_wallet_t w;
    harness_wallet (&w, NULL);
    char *out;
    cr_assert_eq (S_MCECTL_INPUT ("a long password\n", &out, "user", "add", "root", "--wallet",
                                  w.address, "--admin"),
                  0, "%s", out);
    free (out);
    //  a user may not
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "admin", "pause", "campus-1"), 1, "%s", out);
    cr_assert_not_null (strstr (out, "403 forbidden"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--as", "root", "--admin", "admin", "pause", "campus-1"), 0, "%s",
                  out);
    cr_assert_not_null (strstr (out, "pause_trading done"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "order", "place", "--side", "sell", "--qty", "1",
                            "--price", "0.1"),
                  1, "%s", out);
    cr_assert_not_null (strstr (out, "market_paused"), "%s", out);
    free (out);
    //  the other market trades on
    cr_assert_eq (S_MCECTL (&out, "--as", "alice", "order", "place", "--market", "campus-2",
                            "--side", "sell", "--qty", "1", "--price", "0.1"),
                  0, "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--as", "root", "--admin", "--json", "admin", "resume_trading",
                            "--market", "campus-1"),
                  0, "%s", out);
    json_t *j = s_json (out);
    cr_assert_str_eq (s_str (j, "status"), "done");
    json_decref (j);
    free (out);
    json_t *ack = s_place ("alice", "sell", "1", "0.1");
    cr_assert_str_eq (s_str (ack, "status"), "open");
    json_decref (ack);
    //  the gateway's own view and the analytics answer an admin
    cr_assert_eq (S_MCECTL (&out, "--as", "root", "--admin", "--json", "admin", "health"), 0, "%s",
                  out);
    j = s_json (out);
    cr_assert (json_is_array (json_object_get (j, "markets")), "%s", out);
    json_decref (j);
    free (out);
    cr_assert_eq (
        S_MCECTL (&out, "--as", "root", "--admin", "admin", "analytics", "--timeframe", "1h"), 0,
        "%s", out);
    free (out);
}

Test (mcectl, user_add_makes_an_administrator, .fini = s_fini, .timeout = 120)
{
    s_start ("mcectl_users");
    //  the password on standard input, as an operator would pipe it
    char *out;
    int rc = S_MCECTL_INPUT ("correct horse battery\n", &out, "user", "add", "carol", "--wallet",
                             "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", "--admin");
    cr_assert_eq (rc, 0, "%s", out);
    cr_assert_not_null (strstr (out, "created administrator carol"), "%s", out);
    free (out);
    //  carol signs in through the API, and her token opens the admin routes
    char *body;
    cr_assert_eq (harness_http (&s_h, "POST", "/api/auth/login",
                                "{\"username\":\"carol\",\"password\":\"correct horse battery\"}",
                                &body),
                  200, "%s", body);
    json_t *j = s_json (body);
    free (body);
    cr_assert_eq (S_MCECTL (&out, "--token", s_str (j, "token"), "admin", "health"), 0, "%s", out);
    json_decref (j);
    free (out);
}

Test (mcectl, register_and_change_wallet_with_a_keypair_file, .fini = s_fini, .timeout = 120)
{
    s_start ("mcectl_wallets");
    harness_wallet_t first, second;
    harness_wallet (&first, NULL);
    harness_wallet (&second, NULL);
    char one[256], two[256], *out;
    s_keypair_file (&first, "first", one, sizeof one);
    s_keypair_file (&second, "second", two, sizeof two);
    //  a token for someone who never signed up is refused by the gateway
    cr_assert_eq (S_MCECTL (&out, "--as", "dave", "orders"), 1, "%s", out);
    cr_assert_not_null (strstr (out, "401 unknown_user"), "%s", out);
    free (out);
    //  dave signs up with the first wallet, and his token works
    cr_assert_eq (
        S_MCECTL_INPUT ("correct horse battery\n", &out, "register", "dave", "--keypair", one), 0,
        "%s", out);
    char line[128];
    snprintf (line, sizeof line, "registered dave with wallet %s", first.address);
    cr_assert_not_null (strstr (out, line), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--as", "dave", "orders"), 0, "%s", out);
    free (out);
    //  he signs in with his password: the token printed is one the gateway takes
    cr_assert_eq (S_MCECTL_INPUT ("correct horse battery\n", &out, "login", "dave"), 0, "%s", out);
    char token[2048];
    snprintf (token, sizeof token, "%.*s", (int) strcspn (out, "\n"), out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--token", token, "balances"), 0, "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL_INPUT ("not his password\n", &out, "login", "dave"), 1, "%s", out);
    cr_assert_not_null (strstr (out, "401"), "%s", out);
    free (out);
    //  the same wallet for another user: refused by the gateway
    cr_assert_eq (
        S_MCECTL_INPUT ("correct horse battery\n", &out, "register", "erin", "--keypair", one), 1,
        "%s", out);
    cr_assert_not_null (strstr (out, "409 wallet_taken"), "%s", out);
    free (out);
    //  dave moves to the second wallet, with his password (a wrong one moves nothing); the
    //  first is free again, and erin takes it
    cr_assert_eq (
        S_MCECTL_INPUT ("not his password\n", &out, "--as", "dave", "wallet", "--keypair", two), 1,
        "%s", out);
    cr_assert_not_null (strstr (out, "wrong_password"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL_INPUT ("correct horse battery\n", &out, "--as", "dave", "--json",
                                  "wallet", "--keypair", two),
                  0, "%s", out);
    json_t *j = s_json (out);
    cr_assert_str_eq (s_str (j, "username"), "dave");
    cr_assert_str_eq (s_str (j, "wallet"), second.address);
    json_decref (j);
    free (out);
    cr_assert_eq (
        S_MCECTL_INPUT ("another long password\n", &out, "register", "erin", "--keypair", one), 0,
        "%s", out);
    free (out);
    //  files that are not keypairs are usage errors, and nothing is sent
    char bad[256];
    snprintf (bad, sizeof bad, "%s/bad.json", s_h.dir);
    FILE *f = fopen (bad, "w");
    fprintf (f, "[1,2,3]\n");
    fclose (f);
    cr_assert_eq (
        S_MCECTL_INPUT ("correct horse battery\n", &out, "register", "fred", "--keypair", bad), 2,
        "%s", out);
    cr_assert_not_null (strstr (out, "not a keypair"), "%s", out);
    free (out);
    //  halves that disagree: the first file's seed with the second's public key
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair (pk, sk, second.seed);
    f = fopen (bad, "w");
    for (int i = 0; i < 64; i++)
        fprintf (f, "%s%u", i ? "," : "[", i < 32 ? first.seed[i] : pk[i - 32]);
    fprintf (f, "]\n");
    fclose (f);
    cr_assert_eq (
        S_MCECTL_INPUT ("correct horse battery\n", &out, "register", "fred", "--keypair", bad), 2,
        "%s", out);
    cr_assert_not_null (strstr (out, "public key"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "register", "fred", "--keypair", "/nonexistent.json"), 2, "%s",
                  out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "register", "--help"), 0, "%s", out);
    cr_assert_not_null (strstr (out, "--keypair FILE"), "%s", out);
    free (out);
}

//  Polls the gateway's /api/health (every 50 ms, with a deadline) until it says status.
static bool s_wait_gateway_status (const char *status)
{
    char want[64];
    snprintf (want, sizeof want, "\"status\":\"%s\"", status);
    int64_t deadline = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (clock_mono_ns () < deadline) {
        char *body = NULL;
        bool seen =
            harness_http (&s_h, "GET", "/api/health", NULL, &body) == 200 && strstr (body, want);
        free (body);
        if (seen)
            return true;
        zclock_sleep (50);
    }
    return false;
}

Test (mcectl, health_is_up_then_down_with_the_matcher_stopped, .fini = s_fini, .timeout = 120)
{
    int matcher = s_start ("mcectl_health");
    //  The gateway says "ok" once its matcher's heartbeat has come (about a second).
    cr_assert (s_wait_gateway_status ("ok"), "the gateway never said ok");
    char *out;
    cr_assert_eq (S_MCECTL (&out, "health"), 0, "%s", out);
    cr_assert_not_null (strstr (out, "gateway      up"), "%s", out);
    cr_assert_not_null (strstr (out, "matcher      up"), "%s", out);
    cr_assert_not_null (strstr (out, "persister    off"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "health", "--json"), 0, "%s", out);
    json_t *j = s_json (out);
    cr_assert (json_is_true (json_object_get (j, "ok")), "%s", out);
    json_decref (j);
    free (out);

    harness_stop (&s_h, matcher, SIGTERM);
    cr_assert_eq (S_MCECTL (&out, "health"), 1, "%s", out);
    cr_assert_not_null (strstr (out, "matcher      down"), "%s", out);
    free (out);
    //  the gateway notices when the matcher's heartbeats stop coming (3 s)
    cr_assert (s_wait_gateway_status ("degraded"), "the gateway never noticed");
    cr_assert_eq (S_MCECTL (&out, "health"), 1, "%s", out);
    cr_assert_not_null (strstr (out, "gateway      degraded  matcher down"), "%s", out);
    free (out);
    cr_assert_eq (S_MCECTL (&out, "--json", "health"), 1, "%s", out);
    j = s_json (out);
    cr_assert (json_is_false (json_object_get (j, "ok")), "%s", out);
    json_decref (j);
    free (out);
}
