/*  test_dashboard — the web dashboard the gateway serves, with the real gateway, matcher and
    Postgres: its files and their headers (a Content-Security-Policy that lets the page reach
    the broadcaster and nothing else), its config route, and two people trading through it in
    headless Chromium (tests/browser/dashboard.mjs, Playwright), down to the trade in the
    trades list, the depth chart redrawn and a screenshot.

    They trade twice: with the real mce-broadcaster, where the page must go live on its
    WebSocket and get the bid, the trade and the remainder as updates (no market data over
    HTTP); and with no broadcaster where the gateway says it is, where the page must poll the
    HTTP API. The WebSocket path's corners (gaps, snapshots that already have the update after
    them, a new epoch, the private orders channel, the broadcaster going away and coming back)
    are tests/browser/live.mjs's, against a stand-in for the broadcaster that speaks
    broadcaster/PROTOCOL.md. Signing up in the page, with a browser wallet's signMessage or a
    pasted signature, is tests/browser/register.mjs's. Those markets trade without escrow.

    Money goes through the page in a market with escrow (tests/browser/account.mjs), with the
    real settler, persister and broadcaster and the local ledger: deposits credited from the
    chain, or failed with its reason, orders and a withdrawal the balance does not cover
    refused, a trade and its settlement, a withdrawal paid. How the page follows the account
    channel, and deposits and withdrawals to their final statuses, in detail, is live.mjs's.
    The same test amends and cancels an order in the page.

    An operator's page (tests/browser/operator.mjs) shows every part's health, asks before a
    market control, and lists a settlement the chain refused, with its reason and a retry.

    Chromium and the browser tests' node_modules come from tools/deps.sh: without them the test
    fails and says so, rather than passing without a browser.
*/
#include "harness.h"
#include "wsclient.h"
#include "ledgertest.h"
#include "pg.h"
#include "pgtest.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_CHROMIUM    "/usr/bin/chromium"
#define S_BROWSER_DIR MCE_SOURCE_DIR "/tests/browser"
#define S_BROWSER_MS  240000 //  the browser runs' own watchdogs: 120 s (account.mjs 180 s)
#define S_DEPS_ADVICE "run tools/deps.sh (it installs chromium and the browser test's npm packages)"
#define S_PASSWORD    "correct horse battery"

extern char **environ;

static pgtest_t s_server; //  the runner's (ReportHook), shared by the tests through the env
static harness_t s_h;
static ledgertest_t s_ledger;                //  the local ledger, in the test with escrow
static char s_conninfo[PGTEST_CONNINFO_MAX]; //  this test's database

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) || pgtest_export (&s_server))
        fprintf (stderr, "test_dashboard: no PostgreSQL: the tests will fail\n");
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
    (void) stats;
    pgtest_stop (&s_server);
}

static void s_fini (void)
{
    harness_cleanup (&s_h);
    ledgertest_stop (&s_ledger);
}

//  The broadcaster's URL the gateway hands the page: the harness's broadcaster port, where the
//  real broadcaster listens when the test starts one, live.mjs's stand-in listens in its test,
//  and nothing listens otherwise (the page falls back to polling).
static void s_broadcaster_url (char *out, size_t size)
{
    snprintf (out, size, "ws://127.0.0.1:%d", s_h.port_ws);
}

//  A fresh database, a matcher, a broadcaster if asked (it follows the matcher's bus and checks
//  tokens with the harness's gateway.jwt_secret, as the gateway signs them) and a gateway.
//  Epochs of 30 days: none closes during a test. With escrow, campus-1 trades from balances,
//  and the local ledger (with wallets for dora and erin, s_register's), the persister (the lists
//  of deposits, withdrawals and trades) and the settler (deposits, withdrawals, settlements)
//  run too.
static void s_start (const char *db, bool broadcaster, bool escrow)
{
    pgtest_t pg;
    cr_assert_eq (pgtest_attach (&pg), 0, "no shared PostgreSQL");
    cr_assert_eq (pgtest_create_db (&pg, db, s_conninfo, sizeof s_conninfo), 0);
    char config[2048];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.001\"; lot = \"0.1\"; min_qty = "
              "\"0.1\"; max_qty = \"1000\"; max_price = \"10\"; epoch_seconds = 2592000; "
              "escrow = %s; },\n"
              "            { id = \"campus-2\"; mode = \"auction\"; epoch_seconds = 2592000; "
              "escrow = false; } );\n"
              "postgres = { url = \"%s\"; };\n",
              escrow ? "true" : "false", s_conninfo);
    harness_init (&s_h, config);
    //  The harness writes the gateway's section itself: the URL goes in by environment.
    char ws[64];
    s_broadcaster_url (ws, sizeof ws);
    setenv ("MCE_GATEWAY_BROADCASTER_URL", ws, 1);
    int matcher = harness_start (&s_h, "mce-matcher");
    if (escrow) {
        cr_assert_eq (ledgertest_start (&s_ledger, s_h.dir,
                                        (const char *[]){"--user", "dora", "--user", "erin", NULL}),
                      0, "the local ledger did not start");
        setenv ("MCE_SETTLER_RPC_URL", s_ledger.url, 1);
        setenv ("MCE_SETTLER_KEYS_FILE", s_ledger.setup_path, 1);
        cr_assert (harness_wait_log (&s_h, matcher, "commands on", HARNESS_DEADLINE_MS),
                   "the matcher did not start: see %s", s_h.procs[matcher].log);
        const char *ready[][2] = {{"mce-persister", "Postgres ready"},
                                  {"mce-settler", "settler: ready"}};
        for (size_t i = 0; i < 2; i++) {
            int p = harness_start (&s_h, ready[i][0]);
            cr_assert (harness_wait_log (&s_h, p, ready[i][1], HARNESS_DEADLINE_MS),
                       "%s did not start: see %s", ready[i][0], s_h.procs[p].log);
        }
        unsetenv ("MCE_SETTLER_RPC_URL");
        unsetenv ("MCE_SETTLER_KEYS_FILE");
    }
    if (broadcaster) {
        int b = harness_start (&s_h, "mce-broadcaster");
        cr_assert (harness_wait_log (&s_h, b, "WebSocket on", HARNESS_DEADLINE_MS),
                   "the broadcaster did not start: see %s", s_h.procs[b].log);
    }
    harness_start (&s_h, "mce-gateway");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS));
}

static harness_response_t s_get (const char *path)
{
    harness_response_t resp;
    harness_request (s_h.port_http, &(harness_request_t){.method = "GET", .path = path}, &resp);
    return resp;
}

//  A header that must be there, copied into value.
static void s_header (const harness_response_t *r, const char *name, char *value, size_t size)
{
    cr_assert (harness_response_header (r, name, value, size), "no %s header in\n%s", name,
               r->headers);
}

//  The whole of a file of the source tree (caller frees).
static char *s_source_file (const char *relative)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", MCE_SOURCE_DIR, relative);
    FILE *f = fopen (path, "rb");
    cr_assert_not_null (f, "%s: %s", path, strerror (errno));
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    char buf[8192];
    size_t n;
    while ((n = fread (buf, 1, sizeof buf, f)) > 0)
        fwrite (buf, 1, n, out);
    fclose (f);
    fclose (out);
    return text;
}

Test (dashboard, serves_its_files_with_a_policy_that_lets_them_work, .fini = s_fini, .timeout = 120)
{
    s_start ("dash_files", false, false);
    char ws[64], v[1024];
    s_broadcaster_url (ws, sizeof ws);
    const struct {
        const char *path, *file, *type;
    } files[] = {
        {"/", "gateway/web/index.html", "text/html; charset=utf-8"},
        {"/web/app.js", "gateway/web/app.js", "text/javascript; charset=utf-8"},
        {"/web/style.css", "gateway/web/style.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        harness_response_t r = s_get (files[i].path);
        cr_assert_eq (r.status, 200, "GET %s: %ld %s", files[i].path, r.status, r.body);
        //  byte for byte what is in the source tree: the embedding changes nothing
        char *want = s_source_file (files[i].file);
        cr_assert_str_eq (r.body, want, "GET %s differs from %s", files[i].path, files[i].file);
        free (want);
        s_header (&r, "Content-Type", v, sizeof v);
        cr_assert_str_eq (v, files[i].type);
        s_header (&r, "X-Content-Type-Options", v, sizeof v);
        cr_assert_str_eq (v, "nosniff");
        s_header (&r, "X-Frame-Options", v, sizeof v);
        cr_assert_str_eq (v, "DENY");
        s_header (&r, "Referrer-Policy", v, sizeof v);
        cr_assert_str_eq (v, "no-referrer");
        s_header (&r, "Content-Security-Policy", v, sizeof v);
        char csp[512];
        snprintf (csp, sizeof csp,
                  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                  "connect-src 'self' %s; frame-ancestors 'none'; base-uri 'none'; "
                  "form-action 'none'",
                  ws);
        cr_assert_str_eq (v, csp);
        harness_response_free (&r);
    }
    //  The page keeps to that policy: no inline script, style or handler anywhere.
    char *html = s_source_file ("gateway/web/index.html");
    cr_assert_null (strstr (html, "<script>"), "an inline script in index.html");
    cr_assert_null (strstr (html, "<style"), "an inline style sheet in index.html");
    cr_assert_null (strstr (html, " style="), "an inline style in index.html");
    cr_assert_null (strstr (html, " onclick="), "an inline handler in index.html");
    free (html);

    harness_response_t r = s_get ("/api/dashboard/config");
    cr_assert_eq (r.status, 200, "%s", r.body);
    s_header (&r, "Content-Type", v, sizeof v);
    cr_assert_str_eq (v, "application/json");
    json_error_t err;
    json_t *config = json_loads (r.body, 0, &err);
    cr_assert_not_null (config, "%s: %s", err.text, r.body);
    cr_assert_str_eq (json_string_value (json_object_get (config, "broadcaster_url")), ws);
    json_t *markets = json_object_get (config, "markets");
    cr_assert_eq (json_array_size (markets), 2, "%s", r.body);
    json_t *first = json_array_get (markets, 0), *second = json_array_get (markets, 1);
    cr_assert_str_eq (json_string_value (json_object_get (first, "id")), "campus-1");
    cr_assert_str_eq (json_string_value (json_object_get (first, "tick")), "0.001");
    cr_assert_str_eq (json_string_value (json_object_get (first, "lot")), "0.1");
    cr_assert_str_eq (json_string_value (json_object_get (first, "mode")), "continuous");
    cr_assert_str_eq (json_string_value (json_object_get (second, "mode")), "auction");
    json_decref (config);
    harness_response_free (&r);

    //  Only these paths are files: anything else under /web/ is the API's 404
    r = s_get ("/web/other.js");
    cr_assert_eq (r.status, 404, "%s", r.body);
    harness_response_free (&r);
}

//  Registers user through the API with a wallet of its own (the challenge, signed): the
//  ledger's of that name when the ledger runs (funded, the platform its delegate), else a new one.
static void s_register (const char *user)
{
    json_t *funded = s_ledger.setup ? ledgertest_user (&s_ledger, user) : NULL;
    harness_wallet_t w;
    harness_wallet (&w, funded ? json_string_value (json_object_get (funded, "walletSecretSeedHex"))
                               : NULL);
    char *answer = NULL;
    long status = harness_sign_up (s_h.port_http, user, S_PASSWORD, &w, &answer);
    cr_assert_eq (status, 201, "register %s: %ld %s", user, status, answer);
    free (answer);
}

//  Runs argv (argv[0] found in PATH) with its output into log, and waits for it at most
//  timeout_ms (a pidfd says when it ends; then it is killed). Returns its exit status, -1 if
//  it could not start, -2 if it was killed for time.
static int s_run (char *const argv[], const char *log, int timeout_ms)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_addopen (&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2 (&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&fa);
    if (rc != 0)
        return -1;
    int fd = (int) syscall (SYS_pidfd_open, pid, 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    bool killed = false;
    if (fd < 0 || poll (&p, 1, timeout_ms) <= 0) {
        kill (pid, SIGKILL);
        killed = true;
    }
    if (fd >= 0)
        close (fd);
    int status = 0;
    waitpid (pid, &status, 0);
    if (killed)
        return -2;
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

//  Runs tests/browser/<script> with node and args (NULL-terminated), its output shown, and fails
//  the test unless it exits 0. Chromium and node_modules must be there: a clear failure if not.
static void s_browser (const char *script, const char *const *args)
{
    cr_assert_eq (access (S_CHROMIUM, X_OK), 0, "no %s: %s", S_CHROMIUM, S_DEPS_ADVICE);
    cr_assert_eq (access (S_BROWSER_DIR "/node_modules/playwright-core/package.json", R_OK), 0,
                  "no %s/node_modules/playwright-core: %s", S_BROWSER_DIR, S_DEPS_ADVICE);
    char path[512], log[256];
    snprintf (path, sizeof path, "%s/%s", S_BROWSER_DIR, script);
    snprintf (log, sizeof log, "%s/%s.log", s_h.dir, script);
    char *argv[16] = {"node", path};
    int n = 2;
    for (; args[n - 2] && n < 15; n++)
        argv[n] = (char *) args[n - 2];
    argv[n] = NULL;
    int rc = s_run (argv, log, S_BROWSER_MS);
    FILE *f = fopen (log, "r");
    char line[1024];
    while (f && fgets (line, sizeof line, f))
        fprintf (stderr, "  %s", line);
    if (f)
        fclose (f);
    cr_assert_neq (rc, -1, "cannot run node: %s", S_DEPS_ADVICE);
    cr_assert_neq (rc, -2, "%s ran longer than %d s", script, S_BROWSER_MS / 1000);
    cr_assert_neq (rc, 2, "%s cannot run here: %s", script, S_DEPS_ADVICE);
    cr_assert_eq (rc, 0, "%s failed (exit %d): its output is above", script, rc);
}

//  Where every screenshot is kept after the run, as the test's artefacts (the harness removes
//  its own folder): artefacts/ in the build folder.
#define S_ARTEFACTS MCE_BIN_DIR "/../artefacts"

//  The screenshot at path is a PNG, and not an empty one. Kept in S_ARTEFACTS under its own
//  name, and also where the environment variable keep (when not NULL, and set) says, for a
//  person to look at after the run.
static void s_screenshot (const char *path, const char *keep)
{
    struct stat st;
    cr_assert_eq (stat (path, &st), 0, "no screenshot at %s", path);
    cr_assert_gt (st.st_size, 10000, "a %lld-byte screenshot", (long long) st.st_size);
    unsigned char magic[8] = {0};
    FILE *f = fopen (path, "rb");
    cr_assert_not_null (f);
    cr_assert_eq (fread (magic, 1, sizeof magic, f), sizeof magic);
    fclose (f);
    cr_assert_eq (memcmp (magic, "\x89PNG\r\n\x1a\n", 8), 0, "%s is not a PNG", path);
    char *mkdir[] = {"mkdir", "-p", S_ARTEFACTS, NULL};
    char *keep_copy[] = {"cp", (char *) path, S_ARTEFACTS "/", NULL};
    cr_assert_eq (s_run (mkdir, "/dev/null", HARNESS_DEADLINE_MS), 0, "mkdir %s", S_ARTEFACTS);
    cr_assert_eq (s_run (keep_copy, "/dev/null", HARNESS_DEADLINE_MS), 0, "cp to %s", S_ARTEFACTS);
    const char *to = keep ? getenv (keep) : NULL;
    if (to && *to) {
        char *copy[] = {"cp", (char *) path, (char *) to, NULL};
        cr_assert_eq (s_run (copy, "/dev/null", HARNESS_DEADLINE_MS), 0, "cp to %s", to);
    }
}

//  alice bids, bob sells into it, in the browser; data is where the page must get its data from,
//  "live" (the broadcaster, which the caller started) or "polling" (the HTTP API).
static void s_trade_in_the_browser (const char *db, const char *data, bool keep_screenshot)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_start (db, strcmp (data, "live") == 0, false);
    s_register ("alice");
    s_register ("bob");
    char url[64], screenshot[256];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", s_h.port_http);
    snprintf (screenshot, sizeof screenshot, "%s/dashboard-%s.png", s_h.dir, data);
    s_browser ("dashboard.mjs", (const char *[]){url, "alice", S_PASSWORD, "bob", S_PASSWORD,
                                                 screenshot, data, NULL});
    s_screenshot (screenshot, keep_screenshot ? "MCE_DASHBOARD_SCREENSHOT" : NULL);
}

//  With the real broadcaster: the page goes live, and the trade reaches it by WebSocket.
Test (dashboard, two_users_trade_in_the_browser, .fini = s_fini, .timeout = 300)
{
    s_trade_in_the_browser ("dash_browser", "live", true);
}

//  With no broadcaster: the page polls the HTTP API, and the trade reaches it that way.
Test (dashboard, two_users_trade_in_the_browser_by_polling, .fini = s_fini, .timeout = 300)
{
    s_trade_in_the_browser ("dash_polling", "polling", false);
}

//  The WebSocket path, against tests/browser/live.mjs's stand-in for the broadcaster, which
//  listens where the gateway tells the page the broadcaster is.
Test (dashboard, follows_the_broadcaster_and_falls_back_to_polling, .fini = s_fini, .timeout = 300)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_start ("dash_live", false, false);
    s_register ("carol");
    char url[64], port[16];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", s_h.port_http);
    snprintf (port, sizeof port, "%d", s_h.port_ws);
    s_browser ("live.mjs", (const char *[]){url, port, "carol", S_PASSWORD, NULL});
}

//  Signing up in the page (tests/browser/register.mjs): one person with a browser wallet (a
//  stand-in for Phantom's injected provider), one without, who pastes a signature. Both end
//  up in Postgres with the wallets they proved.
Test (dashboard, signs_up_with_a_browser_wallet_or_a_pasted_signature, .fini = s_fini,
      .timeout = 300)
{
    s_start ("dash_register", false, false);
    harness_wallet_t one, two;
    harness_wallet (&one, NULL);
    harness_wallet (&two, NULL);
    char hex1[2 * AUTH_SEED_BYTES + 1], hex2[2 * AUTH_SEED_BYTES + 1], url[64];
    sodium_bin2hex (hex1, sizeof hex1, one.seed, sizeof one.seed);
    sodium_bin2hex (hex2, sizeof hex2, two.seed, sizeof two.seed);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", s_h.port_http);
    s_browser ("register.mjs",
               (const char *[]){url, "wendy", hex1, "xavier", hex2, S_PASSWORD, NULL});
    char err[256];
    pg_t *pg = pg_connect (s_conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "%s", err);
    const char *names[] = {"wendy", "xavier"}, *wallets[] = {one.address, two.address};
    for (int i = 0; i < 2; i++) {
        pg_result_t *r = pg_exec (pg, "SELECT wallet FROM users WHERE username = $1", 1, &names[i]);
        cr_assert_not_null (r, "%s", pg_error (pg));
        cr_assert_eq (pg_rows (r), 1, "%s is registered", names[i]);
        cr_assert_str_eq (pg_value (r, 0, 0), wallets[i]);
        pg_result_free (&r);
    }
    pg_destroy (&pg);
}

//  The next message on ws that is a snapshot, as JSON (to decref).
static json_t *s_ws_snapshot (wsclient_t *ws, const char *request)
{
    cr_assert_eq (wsclient_send (ws, request), 0);
    for (int i = 0; i < 4; i++) {
        const char *text = wsclient_recv (ws, HARNESS_DEADLINE_MS);
        cr_assert_not_null (text, "an answer to %s", request);
        json_t *j = json_loads (text, 0, NULL);
        cr_assert_not_null (j, "%s", text);
        const char *type = json_string_value (json_object_get (j, "type"));
        cr_assert_str_neq (type, "error", "%s", text);
        if (strcmp (type, "snapshot") == 0)
            return j;
        json_decref (j);
    }
    cr_assert_fail ("no snapshot for %s", request);
    return NULL;
}

//  After the trade above settled: the public settlements channel names no party (a stranger
//  reading it learns nothing of who traded), and each party's own channel shows the
//  settlement with the side that party was on.
static void s_settlements_are_private (void)
{
    wsclient_t *ws = wsclient_connect (s_h.port_ws, NULL, 0, HARNESS_DEADLINE_MS);
    cr_assert_not_null (ws);
    json_t *pub = s_ws_snapshot (
        ws, "{\"op\":\"subscribe\",\"channel\":\"settlements\",\"market\":\"campus-1\"}");
    char *text = json_dumps (pub, JSON_COMPACT);
    json_t *list = json_object_get (json_object_get (pub, "data"), "settlements");
    cr_assert_geq (json_array_size (list), 1, "%s", text);
    cr_assert_null (strstr (text, "dora"), "the public channel names a party: %s", text);
    cr_assert_null (strstr (text, "erin"), "the public channel names a party: %s", text);
    cr_assert_null (strstr (text, "\"buyer\""), "%s", text);
    free (text);
    json_decref (pub);
    const char *users[] = {"dora", "erin"};
    const char *sides[2];
    for (int i = 0; i < 2; i++) {
        char token[1024], sub[1200];
        harness_token (users[i], "user", token, sizeof token);
        snprintf (sub, sizeof sub,
                  "{\"op\":\"subscribe\",\"channel\":\"my_settlements\",\"token\":\"%s\"}", token);
        json_t *mine = s_ws_snapshot (ws, sub);
        text = json_dumps (mine, JSON_COMPACT);
        cr_assert_str_eq (json_string_value (json_object_get (mine, "user")), users[i], "%s", text);
        json_t *own = json_object_get (json_object_get (mine, "data"), "settlements");
        cr_assert_eq (json_array_size (own), 1, "one trade, one settlement: %s", text);
        json_t *row = json_array_get (own, 0);
        cr_assert_str_eq (json_string_value (json_object_get (row, "state")), "confirmed", "%s",
                          text);
        cr_assert_not_null (json_string_value (json_object_get (row, "signature")), "%s", text);
        sides[i] = json_string_value (json_object_get (row, "side"));
        cr_assert_not_null (sides[i], "%s", text);
        sides[i] = strcmp (sides[i], "buy") == 0 ? "buy" : "sell";
        cr_assert_null (strstr (text, users[1 - i]), "the counterparty is not named: %s", text);
        free (text);
        json_decref (mine);
    }
    cr_assert_str_neq (sides[0], sides[1], "one bought, the other sold");
    wsclient_destroy (&ws);
}

//  Money in the page, end to end (tests/browser/account.mjs): in a market with escrow, dora
//  deposits energy and erin payment through the page, with the real settler and the local
//  ledger; orders and a withdrawal the balance does not cover are refused, and the page says
//  what to deposit; they trade, erin sees the trade settle and withdraws what is left. The
//  screenshots, at a desktop's width and a phone's, are kept where MCE_ACCOUNT_SCREENSHOT and
//  MCE_ACCOUNT_SCREENSHOT_PHONE say.
Test (dashboard, deposits_trades_and_withdraws_in_the_browser, .fini = s_fini, .timeout = 400)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_start ("dash_escrow", true, true);
    s_register ("dora");
    s_register ("erin");
    char url[64], desktop[256], phone[256];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", s_h.port_http);
    snprintf (desktop, sizeof desktop, "%s/account.png", s_h.dir);
    snprintf (phone, sizeof phone, "%s/account-phone.png", s_h.dir);
    s_browser ("account.mjs",
               (const char *[]){url, "dora", "erin", S_PASSWORD, desktop, phone, NULL});
    s_screenshot (desktop, "MCE_ACCOUNT_SCREENSHOT");
    s_screenshot (phone, "MCE_ACCOUNT_SCREENSHOT_PHONE");
    s_settlements_are_private ();
}

//  user places a limit order in market through the API (the token harness_token signs).
static void s_order (const char *user, const char *market, const char *side, const char *kwh,
                     const char *price)
{
    char token[1024], body[256];
    harness_token (user, "user", token, sizeof token);
    snprintf (body, sizeof body,
              "{\"market\":\"%s\",\"side\":\"%s\",\"energy_amount\":\"%s\",\"price\":\"%s\"}",
              market, side, kwh, price);
    harness_response_t r = {0};
    long status = harness_request (
        s_h.port_http,
        &(harness_request_t){
            .method = "POST", .path = "/api/trading/orders", .body = body, .token = token},
        &r);
    cr_assert (status == 200 || status == 201, "%s's order: %ld %s", user, status, r.body);
    harness_response_free (&r);
}

//  The operator's view (tests/browser/operator.mjs): in campus-2, an auction without escrow,
//  erin (a funded wallet) sells to gus, whose wallet has no token accounts on the chain, so
//  the trade gate closure makes cannot settle; erin deposited 3 kWh into the escrow before.
//  An administrator's page shows every part healthy and the escrow reconciled (the energy
//  vault holds the 3 kWh owed), clears the epoch after confirming (the trade is made), lists the
//  failed settlement with its reason and retries it after confirming. The screenshots are kept
//  where MCE_OPERATOR_SCREENSHOT and MCE_OPERATOR_SCREENSHOT_PHONE say.
Test (dashboard, an_operator_sees_health_and_retries_a_failed_settlement, .fini = s_fini,
      .timeout = 400)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_start ("dash_operator", true, true);
    s_register ("erin");
    s_register ("gus"); //  not one of the ledger's users: a wallet of its own, no token accounts
    harness_user_add (s_conninfo, "root", "admin");
    char erin[1024];
    harness_token ("erin", "user", erin, sizeof erin);
    cr_assert_eq (harness_deposit (s_h.port_http, erin, "energy", "3", HARNESS_DEADLINE_MS), 0,
                  "erin's deposit was not credited");
    s_order ("erin", "campus-2", "Sell", "2", "0.10");
    s_order ("gus", "campus-2", "Buy", "2", "0.20");
    char url[64], token[1024], desktop[256], phone[256];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", s_h.port_http);
    harness_token ("root", "admin", token, sizeof token);
    snprintf (desktop, sizeof desktop, "%s/operator.png", s_h.dir);
    snprintf (phone, sizeof phone, "%s/operator-phone.png", s_h.dir);
    s_browser ("operator.mjs", (const char *[]){url, token, "campus-2", desktop, phone, NULL});
    s_screenshot (desktop, "MCE_OPERATOR_SCREENSHOT");
    s_screenshot (phone, "MCE_OPERATOR_SCREENSHOT_PHONE");
}
