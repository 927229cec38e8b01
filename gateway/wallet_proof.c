/*  wallet_proof — see wallet_proof.h.  */
#include "wallet_proof.h"
#include "base58.h"
#include "log.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define S_NONCE_BYTES 16 //  128 bits: never guessed, never repeated
//  Candidates verified at most when the client names no nonce: the pair keeps
//  WALLET_PROOF_PER_PAIR, and a few more may be there after concurrent issues.
#define S_CANDIDATES_MAX (WALLET_PROOF_PER_PAIR + 5)

static const wallet_proof_answer_t s_answers[WALLET_PROOF_OUTCOMES] = {
    [WALLET_PROOF_OK] = {200, "", NULL, ""},
    [WALLET_PROOF_NO_CHALLENGE] = {400, "no_challenge", NULL,
                                   "no challenge for this wallet and username: ask POST "
                                   "/api/auth/challenge for one, sign its message, then send "
                                   "the signature within 5 minutes"},
    [WALLET_PROOF_MISMATCH] = {400, "challenge_mismatch", "nonce",
                               "this nonce was issued for another wallet or username"},
    [WALLET_PROOF_BAD_SIGNATURE] = {400, "bad_signature", "signature",
                                    "the signature is not this wallet's signature of the "
                                    "challenge's message (sign exactly the message "
                                    "/api/auth/challenge answered, with the wallet it names)"},
    [WALLET_PROOF_EXPIRED] = {400, "challenge_expired", NULL,
                              "the challenge has expired: ask for a new one and sign it "
                              "within 5 minutes"},
    [WALLET_PROOF_USED] = {409, "challenge_used", NULL,
                           "this challenge was used already (each is good once): ask for a "
                           "new one"},
    [WALLET_PROOF_FULL] = {503, "too_many_challenges", NULL,
                           "too many sign-ups are in progress; retry in a few minutes"},
    [WALLET_PROOF_DATABASE] = {503, "database_unavailable", NULL,
                               "the user database failed; retry shortly"},
};

const wallet_proof_answer_t *wallet_proof_answer (wallet_proof_outcome_t outcome)
{
    assert (outcome >= 0 && outcome < WALLET_PROOF_OUTCOMES);
    return &s_answers[outcome];
}

void wallet_proof_domain (const char *host, char out[WALLET_PROOF_DOMAIN_MAX])
{
    //  A host name, an IPv4 address or a bracketed IPv6 one, and a port: nothing that could
    //  end the line or pass for another field of the message.
    size_t len = host ? strlen (host) : 0;
    bool ok = len > 0 && len < WALLET_PROOF_DOMAIN_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        char c = host[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    }
    snprintf (out, WALLET_PROOF_DOMAIN_MAX, "%s", ok ? host : "mce");
}

//  Unix seconds as RFC 3339 UTC without fractions ("2026-11-21T21:40:00Z").
static void s_rfc3339 (int64_t s, char out[WALLET_PROOF_TIME_MAX])
{
    time_t t = (time_t) s;
    struct tm tm;
    if (!gmtime_r (&t, &tm) || !strftime (out, WALLET_PROOF_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf (out, WALLET_PROOF_TIME_MAX, "1970-01-01T00:00:00Z");
}

int wallet_proof_message (const char *domain, const char *wallet, const char *username,
                          const char *nonce, int64_t issued_s, int64_t expires_s, char *out,
                          size_t size)
{
    char issued[WALLET_PROOF_TIME_MAX], expires[WALLET_PROOF_TIME_MAX];
    s_rfc3339 (issued_s, issued);
    s_rfc3339 (expires_s, expires);
    int n = snprintf (out, size,
                      "%s wants you to register a Solana wallet for mce:\n"
                      "%s\n"
                      "\n"
                      "Link this wallet to the mce user %s. Signing proves the wallet is yours; "
                      "it sends no transaction and moves no funds.\n"
                      "\n"
                      "Username: %s\n"
                      "Nonce: %s\n"
                      "Issued At: %s\n"
                      "Expiration Time: %s",
                      domain, wallet, username, username, nonce, issued, expires);
    return n < 0 || (size_t) n >= size ? -1 : n;
}

//  Runs a statement whose failure is a database failure, logged with what it was for.
static pg_result_t *s_exec (pg_t *pg, const char *what, const char *sql, int n,
                            const char *const *params)
{
    pg_result_t *r = pg_exec (pg, sql, n, params);
    if (!r)
        log_warn ("gateway", "wallet proof: %s: %s", what, pg_error (pg));
    return r;
}

wallet_proof_outcome_t wallet_proof_issue (pg_t *pg, const char *domain, const char *wallet,
                                           const char *username, int64_t now_us,
                                           wallet_proof_challenge_t *out)
{
    assert (pg && domain && wallet && username && out);
    int64_t issued_s = now_us / 1000000;
    int64_t expires_s = issued_s + WALLET_PROOF_TTL_S;
    uint8_t raw[S_NONCE_BYTES];
    auth_random (raw, sizeof raw);
    if (base58_encode (raw, sizeof raw, out->nonce, sizeof out->nonce) < 0 ||
        wallet_proof_message (domain, wallet, username, out->nonce, issued_s, expires_s,
                              out->message, sizeof out->message) < 0)
        return WALLET_PROOF_DATABASE; //  cannot happen with checked input; refuse rather than cut
    s_rfc3339 (issued_s, out->issued_at);
    s_rfc3339 (expires_s, out->expires_at);

    char keep[24], older[24], max[24], issued[32], expires[24];
    snprintf (keep, sizeof keep, "%d", WALLET_PROOF_KEEP_S);
    snprintf (older, sizeof older, "%d", WALLET_PROOF_PER_PAIR - 1);
    snprintf (max, sizeof max, "%d", WALLET_PROOF_MAX);
    snprintf (issued, sizeof issued, "%" PRId64 ".%06" PRId64, now_us / 1000000, now_us % 1000000);
    snprintf (expires, sizeof expires, "%" PRId64, expires_s);
    //  What has outlived its grace goes first, then the pair's oldest beyond the newest
    //  PER_PAIR - 1 (the new one makes PER_PAIR), so the count below is of what stays.
    pg_result_t *r = s_exec (pg, "deleting expired challenges",
                             "DELETE FROM wallet_challenges "
                             "WHERE expires_at < now () - make_interval (secs => $1::int)",
                             1, (const char *[]){keep});
    if (!r)
        return WALLET_PROOF_DATABASE;
    pg_result_free (&r);
    r = s_exec (pg, "replacing a pair's oldest challenge",
                "DELETE FROM wallet_challenges WHERE nonce IN (SELECT nonce FROM "
                "wallet_challenges WHERE wallet = $1 AND username = $2 "
                "ORDER BY issued_at DESC OFFSET $3::int)",
                3, (const char *[]){wallet, username, older});
    if (!r)
        return WALLET_PROOF_DATABASE;
    pg_result_free (&r);
    r = s_exec (pg, "issuing a challenge",
                "INSERT INTO wallet_challenges "
                "(nonce, wallet, username, message, issued_at, expires_at) "
                "SELECT $1, $2, $3, $4, to_timestamp ($5::double precision), "
                "to_timestamp ($6::double precision) "
                "WHERE (SELECT count (*) FROM wallet_challenges) < $7::int",
                7,
                (const char *[]){out->nonce, wallet, username, out->message, issued, expires, max});
    if (!r)
        return WALLET_PROOF_DATABASE;
    int64_t inserted = pg_affected (r);
    pg_result_free (&r);
    if (inserted != 1) {
        log_warn ("gateway",
                  "wallet proof: %d challenges outstanding: refusing more until some "
                  "expire",
                  WALLET_PROOF_MAX);
        return WALLET_PROOF_FULL;
    }
    return WALLET_PROOF_OK;
}

wallet_proof_outcome_t wallet_proof_check (pg_t *pg, const char *wallet, const char *username,
                                           const char *nonce, const char *signature,
                                           char nonce_out[WALLET_PROOF_NONCE_MAX])
{
    assert (pg && wallet && username && signature && nonce_out);
    //  columns: nonce, message, used, expired, wallet, username
    pg_result_t *r;
    if (nonce)
        r = s_exec (pg, "finding a challenge",
                    "SELECT nonce, message, used_at IS NOT NULL, expires_at <= now (), wallet, "
                    "username FROM wallet_challenges WHERE nonce = $1",
                    1, (const char *[]){nonce});
    else {
        char limit[16];
        snprintf (limit, sizeof limit, "%d", S_CANDIDATES_MAX);
        r = s_exec (pg, "finding a challenge",
                    "SELECT nonce, message, used_at IS NOT NULL, expires_at <= now (), wallet, "
                    "username FROM wallet_challenges WHERE wallet = $1 AND username = $2 "
                    "ORDER BY issued_at DESC LIMIT $3::int",
                    3, (const char *[]){wallet, username, limit});
    }
    if (!r)
        return WALLET_PROOF_DATABASE;
    wallet_proof_outcome_t outcome = WALLET_PROOF_NO_CHALLENGE;
    size_t sig_len = strlen (signature);
    for (int row = 0; row < pg_rows (r); row++) {
        if (strcmp (pg_value (r, row, 4), wallet) != 0 ||
            strcmp (pg_value (r, row, 5), username) != 0) {
            outcome = WALLET_PROOF_MISMATCH; //  only when the client named the nonce
            break;
        }
        const char *message = pg_value (r, row, 1);
        outcome = WALLET_PROOF_BAD_SIGNATURE;
        if (!auth_wallet_verify (wallet, signature, sig_len, message, strlen (message)))
            continue;
        //  The signature is good: only now does the challenge's state matter (an outsider
        //  who cannot sign learns nothing about it).
        if (strcmp (pg_value (r, row, 2), "t") == 0)
            outcome = WALLET_PROOF_USED;
        else if (strcmp (pg_value (r, row, 3), "t") == 0)
            outcome = WALLET_PROOF_EXPIRED;
        else {
            outcome = WALLET_PROOF_OK;
            snprintf (nonce_out, WALLET_PROOF_NONCE_MAX, "%s", pg_value (r, row, 0));
        }
        break;
    }
    pg_result_free (&r);
    return outcome;
}

wallet_proof_outcome_t wallet_proof_consume (pg_t *pg, const char *nonce)
{
    assert (pg && nonce);
    pg_result_t *r = s_exec (pg, "consuming a challenge",
                             "UPDATE wallet_challenges SET used_at = now () WHERE nonce = $1 "
                             "AND used_at IS NULL AND expires_at > now () RETURNING used_at",
                             1, (const char *[]){nonce});
    if (!r)
        return WALLET_PROOF_DATABASE;
    bool won = pg_rows (r) == 1;
    pg_result_free (&r);
    if (won)
        return WALLET_PROOF_OK;
    //  Someone else consumed it since the check (another gateway, a second click), or it
    //  expired meanwhile: say which.
    r = s_exec (pg, "reading a challenge",
                "SELECT used_at IS NOT NULL FROM wallet_challenges WHERE nonce = $1", 1,
                (const char *[]){nonce});
    if (!r)
        return WALLET_PROOF_DATABASE;
    bool used = pg_rows (r) == 1 && strcmp (pg_value (r, 0, 0), "t") == 0;
    pg_result_free (&r);
    return used ? WALLET_PROOF_USED : WALLET_PROOF_EXPIRED;
}
