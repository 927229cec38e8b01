/*  gateway_server — see gateway_server.h. Routing is a small table: the API has few enough
    routes that a linear match reads better than a router library.
*/
#include "gateway_server.h"
#include "auth.h"
#include "bus_sub.h"
#include "clock.h"
#include "fnv.h"
#include "journal.h"
#include "known_users.h"
#include "log.h"
#include "migrate.h"
#include "native_port.h"
#include "order_parse.h"
#include "connguard.h"
#include "ratelimit.h"
#include "redis.h"
#include "respcache.h"
#include "respool.h"
#include "seqwait.h"
#include "settler_link.h"

#include <arpa/inet.h>
#include <assert.h>
#include <czmq.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#define S_POLL_MAX_MS        100  //  the loop wakes at least this often (timeouts, signals)
#define S_WAIT_SEQ_MS        1000 //  longest a write's answer waits for the read model
#define S_WORKER_THREADS     2
#define S_WORKER_QUEUE       10000 //  queries waiting for the worker before 503
#define S_RATE_BUCKETS       65536
#define S_LATENCY_BUCKETS    12 //  100 µs, 200 µs, 400 µs, ... ~200 ms
#define S_CACHE_SLOTS        256
#define S_POOL_MAX_LEN       2048 //  bodies up to this many bytes go out in pooled responses
#define S_POOL_MAX_IDLE      2048
#define S_VERIFIED_SLOTS     4096
#define S_HEALTH_TIMEOUT_MS  1000 //  for each of Postgres and Redis
#define S_HEARTBEAT_STALE_MS 3000 //  no matcher heartbeat for this long: the matcher is down

//  A token whose signature was checked: the same bytes need not be checked again (HMAC and two
//  JSON parses each time were a fifth of an order's cost); its expiry still is, every time.
typedef struct {
    char token[AUTH_JWT_MAX / 8]; //  longer tokens are simply not cached
    size_t len;
    auth_claims_t claims;
} s_verified_t;

struct _gateway_server_t {
    const mce_config_t *cfg;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    matcher_link_t *link;
    settler_link_t *settler; //  the settler's admin port (admin settlement routes)
    curve_t *curve;          //  our key, for the links to the matcher and the settler
    readmodel_t *model;
    bus_sub_t *sub;
    gateway_worker_t *worker;
    gateway_worker_t *passwords; //  argon2id: its own threads and bounded queue
    native_port_t *native;
    ratelimit_t *rates;
    ratelimit_t *logins_user, *logins_address; //  attempts, before any hashing
    connguard_t *guard;                        //  connections per address, request deadlines
    respcache_t *cache;
    respool_t *pool;        //  reused responses, headers and all
    s_verified_t *verified; //  tokens already checked, by hash (S_VERIFIED_SLOTS)
    uint8_t secret[CONFIG_STR_MAX];
    size_t secret_len;
    seqwait_t *waits;     //  answers waiting for the read model to catch up
    known_users_t *users; //  who exists: a token of anyone else is refused
    bool stopping;        //  in gateway_server_destroy: a resumed request runs no handler
    int64_t started;
    //  metrics (the loop's thread only)
    uint64_t responses[6];                   //  by status class: [1] = 1xx ... [5] = 5xx
    uint64_t latency[S_LATENCY_BUCKETS + 1]; //  request → response, cumulative at render
    uint64_t latency_sum_us;
    uint64_t rate_limited;
    uint64_t logins_throttled; //  refused by logins_user or logins_address
    uint64_t passwords_busy;   //  refused because the password queue was full
};

const curve_t *gateway_server_curve (gateway_server_t *self)
{
    return self->curve;
}

const mce_config_t *gateway_server_config (gateway_server_t *self)
{
    return self->cfg;
}

settler_link_t *gateway_server_settler (gateway_server_t *self)
{
    return self->settler;
}

matcher_link_t *gateway_server_link (gateway_server_t *self)
{
    return self->link;
}

readmodel_t *gateway_server_readmodel (gateway_server_t *self)
{
    return self->model;
}

gateway_worker_t *gateway_server_worker (gateway_server_t *self)
{
    return self->worker;
}

gateway_worker_t *gateway_server_passwords (gateway_server_t *self)
{
    return self->passwords;
}

void gateway_server_passwords_busy (gateway_server_t *self)
{
    self->passwords_busy++;
}

respcache_t *gateway_server_cache (gateway_server_t *self)
{
    return self->cache;
}

known_users_t *gateway_server_users (gateway_server_t *self)
{
    return self->users;
}

const uint8_t *gateway_server_secret (gateway_server_t *self, size_t *len)
{
    *len = self->secret_len;
    return self->secret;
}

//  ---------------------------------------------------------------------------------------
//  Responses

static json_t *s_verror (const char *code, const char *field, const char *fmt, va_list ap)
{
    char message[512];
    vsnprintf (message, sizeof message, fmt, ap);
    return json_pack ("{s:{s:s,s:s,s:o}}", "error", "code", code, "message", message, "field",
                      field ? json_string (field) : json_null ());
}

json_t *gateway_error (const char *code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    json_t *e = s_verror (code, field, fmt, ap);
    va_end (ap);
    return e;
}

//  Whether gateway.cors_origins ("*" or a comma-separated list) lets origin in.
static bool s_origin_allowed (const mce_config_t *cfg, const char *origin)
{
    const char *list = cfg->gateway.cors_origins;
    if (strcmp (list, "*") == 0)
        return true;
    size_t n = strlen (origin);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn (p, ", ");
        if (len && len == n && strncmp (p, origin, n) == 0)
            return true;
        p += len;
    }
    return false;
}

//  The headers every API answer carries; type NULL: JSON.
static void s_dress_as (struct MHD_Response *r, const char *type)
{
    MHD_add_response_header (r, "Content-Type", type ? type : "application/json");
    MHD_add_response_header (r, "Cache-Control", "no-store");
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (r, "X-Frame-Options", "DENY");
    MHD_add_response_header (r, "Content-Security-Policy",
                             "default-src 'none'; frame-ancestors 'none'");
    MHD_add_response_header (r, "Referrer-Policy", "no-referrer");
}

//  A JSON answer's (the response pool dresses every pooled answer so).
static void s_dress (struct MHD_Response *r)
{
    s_dress_as (r, NULL);
}

//  Queues status + text (len bytes, copied) with the API's headers. An answer with nothing
//  but those goes out in a pooled response; one that needs more (CORS, Retry-After), or is
//  empty or large, in a response of its own.
static enum MHD_Result s_queue (gateway_request_t *req, unsigned status, const char *text,
                                size_t len, const char *type)
{
    gateway_server_t *self = req->server;
    assert (!req->pooled);
    req->answered = status;
    const char *origin = MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND, "Origin");
    bool cors = origin && s_origin_allowed (self->cfg, origin);
    if (!cors && !req->retry_after && !type) {
        req->pooled = respool_take (self->pool, text, len);
        if (req->pooled)
            return MHD_queue_response (req->connection, status, respool_response (req->pooled));
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer (len, (void *) (len ? text : ""), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    s_dress_as (r, type);
    if (cors) {
        MHD_add_response_header (r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header (r, "Vary", "Origin");
    }
    if (req->retry_after) {
        char seconds[16];
        snprintf (seconds, sizeof seconds, "%u", req->retry_after);
        MHD_add_response_header (r, "Retry-After", seconds);
    }
    enum MHD_Result rc = MHD_queue_response (req->connection, status, r);
    MHD_destroy_response (r);
    return rc;
}

enum MHD_Result gateway_respond (gateway_request_t *req, unsigned status, json_t *body)
{
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    if (body && !text)
        return MHD_NO;
    enum MHD_Result rc = s_queue (req, status, text, text ? strlen (text) : 0, NULL);
    free (text);
    return rc;
}

enum MHD_Result gateway_respond_text (gateway_request_t *req, unsigned status, const char *text,
                                      size_t len)
{
    return s_queue (req, status, text, len, NULL);
}

enum MHD_Result gateway_fail (gateway_request_t *req, unsigned status, const char *code,
                              const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    json_t *e = s_verror (code, field, fmt, ap);
    va_end (ap);
    return gateway_respond (req, status, e);
}

json_t *gateway_body (gateway_request_t *req, const char *const *allowed)
{
    order_error_t err;
    json_t *root = order_parse_object (req->body, req->body_len, allowed, &err);
    if (!root)
        gateway_fail (req, err.status, err.code, err.field[0] ? err.field : NULL, "%s",
                      err.message);
    return root;
}

const char *gateway_query (gateway_request_t *req, const char *key)
{
    return MHD_lookup_connection_value (req->connection, MHD_GET_ARGUMENT_KIND, key);
}

int gateway_query_int (gateway_request_t *req, const char *key, long long def, long long min,
                       long long max, long long *out)
{
    const char *text = gateway_query (req, key);
    *out = def;
    if (!text)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (!*text || *end || errno || v < min || v > max) {
        gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_query", key,
                      "%s must be an integer from %lld to %lld", key, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

//  The HTTP status for a matcher's reject.
unsigned gateway_reject_status (proto_reject_reason_t reason)
{
    switch (reason) {
        case PROTO_REJECT_REASON_MALFORMED:
            return MHD_HTTP_BAD_REQUEST;
        case PROTO_REJECT_REASON_UNKNOWN_ORDER:
        case PROTO_REJECT_REASON_NOT_OWNER:
            return MHD_HTTP_NOT_FOUND;
        case PROTO_REJECT_REASON_DUPLICATE_CLIENT_ID:
        case PROTO_REJECT_REASON_MARKET_PAUSED:
            return MHD_HTTP_CONFLICT;
        case PROTO_REJECT_REASON_NOT_ADMIN:
            return MHD_HTTP_FORBIDDEN;
        case PROTO_REJECT_REASON_OVERLOADED:
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        case PROTO_REJECT_REASON_INTERNAL:
            return MHD_HTTP_INTERNAL_SERVER_ERROR;
        default:
            return MHD_HTTP_UNPROCESSABLE_CONTENT;
    }
}

enum MHD_Result gateway_submit (gateway_request_t *req, gateway_job_t *job)
{
    if (gateway_worker_submit (req->server->worker, job)) {
        free (job);
        return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", NULL,
                             "the worker is saturated; retry shortly");
    }
    gateway_suspend (req);
    return MHD_YES;
}

void gateway_suspend (gateway_request_t *req)
{
    req->suspended = true;
    MHD_suspend_connection (req->connection);
}

void gateway_resume (gateway_request_t *req, unsigned status, json_t *body)
{
    req->status = status;
    req->response = body;
    MHD_resume_connection (req->connection);
}

void gateway_resume_blob (gateway_request_t *req, unsigned status, const char *type, char *blob,
                          size_t len)
{
    req->status = status;
    req->blob = blob;
    req->blob_len = len;
    req->blob_type = type;
    MHD_resume_connection (req->connection);
}

static void s_resume_waiting (void *arg)
{
    gateway_request_t *req = arg;
    MHD_resume_connection (req->connection);
}

void gateway_resume_after (gateway_request_t *req, uint64_t seq, unsigned status, json_t *body)
{
    gateway_server_t *self = req->server;
    req->status = status;
    req->response = body;
    seqwait_after (self->waits, readmodel_seq (self->model), seq, s_resume_waiting, req);
}

void gateway_resume_after_text (gateway_request_t *req, uint64_t seq, unsigned status,
                                const char *text, size_t len)
{
    assert (len > 0 && len < sizeof req->text);
    memcpy (req->text, text, len);
    req->text_len = len;
    gateway_resume_after (req, seq, status, NULL);
}

//  ---------------------------------------------------------------------------------------
//  Routes

//  GET /api/health: the process, its matcher link, the bus, Postgres and Redis. The two
//  databases are asked on the worker (a connection attempt may take its timeout), so the
//  answer is current, not a cached guess. Public: it says how things are, not where.
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    const char *redis_url;
    bool db, redis;
    char redis_error[160];
} s_health_job_t;

static void s_health_run (gateway_job_t *base, pg_t *pg)
{
    s_health_job_t *job = (s_health_job_t *) base;
    pg_result_t *r = pg ? pg_exec (pg, "SELECT 1", 0, NULL) : NULL;
    job->db = r != NULL;
    pg_result_free (&r);
    job->redis = job->redis_url[0] && redis_ping (job->redis_url, S_HEALTH_TIMEOUT_MS,
                                                  job->redis_error, sizeof job->redis_error) == 0;
}

static void s_health_done (gateway_job_t *base)
{
    s_health_job_t *job = (s_health_job_t *) base;
    gateway_request_t *req = job->req;
    gateway_server_t *self = req->server;
    //  up: the matcher's heartbeat (one a second) came lately, not merely once
    bus_sub_stats_t bus = bus_sub_stats (self->sub);
    bool heartbeat = bus.heartbeats > 0 &&
                     clock_mono_ns () - bus.heartbeat_ns < S_HEARTBEAT_STALE_MS * MCE_NS_PER_MSEC;
    //  Redis is optional (redis.url empty: nothing writes it), and then not a fault
    bool redis_configured = job->redis_url[0] != '\0';
    bool ok = job->db && (job->redis || !redis_configured) && heartbeat;
    json_t *body = json_pack (
        "{s:s,s:s,s:I,s:{s:b,s:i,s:I},s:{s:I,s:I},s:{s:b},s:{s:b,s:b}}", "status",
        ok ? "ok" : "degraded", "version", MCE_VERSION, "uptime_s",
        (json_int_t) ((clock_mono_ns () - self->started) / MCE_NS_PER_SEC), "matcher", "up",
        heartbeat, "in_flight", matcher_link_in_flight (self->link), "timeouts",
        (json_int_t) matcher_link_timeouts (self->link), "bus", "seq",
        (json_int_t) readmodel_seq (self->model), "head", (json_int_t) bus_sub_head_seq (self->sub),
        "postgres", "up", job->db, "redis", "up", job->redis, "configured", redis_configured);
    gateway_resume (req, MHD_HTTP_OK, body); //  the gateway serves; status says what is missing
    free (job);
}

static enum MHD_Result s_health (gateway_request_t *req)
{
    s_health_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return MHD_NO;
    job->job.run = s_health_run;
    job->job.done = s_health_done;
    job->req = req;
    job->redis_url = req->server->cfg->redis.url;
    return gateway_submit (req, &job->job);
}

extern const char gateway_openapi[]; //  gateway/openapi.json, embedded by CMake

static enum MHD_Result s_openapi (gateway_request_t *req)
{
    json_error_t err;
    json_t *doc = json_loads (gateway_openapi, 0, &err);
    if (!doc)
        return gateway_fail (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
                             "the embedded OpenAPI document does not parse: %s", err.text);
    return gateway_respond (req, MHD_HTTP_OK, doc);
}

//  GET /metrics, in Prometheus text.
static enum MHD_Result s_metrics (gateway_request_t *req)
{
    gateway_server_t *self = req->server;
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f)
        return MHD_NO;
    fprintf (f, "# HELP mce_gateway_responses_total HTTP responses by status class.\n"
                "# TYPE mce_gateway_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        fprintf (f, "mce_gateway_responses_total{class=\"%dxx\"} %llu\n", c,
                 (unsigned long long) self->responses[c]);
    fprintf (f,
             "# HELP mce_gateway_request_seconds Time from a request's arrival to its response.\n"
             "# TYPE mce_gateway_request_seconds histogram\n");
    uint64_t cumulative = 0;
    for (int b = 0; b <= S_LATENCY_BUCKETS; b++) {
        cumulative += self->latency[b];
        if (b < S_LATENCY_BUCKETS)
            fprintf (f, "mce_gateway_request_seconds_bucket{le=\"%g\"} %llu\n",
                     100e-6 * (double) (1 << b), (unsigned long long) cumulative);
        else
            fprintf (f, "mce_gateway_request_seconds_bucket{le=\"+Inf\"} %llu\n",
                     (unsigned long long) cumulative);
    }
    fprintf (f, "mce_gateway_request_seconds_sum %g\nmce_gateway_request_seconds_count %llu\n",
             (double) self->latency_sum_us / 1e6, (unsigned long long) cumulative);
    fprintf (
        f,
        "# HELP mce_gateway_rate_limited_total Requests refused by the rate limit (HTTP and the "
        "native port).\n"
        "# TYPE mce_gateway_rate_limited_total counter\nmce_gateway_rate_limited_total %llu\n"
        "# HELP mce_gateway_matcher_in_flight Commands waiting for the matcher.\n"
        "# TYPE mce_gateway_matcher_in_flight gauge\nmce_gateway_matcher_in_flight %d\n"
        "# HELP mce_gateway_matcher_timeouts_total Commands the matcher did not answer in time.\n"
        "# TYPE mce_gateway_matcher_timeouts_total counter\nmce_gateway_matcher_timeouts_total "
        "%llu\n"
        "# HELP mce_gateway_bus_seq Last matcher event in the read model.\n"
        "# TYPE mce_gateway_bus_seq gauge\nmce_gateway_bus_seq %llu\n"
        "# HELP mce_gateway_worker_jobs Jobs (queries) waiting for the worker.\n"
        "# TYPE mce_gateway_worker_jobs gauge\nmce_gateway_worker_jobs %d\n"
        "# HELP mce_gateway_password_jobs Sign-ups, logins and wallet changes waiting for "
        "password hashing.\n"
        "# TYPE mce_gateway_password_jobs gauge\nmce_gateway_password_jobs %d\n"
        "# HELP mce_gateway_password_busy_total Requests refused because the password queue was "
        "full.\n"
        "# TYPE mce_gateway_password_busy_total counter\nmce_gateway_password_busy_total %llu\n"
        "# HELP mce_gateway_logins_throttled_total Logins refused by the per-username or "
        "per-address limit, before any hashing.\n"
        "# TYPE mce_gateway_logins_throttled_total counter\n"
        "mce_gateway_logins_throttled_total %llu\n"
        "# HELP mce_gateway_connections HTTP connections open.\n"
        "# TYPE mce_gateway_connections gauge\nmce_gateway_connections %d\n"
        "# HELP mce_gateway_connections_refused_total Connections refused: their address had "
        "max_connections_per_address open.\n"
        "# TYPE mce_gateway_connections_refused_total counter\n"
        "mce_gateway_connections_refused_total %llu\n"
        "# HELP mce_gateway_request_deadline_total Connections shut for not sending a whole "
        "request within request_deadline_ms.\n"
        "# TYPE mce_gateway_request_deadline_total counter\n"
        "mce_gateway_request_deadline_total %llu\n"
        "# HELP mce_gateway_database_up Whether the worker reached Postgres last time.\n"
        "# TYPE mce_gateway_database_up gauge\nmce_gateway_database_up %d\n"
        "# HELP mce_gateway_user_lookups_total Signed-in users looked up in Postgres (not yet "
        "known here).\n"
        "# TYPE mce_gateway_user_lookups_total counter\nmce_gateway_user_lookups_total %llu\n"
        "# HELP mce_gateway_user_lookups_limited_total User lookups refused by their bound.\n"
        "# TYPE mce_gateway_user_lookups_limited_total counter\n"
        "mce_gateway_user_lookups_limited_total %llu\n"
        "# HELP mce_gateway_native_keys_revoked_total API keys found revoked while native "
        "sessions used them (those sessions are refused from then on).\n"
        "# TYPE mce_gateway_native_keys_revoked_total counter\n"
        "mce_gateway_native_keys_revoked_total %llu\n",
        (unsigned long long) (self->rate_limited + native_port_rate_limited (self->native)),
        matcher_link_in_flight (self->link),
        (unsigned long long) matcher_link_timeouts (self->link),
        (unsigned long long) readmodel_seq (self->model), gateway_worker_pending (self->worker),
        gateway_worker_pending (self->passwords), (unsigned long long) self->passwords_busy,
        (unsigned long long) self->logins_throttled, connguard_open (self->guard),
        (unsigned long long) connguard_refused (self->guard),
        (unsigned long long) connguard_timed_out (self->guard),
        gateway_worker_db_up (self->worker) ? 1 : 0,
        (unsigned long long) known_users_lookups (self->users),
        (unsigned long long) known_users_limited (self->users),
        (unsigned long long) native_port_keys_revoked (self->native));
    fclose (f);
    struct MHD_Response *r = MHD_create_response_from_buffer (size, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (r, "Content-Type", "text/plain; version=0.0.4");
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    req->answered = MHD_HTTP_OK;
    enum MHD_Result rc = MHD_queue_response (req->connection, MHD_HTTP_OK, r);
    MHD_destroy_response (r);
    return rc;
}

typedef enum { S_PUBLIC, S_USER, S_ADMIN } s_access_t;

typedef struct {
    const char *method;
    const char *path; //  a segment "{id}" matches one non-empty segment, kept in req->param
    s_access_t access;
    bool limited; //  counts against the caller's rate limit
    enum MHD_Result (*handler) (gateway_request_t *req);
} s_route_t;

static const s_route_t s_routes[] = {
    {"GET", "/api/health", S_PUBLIC, false, s_health},
    {"GET", "/api/openapi.json", S_PUBLIC, true, s_openapi},
    {"GET", "/metrics", S_PUBLIC, false, s_metrics},
    {"POST", "/api/auth/challenge", S_PUBLIC, true, routes_auth_challenge},
    {"POST", "/api/auth/register", S_PUBLIC, true, routes_auth_register},
    {"POST", "/api/auth/login", S_PUBLIC, true, routes_auth_login},
    {"POST", "/api/auth/wallet", S_USER, true, routes_auth_wallet},
    {"POST", "/api/auth/api-keys", S_USER, true, routes_auth_api_key},
    {"GET", "/api/auth/api-keys", S_USER, true, routes_auth_api_keys},
    {"DELETE", "/api/auth/api-keys/{id}", S_USER, true, routes_auth_api_key_revoke},
    {"GET", "/api/auth/native-key", S_PUBLIC, true, routes_auth_native_key},
    {"POST", "/api/trading/orders", S_USER, true, routes_trading_post_order},
    {"GET", "/api/trading/orders", S_USER, true, routes_trading_list_orders},
    {"GET", "/api/trading/orders/{id}", S_USER, true, routes_trading_get_order},
    {"GET", "/api/trading/orders/{id}/fills", S_USER, true, routes_trading_order_fills},
    {"DELETE", "/api/trading/orders/{id}", S_USER, true, routes_trading_cancel_order},
    {"PATCH", "/api/trading/orders/{id}", S_USER, true, routes_trading_amend_order},
    {"GET", "/api/market/depth", S_PUBLIC, true, routes_market_depth},
    {"GET", "/api/market/depth-chart", S_PUBLIC, true, routes_market_depth_chart},
    {"GET", "/api/market/stats", S_PUBLIC, true, routes_market_stats},
    {"GET", "/api/market/clearing-price", S_PUBLIC, true, routes_market_clearing_price},
    {"GET", "/api/market/indicative", S_PUBLIC, true, routes_market_indicative},
    {"GET", "/api/market/trades", S_PUBLIC, true, routes_market_trades},
    {"GET", "/api/market/epoch/status", S_PUBLIC, true, routes_market_epoch_status},
    {"GET", "/api/market/epochs", S_PUBLIC, true, routes_market_epochs},
    {"GET", "/api/market/trades/my-history", S_USER, true, routes_market_my_trades},
    {"GET", "/api/account/balances", S_USER, true, routes_account_balances},
    {"POST", "/api/account/deposits", S_USER, true, routes_account_deposit},
    {"GET", "/api/account/deposits", S_USER, true, routes_account_deposits},
    {"POST", "/api/account/withdrawals", S_USER, true, routes_account_withdraw},
    {"GET", "/api/account/withdrawals", S_USER, true, routes_account_withdrawals},
    {"GET", "/api/account/statement", S_USER, true, routes_statement},
    {"GET", "/api/admin/market/health", S_ADMIN, true, routes_admin_health},
    {"GET", "/api/admin/market/analytics", S_ADMIN, true, routes_admin_analytics},
    {"POST", "/api/admin/market/control", S_ADMIN, true, routes_admin_control},
    {"GET", "/api/admin/settlements", S_ADMIN, true, routes_admin_settlements},
    {"POST", "/api/admin/settlements/{id}/retry", S_ADMIN, true, routes_admin_settlement_retry},
    {"GET", "/api/admin/reconciliation", S_ADMIN, true, routes_admin_reconciliation},
    {"GET", "/", S_PUBLIC, false, routes_web_asset},
    {"GET", "/web/app.js", S_PUBLIC, false, routes_web_asset},
    {"GET", "/web/style.css", S_PUBLIC, false, routes_web_asset},
    {"GET", "/api/dashboard/config", S_PUBLIC, true, routes_web_config},
};

#define S_ROUTE_COUNT (int) (sizeof s_routes / sizeof s_routes[0])

//  Whether url matches pattern; a "{id}" segment's text goes to param.
static bool s_match (const char *pattern, const char *url, char *param, size_t size)
{
    while (*pattern && *url) {
        if (strncmp (pattern, "{id}", 4) == 0) {
            size_t n = strcspn (url, "/");
            if (n == 0 || n >= size)
                return false;
            memcpy (param, url, n);
            param[n] = '\0';
            pattern += 4;
            url += n;
            continue;
        }
        if (*pattern++ != *url++)
            return false;
    }
    return *pattern == '\0' && *url == '\0';
}

//  Who is calling, from "Authorization: Bearer <token>". NULL when the caller is signed in or
//  sent no token; else why the token is refused (the caller stays anonymous).
static const char *s_authenticate (gateway_request_t *req)
{
    gateway_server_t *self = req->server;
    const char *header = MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header)
        return NULL;
    if (strncasecmp (header, "Bearer ", 7) != 0)
        return "Authorization must be \"Bearer <token>\"";
    const char *token = header + 7;
    size_t len = strlen (token);
    int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
    //  A token may sit in either of two slots (its hash's and the neighbour): with one slot,
    //  two busy clients whose tokens collide would evict each other on every request.
    uint64_t hash = fnv1a (token, len);
    s_verified_t *set = &self->verified[hash & (S_VERIFIED_SLOTS - 2)];
    s_verified_t *slot = NULL;
    for (int way = 0; way < 2 && !slot; way++)
        if (set[way].len == len && memcmp (set[way].token, token, len) == 0)
            slot = &set[way];
    auth_claims_t claims;
    if (slot) {
        if (now >= slot->claims.exp)
            return "expired";
        claims = slot->claims;
    }
    else {
        const char *reason = "the token is refused";
        if (auth_jwt_verify (self->secret, self->secret_len, token, len, now, &claims, &reason))
            return reason;
        //  The way to fill: an empty one, else the one a bit of the hash picks.
        slot = set[0].len == 0 ? &set[0] : set[1].len == 0 ? &set[1] : &set[(hash >> 16) & 1];
        if (len < sizeof slot->token) {
            memcpy (slot->token, token, len);
            slot->len = len;
            slot->claims = claims;
        }
    }
    req->who.authenticated = true;
    snprintf (req->who.user, sizeof req->who.user, "%s", claims.sub);
    req->who.role = claims.role;
    return NULL;
}

//  An IPv4 or IPv6 address as text ("-" for anything else).
static void s_address_text (const struct sockaddr *sa, char *out, size_t size)
{
    snprintf (out, size, "-");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, out, (socklen_t) size);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, out, (socklen_t) size);
}

//  The client's address as text, for logs and for the limits of anonymous callers: the same
//  text the connection guard counts it by (IPv6 too, which this once left as "-", one shared
//  rate-limit bucket for every IPv6 client).
static void s_client_address (struct MHD_Connection *connection, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    s_address_text (ci ? ci->client_addr : NULL, out, size);
}

//  libmicrohttpd's accept policy: an address at its connection limit is refused.
static enum MHD_Result s_admit (void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    gateway_server_t *self = cls;
    (void) addrlen;
    char text[INET6_ADDRSTRLEN];
    s_address_text (addr, text, sizeof text);
    return connguard_admit (self->guard, text) ? MHD_YES : MHD_NO;
}

//  Connections opening and closing, for their per-address count and request deadline.
static void s_connection (void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    gateway_server_t *self = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        char text[INET6_ADDRSTRLEN];
        s_client_address (connection, text, sizeof text);
        *socket_context =
            fd ? connguard_opened (self->guard, text, fd->connect_fd, clock_mono_ns ()) : NULL;
    }
    else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        connguard_closed (self->guard, *socket_context);
        *socket_context = NULL;
    }
}

//  The guard's record of the request's connection (NULL when it has none).
static connguard_conn_t *s_guarded (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? (connguard_conn_t *) ci->socket_context : NULL;
}

unsigned gateway_login_wait (gateway_request_t *req, const char *username)
{
    gateway_server_t *self = req->server;
    char key[96], addr[INET6_ADDRSTRLEN];
    s_client_address (req->connection, addr, sizeof addr);
    int64_t now = clock_mono_ns ();
    snprintf (key, sizeof key, "a:%s", addr);
    unsigned wait = ratelimit_take (self->logins_address, key, now);
    if (!wait) {
        snprintf (key, sizeof key, "u:%s", username);
        wait = ratelimit_take (self->logins_user, key, now);
    }
    if (wait)
        self->logins_throttled++;
    return wait;
}

//  A CORS preflight: allowed origins learn what they may send.
static enum MHD_Result s_preflight (gateway_request_t *req)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer (0, (char *) "", MHD_RESPMEM_PERSISTENT);
    const char *origin = MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND, "Origin");
    if (origin && s_origin_allowed (req->server->cfg, origin)) {
        MHD_add_response_header (r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header (r, "Access-Control-Allow-Methods",
                                 "GET, POST, PATCH, DELETE, OPTIONS");
        MHD_add_response_header (r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header (r, "Access-Control-Max-Age", "600");
        MHD_add_response_header (r, "Vary", "Origin");
    }
    req->answered = MHD_HTTP_NO_CONTENT;
    enum MHD_Result rc = MHD_queue_response (req->connection, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response (r);
    return rc;
}

//  The route's handler, for a caller whose token (if the route needs one) is good and whose
//  user exists.
static enum MHD_Result s_handle (gateway_request_t *req)
{
    const s_route_t *route = &s_routes[req->route];
    if (route->access == S_ADMIN && req->who.role != PROTO_ROLE_ADMIN)
        return gateway_fail (req, MHD_HTTP_FORBIDDEN, "forbidden", NULL,
                             "%s %s needs the admin role", req->method, route->path);
    return route->handler (req);
}

//  The answer for a caller whose user is not known to exist (now or after a lookup).
static json_t *s_user_error (gateway_request_t *req, known_users_answer_t answer, unsigned *status)
{
    switch (answer) {
        case KNOWN_USERS_UNKNOWN:
            *status = MHD_HTTP_UNAUTHORIZED;
            return gateway_error ("unknown_user", NULL,
                                  "the token is for %s, who is not a registered user: register "
                                  "(POST /api/auth/register) and sign in",
                                  req->who.user);
        case KNOWN_USERS_LIMITED:
            *status = MHD_HTTP_TOO_MANY_REQUESTS;
            req->retry_after = 1;
            return gateway_error ("rate_limited", NULL,
                                  "too many sign-in checks at once; retry in 1 s");
        default:
            *status = MHD_HTTP_SERVICE_UNAVAILABLE;
            return gateway_error ("database_unavailable", NULL,
                                  "cannot check the user now (the user database is "
                                  "unreachable); retry shortly");
    }
}

static enum MHD_Result s_user_refused (gateway_request_t *req, known_users_answer_t answer)
{
    unsigned status;
    json_t *body = s_user_error (req, answer, &status);
    return gateway_respond (req, status, body);
}

//  known_users answered a lookup for a suspended request: on to its handler (s_access runs
//  it when the connection resumes), or the refusal.
static void s_user_checked (void *arg, known_users_answer_t answer)
{
    gateway_request_t *req = arg;
    if (answer == KNOWN_USERS_KNOWN) {
        req->proceed = true;
        MHD_resume_connection (req->connection);
        return;
    }
    unsigned status;
    json_t *body = s_user_error (req, answer, &status);
    gateway_resume (req, status, body);
}

static enum MHD_Result s_dispatch (gateway_request_t *req)
{
    gateway_server_t *self = req->server;
    if (strcmp (req->method, "OPTIONS") == 0)
        return s_preflight (req);
    bool path_known = false;
    const s_route_t *route = NULL;
    for (int i = 0; i < S_ROUTE_COUNT && !route; i++) {
        if (!s_match (s_routes[i].path, req->url, req->param, sizeof req->param))
            continue;
        path_known = true;
        if (strcmp (req->method, s_routes[i].method) == 0) {
            route = &s_routes[i];
            req->route = i;
        }
    }
    if (!route && path_known)
        return gateway_fail (req, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL,
                             "%s is not allowed on %s", req->method, req->url);
    if (!route)
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no route for %s %s",
                             req->method, req->url);
    //  Public routes ignore the Authorization header: an expired token must not hide the
    //  market data. A token that does not verify leaves the caller anonymous, limited by
    //  address, and refused below where a user is needed.
    const char *token_problem = route->access != S_PUBLIC ? s_authenticate (req) : NULL;
    if (route->limited) {
        char key[96];
        if (req->who.authenticated)
            snprintf (key, sizeof key, "u:%s", req->who.user);
        else {
            char addr[INET6_ADDRSTRLEN];
            s_client_address (req->connection, addr, sizeof addr);
            snprintf (key, sizeof key, "a:%s", addr);
        }
        unsigned wait = ratelimit_take (self->rates, key, clock_mono_ns ());
        if (wait) {
            self->rate_limited++;
            req->retry_after = wait;
            return gateway_fail (req, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited", NULL,
                                 "too many requests; retry in %u s", wait);
        }
    }
    if (token_problem)
        return gateway_fail (req, MHD_HTTP_UNAUTHORIZED, "bad_token", NULL, "%s", token_problem);
    if (route->access != S_PUBLIC && !req->who.authenticated)
        return gateway_fail (req, MHD_HTTP_UNAUTHORIZED, "unauthenticated", NULL,
                             "sign in first: Authorization: Bearer <token from /api/auth/login>");
    if (route->access != S_PUBLIC && !known_users_has (self->users, req->who.user)) {
        //  The token is good; its user must also exist (known_users.h). Usually known (the
        //  map above); else the request waits for one query on the worker.
        char addr[INET6_ADDRSTRLEN];
        s_client_address (req->connection, addr, sizeof addr);
        known_users_answer_t known = known_users_check (self->users, req->who.user, addr,
                                                        clock_mono_ns (), s_user_checked, req);
        if (known == KNOWN_USERS_PENDING) {
            gateway_suspend (req);
            return MHD_YES;
        }
        if (known != KNOWN_USERS_KNOWN)
            return s_user_refused (req, known);
    }
    return s_handle (req);
}

//  ---------------------------------------------------------------------------------------
//  libmicrohttpd callbacks

//  Two Content-Length headers that disagree leave where the body ends to whoever reads it:
//  a proxy in front that takes the other one would see a second request smuggled inside
//  this one. libmicrohttpd takes one of them, so the request is refused before any body.
typedef struct {
    const char *first;
    bool conflict;
} s_lengths_t;

static enum MHD_Result s_length_seen (void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void) kind;
    s_lengths_t *lengths = cls;
    if (strcasecmp (key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (!lengths->first)
        lengths->first = value ? value : "";
    else if (strcmp (lengths->first, value ? value : "") != 0)
        lengths->conflict = true;
    return MHD_YES;
}

static bool s_lengths_conflict (struct MHD_Connection *connection)
{
    s_lengths_t lengths = {NULL, false};
    MHD_get_connection_values (connection, MHD_HEADER_KIND, s_length_seen, &lengths);
    return lengths.conflict;
}

static enum MHD_Result s_access (void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    gateway_server_t *self = cls;
    gateway_request_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->server = self;
        req->connection = connection;
        req->method = method;
        req->url = url;
        req->route = -1;
        req->started = clock_mono_ns ();
        *con_cls = req;
        if (s_lengths_conflict (connection))
            return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_request", NULL,
                                 "conflicting Content-Length headers");
        return MHD_YES;
    }
    if (req->suspended) {
        //  Resumed: the matcher or the worker answered (or gave up).
        req->suspended = false;
        if (req->proceed) {
            //  its user was looked up and exists: the request goes on where it stopped
            req->proceed = false;
            if (self->stopping)
                return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping", NULL,
                                     "the gateway is stopping; retry on another");
            return s_handle (req);
        }
        if (req->text_len)
            return gateway_respond_text (req, req->status, req->text, req->text_len);
        if (req->blob)
            return s_queue (req, req->status, req->blob, req->blob_len, req->blob_type);
        json_t *body = req->response;
        req->response = NULL;
        return gateway_respond (req, req->status, body);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->body_too_large || req->body_len + n > (size_t) self->cfg->gateway.max_body_bytes) {
            req->body_too_large = true; //  keep reading, answer 413 at the end
            return MHD_YES;
        }
        if (req->body_len + n + 1 > req->body_cap) {
            size_t cap = (req->body_len + n + 1) * 2;
            char *bigger = realloc (req->body, cap);
            if (!bigger)
                return MHD_NO;
            req->body = bigger;
            req->body_cap = cap;
        }
        memcpy (req->body + req->body_len, upload_data, n);
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return MHD_YES;
    }
    connguard_received (self->guard, s_guarded (connection)); //  headers and body are in
    if (req->body_too_large)
        return gateway_fail (req, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", NULL,
                             "the body exceeds %lld bytes",
                             (long long) self->cfg->gateway.max_body_bytes);
    return s_dispatch (req);
}

static void s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gateway_server_t *self = cls;
    gateway_request_t *req = *con_cls;
    connguard_answered (self->guard, s_guarded (connection), clock_mono_ns ());
    if (!req)
        return;
    if (self->cfg->gateway.access_log) {
        char addr[INET6_ADDRSTRLEN];
        s_client_address (connection, addr, sizeof addr);
        log_info ("access", "method=%s path=%s status=%u us=%lld user=%s addr=%s%s", req->method,
                  req->url, req->answered, (long long) ((clock_mono_ns () - req->started) / 1000),
                  req->who.authenticated ? req->who.user : "-", addr,
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    }
    int64_t us = (clock_mono_ns () - req->started) / 1000;
    int bucket = 0;
    while (bucket < S_LATENCY_BUCKETS && us > 100LL << bucket)
        bucket++;
    self->latency[bucket]++;
    self->latency_sum_us += (uint64_t) us;
    if (req->answered >= 100 && req->answered < 600)
        self->responses[req->answered / 100]++;
    if (req->pooled)
        respool_give (self->pool, req->pooled);
    json_decref (req->response);
    free (req->blob);
    free (req->body);
    free (req);
    *con_cls = NULL;
}

//  ---------------------------------------------------------------------------------------

MIGRATE_DECLARE (gateway);

//  On every new database connection of the worker: the gateway's tables, up to date.
static int s_migrate (pg_t *pg, char *err, size_t errlen)
{
    return migrate_apply (pg, "gateway", gateway_migrations, gateway_migration_count, err, errlen);
}

//  The token key: the configured one, or a random one for this run (tokens then die with the
//  process, which is fine for a local run and wrong for several gateways: hence the warning).
static int s_secret (gateway_server_t *self)
{
    const char *configured = self->cfg->gateway.jwt_secret;
    size_t n = strlen (configured);
    if (n == 0) {
        self->secret_len = 32;
        auth_random (self->secret, self->secret_len);
        log_warn ("gateway", "gateway.jwt_secret is not set: signing tokens with a random key "
                             "for this run only (set it, the same on every gateway)");
        return 0;
    }
    if (n < AUTH_JWT_SECRET_MIN) {
        log_error ("gateway", "gateway.jwt_secret must be at least %d bytes (got %zu)",
                   AUTH_JWT_SECRET_MIN, n);
        return -1;
    }
    memcpy (self->secret, configured, n);
    self->secret_len = n;
    return 0;
}

gateway_server_t *gateway_server_new (const mce_config_t *cfg)
{
    gateway_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->started = clock_mono_ns ();
    if (auth_init () || s_secret (self)) {
        gateway_server_destroy (&self);
        return NULL;
    }
    //  made now, so that the first login for an unknown user is not the one that pays for it
    if (!auth_password_decoy ((auth_cost_t) cfg->gateway.password_cost)) {
        log_error ("gateway", "cannot make the password decoy (out of memory)");
        gateway_server_destroy (&self);
        return NULL;
    }
    //  A client only: the native port's own ZAP handler is this process's authenticator.
    self->curve = curve_new (cfg, "gateway", false);
    if (!self->curve) {
        gateway_server_destroy (&self);
        return NULL;
    }
    self->link = matcher_link_new (
        cfg->matcher.commands, self->curve, (int) cfg->gateway.request_timeout_ms,
        (int) cfg->gateway.max_in_flight, cfg->matcher.fsync != JOURNAL_FSYNC_ALWAYS);
    self->settler = settler_link_new (cfg->settler.commands, self->curve,
                                      (int) cfg->gateway.request_timeout_ms);
    self->model = readmodel_new (cfg);
    self->sub = bus_sub_new_for (cfg, self->curve, "m", "gateway", 0);
    self->worker =
        gateway_worker_new (cfg->postgres.url, S_WORKER_THREADS, S_WORKER_QUEUE, s_migrate);
    self->passwords = gateway_worker_new (cfg->postgres.url, (int) cfg->gateway.password_workers,
                                          (int) cfg->gateway.password_queue, NULL);
    self->rates = ratelimit_new (cfg->gateway.rate_per_s, cfg->gateway.rate_burst, S_RATE_BUCKETS);
    self->guard = connguard_new ((int) cfg->gateway.max_connections_per_address,
                                 cfg->gateway.request_deadline_ms * MCE_NS_PER_MSEC);
    self->logins_user = ratelimit_new_per (cfg->gateway.logins_per_minute, 60,
                                           cfg->gateway.logins_per_minute, S_RATE_BUCKETS);
    self->logins_address =
        ratelimit_new_per (cfg->gateway.logins_per_minute_address, 60,
                           cfg->gateway.logins_per_minute_address, S_RATE_BUCKETS);
    self->cache = respcache_new (S_CACHE_SLOTS);
    self->pool = respool_new (S_POOL_MAX_LEN, S_POOL_MAX_IDLE, s_dress);
    self->verified = calloc (S_VERIFIED_SLOTS, sizeof *self->verified);
    self->waits = seqwait_new (S_WAIT_SEQ_MS);
    self->users = self->worker ? known_users_new (self->worker) : NULL;
    if (self->link && self->worker && self->model && self->waits && self->users && self->rates)
        self->native =
            native_port_new (cfg, self->link, self->worker, self->users, self->model, self->waits,
                             self->rates, self->curve, self->secret, self->secret_len);
    if (!self->link || !self->settler || !self->model || !self->sub || !self->worker ||
        !self->passwords || !self->logins_user || !self->logins_address || !self->guard ||
        !self->rates || !self->cache || !self->pool || !self->users || !self->native) {
        gateway_server_destroy (&self);
        return NULL;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) cfg->gateway.http_port)};
    if (inet_pton (AF_INET, cfg->gateway.http_address, &addr.sin_addr) != 1) {
        log_error ("gateway", "gateway.http_address: \"%s\" is not an IPv4 address",
                   cfg->gateway.http_address);
        gateway_server_destroy (&self);
        return NULL;
    }
    //  External mode: no thread of libmicrohttpd's own; this loop polls its epoll descriptor.
    //  The memory limit per connection bounds the request line and headers (431 beyond); it
    //  is zeroed for every request, so it is kept to what a request with a token needs.
    self->daemon = MHD_start_daemon (
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO, 0, s_admit,
        self, s_access, self, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, s_completed,
        self, MHD_OPTION_NOTIFY_CONNECTION, s_connection, self, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned) 30, MHD_OPTION_CONNECTION_LIMIT, (unsigned) cfg->gateway.max_connections,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t) 16 * 1024, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        self->daemon ? MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        log_error ("gateway", "cannot listen on http://%s:%lld", cfg->gateway.http_address,
                   (long long) cfg->gateway.http_port);
        gateway_server_destroy (&self);
        return NULL;
    }
    self->epoll_fd = info->epoll_fd;
    log_info ("gateway", "HTTP API on http://%s:%lld, matcher at %s", cfg->gateway.http_address,
              (long long) cfg->gateway.http_port, cfg->matcher.commands);
    return self;
}

void gateway_server_destroy (gateway_server_t **self_p)
{
    assert (self_p);
    gateway_server_t *self = *self_p;
    if (!self)
        return;
    //  Answer every suspended request first (the link gives up on what is in flight, the
    //  worker finishes its jobs, writes waiting for the bus go out), so the daemon can stop.
    //  A request whose user lookup comes back now finds no matcher link: stopping says so.
    self->stopping = true;
    matcher_link_destroy (&self->link);
    settler_link_destroy (&self->settler);
    curve_destroy (&self->curve);
    gateway_worker_destroy (&self->worker);
    gateway_worker_destroy (&self->passwords);
    ratelimit_destroy (&self->logins_user);
    ratelimit_destroy (&self->logins_address);
    known_users_destroy (&self->users); //  after the worker: its lookups have come back
    seqwait_destroy (&self->waits);     //  answers every write still waiting (HTTP and native)
    native_port_destroy (&self->native);
    if (self->daemon) {
        MHD_run (self->daemon);
        MHD_stop_daemon (self->daemon);
    }
    connguard_destroy (&self->guard); //  after the daemon: closing connections tells it
    bus_sub_destroy (&self->sub);
    readmodel_destroy (&self->model);
    ratelimit_destroy (&self->rates);
    respcache_destroy (&self->cache);
    respool_destroy (&self->pool); //  after the daemon: stopping it completes every request
    free (self->verified);
    free (self);
    *self_p = NULL;
}

//  Applies every bus event waiting to the read model.
static int s_follow_bus (gateway_server_t *self)
{
    bus_event_t ev;
    int rc;
    while ((rc = bus_sub_recv (self->sub, &ev, 0)) == 1)
        readmodel_apply (self->model, &ev.msg);
    return rc < 0 ? -1 : 0;
}

//  What the loop's epoll set watches, by its data.u32.
enum {
    S_FD_HTTP,
    S_FD_LINK,
    S_FD_WORKER,
    S_FD_REPLAY,
    S_FD_BUS,
    S_FD_NATIVE,
    S_FD_NATIVE_CURVE, //  -1 (not watched) when that port is not open
    S_FD_ZAP,
    S_FD_SETTLER, //  -1 (not watched) when no settler is configured
    S_FD_PASSWORDS,
    S_FDS
};

//  The loop's epoll set: libmicrohttpd's own epoll descriptor and the ZMQ_FD of every socket.
//  zmq_poll would ask each socket for its events before and after every wait, a system call
//  each (a third of the gateway's time went there); here a socket is only looked at when its
//  descriptor says so, or when a send on it may have consumed that signal (the modules say
//  when: matcher_link_sent, native_port_pending, bus_sub_replaying).
static int s_loop_fd (gateway_server_t *self)
{
    int fds[S_FDS];
    fds[S_FD_HTTP] = self->epoll_fd;
    fds[S_FD_LINK] = matcher_link_fd (self->link);
    size_t size = sizeof fds[S_FD_WORKER];
    if (zmq_getsockopt (gateway_worker_socket (self->worker), ZMQ_FD, &fds[S_FD_WORKER], &size))
        return -1;
    size = sizeof fds[S_FD_PASSWORDS];
    if (zmq_getsockopt (gateway_worker_socket (self->passwords), ZMQ_FD, &fds[S_FD_PASSWORDS],
                        &size))
        return -1;
    bus_sub_fds (self->sub, fds + S_FD_REPLAY);
    native_port_fds (self->native, fds + S_FD_NATIVE);
    fds[S_FD_SETTLER] = settler_link_fd (self->settler);
    int loop_fd = epoll_create1 (EPOLL_CLOEXEC);
    for (int i = 0; loop_fd >= 0 && i < S_FDS; i++) {
        if (fds[i] < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) i};
        if (epoll_ctl (loop_fd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            log_error ("gateway", "epoll_ctl: %s", strerror (errno));
            close (loop_fd);
            return -1;
        }
    }
    return loop_fd;
}

int gateway_server_run (gateway_server_t *self)
{
    int loop_fd = s_loop_fd (self);
    if (loop_fd < 0)
        return -1;
    int rc = 0;
    int64_t swept = clock_mono_ns ();
    while (!zsys_interrupted) {
        long wait_ms = S_POLL_MAX_MS;
        MHD_UNSIGNED_LONG_LONG mhd_ms;
        if (MHD_get_timeout (self->daemon, &mhd_ms) == MHD_YES && (long) mhd_ms < wait_ms)
            wait_ms = (long) mhd_ms;
        long link_ms = matcher_link_wait_ms (self->link);
        if (link_ms >= 0 && link_ms < wait_ms)
            wait_ms = link_ms;
        long settler_ms = settler_link_wait_ms (self->settler);
        if (settler_ms >= 0 && settler_ms < wait_ms)
            wait_ms = settler_ms;
        bool settler_sent = settler_link_sent (self->settler);
        bool link_sent = matcher_link_sent (self->link);
        bool native_pending = native_port_pending (self->native);
        bool replaying = bus_sub_replaying (self->sub);
        if (link_sent || native_pending || settler_sent)
            wait_ms = 0;
        struct epoll_event evs[S_FDS];
        int n = epoll_wait (loop_fd, evs, S_FDS, (int) wait_ms);
        if (n < 0 && errno != EINTR) {
            log_error ("gateway", "epoll_wait: %s", strerror (errno));
            rc = -1;
            break;
        }
        //  A turn that waited and timed out looks at everything (timeouts, resends), and so
        //  does one turn in each S_POLL_MAX_MS under steady load, for any signal missed. A turn
        //  that did not wait (a send may have eaten a signal) looks only at what it must:
        //  sweeping every socket there costs two system calls per socket in libzmq.
        bool ready[S_FDS] = {false};
        int64_t now = clock_mono_ns ();
        bool all = (n == 0 && wait_ms > 0) || n < 0 ||
                   now - swept >= (int64_t) S_POLL_MAX_MS * MCE_NS_PER_MSEC;
        if (all)
            swept = now;
        for (int i = 0; i < n; i++)
            ready[evs[i].data.u32] = true;
        if ((all || ready[S_FD_REPLAY] || ready[S_FD_BUS] || replaying) && s_follow_bus (self)) {
            rc = -1;
            break;
        }
        if (all || ready[S_FD_LINK] || link_sent || link_ms == 0)
            matcher_link_process (self->link);
        if (all || ready[S_FD_WORKER])
            gateway_worker_process (self->worker);
        if (all || ready[S_FD_PASSWORDS])
            gateway_worker_process (self->passwords);
        if (all || ready[S_FD_SETTLER] || settler_sent || settler_ms == 0)
            settler_link_process (self->settler);
        if (all || ready[S_FD_NATIVE] || ready[S_FD_NATIVE_CURVE] || ready[S_FD_ZAP] ||
            native_pending)
            native_port_process (self->native, all || ready[S_FD_ZAP]);
        seqwait_release (self->waits, readmodel_seq (self->model));
        //  connections past their request deadline are shut; MHD_run then closes them (the
        //  loop wakes every S_POLL_MAX_MS at least, so a deadline is kept within that)
        connguard_sweep (self->guard, now);
        MHD_run (self->daemon);
        matcher_link_flush (self->link); //  the commands of this turn's handlers, together
    }
    close (loop_fd);
    return rc;
}
