/*  order_parse — see order_parse.h.  */
#include "order_parse.h"
#include "clock.h"
#include "decimal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int s_fail (order_error_t *err, unsigned status, const char *code, const char *field,
                   const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

static int s_fail (order_error_t *err, unsigned status, const char *code, const char *field,
                   const char *fmt, ...)
{
    err->status = status;
    snprintf (err->code, sizeof err->code, "%s", code);
    snprintf (err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err->message, sizeof err->message, fmt, ap);
    va_end (ap);
    return -1;
}

json_t *order_parse_object (const char *body, size_t len, const char *const *allowed,
                            order_error_t *err)
{
    json_error_t jerr;
    json_t *root = body && len ? json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!root) {
        s_fail (err, 400, "bad_json", NULL, "the body must be a JSON object: %s",
                body && len ? jerr.text : "it is empty");
        return NULL;
    }
    if (!json_is_object (root)) {
        json_decref (root);
        s_fail (err, 400, "bad_json", NULL, "the body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value)
    {
        bool known = false;
        for (int i = 0; allowed[i] && !known; i++)
            known = strcmp (key, allowed[i]) == 0;
        if (!known) {
            char shown[40];
            snprintf (shown, sizeof shown, "%s", key);
            s_fail (err, 400, "unknown_field", shown, "unknown field \"%s\"", shown);
            json_decref (root);
            return NULL;
        }
    }
    return root;
}

//  An exact decimal: a string, or a JSON integer. 1 when present, 0 when absent or null, -1.
static int s_decimal (json_t *root, const char *key, int scale, int64_t *value, order_error_t *err)
{
    json_t *v = json_object_get (root, key);
    *value = 0;
    if (!v || json_is_null (v))
        return 0;
    decimal_status_t st;
    if (json_is_string (v))
        st = decimal_parse (json_string_value (v), json_string_length (v), scale, value);
    else if (json_is_integer (v)) {
        char text[32];
        snprintf (text, sizeof text, "%lld", (long long) json_integer_value (v));
        st = decimal_parse (text, strlen (text), scale, value);
    }
    else if (json_is_real (v))
        return s_fail (err, 400, "bad_field", key,
                       "%s must be a decimal string such as \"%s\": a JSON number with a "
                       "fraction is not exact",
                       key, scale == DECIMAL_PRICE_SCALE ? "0.15" : "12.5");
    else
        return s_fail (err, 400, "bad_field", key, "%s must be a decimal string such as \"%s\"",
                       key, scale == DECIMAL_PRICE_SCALE ? "0.15" : "12.5");
    if (st == DECIMAL_PRECISION)
        return s_fail (err, 400, "too_precise", key, "%s has more than %d decimal places", key,
                       scale);
    if (st != DECIMAL_OK)
        return s_fail (err, 400, "bad_field", key, "%s: %s", key, decimal_status_text (st));
    if (*value <= 0)
        return s_fail (err, 400, "not_positive", key, "%s must be greater than zero", key);
    return 1;
}

//  A string of printable ASCII, 1..max characters. 1 present, 0 absent, -1 bad.
//  Free text from a client (client_order_id, energy_source) is printable ASCII, whichever port
//  it came in on: it is echoed in answers, on the bus and in logs and terminals.
static int s_printable (const char *text, size_t len, const char *key, order_error_t *err)
{
    for (size_t i = 0; i < len; i++)
        if (text[i] < 0x20 || text[i] > 0x7e)
            return s_fail (err, 400, "bad_field", key,
                           "%s may hold printable ASCII characters only", key);
    return 0;
}

static int s_text (json_t *root, const char *key, char *out, size_t size, order_error_t *err)
{
    json_t *v = json_object_get (root, key);
    out[0] = '\0';
    if (!v || json_is_null (v))
        return 0;
    if (!json_is_string (v))
        return s_fail (err, 400, "bad_field", key, "%s must be a string", key);
    size_t n = json_string_length (v);
    const char *s = json_string_value (v);
    if (n == 0 || n >= size)
        return s_fail (err, 400, "bad_field", key, "%s must be 1 to %zu characters", key, size - 1);
    if (s_printable (s, n, key, err))
        return -1;
    memcpy (out, s, n + 1);
    return 1;
}

//  One of a few names, case-insensitive ("Buy", "buy", "BUY"). 1 present, 0 absent, -1 bad.
static int s_choice (json_t *root, const char *key, const char *const *names, const int *values,
                     int *out, order_error_t *err)
{
    json_t *v = json_object_get (root, key);
    if (!v || json_is_null (v))
        return 0;
    for (int i = 0; json_is_string (v) && names[i]; i++)
        if (strcasecmp (json_string_value (v), names[i]) == 0 &&
            strlen (names[i]) == json_string_length (v)) {
            *out = values[i];
            return 1;
        }
    char list[96] = "";
    for (int i = 0; names[i]; i++)
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? ", " : "",
                  names[i]);
    return s_fail (err, 400, "bad_field", key, "%s must be one of %s", key, list);
}

//  An RFC 3339 time. 1 present, 0 absent, -1 bad.
static int s_time (json_t *root, const char *key, int64_t *ns, order_error_t *err)
{
    json_t *v = json_object_get (root, key);
    if (!v || json_is_null (v))
        return 0;
    if (!json_is_string (v) ||
        clock_parse_rfc3339 (json_string_value (v), json_string_length (v), ns))
        return s_fail (err, 400, "bad_field", key,
                       "%s must be an RFC 3339 time such as \"2026-11-21T21:45:00Z\"", key);
    return 1;
}

//  Quantity and price against the market's limits.
static int s_limits (const config_market_t *m, int64_t qty, int64_t price, order_error_t *err)
{
    char a[DECIMAL_FORMAT_MAX], b[DECIMAL_FORMAT_MAX];
    if (qty && (qty < m->min_qty || qty > m->max_qty)) {
        decimal_format (m->min_qty, DECIMAL_KWH_SCALE, a, sizeof a);
        decimal_format (m->max_qty, DECIMAL_KWH_SCALE, b, sizeof b);
        return s_fail (err, 422, "bad_quantity", "energy_amount",
                       "energy_amount must be from %s to %s kWh in %s", a, b, m->id);
    }
    if (qty && qty % m->lot) {
        decimal_format (m->lot, DECIMAL_KWH_SCALE, a, sizeof a);
        return s_fail (err, 422, "off_lot", "energy_amount",
                       "energy_amount must be a multiple of %s kWh in %s", a, m->id);
    }
    if (price && (price < m->min_price || price > m->max_price)) {
        decimal_format (m->min_price, DECIMAL_PRICE_SCALE, a, sizeof a);
        decimal_format (m->max_price, DECIMAL_PRICE_SCALE, b, sizeof b);
        return s_fail (err, 422, "outside_band", "price", "price must be from %s to %s in %s", a, b,
                       m->id);
    }
    if (price && price % m->tick) {
        decimal_format (m->tick, DECIMAL_PRICE_SCALE, a, sizeof a);
        return s_fail (err, 422, "off_tick", "price", "price must be a multiple of %s in %s", a,
                       m->id);
    }
    return 0;
}

int order_parse_new (const mce_config_t *cfg, const char *body, size_t len, int64_t now_ns,
                     proto_msg_t *cmd, order_error_t *err)
{
    static const char *const allowed[] = {
        "market",     "side",          "order_type",      "energy_amount",
        "price",      "time_in_force", "epoch",           "delivery_time",
        "expires_at", "post_only",     "client_order_id", "energy_source",
        NULL};
    static const char *const sides[] = {"Buy", "Sell", NULL};
    static const int side_values[] = {PROTO_SIDE_BUY, PROTO_SIDE_SELL};
    static const char *const types[] = {"Limit", "Market", NULL};
    static const int type_values[] = {PROTO_ORDER_TYPE_LIMIT, PROTO_ORDER_TYPE_MARKET};
    static const char *const tifs[] = {"GTC", "IOC", "FOK", NULL};
    static const int tif_values[] = {PROTO_TIF_GTC, PROTO_TIF_IOC, PROTO_TIF_FOK};
    memset (cmd, 0, sizeof *cmd);
    cmd->kind = PROTO_new_order;
    proto_new_order_t *o = &cmd->new_order;
    json_t *root = order_parse_object (body, len, allowed, err);
    if (!root)
        return -1;
    int rc = -1;
    int side = -1, type = PROTO_ORDER_TYPE_LIMIT, tif = PROTO_TIF_GTC, r;
    int64_t delivery = 0, expires = 0;
    json_t *post = json_object_get (root, "post_only");
    json_t *epoch = json_object_get (root, "epoch");
    if ((r = s_text (root, "market", o->market, sizeof o->market, err)) < 0)
        goto done;
    if (r == 0) {
        s_fail (err, 400, "missing_field", "market", "market is required");
        goto done;
    }
    if ((r = s_choice (root, "side", sides, side_values, &side, err)) < 0)
        goto done;
    if (r == 0) {
        s_fail (err, 400, "missing_field", "side", "side is required (Buy or Sell)");
        goto done;
    }
    if (s_choice (root, "order_type", types, type_values, &type, err) < 0 ||
        s_choice (root, "time_in_force", tifs, tif_values, &tif, err) < 0)
        goto done;
    if ((r = s_decimal (root, "energy_amount", DECIMAL_KWH_SCALE, &o->qty, err)) < 0)
        goto done;
    if (r == 0) {
        s_fail (err, 400, "missing_field", "energy_amount", "energy_amount is required (kWh)");
        goto done;
    }
    if ((r = s_decimal (root, "price", DECIMAL_PRICE_SCALE, &o->price, err)) < 0)
        goto done;
    if (r == 0 && type == PROTO_ORDER_TYPE_LIMIT) {
        s_fail (err, 400, "missing_field", "price", "price is required for a Limit order");
        goto done;
    }
    if (r == 1 && type == PROTO_ORDER_TYPE_MARKET) {
        s_fail (err, 400, "bad_field", "price", "a Market order takes no price");
        goto done;
    }
    if (post && !json_is_boolean (post) && !json_is_null (post)) {
        s_fail (err, 400, "bad_field", "post_only", "post_only must be true or false");
        goto done;
    }
    o->post_only = post && json_is_true (post);
    if (s_text (root, "client_order_id", o->client_order_id, sizeof o->client_order_id, err) < 0 ||
        s_text (root, "energy_source", o->source, sizeof o->source, err) < 0 ||
        (r = s_time (root, "delivery_time", &delivery, err)) < 0 ||
        s_time (root, "expires_at", &expires, err) < 0)
        goto done;
    const config_market_t *m = config_market (cfg, o->market);
    if (!m) {
        s_fail (err, 422, "unknown_market", "market", "there is no market \"%s\"", o->market);
        goto done;
    }
    if (epoch && !json_is_null (epoch)) {
        if (r == 1) {
            s_fail (err, 400, "bad_field", "epoch", "give epoch or delivery_time, not both");
            goto done;
        }
        if (!json_is_integer (epoch) || json_integer_value (epoch) < 0) {
            s_fail (err, 400, "bad_field", "epoch",
                    "epoch must be a delivery epoch number (an integer, 0 = the current one)");
            goto done;
        }
        o->epoch = json_integer_value (epoch);
    }
    else if (r == 1) {
        //  Epoch 0 on the wire means "the current one", so a delivery_time in 1970 would land
        //  there: any time before the current epoch is refused here, as the matcher would.
        int64_t epoch_ns = (int64_t) m->epoch_seconds * MCE_NS_PER_SEC;
        if (delivery / epoch_ns < now_ns / epoch_ns) {
            s_fail (err, 422, "epoch_closed", "delivery_time",
                    "delivery_time is before the current delivery epoch");
            goto done;
        }
        o->epoch = delivery / epoch_ns;
    }
    if (expires) {
        if (expires <= now_ns) {
            s_fail (err, 422, "expired", "expires_at", "expires_at is in the past");
            goto done;
        }
        if (tif != PROTO_TIF_GTC) {
            s_fail (err, 400, "bad_field", "expires_at", "expires_at applies to GTC orders only");
            goto done;
        }
        o->expires_at = expires;
    }
    if (o->post_only && type == PROTO_ORDER_TYPE_MARKET) {
        s_fail (err, 400, "bad_field", "post_only", "a Market order cannot be post_only");
        goto done;
    }
    if (s_limits (m, o->qty, o->price, err))
        goto done;
    o->side = side;
    o->type = type;
    o->tif = tif;
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int order_parse_amend (const config_market_t *market, const char *body, size_t len,
                       proto_msg_t *cmd, order_error_t *err)
{
    static const char *const allowed[] = {"energy_amount", "price", NULL};
    memset (cmd, 0, sizeof *cmd);
    cmd->kind = PROTO_amend_order;
    proto_amend_order_t *a = &cmd->amend_order;
    json_t *root = order_parse_object (body, len, allowed, err);
    if (!root)
        return -1;
    int rc = -1, q, p;
    if ((q = s_decimal (root, "energy_amount", DECIMAL_KWH_SCALE, &a->qty, err)) < 0 ||
        (p = s_decimal (root, "price", DECIMAL_PRICE_SCALE, &a->price, err)) < 0)
        goto done;
    if (q == 0 && p == 0) {
        s_fail (err, 400, "missing_field", NULL, "give energy_amount, price or both");
        goto done;
    }
    if (market && s_limits (market, a->qty, a->price, err))
        goto done;
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int order_check_new (const mce_config_t *cfg, const proto_new_order_t *o, int64_t now_ns,
                     order_error_t *err)
{
    const config_market_t *m = config_market (cfg, o->market);
    if (!m)
        return s_fail (err, 422, "unknown_market", "market", "there is no market \"%s\"",
                       o->market);
    if (o->qty <= 0)
        return s_fail (err, 400, "not_positive", "energy_amount",
                       "energy_amount must be greater than zero");
    if (o->type == PROTO_ORDER_TYPE_LIMIT && o->price <= 0)
        return s_fail (err, 400, "missing_field", "price", "a Limit order needs a positive price");
    if (o->type == PROTO_ORDER_TYPE_MARKET && o->price)
        return s_fail (err, 400, "bad_field", "price", "a Market order takes no price");
    if (o->expires_at && o->expires_at <= now_ns)
        return s_fail (err, 422, "expired", "expires_at", "expires_at is in the past");
    if (o->epoch < 0)
        return s_fail (err, 400, "bad_field", "epoch", "epoch must not be negative");
    if (s_printable (o->client_order_id, strlen (o->client_order_id), "client_order_id", err) ||
        s_printable (o->source, strlen (o->source), "energy_source", err))
        return -1;
    return s_limits (m, o->qty, o->price, err);
}

proto_reject_reason_t order_error_reason (const order_error_t *err)
{
    static const struct {
        const char *code;
        proto_reject_reason_t reason;
    } map[] = {{"unknown_market", PROTO_REJECT_REASON_UNKNOWN_MARKET},
               {"bad_quantity", PROTO_REJECT_REASON_BAD_QUANTITY},
               {"off_lot", PROTO_REJECT_REASON_OFF_LOT},
               {"outside_band", PROTO_REJECT_REASON_OUTSIDE_BAND},
               {"off_tick", PROTO_REJECT_REASON_OFF_TICK}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp (err->code, map[i].code) == 0)
            return map[i].reason;
    return PROTO_REJECT_REASON_MALFORMED;
}

int order_parse_transfer (const char *body, size_t len, proto_msg_t *cmd, order_error_t *err)
{
    static const char *const allowed[] = {"asset", "amount", NULL};
    static const char *const names[] = {"energy", "payment", NULL};
    static const int values[] = {PROTO_ASSET_ENERGY, PROTO_ASSET_PAYMENT};
    memset (cmd, 0, sizeof *cmd);
    json_t *root = order_parse_object (body, len, allowed, err);
    if (!root)
        return -1;
    int asset = 0;
    int64_t amount = 0;
    int rc = s_choice (root, "asset", names, values, &asset, err);
    if (rc == 0)
        rc = s_fail (err, 400, "missing_field", "asset", "asset is required (energy or payment)");
    if (rc > 0) {
        //  energy in kWh (to Wh), payment in money units (to µ)
        int scale = asset == PROTO_ASSET_ENERGY ? DECIMAL_KWH_SCALE : DECIMAL_PRICE_SCALE;
        rc = s_decimal (root, "amount", scale, &amount, err);
        if (rc == 0)
            rc = s_fail (err, 400, "missing_field", "amount", "amount is required");
    }
    json_decref (root);
    if (rc < 0)
        return -1;
    if (amount > ORDER_TRANSFER_MAX)
        return s_fail (err, 422, "bad_amount", "amount", "amount is larger than any balance");
    cmd->kind = PROTO_withdraw;
    cmd->withdraw.asset = (proto_asset_t) asset;
    cmd->withdraw.amount = amount;
    return 0;
}

int order_parse_id (const char *text, uint64_t *id)
{
    uint64_t v = 0;
    size_t n = strlen (text);
    if (n == 0 || n > 20 || text[0] == '0')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        uint64_t d = (uint64_t) (text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *id = v;
    return 0;
}
