/*  test_wallet_proof — the wallet challenges against a real PostgreSQL: the message byte for
    byte, the domain it names, a challenge issued, signed, checked and consumed once, and the
    bounds on what an outsider can make the table hold (a pair's oldest replaced, the grace
    after expiry, the overall cap).
*/
#include "auth.h"
#include "migrate.h"
#include "pg.h"
#include "pgtest.h"
#include "wallet_proof.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

MIGRATE_DECLARE (gateway);

static pgtest_t s_server;

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) != 0 || pgtest_export (&s_server) != 0)
        fprintf (stderr, "test_wallet_proof: no PostgreSQL: the tests will fail\n");
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
    (void) stats;
    pgtest_stop (&s_server);
}

//  A fresh database with the gateway's tables.
static pg_t *s_fresh (const char *name)
{
    cr_assert_eq (auth_init (), 0);
    pgtest_t server;
    cr_assert_eq (pgtest_attach (&server), 0, "no shared PostgreSQL");
    char conninfo[PGTEST_CONNINFO_MAX], err[512];
    cr_assert_eq (pgtest_create_db (&server, name, conninfo, sizeof conninfo), 0);
    pg_t *pg = pg_connect (conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "%s", err);
    cr_assert_eq (
        migrate_apply (pg, "gateway", gateway_migrations, gateway_migration_count, err, sizeof err),
        0, "%s", err);
    return pg;
}

static int64_t s_int (pg_t *pg, const char *sql)
{
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

static int64_t s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  A wallet: its seed and address.
typedef struct {
    uint8_t seed[AUTH_SEED_BYTES];
    char address[AUTH_WALLET_MAX];
} s_wallet_t;

static s_wallet_t s_wallet (void)
{
    s_wallet_t w;
    auth_random (w.seed, sizeof w.seed);
    cr_assert_eq (auth_wallet_of_seed (w.seed, w.address, sizeof w.address), 0);
    return w;
}

static const char *s_sign (const s_wallet_t *w, const char *text, char *out)
{
    cr_assert_eq (auth_wallet_sign (w->seed, text, strlen (text), out, AUTH_SIGNATURE_TEXT_MAX), 0);
    return out;
}

Test (wallet_proof, the_message_is_sign_in_with_solana_shaped)
{
    char text[WALLET_PROOF_MESSAGE_MAX];
    int n = wallet_proof_message (
        "dash.example:8080", "586Z7H2vpX9qNhN2T4e9Utugie3ogjbxzGaMtM3E6HR5", "alice",
        "3pXhyHwCd4Mfd9Ln2tgMEq", 1700000000, 1700000300, text, sizeof text);
    const char *want =
        "dash.example:8080 wants you to register a Solana wallet for mce:\n"
        "586Z7H2vpX9qNhN2T4e9Utugie3ogjbxzGaMtM3E6HR5\n"
        "\n"
        "Link this wallet to the mce user alice. Signing proves the wallet is yours; it sends no "
        "transaction and moves no funds.\n"
        "\n"
        "Username: alice\n"
        "Nonce: 3pXhyHwCd4Mfd9Ln2tgMEq\n"
        "Issued At: 2023-11-14T22:13:20Z\n"
        "Expiration Time: 2023-11-14T22:18:20Z";
    cr_assert_str_eq (text, want);
    cr_assert_eq (n, (int) strlen (want));
    cr_assert_eq (wallet_proof_message ("d", "w", "u", "n", 0, 0, text, 20), -1, "too small");
}

Test (wallet_proof, the_domain_is_the_host_reached_or_mce)
{
    char d[WALLET_PROOF_DOMAIN_MAX];
    static const struct {
        const char *host, *domain;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1:8080"},
        {"dash.example.org", "dash.example.org"},
        {"[::1]:8080", "[::1]:8080"},
        {NULL, "mce"},
        {"", "mce"},
        {"evil.example\nUsername: root", "mce"}, //  nothing that could forge a line
        {"a b", "mce"},
        {"host/path", "mce"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wallet_proof_domain (cases[i].host, d);
        cr_assert_str_eq (d, cases[i].domain, "%s", cases[i].host ? cases[i].host : "(null)");
    }
    char long_host[400];
    memset (long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    wallet_proof_domain (long_host, d);
    cr_assert_str_eq (d, "mce");
}

Test (wallet_proof, issued_signed_checked_and_consumed_once)
{
    pg_t *pg = s_fresh ("wp_once");
    s_wallet_t w = s_wallet (), other = s_wallet ();
    wallet_proof_challenge_t c;
    cr_assert_eq (wallet_proof_issue (pg, "mce", w.address, "alice", s_now_us (), &c),
                  WALLET_PROOF_OK);
    cr_assert (strlen (c.nonce) >= 20 && strlen (c.nonce) <= 22, "%s", c.nonce); //  16 bytes
    cr_assert_not_null (strstr (c.message, c.nonce));
    cr_assert_not_null (strstr (c.message, c.expires_at));
    char sig[AUTH_SIGNATURE_TEXT_MAX], nonce[WALLET_PROOF_NONCE_MAX];
    s_sign (&w, c.message, sig);
    //  the wrong signer, the wrong pair, the wrong nonce
    char bad[AUTH_SIGNATURE_TEXT_MAX];
    cr_assert_eq (
        wallet_proof_check (pg, w.address, "alice", NULL, s_sign (&other, c.message, bad), nonce),
        WALLET_PROOF_BAD_SIGNATURE);
    cr_assert_eq (wallet_proof_check (pg, w.address, "bob", NULL, sig, nonce),
                  WALLET_PROOF_NO_CHALLENGE);
    cr_assert_eq (wallet_proof_check (pg, other.address, "alice", c.nonce, sig, nonce),
                  WALLET_PROOF_MISMATCH);
    cr_assert_eq (wallet_proof_check (pg, w.address, "alice", "NoSuchNonce", sig, nonce),
                  WALLET_PROOF_NO_CHALLENGE);
    //  the right one, by the pair or by its nonce
    cr_assert_eq (wallet_proof_check (pg, w.address, "alice", NULL, sig, nonce), WALLET_PROOF_OK);
    cr_assert_str_eq (nonce, c.nonce);
    cr_assert_eq (wallet_proof_check (pg, w.address, "alice", c.nonce, sig, nonce),
                  WALLET_PROOF_OK);
    //  checking writes nothing; consuming works once
    cr_assert_eq (s_int (pg, "SELECT count (*) FROM wallet_challenges WHERE used_at IS NOT NULL"),
                  0);
    cr_assert_eq (wallet_proof_consume (pg, c.nonce), WALLET_PROOF_OK);
    cr_assert_eq (wallet_proof_consume (pg, c.nonce), WALLET_PROOF_USED);
    cr_assert_eq (wallet_proof_check (pg, w.address, "alice", NULL, sig, nonce), WALLET_PROOF_USED);
    //  a consumption rolled back gives the nonce back
    cr_assert_eq (wallet_proof_issue (pg, "mce", w.address, "alice", s_now_us (), &c),
                  WALLET_PROOF_OK);
    s_sign (&w, c.message, sig);
    cr_assert_eq (pg_begin (pg), 0);
    cr_assert_eq (wallet_proof_consume (pg, c.nonce), WALLET_PROOF_OK);
    cr_assert_eq (pg_rollback (pg), 0);
    cr_assert_eq (wallet_proof_check (pg, w.address, "alice", NULL, sig, nonce), WALLET_PROOF_OK);
    //  expired: refused by check and by consume
    cr_assert_eq (pg_run (pg, "UPDATE wallet_challenges SET expires_at = now () - interval '1 s'"),
                  0);
    cr_assert_eq (wallet_proof_check (pg, w.address, "alice", NULL, sig, nonce),
                  WALLET_PROOF_EXPIRED);
    cr_assert_eq (wallet_proof_consume (pg, c.nonce), WALLET_PROOF_EXPIRED);
    pg_destroy (&pg);
}

Test (wallet_proof, an_outsider_cannot_grow_the_table)
{
    pg_t *pg = s_fresh ("wp_bounds");
    s_wallet_t w = s_wallet ();
    wallet_proof_challenge_t first, c;
    //  a pair keeps its newest few: asking again replaces the oldest
    cr_assert_eq (wallet_proof_issue (pg, "mce", w.address, "alice", s_now_us (), &first),
                  WALLET_PROOF_OK);
    for (int i = 0; i < WALLET_PROOF_PER_PAIR + 3; i++)
        cr_assert_eq (wallet_proof_issue (pg, "mce", w.address, "alice", s_now_us (), &c),
                      WALLET_PROOF_OK);
    cr_assert_eq (s_int (pg, "SELECT count (*) FROM wallet_challenges"), WALLET_PROOF_PER_PAIR);
    char sig[AUTH_SIGNATURE_TEXT_MAX], nonce[WALLET_PROOF_NONCE_MAX];
    cr_assert_eq (wallet_proof_check (pg, w.address, "alice", first.nonce,
                                      s_sign (&w, first.message, sig), nonce),
                  WALLET_PROOF_NO_CHALLENGE, "the oldest was replaced");
    cr_assert_eq (
        wallet_proof_check (pg, w.address, "alice", NULL, s_sign (&w, c.message, sig), nonce),
        WALLET_PROOF_OK, "the newest is good");
    //  the table full (rows put in directly): issuing refuses, and adds nothing
    char sql[512];
    snprintf (sql, sizeof sql,
              "INSERT INTO wallet_challenges (nonce, wallet, username, message, issued_at, "
              "expires_at) SELECT 'flood' || i, 'W' || i, 'u' || i, 'm', now (), now () + "
              "interval '5 minutes' FROM generate_series (1, %d) i",
              WALLET_PROOF_MAX);
    cr_assert_eq (pg_run (pg, sql), 0, "%s", pg_error (pg));
    int64_t full = s_int (pg, "SELECT count (*) FROM wallet_challenges");
    cr_assert_eq (wallet_proof_issue (pg, "mce", w.address, "bob", s_now_us (), &c),
                  WALLET_PROOF_FULL);
    cr_assert_eq (s_int (pg, "SELECT count (*) FROM wallet_challenges"), full);
    const wallet_proof_answer_t *a = wallet_proof_answer (WALLET_PROOF_FULL);
    cr_assert_eq (a->status, 503);
    cr_assert_str_eq (a->code, "too_many_challenges");
    //  once they have expired and their grace has passed, they are gone at the next issue
    snprintf (sql, sizeof sql,
              "UPDATE wallet_challenges SET expires_at = now () - interval '%d seconds' WHERE "
              "nonce LIKE 'flood%%'",
              WALLET_PROOF_KEEP_S + 1);
    cr_assert_eq (pg_run (pg, sql), 0, "%s", pg_error (pg));
    cr_assert_eq (wallet_proof_issue (pg, "mce", w.address, "bob", s_now_us (), &c),
                  WALLET_PROOF_OK);
    cr_assert_eq (s_int (pg, "SELECT count (*) FROM wallet_challenges WHERE nonce LIKE 'flood%'"),
                  0);
    //  an expired one within its grace stays, so a late client hears "expired"
    cr_assert_eq (pg_run (pg, "UPDATE wallet_challenges SET expires_at = now () - interval '1 s' "
                              "WHERE username = 'bob'"),
                  0);
    cr_assert_eq (wallet_proof_issue (pg, "mce", w.address, "carol", s_now_us (), &first),
                  WALLET_PROOF_OK);
    cr_assert_eq (
        wallet_proof_check (pg, w.address, "bob", NULL, s_sign (&w, c.message, sig), nonce),
        WALLET_PROOF_EXPIRED);
    pg_destroy (&pg);
}
