/*  routes_auth — self-service registration and login.

    Both run on the worker: argon2id takes tens of milliseconds and 64 MiB by design, and the
    users live in Postgres (gateway/migrations). The loop checks the input first (cheap, and
    a bad request never costs a hash), suspends the request and hands over a job; the job's
    done resumes it. Registration always makes a plain user: admins are made with mcectl.

    Login answers unknown users and wrong passwords alike, and spends the same argon2id work on
    both, so neither the answer nor its timing tells whether a username exists.
*/
#include "auth.h"
#include "clock.h"
#include "gateway_server.h"
#include "log.h"

#include <string.h>

typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    bool login;
    auth_cost_t cost;
    char username[65]; //  AUTH_USERNAME_MAX, or a token's sub (64)
    char password[AUTH_PASSWORD_MAX + 1];
    char wallet[64];
    //  outcome, filled on the worker
    unsigned status;
    char code[32];
    char message[160];
    int role;
    char created_at[40];
    char key[AUTH_API_KEY_MAX]; //  api-keys: the new key, shown once
    char label[65];
} s_job_t;

//  Copies a string field of the body after checking it with rule. 0, or -1 after answering.
static int s_field (gateway_request_t *req, json_t *root, const char *key,
                    const char *(*rule) (const char *, size_t), char *out, size_t size)
{
    json_t *v = json_object_get (root, key);
    if (!v || json_is_null (v)) {
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

static void s_set (s_job_t *job, unsigned status, const char *code, const char *message)
{
    job->status = status;
    snprintf (job->code, sizeof job->code, "%s", code);
    snprintf (job->message, sizeof job->message, "%s", message);
}

//  Worker: hash the password, insert the user.
static void s_register_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    char hash[AUTH_HASH_MAX];
    if (!pg) {
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
               "the user database is unreachable; retry shortly");
        return;
    }
    if (auth_password_hash (job->password, job->cost, hash)) {
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", "out of memory hashing; retry");
        return;
    }
    const char *params[] = {job->username, hash, job->wallet};
    pg_result_t *r = pg_exec (pg,
                              "INSERT INTO users (username, password_hash, wallet, role) "
                              "VALUES ($1, $2, $3, 'user') "
                              "RETURNING to_char (created_at AT TIME ZONE 'UTC', "
                              "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                              3, params);
    if (!r && strcmp (pg_sqlstate (pg), PG_UNIQUE_VIOLATION) == 0)
        s_set (job, MHD_HTTP_CONFLICT, "username_taken", "that username is taken");
    else if (!r) {
        log_warn ("gateway", "register %s: %s", job->username, pg_error (pg));
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
               "the user database failed; retry shortly");
    }
    else {
        s_set (job, MHD_HTTP_CREATED, "", "");
        snprintf (job->created_at, sizeof job->created_at, "%s", pg_value (r, 0, 0));
    }
    pg_result_free (&r);
    auth_wipe (job->password, sizeof job->password);
}

//  Worker: find the user and check the password.
static void s_login_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    //  A valid hash of a password nobody knows: verifying against it costs what a real check
    //  costs, so an unknown username answers no faster than a wrong password.
    static const char *const decoy = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
                                     "tgqQrGMaBqEWDzk9k9vbzbvpyJXhvoBkIEIw8oJlHgA";
    if (!pg) {
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
               "the user database is unreachable; retry shortly");
        return;
    }
    const char *params[] = {job->username};
    pg_result_t *r =
        pg_exec (pg, "SELECT password_hash, role FROM users WHERE username = $1", 1, params);
    if (!r) {
        log_warn ("gateway", "login %s: %s", job->username, pg_error (pg));
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
               "the user database failed; retry shortly");
        return;
    }
    bool found = pg_rows (r) == 1;
    const char *hash = found ? pg_value (r, 0, 0) : decoy;
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

//  Worker: store the hash of a new API key for the user.
static void s_api_key_run (gateway_job_t *base, pg_t *pg)
{
    s_job_t *job = (s_job_t *) base;
    if (!pg) {
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
               "the user database is unreachable; retry shortly");
        return;
    }
    char hash[AUTH_API_KEY_HASH_MAX];
    auth_api_key_new (job->key);
    auth_api_key_hash (job->key, hash);
    const char *params[] = {hash, job->username, job->label[0] ? job->label : NULL};
    pg_result_t *r = pg_exec (pg,
                              "INSERT INTO api_keys (key_hash, username, label) "
                              "SELECT $1, username, $3 FROM users WHERE username = $2",
                              3, params);
    if (r && pg_affected (r) == 1)
        s_set (job, MHD_HTTP_CREATED, "", "");
    else if (r)
        s_set (job, MHD_HTTP_CONFLICT, "unknown_user",
               "API keys are for registered users (this token's user is not one)");
    else {
        log_warn ("gateway", "api key for %s: %s", job->username, pg_error (pg));
        s_set (job, MHD_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
               "the user database failed; retry shortly");
    }
    pg_result_free (&r);
}

//  Loop: answer the suspended request.
static void s_done (gateway_job_t *base)
{
    s_job_t *job = (s_job_t *) base;
    gateway_request_t *req = job->req;
    json_t *body;
    if (job->status >= 300)
        body = gateway_error (job->code, NULL, "%s", job->message);
    else if (job->key[0]) {
        body = json_pack ("{s:s,s:s,s:s*}", "api_key", job->key, "username", job->username, "label",
                          job->label[0] ? job->label : NULL);
        auth_wipe (job->key, sizeof job->key);
    }
    else if (!job->login)
        body = json_pack ("{s:s,s:s,s:s,s:s}", "username", job->username, "role", "user", "wallet",
                          job->wallet, "created_at", job->created_at);
    else {
        gateway_server_t *server = req->server;
        size_t len;
        const uint8_t *secret = gateway_server_secret (server, &len);
        int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
        auth_claims_t claims = {.role = job->role,
                                .iat = now,
                                .exp = now + gateway_server_config (server)->gateway.jwt_ttl_s};
        snprintf (claims.sub, sizeof claims.sub, "%.63s", job->username);
        char token[AUTH_JWT_MAX], expires[40];
        clock_format_rfc3339 (claims.exp * MCE_NS_PER_SEC, expires, sizeof expires);
        if (auth_jwt_mint (secret, len, &claims, token, sizeof token) == 0)
            body = json_pack ("{s:s,s:s,s:s,s:s,s:s}", "token", token, "token_type", "Bearer",
                              "expires_at", expires, "username", job->username, "role",
                              job->role == PROTO_ROLE_ADMIN ? "admin" : "user");
        else {
            job->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
            body = gateway_error ("internal", NULL, "could not sign a token");
        }
    }
    gateway_resume (req, job->status, body);
    free (job);
}

static enum MHD_Result s_submit (gateway_request_t *req, s_job_t *job)
{
    job->job.done = s_done;
    job->req = req;
    if (gateway_worker_submit (gateway_server_worker (req->server), &job->job)) {
        auth_wipe (job->password, sizeof job->password);
        free (job);
        return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", NULL,
                             "too many sign-ins at once; retry shortly");
    }
    gateway_suspend (req);
    return MHD_YES;
}

//  POST /api/auth/register {username, password, wallet}
enum MHD_Result routes_auth_register (gateway_request_t *req)
{
    static const char *const keys[] = {"username", "password", "wallet", NULL};
    json_t *root = gateway_body (req, keys);
    if (!root)
        return MHD_YES;
    s_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        json_decref (root);
        return MHD_NO;
    }
    if (s_field (req, root, "username", auth_check_username, job->username, sizeof job->username) ||
        s_field (req, root, "password", auth_check_password, job->password, sizeof job->password) ||
        s_field (req, root, "wallet", auth_check_wallet, job->wallet, sizeof job->wallet)) {
        json_decref (root);
        auth_wipe (job->password, sizeof job->password);
        free (job);
        return MHD_YES;
    }
    json_decref (root);
    job->job.run = s_register_run;
    job->cost = (auth_cost_t) gateway_server_config (req->server)->gateway.password_cost;
    return s_submit (req, job);
}

//  POST /api/auth/login {username, password}
enum MHD_Result routes_auth_login (gateway_request_t *req)
{
    static const char *const keys[] = {"username", "password", NULL};
    json_t *root = gateway_body (req, keys);
    if (!root)
        return MHD_YES;
    s_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        json_decref (root);
        return MHD_NO;
    }
    if (s_field (req, root, "username", auth_check_username, job->username, sizeof job->username) ||
        s_field (req, root, "password", auth_check_password, job->password, sizeof job->password)) {
        json_decref (root);
        auth_wipe (job->password, sizeof job->password);
        free (job);
        return MHD_YES;
    }
    json_decref (root);
    job->job.run = s_login_run;
    job->login = true;
    return s_submit (req, job);
}

//  POST /api/auth/api-keys {label?}: a key for the native port, shown once.
enum MHD_Result routes_auth_api_key (gateway_request_t *req)
{
    static const char *const keys[] = {"label", NULL};
    json_t *root = req->body_len ? gateway_body (req, keys) : json_object ();
    if (!root)
        return MHD_YES;
    json_t *label = json_object_get (root, "label");
    if (label && (!json_is_string (label) || json_string_length (label) > 64)) {
        json_decref (root);
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", "label",
                             "label must be a string of at most 64 characters");
    }
    s_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        json_decref (root);
        return MHD_NO;
    }
    snprintf (job->username, sizeof job->username, "%s", req->who.user);
    if (label)
        snprintf (job->label, sizeof job->label, "%s", json_string_value (label));
    json_decref (root);
    job->job.run = s_api_key_run;
    return s_submit (req, job);
}
