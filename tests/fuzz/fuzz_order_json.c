/*  fuzz_order_json — the trading API's JSON bodies, from arbitrary bytes to a command or an
    error (order_parse_new, order_parse_amend, order_parse_transfer), and the native port's check
    of a decoded command (order_check_new).

    Besides not crashing or leaking: whatever order_parse_new accepts must be an order the
    market takes (positive quantity on the lot, price on the tick and in the band, or none for
    a market order) and must encode as a valid new_order; whatever it refuses must say why
    (a 4xx status, a code and a message). A violation aborts so libFuzzer keeps the input.
*/
#include "config.h"
#include "order_parse.h"
#include "proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mce_config_t s_cfg;
static int s_ready;

static void s_setup (void)
{
    char err[CONFIG_ERR_MAX];
    if (config_load_text (&s_cfg,
                          "markets = ( { id = \"campus-1\"; tick = \"0.001\"; lot = \"0.1\"; "
                          "min_qty = \"0.1\"; max_qty = \"1000\"; max_price = \"10\"; } );\n",
                          err, sizeof err))
        abort ();
    s_ready = 1;
}

static void s_check_refusal (const order_error_t *err)
{
    if (err->status < 400 || err->status > 499 || !err->code[0] || !err->message[0])
        abort ();
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_ready)
        s_setup ();
    const int64_t now = 1795297200LL * 1000000000LL;
    proto_msg_t cmd;
    order_error_t err;
    if (order_parse_new (&s_cfg, (const char *) data, size, now, &cmd, &err) == 0) {
        const proto_new_order_t *o = &cmd.new_order;
        const config_market_t *m = config_market (&s_cfg, o->market);
        if (!m || cmd.kind != PROTO_new_order || o->qty <= 0 || o->qty % m->lot ||
            o->qty < m->min_qty || o->qty > m->max_qty)
            abort ();
        if (o->type == PROTO_ORDER_TYPE_LIMIT &&
            (o->price <= 0 || o->price % m->tick || o->price > m->max_price))
            abort ();
        if (o->type == PROTO_ORDER_TYPE_MARKET && o->price)
            abort ();
        if (o->expires_at && o->expires_at <= now)
            abort ();
        //  what the gateway adds, then it must encode as a valid command
        cmd.new_order.rid = 1;
        snprintf (cmd.new_order.user, sizeof cmd.new_order.user, "fuzz");
        cmd.new_order.ts = now;
        proto_buf_t buf;
        proto_buf_init (&buf);
        if (proto_encode (&cmd, &buf))
            abort ();
        proto_buf_free (&buf);
        if (order_check_new (&s_cfg, &cmd.new_order, now, &err))
            abort (); //  the native port's check agrees with the HTTP one
    }
    else
        s_check_refusal (&err);
    if (order_parse_amend (&s_cfg.markets[0], (const char *) data, size, &cmd, &err) == 0) {
        if (cmd.kind != PROTO_amend_order || cmd.amend_order.qty < 0 || cmd.amend_order.price < 0 ||
            (cmd.amend_order.qty == 0 && cmd.amend_order.price == 0))
            abort ();
    }
    else
        s_check_refusal (&err);
    if (order_parse_transfer ((const char *) data, size, &cmd, &err) == 0) {
        const proto_withdraw_t *w = &cmd.withdraw;
        if (cmd.kind != PROTO_withdraw || w->amount <= 0 || w->amount > ORDER_TRANSFER_MAX ||
            (w->asset != PROTO_ASSET_ENERGY && w->asset != PROTO_ASSET_PAYMENT))
            abort ();
    }
    else
        s_check_refusal (&err);
    return 0;
}
