/*  gateway_server — the HTTP/JSON API on libmicrohttpd (docs/api.md), one thread.

    One loop owns everything: libmicrohttpd runs in external mode (its epoll descriptor is
    polled with the matcher link's socket, the bus subscriber's sockets and the native port),
    so a handler, the matcher's reply that resumes it, and the read model it reads never
    race, and nothing needs a lock. A handler that needs the matcher suspends its connection
    and returns; the reply resumes it. Slow work (password hashing, Postgres) goes to the
    worker thread (gateway_worker) and comes back the same way. Operators scale out by
    running more gateways.

    Every response goes through gateway_respond: JSON, the security headers, CORS when the
    origin is allowed, and the access log line when the request completes.
*/
#ifndef MCE_GATEWAY_SERVER_H
#define MCE_GATEWAY_SERVER_H

#include "config.h"
#include "gateway_worker.h"
#include "matcher_link.h"
#include "readmodel.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

//  A timestamptz column (or expression) as the API writes times, in SQL: RFC 3339 in UTC with
//  microseconds. NULL stays NULL.
#define GATEWAY_SQL_TIME(column)                                                                   \
    "to_char (" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

typedef struct _gateway_server_t gateway_server_t;

//  Who sent a request, from its bearer token.
typedef struct {
    bool authenticated;
    char user[65];
    int role; //  proto_role_t
} gateway_identity_t;

//  One HTTP request, from its first byte to its response.
typedef struct {
    gateway_server_t *server;
    struct MHD_Connection *connection;
    const char *method; //  borrowed from libmicrohttpd for the request's life
    const char *url;
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool suspended;   //  waiting for the matcher or the worker
    unsigned status;  //  response to send once resumed
    json_t *response; //  its body
    char text[384];   //  or, when text_len > 0, its body already rendered
    size_t text_len;
    gateway_identity_t who;
    char param[32]; //  the {id} of the route, if it has one
    int64_t started;
    unsigned answered; //  status sent, for the access log
    int route;         //  index in the route table, -1 when none matched
    unsigned retry_after;
    struct _respool_entry_t *pooled; //  the pooled response queued, given back on completion
    bool proceed;          //  resumed once its user was found to exist: its handler runs then
    int64_t epoch_seconds; //  an order's market's: the answer shows its delivery period
    char *blob;            //  or a resumed answer that is not JSON (a CSV statement), owned
    size_t blob_len;
    const char *blob_type; //  its Content-Type
} gateway_request_t;

gateway_server_t *gateway_server_new (const mce_config_t *cfg);
void gateway_server_destroy (gateway_server_t **self_p);
//  Runs until interrupted. 0, or -1 on a fatal error.
int gateway_server_run (gateway_server_t *self);

const mce_config_t *gateway_server_config (gateway_server_t *self);
//  The gateway's CurveZMQ identity (its key serves the encrypted order port too).
const curve_t *gateway_server_curve (gateway_server_t *self);
matcher_link_t *gateway_server_link (gateway_server_t *self);
struct _settler_link_t *gateway_server_settler (gateway_server_t *self);
readmodel_t *gateway_server_readmodel (gateway_server_t *self);
gateway_worker_t *gateway_server_worker (gateway_server_t *self);
//  The workers that hash passwords (sign-up, login, wallet change): threads and a bounded
//  queue of their own, so that a flood of logins delays nothing else.
gateway_worker_t *gateway_server_passwords (gateway_server_t *self);
//  Counts a request refused because the password queue was full (for /metrics).
void gateway_server_passwords_busy (gateway_server_t *self);
//  Takes a login attempt for username from the request's address: 0 when it may go on, else
//  the seconds to wait (a 429's Retry-After). Checked before any password is hashed.
unsigned gateway_login_wait (gateway_request_t *req, const char *username);
//  The HS256 key tokens are signed and checked with.
const uint8_t *gateway_server_secret (gateway_server_t *self, size_t *len);
struct _respcache_t *gateway_server_cache (gateway_server_t *self);
//  The users this gateway knows exist (known_users.h): sign-up and sign-in add to it.
struct _known_users_t *gateway_server_users (gateway_server_t *self);

//  The error body every failure uses: {"error": {"code", "message", "field"}} (field null
//  when no one field is to blame). Returns a new reference.
json_t *gateway_error (const char *code, const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
//  Queues status + JSON body (stolen) with the API's headers.
enum MHD_Result gateway_respond (gateway_request_t *req, unsigned status, json_t *body);
//  Queues status + an already rendered JSON text (copied).
enum MHD_Result gateway_respond_text (gateway_request_t *req, unsigned status, const char *text,
                                      size_t len);
//  gateway_respond with a gateway_error body.
enum MHD_Result gateway_fail (gateway_request_t *req, unsigned status, const char *code,
                              const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));
//  The HTTP status for a matcher's reject reason (404 unknown order, 409 paused, ...).
unsigned gateway_reject_status (proto_reject_reason_t reason);
//  The request's body as a JSON object with only the keys in allowed (NULL-terminated), or
//  NULL after answering 400 (bad_json, unknown_field).
json_t *gateway_body (gateway_request_t *req, const char *const *allowed);
//  A query-string argument, or NULL.
const char *gateway_query (gateway_request_t *req, const char *key);
//  An integer query argument within [min, max], def when absent. 0, or -1 after answering 400.
int gateway_query_int (gateway_request_t *req, const char *key, long long def, long long min,
                       long long max, long long *out);
//  Suspends the request until gateway_resume (from the matcher link or the worker).
void gateway_suspend (gateway_request_t *req);
//  Hands job (the first member of a block from malloc, which it takes) to the worker and
//  suspends req until its done resumes it; when the worker's queue is full, frees the block and
//  answers 503 busy.
enum MHD_Result gateway_submit (gateway_request_t *req, gateway_job_t *job);
void gateway_resume (gateway_request_t *req, unsigned status, json_t *body);
//  Resumes req with blob (len bytes of Content-Type type; the request takes it, malloc'd).
void gateway_resume_blob (gateway_request_t *req, unsigned status, const char *type, char *blob,
                          size_t len);
//  As gateway_resume, once the read model has applied the bus event `seq` (a write is answered
//  when the writer can read it back), or after a second if the bus lags.
void gateway_resume_after (gateway_request_t *req, uint64_t seq, unsigned status, json_t *body);
//  The same with a body already rendered as JSON text (at most sizeof req->text - 1 bytes; the
//  hot answers — an order acknowledged — are written with snprintf rather than built).
void gateway_resume_after_text (gateway_request_t *req, uint64_t seq, unsigned status,
                                const char *text, size_t len);

//  routes_trading.c (signed-in users)
enum MHD_Result routes_trading_post_order (gateway_request_t *req);
enum MHD_Result routes_trading_get_order (gateway_request_t *req);
enum MHD_Result routes_trading_order_fills (gateway_request_t *req);
enum MHD_Result routes_statement (gateway_request_t *req);
enum MHD_Result routes_trading_cancel_order (gateway_request_t *req);
enum MHD_Result routes_trading_amend_order (gateway_request_t *req);
enum MHD_Result routes_trading_list_orders (gateway_request_t *req);
//  routes_market.c (public)
enum MHD_Result routes_market_depth (gateway_request_t *req);
enum MHD_Result routes_market_depth_chart (gateway_request_t *req);
enum MHD_Result routes_market_stats (gateway_request_t *req);
enum MHD_Result routes_market_clearing_price (gateway_request_t *req);
enum MHD_Result routes_market_indicative (gateway_request_t *req);
enum MHD_Result routes_market_trades (gateway_request_t *req);
enum MHD_Result routes_market_epoch_status (gateway_request_t *req);
enum MHD_Result routes_market_epochs (gateway_request_t *req);
enum MHD_Result routes_market_my_trades (gateway_request_t *req);

enum MHD_Result routes_account_balances (gateway_request_t *req);
enum MHD_Result routes_account_deposit (gateway_request_t *req);
enum MHD_Result routes_account_withdraw (gateway_request_t *req);
enum MHD_Result routes_account_deposits (gateway_request_t *req);
enum MHD_Result routes_account_withdrawals (gateway_request_t *req);
//  routes_auth.c
enum MHD_Result routes_auth_challenge (gateway_request_t *req);
enum MHD_Result routes_auth_register (gateway_request_t *req);
enum MHD_Result routes_auth_wallet (gateway_request_t *req);
enum MHD_Result routes_auth_login (gateway_request_t *req);
enum MHD_Result routes_auth_api_key (gateway_request_t *req);
enum MHD_Result routes_auth_native_key (gateway_request_t *req);
enum MHD_Result routes_auth_api_keys (gateway_request_t *req);
enum MHD_Result routes_auth_api_key_revoke (gateway_request_t *req);
//  routes_admin.c (admins)
enum MHD_Result routes_admin_control (gateway_request_t *req);
enum MHD_Result routes_admin_settlements (gateway_request_t *req);
enum MHD_Result routes_admin_settlement_retry (gateway_request_t *req);
enum MHD_Result routes_admin_reconciliation (gateway_request_t *req);
enum MHD_Result routes_admin_health (gateway_request_t *req);
enum MHD_Result routes_admin_analytics (gateway_request_t *req);
//  routes_web.c (public): the dashboard's files (/, /web/app.js, /web/style.css, by req->url)
//  and /api/dashboard/config
enum MHD_Result routes_web_asset (gateway_request_t *req);
enum MHD_Result routes_web_config (gateway_request_t *req);

#endif
