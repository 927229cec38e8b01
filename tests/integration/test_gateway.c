/*  test_gateway — the HTTP API with the real gateway, matcher and Postgres: sign-up with a
    proven wallet and sign-in, every bad registration refused with nothing written, a nonce
    good once across two gateways, tokens of users who never registered refused (HTTP and
    the native port), a table of bad requests that must each get the right 4xx and change
    nothing, orders that trade and show in the market data, rate limits, security headers and
    CORS, and every route of the OpenAPI document answering.
*/
#include "auth.h"
#include "clock.h"
#include "harness.h"
#include "pg.h"
#include "pgtest.h"
#include "proto.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pgtest_t s_server; //  the runner's (ReportHook), shared by the tests through the env
static harness_t s_h;
static char s_conninfo[PGTEST_CONNINFO_MAX]; //  this test's database

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) || pgtest_export (&s_server))
        fprintf (stderr, "test_gateway: no PostgreSQL: the tests will fail\n");
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

//  A fresh database, a matcher and a gateway; extra is more config. Returns the gateway.
static int s_start (const char *db, const char *extra)
{
    pgtest_t pg;
    cr_assert_eq (pgtest_attach (&pg), 0, "no shared PostgreSQL");
    cr_assert_eq (pgtest_create_db (&pg, db, s_conninfo, sizeof s_conninfo), 0);
    char config[2048];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.001\"; lot = \"0.1\"; min_qty = "
              "\"0.1\"; max_qty = \"1000\"; max_price = \"10\"; epoch_seconds = 2592000; escrow = "
              "false; },\n"
              "            { id = \"campus-2\"; epoch_seconds = 2592000; escrow = false; "
              "mode = \"auction\"; } );\n"
              "postgres = { url = \"%s\"; };\n%s",
              s_conninfo, extra ? extra : "");
    harness_init (&s_h, config);
    harness_start (&s_h, "mce-matcher");
    int gateway = harness_start (&s_h, "mce-gateway");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS));
    return gateway;
}

//  One request; the response is returned (free with harness_response_free).
static harness_response_t s_call (const char *method, const char *path, const char *token,
                                  const char *body)
{
    harness_response_t resp;
    harness_request (
        s_h.port_http,
        &(harness_request_t){.method = method, .path = path, .token = token, .body = body}, &resp);
    return resp;
}

//  The body as JSON (the test fails if it is not).
static json_t *s_json (const harness_response_t *resp)
{
    json_error_t err;
    json_t *j = json_loads (resp->body ? resp->body : "", 0, &err);
    cr_assert_not_null (j, "not JSON (%s): %s", err.text, resp->body);
    return j;
}

//  A string member at a dotted path ("error.code"), or NULL.
static const char *s_get (json_t *j, const char *path)
{
    char key[64];
    while (j && strchr (path, '.')) {
        size_t n = (size_t) (strchr (path, '.') - path);
        snprintf (key, sizeof key, "%.*s", (int) n, path);
        j = json_object_get (j, key);
        path += n + 1;
    }
    return j ? json_string_value (json_object_get (j, path)) : NULL;
}

//  Registers with a wallet of its own (challenge, signature) and signs in; returns the token
//  in out.
static void s_sign_up (const char *user, const char *password, char *out, size_t size)
{
    harness_wallet_t w;
    harness_wallet (&w, NULL);
    char *answer = NULL;
    long status = harness_sign_up (s_h.port_http, user, password, &w, &answer);
    cr_assert_eq (status, 201, "register %s: %ld %s", user, status, answer);
    free (answer);
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, password);
    harness_response_t r = s_call ("POST", "/api/auth/login", NULL, body);
    cr_assert_eq (r.status, 200, "login %s: %ld %s", user, r.status, r.body);
    json_t *j = s_json (&r);
    cr_assert_str_eq (s_get (j, "token_type"), "Bearer");
    snprintf (out, size, "%s", s_get (j, "token"));
    json_decref (j);
    harness_response_free (&r);
}

//  A well-formed signature that signs nothing we issued: 64 bytes of 0x01 in base58.
#define S_SIG64                                                                                    \
    "2AXDGYSE4f2sz7tvMMzyHvUfcoJmxudvdhBcmiUSo6ijwfYmfZYsKRxboQMPh3R4kUhXRVdtSXFXMheka4Rc4P2"

//  POSTs an order that must be accepted; returns its id.
static char *s_place (const char *token, const char *body, char *id, size_t size)
{
    harness_response_t r = s_call ("POST", "/api/trading/orders", token, body);
    cr_assert_eq (r.status, 201, "%s -> %ld %s", body, r.status, r.body);
    json_t *j = s_json (&r);
    const char *order_id = s_get (j, "order_id");
    cr_assert_not_null (order_id, "%s", r.body);
    snprintf (id, size, "%s", order_id);
    json_decref (j);
    harness_response_free (&r);
    return id;
}

//  A token signed with key, with header and payload as given (for forgeries).
static void s_forge (const char *header, const char *payload, const char *key, char *out,
                     size_t size)
{
    char h64[256], p64[512], sig64[64];
    sodium_bin2base64 (h64, sizeof h64, (const unsigned char *) header, strlen (header),
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64 (p64, sizeof p64, (const unsigned char *) payload, strlen (payload),
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char signing[800];
    snprintf (signing, sizeof signing, "%s.%s", h64, p64);
    sig64[0] = '\0';
    if (key) {
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init (&st, (const unsigned char *) key, strlen (key));
        crypto_auth_hmacsha256_update (&st, (const unsigned char *) signing, strlen (signing));
        crypto_auth_hmacsha256_final (&st, mac);
        sodium_bin2base64 (sig64, sizeof sig64, mac, sizeof mac,
                           sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    snprintf (out, size, "%s.%s", signing, sig64);
}

Test (gateway, sign_up_sign_in_and_roles, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_auth", NULL);
    char alice[1024];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    //  the same name again, with a wallet of its own
    harness_wallet_t other;
    harness_wallet (&other, NULL);
    harness_response_t r = {0};
    r.status = harness_sign_up (s_h.port_http, "alice", "another one!", &other, &r.body);
    cr_assert_eq (r.status, 409, "%s", r.body);
    json_t *j = s_json (&r);
    cr_assert_str_eq (s_get (j, "error.code"), "username_taken");
    json_decref (j);
    harness_response_free (&r);
    //  a wrong password and an unknown user get the same answer
    const char *tries[] = {"{\"username\":\"alice\",\"password\":\"wrong password\"}",
                           "{\"username\":\"nobody\",\"password\":\"wrong password\"}"};
    for (int i = 0; i < 2; i++) {
        r = s_call ("POST", "/api/auth/login", NULL, tries[i]);
        cr_assert_eq (r.status, 401, "%s", r.body);
        j = s_json (&r);
        cr_assert_str_eq (s_get (j, "error.code"), "invalid_credentials");
        json_decref (j);
        harness_response_free (&r);
    }
    //  the token works, and carries the role "user": admin routes refuse it
    r = s_call ("GET", "/api/trading/orders", alice, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    harness_response_free (&r);
    r = s_call ("GET", "/api/admin/market/health", alice, NULL);
    cr_assert_eq (r.status, 403, "%s", r.body);
    harness_response_free (&r);
    char admin[1024];
    harness_user_add (s_conninfo, "root", "admin"); //  admins are not made by sign-up
    harness_token ("root", "admin", admin, sizeof admin);
    r = s_call ("GET", "/api/admin/market/health", admin, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    j = s_json (&r);
    cr_assert (json_is_true (json_object_get (json_object_get (j, "database"), "up")), "%s",
               r.body);
    json_decref (j);
    harness_response_free (&r);
}

//  The part of the state a bad request must not change: alice's and bob's orders and the book.
static char *s_state (const char *alice, const char *bob)
{
    harness_response_t a = s_call ("GET", "/api/trading/orders", alice, NULL);
    harness_response_t b = s_call ("GET", "/api/trading/orders", bob, NULL);
    harness_response_t d = s_call ("GET", "/api/market/depth?market=campus-1", NULL, NULL);
    json_t *ja = s_json (&a), *jb = s_json (&b), *jd = s_json (&d);
    json_object_del (ja, "seq"); //  rejected commands are events too; the state is what counts
    json_object_del (jb, "seq");
    json_object_del (jd, "seq");
    json_t *all = json_pack ("{s:o,s:o,s:o}", "alice", ja, "bob", jb, "depth", jd);
    char *text = json_dumps (all, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref (all);
    harness_response_free (&a);
    harness_response_free (&b);
    harness_response_free (&d);
    return text;
}

Test (gateway, every_bad_request_gets_its_4xx_and_changes_nothing, .fini = s_fini, .timeout = 180)
{
    s_start ("gw_bad", NULL);
    char alice[1024], bob[1024], admin[1024], expired[1024], forged[1024], none[1024], hs384[1024];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    s_sign_up ("bob", "bob's long password", bob, sizeof bob);
    harness_user_add (s_conninfo, "root", "admin");
    harness_token ("root", "admin", admin, sizeof admin);
    int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
    char payload[256];
    snprintf (payload, sizeof payload,
              "{\"sub\":\"alice\",\"role\":\"user\",\"iat\":%lld,\"exp\":%lld}",
              (long long) now - 7200, (long long) now - 3600);
    s_forge ("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, HARNESS_JWT_SECRET, expired,
             sizeof expired);
    snprintf (payload, sizeof payload,
              "{\"sub\":\"alice\",\"role\":\"admin\",\"iat\":%lld,\"exp\":%lld}", (long long) now,
              (long long) now + 3600);
    s_forge ("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, "not-the-secret-but-long-enough-12345",
             forged, sizeof forged);
    s_forge ("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, NULL, none, sizeof none);
    s_forge ("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", payload, HARNESS_JWT_SECRET, hs384,
             sizeof hs384);
    //  Bob's resting order, and one of Alice's with a client_order_id, to act on.
    char bobs[32], path_bobs[64], alices[32];
    s_place (
        bob,
        "{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":\"5\",\"price\":\"0.2\"}",
        bobs, sizeof bobs);
    s_place (alice,
             "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
             "\"client_order_id\":\"a-1\"}",
             alices, sizeof alices);
    snprintf (path_bobs, sizeof path_bobs, "/api/trading/orders/%s", bobs);
    char *before = s_state (alice, bob);

    char huge_coid[200] = "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\","
                          "\"price\":\"0.1\",\"client_order_id\":\"";
    memset (huge_coid + strlen (huge_coid), 'x', 65);
    strcat (huge_coid, "\"}");
    static const char *O = "/api/trading/orders";
    const struct {
        const char *method, *path, *token, *body;
        long status;
        const char *code, *field;
    } cases[] = {
        //  the body's shape
        {"POST", O, alice, "not json", 400, "bad_json", NULL},
        {"POST", O, alice, "[1,2]", 400, "bad_json", NULL},
        {"POST", O, alice, "", 400, "bad_json", NULL},
        {"POST", O, alice, "{\"market\":\"campus-1\",\"market\":\"campus-2\"}", 400, "bad_json",
         NULL},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_source\":\"\xff\xfe\"}", 400,
         "bad_json", NULL},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"colour\":\"green\"}",
         400, "unknown_field", "colour"},
        //  missing fields
        {"POST", O, alice, "{\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\"}", 400,
         "missing_field", "market"},
        {"POST", O, alice, "{\"market\":\"campus-1\",\"energy_amount\":\"1\",\"price\":\"0.1\"}",
         400, "missing_field", "side"},
        {"POST", O, alice, "{\"market\":\"campus-1\",\"side\":\"Buy\",\"price\":\"0.1\"}", 400,
         "missing_field", "energy_amount"},
        {"POST", O, alice, "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\"}",
         400, "missing_field", "price"},
        //  wrong types
        {"POST", O, alice,
         "{\"market\":7,\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\"}", 400,
         "bad_field", "market"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Up\",\"energy_amount\":\"1\",\"price\":\"0.1\"}", 400,
         "bad_field", "side"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":true,\"price\":\"0.1\"}", 400,
         "bad_field", "energy_amount"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":0.15}", 400,
         "bad_field", "price"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"post_only\":\"yes\"}",
         400, "bad_field", "post_only"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"time_in_force\":\"forever\"}",
         400, "bad_field", "time_in_force"},
        //  amounts: negative, zero, over-precise, exponents, too big
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"-1\",\"price\":\"0.1\"}",
         400, "bad_field", "energy_amount"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"0\",\"price\":\"0.1\"}",
         400, "not_positive", "energy_amount"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"0.0001\",\"price\":\"0."
         "1\"}",
         400, "too_precise", "energy_amount"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0."
         "0000001\"}",
         400, "too_precise", "price"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1e3\",\"price\":\"0.1\"}",
         400, "bad_field", "energy_amount"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"-0.1\"}",
         400, "bad_field", "price"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0\"}", 400,
         "not_positive", "price"},
        //  the market's limits
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1505\"}",
         422, "off_tick", "price"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1.25\",\"price\":\"0.1\"}",
         422, "off_lot", "energy_amount"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"2000\",\"price\":\"0.1\"}",
         422, "bad_quantity", "energy_amount"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"11\"}", 422,
         "outside_band", "price"},
        {"POST", O, alice,
         "{\"market\":\"mars\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\"}", 422,
         "unknown_market", "market"},
        //  combinations that make no sense
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"order_type\":\"Market\",\"energy_amount\":"
         "\"1\","
         "\"price\":\"0.1\"}",
         400, "bad_field", "price"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"epoch\":5,\"delivery_time\":\"2026-11-22T10:00:00Z\"}",
         400, "bad_field", "epoch"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"delivery_time\":\"tomorrow\"}",
         400, "bad_field", "delivery_time"},
        //  1970 is epoch 0, which on the wire means "the current one": refused, not placed there
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"delivery_time\":\"1970-01-01T00:00:00Z\"}",
         422, "epoch_closed", "delivery_time"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"delivery_time\":\"2020-01-01T00:00:00Z\"}",
         422, "epoch_closed", "delivery_time"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"expires_at\":\"2020-01-01T00:00:00Z\"}",
         422, "expired", "expires_at"},
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\","
         "\"client_order_id\":\"bad\\u0001id\"}",
         400, "bad_field", "client_order_id"},
        {"POST", O, alice, huge_coid, 400, "bad_field", "client_order_id"},
        //  a client_order_id reused with other content
        {"POST", O, alice,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"2\",\"price\":\"0.1\","
         "\"client_order_id\":\"a-1\"}",
         409, "duplicate_client_id", NULL},
        //  tokens
        {"POST", O, NULL,
         "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\"}",
         401, "unauthenticated", NULL},
        {"POST", O, expired, "{}", 401, "bad_token", NULL},
        {"POST", O, forged, "{}", 401, "bad_token", NULL},
        {"POST", O, none, "{}", 401, "bad_token", NULL},
        {"POST", O, hs384, "{}", 401, "bad_token", NULL},
        {"POST", O, "garbage", "{}", 401, "bad_token", NULL},
        //  other people's orders, unknown orders
        {"DELETE", path_bobs, alice, NULL, 404, "order_not_found", NULL},
        {"PATCH", path_bobs, alice, "{\"price\":\"0.3\"}", 404, "order_not_found", NULL},
        {"GET", path_bobs, alice, NULL, 404, "order_not_found", NULL},
        {"DELETE", "/api/trading/orders/999999", alice, NULL, 404, "order_not_found", NULL},
        {"DELETE", "/api/trading/orders/abc", alice, NULL, 404, "order_not_found", NULL},
        {"PATCH", path_bobs, bob, "{}", 400, "missing_field", NULL},
        {"PATCH", path_bobs, bob, "{\"size\":\"1\"}", 400, "unknown_field", "size"},
        //  roles and routes
        {"POST", "/api/admin/market/control", alice,
         "{\"market\":\"campus-1\",\"action\":\"pause_trading\"}", 403, "forbidden", NULL},
        {"POST", "/api/admin/market/control", admin,
         "{\"market\":\"campus-1\",\"action\":\"explode\"}", 400, "bad_field", "action"},
        {"PUT", O, alice, "{}", 405, "method_not_allowed", NULL},
        {"GET", "/api/nowhere", NULL, NULL, 404, "not_found", NULL},
        //  queries
        {"GET", "/api/trading/orders?status=lost", alice, NULL, 400, "bad_query", "status"},
        {"GET", "/api/trading/orders?limit=0", alice, NULL, 400, "bad_query", "limit"},
        {"GET", "/api/trading/orders?limit=abc", alice, NULL, 400, "bad_query", "limit"},
        {"GET", "/api/market/depth?market=mars", NULL, NULL, 400, "unknown_market", "market"},
        {"GET", "/api/admin/market/analytics?timeframe=1y", admin, NULL, 400, "bad_query",
         "timeframe"},
        //  sign-up and sign-in
        {"POST", "/api/auth/register", NULL,
         "{\"username\":\"carol\",\"password\":\"long enough pw\",\"wallet\":\"not-base58-0OIl\"}",
         400, "bad_field", "wallet"},
        {"POST", "/api/auth/register", NULL,
         "{\"username\":\"carol\",\"password\":\"short\","
         "\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\"}",
         400, "bad_field", "password"},
        {"POST", "/api/auth/register", NULL,
         "{\"username\":\"Carol!\",\"password\":\"long enough pw\","
         "\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\"}",
         400, "bad_field", "username"},
        {"POST", "/api/auth/register", NULL,
         "{\"username\":\"carol\",\"password\":\"long enough pw\","
         "\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\",\"role\":\"admin\"}",
         400, "unknown_field", "role"},
        {"POST", "/api/auth/register", NULL,
         "{\"username\":\"carol\",\"password\":\"long enough pw\","
         "\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\"}",
         400, "missing_field", "signature"},
        {"POST", "/api/auth/register", NULL,
         "{\"username\":\"carol\",\"password\":\"long enough pw\","
         "\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\",\"signature\":\"abc\"}",
         400, "bad_field", "signature"},
        {"POST", "/api/auth/register", NULL,
         "{\"username\":\"carol\",\"password\":\"long enough pw\","
         "\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\",\"signature\":\"" S_SIG64
         "\",\"nonce\":\"0OIl\"}",
         400, "bad_field", "nonce"},
        {"POST", "/api/auth/challenge", NULL,
         "{\"username\":\"carol\",\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4\"}", 400,
         "bad_field", "wallet"},
        {"POST", "/api/auth/challenge", NULL,
         "{\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\"}", 400, "missing_field",
         "username"},
        {"POST", "/api/auth/wallet", NULL,
         "{\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\",\"signature\":\"" S_SIG64
         "\"}",
         401, "unauthenticated", NULL},
        {"POST", "/api/auth/wallet", alice,
         "{\"wallet\":\"4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\",\"signature\":\"" S_SIG64
         "\",\"username\":\"bob\"}",
         400, "unknown_field", "username"},
        {"POST", "/api/auth/login", NULL, "{\"username\":\"alice\"}", 400, "missing_field",
         "password"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    cr_assert_geq (n, 40);
    for (size_t i = 0; i < n; i++) {
        harness_response_t r =
            s_call (cases[i].method, cases[i].path, cases[i].token, cases[i].body);
        cr_assert_eq (r.status, cases[i].status, "case %zu: %s %s %s -> %ld %s", i, cases[i].method,
                      cases[i].path, cases[i].body ? cases[i].body : "", r.status, r.body);
        json_t *j = s_json (&r);
        cr_assert_str_eq (s_get (j, "error.code"), cases[i].code, "case %zu: %s", i, r.body);
        cr_assert_not_null (s_get (j, "error.message"), "case %zu: %s", i, r.body);
        json_t *field = json_object_get (json_object_get (j, "error"), "field");
        cr_assert_not_null (field, "case %zu: an error always has a field member: %s", i, r.body);
        if (cases[i].field)
            cr_assert_str_eq (json_string_value (field), cases[i].field, "case %zu: %s", i, r.body);
        else
            cr_assert (json_is_null (field), "case %zu: %s", i, r.body);
        json_decref (j);
        harness_response_free (&r);
    }
    //  A body beyond gateway.max_body_bytes, and a 10 MB header.
    char *big = malloc (70001);
    memset (big, ' ', 70000);
    big[0] = '{', big[69999] = '}', big[70000] = '\0';
    harness_response_t r = s_call ("POST", O, alice, big);
    cr_assert_eq (r.status, 413, "%s", r.body);
    harness_response_free (&r);
    free (big);
    size_t hsize = 10u << 20;
    char *header = malloc (hsize + 16);
    memcpy (header, "X-Junk: ", 8);
    memset (header + 8, 'a', hsize);
    header[hsize + 8] = '\0';
    harness_request (s_h.port_http,
                     &(harness_request_t){
                         .method = "GET", .path = "/api/market/stats", .headers = {header, NULL}},
                     &r);
    cr_assert (r.status == 431 || r.status == 413 || r.status == 400 || r.status == 0,
               "a 10 MB header is refused (%ld)", r.status);
    cr_assert_neq (r.status, 200);
    harness_response_free (&r);
    free (header);
    //  ...and the gateway still answers, and nothing changed.
    char *after = s_state (alice, bob);
    cr_assert_str_eq (after, before);
    free (before);
    free (after);
}

Test (gateway, orders_trade_and_show_in_the_market_data, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_trade", NULL);
    char alice[1024], bob[1024], a[32], b[32], path[64];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    s_sign_up ("bob", "bob's long password", bob, sizeof bob);
    s_place (
        alice,
        "{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":\"10\",\"price\":\"0.15\","
        "\"energy_source\":\"solar\"}",
        a, sizeof a);
    s_place (
        bob,
        "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"4\",\"price\":\"0.16\"}", b,
        sizeof b);
    //  4 kWh traded at the resting order's price; the ask keeps 6
    harness_response_t r = s_call ("GET", "/api/market/depth?market=campus-1", NULL, NULL);
    json_t *j = s_json (&r);
    json_t *ask = json_array_get (json_object_get (j, "asks"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (ask, "price")), "0.15", "%s", r.body);
    cr_assert_str_eq (json_string_value (json_object_get (ask, "energy_amount")), "6", "%s",
                      r.body);
    cr_assert_eq (json_array_size (json_object_get (j, "bids")), 0, "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/stats", NULL, NULL);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "last_price"), "0.15", "%s", r.body);
    cr_assert_str_eq (s_get (j, "volume_24h"), "4", "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/trades?limit=10", NULL, NULL);
    j = s_json (&r);
    cr_assert_eq (json_array_size (json_object_get (j, "trades")), 1, "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    //  each side sees its own order and trade
    snprintf (path, sizeof path, "/api/trading/orders/%s", b);
    r = s_call ("GET", path, bob, NULL);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "status"), "filled", "%s", r.body);
    cr_assert_str_eq (s_get (j, "average_price"), "0.15", "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/trades/my-history", bob, NULL);
    j = s_json (&r);
    json_t *t = json_array_get (json_object_get (j, "trades"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (t, "side")), "Buy", "%s", r.body);
    cr_assert_str_eq (json_string_value (json_object_get (t, "energy_amount")), "4", "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/trading/orders?status=open", alice, NULL);
    j = s_json (&r);
    cr_assert_eq (json_integer_value (json_object_get (j, "total")), 1, "%s", r.body);
    json_t *o = json_array_get (json_object_get (j, "orders"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (o, "status")), "partially_filled");
    cr_assert_str_eq (json_string_value (json_object_get (o, "energy_source")), "solar");
    json_decref (j);
    harness_response_free (&r);
    //  amend the rest down to 5 kWh at a new price, then cancel it
    snprintf (path, sizeof path, "/api/trading/orders/%s", a);
    r = s_call ("PATCH", path, alice, "{\"energy_amount\":\"5\",\"price\":\"0.17\"}");
    cr_assert_eq (r.status, 200, "%s", r.body);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/depth", NULL, NULL);
    j = s_json (&r);
    ask = json_array_get (json_object_get (j, "asks"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (ask, "price")), "0.17", "%s", r.body);
    cr_assert_str_eq (json_string_value (json_object_get (ask, "energy_amount")), "5", "%s",
                      r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("DELETE", path, alice, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    harness_response_free (&r);
    r = s_call ("GET", path, alice, NULL);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "status"), "cancelled", "%s", r.body);
    //  why it ended, and one meaning of remaining_amount: nothing is open any more
    cr_assert_str_eq (s_get (j, "end_reason"), "user", "%s", r.body);
    cr_assert_str_eq (s_get (j, "remaining_amount"), "0", "%s", r.body);
    cr_assert_str_eq (s_get (j, "unfilled_amount"), "5", "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    //  the order's fills: bob's 4 kWh at 0.15
    snprintf (path, sizeof path, "/api/trading/orders/%s/fills", a);
    r = s_call ("GET", path, alice, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    j = s_json (&r);
    json_t *fill = json_array_get (json_object_get (j, "fills"), 0);
    cr_assert_eq (json_array_size (json_object_get (j, "fills")), 1, "%s", r.body);
    cr_assert_str_eq (json_string_value (json_object_get (fill, "energy_amount")), "4", "%s",
                      r.body);
    cr_assert_str_eq (json_string_value (json_object_get (fill, "price")), "0.15", "%s", r.body);
    cr_assert (json_is_true (json_object_get (j, "complete")), "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", path, bob, NULL); //  not bob's order: unknown to him
    cr_assert_eq (r.status, 404, "%s", r.body);
    harness_response_free (&r);
    //  self-trade prevention cancels bob's resting bid when his own ask meets it, and says so
    char bid[32], own[32];
    s_place (
        bob,
        "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.11\"}",
        bid, sizeof bid);
    s_place (
        bob,
        "{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":\"1\",\"price\":\"0.11\"}",
        own, sizeof own);
    snprintf (path, sizeof path, "/api/trading/orders/%s", bid);
    r = s_call ("GET", path, bob, NULL);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "status"), "cancelled", "%s", r.body);
    cr_assert_str_eq (s_get (j, "end_reason"), "self_trade", "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    snprintf (path, sizeof path, "/api/trading/orders/%s", own);
    r = s_call ("DELETE", path, bob, NULL); //  leave the book as it was
    cr_assert_eq (r.status, 200, "%s", r.body);
    harness_response_free (&r);
    //  an admin pauses the market: orders are refused until it resumes
    char admin[1024];
    harness_user_add (s_conninfo, "root", "admin");
    harness_token ("root", "admin", admin, sizeof admin);
    r = s_call ("POST", "/api/admin/market/control", admin,
                "{\"market\":\"campus-1\",\"action\":\"pause_trading\"}");
    cr_assert_eq (r.status, 200, "%s", r.body);
    harness_response_free (&r);
    r = s_call (
        "POST", "/api/trading/orders", bob,
        "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\"}");
    cr_assert_eq (r.status, 409, "%s", r.body);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "error.code"), "market_paused");
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/stats", NULL, NULL);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "status"), "paused", "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
}

//  An epoch's figures through the API: a continuous epoch's trades as they come (no clearing
//  price, an average price), an auction triggered mid-epoch with its own result (price, volume,
//  D and S), the epoch a control acted on, and an epoch no one has heard of.
Test (gateway, epoch_results_and_auctions_through_the_api, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_epochs", NULL);
    char alice[1024], bob[1024], admin[1024], id[32], path[128];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    s_sign_up ("bob", "bob's long password", bob, sizeof bob);
    harness_user_add (s_conninfo, "root", "admin");
    harness_token ("root", "admin", admin, sizeof admin);
    //  campus-1, continuous: 2 kWh at 0.10 and 3 at 0.20
    s_place (
        alice,
        "{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":\"2\",\"price\":\"0.1\"}", id,
        sizeof id);
    s_place (
        alice,
        "{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":\"3\",\"price\":\"0.2\"}", id,
        sizeof id);
    harness_response_t r = s_call (
        "POST", "/api/trading/orders", bob,
        "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"5\",\"price\":\"0.2\"}");
    cr_assert_eq (r.status, 201, "%s", r.body);
    json_t *j = s_json (&r);
    long long epoch = json_integer_value (json_object_get (j, "epoch"));
    //  the delivery period beside the number: [epoch × 30 days, + 30 days)
    char start[32], end[32];
    clock_format_rfc3339 (epoch * 2592000LL * MCE_NS_PER_SEC, start, sizeof start);
    clock_format_rfc3339 ((epoch + 1) * 2592000LL * MCE_NS_PER_SEC, end, sizeof end);
    cr_assert_str_eq (s_get (j, "delivery_start"), start, "%s", r.body);
    cr_assert_str_eq (s_get (j, "delivery_end"), end, "%s", r.body);
    char bought[32];
    snprintf (bought, sizeof bought, "%s", s_get (j, "order_id"));
    json_decref (j);
    harness_response_free (&r);
    snprintf (path, sizeof path, "/api/trading/orders/%s", bought);
    r = s_call ("GET", path, bob, NULL);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "delivery_start"), start, "%s", r.body);
    cr_assert_str_eq (s_get (j, "delivery_end"), end, "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/trades?market=campus-1", NULL, NULL);
    j = s_json (&r);
    json_t *trade = json_array_get (json_object_get (j, "trades"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (trade, "delivery_start")), start, "%s",
                      r.body);
    json_decref (j);
    harness_response_free (&r);
    snprintf (path, sizeof path, "/api/market/clearing-price?market=campus-1&epoch=%lld", epoch);
    r = s_call ("GET", path, NULL, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "state"), "active", "%s", r.body);
    cr_assert_str_eq (s_get (j, "volume"), "5", "%s", r.body);
    cr_assert_eq (json_integer_value (json_object_get (j, "trades")), 2, "%s", r.body);
    cr_assert_str_eq (s_get (j, "value"), "0.8", "%s", r.body);
    cr_assert_str_eq (s_get (j, "average_price"), "0.16", "%s", r.body);
    cr_assert (json_is_null (json_object_get (j, "clearing_price")), "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/clearing-price?market=campus-1&epoch=7", NULL, NULL);
    cr_assert_eq (r.status, 404, "%s", r.body);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "error.code"), "unknown_epoch");
    json_decref (j);
    harness_response_free (&r);

    //  campus-2, auction: bob bids 10 at 0.20, alice asks 4 at 0.10; an admin triggers
    s_place (
        bob,
        "{\"market\":\"campus-2\",\"side\":\"Buy\",\"energy_amount\":\"10\",\"price\":\"0.2\"}", id,
        sizeof id);
    s_place (
        alice,
        "{\"market\":\"campus-2\",\"side\":\"Sell\",\"energy_amount\":\"4\",\"price\":\"0.1\"}", id,
        sizeof id);
    //  before the trigger, the indicative clearing says what it will do: the matcher publishes
    //  it on its clock (indicative_ms), so poll until it covers both orders
    int64_t until = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    bool seen = false;
    do {
        r = s_call ("GET", "/api/market/indicative?market=campus-2", NULL, NULL);
        cr_assert_eq (r.status, 200, "%s", r.body);
        j = s_json (&r);
        seen = json_is_true (json_object_get (j, "crossed"));
        if (!seen) {
            json_decref (j);
            harness_response_free (&r);
            poll (NULL, 0, 20);
        }
    } while (!seen && clock_mono_ns () < until);
    cr_assert (seen, "no indicative clearing of both orders came");
    cr_assert_str_eq (s_get (j, "price"), "0.15", "%s", r.body);
    cr_assert_str_eq (s_get (j, "volume"), "4", "%s", r.body);
    cr_assert_str_eq (s_get (j, "demand"), "10", "%s", r.body);
    cr_assert_str_eq (s_get (j, "supply"), "4", "%s", r.body);
    cr_assert_str_eq (s_get (j, "imbalance_side"), "Buy", "%s", r.body);
    cr_assert_str_eq (s_get (j, "imbalance"), "6", "%s", r.body);
    cr_assert_not_null (s_get (j, "delivery_start"), "%s", r.body);
    cr_assert_gt (json_integer_value (json_object_get (j, "seq")), 0, "%s", r.body);
    long long indicated = json_integer_value (json_object_get (j, "epoch"));
    json_decref (j);
    harness_response_free (&r);
    //  a continuous market has none; an epoch that is not open neither
    r = s_call ("GET", "/api/market/indicative?market=campus-1", NULL, NULL);
    cr_assert_eq (r.status, 409, "%s", r.body);
    j = s_json (&r);
    cr_assert_str_eq (s_get (j, "error.code"), "not_auction");
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/market/indicative?market=campus-2&epoch=7", NULL, NULL);
    cr_assert_eq (r.status, 404, "%s", r.body);
    harness_response_free (&r);
    r = s_call ("POST", "/api/admin/market/control", admin,
                "{\"market\":\"campus-2\",\"action\":\"trigger_matching\"}");
    cr_assert_eq (r.status, 200, "%s", r.body);
    j = s_json (&r);
    long long acted = json_integer_value (json_object_get (j, "epoch"));
    cr_assert_gt (acted, 0, "the answer names the epoch: %s", r.body);
    json_decref (j);
    harness_response_free (&r);
    snprintf (path, sizeof path, "/api/market/clearing-price?market=campus-2&epoch=%lld", acted);
    r = s_call ("GET", path, NULL, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    j = s_json (&r);
    //  the epoch is still open: no clearing price yet, but the auction's own result
    cr_assert (json_is_null (json_object_get (j, "clearing_price")), "%s", r.body);
    cr_assert_str_eq (s_get (j, "last_auction.clearing_price"), "0.15", "%s", r.body);
    cr_assert_str_eq (s_get (j, "last_auction.volume"), "4", "%s", r.body);
    cr_assert_str_eq (s_get (j, "last_auction.demand"), "10", "%s", r.body);
    cr_assert_str_eq (s_get (j, "last_auction.supply"), "4", "%s", r.body);
    cr_assert (json_is_true (json_object_get (json_object_get (j, "last_auction"), "triggered")));
    cr_assert_str_eq (s_get (j, "volume"), "4", "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    cr_assert_eq (acted, indicated, "the auction ran on the epoch that was indicated");
}

Test (gateway, rate_limits_security_headers_and_cors, .fini = s_fini, .timeout = 120)
{
    //  the harness config sets a huge rate: the environment overrides it for this gateway
    setenv ("MCE_GATEWAY_RATE_PER_S", "1", 1);
    setenv ("MCE_GATEWAY_RATE_BURST", "3", 1);
    setenv ("MCE_GATEWAY_CORS_ORIGINS", "https://dash.example, https://ops.example", 1);
    s_start ("gw_limits", NULL);
    unsetenv ("MCE_GATEWAY_RATE_PER_S");
    unsetenv ("MCE_GATEWAY_RATE_BURST");
    unsetenv ("MCE_GATEWAY_CORS_ORIGINS");
    for (int i = 0; i < 3; i++) {
        harness_response_t r = s_call ("GET", "/api/market/stats", NULL, NULL);
        cr_assert_eq (r.status, 200, "request %d: %s", i, r.body);
        char v[256];
        cr_assert (harness_response_header (&r, "X-Content-Type-Options", v, sizeof v));
        cr_assert_str_eq (v, "nosniff");
        cr_assert (harness_response_header (&r, "X-Frame-Options", v, sizeof v));
        cr_assert_str_eq (v, "DENY");
        cr_assert (harness_response_header (&r, "Content-Security-Policy", v, sizeof v));
        cr_assert (harness_response_header (&r, "Referrer-Policy", v, sizeof v));
        cr_assert_not (harness_response_header (&r, "Server", v, sizeof v), "no Server header");
        harness_response_free (&r);
    }
    harness_response_t r = s_call ("GET", "/api/market/stats", NULL, NULL);
    cr_assert_eq (r.status, 429, "%s", r.body);
    char v[256];
    cr_assert (harness_response_header (&r, "Retry-After", v, sizeof v));
    cr_assert_eq (atoi (v), 1);
    harness_response_free (&r);
    //  health is never limited
    r = s_call ("GET", "/api/health", NULL, NULL);
    cr_assert_eq (r.status, 200);
    harness_response_free (&r);
    //  An answer to a listed origin names it; the next answer, to no origin, does not (answers
    //  without extra headers go out in reused responses, which must never keep one)
    for (int i = 0; i < 2; i++) {
        harness_request (s_h.port_http,
                         &(harness_request_t){.method = "GET",
                                              .path = "/api/health",
                                              .headers = {"Origin: https://dash.example", NULL}},
                         &r);
        cr_assert_eq (r.status, 200);
        cr_assert (harness_response_header (&r, "Access-Control-Allow-Origin", v, sizeof v));
        cr_assert_str_eq (v, "https://dash.example");
        cr_assert (harness_response_header (&r, "Vary", v, sizeof v));
        cr_assert (harness_response_header (&r, "X-Content-Type-Options", v, sizeof v));
        harness_response_free (&r);
        r = s_call ("GET", "/api/health", NULL, NULL);
        cr_assert_eq (r.status, 200);
        cr_assert_not (harness_response_header (&r, "Access-Control-Allow-Origin", v, sizeof v));
        cr_assert_not (harness_response_header (&r, "Retry-After", v, sizeof v));
        cr_assert (harness_response_header (&r, "X-Content-Type-Options", v, sizeof v));
        cr_assert_str_eq (v, "nosniff");
        harness_response_free (&r);
    }
    //  CORS: a listed origin is echoed, another is not; the preflight says what may be sent
    harness_request (s_h.port_http,
                     &(harness_request_t){.method = "OPTIONS",
                                          .path = "/api/trading/orders",
                                          .headers = {"Origin: https://ops.example",
                                                      "Access-Control-Request-Method: POST", NULL}},
                     &r);
    cr_assert_eq (r.status, 204);
    cr_assert (harness_response_header (&r, "Access-Control-Allow-Origin", v, sizeof v));
    cr_assert_str_eq (v, "https://ops.example");
    cr_assert (harness_response_header (&r, "Access-Control-Allow-Methods", v, sizeof v));
    cr_assert_not_null (strstr (v, "POST"));
    harness_response_free (&r);
    harness_request (s_h.port_http,
                     &(harness_request_t){.method = "OPTIONS",
                                          .path = "/api/trading/orders",
                                          .headers = {"Origin: https://evil.example", NULL}},
                     &r);
    cr_assert_not (harness_response_header (&r, "Access-Control-Allow-Origin", v, sizeof v));
    harness_response_free (&r);
}

Test (gateway, every_route_in_the_openapi_document_answers, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_openapi", NULL);
    harness_response_t r = s_call ("GET", "/api/openapi.json", NULL, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    json_t *doc = s_json (&r);
    harness_response_free (&r);
    cr_assert_str_eq (json_string_value (json_object_get (doc, "openapi")), "3.0.3");
    char admin[1024];
    harness_user_add (s_conninfo, "root", "admin");
    harness_token ("root", "admin", admin, sizeof admin);
    const char *path;
    json_t *item;
    int checked = 0;
    json_object_foreach (json_object_get (doc, "paths"), path, item)
    {
        const char *method;
        json_t *op;
        json_object_foreach (item, method, op)
        {
            char upper[16], concrete[256];
            size_t k = 0;
            for (; method[k] && k < sizeof upper - 1; k++)
                upper[k] = (char) (method[k] - ('a' - 'A'));
            upper[k] = '\0';
            //  {id} becomes an id that does not exist: the route must still be there
            const char *brace = strstr (path, "{id}");
            if (brace)
                snprintf (concrete, sizeof concrete, "%.*s424242%s", (int) (brace - path), path,
                          brace + 4);
            else
                snprintf (concrete, sizeof concrete, "%s", path);
            r = s_call (upper, concrete, admin, strcmp (upper, "GET") ? "{}" : NULL);
            cr_assert_neq (r.status, 0, "%s %s: no answer", upper, concrete);
            cr_assert_neq (r.status, 405, "%s %s is in the document but not served", upper,
                           concrete);
            if (r.status == 404) {
                json_t *j = s_json (&r);
                cr_assert_str_neq (s_get (j, "error.code"), "not_found",
                                   "%s %s is in the document but not served", upper, concrete);
                json_decref (j);
            }
            harness_response_free (&r);
            checked++;
        }
    }
    cr_assert_geq (checked, 20, "the document lists the API (%d operations)", checked);
    json_decref (doc);
}

//  A DEALER on the native port with PLAIN credentials.
static zsock_t *s_native (const char *kind, const char *secret)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_h.port_native);
    zsock_t *s = zsock_new (ZMQ_DEALER);
    zsock_set_plain_username (s, kind);
    zsock_set_plain_password (s, secret);
    zsock_set_rcvtimeo (s, HARNESS_DEADLINE_MS);
    zsock_set_linger (s, 0);
    cr_assert_eq (zsock_connect (s, "%s", endpoint), 0);
    return s;
}

//  Sends a limit buy for `user` (which the gateway must ignore) and returns the reply.
static proto_msg_t s_native_order (zsock_t *s, uint64_t rid, const char *user)
{
    proto_msg_t cmd = {.kind = PROTO_new_order};
    proto_new_order_t *o = &cmd.new_order;
    o->rid = rid;
    snprintf (o->user, sizeof o->user, "%s", user);
    snprintf (o->market, sizeof o->market, "campus-1");
    o->side = PROTO_SIDE_BUY;
    o->type = PROTO_ORDER_TYPE_LIMIT;
    o->tif = PROTO_TIF_GTC;
    o->qty = 2000;
    o->price = 120000;
    o->ts = 1;
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&cmd, &buf), 0);
    cr_assert_eq (zmq_send (zsock_resolve (s), buf.data, buf.len, 0), (int) buf.len);
    proto_buf_free (&buf);
    zframe_t *f = zframe_recv (s);
    cr_assert_not_null (f, "no reply from the native port");
    proto_msg_t reply;
    cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
    zframe_destroy (&f);
    return reply;
}

//  Connects to the native port with credentials it must refuse in the handshake; returns the
//  ZAP status the socket monitor reports (400: refused).
static uint32_t s_native_refused (const char *kind, const char *secret)
{
    zsock_t *bad = zsock_new (ZMQ_DEALER);
    zsock_set_plain_username (bad, kind);
    zsock_set_plain_password (bad, secret);
    zsock_set_linger (bad, 0);
    cr_assert_eq (zmq_socket_monitor (zsock_resolve (bad), "inproc://bad-monitor",
                                      ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
                  0);
    zsock_t *monitor = zsock_new_pair (">inproc://bad-monitor");
    zsock_set_rcvtimeo (monitor, HARNESS_DEADLINE_MS);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_h.port_native);
    zsock_connect (bad, "%s", endpoint);
    zframe_t *event = zframe_recv (monitor);
    cr_assert_not_null (event, "no authentication failure reported");
    uint16_t code;
    uint32_t status;
    memcpy (&code, zframe_data (event), 2);
    memcpy (&status, zframe_data (event) + 2, 4);
    cr_assert_eq (code, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    zframe_destroy (&event);
    zsock_destroy (&monitor);
    zsock_destroy (&bad);
    return status;
}

Test (gateway, native_port_authenticates_each_connection, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_native", NULL);
    char alice[1024];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    //  with a token: the order is alice's, whatever the command says
    zsock_t *by_token = s_native ("jwt", alice);
    proto_msg_t reply = s_native_order (by_token, 7, "mallory");
    cr_assert_eq (reply.kind, PROTO_ack, "%s", proto_kind_name (reply.kind));
    cr_assert_eq (reply.ack.rid, 7, "the client's own rid comes back");
    //  with an API key made over HTTP
    harness_response_t r = s_call ("POST", "/api/auth/api-keys", alice, "{\"label\":\"bot\"}");
    cr_assert_eq (r.status, 201, "%s", r.body);
    json_t *j = s_json (&r);
    char key[AUTH_API_KEY_MAX];
    const char *api_key = s_get (j, "api_key");
    cr_assert_not_null (api_key, "%s", r.body);
    snprintf (key, sizeof key, "%s", api_key);
    json_decref (j);
    harness_response_free (&r);
    zsock_t *by_key = s_native ("apikey", key);
    reply = s_native_order (by_key, 8, "mallory");
    cr_assert_eq (reply.kind, PROTO_ack);
    cr_assert_eq (reply.ack.rid, 8);
    //  a command the gateway refuses itself (price off the tick), and garbage
    proto_msg_t cmd = {.kind = PROTO_new_order};
    cmd.new_order = (proto_new_order_t){.rid = 9,
                                        .side = PROTO_SIDE_SELL,
                                        .type = PROTO_ORDER_TYPE_LIMIT,
                                        .tif = PROTO_TIF_GTC,
                                        .qty = 1000,
                                        .price = 150500,
                                        .ts = 1};
    snprintf (cmd.new_order.user, sizeof cmd.new_order.user, "x");
    snprintf (cmd.new_order.market, sizeof cmd.new_order.market, "campus-1");
    proto_buf_t buf;
    proto_buf_init (&buf);
    proto_encode (&cmd, &buf);
    zmq_send (zsock_resolve (by_key), buf.data, buf.len, 0);
    proto_buf_free (&buf);
    zframe_t *f = zframe_recv (by_key);
    cr_assert_not_null (f);
    cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
    zframe_destroy (&f);
    cr_assert_eq (reply.kind, PROTO_reject);
    cr_assert_eq (reply.reject.rid, 9);
    cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_OFF_TICK);
    zstr_send (by_key, "not msgpack");
    f = zframe_recv (by_key);
    cr_assert_not_null (f);
    cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
    zframe_destroy (&f);
    cr_assert_eq (reply.kind, PROTO_reject);
    cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_MALFORMED);
    //  both orders are alice's, and nobody else has any
    r = s_call ("GET", "/api/trading/orders", alice, NULL);
    j = s_json (&r);
    cr_assert_eq (json_integer_value (json_object_get (j, "total")), 2, "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    char mallory[1024];
    harness_user_add (s_conninfo, "mallory", "user");
    harness_token ("mallory", "user", mallory, sizeof mallory);
    r = s_call ("GET", "/api/trading/orders", mallory, NULL);
    j = s_json (&r);
    cr_assert_eq (json_integer_value (json_object_get (j, "total")), 0, "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    //  a wrong key fails the handshake itself: the socket monitor says so
    uint32_t status =
        s_native_refused ("apikey", "mce_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    cr_assert_eq (status, 400, "the ZAP handler refused the key (status %u)", status);
    zsock_destroy (&by_key);
    zsock_destroy (&by_token);
}

//  ---------------------------------------------------------------------------------------
//  Wallets are proven; unknown users are refused

//  This test's database, to see what was written and what was not.
static pg_t *s_db (void)
{
    char err[256];
    pg_t *pg = pg_connect (s_conninfo, PG_CONNECT_TIMEOUT_MS, err, sizeof err);
    cr_assert_not_null (pg, "%s", err);
    return pg;
}

static int64_t s_count (pg_t *pg, const char *sql)
{
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    int64_t n = pg_int (r, 0, 0);
    pg_result_free (&r);
    return n;
}

//  What a refused registration must leave as it was: the users and the nonces consumed.
static void s_written (pg_t *pg, int64_t *users, int64_t *used)
{
    *users = s_count (pg, "SELECT count (*) FROM users");
    *used = s_count (pg, "SELECT count (*) FROM wallet_challenges WHERE used_at IS NOT NULL");
}

//  POST /api/auth/challenge on port: the answer, which must be a challenge (caller decrefs).
static json_t *s_challenge (int port, const char *wallet, const char *user)
{
    char body[256], *answer = NULL;
    snprintf (body, sizeof body, "{\"wallet\":\"%s\",\"username\":\"%s\"}", wallet, user);
    long status = harness_http_port (port, "POST", "/api/auth/challenge", body, &answer);
    cr_assert_eq (status, 200, "challenge for %s: %ld %s", user, status, answer);
    json_t *j = json_loads (answer, 0, NULL);
    cr_assert_not_null (j, "%s", answer);
    free (answer);
    cr_assert_not_null (json_string_value (json_object_get (j, "message")));
    cr_assert_not_null (json_string_value (json_object_get (j, "nonce")));
    cr_assert_not_null (json_string_value (json_object_get (j, "expires_at")));
    return j;
}

//  The signature of text by w.
static const char *s_sign (const harness_wallet_t *w, const char *text, char *out, size_t size)
{
    cr_assert_eq (auth_wallet_sign (w->seed, text, strlen (text), out, size), 0);
    return out;
}

//  A request to path on port with body (pack-style JSON built by the caller, taken), expecting
//  status and, for an error, code.
static void s_expect (int port, const char *path, const char *token, json_t *body, long status,
                      const char *code)
{
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    harness_response_t r;
    harness_request (
        port, &(harness_request_t){.method = "POST", .path = path, .token = token, .body = text},
        &r);
    cr_assert_eq (r.status, status, "%s %s -> %ld %s", path, text, r.status, r.body);
    if (code) {
        json_t *j = s_json (&r);
        cr_assert_str_eq (s_get (j, "error.code"), code, "%s %s -> %s", path, text, r.body);
        json_decref (j);
    }
    free (text);
    harness_response_free (&r);
}

static json_t *s_registration (const char *user, const harness_wallet_t *w, const char *signature,
                               const char *nonce)
{
    json_t *j = json_pack ("{s:s,s:s,s:s,s:s}", "username", user, "password",
                           "correct horse battery", "wallet", w->address, "signature", signature);
    if (nonce)
        json_object_set_new (j, "nonce", json_string (nonce));
    return j;
}

Test (gateway, every_bad_registration_is_refused_and_writes_nothing, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_wallets", NULL);
    int port = s_h.port_http;
    pg_t *db = s_db ();
    harness_wallet_t alice_w, mallory_w, other_w;
    harness_wallet (&alice_w, NULL);
    harness_wallet (&mallory_w, NULL);
    harness_wallet (&other_w, NULL);
    const char *R = "/api/auth/register";
    char sig[AUTH_SIGNATURE_TEXT_MAX];

    //  no challenge was ever asked for
    s_expect (port, R, NULL,
              s_registration ("alice", &alice_w, s_sign (&alice_w, "hi", sig, 90), NULL), 400,
              "no_challenge");
    //  the message names the domain the client reached, the wallet on its own line, the user,
    //  the nonce and five minutes of validity
    json_t *c = s_challenge (port, alice_w.address, "alice");
    const char *message = json_string_value (json_object_get (c, "message"));
    const char *nonce = json_string_value (json_object_get (c, "nonce"));
    char line[256];
    snprintf (line, sizeof line,
              "127.0.0.1:%d wants you to register a Solana wallet for mce:\n%s\n", port,
              alice_w.address);
    cr_assert_eq (strncmp (message, line, strlen (line)), 0, "%s", message);
    snprintf (line, sizeof line, "\nUsername: alice\nNonce: %s\nIssued At: ", nonce);
    cr_assert_not_null (strstr (message, line), "%s", message);
    const char *issued = strstr (message, "Issued At: ") + 11;
    const char *expires = strstr (message, "Expiration Time: ") + 17;
    int64_t issued_ns, expires_ns;
    cr_assert_eq (clock_parse_rfc3339 (issued, 20, &issued_ns), 0, "%s", message);
    cr_assert_eq (clock_parse_rfc3339 (expires, strlen (expires), &expires_ns), 0, "%s", message);
    cr_assert_eq (expires_ns - issued_ns, 300 * MCE_NS_PER_SEC);
    cr_assert_str_eq (json_string_value (json_object_get (c, "expires_at")), expires);
    char good[AUTH_SIGNATURE_TEXT_MAX];
    s_sign (&alice_w, message, good, sizeof good);

    //  signed by a key that is not the wallet's
    s_expect (port, R, NULL,
              s_registration ("alice", &alice_w, s_sign (&mallory_w, message, sig, 90), NULL), 400,
              "bad_signature");
    //  a tampered message: the wallet signed something else than what was issued
    char tampered[1024];
    snprintf (tampered, sizeof tampered, "%s", message);
    memcpy (strstr (tampered, "Expiration Time: ") + 17, "2099", 4);
    s_expect (port, R, NULL,
              s_registration ("alice", &alice_w, s_sign (&alice_w, tampered, sig, 90), NULL), 400,
              "bad_signature");
    //  the right signature for another username, or another wallet
    s_expect (port, R, NULL, s_registration ("alicia", &alice_w, good, NULL), 400, "no_challenge");
    s_expect (port, R, NULL, s_registration ("alicia", &alice_w, good, nonce), 400,
              "challenge_mismatch");
    s_expect (port, R, NULL, s_registration ("alice", &other_w, good, nonce), 400,
              "challenge_mismatch");
    //  someone else's wallet: mallory cannot sign for alice's
    json_t *m = s_challenge (port, alice_w.address, "mallory");
    const char *for_mallory = json_string_value (json_object_get (m, "message"));
    s_expect (port, R, NULL,
              s_registration ("mallory", &alice_w, s_sign (&mallory_w, for_mallory, sig, 90), NULL),
              400, "bad_signature");
    json_decref (m);
    //  an expired challenge (put straight into the table: the real ones last five minutes)
    const char *late_message = "an expired challenge for erin";
    const char *params[] = {alice_w.address, late_message};
    pg_result_t *r = pg_exec (db,
                              "INSERT INTO wallet_challenges (nonce, wallet, username, message, "
                              "issued_at, expires_at) VALUES ('ExpiredNonce1', $1, 'erin', $2, "
                              "now () - interval '6 minutes', now () - interval '1 minute')",
                              2, params);
    cr_assert_not_null (r, "%s", pg_error (db));
    pg_result_free (&r);
    s_expect (port, R, NULL,
              s_registration ("erin", &alice_w, s_sign (&alice_w, late_message, sig, 90), NULL),
              400, "challenge_expired");
    //  none of that wrote a user or spent a nonce
    int64_t users, used;
    s_written (db, &users, &used);
    cr_assert_eq (users, 0);
    cr_assert_eq (used, 0);

    //  the real thing
    s_expect (port, R, NULL, s_registration ("alice", &alice_w, good, NULL), 201, NULL);
    s_written (db, &users, &used);
    cr_assert_eq (users, 1);
    cr_assert_eq (used, 1);
    char sql[256];
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM users WHERE username = 'alice' AND "
              "wallet = '%s'",
              alice_w.address);
    cr_assert_eq (s_count (db, sql), 1);
    //  the same again: the name is taken (and the nonce spent)
    s_expect (port, R, NULL, s_registration ("alice", &alice_w, good, NULL), 409, "username_taken");
    //  a second user with alice's wallet, signed properly: a wallet belongs to one user
    json_t *b = s_challenge (port, alice_w.address, "bob");
    char bobs[AUTH_SIGNATURE_TEXT_MAX];
    s_sign (&alice_w, json_string_value (json_object_get (b, "message")), bobs, sizeof bobs);
    s_expect (port, R, NULL, s_registration ("bob", &alice_w, bobs, NULL), 409, "wallet_taken");
    s_written (db, &users, &used);
    cr_assert_eq (users, 1);
    cr_assert_eq (used, 1, "a refused registration gives its nonce back");
    json_decref (b);
    //  a wallet of its own, and bob is in
    harness_wallet_t bob_w;
    harness_wallet (&bob_w, NULL);
    cr_assert_eq (harness_sign_up (port, "bob", "bob's long password", &bob_w, NULL), 201);
    json_decref (c);
    pg_destroy (&db);
}

//  Two loopback ports the OS just handed out (held together, so they differ) and released.
static void s_free_ports (int *one, int *two)
{
    int fds[2], *ports[2] = {one, two};
    for (int k = 0; k < 2; k++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        fds[k] = socket (AF_INET, SOCK_STREAM, 0);
        cr_assert (fds[k] >= 0 && bind (fds[k], (struct sockaddr *) &a, sizeof a) == 0 &&
                   getsockname (fds[k], (struct sockaddr *) &a, &len) == 0);
        *ports[k] = ntohs (a.sin_port);
    }
    close (fds[0]);
    close (fds[1]);
}

//  One more gateway on this test's database and matcher; returns its HTTP port.
static int s_second_gateway (void)
{
    int http, native;
    s_free_ports (&http, &native);
    char port[16], endpoint[64];
    snprintf (port, sizeof port, "%d", http);
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", native);
    setenv ("MCE_GATEWAY_HTTP_PORT", port, 1);
    setenv ("MCE_GATEWAY_NATIVE", endpoint, 1);
    setenv ("MCE_GATEWAY_NATIVE_CURVE", "", 1); //  one port fewer to find free
    harness_start (&s_h, "mce-gateway");
    unsetenv ("MCE_GATEWAY_HTTP_PORT");
    unsetenv ("MCE_GATEWAY_NATIVE");
    unsetenv ("MCE_GATEWAY_NATIVE_CURVE");
    int64_t deadline = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (harness_http_port (http, "GET", "/api/health", NULL, NULL) != 200)
        cr_assert_lt (clock_mono_ns (), deadline, "the second gateway never answered");
    return http;
}

typedef struct {
    int port;
    const char *token;
    const char *body;
    long status;
    char *answer;
} s_race_t;

static void *s_race_run (void *arg)
{
    s_race_t *x = arg;
    harness_response_t r;
    harness_request (
        x->port,
        &(harness_request_t){
            .method = "POST", .path = "/api/auth/wallet", .token = x->token, .body = x->body},
        &r);
    x->status = r.status;
    x->answer = r.body;
    free (r.headers);
    return NULL;
}

Test (gateway, a_nonce_from_one_gateway_works_on_another_once, .fini = s_fini, .timeout = 120)
{
    cr_assert_eq (curl_global_init (CURL_GLOBAL_DEFAULT), 0); //  two threads use curl below
    s_start ("gw_two", NULL);
    int a = s_h.port_http, b = s_second_gateway ();
    pg_t *db = s_db ();
    //  a challenge from A, the registration on B
    harness_wallet_t w1, w2;
    harness_wallet (&w1, NULL);
    harness_wallet (&w2, NULL);
    json_t *c = s_challenge (a, w1.address, "alice");
    char sig[AUTH_SIGNATURE_TEXT_MAX];
    s_sign (&w1, json_string_value (json_object_get (c, "message")), sig, sizeof sig);
    json_decref (c);
    s_expect (b, "/api/auth/register", NULL, s_registration ("alice", &w1, sig, NULL), 201, NULL);
    s_expect (a, "/api/auth/register", NULL, s_registration ("alice", &w1, sig, NULL), 409,
              "username_taken");
    //  alice signs in on A, which never saw her register
    harness_response_t r =
        s_call ("POST", "/api/auth/login", NULL,
                "{\"username\":\"alice\",\"password\":\"correct horse battery\"}");
    cr_assert_eq (r.status, 200, "%s", r.body);
    json_t *j = s_json (&r);
    const char *minted = s_get (j, "token");
    cr_assert_not_null (minted, "%s", r.body);
    char token[1024];
    snprintf (token, sizeof token, "%s", minted);
    json_decref (j);
    harness_response_free (&r);
    //  a new wallet: the challenge from A, sent to A and B at the same moment. One wins.
    c = s_challenge (a, w2.address, "alice");
    s_sign (&w2, json_string_value (json_object_get (c, "message")), sig, sizeof sig);
    json_decref (c);
    //  the token alone does not change where her money is paid: her password too, and a wrong
    //  one spends nothing (the nonce still works below)
    s_expect (a, "/api/auth/wallet", token,
              json_pack ("{s:s,s:s}", "wallet", w2.address, "signature", sig), 400,
              "missing_field");
    s_expect (a, "/api/auth/wallet", token,
              json_pack ("{s:s,s:s,s:s}", "wallet", w2.address, "signature", sig, "password",
                         "not alice's password"),
              401, "wrong_password");
    json_t *body = json_pack ("{s:s,s:s,s:s}", "wallet", w2.address, "signature", sig, "password",
                              "correct horse battery");
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    s_race_t race[2] = {{.port = a, .token = token, .body = text},
                        {.port = b, .token = token, .body = text}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq (pthread_create (&threads[i], NULL, s_race_run, &race[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join (threads[i], NULL);
    int won = (race[0].status == 200) + (race[1].status == 200);
    cr_assert_eq (won, 1, "exactly one gateway takes the nonce: A %ld %s, B %ld %s", race[0].status,
                  race[0].answer, race[1].status, race[1].answer);
    s_race_t *lost = race[0].status == 200 ? &race[1] : &race[0];
    cr_assert_eq (lost->status, 409, "%s", lost->answer);
    cr_assert_not_null (strstr (lost->answer, "\"challenge_used\""), "%s", lost->answer);
    free (race[0].answer);
    free (race[1].answer);
    //  and a third try on either is refused too
    s_expect (b, "/api/auth/wallet", token,
              json_pack ("{s:s,s:s,s:s}", "wallet", w2.address, "signature", sig, "password",
                         "correct horse battery"),
              409, "challenge_used");
    free (text);
    char sql[256];
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM users WHERE username = 'alice' AND "
              "wallet = '%s'",
              w2.address);
    cr_assert_eq (s_count (db, sql), 1, "alice's wallet is the new one");
    //  her old wallet is free again: bob may prove and take it
    harness_wallet_t bob_w = w1;
    cr_assert_eq (harness_sign_up (b, "bob", "bob's long password", &bob_w, NULL), 201);
    //  a change to a wallet that is someone else's is refused, and writes nothing
    c = s_challenge (b, w1.address, "alice");
    s_sign (&w1, json_string_value (json_object_get (c, "message")), sig, sizeof sig);
    json_decref (c);
    s_expect (a, "/api/auth/wallet", token,
              json_pack ("{s:s,s:s,s:s}", "wallet", w1.address, "signature", sig, "password",
                         "correct horse battery"),
              409, "wallet_taken");
    cr_assert_eq (s_count (db, sql), 1, "alice keeps her wallet");
    pg_destroy (&db);
}

Test (gateway, tokens_of_users_who_never_registered_are_refused, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_unknown", NULL);
    char ghost[1024], root[1024];
    harness_token ("ghost", "user", ghost, sizeof ghost);
    harness_token ("root", "admin", root, sizeof root);
    const char *order =
        "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\"}";
    //  HTTP: a well-signed token of nobody places nothing and reads nothing
    const struct {
        const char *method, *path, *token, *body;
    } tries[] = {
        {"POST", "/api/trading/orders", ghost, order},
        {"GET", "/api/trading/orders", ghost, NULL},
        {"POST", "/api/auth/api-keys", ghost, "{}"},
        {"POST", "/api/admin/market/control", root,
         "{\"market\":\"campus-1\",\"action\":\"pause_trading\"}"},
    };
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        harness_response_t r =
            s_call (tries[i].method, tries[i].path, tries[i].token, tries[i].body);
        cr_assert_eq (r.status, 401, "%s %s: %ld %s", tries[i].method, tries[i].path, r.status,
                      r.body);
        json_t *j = s_json (&r);
        cr_assert_str_eq (s_get (j, "error.code"), "unknown_user", "%s", r.body);
        json_decref (j);
        harness_response_free (&r);
    }
    //  the native port: the handshake itself fails
    cr_assert_eq (s_native_refused ("jwt", ghost), 400);
    //  nothing reached the matcher
    harness_response_t r = s_call ("GET", "/api/market/depth?market=campus-1", NULL, NULL);
    json_t *j = s_json (&r);
    cr_assert_eq (json_array_size (json_object_get (j, "bids")), 0, "%s", r.body);
    json_decref (j);
    harness_response_free (&r);
    //  a user this gateway never saw register (another gateway did): one lookup, then known
    harness_user_add (s_conninfo, "dora", "user");
    char dora[1024];
    harness_token ("dora", "user", dora, sizeof dora);
    r = s_call ("POST", "/api/trading/orders", dora, order);
    cr_assert_eq (r.status, 201, "%s", r.body);
    harness_response_free (&r);
    zsock_t *native = s_native ("jwt", dora);
    proto_msg_t reply = s_native_order (native, 1, "ghost");
    cr_assert_eq (reply.kind, PROTO_ack, "%s", proto_kind_name (reply.kind));
    zsock_destroy (&native);
    //  lookups are bounded: a flood of a nobody's requests is refused as rate limited long
    //  before each costs a query
    int limited = 0;
    for (int i = 0; i < 400; i++) {
        r = s_call ("GET", "/api/trading/orders", ghost, NULL);
        cr_assert (r.status == 401 || r.status == 429, "%ld %s", r.status, r.body);
        limited += r.status == 429;
        harness_response_free (&r);
    }
    cr_assert_gt (limited, 0, "400 lookups of an unknown user were all made");
    r = s_call ("GET", "/metrics", NULL, NULL);
    const char *lookups = strstr (r.body, "\nmce_gateway_user_lookups_total ");
    cr_assert_not_null (lookups, "%s", r.body);
    long made = strtol (lookups + strlen ("\nmce_gateway_user_lookups_total "), NULL, 10);
    cr_assert_lt (made, 400, "%ld lookups", made);
    cr_assert_not_null (strstr (r.body, "\nmce_gateway_user_lookups_limited_total "), "%s", r.body);
    harness_response_free (&r);
}

Test (gateway, a_postgres_outage_is_503_then_heals, .fini = s_fini, .timeout = 120)
{
    //  its own server, so stopping it touches no other test
    pgtest_t pg;
    cr_assert_eq (pgtest_start (&pg, NULL), 0);
    char config[512];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; epoch_seconds = 2592000; escrow = false; } );\n"
              "postgres = { url = \"%s\"; };\n",
              pg.conninfo);
    harness_init (&s_h, config);
    harness_start (&s_h, "mce-matcher");
    harness_start (&s_h, "mce-gateway");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS));
    char alice[1024];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    cr_assert_eq (pgtest_stop_server (&pg), 0);
    const char *login = "{\"username\":\"alice\",\"password\":\"correct horse battery\"}";
    harness_response_t r = s_call ("POST", "/api/auth/login", NULL, login);
    cr_assert_eq (r.status, 503, "%s", r.body);
    json_t *j = s_json (&r);
    cr_assert_str_eq (s_get (j, "error.code"), "database_unavailable");
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/health", NULL, NULL);
    j = s_json (&r);
    cr_assert (json_is_false (json_object_get (json_object_get (j, "postgres"), "up")), "%s",
               r.body);
    cr_assert_str_eq (s_get (j, "status"), "degraded");
    json_decref (j);
    harness_response_free (&r);
    //  trading does not need Postgres
    r = s_call (
        "POST", "/api/trading/orders", alice,
        "{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.1\"}");
    cr_assert_eq (r.status, 201, "%s", r.body);
    harness_response_free (&r);
    cr_assert_eq (pgtest_restart (&pg), 0);
    //  the worker reconnects by itself (backoff capped at 5 s)
    int64_t deadline = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    long status = 0;
    while (status != 200 && clock_mono_ns () < deadline) {
        r = s_call ("POST", "/api/auth/login", NULL, login);
        status = r.status;
        harness_response_free (&r);
    }
    cr_assert_eq (status, 200, "login works again after the outage");
    harness_cleanup (&s_h);
    pgtest_stop (&pg);
}

//  A new API key: its id (the key itself in key, when not NULL). body is the POST's.
static long s_new_key (const char *token, const char *body, char *key, size_t size, int64_t *id)
{
    harness_response_t r = s_call ("POST", "/api/auth/api-keys", token, body);
    long status = r.status;
    if (status == 201) {
        json_t *j = s_json (&r);
        if (key)
            snprintf (key, size, "%s", s_get (j, "api_key"));
        *id = (int64_t) json_integer_value (json_object_get (j, "id"));
        json_decref (j);
    }
    harness_response_free (&r);
    return status;
}

//  API keys can be listed (never their secrets), revoked and made to expire, and a user holds
//  a bounded number: 30 keys in 0.1 s, none of which could be seen or taken back, got through
//  before. A native session on a key ends with the key's expiry like one on a token.
Test (gateway, api_keys_are_capped_listed_revoked_and_expire, .fini = s_fini, .timeout = 120)
{
    setenv ("MCE_GATEWAY_API_KEYS_PER_USER", "3", 1);
    s_start ("gw_api_keys", NULL);
    unsetenv ("MCE_GATEWAY_API_KEYS_PER_USER");
    char alice[1024], bob[1024], keys[3][AUTH_API_KEY_MAX];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    s_sign_up ("bobby", "correct horse battery", bob, sizeof bob);
    int64_t ids[3], id;
    for (int i = 0; i < 3; i++)
        cr_assert_eq (s_new_key (alice, "{\"label\":\"bot\"}", keys[i], sizeof keys[i], &ids[i]),
                      201);
    //  the fourth is refused; the list shows three, newest first, without secrets
    harness_response_t r = s_call ("POST", "/api/auth/api-keys", alice, "{}");
    cr_assert_eq (r.status, 409, "%s", r.body);
    json_t *j = s_json (&r);
    cr_assert_str_eq (s_get (j, "error.code"), "too_many_keys");
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("GET", "/api/auth/api-keys", alice, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    cr_assert_null (strstr (r.body, "mce_"), "a secret in the list: %s", r.body);
    j = s_json (&r);
    json_t *list = json_object_get (j, "api_keys");
    cr_assert_eq (json_array_size (list), 3, "%s", r.body);
    cr_assert_eq (json_integer_value (json_object_get (json_array_get (list, 0), "id")), ids[2]);
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (list, 0), "label")),
                      "bot");
    json_decref (j);
    harness_response_free (&r);
    //  bob sees none of them and cannot revoke them
    r = s_call ("GET", "/api/auth/api-keys", bob, NULL);
    cr_assert_str_eq (r.body, "{\"api_keys\":[]}");
    harness_response_free (&r);
    char path[64];
    snprintf (path, sizeof path, "/api/auth/api-keys/%lld", (long long) ids[0]);
    r = s_call ("DELETE", path, bob, NULL);
    cr_assert_eq (r.status, 404, "%s", r.body);
    harness_response_free (&r);
    //  alice revokes one: it signs nothing in any more, a session open on it ends within
    //  gateway.api_key_check_ms (polled every 50 ms, for at most the deadline), and its place
    //  is free
    zsock_t *native = s_native ("apikey", keys[0]);
    cr_assert_eq (s_native_order (native, 1, "alice").kind, PROTO_ack, "the key works");
    r = s_call ("DELETE", path, alice, NULL);
    cr_assert_eq (r.status, 204, "%s", r.body);
    harness_response_free (&r);
    int64_t until = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    proto_msg_t answer;
    uint64_t order = 100;
    do {
        answer = s_native_order (native, order++, "alice");
        if (answer.kind == PROTO_reject)
            break;
        poll (NULL, 0, 50);
    } while (clock_mono_ns () < until);
    cr_assert_eq (answer.kind, PROTO_reject, "the session outlived its key");
    cr_assert_eq (answer.reject.reason, PROTO_REJECT_REASON_SESSION_EXPIRED, "%s",
                  answer.reject.message);
    zsock_destroy (&native);
    r = s_call ("DELETE", path, alice, NULL);
    cr_assert_eq (r.status, 404, "revoked once: %s", r.body);
    harness_response_free (&r);
    s_native_refused ("apikey", keys[0]);
    //  a key that expires: good until then, and a session on it ends then
    char soon[64], body[128], expiring[AUTH_API_KEY_MAX];
    int64_t expires_ns = clock_wall_ns () + 2 * MCE_NS_PER_SEC;
    clock_format_rfc3339 (expires_ns, soon, sizeof soon);
    snprintf (body, sizeof body, "{\"expires_at\":\"%s\"}", soon);
    cr_assert_eq (s_new_key (alice, body, expiring, sizeof expiring, &id), 201);
    cr_assert_eq (s_new_key (alice, "{\"expires_at\":\"2020-01-01T00:00:00Z\"}", NULL, 0, &id),
                  422);
    native = s_native ("apikey", expiring);
    cr_assert_eq (s_native_order (native, 2, "alice").kind, PROTO_ack, "good before it expires");
    int64_t deadline = clock_mono_ns () + (int64_t) (2000 + HARNESS_DEADLINE_MS) * MCE_NS_PER_MSEC;
    proto_msg_t reply;
    uint64_t rid = 3;
    do {
        reply = s_native_order (native, rid++, "alice");
        if (reply.kind == PROTO_reject &&
            reply.reject.reason == PROTO_REJECT_REASON_SESSION_EXPIRED)
            break;
        poll (NULL, 0, 100);
    } while (clock_mono_ns () < deadline);
    cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_SESSION_EXPIRED,
                  "the session outlived its key");
    cr_assert_geq (clock_wall_ns (), expires_ns - MCE_NS_PER_SEC, "not before its expiry");
    zsock_destroy (&native);
    s_native_refused ("apikey", expiring);
}

//  A DEALER on the encrypted order port as the holder of cert, trusting server_key; with
//  refused_by set, waits for the handshake to fail and returns NULL (the status ZAP gave,
//  or 0 for a failure before ZAP, in *refused_by).
static zsock_t *s_curve_native (zcert_t *cert, const char *server_key, uint32_t *refused_by)
{
    zsock_t *s = zsock_new (ZMQ_DEALER);
    zsock_set_linger (s, 0);
    zsock_set_rcvtimeo (s, HARNESS_DEADLINE_MS);
    if (cert) {
        zcert_apply (cert, s);
        zsock_set_curve_serverkey (s, server_key);
    }
    else { //  PLAIN, as on the other port
        zsock_set_plain_username (s, "jwt");
        zsock_set_plain_password (s, "x");
    }
    zsock_t *monitor = NULL;
    if (refused_by) {
        //  a name of its own each time: an inproc name is released only after a while
        static int attempts;
        char inproc[64];
        snprintf (inproc, sizeof inproc, "inproc://curve-native-%d", ++attempts);
        cr_assert_eq (zmq_socket_monitor (
                          zsock_resolve (s), inproc,
                          ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                              ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED |
                              ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
                      0);
        monitor = zsock_new (ZMQ_PAIR);
        cr_assert_eq (zsock_connect (monitor, "%s", inproc), 0);
        zsock_set_rcvtimeo (monitor, HARNESS_DEADLINE_MS);
    }
    cr_assert_eq (zsock_connect (s, "tcp://127.0.0.1:%d", s_h.port_native_curve), 0);
    if (!refused_by)
        return s;
    zframe_t *event = zframe_recv (monitor);
    cr_assert_not_null (event, "no handshake outcome");
    uint16_t code;
    memcpy (&code, zframe_data (event), 2);
    memcpy (refused_by, zframe_data (event) + 2, 4);
    zframe_destroy (&event);
    cr_assert_neq (code, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, "the port let it in");
    if (code != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        *refused_by = 0;
    zmq_socket_monitor (zsock_resolve (s), NULL, 0);
    zsock_destroy (&monitor);
    zsock_destroy (&s);
    return NULL;
}

Test (gateway, the_curve_port_admits_registered_key_pairs, .fini = s_fini, .timeout = 120)
{
    s_start ("gw_curve", NULL);
    char alice[1024];
    s_sign_up ("alice", "correct horse battery", alice, sizeof alice);
    harness_response_t r = s_call ("GET", "/api/auth/native-key", NULL, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    json_t *j = s_json (&r);
    char server_key[41];
    snprintf (server_key, sizeof server_key, "%s", s_get (j, "server_key"));
    cr_assert_eq (strlen (server_key), 40, "%s", r.body);
    json_decref (j);
    harness_response_free (&r);

    //  alice registers the public half of her own key pair; the secret stays here
    zcert_t *mine = zcert_new ();
    char body[128];
    snprintf (body, sizeof body, "{\"curve_public_key\":\"%s\",\"label\":\"desk\"}",
              zcert_public_txt (mine));
    r = s_call ("POST", "/api/auth/api-keys", alice, body);
    cr_assert_eq (r.status, 201, "%s", r.body);
    j = s_json (&r);
    cr_assert_null (json_object_get (j, "api_key"), "no secret to show: %s", r.body);
    cr_assert_str_eq (s_get (j, "curve_public_key"), zcert_public_txt (mine));
    char path[64];
    snprintf (path, sizeof path, "/api/auth/api-keys/%lld",
              (long long) json_integer_value (json_object_get (j, "id")));
    json_decref (j);
    harness_response_free (&r);
    r = s_call ("POST", "/api/auth/api-keys", alice, body);
    cr_assert_eq (r.status, 409, "registered once: %s", r.body);
    harness_response_free (&r);
    r = s_call ("POST", "/api/auth/api-keys", alice, "{\"curve_public_key\":\"not a key\"}");
    cr_assert_eq (r.status, 400, "%s", r.body);
    harness_response_free (&r);

    //  her key pair trades as alice, whatever the command says
    zsock_t *native = s_curve_native (mine, server_key, NULL);
    proto_msg_t reply = s_native_order (native, 1, "mallory");
    cr_assert_eq (reply.kind, PROTO_ack, "%s", proto_kind_name (reply.kind));
    r = s_call ("GET", "/api/trading/orders", alice, NULL);
    cr_assert_eq (r.status, 200, "%s", r.body);
    cr_assert_not_null (strstr (r.body, "\"order_id\":\"1\""), "alice's order: %s", r.body);
    harness_response_free (&r);

    //  a key pair nobody registered, PLAIN credentials, and the wrong server key: no entry
    zcert_t *stranger = zcert_new ();
    uint32_t status = 0;
    s_curve_native (stranger, server_key, &status);
    cr_assert_eq (status, 400, "an unregistered key is refused by the gateway");
    s_curve_native (NULL, server_key, &status);
    s_curve_native (mine, zcert_public_txt (stranger), &status);
    zcert_destroy (&stranger);

    //  revoked: the open session ends within gateway.api_key_check_ms (polled every 50 ms)
    r = s_call ("DELETE", path, alice, NULL);
    cr_assert_eq (r.status, 204, "%s", r.body);
    harness_response_free (&r);
    int64_t until = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    uint64_t rid = 2;
    do {
        reply = s_native_order (native, rid++, "alice");
        if (reply.kind == PROTO_reject)
            break;
        poll (NULL, 0, 50);
    } while (clock_mono_ns () < until);
    cr_assert_eq (reply.kind, PROTO_reject, "the session outlived its key");
    cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_SESSION_EXPIRED);
    zsock_destroy (&native);
    zcert_destroy (&mine);
}
