/*  routes_auth — self-service sign-up with a proven wallet, login, changing one's wallet, and
    API keys.

    All of it runs on the worker: argon2id takes tens of milliseconds and 64 MiB by design, and
    the users and the wallet challenges live in Postgres (gateway/migrations). The loop checks
    the input first (cheap, and a bad request never costs a hash), suspends the request and
    hands over a job; the job's done resumes it. Registration always makes a plain user:
    admins are made with mcectl.

    Signing up is two requests (wallet_proof.h): POST /api/auth/challenge {wallet, username}
    answers a message to sign; POST /api/auth/register {username, password, wallet, signature}
    then finds the challenge the signature signs (the pair's newest, or the one an optional
    "nonce" names), and only if the signature is the wallet's does it spend argon2id on the
    password; the nonce is consumed in the transaction that inserts the user, so a failure
    leaves neither a user nor a spent nonce, and a nonce works once on every gateway. A
    signed-in user changes wallet the same way (POST /api/auth/wallet {wallet, signature,
    password}, a challenge for the new wallet and their own username), and gives their
    password too: the wallet is where withdrawals are paid, so a token alone (one that leaked,
    valid for an hour) must not be enough to redirect a user's money to a wallet of the
    thief's.

    A username is no secret (registering one that exists always said so), so "username_taken"
    is answered before anything else; "wallet_taken" only to the wallet's holder, after the
    signature held, so nobody learns from us which wallets are registered.

    Login answers unknown users and wrong passwords alike, and spends the same argon2id work on
    both, so neither the answer nor its timing tells whether a username exists.
*/
#include "apijson.h"
#include "auth.h"
#include "base58.h"
#include "clock.h"
#include "gateway_server.h"
#include "known_users.h"
#include "log.h"
#include "wallet_proof.h"

#include <string.h>
#include <zmq.h>

typedef enum {
    S_REGISTER,
    S_LOGIN,
    S_API_KEY,
    S_API_KEYS,       //  the user's keys, listed
    S_API_KEY_REVOKE, //  one of them deleted
    S_CHALLENGE,
    S_WALLET
} s_kind_t;

typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    s_kind_t kind;
    auth_cost_t cost;
    char username[65]; //  AUTH_USERNAME_MAX, or a token's sub (64)
    char password[AUTH_PASSWORD_MAX + 1];
    char wallet[AUTH_WALLET_MAX];
    char signature[AUTH_SIGNATURE_TEXT_MAX];
    char nonce[WALLET_PROOF_NONCE_MAX]; //  "" = whichever of the pair's challenges it signs
    char domain[WALLET_PROOF_DOMAIN_MAX];
    int64_t now_us;
    //  outcome, filled on the worker
    unsigned status;
    char code[32];
    const char *field; //  static, or NULL
    char message[256];
    int role;
    char created_at[40];
    char key[AUTH_API_KEY_MAX];             //  api-keys: the new key, shown once
    char curve_key[AUTH_CURVE_KEY_Z85 + 1]; //  api-keys: a CURVE public key instead (Z85)
    char label[65];
    int64_t key_id;      //  api-keys: the new key's id, or the one to revoke
    int64_t keys_max;    //  api-keys: unexpired keys a user may hold
    char expires_at[40]; //  api-keys: "" = never (in), RFC 3339 (out)
    json_t *keys;        //  api-keys list: the rows
    wallet_proof_challenge_t challenge;
} s_job_t;

//  Copies a string field of the body after checking it with rule. With optional, an absent
//  or null field leaves out "". 0, or -1 after answering.
static int s_field_rule (gateway_request_t *req, json_t *root, const char *key,
                         const char *(*rule) (const char *, size_t), bool optional, char *out,
                         size_t size)
{
    json_t *v = json_object_get (root, key);
    if (!v || json_is_null (v)) {
        if (optional) {
            out[0] = '\0';
            return 0;
        }
        gateway_fail (req, MHD_HTTP_BAD_REQUEST, "missing_field", key, "%s is required", key);
        return -1;
    }
    if (!json_is_string (v)) {
        gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", key, "%s must be a string", key);
        return -1;
    }
    const char *reason = rule (json_string_value (v), json_string_length (v));
    if (!reason && json_string_length (v) >= size)
        reason = "is too long";
    if (reason) {
        gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", key, "%s %s", key, reason);
        return -1;
    }
    memcpy (out, json_string_value (v), json_string_length (v) + 1);
    return 0;
}

static int s_field (gateway_request_t *req, json_t *root, const char *key,
                    const char *(*rule) (const char *, size_t), char *out, size_t size)
{
    return s_field_rule (req, root, key, rule, false, out, size);
}

//  The rule for a nonce the client names: what wallet_proof issues (base58, 22 characters).
static const char *s_check_nonce (const char *text, size_t len)
{
    uint8_t raw[WALLET_PROOF_NONCE_MAX];
    if (len == 0 || len >= WALLET_PROOF_NONCE_MAX || base58_decode (text, len, raw, sizeof raw) < 0)
        return "must be the nonce /api/auth/challenge answered";
    return NULL;
}

static void s_set (s_job_t *job, unsigned status, const char *code, const char *message)
{
    job->status = status;
    job->field = NULL;
    snprintf (job->code, sizeof job->code, "%s", code);
    snprintf (job->message, sizeof job->message, "%s", message);
}

static void s_set_proof (s_job_t *job, wallet_proof_outcome_t outcome)
{
    const wallet_proof_answer_t *a = wallet_proof_answer (outcome);
    s_set (job, a->status, a->code, a->message);
    job->field = a->field;
}

static void s_set_database (s_job_t *job, pg_t *pg)
{
    if (pg)
        log_warn ("gateway", "%s: %s", job->username, pg_error (pg));
    s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
           pg ? "the user database failed; retry shortly"
              : "the user database is unreachable; retry shortly");
}

//  Whether username exists. 1 (answer set), 0, or -1 (database failure set).
static int s_username_taken (s_job_t *job, pg_t *pg)
{
    const char *params[] = {job->username};
    pg_result_t *r = pg_exec (pg, "SELECT 1 FROM users WHERE username = $1", 1, params);
    if (!r) {
        s_set_database (job, pg);
        return -1;
    }
    int taken = pg_rows (r) > 0;
    pg_result_free (&r);
    if (taken)
        s_set (job, MHD_HTTP_CONFLICT, "username_taken", "that username is taken");
    return taken;
}

static void s_set_wallet_taken (s_job_t *job)
{
    s_set (job, MHD_HTTP_CONFLICT, "wallet_taken",
           "this wallet belongs to another user (a wallet belongs to one user)");
    job->field = "wallet";
}

//  Whether job->wallet belongs to a user other than job->username. 1 (answer set), 0, or -1.
static int s_wallet_taken (s_job_t *job, pg_t *pg)
{
    const char *params[] = {job->wallet, job->username};
    pg_result_t *r =
        pg_exec (pg, "SELECT 1 FROM users WHERE wallet = $1 AND username <> $2", 2, params);
    if (!r) {
        s_set_database (job, pg);
        return -1;
    }
    int taken = pg_rows (r) > 0;
    pg_result_free (&r);
    if (taken)
        s_set_wallet_taken (job);
    return taken;
}

//  Worker: the signature first (cheap), then the password's hash (dear), then the user and
//  the nonce together.
static void s_register_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    char hash[AUTH_HASH_MAX], nonce[WALLET_PROOF_NONCE_MAX];
    wallet_proof_outcome_t proof;
    if (!pg)
        s_set_database (job, pg);
    else if (s_username_taken (job, pg) != 0)
        ; //  answered
    else if ((proof = wallet_proof_check (pg, job->wallet, job->username,
                                          job->nonce[0] ? job->nonce : NULL, job->signature,
                                          nonce)) != WALLET_PROOF_OK)
        s_set_proof (job, proof);
    else if (s_wallet_taken (job, pg) != 0)
        ; //  answered
    else if (auth_password_hash (job->password, job->cost, hash))
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", "out of memory hashing; retry");
    else if (pg_begin (pg))
        s_set_database (job, pg);
    else if ((proof = wallet_proof_consume (pg, nonce)) != WALLET_PROOF_OK) {
        pg_rollback (pg);
        s_set_proof (job, proof);
    }
    else {
        //  The checks above were a courtesy; the unique constraints decide. A conflict
        //  writes nothing, and says which: someone took the name or the wallet meanwhile.
        const char *params[] = {job->username, hash, job->wallet};
        pg_result_t *r = pg_exec (pg,
                                  "INSERT INTO users (username, password_hash, wallet, role) "
                                  "VALUES ($1, $2, $3, 'user') ON CONFLICT DO NOTHING "
                                  "RETURNING " GATEWAY_SQL_TIME ("created_at"),
                                  3, params);
        if (!r || pg_rows (r) != 1) {
            bool failed = !r;
            pg_rollback (pg);
            if (failed)
                s_set_database (job, pg);
            else if (s_username_taken (job, pg) == 0 && s_wallet_taken (job, pg) == 0)
                s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
                       "a sign-up at the same moment got in the way; retry");
        }
        else {
            snprintf (job->created_at, sizeof job->created_at, "%s", pg_value (r, 0, 0));
            if (pg_commit (pg))
                s_set_database (job, pg);
            else {
                s_set (job, MHD_HTTP_CREATED, "", "");
                log_info ("gateway", "user %s registered with wallet %s (challenge %s)",
                          job->username, job->wallet, nonce);
            }
        }
        pg_result_free (&r);
    }
    auth_wipe (hash, sizeof hash);
    auth_wipe (job->password, sizeof job->password);
}

//  Worker: a signed-in user's new wallet, proven as at sign-up.
//  Worker: 0 when the job's password is its user's (wiped either way), else -1 with the
//  answer set: 401 wrong_password, or the database's failure.
static int s_password_holds (s_job_t *job, pg_t *pg)
{
    pg_result_t *r = pg_exec (pg, "SELECT password_hash FROM users WHERE username = $1", 1,
                              (const char *[]){job->username});
    bool ok = r && pg_rows (r) == 1 && auth_password_verify (pg_value (r, 0, 0), job->password);
    auth_wipe (job->password, sizeof job->password);
    if (!r)
        s_set_database (job, pg);
    else if (!ok)
        s_set (job, MHD_HTTP_UNAUTHORIZED, "wrong_password",
               "the password is not this user's: changing the wallet needs it");
    pg_result_free (&r);
    return ok ? 0 : -1;
}

static void s_wallet_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    char nonce[WALLET_PROOF_NONCE_MAX], previous[AUTH_WALLET_MAX + 1];
    wallet_proof_outcome_t proof;
    if (!pg) {
        s_set_database (job, pg);
        return;
    }
    if (s_password_holds (job, pg) != 0)
        return;
    proof = wallet_proof_check (pg, job->wallet, job->username, job->nonce[0] ? job->nonce : NULL,
                                job->signature, nonce);
    if (proof != WALLET_PROOF_OK) {
        s_set_proof (job, proof);
        return;
    }
    if (s_wallet_taken (job, pg) != 0)
        return;
    if (pg_begin (pg)) {
        s_set_database (job, pg);
        return;
    }
    if ((proof = wallet_proof_consume (pg, nonce)) != WALLET_PROOF_OK) {
        pg_rollback (pg);
        s_set_proof (job, proof);
        return;
    }
    pg_result_t *r = pg_exec (pg, "SELECT wallet FROM users WHERE username = $1 FOR UPDATE", 1,
                              (const char *[]){job->username});
    if (!r || pg_rows (r) != 1) {
        bool failed = !r;
        pg_result_free (&r);
        pg_rollback (pg);
        if (failed)
            s_set_database (job, pg);
        else
            s_set (job, MHD_HTTP_UNAUTHORIZED, "unknown_user",
                   "this token's user is not a registered user");
        return;
    }
    snprintf (previous, sizeof previous, "%s", pg_value (r, 0, 0));
    pg_result_free (&r);
    r = pg_exec (pg, "UPDATE users SET wallet = $1 WHERE username = $2", 2,
                 (const char *[]){job->wallet, job->username});
    if (!r) {
        //  the unique constraint: someone registered the wallet since s_wallet_taken
        bool taken = strcmp (pg_sqlstate (pg), PG_UNIQUE_VIOLATION) == 0;
        pg_rollback (pg);
        if (taken)
            s_set_wallet_taken (job);
        else
            s_set_database (job, pg);
        return;
    }
    pg_result_free (&r);
    if (pg_commit (pg)) {
        s_set_database (job, pg);
        return;
    }
    s_set (job, MHD_HTTP_OK, "", "");
    //  The settler reads wallets once and keeps them (settler/wallets.c): it pays the old
    //  wallet until its cache is refreshed.
    log_info ("gateway", "user %s changed wallet from %s to %s (challenge %s)", job->username,
              previous, job->wallet, nonce);
}

//  Worker: a new challenge.
static void s_challenge_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    if (!pg) {
        s_set_database (job, pg);
        return;
    }
    wallet_proof_outcome_t outcome = wallet_proof_issue (
        pg, job->domain, job->wallet, job->username, job->now_us, &job->challenge);
    if (outcome == WALLET_PROOF_OK)
        s_set (job, MHD_HTTP_OK, "", "");
    else
        s_set_proof (job, outcome);
}

//  Worker: find the user and check the password.
static void s_login_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    if (!pg) {
        s_set_database (job, pg);
        return;
    }
    const char *params[] = {job->username};
    pg_result_t *r =
        pg_exec (pg, "SELECT password_hash, role FROM users WHERE username = $1", 1, params);
    if (!r) {
        s_set_database (job, pg);
        return;
    }
    bool found = pg_rows (r) == 1;
    //  An unknown username is checked against a hash of the configured cost, so it answers
    //  no faster than a wrong password does.
    const char *hash = found ? pg_value (r, 0, 0) : auth_password_decoy (job->cost);
    bool ok = auth_password_verify (hash, job->password) && found;
    if (ok) {
        s_set (job, MHD_HTTP_OK, "", "");
        job->role = strcmp (pg_value (r, 0, 1), "admin") == 0 ? PROTO_ROLE_ADMIN : PROTO_ROLE_USER;
    }
    else
        s_set (job, MHD_HTTP_UNAUTHORIZED, "invalid_credentials",
               "unknown username or wrong password");
    pg_result_free (&r);
    auth_wipe (job->password, sizeof job->password);
}

//  Worker: store the hash of a new API key for the user, unless the user holds
//  api_keys_per_user unexpired ones already.
static void s_api_key_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    if (!pg) {
        s_set_database (job, pg);
        return;
    }
    char hash[AUTH_API_KEY_HASH_MAX], max[24];
    if (job->curve_key[0]) { //  the client keeps its secret: we store its public key's hash
        char stored[AUTH_API_KEY_MAX];
        snprintf (stored, sizeof stored, "%s%s", AUTH_CURVE_KEY_PREFIX, job->curve_key);
        auth_api_key_hash (stored, hash);
    }
    else {
        auth_api_key_new (job->key);
        auth_api_key_hash (job->key, hash);
    }
    snprintf (max, sizeof max, "%lld", (long long) job->keys_max);
    const char *params[] = {hash,
                            job->username,
                            job->label[0] ? job->label : NULL,
                            job->expires_at[0] ? job->expires_at : NULL,
                            max,
                            job->curve_key[0] ? job->curve_key : NULL};
    //  One statement, so that two requests at once cannot both take the last place.
    pg_result_t *r =
        pg_exec (pg,
                 "WITH live AS (SELECT count(*) AS n FROM api_keys WHERE username = $2 AND "
                 "(expires_at IS NULL OR expires_at > now ())) "
                 "INSERT INTO api_keys (key_hash, username, label, expires_at, curve_public_key) "
                 "SELECT $1, u.username, $3, $4::timestamptz, $6 FROM users u, live "
                 "WHERE u.username = $2 AND live.n < $5::int "
                 "ON CONFLICT (key_hash) DO NOTHING "
                 "RETURNING id, " GATEWAY_SQL_TIME ("expires_at"),
                 6, params);
    if (r && pg_rows (r) == 1) {
        s_set (job, MHD_HTTP_CREATED, "", "");
        job->key_id = pg_int (r, 0, 0);
        const char *expires = pg_value (r, 0, 1); //  NULL: never
        snprintf (job->expires_at, sizeof job->expires_at, "%s", expires ? expires : "");
    }
    else if (r) {
        pg_result_free (&r);
        const char *who[] = {job->username, hash};
        r = pg_exec (pg,
                     "SELECT EXISTS (SELECT 1 FROM api_keys WHERE key_hash = $2) "
                     "FROM users WHERE username = $1",
                     2, who);
        if (r && pg_rows (r) == 1 && pg_value (r, 0, 0)[0] == 't')
            s_set (job, MHD_HTTP_CONFLICT, "key_exists",
                   "this CURVE public key is registered already");
        else if (r && pg_rows (r) == 1)
            s_set (job, MHD_HTTP_CONFLICT, "too_many_keys",
                   "this user holds the most unexpired API keys allowed; revoke one first");
        else if (r)
            s_set (job, MHD_HTTP_CONFLICT, "unknown_user",
                   "API keys are for registered users (this token's user is not one)");
        else
            s_set_database (job, pg);
    }
    else
        s_set_database (job, pg);
    pg_result_free (&r);
}

//  Worker: the user's keys, newest first (never their secrets: only hashes are stored).
static void s_api_keys_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    if (!pg) {
        s_set_database (job, pg);
        return;
    }
    const char *params[] = {job->username};
    pg_result_t *r = pg_exec (
        pg,
        "SELECT id, label, " GATEWAY_SQL_TIME ("created_at") ", " GATEWAY_SQL_TIME (
            "last_used_at") ", " GATEWAY_SQL_TIME ("expires_at") ", "
                                                                 "curve_public_key, "
                                                                 "expires_at IS NOT NULL AND "
                                                                 "expires_at <= now () "
                                                                 "FROM api_keys WHERE username = "
                                                                 "$1 ORDER BY id DESC",
        1, params);
    if (!r) {
        s_set_database (job, pg);
        return;
    }
    job->keys = json_array ();
    for (int i = 0; i < pg_rows (r); i++) {
        json_t *row = json_object ();
        json_object_set_new (row, "id", json_integer (pg_int (r, i, 0)));
        static const char *const names[] = {
            "", "label", "created_at", "last_used_at", "expires_at", "curve_public_key"};
        for (int c = 1; c <= 5; c++)
            json_object_set_new (row, names[c], apijson_text_or_null (pg_value (r, i, c)));
        const char *expired = pg_value (r, i, 6);
        json_object_set_new (row, "expired", json_boolean (expired && expired[0] == 't'));
        json_array_append_new (job->keys, row);
    }
    s_set (job, MHD_HTTP_OK, "", "");
    pg_result_free (&r);
}

//  Worker: delete one of the user's keys. It signs nothing in from then on.
static void s_api_key_revoke_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    if (!pg) {
        s_set_database (job, pg);
        return;
    }
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long) job->key_id);
    const char *params[] = {id, job->username};
    pg_result_t *r =
        pg_exec (pg, "DELETE FROM api_keys WHERE id = $1::bigint AND username = $2", 2, params);
    if (r && pg_affected (r) == 1)
        s_set (job, MHD_HTTP_NO_CONTENT, "", "");
    else if (r)
        s_set (job, MHD_HTTP_NOT_FOUND, "unknown_key", "you have no API key with this id");
    else
        s_set_database (job, pg);
    pg_result_free (&r);
}

//  Loop: a token for the user who just signed in.
static json_t *s_token_body (s_job_t *job)
{
    gateway_server_t *server = job->req->server;
    size_t len;
    const uint8_t *secret = gateway_server_secret (server, &len);
    int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
    auth_claims_t claims = {.role = job->role,
                            .iat = now,
                            .exp = now + gateway_server_config (server)->gateway.jwt_ttl_s};
    snprintf (claims.sub, sizeof claims.sub, "%.63s", job->username);
    char token[AUTH_JWT_MAX], expires[40];
    clock_format_rfc3339 (claims.exp * MCE_NS_PER_SEC, expires, sizeof expires);
    if (auth_jwt_mint (secret, len, &claims, token, sizeof token) != 0) {
        job->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return gateway_error ("internal", NULL, "could not sign a token");
    }
    return json_pack ("{s:s,s:s,s:s,s:s,s:s}", "token", token, "token_type", "Bearer", "expires_at",
                      expires, "username", job->username, "role",
                      job->role == PROTO_ROLE_ADMIN ? "admin" : "user");
}

//  Loop: answer the suspended request.
static void s_done (gateway_job_t *base)
{
    s_job_t *job = (s_job_t *) base;
    gateway_request_t *req = job->req;
    json_t *body = NULL;
    if (job->status >= 300)
        body = gateway_error (job->code, job->field, "%s", job->message);
    else
        switch (job->kind) {
            case S_API_KEY:
                //  a secret key is shown this once; a CURVE key's secret never came here
                body = json_pack ("{s:s*,s:I,s:s,s:s*,s:s*,s:s*}", "api_key",
                                  job->curve_key[0] ? NULL : job->key, "id",
                                  (json_int_t) job->key_id, "username", job->username, "label",
                                  job->label[0] ? job->label : NULL, "expires_at",
                                  job->expires_at[0] ? job->expires_at : NULL, "curve_public_key",
                                  job->curve_key[0] ? job->curve_key : NULL);
                auth_wipe (job->key, sizeof job->key);
                break;
            case S_API_KEYS:
                body = json_pack ("{s:o}", "api_keys", job->keys);
                job->keys = NULL;
                break;
            case S_API_KEY_REVOKE:
                break; //  204: no body
            case S_REGISTER:
                //  the user exists from now on: this gateway need not ask again
                known_users_learn (gateway_server_users (req->server), job->username);
                body = json_pack ("{s:s,s:s,s:s,s:s}", "username", job->username, "role", "user",
                                  "wallet", job->wallet, "created_at", job->created_at);
                break;
            case S_LOGIN:
                known_users_learn (gateway_server_users (req->server), job->username);
                body = s_token_body (job);
                break;
            case S_CHALLENGE:
                body = json_pack ("{s:s,s:s,s:s}", "message", job->challenge.message, "nonce",
                                  job->challenge.nonce, "expires_at", job->challenge.expires_at);
                break;
            case S_WALLET:
                body = json_pack ("{s:s,s:s}", "username", job->username, "wallet", job->wallet);
                break;
        }
    json_decref (job->keys); //  not handed over (an error)
    gateway_resume (req, job->status, body);
    free (job);
}

//  Jobs that hash a password go to the password workers, the rest to the query workers.
static enum MHD_Result s_submit (gateway_request_t *req, s_job_t *job,
                                 void (*run) (gateway_job_t *, pg_t *))
{
    job->job.run = run;
    job->job.done = s_done;
    job->req = req;
    bool hashes = run == s_register_run || run == s_login_run || run == s_wallet_run;
    gateway_worker_t *workers =
        hashes ? gateway_server_passwords (req->server) : gateway_server_worker (req->server);
    if (gateway_worker_submit (workers, &job->job)) {
        auth_wipe (job->password, sizeof job->password);
        free (job);
        if (hashes)
            gateway_server_passwords_busy (req->server);
        req->retry_after = 1;
        return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", NULL,
                             "too many sign-ins at once; retry shortly");
    }
    gateway_suspend (req);
    return MHD_YES;
}

//  A new job for the request's body, with only the keys allowed; NULL after answering (or,
//  unanswered, out of memory: the caller drops the connection).
static s_job_t *s_job_new (gateway_request_t *req, const char *const *keys, s_kind_t kind,
                           json_t **root)
{
    *root = gateway_body (req, keys);
    if (!*root)
        return NULL;
    s_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        json_decref (*root);
        *root = NULL;
        return NULL;
    }
    job->kind = kind;
    return job;
}

//  Drops a job whose input was refused (the answer is queued).
static enum MHD_Result s_refused (s_job_t *job, json_t *root)
{
    json_decref (root);
    auth_wipe (job->password, sizeof job->password);
    free (job);
    return MHD_YES;
}

//  POST /api/auth/challenge {wallet, username}: the message the wallet must sign.
enum MHD_Result routes_auth_challenge (gateway_request_t *req)
{
    static const char *const keys[] = {"wallet", "username", NULL};
    json_t *root;
    s_job_t *job = s_job_new (req, keys, S_CHALLENGE, &root);
    if (!job)
        return req->answered ? MHD_YES : MHD_NO;
    if (s_field (req, root, "wallet", auth_check_wallet, job->wallet, sizeof job->wallet) ||
        s_field (req, root, "username", auth_check_username, job->username, sizeof job->username))
        return s_refused (job, root);
    json_decref (root);
    //  The configured public domain when there is one: a site that relays our API cannot then
    //  have the message name it, and a wallet warns when a page asks to sign for another
    //  domain. Without one, the host the client reached.
    const char *domain = gateway_server_config (req->server)->gateway.domain;
    wallet_proof_domain (domain[0] ? domain
                                   : MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND,
                                                                  MHD_HTTP_HEADER_HOST),
                         job->domain);
    job->now_us = clock_wall_ns () / 1000;
    return s_submit (req, job, s_challenge_run);
}

//  POST /api/auth/register {username, password, wallet, signature, nonce?}
enum MHD_Result routes_auth_register (gateway_request_t *req)
{
    static const char *const keys[] = {"username",  "password", "wallet",
                                       "signature", "nonce",    NULL};
    json_t *root;
    s_job_t *job = s_job_new (req, keys, S_REGISTER, &root);
    if (!job)
        return req->answered ? MHD_YES : MHD_NO;
    if (s_field (req, root, "username", auth_check_username, job->username, sizeof job->username) ||
        s_field (req, root, "password", auth_check_password, job->password, sizeof job->password) ||
        s_field (req, root, "wallet", auth_check_wallet, job->wallet, sizeof job->wallet) ||
        s_field (req, root, "signature", auth_check_signature, job->signature,
                 sizeof job->signature) ||
        s_field_rule (req, root, "nonce", s_check_nonce, true, job->nonce, sizeof job->nonce))
        return s_refused (job, root);
    json_decref (root);
    job->cost = (auth_cost_t) gateway_server_config (req->server)->gateway.password_cost;
    return s_submit (req, job, s_register_run);
}

//  POST /api/auth/wallet {wallet, signature, password, nonce?}: the signed-in user's new wallet.
enum MHD_Result routes_auth_wallet (gateway_request_t *req)
{
    static const char *const keys[] = {"wallet", "signature", "password", "nonce", NULL};
    json_t *root;
    s_job_t *job = s_job_new (req, keys, S_WALLET, &root);
    if (!job)
        return req->answered ? MHD_YES : MHD_NO;
    if (s_field (req, root, "wallet", auth_check_wallet, job->wallet, sizeof job->wallet) ||
        s_field (req, root, "signature", auth_check_signature, job->signature,
                 sizeof job->signature) ||
        s_field (req, root, "password", auth_check_password, job->password, sizeof job->password) ||
        s_field_rule (req, root, "nonce", s_check_nonce, true, job->nonce, sizeof job->nonce))
        return s_refused (job, root);
    json_decref (root);
    snprintf (job->username, sizeof job->username, "%s", req->who.user);
    return s_submit (req, job, s_wallet_run);
}

//  POST /api/auth/login {username, password}
enum MHD_Result routes_auth_login (gateway_request_t *req)
{
    static const char *const keys[] = {"username", "password", NULL};
    json_t *root;
    s_job_t *job = s_job_new (req, keys, S_LOGIN, &root);
    if (!job)
        return req->answered ? MHD_YES : MHD_NO;
    if (s_field (req, root, "username", auth_check_username, job->username, sizeof job->username) ||
        s_field (req, root, "password", auth_check_password, job->password, sizeof job->password))
        return s_refused (job, root);
    json_decref (root);
    //  Per address and per username, before argon2 runs: guessing costs the guesser time, not
    //  every other user their sign-ins.
    unsigned wait = gateway_login_wait (req, job->username);
    if (wait) {
        auth_wipe (job->password, sizeof job->password);
        free (job);
        req->retry_after = wait;
        return gateway_fail (req, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited", NULL,
                             "too many logins; retry in %u s", wait);
    }
    job->cost = (auth_cost_t) gateway_server_config (req->server)->gateway.password_cost;
    return s_submit (req, job, s_login_run);
}

//  POST /api/auth/api-keys {label?, expires_at?, curve_public_key?}: a new key for the native
//  port for the signed-in user, shown once; or, with curve_public_key, the registration of the
//  client's own CURVE key pair for the encrypted port (its secret never leaves the client).
enum MHD_Result routes_auth_api_key (gateway_request_t *req)
{
    static const char *const keys[] = {"label", "expires_at", "curve_public_key", NULL};
    json_t *root = req->body_len ? gateway_body (req, keys) : json_object ();
    if (!root)
        return MHD_YES;
    json_t *label = json_object_get (root, "label");
    json_t *expires = json_object_get (root, "expires_at");
    json_t *curve = json_object_get (root, "curve_public_key");
    uint8_t curve_bytes[32];
    if (curve && !json_is_null (curve) &&
        (!json_is_string (curve) || json_string_length (curve) != AUTH_CURVE_KEY_Z85 ||
         !zmq_z85_decode (curve_bytes, json_string_value (curve)))) {
        json_decref (root);
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", "curve_public_key",
                             "curve_public_key must be a CURVE public key in Z85 (40 characters)");
    }
    int64_t expires_ns = 0;
    if (label && (!json_is_string (label) || json_string_length (label) > 64)) {
        json_decref (root);
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", "label",
                             "label must be a string of at most 64 characters");
    }
    if (expires && !json_is_null (expires) &&
        (!json_is_string (expires) ||
         clock_parse_rfc3339 (json_string_value (expires), json_string_length (expires),
                              &expires_ns))) {
        json_decref (root);
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", "expires_at",
                             "expires_at must be a time in RFC 3339");
    }
    if (expires_ns && expires_ns <= clock_wall_ns ()) {
        json_decref (root);
        return gateway_fail (req, MHD_HTTP_UNPROCESSABLE_CONTENT, "expired", "expires_at",
                             "expires_at is in the past");
    }
    s_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        json_decref (root);
        return MHD_NO;
    }
    job->kind = S_API_KEY;
    job->keys_max = gateway_server_config (req->server)->gateway.api_keys_per_user;
    snprintf (job->username, sizeof job->username, "%s", req->who.user);
    if (label)
        snprintf (job->label, sizeof job->label, "%s", json_string_value (label));
    if (curve && json_is_string (curve))
        snprintf (job->curve_key, sizeof job->curve_key, "%s", json_string_value (curve));
    if (expires_ns)
        clock_format_rfc3339 (expires_ns, job->expires_at, sizeof job->expires_at);
    json_decref (root);
    return s_submit (req, job, s_api_key_run);
}

//  GET /api/auth/api-keys: the signed-in user's keys (ids, labels, times; never a secret).
enum MHD_Result routes_auth_api_keys (gateway_request_t *req)
{
    s_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return MHD_NO;
    job->kind = S_API_KEYS;
    snprintf (job->username, sizeof job->username, "%s", req->who.user);
    return s_submit (req, job, s_api_keys_run);
}

//  DELETE /api/auth/api-keys/{id}: revokes one of the signed-in user's keys.
enum MHD_Result routes_auth_api_key_revoke (gateway_request_t *req)
{
    char *end = NULL;
    long long id = strtoll (req->param, &end, 10);
    if (!req->param[0] || *end || id <= 0)
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "unknown_key", NULL,
                             "you have no API key with this id");
    s_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return MHD_NO;
    job->kind = S_API_KEY_REVOKE;
    job->key_id = id;
    snprintf (job->username, sizeof job->username, "%s", req->who.user);
    return s_submit (req, job, s_api_key_revoke_run);
}

//  GET /api/auth/native-key: the gateway's CURVE public key (Z85), which a client of the
//  encrypted order port (gateway.native_curve) must trust.
enum MHD_Result routes_auth_native_key (gateway_request_t *req)
{
    const char *key = curve_public_key (gateway_server_curve (req->server));
    if (!key[0] || !gateway_server_config (req->server)->gateway.native_curve[0])
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "no_curve_port", NULL,
                             "this gateway has no CURVE order port");
    return gateway_respond (req, MHD_HTTP_OK, json_pack ("{s:s}", "server_key", key));
}
