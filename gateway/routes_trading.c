/*  routes_trading — placing, amending, cancelling and listing one's orders.

    Bodies are parsed and checked by order_parse (pure, fuzzed) before anything reaches the
    matcher; the matcher checks the business rules again and its verdict is mapped to HTTP
    here. A write is answered once its events are on the bus and in this gateway's read model
    (gateway_resume_after), so a client that reads right after writing sees its own write; a
    refusal waits likewise for what the matcher had seen when it refused.
    Reads come from the read model; ownership is checked here (an admin sees everything), and
    an order of someone else is answered exactly like an unknown one, so ids leak nothing.
*/
#include "clock.h"
#include "decimal.h"
#include "gateway_server.h"
#include "log.h"
#include "order_parse.h"
#include "readmodel.h"

#include <assert.h>
#include <string.h>

//  The matcher answered a write: the body the client gets, once the read model has it.
static void s_answered (void *arg, const proto_msg_t *reply)
{
    gateway_request_t *req = arg;
    if (!reply) {
        gateway_resume (req, MHD_HTTP_GATEWAY_TIMEOUT,
                        gateway_error ("matcher_unavailable", NULL,
                                       "the matcher did not answer in time; the command may "
                                       "still take effect (an order resubmitted with the same "
                                       "client_order_id is placed at most once)"));
        return;
    }
    if (reply->kind == PROTO_reject) {
        const char *reason = proto_reject_reason_name (reply->reject.reason);
        unsigned status = gateway_reject_status (reply->reject.reason);
        if (reply->reject.reason == PROTO_REJECT_REASON_NOT_OWNER)
            reason = "order_not_found"; //  someone else's order is answered as unknown
        else if (reply->reject.reason == PROTO_REJECT_REASON_UNKNOWN_ORDER)
            reason = "order_not_found";
        //  answered once the read model has what the refusal saw: a cancel refused because a
        //  trade just filled the order is never followed by a read that shows it open
        gateway_resume_after (req, reply->reject.last_seq, status,
                              gateway_error (reason, NULL, "%s",
                                             reply->reject.reason == PROTO_REJECT_REASON_NOT_OWNER
                                                 ? "no such open order"
                                                 : reply->reject.message));
        return;
    }
    const proto_ack_t *ack = &reply->ack;
    char filled[DECIMAL_FORMAT_MAX], remaining[DECIMAL_FORMAT_MAX];
    decimal_format (ack->filled, DECIMAL_KWH_SCALE, filled, sizeof filled);
    decimal_format (ack->remaining, DECIMAL_KWH_SCALE, remaining, sizeof remaining);
    //  Every value is digits or a fixed status name: nothing needs escaping, and this is the
    //  answer to every order, so it is written directly rather than built with jansson.
    //  the delivery period beside the epoch number, as every read shows it
    char start[32], end[32];
    int64_t len = req->epoch_seconds * MCE_NS_PER_SEC;
    clock_format_rfc3339 (ack->epoch * len, start, sizeof start);
    clock_format_rfc3339 (ack->epoch * len + len, end, sizeof end);
    char text[sizeof req->text];
    int n = snprintf (text, sizeof text,
                      "{\"order_id\":\"%llu\",\"status\":\"%s\",\"epoch\":%lld,"
                      "\"delivery_start\":\"%s\",\"delivery_end\":\"%s\","
                      "\"filled_amount\":\"%s\",\"remaining_amount\":\"%s\",\"seq\":%llu}",
                      (unsigned long long) ack->order_id, proto_order_status_name (ack->status),
                      (long long) ack->epoch, start, end, filled, remaining,
                      (unsigned long long) ack->seq);
    assert (n > 0 && (size_t) n < sizeof text);
    unsigned status = strcmp (req->method, "POST") == 0 ? MHD_HTTP_CREATED : MHD_HTTP_OK;
    gateway_resume_after_text (req, ack->last_seq ? ack->last_seq : ack->seq, status, text,
                               (size_t) n);
}

static enum MHD_Result s_send (gateway_request_t *req, proto_msg_t *cmd)
{
    if (matcher_link_send (gateway_server_link (req->server), cmd, s_answered, req))
        return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded", NULL,
                             "too many commands in flight; retry shortly");
    gateway_suspend (req);
    return MHD_YES;
}

static enum MHD_Result s_parse_failed (gateway_request_t *req, const order_error_t *err)
{
    return gateway_respond (
        req, err->status,
        gateway_error (err->code, err->field[0] ? err->field : NULL, "%s", err->message));
}

//  POST /api/trading/orders
enum MHD_Result routes_trading_post_order (gateway_request_t *req)
{
    const mce_config_t *cfg = gateway_server_config (req->server);
    proto_msg_t cmd;
    order_error_t err;
    if (order_parse_new (cfg, req->body, req->body_len, clock_wall_ns (), &cmd, &err))
        return s_parse_failed (req, &err);
    proto_new_order_t *o = &cmd.new_order;
    const config_market_t *m = config_market (cfg, o->market);
    req->epoch_seconds = m ? m->epoch_seconds : 0;
    snprintf (o->user, sizeof o->user, "%s", req->who.user);
    o->role = req->who.role;
    o->ts = clock_wall_ns ();
    return s_send (req, &cmd);
}

//  The order named in the path, as the read model knows it, if the caller may see it.
//  Answers 404 itself and returns NULL otherwise.
static json_t *s_visible_order (gateway_request_t *req, uint64_t *id)
{
    if (order_parse_id (req->param, id)) {
        gateway_fail (req, MHD_HTTP_NOT_FOUND, "order_not_found", NULL, "\"%s\" is not an order id",
                      req->param);
        return NULL;
    }
    const char *owner = NULL;
    json_t *order = readmodel_order (gateway_server_readmodel (req->server), *id, &owner);
    if (order && req->who.role != PROTO_ROLE_ADMIN && strcmp (owner, req->who.user) != 0) {
        json_decref (order);
        order = NULL;
    }
    if (!order)
        gateway_fail (req, MHD_HTTP_NOT_FOUND, "order_not_found", NULL, "no order %s", req->param);
    return order;
}

//  GET /api/trading/orders/{id}
enum MHD_Result routes_trading_get_order (gateway_request_t *req)
{
    uint64_t id;
    json_t *order = s_visible_order (req, &id);
    return order ? gateway_respond (req, MHD_HTTP_OK, order) : MHD_YES;
}

//  GET /api/trading/orders/{id}/fills: the trades that filled it, oldest first
enum MHD_Result routes_trading_order_fills (gateway_request_t *req)
{
    uint64_t id;
    json_t *order = s_visible_order (req, &id);
    if (!order)
        return MHD_YES;
    json_decref (order);
    json_t *fills = readmodel_order_fills (gateway_server_readmodel (req->server), id, NULL);
    if (!fills)
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "order_not_found", NULL, "no order %s",
                             req->param);
    return gateway_respond (req, MHD_HTTP_OK, fills);
}

//  DELETE /api/trading/orders/{id}
enum MHD_Result routes_trading_cancel_order (gateway_request_t *req)
{
    uint64_t id;
    json_t *order = s_visible_order (req, &id);
    if (!order)
        return MHD_YES;
    proto_msg_t cmd = {.kind = PROTO_cancel_order};
    proto_cancel_order_t *c = &cmd.cancel_order;
    snprintf (c->market, sizeof c->market, "%s",
              json_string_value (json_object_get (order, "market")));
    const config_market_t *m = config_market (gateway_server_config (req->server), c->market);
    req->epoch_seconds = m ? m->epoch_seconds : 0;
    json_decref (order);
    snprintf (c->user, sizeof c->user, "%s", req->who.user);
    c->role = req->who.role;
    c->order_id = id;
    c->ts = clock_wall_ns ();
    return s_send (req, &cmd);
}

//  PATCH /api/trading/orders/{id}: a new remaining energy_amount, a new price, or both.
enum MHD_Result routes_trading_amend_order (gateway_request_t *req)
{
    uint64_t id;
    json_t *order = s_visible_order (req, &id);
    if (!order)
        return MHD_YES;
    const mce_config_t *cfg = gateway_server_config (req->server);
    const char *market = json_string_value (json_object_get (order, "market"));
    proto_msg_t cmd;
    order_error_t err;
    const config_market_t *m = config_market (cfg, market);
    req->epoch_seconds = m ? m->epoch_seconds : 0;
    if (order_parse_amend (m, req->body, req->body_len, &cmd, &err)) {
        json_decref (order);
        return s_parse_failed (req, &err);
    }
    proto_amend_order_t *a = &cmd.amend_order;
    if (a->qty == 0) {
        //  price only: the quantity stays what is still open
        const char *left = json_string_value (json_object_get (order, "remaining_amount"));
        if (!left || decimal_parse (left, strlen (left), DECIMAL_KWH_SCALE, &a->qty) ||
            a->qty <= 0) {
            json_decref (order);
            return gateway_fail (req, MHD_HTTP_CONFLICT, "order_not_open", NULL,
                                 "order %s has nothing left to amend", req->param);
        }
    }
    snprintf (a->market, sizeof a->market, "%s", market);
    json_decref (order);
    snprintf (a->user, sizeof a->user, "%s", req->who.user);
    a->role = req->who.role;
    a->order_id = id;
    a->ts = clock_wall_ns ();
    return s_send (req, &cmd);
}

//  GET /api/trading/orders?status&market&epoch&limit&offset
enum MHD_Result routes_trading_list_orders (gateway_request_t *req)
{
    long long limit, offset, epoch;
    if (gateway_query_int (req, "limit", 50, 1, 1000, &limit) ||
        gateway_query_int (req, "offset", 0, 0, 100000000, &offset) ||
        gateway_query_int (req, "epoch", -1, 0, INT64_MAX, &epoch))
        return MHD_YES;
    const char *status = gateway_query (req, "status");
    static const char *const statuses[] = {"open",      "partially_filled", "filled",
                                           "cancelled", "expired",          NULL};
    bool known = !status;
    for (int i = 0; statuses[i] && !known; i++)
        known = strcmp (status, statuses[i]) == 0;
    if (!known)
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_query", "status",
                             "status must be one of open, partially_filled, filled, cancelled, "
                             "expired");
    const char *market = gateway_query (req, "market");
    if (market && !config_market (gateway_server_config (req->server), market))
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "unknown_market", "market",
                             "there is no market \"%s\"", market);
    readmodel_order_filter_t filter = {.market = market,
                                       .epoch = gateway_query (req, "epoch") ? epoch : -1,
                                       .status = status,
                                       .limit = (int) limit,
                                       .offset = (int) offset};
    return gateway_respond (
        req, MHD_HTTP_OK,
        readmodel_user_orders (gateway_server_readmodel (req->server), req->who.user, &filter));
}
