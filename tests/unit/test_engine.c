/*  test_engine — the rules of docs/clearing.md, one at a time, on the engine alone.  */
#include "engine.h"

#include <criterion/criterion.h>
#include <string.h>

#define KWH(x)   ((int64_t) ((x) *1000 + 0.5))    //  test literals only: kWh → Wh
#define PRICE(x) ((int64_t) ((x) *1000000 + 0.5)) //  test literals only: per kWh → µ
#define T0       (1000000LL * 900 * 1000000000LL) //  the start of epoch 1 000 000 (900 s)
#define EPOCH0   1000000

static engine_t *s_e;
static uint32_t s_alice, s_bob, s_carol;

//  The tests' one market: the defaults, tick 0.01, two epochs ahead, no escrow.
static mce_config_t s_config (int rule, int mode)
{
    mce_config_t cfg;
    char err[256];
    cr_assert_eq (config_load (&cfg, NULL, err, sizeof err), 0);
    cfg.markets[0].escrow = false; //  the bare engine: balances are test_accounts.c's
    cfg.markets[0].tick = PRICE (0.01);
    cfg.markets[0].price_rule = rule;
    cfg.markets[0].mode = mode;
    cfg.markets[0].future_epochs = 2;
    return cfg;
}

static void s_setup_with (int rule, int mode)
{
    mce_config_t cfg = s_config (rule, mode);
    s_e = engine_new (&cfg);
    s_alice = engine_user_intern (s_e, "alice");
    s_bob = engine_user_intern (s_e, "bob");
    s_carol = engine_user_intern (s_e, "carol");
    engine_advance (s_e, T0);
}

static void s_setup (void)
{
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_CONTINUOUS);
}

static void s_teardown (void)
{
    engine_destroy (&s_e);
}

static const engine_result_t *s_limit (uint32_t user, proto_side_t side, double kwh, double price)
{
    engine_order_t o = {.user = user,
                        .side = side,
                        .type = PROTO_ORDER_TYPE_LIMIT,
                        .tif = PROTO_TIF_GTC,
                        .qty = KWH (kwh),
                        .price = PRICE (price)};
    return engine_new_order (s_e, &o, T0 + 1);
}

static const engine_result_t *s_order (engine_order_t o)
{
    return engine_new_order (s_e, &o, T0 + 1);
}

//  The trades among a result's events, as "qty@price" in Wh and µ.
static int s_trades (const engine_result_t *r, int64_t *qty, int64_t *price, int max)
{
    int n = 0;
    for (uint32_t i = 0; i < r->event_count && n < max; i++)
        if (r->events[i].kind == ENGINE_EV_TRADE) {
            qty[n] = r->events[i].qty;
            price[n++] = r->events[i].price;
        }
    return n;
}

static const engine_event_t *s_find (const engine_result_t *r, engine_event_kind_t kind)
{
    for (uint32_t i = 0; i < r->event_count; i++)
        if (r->events[i].kind == kind)
            return &r->events[i];
    return NULL;
}

//  Enters the worked example: the bids rest first, then the asks arrive.
static void s_worked_example (int64_t *qty, int64_t *price, int *n)
{
    s_limit (s_alice, PROTO_SIDE_BUY, 100, 0.20);
    s_limit (s_alice, PROTO_SIDE_BUY, 50, 0.19);
    s_limit (s_alice, PROTO_SIDE_BUY, 200, 0.18);
    *n = 0;
    const engine_result_t *r = s_limit (s_bob, PROTO_SIDE_SELL, 50, 0.18);
    *n += s_trades (r, qty + *n, price + *n, 8);
    r = s_limit (s_bob, PROTO_SIDE_SELL, 75, 0.19);
    *n += s_trades (r, qty + *n, price + *n, 8);
    r = s_limit (s_bob, PROTO_SIDE_SELL, 100, 0.21);
    *n += s_trades (r, qty + *n, price + *n, 8);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_OPEN, "the 0.21 ask rests");
}

Test (engine, design_worked_example_ask_rule, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_ASK, CONFIG_MODE_CONTINUOUS);
    int64_t qty[8], price[8];
    int n;
    s_worked_example (qty, price, &n);
    cr_assert_eq (n, 3);
    cr_assert_eq (qty[0], KWH (50));
    cr_assert_eq (price[0], PRICE (0.18));
    cr_assert_eq (qty[1], KWH (50));
    cr_assert_eq (price[1], PRICE (0.19));
    cr_assert_eq (qty[2], KWH (25));
    cr_assert_eq (price[2], PRICE (0.19));
    cr_assert_eq (qty[0] + qty[1] + qty[2], KWH (125));
    //  Left: bid 0.19×25, bid 0.18×200, ask 0.21×100 — checked by what a sweep would meet.
    engine_order_t sweep = {.user = s_carol,
                            .side = PROTO_SIDE_SELL,
                            .type = PROTO_ORDER_TYPE_MARKET,
                            .tif = PROTO_TIF_IOC,
                            .qty = KWH (1000)};
    const engine_result_t *r = s_order (sweep);
    n = s_trades (r, qty, price, 8);
    cr_assert_eq (n, 2);
    cr_assert_eq (qty[0], KWH (25));
    cr_assert_eq (qty[1], KWH (200));
    cr_assert_eq (r->filled, KWH (225));
    sweep.side = PROTO_SIDE_BUY;
    r = s_order (sweep);
    n = s_trades (r, qty, price, 8);
    cr_assert_eq (n, 1);
    cr_assert_eq (qty[0], KWH (100));
    cr_assert_eq (price[0], PRICE (0.21));
}

Test (engine, design_worked_example_maker_rule, .fini = s_teardown)
{
    s_setup ();
    int64_t qty[8], price[8];
    int n;
    s_worked_example (qty, price, &n);
    cr_assert_eq (n, 3);
    cr_assert_eq (price[0], PRICE (0.20), "the resting bid's price");
    cr_assert_eq (price[1], PRICE (0.20));
    cr_assert_eq (price[2], PRICE (0.19));
    cr_assert_eq (qty[0] + qty[1] + qty[2], KWH (125));
}

Test (engine, mid_rule_rounds_down_to_the_tick, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_MID, CONFIG_MODE_CONTINUOUS);
    s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.21);
    int64_t qty[2], price[2];
    cr_assert_eq (s_trades (s_limit (s_bob, PROTO_SIDE_SELL, 1, 0.18), qty, price, 2), 1);
    cr_assert_eq (price[0], PRICE (0.19), "mid 0.195 rounded down to 0.19");
}

Test (engine, trade_events_carry_both_sides_and_value, .init = s_setup, .fini = s_teardown)
{
    s_limit (s_alice, PROTO_SIDE_SELL, 2.5, 0.15);
    const engine_result_t *r = s_limit (s_bob, PROTO_SIDE_BUY, 1, 0.16);
    const engine_event_t *t = s_find (r, ENGINE_EV_TRADE);
    cr_assert_not_null (t);
    cr_assert_eq (t->user, s_bob, "buyer");
    cr_assert_eq (t->user2, s_alice, "seller");
    cr_assert_eq (t->qty, 1000);
    cr_assert_eq (t->price, 150000);
    cr_assert_eq (t->value, 150000, "1 kWh × 0.15 = 0.15 = 150000 µ");
    cr_assert_eq (t->side, PROTO_SIDE_BUY, "the aggressor");
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_FILLED);
    cr_assert_eq (r->events[0].kind, ENGINE_EV_ACCEPTED, "accepted comes first");
    const engine_event_t *lvl = s_find (r, ENGINE_EV_LEVEL);
    cr_assert_eq (lvl->qty, 1500, "1.5 kWh left at the level");
    cr_assert_eq (lvl->count, 1);
}

Test (engine, price_time_priority, .init = s_setup, .fini = s_teardown)
{
    uint64_t first = s_limit (s_alice, PROTO_SIDE_SELL, 1, 0.15)->order_id;
    uint64_t second = s_limit (s_bob, PROTO_SIDE_SELL, 1, 0.15)->order_id;
    uint64_t better = s_limit (s_bob, PROTO_SIDE_SELL, 1, 0.14)->order_id;
    const engine_result_t *r = s_limit (s_carol, PROTO_SIDE_BUY, 2.5, 0.15);
    uint64_t sellers[3];
    int n = 0;
    for (uint32_t i = 0; i < r->event_count; i++)
        if (r->events[i].kind == ENGINE_EV_TRADE)
            sellers[n++] = r->events[i].order_id2;
    cr_assert_eq (n, 3);
    cr_assert_eq (sellers[0], better);
    cr_assert_eq (sellers[1], first);
    cr_assert_eq (sellers[2], second);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_FILLED);
}

Test (engine, every_reject_reason, .init = s_setup, .fini = s_teardown)
{
    struct {
        engine_order_t o;
        proto_reject_reason_t want;
    } cases[] = {
        {{.market = 7, .qty = 1000, .price = PRICE (0.1)}, PROTO_REJECT_REASON_UNKNOWN_MARKET},
        {{.epoch = EPOCH0 - 1, .qty = 1000, .price = PRICE (0.1)},
         PROTO_REJECT_REASON_EPOCH_CLOSED},
        {{.epoch = EPOCH0 + 3, .qty = 1000, .price = PRICE (0.1)},
         PROTO_REJECT_REASON_EPOCH_TOO_FAR},
        {{.qty = 0, .price = PRICE (0.1)}, PROTO_REJECT_REASON_BAD_QUANTITY},
        {{.qty = -5, .price = PRICE (0.1)}, PROTO_REJECT_REASON_BAD_QUANTITY},
        {{.qty = 2000000000000LL, .price = PRICE (0.1)}, PROTO_REJECT_REASON_BAD_QUANTITY},
        {{.qty = 0, .price = 0}, PROTO_REJECT_REASON_BAD_QUANTITY},
        {{.qty = 1000, .price = 0}, PROTO_REJECT_REASON_BAD_PRICE},
        {{.qty = 1000, .price = -PRICE (0.1)}, PROTO_REJECT_REASON_BAD_PRICE},
        {{.qty = 1000, .price = PRICE (0.105)}, PROTO_REJECT_REASON_OFF_TICK},
        {{.qty = 1000, .price = PRICE (200)}, PROTO_REJECT_REASON_OUTSIDE_BAND},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        engine_order_t o = cases[i].o;
        o.user = s_alice;
        o.side = PROTO_SIDE_BUY;
        o.type = PROTO_ORDER_TYPE_LIMIT;
        o.tif = PROTO_TIF_GTC;
        const engine_result_t *r = s_order (o);
        cr_assert (r->rejected, "case %zu accepted", i);
        cr_assert_eq (r->reason, cases[i].want, "case %zu: reason %d, expected %d", i, r->reason,
                      cases[i].want);
        cr_assert_eq (r->event_count, 1);
        cr_assert_eq (r->events[0].kind, ENGINE_EV_REJECTED, "a rejection is an event");
    }
    //  Off lot, with a lot of 1 kWh.
    engine_destroy (&s_e);
    mce_config_t cfg;
    char err[256];
    config_load (&cfg, NULL, err, sizeof err);
    cfg.markets[0].escrow = false;
    cfg.markets[0].lot = 1000;
    s_e = engine_new (&cfg);
    engine_advance (s_e, T0);
    const engine_result_t *r = s_order ((engine_order_t){.user = engine_user_intern (s_e, "alice"),
                                                         .side = PROTO_SIDE_BUY,
                                                         .type = PROTO_ORDER_TYPE_LIMIT,
                                                         .tif = PROTO_TIF_GTC,
                                                         .qty = 1500,
                                                         .price = PRICE (0.1)});
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_OFF_LOT);
    //  Unknown order, not the owner, paused, FOK, post-only: below, where they belong.
    r = engine_cancel (s_e, 0, 0, false, 999, T0);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_UNKNOWN_ORDER);
}

Test (engine, cancel_owner_admin_and_strangers, .init = s_setup, .fini = s_teardown)
{
    uint64_t id = s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.1)->order_id;
    const engine_result_t *r = engine_cancel (s_e, 0, s_bob, false, id, T0 + 2);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_NOT_OWNER);
    r = engine_cancel (s_e, 0, s_alice, false, id, T0 + 2);
    cr_assert (!r->rejected);
    const engine_event_t *c = s_find (r, ENGINE_EV_CANCELLED);
    cr_assert_eq (c->reason, PROTO_CANCEL_REASON_USER);
    cr_assert_eq (c->qty, 1000);
    cr_assert_eq (s_find (r, ENGINE_EV_LEVEL)->qty, 0, "the level is gone");
    r = engine_cancel (s_e, 0, s_alice, false, id, T0 + 2);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_UNKNOWN_ORDER, "cancelled once only");
    id = s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.1)->order_id;
    r = engine_cancel (s_e, 0, s_bob, true, id, T0 + 2);
    cr_assert_eq (s_find (r, ENGINE_EV_CANCELLED)->reason, PROTO_CANCEL_REASON_ADMIN);
    cr_assert_eq (s_find (r, ENGINE_EV_CANCELLED)->user2, s_bob, "who cancelled it");
}

Test (engine, ioc_fok_market_and_post_only, .init = s_setup, .fini = s_teardown)
{
    s_limit (s_alice, PROTO_SIDE_SELL, 1, 0.15);
    engine_order_t o = {.user = s_bob,
                        .side = PROTO_SIDE_BUY,
                        .type = PROTO_ORDER_TYPE_LIMIT,
                        .tif = PROTO_TIF_FOK,
                        .qty = KWH (2),
                        .price = PRICE (0.15)};
    const engine_result_t *r = s_order (o);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_FOK_UNFILLABLE, "only 1 of 2 kWh there");
    o.post_only = true, o.tif = PROTO_TIF_GTC;
    r = s_order (o);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_POST_ONLY_WOULD_CROSS);
    o.post_only = false, o.tif = PROTO_TIF_IOC;
    r = s_order (o);
    cr_assert_eq (r->filled, KWH (1));
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_CANCELLED);
    cr_assert_eq (s_find (r, ENGINE_EV_CANCELLED)->reason, PROTO_CANCEL_REASON_UNFILLED);
    cr_assert_eq (s_find (r, ENGINE_EV_CANCELLED)->qty, KWH (1));
    o.tif = PROTO_TIF_FOK, o.qty = KWH (1);
    s_limit (s_alice, PROTO_SIDE_SELL, 1, 0.15);
    r = s_order (o);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_FILLED, "FOK that can fill does");
    o.type = PROTO_ORDER_TYPE_MARKET, o.tif = PROTO_TIF_IOC, o.price = 0;
    r = s_order (o);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_CANCELLED, "a market order never rests");
    cr_assert_eq (r->filled, 0);
}

Test (engine, self_trade_prevention_modes, .init = s_setup, .fini = s_teardown)
{
    //  Default: the resting order of the same user is cancelled, matching goes on.
    uint64_t own = s_limit (s_alice, PROTO_SIDE_SELL, 1, 0.15)->order_id;
    s_limit (s_bob, PROTO_SIDE_SELL, 1, 0.16);
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.16);
    const engine_event_t *c = s_find (r, ENGINE_EV_CANCELLED);
    cr_assert_eq (c->order_id, own);
    cr_assert_eq (c->reason, PROTO_CANCEL_REASON_SELF_TRADE);
    cr_assert_eq (s_find (r, ENGINE_EV_TRADE)->user2, s_bob);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_FILLED);

    engine_set_stp (s_e, 0, ENGINE_STP_CANCEL_NEWEST);
    own = s_limit (s_alice, PROTO_SIDE_SELL, 1, 0.15)->order_id;
    r = s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.15);
    c = s_find (r, ENGINE_EV_CANCELLED);
    cr_assert_eq (c->order_id, r->order_id, "the newcomer goes");
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_CANCELLED);

    engine_set_stp (s_e, 0, ENGINE_STP_CANCEL_BOTH);
    r = s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.15);
    int cancels = 0;
    for (uint32_t i = 0; i < r->event_count; i++)
        cancels += r->events[i].kind == ENGINE_EV_CANCELLED;
    cr_assert_eq (cancels, 2, "both go");
    cr_assert_null (s_find (r, ENGINE_EV_TRADE));
    cr_assert_eq (engine_cancel (s_e, 0, s_alice, false, own, T0)->reason,
                  PROTO_REJECT_REASON_UNKNOWN_ORDER);
}

Test (engine, amend_keeps_priority_only_when_reducing, .init = s_setup, .fini = s_teardown)
{
    uint64_t a = s_limit (s_alice, PROTO_SIDE_SELL, 2, 0.15)->order_id;
    uint64_t b = s_limit (s_bob, PROTO_SIDE_SELL, 2, 0.15)->order_id;
    const engine_result_t *r = engine_amend (s_e, 0, s_alice, false, a, KWH (1), 0, T0 + 2);
    cr_assert_eq (s_find (r, ENGINE_EV_AMENDED)->flag, 1, "kept priority");
    cr_assert_eq (s_find (r, ENGINE_EV_LEVEL)->qty, KWH (3));
    r = s_limit (s_carol, PROTO_SIDE_BUY, 0.5, 0.15);
    cr_assert_eq (s_find (r, ENGINE_EV_TRADE)->order_id2, a, "alice still first");
    r = engine_amend (s_e, 0, s_alice, false, a, KWH (3), 0, T0 + 2);
    cr_assert_eq (s_find (r, ENGINE_EV_AMENDED)->flag, 0, "more quantity: back of the queue");
    r = s_limit (s_carol, PROTO_SIDE_BUY, 0.5, 0.15);
    cr_assert_eq (s_find (r, ENGINE_EV_TRADE)->order_id2, b, "bob first now");
    //  A new price loses priority and may trade.
    s_limit (s_carol, PROTO_SIDE_BUY, 1, 0.14);
    r = engine_amend (s_e, 0, s_bob, false, b, 0, PRICE (0.14), T0 + 2);
    cr_assert_not_null (s_find (r, ENGINE_EV_TRADE), "moved through the bid");
    cr_assert_eq (s_find (r, ENGINE_EV_TRADE)->price, PRICE (0.14));
    r = engine_amend (s_e, 0, s_bob, false, a, KWH (1), 0, T0 + 2);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_NOT_OWNER);
    r = engine_amend (s_e, 0, s_alice, false, a, KWH (1), PRICE (0.155), T0 + 2);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_OFF_TICK);
}

Test (engine, client_order_id_is_idempotent, .init = s_setup, .fini = s_teardown)
{
    engine_order_t o = {.user = s_alice,
                        .side = PROTO_SIDE_BUY,
                        .type = PROTO_ORDER_TYPE_LIMIT,
                        .tif = PROTO_TIF_GTC,
                        .qty = KWH (1),
                        .price = PRICE (0.1),
                        .client_order_id = "abc-1"};
    const engine_result_t *r = s_order (o);
    uint64_t id = r->order_id;
    cr_assert (!r->duplicate);
    r = s_order (o);
    cr_assert (r->duplicate);
    cr_assert_eq (r->order_id, id, "the first answer");
    cr_assert_eq (r->event_count, 0, "and nothing happens again");
    o.qty = KWH (2);
    r = s_order (o);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_DUPLICATE_CLIENT_ID);
    o.user = s_bob; //  ids are per user
    r = s_order (o);
    cr_assert (!r->rejected && !r->duplicate);
    //  A rejected first answer is remembered too.
    engine_order_t bad = o;
    bad.client_order_id = "abc-2", bad.price = PRICE (0.105);
    cr_assert_eq (s_order (bad)->reason, PROTO_REJECT_REASON_OFF_TICK);
    r = s_order (bad);
    cr_assert (r->duplicate && r->rejected);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_OFF_TICK);
}

Test (engine, pause_and_resume, .init = s_setup, .fini = s_teardown)
{
    uint64_t id = s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.1)->order_id;
    const engine_result_t *r =
        engine_control (s_e, 0, s_bob, false, PROTO_CONTROL_ACTION_PAUSE_TRADING, T0);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_NOT_ADMIN);
    r = engine_control (s_e, 0, s_bob, true, PROTO_CONTROL_ACTION_PAUSE_TRADING, T0);
    cr_assert_eq (s_find (r, ENGINE_EV_MARKET)->reason, PROTO_MARKET_STATUS_PAUSED);
    cr_assert_eq (s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.1)->reason,
                  PROTO_REJECT_REASON_MARKET_PAUSED);
    cr_assert (!engine_cancel (s_e, 0, s_alice, false, id, T0)->rejected, "cancels still work");
    engine_control (s_e, 0, s_bob, true, PROTO_CONTROL_ACTION_RESUME_TRADING, T0);
    cr_assert (!s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.1)->rejected);
}

Test (engine, epochs_open_close_and_expire_leftovers, .init = s_setup, .fini = s_teardown)
{
    //  Orders for the current epoch and the next one.
    engine_order_t o = {.user = s_alice,
                        .side = PROTO_SIDE_BUY,
                        .type = PROTO_ORDER_TYPE_LIMIT,
                        .tif = PROTO_TIF_GTC,
                        .qty = KWH (1),
                        .price = PRICE (0.1)};
    uint64_t now_id = s_order (o)->order_id;
    o.epoch = EPOCH0 + 1;
    const engine_result_t *r = s_order (o);
    cr_assert_eq (r->epoch, EPOCH0 + 1);
    uint64_t next_id = r->order_id;
    //  The epoch ends.
    r = engine_advance (s_e, T0 + 900LL * 1000000000LL);
    const engine_event_t *x = s_find (r, ENGINE_EV_EXPIRED);
    cr_assert_not_null (x);
    cr_assert_eq (x->order_id, now_id);
    cr_assert_eq (x->reason, PROTO_EXPIRE_REASON_EPOCH_CLOSE);
    int cleared = 0, active = 0, pending = 0;
    for (uint32_t i = 0; i < r->event_count; i++)
        if (r->events[i].kind == ENGINE_EV_EPOCH) {
            cleared +=
                r->events[i].reason == PROTO_EPOCH_PHASE_CLEARED && r->events[i].epoch == EPOCH0;
            active +=
                r->events[i].reason == PROTO_EPOCH_PHASE_ACTIVE && r->events[i].epoch == EPOCH0 + 1;
            pending += r->events[i].reason == PROTO_EPOCH_PHASE_PENDING &&
                       r->events[i].epoch == EPOCH0 + 3;
        }
    cr_assert_eq (cleared, 1);
    cr_assert_eq (active, 1);
    cr_assert_eq (pending, 1, "a new epoch comes into the window");
    cr_assert (
        !engine_cancel (s_e, 0, s_alice, false, next_id, T0 + 900LL * 1000000000LL)->rejected,
        "the next epoch's order is still there");
    o.epoch = EPOCH0;
    cr_assert_eq (engine_new_order (s_e, &o, T0 + 900LL * 1000000000LL)->reason,
                  PROTO_REJECT_REASON_EPOCH_CLOSED);
}

Test (engine, expires_at_is_honoured, .init = s_setup, .fini = s_teardown)
{
    engine_order_t o = {.user = s_alice,
                        .side = PROTO_SIDE_SELL,
                        .type = PROTO_ORDER_TYPE_LIMIT,
                        .tif = PROTO_TIF_GTC,
                        .qty = KWH (1),
                        .price = PRICE (0.1),
                        .expires_at = T0 + 100};
    uint64_t id = s_order (o)->order_id;
    //  Not yet matched, but past its time when a buyer comes: it expires instead of trading.
    engine_order_t buy = {.user = s_bob,
                          .side = PROTO_SIDE_BUY,
                          .type = PROTO_ORDER_TYPE_LIMIT,
                          .tif = PROTO_TIF_IOC,
                          .qty = KWH (1),
                          .price = PRICE (0.1)};
    const engine_result_t *r = engine_new_order (s_e, &buy, T0 + 200);
    cr_assert_null (s_find (r, ENGINE_EV_TRADE));
    cr_assert_eq (s_find (r, ENGINE_EV_EXPIRED)->order_id, id);
    //  And on the clock, without anyone trading.
    o.expires_at = T0 + 300;
    id = s_order (o)->order_id;
    r = engine_advance (s_e, T0 + 299);
    cr_assert_null (s_find (r, ENGINE_EV_EXPIRED));
    r = engine_advance (s_e, T0 + 300);
    cr_assert_eq (s_find (r, ENGINE_EV_EXPIRED)->order_id, id);
    cr_assert_eq (s_find (r, ENGINE_EV_EXPIRED)->reason, PROTO_EXPIRE_REASON_EXPIRES_AT);
}

Test (engine, the_state_hash_follows_the_state, .fini = s_teardown)
{
    s_setup ();
    uint64_t empty = engine_state_hash (s_e);
    s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.1);
    uint64_t one = engine_state_hash (s_e);
    cr_assert_neq (one, empty);
    engine_t *first = s_e;
    s_setup (); //  a second engine, the same commands
    s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.1);
    cr_assert_eq (engine_state_hash (s_e), one, "same commands, same hash");
    engine_destroy (&first);
}

//  ------------------------------------------------------------------------------------------
//  Auction mode: orders rest, the epoch's close clears them at one price.

static int s_count (const engine_result_t *r, engine_event_kind_t kind)
{
    int n = 0;
    for (uint32_t i = 0; i < r->event_count; i++)
        n += r->events[i].kind == kind;
    return n;
}

//  The cleared epoch's event among a result's, or NULL.
static const engine_event_t *s_cleared (const engine_result_t *r)
{
    for (uint32_t i = 0; i < r->event_count; i++)
        if (r->events[i].kind == ENGINE_EV_EPOCH &&
            r->events[i].reason == PROTO_EPOCH_PHASE_CLEARED)
            return &r->events[i];
    return NULL;
}

Test (engine, auction_clears_at_gate_closure_at_one_price, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_AUCTION);
    //  Crossing orders rest: nothing trades before the gate closes.
    cr_assert_eq (s_count (s_limit (s_alice, PROTO_SIDE_BUY, 100, 0.20), ENGINE_EV_TRADE), 0);
    s_limit (s_alice, PROTO_SIDE_BUY, 50, 0.19);
    s_limit (s_alice, PROTO_SIDE_BUY, 200, 0.18);
    s_limit (s_bob, PROTO_SIDE_SELL, 50, 0.18);
    s_limit (s_bob, PROTO_SIDE_SELL, 75, 0.19);
    cr_assert_eq (s_count (s_limit (s_bob, PROTO_SIDE_SELL, 100, 0.21), ENGINE_EV_TRADE), 0);
    const engine_result_t *r = engine_advance (s_e, T0 + 900LL * 1000000000LL);
    //  D(0.19) = 150, S(0.19) = 125: volume 125 at 0.19 (0.18: 50; 0.20: 100; 0.21: 100).
    int64_t volume = 0;
    for (uint32_t i = 0; i < r->event_count; i++)
        if (r->events[i].kind == ENGINE_EV_TRADE) {
            cr_assert_eq (r->events[i].price, PRICE (0.19), "one price for all");
            cr_assert_eq (r->events[i].side, 0, "an auction has no aggressor");
            volume += r->events[i].qty;
        }
    cr_assert_eq (volume, KWH (125));
    const engine_event_t *cleared = s_cleared (r);
    cr_assert_not_null (cleared);
    cr_assert_eq (cleared->price, PRICE (0.19), "the clearing price");
    cr_assert_eq (cleared->qty, KWH (125));
    //  Leftovers: bid 0.19×25, bid 0.18×200, ask 0.21×100 expire with the epoch.
    cr_assert_eq (s_count (r, ENGINE_EV_EXPIRED), 3);
    cr_assert_eq (engine_resting (s_e), 0);
}

Test (engine, auction_trigger_matching_and_ioc, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_AUCTION);
    s_limit (s_alice, PROTO_SIDE_BUY, 10, 0.20);
    engine_order_t ioc = {.user = s_carol,
                          .side = PROTO_SIDE_BUY,
                          .type = PROTO_ORDER_TYPE_LIMIT,
                          .tif = PROTO_TIF_IOC,
                          .qty = KWH (5),
                          .price = PRICE (0.10)};
    s_order (ioc);
    s_limit (s_bob, PROTO_SIDE_SELL, 4, 0.15);
    engine_order_t fok = ioc;
    fok.tif = PROTO_TIF_FOK;
    cr_assert_eq (s_order (fok)->reason, PROTO_REJECT_REASON_FOK_UNFILLABLE,
                  "FOK has no meaning in a call auction");
    const engine_result_t *r =
        engine_control (s_e, 0, s_carol, true, PROTO_CONTROL_ACTION_TRIGGER_MATCHING, T0 + 5);
    cr_assert_eq (s_count (r, ENGINE_EV_TRADE), 1);
    const engine_event_t *c = s_find (r, ENGINE_EV_CANCELLED);
    cr_assert_not_null (c, "the IOC bid took part in one auction only");
    cr_assert_eq (c->reason, PROTO_CANCEL_REASON_UNFILLED);
    cr_assert_eq (engine_resting (s_e), 1, "alice's bid rests on with 6 kWh");
}

Test (engine, pay_as_bid_pays_each_bid_its_price, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_PAY_AS_BID);
    s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.20);
    s_limit (s_carol, PROTO_SIDE_BUY, 1, 0.18);
    s_limit (s_bob, PROTO_SIDE_SELL, 2, 0.10);
    const engine_result_t *r = engine_advance (s_e, T0 + 900LL * 1000000000LL);
    int64_t qty[4], price[4];
    cr_assert_eq (s_trades (r, qty, price, 4), 2);
    cr_assert_eq (price[0], PRICE (0.20));
    cr_assert_eq (price[1], PRICE (0.18));
}

Test (engine, self_trade_rule_and_marginal_rule_come_from_the_config, .fini = s_teardown)
{
    mce_config_t cfg;
    char err[256];
    cr_assert_eq (config_load_text (&cfg,
                                    "markets = ( { id = \"m\"; tick = \"0.01\"; "
                                    "stp = \"cancel_newest\"; escrow = false; } );",
                                    err, sizeof err),
                  0, "%s", err);
    s_e = engine_new (&cfg);
    s_alice = engine_user_intern (s_e, "alice");
    engine_advance (s_e, T0);
    s_limit (s_alice, PROTO_SIDE_SELL, 1, 0.15);
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 1, 0.15);
    cr_assert_eq (s_find (r, ENGINE_EV_CANCELLED)->order_id, r->order_id, "the newcomer goes");
}

//  ------------------------------------------------------------------------------------------
//  Snapshots: restore gives the same state, and the same future.

Test (engine, snapshot_restore_gives_the_same_state_and_future, .fini = s_teardown)
{
    s_setup ();
    for (int i = 0; i < 50; i++) {
        engine_order_t o = {.user = i % 2 ? s_alice : s_bob,
                            .side = i % 3 ? PROTO_SIDE_BUY : PROTO_SIDE_SELL,
                            .type = PROTO_ORDER_TYPE_LIMIT,
                            .tif = PROTO_TIF_GTC,
                            .qty = KWH (1 + i % 4),
                            .price = PRICE (0.10 + 0.01 * (i % 7)),
                            .expires_at = i % 5 ? 0 : T0 + 1000 + i,
                            .epoch = i % 4 == 0 ? EPOCH0 + 1 : 0,
                            .client_order_id = i % 3 ? NULL : (i % 2 ? "a" : "b")};
        s_order (o);
    }
    engine_control (s_e, 0, s_carol, true, PROTO_CONTROL_ACTION_PAUSE_TRADING, T0 + 2);
    size_t size;
    uint8_t *snap = engine_snapshot (s_e, &size);
    cr_assert_not_null (snap);
    mce_config_t cfg = s_config (CONFIG_PRICE_MAKER, CONFIG_MODE_CONTINUOUS);
    engine_t *copy = engine_new (&cfg);
    cr_assert_eq (engine_restore (copy, snap, size), 0);
    cr_assert_eq (engine_state_hash (copy), engine_state_hash (s_e));
    cr_assert_eq (engine_resting (copy), engine_resting (s_e));
    //  The same commands after it make the same events in both.
    engine_t *both[2] = {s_e, copy};
    uint64_t hashes[2];
    uint32_t counts[2];
    for (int k = 0; k < 2; k++) {
        engine_control (both[k], 0, 2, true, PROTO_CONTROL_ACTION_RESUME_TRADING, T0 + 3);
        engine_order_t o = {.user = engine_user_intern (both[k], "carol"),
                            .side = PROTO_SIDE_SELL,
                            .type = PROTO_ORDER_TYPE_MARKET,
                            .tif = PROTO_TIF_IOC,
                            .qty = KWH (30)};
        counts[k] = engine_new_order (both[k], &o, T0 + 4)->event_count;
        o.client_order_id = "a"; //  alice's and bob's ids live on; carol's is new
        engine_new_order (both[k], &o, T0 + 4);
        counts[k] += engine_advance (both[k], T0 + 900LL * 1000000000LL)->event_count;
        hashes[k] = engine_state_hash (both[k]);
    }
    cr_assert_eq (counts[0], counts[1]);
    cr_assert_gt (counts[0], 10);
    cr_assert_eq (hashes[0], hashes[1]);
    //  A snapshot cut short is refused and leaves an empty engine.
    cr_assert_eq (engine_restore (copy, snap, size - 9), -1);
    cr_assert_eq (engine_resting (copy), 0);
    free (snap);
    engine_destroy (&copy);
}

//  The grid as backstop: import 0.30, feed-in 0.05, its user "grid".
static uint32_t s_setup_grid (int mode)
{
    mce_config_t cfg;
    char err[256];
    cr_assert_eq (config_load (&cfg, NULL, err, sizeof err), 0);
    cfg.markets[0].escrow = false;
    cfg.markets[0].tick = PRICE (0.01);
    cfg.markets[0].mode = mode;
    cfg.markets[0].future_epochs = 2;
    cfg.markets[0].grid_import_price = PRICE (0.30);
    cfg.markets[0].grid_feed_in_price = PRICE (0.05);
    s_e = engine_new (&cfg);
    s_alice = engine_user_intern (s_e, "alice");
    s_bob = engine_user_intern (s_e, "bob");
    s_carol = engine_user_intern (s_e, "carol");
    engine_advance (s_e, T0);
    return engine_user_intern (s_e, "grid");
}

//  The i-th trade of a result.
static const engine_event_t *s_trade (const engine_result_t *r, int i)
{
    for (uint32_t k = 0; k < r->event_count; k++)
        if (r->events[k].kind == ENGINE_EV_TRADE && i-- == 0)
            return &r->events[k];
    return NULL;
}

Test (engine, continuous_grid_stands_at_the_edges_of_the_book, .fini = s_teardown)
{
    uint32_t grid = s_setup_grid (CONFIG_MODE_CONTINUOUS);
    s_limit (s_bob, PROTO_SIDE_SELL, 10, 0.25);
    s_limit (s_bob, PROTO_SIDE_SELL, 10, 0.35); //  above the import price: the grid is cheaper
    //  alice takes bob's 0.25 first, then the grid's import price for the rest
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 15, 0.40);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_FILLED);
    const engine_event_t *t = s_trade (r, 0);
    cr_assert (t && t->qty == KWH (10) && t->price == PRICE (0.25) && t->flag == 0);
    t = s_trade (r, 1);
    cr_assert_not_null (t);
    cr_assert_eq (t->qty, KWH (5));
    cr_assert_eq (t->price, PRICE (0.30), "the grid sells at its import price");
    cr_assert_eq (t->flag, PROTO_SIDE_SELL, "the grid is the seller");
    cr_assert_eq (t->user2, grid);
    cr_assert_eq (t->order_id2, 0, "the grid has no order");
    cr_assert_eq (t->side, PROTO_SIDE_BUY, "alice was the aggressor");
    cr_assert_null (s_trade (r, 2));

    //  a market buy into a book with only an ask above the import price: the grid
    engine_order_t market = {.user = s_carol,
                             .side = PROTO_SIDE_BUY,
                             .type = PROTO_ORDER_TYPE_MARKET,
                             .tif = PROTO_TIF_IOC,
                             .qty = KWH (7)};
    r = s_order (market);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_FILLED);
    cr_assert_eq (s_trade (r, 0)->price, PRICE (0.30));
    cr_assert_eq (engine_resting (s_e), 1, "bob's ask at 0.35 still rests");

    //  a sell below the feed-in price, with no bid: the grid buys at its feed-in price
    r = s_limit (s_bob, PROTO_SIDE_SELL, 8, 0.02);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_FILLED);
    t = s_trade (r, 0);
    cr_assert (t && t->qty == KWH (8) && t->price == PRICE (0.05));
    cr_assert_eq (t->flag, PROTO_SIDE_BUY, "the grid is the buyer");
    cr_assert_eq (t->user, grid);
    cr_assert_eq (t->order_id, 0);

    //  between the tariffs an order rests as usual; one that would meet the grid cannot
    cr_assert_eq (s_limit (s_alice, PROTO_SIDE_BUY, 3, 0.20)->status, PROTO_ORDER_STATUS_OPEN);
    engine_order_t post = {.user = s_alice,
                           .side = PROTO_SIDE_BUY,
                           .type = PROTO_ORDER_TYPE_LIMIT,
                           .tif = PROTO_TIF_GTC,
                           .post_only = true,
                           .qty = KWH (1),
                           .price = PRICE (0.30)};
    cr_assert_eq (s_order (post)->reason, PROTO_REJECT_REASON_POST_ONLY_WOULD_CROSS);
    engine_order_t fok = post;
    fok.post_only = false;
    fok.tif = PROTO_TIF_FOK;
    fok.qty = KWH (900);
    cr_assert_eq (s_order (fok)->status, PROTO_ORDER_STATUS_FILLED, "the grid fills any FOK");

    //  the grid's user trades only as the grid
    cr_assert_eq (s_limit (grid, PROTO_SIDE_SELL, 1, 0.10)->reason, PROTO_REJECT_REASON_GRID_USER);
}

Test (engine, auction_grid_serves_what_prosumers_cannot, .fini = s_teardown)
{
    uint32_t grid = s_setup_grid (CONFIG_MODE_AUCTION);
    s_limit (s_alice, PROTO_SIDE_BUY, 30, 0.40);
    s_limit (s_carol, PROTO_SIDE_BUY, 40, 0.25); //  will not pay the import price
    s_limit (s_bob, PROTO_SIDE_SELL, 10, 0.20);
    //  D (0.30) = 30, S (0.30) = 10: V = D = 30 at the import price, the grid sells 20
    const engine_result_t *r = engine_advance (s_e, T0 + 900LL * 1000000000LL);
    int64_t from_grid = 0, volume = 0;
    for (uint32_t i = 0; i < r->event_count; i++) {
        const engine_event_t *t = &r->events[i];
        if (t->kind != ENGINE_EV_TRADE)
            continue;
        cr_assert_eq (t->price, PRICE (0.30));
        cr_assert_eq (t->side, 0, "an auction has no aggressor");
        cr_assert_eq (t->user, s_alice);
        volume += t->qty;
        if (t->flag == PROTO_SIDE_SELL) {
            cr_assert_eq (t->user2, grid);
            cr_assert_eq (t->order_id2, 0);
            from_grid += t->qty;
        }
    }
    cr_assert_eq (volume, KWH (30));
    cr_assert_eq (from_grid, KWH (20));
}

//  Every auction publishes its own result; the cleared epoch repeats the gate closure's price,
//  D and S, and sums the epoch: volume, trades and value over every auction it had.
Test (engine, every_auction_has_its_own_result, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_AUCTION);
    s_limit (s_alice, PROTO_SIDE_BUY, 10, 0.20);
    s_limit (s_bob, PROTO_SIDE_SELL, 4, 0.10);
    //  the trigger: D (0.10) = 10, S = 4 and D (0.20) = 10, S = 4: [0.10, 0.20], price 0.15
    const engine_result_t *r =
        engine_control (s_e, 0, s_carol, true, PROTO_CONTROL_ACTION_TRIGGER_MATCHING, T0 + 5);
    cr_assert_eq (r->epoch, EPOCH0, "the control names the epoch it acted on");
    const engine_event_t *a = s_find (r, ENGINE_EV_AUCTION);
    cr_assert_not_null (a, "a triggered auction publishes its result");
    cr_assert_eq (a->flag, 1, "triggered");
    cr_assert_eq (a->price, PRICE (0.15));
    cr_assert_eq (a->qty, KWH (4));
    cr_assert_eq (a->count, 1);
    cr_assert_eq (a->demand, KWH (10));
    cr_assert_eq (a->supply, KWH (4));
    //  then at gate closure: alice's 6 left at 0.20 against carol's 6 at 0.18: price 0.19
    s_limit (s_carol, PROTO_SIDE_SELL, 6, 0.18);
    r = engine_advance (s_e, T0 + 900LL * 1000000000LL);
    a = s_find (r, ENGINE_EV_AUCTION);
    cr_assert_not_null (a);
    cr_assert_eq (a->flag, 0, "gate closure");
    cr_assert_eq (a->price, PRICE (0.19));
    cr_assert_eq (a->qty, KWH (6));
    const engine_event_t *cleared = s_cleared (r);
    cr_assert_not_null (cleared);
    cr_assert_eq (cleared->price, PRICE (0.19), "the gate closure's price");
    cr_assert_eq (cleared->demand, KWH (6));
    cr_assert_eq (cleared->supply, KWH (6));
    cr_assert_eq (cleared->qty, KWH (10), "both auctions' volume");
    cr_assert_eq (cleared->count, 2);
    //  4 kWh at 0.15 (600 000 µ) and 6 at 0.19 (1 140 000 µ)
    cr_assert_eq (cleared->value, 600000 + 1140000);
}

//  --------------------------------------------------------------------------------------
//  The indicative clearing: from engine_advance, at most once per indicative_ms (1 s by
//  default) and only after the book changed.

#define MS(x) ((int64_t) (x) *1000000LL)

//  docs/clearing.md's worked example in an auction market (tick 0.01, lot 0.001 kWh here).
static void s_readme_book (void)
{
    engine_order_t mkt = {.side = PROTO_SIDE_BUY,
                          .type = PROTO_ORDER_TYPE_MARKET,
                          .tif = PROTO_TIF_GTC,
                          .qty = KWH (20),
                          .user = engine_user_intern (s_e, "b1")};
    s_order (mkt);
    static const struct {
        const char *user;
        proto_side_t side;
        double kwh, price;
    } rows[] = {{"b2", PROTO_SIDE_BUY, 30, 0.21},  {"b3", PROTO_SIDE_BUY, 30, 0.18},
                {"b4", PROTO_SIDE_BUY, 25, 0.18},  {"b5", PROTO_SIDE_BUY, 15, 0.16},
                {"a2", PROTO_SIDE_SELL, 50, 0.15}, {"a3", PROTO_SIDE_SELL, 30, 0.17},
                {"a4", PROTO_SIDE_SELL, 40, 0.19}, {"a5", PROTO_SIDE_SELL, 20, 0.22}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        s_limit (engine_user_intern (s_e, rows[i].user), rows[i].side, rows[i].kwh, rows[i].price);
    mkt.side = PROTO_SIDE_SELL;
    mkt.qty = KWH (10);
    mkt.user = engine_user_intern (s_e, "a1");
    s_order (mkt);
}

Test (engine, indicative_is_what_the_auction_then_does, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_AUCTION);
    s_readme_book ();
    const engine_result_t *r = engine_advance (s_e, T0 + MS (10));
    cr_assert_not_null (s_find (r, ENGINE_EV_INDICATIVE),
                        "a changed book gets its indicative clearing");
    const engine_event_t indicated = *s_find (r, ENGINE_EV_INDICATIVE), *x = &indicated;
    cr_assert_eq (x->epoch, EPOCH0);
    cr_assert_eq (x->price, PRICE (0.17));
    cr_assert_eq (x->qty, KWH (90));
    cr_assert_eq (x->demand, KWH (105));
    cr_assert_eq (x->supply, KWH (90));
    cr_assert_eq (x->side, PROTO_SIDE_BUY, "15 kWh of bids are left unmatched");
    cr_assert_eq (x->value, KWH (15));
    cr_assert_eq (x->grid, 0);
    //  nothing changes: the gate closure's auction is what was indicated
    r = engine_advance (s_e, T0 + 900LL * 1000000000LL);
    const engine_event_t *a = s_find (r, ENGINE_EV_AUCTION);
    cr_assert_not_null (a);
    cr_assert_eq (a->price, x->price);
    cr_assert_eq (a->qty, x->qty);
    cr_assert_eq (a->demand, x->demand);
    cr_assert_eq (a->supply, x->supply);
    cr_assert_null (s_find (r, ENGINE_EV_INDICATIVE), "a cleared book has none");
}

Test (engine, indicative_is_throttled_and_follows_changes, .fini = s_teardown)
{
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_AUCTION);
    cr_assert_null (s_find (engine_advance (s_e, T0 + MS (1)), ENGINE_EV_INDICATIVE),
                    "an empty market indicates nothing");
    s_limit (s_alice, PROTO_SIDE_BUY, 10, 0.20);
    const engine_event_t *x = s_find (engine_advance (s_e, T0 + MS (2)), ENGINE_EV_INDICATIVE);
    cr_assert_not_null (x);
    cr_assert_eq (x->price, 0, "one side alone does not cross");
    cr_assert_eq (x->side, 0);
    s_limit (s_bob, PROTO_SIDE_SELL, 4, 0.10);
    cr_assert_null (s_find (engine_advance (s_e, T0 + MS (500)), ENGINE_EV_INDICATIVE),
                    "within indicative_ms of the last one");
    x = s_find (engine_advance (s_e, T0 + MS (1002)), ENGINE_EV_INDICATIVE);
    cr_assert_not_null (x, "due again, and the book changed");
    cr_assert_eq (x->price, PRICE (0.15));
    cr_assert_eq (x->qty, KWH (4));
    cr_assert_eq (x->side, PROTO_SIDE_BUY);
    cr_assert_eq (x->value, KWH (6));
    cr_assert_null (s_find (engine_advance (s_e, T0 + MS (5000)), ENGINE_EV_INDICATIVE),
                    "nothing changed since");
    //  a book for a later epoch has its own
    engine_order_t later = {.user = s_carol,
                            .side = PROTO_SIDE_SELL,
                            .type = PROTO_ORDER_TYPE_LIMIT,
                            .tif = PROTO_TIF_GTC,
                            .qty = KWH (1),
                            .price = PRICE (0.30),
                            .epoch = EPOCH0 + 1};
    s_order (later);
    x = s_find (engine_advance (s_e, T0 + MS (6000)), ENGINE_EV_INDICATIVE);
    cr_assert_not_null (x);
    cr_assert_eq (x->epoch, EPOCH0 + 1);
}

Test (engine, indicative_state_survives_a_snapshot, .fini = s_teardown)
{
    //  changed but not yet due when the snapshot is taken: the copy must indicate when the
    //  original does, as recovery replays the journal's clock after a snapshot
    s_setup_with (CONFIG_PRICE_MAKER, CONFIG_MODE_AUCTION);
    s_limit (s_alice, PROTO_SIDE_BUY, 10, 0.20);
    engine_advance (s_e, T0 + MS (2));
    s_limit (s_bob, PROTO_SIDE_SELL, 4, 0.10);
    size_t size;
    uint8_t *snap = engine_snapshot (s_e, &size);
    mce_config_t cfg = s_config (CONFIG_PRICE_MAKER, CONFIG_MODE_AUCTION);
    engine_t *copy = engine_new (&cfg);
    cr_assert_eq (engine_restore (copy, snap, size), 0);
    free (snap);
    engine_t *both[2] = {s_e, copy};
    for (int k = 0; k < 2; k++) {
        cr_assert_null (s_find (engine_advance (both[k], T0 + MS (500)), ENGINE_EV_INDICATIVE),
                        "engine %d: not due yet", k);
        const engine_event_t *x =
            s_find (engine_advance (both[k], T0 + MS (1002)), ENGINE_EV_INDICATIVE);
        cr_assert_not_null (x, "engine %d: due, and the book changed", k);
        cr_assert_eq (x->price, PRICE (0.15));
    }
    engine_destroy (&copy);
}

//  A continuous epoch has no clearing price: its cleared event carries the value traded (the
//  average price is value / volume) and no auction result.
Test (engine, continuous_epochs_report_value_not_a_clearing_price, .init = s_setup,
      .fini = s_teardown)
{
    s_limit (s_bob, PROTO_SIDE_SELL, 5, 0.10);
    s_limit (s_bob, PROTO_SIDE_SELL, 5, 0.30);
    s_limit (s_alice, PROTO_SIDE_BUY, 10, 0.30);
    const engine_result_t *r = engine_advance (s_e, T0 + 900LL * 1000000000LL);
    cr_assert_null (s_find (r, ENGINE_EV_AUCTION));
    const engine_event_t *cleared = s_cleared (r);
    cr_assert_not_null (cleared);
    cr_assert_eq (cleared->price, 0, "no auction, no clearing price");
    cr_assert_eq (cleared->qty, KWH (10));
    cr_assert_eq (cleared->count, 2);
    cr_assert_eq (cleared->value, 500000 + 1500000);
}
