/*  order_parse — turns the JSON bodies of the trading API into matcher commands, or into the
    precise error the client gets back. No I/O and no libmicrohttpd here, so the whole path
    from untrusted bytes to a command is one pure function per route, and it is fuzzed.

    Amounts and prices are exact: decimal strings ("12.5", "0.15") or JSON integers. A JSON
    number with a fraction is refused, because jansson (like every JSON library) reads it as a
    binary double, and 0.15 is not one; the error says to send a string. Every field is
    checked for type, range and precision, unknown fields are refused (a typo must not be
    silently ignored on an order), and the market's own limits are applied (tick, lot, min and
    max), so the matcher rarely has to refuse anything the gateway let through.
*/
#ifndef MCE_ORDER_PARSE_H
#define MCE_ORDER_PARSE_H

#include "config.h"
#include "proto.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned status;   //  400 (malformed, wrong type, unknown field) or 422 (out of limits)
    char code[32];     //  e.g. "bad_field", "unknown_field", "off_tick", "expired"
    char field[40];    //  the field to blame, "" for the body as a whole
    char message[200]; //  for a person
} order_error_t;

//  Any body of the API: a JSON object (duplicate keys refused) whose keys are all in allowed
//  (NULL-terminated). A new reference, or NULL with err filled (400 bad_json, unknown_field).
json_t *order_parse_object (const char *body, size_t len, const char *const *allowed,
                            order_error_t *err);
//  POST /api/trading/orders. Fills cmd (kind new_order) except rid, user, role and ts. now_ns
//  is the wall clock, for expires_at. 0, or -1 with err filled.
int order_parse_new (const mce_config_t *cfg, const char *body, size_t len, int64_t now_ns,
                     proto_msg_t *cmd, order_error_t *err);
//  PATCH /api/trading/orders/{id}: {"energy_amount": new remaining, "price": new price}, either
//  or both. Fills cmd (kind amend_order) except rid, user, role, ts, market and order_id;
//  market is checked later, so tick and lot are checked against `market` when it is not NULL.
int order_parse_amend (const config_market_t *market, const char *body, size_t len,
                       proto_msg_t *cmd, order_error_t *err);
//  The checks order_parse_new makes after parsing, for a new_order that arrived already
//  decoded (the native port): market, quantity and price against the market's limits,
//  expires_at in the future, client_order_id and energy_source printable ASCII as over HTTP.
//  0, or -1 with err filled.
int order_check_new (const mce_config_t *cfg, const proto_new_order_t *o, int64_t now_ns,
                     order_error_t *err);
//  The matcher's reject reason for an order_error_t code (malformed when none fits).
proto_reject_reason_t order_error_reason (const order_error_t *err);

//  POST /api/account/deposits and /withdrawals: {"asset": "energy" | "payment", "amount"},
//  the amount in kWh or in money units. Fills cmd as a withdraw (asset and amount; the caller
//  sets the rest, or turns it into a deposit). 0, or -1 with err filled.
#define ORDER_TRANSFER_MAX (INT64_MAX / 4) //  the matcher's largest balance
int order_parse_transfer (const char *body, size_t len, proto_msg_t *cmd, order_error_t *err);

//  An order id from a path: decimal digits of a uint64 greater than 0. 0, or -1.
int order_parse_id (const char *text, uint64_t *id);

#endif
