/*  gateway_server — see gateway_server.h. Routing is a small table: the API has few enough
    routes that a linear match reads better than a router library.
*/
#include "gateway_server.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <stdarg.h>
#include <string.h>

struct _gateway_server_t {
    const mce_config_t *cfg;
    struct MHD_Daemon *daemon;
    matcher_link_t *link;
    int64_t started;
};

const mce_config_t *gateway_server_config (gateway_server_t *self)
{
    return self->cfg;
}

matcher_link_t *gateway_server_link (gateway_server_t *self)
{
    return self->link;
}

json_t *gateway_error (const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (message, sizeof message, fmt, ap);
    va_end (ap);
    return json_pack ("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}

enum MHD_Result gateway_respond (struct MHD_Connection *connection, unsigned status, json_t *body)
{
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    size_t len = text ? strlen (text) : 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer (len, text ? text : (char *) "", MHD_RESPMEM_MUST_FREE);
    if (!text)
        r = MHD_create_response_from_buffer (0, (char *) "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (r, "Content-Type", "application/json");
    MHD_add_response_header (r, "Cache-Control", "no-store");
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (r, "X-Frame-Options", "DENY");
    MHD_add_response_header (r, "Referrer-Policy", "no-referrer");
    enum MHD_Result rc = MHD_queue_response (connection, status, r);
    MHD_destroy_response (r);
    return rc;
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

static enum MHD_Result s_health (gateway_request_t *req)
{
    gateway_server_t *self = req->server;
    json_t *body = json_pack (
        "{s:s,s:s,s:I,s:{s:s,s:i}}", "status", "ok", "version", MCE_VERSION, "uptime_s",
        (json_int_t) ((clock_mono_ns () - self->started) / MCE_NS_PER_SEC), "matcher", "endpoint",
        self->cfg->matcher.commands, "in_flight", matcher_link_in_flight (self->link));
    return gateway_respond (req->connection, MHD_HTTP_OK, body);
}

typedef struct {
    const char *method;
    const char *path;
    enum MHD_Result (*handler) (gateway_request_t *req);
} s_route_t;

static const s_route_t s_routes[] = {
    {"GET", "/api/health", s_health},
    {"POST", "/api/trading/orders", routes_trading_post_order},
};

static enum MHD_Result s_dispatch (gateway_request_t *req, const char *method, const char *url)
{
    bool path_known = false;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
        if (strcmp (url, s_routes[i].path) != 0)
            continue;
        path_known = true;
        if (strcmp (method, s_routes[i].method) == 0)
            return s_routes[i].handler (req);
    }
    if (path_known)
        return gateway_respond (
            req->connection, MHD_HTTP_METHOD_NOT_ALLOWED,
            gateway_error ("method_not_allowed", "%s is not allowed on %s", method, url));
    return gateway_respond (req->connection, MHD_HTTP_NOT_FOUND,
                            gateway_error ("not_found", "no route for %s %s", method, url));
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
        *con_cls = req;
        return MHD_YES;
    }
    if (req->suspended) {
        //  Resumed: the matcher answered (or the link gave up).
        req->suspended = false;
        json_t *body = req->response;
        req->response = NULL;
        return gateway_respond (connection, req->status, body);
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
    if (req->body_too_large)
        return gateway_respond (connection, MHD_HTTP_CONTENT_TOO_LARGE,
                                gateway_error ("body_too_large", "the body exceeds %lld bytes",
                                               (long long) self->cfg->gateway.max_body_bytes));
    return s_dispatch (req, method, url);
}

static void s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gateway_request_t *req = *con_cls;
    if (!req)
        return;
    json_decref (req->response);
    free (req->body);
    free (req);
    *con_cls = NULL;
}

gateway_server_t *gateway_server_new (const mce_config_t *cfg)
{
    gateway_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->started = clock_mono_ns ();
    self->link = matcher_link_new (cfg->matcher.commands, (int) cfg->gateway.request_timeout_ms,
                                   (int) cfg->gateway.max_in_flight);
    if (!self->link) {
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
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                                     0, NULL, NULL, s_access, self, MHD_OPTION_SOCK_ADDR, &addr,
                                     MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) 4096, MHD_OPTION_END);
    if (!self->daemon) {
        log_error ("gateway", "cannot listen on http://%s:%lld", cfg->gateway.http_address,
                   (long long) cfg->gateway.http_port);
        gateway_server_destroy (&self);
        return NULL;
    }
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
    //  The link first: it answers every suspended request, so the daemon can then stop.
    matcher_link_destroy (&self->link);
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}

int gateway_server_run (gateway_server_t *self)
{
    zpoller_t *idle = zpoller_new (NULL);
    while (!zsys_interrupted)
        zpoller_wait (idle, 500); //  libmicrohttpd and the link run in their own threads
    zpoller_destroy (&idle);
    return 0;
}
