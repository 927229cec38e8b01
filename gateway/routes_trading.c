/*  routes_trading — POST /api/trading/orders (more trading routes come with the gateway issue).

    Everything is validated here before it reaches the matcher: JSON shape, field types, the
    exact decimals (decimal.c), the market's limits. The matcher checks the business rules
    again; this just spares it the traffic and gives the client a precise error.

    Authentication arrives with the gateway issue; until then every order is placed for the
    user "demo".
*/
#include "clock.h"
#include "decimal.h"
#include "gateway_server.h"
#include "log.h"

#include <strings.h>
#include <string.h>

#define S_SKELETON_USER "demo"

//  Reads a decimal field that may be a JSON string ("100.5") or a JSON number (100.5).
//  Returns 0, or -1 with the error response in *error.
static int s_decimal (json_t *root, const char *key, int scale, bool required, int64_t *value,
                      json_t **error)
{
    json_t *v = json_object_get (root, key);
    *value = 0;
    if (!v || json_is_null (v)) {
        if (required)
            *error = gateway_error ("missing_field", "%s is required", key);
        return required ? -1 : 0;
    }
    decimal_status_t st;
    if (json_is_string (v))
        st = decimal_parse (json_string_value (v), json_string_length (v), scale, value);
    else if (json_is_integer (v) && json_integer_value (v) >= 0) {
        char text[32];
        snprintf (text, sizeof text, "%lld", (long long) json_integer_value (v));
        st = decimal_parse (text, strlen (text), scale, value);
    }
    else if (json_is_real (v))
        st = decimal_from_double (json_real_value (v), scale, value);
    else {
        *error = gateway_error ("bad_field", "%s must be a decimal string like \"%s\"", key,
                                scale == DECIMAL_PRICE_SCALE ? "0.15" : "100.5");
        return -1;
    }
    if (st != DECIMAL_OK) {
        *error = gateway_error ("bad_field", "%s: %s", key, decimal_status_text (st));
        return -1;
    }
    return 0;
}

//  A string field restricted to a few values (case-insensitive, so "Buy" and "buy" both work).
static int s_choice (json_t *root, const char *key, const char *const *names, const int *values,
                     int n, int fallback, int *out, json_t **error)
{
    json_t *v = json_object_get (root, key);
    if (!v || json_is_null (v)) {
        if (fallback < 0) {
            *error = gateway_error ("missing_field", "%s is required", key);
            return -1;
        }
        *out = fallback;
        return 0;
    }
    for (int i = 0; json_is_string (v) && i < n; i++)
        if (strcasecmp (json_string_value (v), names[i]) == 0) {
            *out = values[i];
            return 0;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++)
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? ", " : "",
                  names[i]);
    *error = gateway_error ("bad_field", "%s must be one of %s", key, list);
    return -1;
}

static int s_string (json_t *root, const char *key, char *out, size_t size, bool required,
                     json_t **error)
{
    json_t *v = json_object_get (root, key);
    out[0] = '\0';
    if (!v || json_is_null (v)) {
        if (required)
            *error = gateway_error ("missing_field", "%s is required", key);
        return required ? -1 : 0;
    }
    if (!json_is_string (v) || json_string_length (v) >= size ||
        strlen (json_string_value (v)) != json_string_length (v)) {
        *error = gateway_error ("bad_field", "%s must be a string of at most %zu characters", key,
                                size - 1);
        return -1;
    }
    memcpy (out, json_string_value (v), json_string_length (v) + 1);
    return 0;
}

static void s_answered (void *arg, const proto_msg_t *reply)
{
    gateway_request_t *req = arg;
    if (!reply) {
        gateway_resume (req, MHD_HTTP_GATEWAY_TIMEOUT,
                        gateway_error ("matcher_unavailable",
                                       "the matcher did not answer in time; "
                                       "the order may still be placed (resubmit with the same "
                                       "client_order_id to find out)"));
        return;
    }
    if (reply->kind == PROTO_reject) {
        gateway_resume (req, MHD_HTTP_UNPROCESSABLE_CONTENT,
                        gateway_error (proto_reject_reason_name (reply->reject.reason), "%s",
                                       reply->reject.message));
        return;
    }
    const proto_ack_t *ack = &reply->ack;
    char order_id[24], remaining[32];
    snprintf (order_id, sizeof order_id, "%llu", (unsigned long long) ack->order_id);
    decimal_format (ack->remaining, DECIMAL_KWH_SCALE, remaining, sizeof remaining);
    gateway_resume (req, MHD_HTTP_CREATED,
                    json_pack ("{s:s,s:s,s:I,s:I,s:s}", "order_id", order_id, "status",
                               proto_order_status_name (ack->status), "epoch",
                               (json_int_t) ack->epoch, "seq", (json_int_t) ack->seq,
                               "remaining_amount", remaining));
}

enum MHD_Result routes_trading_post_order (gateway_request_t *req)
{
    const mce_config_t *cfg = gateway_server_config (req->server);
    json_error_t jerr;
    json_t *root =
        req->body ? json_loadb (req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!root || !json_is_object (root)) {
        json_decref (root);
        return gateway_respond (req->connection, MHD_HTTP_BAD_REQUEST,
                                gateway_error ("bad_json", "the body must be a JSON object%s%s",
                                               req->body ? ": " : "", req->body ? jerr.text : ""));
    }
    static const char *const sides[] = {"Buy", "Sell"};
    static const int side_values[] = {PROTO_SIDE_BUY, PROTO_SIDE_SELL};
    static const char *const types[] = {"Limit", "Market"};
    static const int type_values[] = {PROTO_ORDER_TYPE_LIMIT, PROTO_ORDER_TYPE_MARKET};
    static const char *const tifs[] = {"GTC", "IOC", "FOK"};
    static const int tif_values[] = {PROTO_TIF_GTC, PROTO_TIF_IOC, PROTO_TIF_FOK};
    proto_msg_t cmd = {.kind = PROTO_new_order};
    proto_new_order_t *o = &cmd.new_order;
    json_t *error = NULL;
    int side = 0, type = 0, tif = 0;
    json_t *post = json_object_get (root, "post_only");
    if (s_string (root, "market", o->market, sizeof o->market, true, &error) ||
        s_choice (root, "side", sides, side_values, 2, -1, &side, &error) ||
        s_choice (root, "order_type", types, type_values, 2, PROTO_ORDER_TYPE_LIMIT, &type,
                  &error) ||
        s_choice (root, "time_in_force", tifs, tif_values, 3, PROTO_TIF_GTC, &tif, &error) ||
        s_decimal (root, "energy_amount", DECIMAL_KWH_SCALE, true, &o->qty, &error) ||
        s_decimal (root, "price", DECIMAL_PRICE_SCALE, type == PROTO_ORDER_TYPE_LIMIT, &o->price,
                   &error) ||
        s_string (root, "client_order_id", o->client_order_id, sizeof o->client_order_id, false,
                  &error) ||
        s_string (root, "energy_source", o->source, sizeof o->source, false, &error)) {
        json_decref (root);
        return gateway_respond (req->connection, MHD_HTTP_BAD_REQUEST, error);
    }
    if (post && !json_is_boolean (post)) {
        json_decref (root);
        return gateway_respond (req->connection, MHD_HTTP_BAD_REQUEST,
                                gateway_error ("bad_field", "post_only must be true or false"));
    }
    o->post_only = post && json_is_true (post);
    json_decref (root);
    if (!config_market (cfg, o->market))
        return gateway_respond (req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT,
                                gateway_error ("unknown_market", "no market \"%s\"", o->market));
    if (o->qty <= 0)
        return gateway_respond (req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT,
                                gateway_error ("bad_quantity", "energy_amount must be positive"));
    o->side = side;
    o->type = type;
    o->tif = tif;
    snprintf (o->user, sizeof o->user, "%s", S_SKELETON_USER);
    o->role = PROTO_ROLE_USER;
    o->ts = clock_wall_ns ();
    if (matcher_link_send (gateway_server_link (req->server), &cmd, s_answered, req))
        return gateway_respond (req->connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                gateway_error ("overloaded", "too many orders in flight; retry"));
    gateway_suspend (req);
    return MHD_YES;
}
