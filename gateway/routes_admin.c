/*  routes_admin — what administrators see and do (the route table demands the admin role).

    Control actions are matcher commands (market_control) carrying the admin's name, so each
    one is journaled and published on the bus: that is the audit trail. Health and analytics
    are read here, from the gateway's own state and its read model.
*/
#include "apijson.h"
#include "clock.h"
#include "decimal.h"
#include "gateway_server.h"
#include "gateway_worker.h"
#include "reconcile.h"
#include "settler_link.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void s_controlled (void *arg, const proto_msg_t *reply)
{
    gateway_request_t *req = arg;
    if (!reply)
        gateway_resume (req, MHD_HTTP_GATEWAY_TIMEOUT,
                        gateway_error ("matcher_unavailable", NULL,
                                       "the matcher did not answer in time; the action may "
                                       "still take effect"));
    else if (reply->kind == PROTO_reject)
        gateway_resume_after (req, reply->reject.last_seq,
                              gateway_reject_status (reply->reject.reason),
                              gateway_error (proto_reject_reason_name (reply->reject.reason), NULL,
                                             "%s", reply->reject.message));
    else
        gateway_resume_after (req, reply->ack.last_seq, MHD_HTTP_OK,
                              json_pack ("{s:s,s:I,s:I}", "status", "done", "seq",
                                         (json_int_t) reply->ack.seq, "epoch",
                                         (json_int_t) reply->ack.epoch));
}

//  POST /api/admin/market/control {market, action}
enum MHD_Result routes_admin_control (gateway_request_t *req)
{
    static const char *const keys[] = {"market", "action", NULL};
    json_t *root = gateway_body (req, keys);
    if (!root)
        return MHD_YES;
    const mce_config_t *cfg = gateway_server_config (req->server);
    json_t *m = json_object_get (root, "market"), *a = json_object_get (root, "action");
    const char *market = json_is_string (m) ? json_string_value (m) : "";
    proto_msg_t cmd = {.kind = PROTO_market_control};
    proto_market_control_t *c = &cmd.market_control;
    enum MHD_Result rc = MHD_YES;
    int action = -1;
    for (int i = 1; json_is_string (a) && proto_control_action_name (i); i++)
        if (strcmp (json_string_value (a), proto_control_action_name (i)) == 0)
            action = i;
    if (!m || !a)
        rc = gateway_fail (req, MHD_HTTP_BAD_REQUEST, "missing_field", m ? "action" : "market",
                           "market and action are required");
    else if (!json_is_string (m))
        rc = gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", "market",
                           "market must be a string");
    else if (!config_market (cfg, market))
        rc = gateway_fail (req, MHD_HTTP_BAD_REQUEST, "unknown_market", "market",
                           "there is no market \"%s\"", market);
    else if (action < 0)
        rc = gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_field", "action",
                           "action must be one of pause_trading, resume_trading, "
                           "trigger_matching, clear_epoch, snapshot");
    else {
        snprintf (c->market, sizeof c->market, "%s", market);
        snprintf (c->user, sizeof c->user, "%s", req->who.user);
        c->role = PROTO_ROLE_ADMIN;
        c->action = action;
        c->ts = clock_wall_ns ();
        if (matcher_link_send (gateway_server_link (req->server), &cmd, s_controlled, req))
            rc = gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded", NULL,
                               "too many commands in flight; retry shortly");
        else
            gateway_suspend (req);
    }
    json_decref (root);
    return rc;
}

//  GET /api/admin/market/health: the gateway's view of the system.
enum MHD_Result routes_admin_health (gateway_request_t *req)
{
    gateway_server_t *server = req->server;
    const mce_config_t *cfg = gateway_server_config (server);
    matcher_link_t *link = gateway_server_link (server);
    readmodel_t *model = gateway_server_readmodel (server);
    json_t *markets = json_array ();
    for (int i = 0; i < cfg->market_count; i++)
        json_array_append_new (
            markets, readmodel_epoch_status (model, cfg->markets[i].id, clock_wall_ns ()));
    return gateway_respond (
        req, MHD_HTTP_OK,
        json_pack ("{s:{s:s,s:i,s:I},s:{s:I},s:{s:b,s:i},s:o}", "matcher", "endpoint",
                   cfg->matcher.commands, "in_flight", matcher_link_in_flight (link), "timeouts",
                   (json_int_t) matcher_link_timeouts (link), "bus", "seq",
                   (json_int_t) readmodel_seq (model), "database", "up",
                   gateway_worker_db_up (gateway_server_worker (server)), "jobs",
                   gateway_worker_pending (gateway_server_worker (server)), "markets", markets));
}

//  The window's trades by energy source (the sell order's label; the grid's own, "grid";
//  none, "unlabelled") and its ten busiest traders, from Postgres on the worker; the answer
//  without them when the database does not answer.
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    char market[33], timeframe[8], since[32];
    int64_t now, since_ns;         //  the window
    json_t *by_source, *top_users; //  the worker's; NULL when Postgres did not answer
} s_analytics_t;

static void s_analytics_run (gateway_job_t *base, pg_t *pg)
{
    s_analytics_t *job = (s_analytics_t *) base;
    if (!pg)
        return;
    const char *params[] = {job->market, job->since};
    pg_result_t *sources = pg_exec (
        pg,
        "SELECT CASE WHEN t.grid = 'sell' THEN 'grid' ELSE coalesce (o.source, 'unlabelled') "
        "END, sum (t.qty), count (*), sum (t.value) FROM trades t LEFT JOIN orders o ON "
        "o.order_id = t.sell_order_id WHERE t.market = $1 AND t.at >= $2::timestamptz "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50",
        2, params);
    pg_result_t *users =
        sources ? pg_exec (pg,
                           "SELECT u, sum (b), sum (s), count (*) FROM (SELECT buyer u, qty b, 0 s "
                           "FROM trades WHERE market = $1 AND at >= $2::timestamptz UNION ALL "
                           "SELECT seller, 0, qty FROM trades WHERE market = $1 AND at >= "
                           "$2::timestamptz) x GROUP BY u ORDER BY sum (b) + sum (s) DESC, u "
                           "LIMIT 10",
                           2, params)
                : NULL;
    if (users) {
        job->by_source = json_array ();
        for (int r = 0; r < pg_rows (sources); r++)
            json_array_append_new (job->by_source,
                                   json_pack ("{s:s,s:o,s:I,s:o}", "energy_source",
                                              pg_value (sources, r, 0), "volume",
                                              apijson_kwh (pg_int (sources, r, 1)), "trades",
                                              (json_int_t) pg_int (sources, r, 2), "value",
                                              apijson_money (pg_int (sources, r, 3))));
        job->top_users = json_array ();
        for (int r = 0; r < pg_rows (users); r++)
            json_array_append_new (job->top_users,
                                   json_pack ("{s:s,s:o,s:o,s:I}", "user", pg_value (users, r, 0),
                                              "bought", apijson_kwh (pg_int (users, r, 1)), "sold",
                                              apijson_kwh (pg_int (users, r, 2)), "trades",
                                              (json_int_t) pg_int (users, r, 3)));
    }
    pg_result_free (&sources);
    pg_result_free (&users);
}

//  The read model's part of the analytics: the epochs that ended in the window and the one
//  active now. On the gateway's thread, which owns the read model.
static json_t *s_epoch_totals (const s_analytics_t *job)
{
    //  Every epoch the read model holds, a page at a time; those that ended inside the window.
    readmodel_t *model = gateway_server_readmodel (job->req->server);
    const char *market = job->market;
    int64_t now = job->now, since = job->since_ns;
    int64_t volume = 0, trades = 0, count = 0, low = 0, high = 0, value = 0;
    for (int offset = 0;; offset += 1000) {
        json_t *page = readmodel_epochs (model, market, 1000, offset);
        json_t *list = json_object_get (page, "epochs");
        size_t i;
        json_t *e;
        json_array_foreach (list, i, e)
        {
            const char *end = json_string_value (json_object_get (e, "end"));
            const char *state = json_string_value (json_object_get (e, "state"));
            const char *vol = json_string_value (json_object_get (e, "volume"));
            const char *px = json_string_value (json_object_get (e, "clearing_price"));
            const char *val = json_string_value (json_object_get (e, "value"));
            int64_t end_ns, v, p;
            bool active = state && strcmp (state, "active") == 0;
            if (!end || !state || clock_parse_rfc3339 (end, strlen (end), &end_ns) ||
                (!active && (end_ns < since || end_ns > now ||
                             (strcmp (state, "cleared") && strcmp (state, "settled")))))
                continue;
            count += !active;
            if (vol && decimal_parse (vol, strlen (vol), DECIMAL_KWH_SCALE, &v) == DECIMAL_OK)
                volume += v;
            if (val && decimal_parse (val, strlen (val), DECIMAL_PRICE_SCALE, &v) == DECIMAL_OK)
                value += v;
            trades += json_integer_value (json_object_get (e, "trades"));
            if (px && decimal_parse (px, strlen (px), DECIMAL_PRICE_SCALE, &p) == DECIMAL_OK && p) {
                low = low && low < p ? low : p;
                high = high > p ? high : p;
            }
        }
        size_t got = json_array_size (list);
        json_decref (page);
        if (got < 1000)
            break;
    }
    char v[DECIMAL_FORMAT_MAX], lo[DECIMAL_FORMAT_MAX], hi[DECIMAL_FORMAT_MAX];
    char val[DECIMAL_FORMAT_MAX], avg[DECIMAL_FORMAT_MAX];
    decimal_format (volume, DECIMAL_KWH_SCALE, v, sizeof v);
    decimal_format (low, DECIMAL_PRICE_SCALE, lo, sizeof lo);
    decimal_format (high, DECIMAL_PRICE_SCALE, hi, sizeof hi);
    decimal_format (value, DECIMAL_PRICE_SCALE, val, sizeof val);
    //  value is µ over Wh / 1000: the average price in µ/kWh, rounded down
    decimal_format (volume ? (int64_t) ((__int128) value * 1000 / volume) : 0, DECIMAL_PRICE_SCALE,
                    avg, sizeof avg);
    return json_pack ("{s:s,s:s,s:I,s:I,s:s,s:s,s:o,s:o,s:o}", "market", market, "timeframe",
                      job->timeframe, "epochs", (json_int_t) count, "trades", (json_int_t) trades,
                      "volume", v, "value", val, "average_price",
                      volume ? json_string (avg) : json_null (), "lowest_clearing_price",
                      low ? json_string (lo) : json_null (), "highest_clearing_price",
                      high ? json_string (hi) : json_null ());
}

static void s_analytics_done (gateway_job_t *base)
{
    s_analytics_t *job = (s_analytics_t *) base;
    json_t *body = s_epoch_totals (job);
    json_object_set_new (body, "by_source", job->by_source ? job->by_source : json_null ());
    json_object_set_new (body, "top_traders", job->top_users ? job->top_users : json_null ());
    gateway_resume (job->req, MHD_HTTP_OK, body);
    free (job);
}

//  GET /api/admin/market/analytics?market&timeframe=1h|24h|7d|30d: the epochs that ended in
//  the window and the one active now (its trades so far), summed from the read model's epoch
//  history (epochs counts the ended ones); then the window's trades by energy source and its
//  busiest traders, from Postgres (s_analytics_run).
enum MHD_Result routes_admin_analytics (gateway_request_t *req)
{
    static const struct {
        const char *name;
        int64_t seconds;
    } frames[] = {{"1h", 3600}, {"24h", 86400}, {"7d", 7 * 86400}, {"30d", 30 * 86400}};
    const char *timeframe = gateway_query (req, "timeframe");
    int64_t window = 0;
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++)
        if (!timeframe ? i == 1 : strcmp (timeframe, frames[i].name) == 0)
            window = frames[i].seconds;
    if (!window)
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_query", "timeframe",
                             "timeframe must be 1h, 24h, 7d or 30d");
    const mce_config_t *cfg = gateway_server_config (req->server);
    const char *market = gateway_query (req, "market");
    if (!market)
        market = cfg->markets[0].id;
    else if (!config_market (cfg, market))
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "unknown_market", "market",
                             "there is no market \"%s\"", market);
    s_analytics_t *job = calloc (1, sizeof *job);
    if (!job)
        return MHD_NO;
    job->job.run = s_analytics_run;
    job->job.done = s_analytics_done;
    job->req = req;
    snprintf (job->market, sizeof job->market, "%s", market);
    snprintf (job->timeframe, sizeof job->timeframe, "%s", timeframe ? timeframe : "24h");
    job->now = clock_wall_ns ();
    job->since_ns = job->now - window * MCE_NS_PER_SEC;
    clock_format_rfc3339 (job->since_ns, job->since, sizeof job->since);
    return gateway_submit (req, &job->job);
}

//  ---------------------------------------------------------------------------------------
//  Settlements: the settler's admin port (settler_link) answers; the gateway turns the
//  settlements into JSON. Confirmed settlements are history, in Postgres: the settler lists
//  what is still pending, processing or failed.

static json_t *s_money (int64_t v, int scale)
{
    char text[DECIMAL_FORMAT_MAX];
    decimal_format (v, scale, text, sizeof text);
    return json_string (text);
}

static json_t *s_opt_string (const char *s)
{
    return s && s[0] ? json_string (s) : json_null ();
}

static json_t *s_settlement_json (const proto_settlement_t *s)
{
    char sid[24], tid[24];
    snprintf (sid, sizeof sid, "%llu", (unsigned long long) s->settlement_id);
    snprintf (tid, sizeof tid, "%llu", (unsigned long long) s->trade_id);
    json_t *o = json_pack (
        "{s:s,s:s,s:s,s:I,s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "settlement_id", sid,
        "trade_id", tid, "market", s->market, "epoch", (json_int_t) s->epoch, "state",
        proto_settle_state_name (s->state), "attempts", (json_int_t) s->attempts, "value",
        s_money (s->value, DECIMAL_PRICE_SCALE), "fee", s_money (s->fee, DECIMAL_PRICE_SCALE),
        "energy_amount", s_money (s->qty, DECIMAL_KWH_SCALE), "price",
        s_money (s->price, DECIMAL_PRICE_SCALE), "buyer", s_opt_string (s->buyer), "seller",
        s_opt_string (s->seller), "signature", s_opt_string (s->signature), "error",
        s_opt_string (s->error));
    return o;
}

//  A settler answer that is not ok, or none at all, as the HTTP answer. true when it was one.
static bool s_settler_failed (gateway_request_t *req, const proto_settler_reply_t *reply)
{
    if (!reply) {
        gateway_resume (
            req, MHD_HTTP_GATEWAY_TIMEOUT,
            gateway_error ("settler_unavailable", NULL, "the settler did not answer in time"));
        return true;
    }
    switch (reply->status) {
        case PROTO_SETTLER_STATUS_OK:
            return false;
        case PROTO_SETTLER_STATUS_NOT_FOUND:
            gateway_resume (req, MHD_HTTP_NOT_FOUND,
                            gateway_error ("settlement_not_found", NULL, "%s",
                                           reply->message[0] ? reply->message
                                                             : "no such settlement in flight"));
            return true;
        case PROTO_SETTLER_STATUS_NOT_FAILED:
            gateway_resume (req, MHD_HTTP_CONFLICT,
                            gateway_error ("settlement_not_failed", NULL, "%s",
                                           reply->message[0]
                                               ? reply->message
                                               : "only a failed settlement can be retried"));
            return true;
        default:
            gateway_resume (req, MHD_HTTP_BAD_GATEWAY,
                            gateway_error ("settler_error", NULL, "%s",
                                           reply->message[0] ? reply->message
                                                             : "the settler refused the command"));
            return true;
    }
}

static void s_listed (void *arg, const proto_settler_reply_t *reply,
                      const proto_settlement_t *settlements, size_t count)
{
    gateway_request_t *req = arg;
    if (s_settler_failed (req, reply))
        return;
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++)
        json_array_append_new (list, s_settlement_json (&settlements[i]));
    json_t *next = json_null ();
    if (reply->more && count) {
        char after[24];
        snprintf (after, sizeof after, "%llu",
                  (unsigned long long) settlements[count - 1].settlement_id);
        next = json_string (after);
    }
    gateway_resume (
        req, MHD_HTTP_OK,
        json_pack ("{s:o,s:b,s:o}", "settlements", list, "more", reply->more, "next_after", next));
}

static enum MHD_Result s_settler_send (gateway_request_t *req, proto_msg_t *cmd,
                                       settler_link_done_fn *done)
{
    snprintf (cmd->settler_command.user, sizeof cmd->settler_command.user, "%s", req->who.user);
    if (settler_link_send (gateway_server_settler (req->server), cmd, done, req))
        return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "settler_unavailable", NULL,
                             "the settler is not reachable at settler.commands, or too many "
                             "admin commands wait for it");
    gateway_suspend (req);
    return MHD_YES;
}

//  GET /api/admin/settlements?state=failed|pending|processing&after=ID&limit=N
enum MHD_Result routes_admin_settlements (gateway_request_t *req)
{
    proto_msg_t cmd = {.kind = PROTO_settler_command};
    proto_settler_command_t *c = &cmd.settler_command;
    c->action = PROTO_SETTLER_ACTION_LIST;
    const char *state = gateway_query (req, "state");
    if (!state || strcmp (state, "failed") == 0)
        c->state = PROTO_SETTLE_STATE_FAILED;
    else if (strcmp (state, "pending") == 0)
        c->state = PROTO_SETTLE_STATE_PENDING;
    else if (strcmp (state, "processing") == 0)
        c->state = PROTO_SETTLE_STATE_PROCESSING;
    else
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_query", "state",
                             "state must be failed, pending or processing (confirmed "
                             "settlements are in the trade history)");
    long long after, limit;
    if (gateway_query_int (req, "after", 0, 0, INT64_MAX, &after) ||
        gateway_query_int (req, "limit", 100, 1, 1000, &limit))
        return MHD_YES;
    c->after = (uint64_t) after;
    c->limit = (uint32_t) limit;
    return s_settler_send (req, &cmd, s_listed);
}

static void s_retried (void *arg, const proto_settler_reply_t *reply,
                       const proto_settlement_t *settlements, size_t count)
{
    gateway_request_t *req = arg;
    if (s_settler_failed (req, reply))
        return;
    json_t *body = count ? s_settlement_json (&settlements[0])
                         : json_pack ("{s:s,s:s}", "settlement_id", req->param, "state", "pending");
    gateway_resume (req, MHD_HTTP_ACCEPTED, body);
}

//  POST /api/admin/settlements/{id}/retry
enum MHD_Result routes_admin_settlement_retry (gateway_request_t *req)
{
    char *end = NULL;
    errno = 0;
    unsigned long long id = strtoull (req->param, &end, 10);
    if (!req->param[0] || *end || errno || id == 0 || req->param[0] == '-')
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "settlement_not_found", NULL,
                             "\"%s\" is not a settlement id", req->param);
    proto_msg_t cmd = {.kind = PROTO_settler_command};
    cmd.settler_command.action = PROTO_SETTLER_ACTION_RETRY;
    cmd.settler_command.settlement_id = (uint64_t) id;
    return s_settler_send (req, &cmd, s_retried);
}

//  GET /api/admin/reconciliation: the escrow held against the chain, as `mcectl reconcile`
//  holds it, but with the vaults as the settler last read them (every few seconds, with
//  when) instead of asking the chain now: the gateway never talks to the chain. First the
//  settler's reading, then what the tables owe (reconcile.h), on the worker.
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    int64_t vault[2], at; //  energy, payment (-1: not known); when read (0: never)
    char markets[CONFIG_MARKETS_MAX * 40];
    reconcile_owed_t owed[2];
    bool read; //  Postgres answered
} s_reconcile_t;

static void s_reconcile_run (gateway_job_t *base, pg_t *pg)
{
    s_reconcile_t *job = (s_reconcile_t *) base;
    job->read = pg && reconcile_owed (pg, job->markets, "energy", &job->owed[0]) == 0 &&
                reconcile_owed (pg, job->markets, "payment", &job->owed[1]) == 0;
}

static void s_reconcile_done (gateway_job_t *base)
{
    s_reconcile_t *job = (s_reconcile_t *) base;
    gateway_request_t *req = job->req;
    if (!job->read) {
        gateway_resume (req, MHD_HTTP_SERVICE_UNAVAILABLE,
                        gateway_error ("database_unavailable", NULL,
                                       "the database did not answer; retry shortly"));
        free (job);
        return;
    }
    static const char *const assets[2] = {"energy", "payment"};
    json_t *rows = json_array ();
    bool known = job->at > 0, balanced = true;
    for (int a = 0; a < 2; a++) {
        int scale = a ? DECIMAL_PRICE_SCALE : DECIMAL_KWH_SCALE;
        const reconcile_owed_t *o = &job->owed[a];
        int64_t owed = reconcile_total (o);
        bool have = known && job->vault[a] >= 0;
        known = known && have;
        balanced = balanced && (!have || job->vault[a] == owed);
        json_array_append_new (
            rows,
            json_pack ("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I}", "asset", assets[a], "vault",
                       have ? s_money (job->vault[a], scale) : json_null (), "owed",
                       s_money (owed, scale), "balances", s_money (o->balances, scale), "trades",
                       s_money (o->trades, scale), "withdrawals", s_money (o->withdrawals, scale),
                       "deposits", s_money (o->deposits, scale), "difference",
                       have ? s_money (job->vault[a] - owed, scale) : json_null (), "in_flight",
                       (json_int_t) o->in_flight));
    }
    gateway_resume (req, MHD_HTTP_OK,
                    json_pack ("{s:o,s:o,s:o}", "vaults_read_at",
                               job->at ? apijson_time (job->at) : json_null (), "balanced",
                               known ? json_boolean (balanced) : json_null (), "assets", rows));
    free (job);
}

static void s_vaults_read (void *arg, const proto_settler_reply_t *reply,
                           const proto_settlement_t *settlements, size_t count)
{
    (void) settlements;
    (void) count;
    gateway_request_t *req = arg;
    if (s_settler_failed (req, reply))
        return;
    s_reconcile_t *job = calloc (1, sizeof *job);
    if (job) {
        job->job.run = s_reconcile_run;
        job->job.done = s_reconcile_done;
        job->req = req;
        job->vault[0] = reply->vault_energy;
        job->vault[1] = reply->vault_payment;
        job->at = reply->vaults_at;
        reconcile_markets (gateway_server_config (req->server), job->markets, sizeof job->markets);
    }
    if (!job || gateway_worker_submit (gateway_server_worker (req->server), &job->job)) {
        free (job);
        gateway_resume (req, MHD_HTTP_SERVICE_UNAVAILABLE,
                        gateway_error ("busy", NULL, "the worker is saturated; retry shortly"));
    }
}

enum MHD_Result routes_admin_reconciliation (gateway_request_t *req)
{
    proto_msg_t cmd = {.kind = PROTO_settler_command};
    cmd.settler_command.action = PROTO_SETTLER_ACTION_VAULTS;
    return s_settler_send (req, &cmd, s_vaults_read);
}
