/*  test_readmodel — the gateway's read model, fed hand-built matcher events the way the bus
    delivers them (in seq order), and asked the API's questions.

    Every event gets the next seq from s_apply, so the tests read as the story of a market:
    orders accepted, levels changing, trades, cancels, epochs closing. Answers are checked
    as the JSON a client would see: strings for decimals, ids and times.
*/
#include "clock.h"
#include "readmodel.h"

#include <criterion/criterion.h>
#include <string.h>

#define KWH(x)   ((int64_t) ((x) *1000 + 0.5))    //  test literals only: kWh → Wh
#define PRICE(x) ((int64_t) ((x) *1000000 + 0.5)) //  test literals only: per kWh → µ
#define MIN_NS   (60 * MCE_NS_PER_SEC)
#define HOUR_NS  (60 * MIN_NS)
//  2026-01-01T00:00:00Z, the start of epoch 1 963 584 (900 s epochs).
#define T0     (1767225600LL * MCE_NS_PER_SEC)
#define EPOCH0 1963584LL
#define EP_NS  (900 * MCE_NS_PER_SEC)
#define MKT    "campus-1"
#define MKT2   "campus-2"
#define BUY    PROTO_SIDE_BUY
#define SELL   PROTO_SIDE_SELL

static mce_config_t s_cfg;
static readmodel_t *s_rm;
static uint64_t s_seq;

static void s_setup_limits (const readmodel_limits_t *limits)
{
    char err[256];
    cr_assert_eq (config_load_text (&s_cfg,
                                    "markets = ( { id = \"" MKT "\"; }, { id = \"" MKT2 "\"; } );",
                                    err, sizeof err),
                  0, "%s", err);
    s_rm = limits ? readmodel_new_limits (&s_cfg, limits) : readmodel_new (&s_cfg);
    cr_assert (s_rm);
    s_seq = 0;
}

static void s_setup (void)
{
    s_setup_limits (NULL);
}

static void s_teardown (void)
{
    readmodel_destroy (&s_rm);
    cr_assert_null (s_rm);
}

//  ---------------------------------------------------------------------------------------
//  Events, as the matcher would publish them

static void s_apply (proto_msg_t msg)
{
    switch (msg.kind) {
        case PROTO_order_accepted:
            msg.order_accepted.seq = ++s_seq;
            break;
        case PROTO_trade:
            msg.trade.seq = ++s_seq;
            break;
        case PROTO_order_cancelled:
            msg.order_cancelled.seq = ++s_seq;
            break;
        case PROTO_order_expired:
            msg.order_expired.seq = ++s_seq;
            break;
        case PROTO_order_amended:
            msg.order_amended.seq = ++s_seq;
            break;
        case PROTO_book_level:
            msg.book_level.seq = ++s_seq;
            break;
        case PROTO_epoch_state:
            msg.epoch_state.seq = ++s_seq;
            break;
        case PROTO_market_state:
            msg.market_state.seq = ++s_seq;
            break;
        case PROTO_order_rejected:
            msg.order_rejected.seq = ++s_seq;
            break;
        case PROTO_balance:
            msg.balance.seq = ++s_seq;
            break;
        default:
            break;
    }
    readmodel_apply (s_rm, &msg);
}

static void s_accept_full (const char *market, int64_t epoch, uint64_t id, const char *user,
                           const char *coid, proto_side_t side, double kwh, double price,
                           int64_t ts)
{
    proto_msg_t m = {.kind = PROTO_order_accepted};
    proto_order_accepted_t *a = &m.order_accepted;
    snprintf (a->market, sizeof a->market, "%s", market);
    snprintf (a->user, sizeof a->user, "%s", user);
    snprintf (a->client_order_id, sizeof a->client_order_id, "%s", coid ? coid : "");
    snprintf (a->source, sizeof a->source, "solar");
    a->ts = ts;
    a->epoch = epoch;
    a->order_id = id;
    a->side = side;
    a->type = price > 0 ? PROTO_ORDER_TYPE_LIMIT : PROTO_ORDER_TYPE_MARKET;
    a->tif = PROTO_TIF_GTC;
    a->qty = KWH (kwh);
    a->price = PRICE (price);
    s_apply (m);
}

static void s_accept (uint64_t id, const char *user, proto_side_t side, double kwh, double price)
{
    s_accept_full (MKT, EPOCH0, id, user, NULL, side, kwh, price, T0 + 1);
}

static void s_level_in (const char *market, int64_t epoch, proto_side_t side, double price,
                        double kwh, uint32_t count)
{
    proto_msg_t m = {.kind = PROTO_book_level};
    proto_book_level_t *l = &m.book_level;
    snprintf (l->market, sizeof l->market, "%s", market);
    l->ts = T0 + 1;
    l->epoch = epoch;
    l->side = side;
    l->price = PRICE (price);
    l->qty = KWH (kwh);
    l->count = count;
    s_apply (m);
}

static void s_level (proto_side_t side, double price, double kwh, uint32_t count)
{
    s_level_in (MKT, EPOCH0, side, price, kwh, count);
}

static void s_trade_at (uint64_t tid, uint64_t buy_id, uint64_t sell_id, const char *buyer,
                        const char *seller, double kwh, double price, int64_t ts)
{
    proto_msg_t m = {.kind = PROTO_trade};
    proto_trade_t *t = &m.trade;
    snprintf (t->market, sizeof t->market, "%s", MKT);
    snprintf (t->buyer, sizeof t->buyer, "%s", buyer);
    snprintf (t->seller, sizeof t->seller, "%s", seller);
    t->ts = ts;
    t->epoch = EPOCH0;
    t->trade_id = tid;
    t->buy_order_id = buy_id;
    t->sell_order_id = sell_id;
    t->qty = KWH (kwh);
    t->price = PRICE (price);
    t->value = t->qty * t->price / 1000; //  exact for the literals used here
    t->aggressor = BUY;
    s_apply (m);
}

static void s_trade (uint64_t tid, uint64_t buy_id, uint64_t sell_id, double kwh, double price)
{
    s_trade_at (tid, buy_id, sell_id, "alice", "bob", kwh, price, T0 + 2);
}

static void s_cancel (uint64_t id, const char *user, double left_kwh)
{
    proto_msg_t m = {.kind = PROTO_order_cancelled};
    proto_order_cancelled_t *c = &m.order_cancelled;
    snprintf (c->market, sizeof c->market, "%s", MKT);
    snprintf (c->user, sizeof c->user, "%s", user);
    c->ts = T0 + 3;
    c->epoch = EPOCH0;
    c->order_id = id;
    c->remaining = KWH (left_kwh);
    c->reason = PROTO_CANCEL_REASON_USER;
    s_apply (m);
}

static void s_expire (uint64_t id, const char *user, double left_kwh)
{
    proto_msg_t m = {.kind = PROTO_order_expired};
    proto_order_expired_t *x = &m.order_expired;
    snprintf (x->market, sizeof x->market, "%s", MKT);
    snprintf (x->user, sizeof x->user, "%s", user);
    x->ts = T0 + EP_NS;
    x->epoch = EPOCH0;
    x->order_id = id;
    x->remaining = KWH (left_kwh);
    x->reason = PROTO_EXPIRE_REASON_EPOCH_CLOSE;
    s_apply (m);
}

static void s_amend (uint64_t id, const char *user, double remaining_kwh, double price)
{
    proto_msg_t m = {.kind = PROTO_order_amended};
    proto_order_amended_t *a = &m.order_amended;
    snprintf (a->market, sizeof a->market, "%s", MKT);
    snprintf (a->user, sizeof a->user, "%s", user);
    a->ts = T0 + 4;
    a->epoch = EPOCH0;
    a->order_id = id;
    a->qty = KWH (remaining_kwh);
    a->price = PRICE (price);
    s_apply (m);
}

static void s_epoch_in (const char *market, int64_t epoch, proto_epoch_phase_t state,
                        double clearing_price, double volume_kwh, uint64_t trades)
{
    proto_msg_t m = {.kind = PROTO_epoch_state};
    proto_epoch_state_t *e = &m.epoch_state;
    snprintf (e->market, sizeof e->market, "%s", market);
    e->ts = epoch * EP_NS;
    e->epoch = epoch;
    e->state = state;
    e->start = epoch * EP_NS;
    e->end = e->start + EP_NS;
    e->clearing_price = PRICE (clearing_price);
    e->volume = KWH (volume_kwh);
    e->trades = trades;
    s_apply (m);
}

static void s_epoch (int64_t epoch, proto_epoch_phase_t state)
{
    s_epoch_in (MKT, epoch, state, 0, 0, 0);
}

static void s_market_state (proto_market_status_t state)
{
    proto_msg_t m = {.kind = PROTO_market_state};
    snprintf (m.market_state.market, sizeof m.market_state.market, "%s", MKT);
    m.market_state.ts = T0 + 5;
    m.market_state.state = state;
    s_apply (m);
}

//  ---------------------------------------------------------------------------------------
//  Reading answers

//  The string at key, "null" for a JSON null; fails the test on anything else.
static const char *s_str (json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    cr_assert (v, "no key \"%s\"", key);
    if (json_is_null (v))
        return "null";
    cr_assert (json_is_string (v), "\"%s\" is not a string", key);
    return json_string_value (v);
}

static json_int_t s_int (json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    cr_assert (json_is_integer (v), "\"%s\" is not an integer", key);
    return json_integer_value (v);
}

static json_t *s_at (json_t *obj, const char *key, size_t index)
{
    json_t *list = json_object_get (obj, key);
    cr_assert (json_is_array (list), "\"%s\" is not an array", key);
    cr_assert_lt (index, json_array_size (list), "\"%s\" has %zu entries, wanted #%zu", key,
                  json_array_size (list), index);
    return json_array_get (list, index);
}

static size_t s_len (json_t *obj, const char *key)
{
    json_t *list = json_object_get (obj, key);
    cr_assert (json_is_array (list), "\"%s\" is not an array", key);
    return json_array_size (list);
}

static json_t *s_order (uint64_t id)
{
    json_t *o = readmodel_order (s_rm, id, NULL);
    cr_assert (o, "order %llu unknown", (unsigned long long) id);
    return o;
}

static void s_expect_status (uint64_t id, const char *status)
{
    json_t *o = s_order (id);
    cr_expect_str_eq (s_str (o, "status"), status, "order %llu", (unsigned long long) id);
    json_decref (o);
}

//  ---------------------------------------------------------------------------------------
//  Books

Test (readmodel, depth_sorted_best_first_with_totals, .init = s_setup, .fini = s_teardown)
{
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    s_level (BUY, 0.18, 200, 3);
    s_level (BUY, 0.20, 100, 1);
    s_level (BUY, 0.19, 50, 2);
    s_level (SELL, 0.22, 100, 1);
    s_level (SELL, 0.21, 75.5, 2);

    json_t *d = readmodel_depth (s_rm, MKT, -1, 10);
    cr_assert (d);
    cr_expect_str_eq (s_str (d, "market"), MKT);
    cr_expect_eq (s_int (d, "epoch"), EPOCH0);
    cr_expect_eq (s_int (d, "seq"), (json_int_t) s_seq);
    cr_assert_eq (s_len (d, "bids"), 3);
    cr_assert_eq (s_len (d, "asks"), 2);
    const char *bid_prices[] = {"0.2", "0.19", "0.18"};
    const char *bid_kwh[] = {"100", "50", "200"};
    const int bid_orders[] = {1, 2, 3};
    for (size_t i = 0; i < 3; i++) {
        cr_expect_str_eq (s_str (s_at (d, "bids", i), "price"), bid_prices[i], "bid %zu", i);
        cr_expect_str_eq (s_str (s_at (d, "bids", i), "energy_amount"), bid_kwh[i], "bid %zu", i);
        cr_expect_eq (s_int (s_at (d, "bids", i), "orders"), bid_orders[i], "bid %zu", i);
    }
    cr_expect_str_eq (s_str (s_at (d, "asks", 0), "price"), "0.21");
    cr_expect_str_eq (s_str (s_at (d, "asks", 0), "energy_amount"), "75.5");
    cr_expect_str_eq (s_str (s_at (d, "asks", 1), "price"), "0.22");
    json_decref (d);

    //  levels cuts each side; the epoch can be named; another epoch has its own (empty) book.
    d = readmodel_depth (s_rm, MKT, EPOCH0, 2);
    cr_expect_eq (s_len (d, "bids"), 2);
    cr_expect_str_eq (s_str (s_at (d, "bids", 1), "price"), "0.19");
    cr_expect_eq (s_len (d, "asks"), 2);
    json_decref (d);
    d = readmodel_depth (s_rm, MKT, EPOCH0 + 1, 10);
    cr_expect_eq (s_int (d, "epoch"), EPOCH0 + 1);
    cr_expect_eq (s_len (d, "bids"), 0);
    cr_expect_eq (s_len (d, "asks"), 0);
    json_decref (d);
    //  Markets do not share books.
    d = readmodel_depth (s_rm, MKT2, EPOCH0, 10);
    cr_expect_eq (s_len (d, "bids"), 0);
    json_decref (d);
}

Test (readmodel, depth_chart_cumulates_from_the_best, .init = s_setup, .fini = s_teardown)
{
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    s_level (BUY, 0.18, 200, 1);
    s_level (BUY, 0.20, 100, 1);
    s_level (BUY, 0.19, 50, 1);
    s_level (SELL, 0.23, 10, 1);
    s_level (SELL, 0.21, 0.5, 1);

    json_t *c = readmodel_depth_chart (s_rm, MKT, -1, 0);
    cr_assert (c);
    cr_expect_eq (s_int (c, "epoch"), EPOCH0);
    const char *bids[][2] = {{"0.2", "100"}, {"0.19", "150"}, {"0.18", "350"}};
    cr_assert_eq (s_len (c, "bids"), 3);
    for (size_t i = 0; i < 3; i++) {
        cr_expect_str_eq (s_str (s_at (c, "bids", i), "price"), bids[i][0]);
        cr_expect_str_eq (s_str (s_at (c, "bids", i), "cumulative_energy"), bids[i][1]);
    }
    cr_assert_eq (s_len (c, "asks"), 2);
    cr_expect_str_eq (s_str (s_at (c, "asks", 0), "cumulative_energy"), "0.5");
    cr_expect_str_eq (s_str (s_at (c, "asks", 1), "price"), "0.23");
    cr_expect_str_eq (s_str (s_at (c, "asks", 1), "cumulative_energy"), "10.5");
    json_decref (c);
}

Test (readmodel, level_updated_then_removed_at_zero, .init = s_setup, .fini = s_teardown)
{
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    s_level (BUY, 0.20, 100, 1);
    s_level (BUY, 0.19, 50, 1);
    s_level (BUY, 0.20, 60, 2); //  same price: replaced, not added
    json_t *d = readmodel_depth (s_rm, MKT, -1, 10);
    cr_assert_eq (s_len (d, "bids"), 2);
    cr_expect_str_eq (s_str (s_at (d, "bids", 0), "energy_amount"), "60");
    cr_expect_eq (s_int (s_at (d, "bids", 0), "orders"), 2);
    json_decref (d);

    s_level (BUY, 0.20, 0, 0);
    d = readmodel_depth (s_rm, MKT, -1, 10);
    cr_assert_eq (s_len (d, "bids"), 1);
    cr_expect_str_eq (s_str (s_at (d, "bids", 0), "price"), "0.19");
    json_decref (d);

    s_level (BUY, 0.17, 0, 0); //  removing a level that is not there changes nothing
    s_level (BUY, 0.19, 0, 0);
    d = readmodel_depth (s_rm, MKT, -1, 10);
    cr_expect_eq (s_len (d, "bids"), 0);
    json_decref (d);
}

Test (readmodel, cleared_epoch_book_disappears, .init = s_setup, .fini = s_teardown)
{
    s_epoch (EPOCH0 + 1, PROTO_EPOCH_PHASE_PENDING);
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    s_level (BUY, 0.20, 100, 1);
    s_level_in (MKT, EPOCH0 + 1, SELL, 0.25, 10, 4);
    json_t *s = readmodel_stats (s_rm, MKT, T0);
    cr_expect_eq (s_int (s, "active_orders"), 5, "resting orders of every open book");
    json_decref (s);

    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_CLEARED);
    json_t *d = readmodel_depth (s_rm, MKT, EPOCH0, 10);
    cr_expect_eq (s_len (d, "bids"), 0, "a cleared epoch has no book");
    json_decref (d);
    //  A late level of a cleared epoch must not bring its book back.
    s_level (BUY, 0.21, 5, 1);
    d = readmodel_depth (s_rm, MKT, EPOCH0, 10);
    cr_expect_eq (s_len (d, "bids"), 0);
    json_decref (d);
    //  The next epoch's book is still there.
    d = readmodel_depth (s_rm, MKT, EPOCH0 + 1, 10);
    cr_assert_eq (s_len (d, "asks"), 1);
    cr_expect_str_eq (s_str (s_at (d, "asks", 0), "price"), "0.25");
    json_decref (d);
    s = readmodel_stats (s_rm, MKT, T0);
    cr_expect_eq (s_int (s, "active_orders"), 4);
    json_decref (s);

    s_epoch (EPOCH0 + 1, PROTO_EPOCH_PHASE_ACTIVE);
    s_epoch (EPOCH0 + 1, PROTO_EPOCH_PHASE_SETTLED);
    d = readmodel_depth (s_rm, MKT, -1, 10);
    cr_expect_eq (s_int (d, "epoch"), EPOCH0 + 1);
    cr_expect_eq (s_len (d, "asks"), 0, "a settled epoch has no book either");
    json_decref (d);
}

Test (readmodel, current_epoch_from_the_clock_before_the_matcher_says, .init = s_setup,
      .fini = s_teardown)
{
    int64_t before = clock_wall_ns () / MCE_NS_PER_SEC / 900;
    json_t *d = readmodel_depth (s_rm, MKT, -1, 10);
    int64_t after = clock_wall_ns () / MCE_NS_PER_SEC / 900;
    json_int_t epoch = s_int (d, "epoch");
    cr_expect (epoch == before || epoch == after, "epoch %lld", (long long) epoch);
    json_decref (d);
    //  Once the matcher announces one, that is the current epoch.
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    d = readmodel_depth (s_rm, MKT, -1, 10);
    cr_expect_eq (s_int (d, "epoch"), EPOCH0);
    json_decref (d);
}

//  ---------------------------------------------------------------------------------------
//  Stats and trades

Test (readmodel, stats_before_anything_are_null, .init = s_setup, .fini = s_teardown)
{
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    json_t *s = readmodel_stats (s_rm, MKT, T0);
    cr_assert (s);
    cr_expect_str_eq (s_str (s, "market"), MKT);
    cr_expect_str_eq (s_str (s, "status"), "open");
    cr_expect_str_eq (s_str (s, "best_bid"), "null");
    cr_expect_str_eq (s_str (s, "best_ask"), "null");
    cr_expect_str_eq (s_str (s, "spread"), "null");
    cr_expect_str_eq (s_str (s, "last_price"), "null");
    cr_expect_str_eq (s_str (s, "change_24h"), "null");
    cr_expect_str_eq (s_str (s, "volume_24h"), "0");
    cr_expect_eq (s_int (s, "trades_24h"), 0);
    cr_expect_eq (s_int (s, "active_orders"), 0);
    json_decref (s);
}

Test (readmodel, stats_best_spread_last_volume_change, .init = s_setup, .fini = s_teardown)
{
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    s_accept (1, "alice", BUY, 100, 0.20);
    s_accept (2, "bob", SELL, 30, 0.19);
    s_trade (10, 1, 2, 30, 0.19);
    s_accept (3, "bob", SELL, 20, 0.18);
    s_trade_at (11, 1, 3, "alice", "bob", 20, 0.18, T0 + 5 * MIN_NS);
    s_level (BUY, 0.20, 50, 1);
    s_level (BUY, 0.19, 10, 1);
    s_level (SELL, 0.215, 5, 2);

    json_t *s = readmodel_stats (s_rm, MKT, T0 + 10 * MIN_NS);
    cr_expect_str_eq (s_str (s, "best_bid"), "0.2");
    cr_expect_str_eq (s_str (s, "best_ask"), "0.215");
    cr_expect_str_eq (s_str (s, "spread"), "0.015");
    cr_expect_str_eq (s_str (s, "last_price"), "0.18");
    cr_expect_str_eq (s_str (s, "volume_24h"), "50");
    cr_expect_eq (s_int (s, "trades_24h"), 2);
    cr_expect_str_eq (s_str (s, "change_24h"), "-0.01", "0.18 now, 0.19 first in the window");
    cr_expect_eq (s_int (s, "active_orders"), 4);
    cr_expect_eq (s_int (s, "seq"), (json_int_t) s_seq);
    json_decref (s);

    s_market_state (PROTO_MARKET_STATUS_PAUSED);
    s = readmodel_stats (s_rm, MKT, T0 + 10 * MIN_NS);
    cr_expect_str_eq (s_str (s, "status"), "paused");
    json_decref (s);
    s_market_state (PROTO_MARKET_STATUS_OPEN);
    s = readmodel_stats (s_rm, MKT, T0 + 10 * MIN_NS);
    cr_expect_str_eq (s_str (s, "status"), "open");
    json_decref (s);
}

Test (readmodel, stats_forget_trades_older_than_a_day, .init = s_setup, .fini = s_teardown)
{
    s_trade_at (1, 0, 0, "alice", "bob", 10, 0.15, T0);
    s_trade_at (2, 0, 0, "alice", "bob", 5, 0.17, T0 + 2 * HOUR_NS);

    json_t *s = readmodel_stats (s_rm, MKT, T0 + 3 * HOUR_NS);
    cr_expect_str_eq (s_str (s, "volume_24h"), "15");
    cr_expect_str_eq (s_str (s, "change_24h"), "0.02");
    json_decref (s);

    s = readmodel_stats (s_rm, MKT, T0 + 25 * HOUR_NS);
    cr_expect_str_eq (s_str (s, "volume_24h"), "5", "the first trade is 25 h old");
    cr_expect_eq (s_int (s, "trades_24h"), 1);
    cr_expect_str_eq (s_str (s, "change_24h"), "0");
    json_decref (s);

    s = readmodel_stats (s_rm, MKT, T0 + 27 * HOUR_NS);
    cr_expect_str_eq (s_str (s, "volume_24h"), "0");
    cr_expect_eq (s_int (s, "trades_24h"), 0);
    cr_expect_str_eq (s_str (s, "change_24h"), "null");
    cr_expect_str_eq (s_str (s, "last_price"), "0.17", "the last price is kept however old");
    json_decref (s);

    //  A new trade in a slot that held a day-old minute replaces it rather than adding to it.
    s_trade_at (3, 0, 0, "alice", "bob", 1, 0.16, T0 + 24 * HOUR_NS);
    s = readmodel_stats (s_rm, MKT, T0 + 24 * HOUR_NS);
    cr_expect_str_eq (s_str (s, "volume_24h"), "6");
    json_decref (s);
}

Test (readmodel, trades_newest_first_in_a_ring, .fini = s_teardown)
{
    readmodel_limits_t limits = {
        .finished_orders = 10, .market_trades = 3, .epochs = 10, .user_trades = 10};
    s_setup_limits (&limits);
    for (uint64_t t = 1; t <= 5; t++)
        s_trade_at (t, 0, 0, "alice", "bob", (double) t, 0.15, T0 + (int64_t) t * MCE_NS_PER_SEC);

    json_t *r = readmodel_trades (s_rm, MKT, 10);
    cr_assert (r);
    cr_expect_str_eq (s_str (r, "market"), MKT);
    cr_assert_eq (s_len (r, "trades"), 3, "only the last 3 are kept");
    json_t *t = s_at (r, "trades", 0);
    cr_expect_str_eq (s_str (t, "trade_id"), "5");
    cr_expect_eq (s_int (t, "epoch"), EPOCH0);
    cr_expect_str_eq (s_str (t, "price"), "0.15");
    cr_expect_str_eq (s_str (t, "energy_amount"), "5");
    cr_expect_str_eq (s_str (t, "value"), "0.75");
    cr_expect_str_eq (s_str (t, "aggressor"), "Buy");
    cr_expect_str_eq (s_str (t, "time"), "2026-01-01T00:00:05.000000Z");
    cr_expect_str_eq (s_str (s_at (r, "trades", 2), "trade_id"), "3");
    json_decref (r);

    r = readmodel_trades (s_rm, MKT, 2);
    cr_expect_eq (s_len (r, "trades"), 2);
    json_decref (r);
    r = readmodel_trades (s_rm, MKT2, 10);
    cr_expect_eq (s_len (r, "trades"), 0);
    json_decref (r);
}

//  ---------------------------------------------------------------------------------------
//  Epochs

Test (readmodel, clearing_price_and_epoch_status, .init = s_setup, .fini = s_teardown)
{
    json_t *c = readmodel_clearing_price (s_rm, MKT, -1);
    cr_assert (c);
    cr_expect_str_eq (s_str (c, "clearing_price"), "null", "nothing cleared yet");
    cr_expect (json_is_null (json_object_get (c, "epoch")));
    json_decref (c);

    s_epoch (EPOCH0 + 1, PROTO_EPOCH_PHASE_PENDING);
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    json_t *st = readmodel_epoch_status (s_rm, MKT, T0 + 60 * MCE_NS_PER_SEC);
    cr_expect_eq (s_int (st, "epoch"), EPOCH0);
    cr_expect_str_eq (s_str (st, "state"), "active");
    cr_expect_str_eq (s_str (st, "start"), "2026-01-01T00:00:00.000000Z");
    cr_expect_str_eq (s_str (st, "end"), "2026-01-01T00:15:00.000000Z");
    cr_expect_eq (s_int (st, "seconds_remaining"), 840);
    cr_expect_str_eq (s_str (st, "last_clearing_price"), "null");
    json_decref (st);

    s_epoch_in (MKT, EPOCH0, PROTO_EPOCH_PHASE_CLEARED, 0.19, 125, 3);
    s_epoch (EPOCH0 + 2, PROTO_EPOCH_PHASE_PENDING);
    s_epoch (EPOCH0 + 1, PROTO_EPOCH_PHASE_ACTIVE);
    c = readmodel_clearing_price (s_rm, MKT, -1);
    cr_expect_eq (s_int (c, "epoch"), EPOCH0);
    cr_expect_str_eq (s_str (c, "state"), "cleared");
    cr_expect_str_eq (s_str (c, "clearing_price"), "0.19");
    cr_expect_str_eq (s_str (c, "volume"), "125");
    cr_expect_eq (s_int (c, "trades"), 3);
    json_decref (c);

    //  Settled later: the figures of the clearing stay.
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_SETTLED);
    c = readmodel_clearing_price (s_rm, MKT, -1);
    cr_expect_str_eq (s_str (c, "state"), "settled");
    cr_expect_str_eq (s_str (c, "clearing_price"), "0.19");
    json_decref (c);

    st = readmodel_epoch_status (s_rm, MKT, T0 + EP_NS + 899 * MCE_NS_PER_SEC);
    cr_expect_eq (s_int (st, "epoch"), EPOCH0 + 1);
    cr_expect_eq (s_int (st, "seconds_remaining"), 1);
    cr_expect_eq (s_int (st, "last_cleared_epoch"), EPOCH0);
    cr_expect_str_eq (s_str (st, "last_clearing_price"), "0.19");
    cr_expect_str_eq (s_str (st, "last_volume"), "125");
    cr_expect_str_eq (s_str (st, "market_status"), "open");
    json_decref (st);
    //  Past the end (the matcher has not moved on yet): nothing remains, never negative.
    st = readmodel_epoch_status (s_rm, MKT, T0 + 3 * EP_NS);
    cr_expect_eq (s_int (st, "seconds_remaining"), 0);
    json_decref (st);
}

Test (readmodel, epochs_newest_first_paginated_and_capped, .fini = s_teardown)
{
    readmodel_limits_t limits = {
        .finished_orders = 10, .market_trades = 10, .epochs = 3, .user_trades = 10};
    s_setup_limits (&limits);
    //  As the matcher starts: future epochs pending before the current one is active.
    s_epoch (EPOCH0 + 1, PROTO_EPOCH_PHASE_PENDING);
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    json_t *e = readmodel_epochs (s_rm, MKT, 10, 0);
    cr_assert_eq (s_int (e, "total"), 2);
    cr_expect_eq (s_int (s_at (e, "epochs", 0), "epoch"), EPOCH0 + 1);
    cr_expect_str_eq (s_str (s_at (e, "epochs", 0), "state"), "pending");
    cr_expect_eq (s_int (s_at (e, "epochs", 1), "epoch"), EPOCH0);
    json_decref (e);

    s_epoch_in (MKT, EPOCH0, PROTO_EPOCH_PHASE_CLEARED, 0.2, 10, 1);
    s_epoch (EPOCH0 + 2, PROTO_EPOCH_PHASE_PENDING);
    s_epoch (EPOCH0 + 1, PROTO_EPOCH_PHASE_ACTIVE);
    s_epoch (EPOCH0 + 3, PROTO_EPOCH_PHASE_PENDING); //  a fourth: the oldest goes
    e = readmodel_epochs (s_rm, MKT, 2, 1);
    cr_expect_eq (s_int (e, "total"), 3);
    cr_expect_eq (s_int (e, "limit"), 2);
    cr_expect_eq (s_int (e, "offset"), 1);
    cr_assert_eq (s_len (e, "epochs"), 2);
    json_t *row = s_at (e, "epochs", 0);
    cr_expect_eq (s_int (row, "epoch"), EPOCH0 + 2);
    row = s_at (e, "epochs", 1);
    cr_expect_eq (s_int (row, "epoch"), EPOCH0 + 1);
    cr_expect_str_eq (s_str (row, "state"), "active");
    cr_expect_str_eq (s_str (row, "clearing_price"), "null");
    json_decref (e);
    e = readmodel_epochs (s_rm, MKT, 10, 5);
    cr_expect_eq (s_len (e, "epochs"), 0);
    cr_expect_eq (s_int (e, "total"), 3);
    json_decref (e);
    //  The evicted epoch is still the last cleared one.
    json_t *c = readmodel_clearing_price (s_rm, MKT, -1);
    cr_expect_eq (s_int (c, "epoch"), EPOCH0);
    cr_expect_str_eq (s_str (c, "clearing_price"), "0.2");
    json_decref (c);
}

//  ---------------------------------------------------------------------------------------
//  Orders

Test (readmodel, order_fills_open_partial_filled, .init = s_setup, .fini = s_teardown)
{
    s_accept_full (MKT, EPOCH0, 1, "alice", "a-1", BUY, 100, 0.20, T0 + 1);
    json_t *o = s_order (1);
    cr_expect_str_eq (s_str (o, "order_id"), "1");
    cr_expect_str_eq (s_str (o, "client_order_id"), "a-1");
    cr_expect_str_eq (s_str (o, "market"), MKT);
    cr_expect_eq (s_int (o, "epoch"), EPOCH0);
    cr_expect_str_eq (s_str (o, "side"), "Buy");
    cr_expect_str_eq (s_str (o, "order_type"), "Limit");
    cr_expect_str_eq (s_str (o, "time_in_force"), "GTC");
    cr_expect (json_is_false (json_object_get (o, "post_only")));
    cr_expect_str_eq (s_str (o, "energy_amount"), "100");
    cr_expect_str_eq (s_str (o, "price"), "0.2");
    cr_expect_str_eq (s_str (o, "filled_amount"), "0");
    cr_expect_str_eq (s_str (o, "remaining_amount"), "100");
    cr_expect_str_eq (s_str (o, "average_price"), "null");
    cr_expect_str_eq (s_str (o, "status"), "open");
    cr_expect_str_eq (s_str (o, "energy_source"), "solar");
    cr_expect_str_eq (s_str (o, "expires_at"), "null");
    cr_expect_str_eq (s_str (o, "created_at"), "2026-01-01T00:00:00.000000Z");
    cr_expect_eq (s_int (o, "seq"), (json_int_t) s_seq);
    json_decref (o);

    s_accept (2, "bob", SELL, 30, 0.19);
    s_trade (10, 1, 2, 30, 0.19);
    s_expect_status (1, "partially_filled");
    s_expect_status (2, "filled"); //  the seller's order was used up
    s_accept (3, "bob", SELL, 70, 0.20);
    s_trade_at (11, 1, 3, "alice", "bob", 70, 0.20, T0 + 7 * MCE_NS_PER_SEC);
    o = s_order (1);
    cr_expect_str_eq (s_str (o, "status"), "filled");
    cr_expect_str_eq (s_str (o, "filled_amount"), "100");
    cr_expect_str_eq (s_str (o, "remaining_amount"), "0");
    //  (30 × 0.19 + 70 × 0.20) / 100 = 0.197
    cr_expect_str_eq (s_str (o, "average_price"), "0.197");
    cr_expect_str_eq (s_str (o, "updated_at"), "2026-01-01T00:00:07.000000Z");
    json_decref (o);
}

Test (readmodel, average_price_rounds_half_even, .init = s_setup, .fini = s_teardown)
{
    s_accept (1, "alice", BUY, 0.003, 0.2);
    s_trade (10, 1, 0, 0.001, 0.100001);
    s_trade (11, 1, 0, 0.002, 0.100002);
    //  (1 × 100001 + 2 × 100002) / 3 = 100001.67 µ → 100002
    json_t *o = s_order (1);
    cr_expect_str_eq (s_str (o, "average_price"), "0.100002");
    json_decref (o);
}

Test (readmodel, order_cancelled_and_expired, .init = s_setup, .fini = s_teardown)
{
    s_accept (1, "alice", BUY, 100, 0.20);
    s_accept (2, "bob", SELL, 40, 0.20);
    s_trade (10, 1, 2, 40, 0.20);
    s_cancel (1, "alice", 60);
    json_t *o = s_order (1);
    cr_expect_str_eq (s_str (o, "status"), "cancelled");
    cr_expect_str_eq (s_str (o, "filled_amount"), "40");
    //  one meaning of remaining_amount everywhere: still open (0 once ended)
    cr_expect_str_eq (s_str (o, "remaining_amount"), "0");
    cr_expect_str_eq (s_str (o, "unfilled_amount"), "60", "what it left untraded");
    cr_expect_str_eq (s_str (o, "end_reason"), "user", "why it ended");
    cr_expect_str_eq (s_str (o, "average_price"), "0.2");
    json_decref (o);
    //  its fills, and the other side's
    json_t *f = readmodel_order_fills (s_rm, 1, NULL);
    cr_assert (f);
    cr_expect_eq (json_array_size (json_object_get (f, "fills")), 1);
    cr_expect_str_eq (s_str (json_array_get (json_object_get (f, "fills"), 0), "trade_id"), "10");
    cr_expect (json_is_true (json_object_get (f, "complete")));
    json_decref (f);
    o = s_order (2);
    cr_expect_str_eq (s_str (o, "end_reason"), "filled");
    cr_expect_str_eq (s_str (o, "unfilled_amount"), "0");
    json_decref (o);
    cr_expect_null (readmodel_order_fills (s_rm, 99, NULL));

    s_accept (3, "carol", SELL, 10, 0.30);
    o = s_order (3);
    cr_expect_str_eq (s_str (o, "end_reason"), "null", "open: no reason yet");
    cr_expect_str_eq (s_str (o, "remaining_amount"), "10");
    json_decref (o);
    s_expire (3, "carol", 10);
    s_expect_status (3, "expired");
    o = s_order (3);
    cr_expect_str_eq (s_str (o, "end_reason"), "epoch_close");
    json_decref (o);
    //  A finished order stays finished: later events about it change nothing.
    s_trade (11, 0, 3, 10, 0.30);
    s_cancel (3, "carol", 10);
    s_expect_status (3, "expired");
}

Test (readmodel, order_amended, .init = s_setup, .fini = s_teardown)
{
    s_accept (1, "alice", BUY, 100, 0.20);
    s_trade (10, 1, 0, 30, 0.20);
    s_amend (1, "alice", 50, 0.21); //  50 still open, at a new price
    json_t *o = s_order (1);
    cr_expect_str_eq (s_str (o, "status"), "partially_filled");
    cr_expect_str_eq (s_str (o, "price"), "0.21");
    cr_expect_str_eq (s_str (o, "remaining_amount"), "50");
    cr_expect_str_eq (s_str (o, "filled_amount"), "30");
    cr_expect_str_eq (s_str (o, "energy_amount"), "80", "filled + the new remaining");
    json_decref (o);
    s_trade (11, 1, 0, 50, 0.21);
    s_expect_status (1, "filled"); //  filled once the amended quantity traded
}

Test (readmodel, market_order_has_no_price, .init = s_setup, .fini = s_teardown)
{
    s_accept (1, "alice", BUY, 10, 0);
    json_t *o = s_order (1);
    cr_expect_str_eq (s_str (o, "order_type"), "Market");
    cr_expect_str_eq (s_str (o, "price"), "null");
    json_decref (o);
}

Test (readmodel, order_owner_and_unknown_order, .init = s_setup, .fini = s_teardown)
{
    s_accept (7, "alice", BUY, 1, 0.2);
    const char *owner = NULL;
    json_t *o = readmodel_order (s_rm, 7, &owner);
    cr_assert (o);
    cr_expect_str_eq (owner, "alice");
    json_decref (o);
    owner = "stale";
    cr_expect_null (readmodel_order (s_rm, 8, &owner));
    cr_expect_null (owner);
    cr_expect_null (readmodel_order (s_rm, 9, NULL));
}

Test (readmodel, client_order_id_lookup, .init = s_setup, .fini = s_teardown)
{
    s_accept_full (MKT, EPOCH0, 1, "alice", "mine-1", BUY, 1, 0.2, T0 + 1);
    s_accept_full (MKT, EPOCH0, 2, "bob", "mine-1", SELL, 1, 0.3, T0 + 1);
    s_accept_full (MKT, EPOCH0, 3, "alice", NULL, BUY, 1, 0.2, T0 + 1);
    cr_expect_eq (readmodel_find_client_order (s_rm, "alice", "mine-1"), 1);
    cr_expect_eq (readmodel_find_client_order (s_rm, "bob", "mine-1"), 2, "ids are per user");
    cr_expect_eq (readmodel_find_client_order (s_rm, "alice", "mine-2"), 0);
    cr_expect_eq (readmodel_find_client_order (s_rm, "carol", "mine-1"), 0);
    cr_expect_eq (readmodel_find_client_order (s_rm, "alice", ""), 0);
    //  Reused in a later epoch (the matcher forgot it when the first one's epoch closed).
    s_expire (1, "alice", 1);
    s_accept_full (MKT, EPOCH0 + 1, 4, "alice", "mine-1", BUY, 1, 0.2, T0 + EP_NS);
    cr_expect_eq (readmodel_find_client_order (s_rm, "alice", "mine-1"), 4);
}

Test (readmodel, user_orders_filter_and_paginate, .init = s_setup, .fini = s_teardown)
{
    //  alice: 1 filled, 2 partially filled, 3 cancelled, 4 open (next epoch), 5 open (MKT2),
    //  6 expired; bob: 7.
    s_accept (1, "alice", BUY, 10, 0.2);
    s_accept (2, "alice", BUY, 10, 0.2);
    s_accept (3, "alice", BUY, 10, 0.2);
    s_accept_full (MKT, EPOCH0 + 1, 4, "alice", NULL, SELL, 10, 0.3, T0 + 1);
    s_accept_full (MKT2, EPOCH0, 5, "alice", NULL, SELL, 10, 0.3, T0 + 1);
    s_accept (6, "alice", BUY, 10, 0.2);
    s_accept (7, "bob", SELL, 100, 0.2);
    s_trade (10, 1, 7, 10, 0.2);
    s_trade (11, 2, 7, 5, 0.2);
    s_cancel (3, "alice", 10);
    s_expire (6, "alice", 10);

    struct {
        readmodel_order_filter_t f;
        int total;
        const char *ids; //  in answer order
    } cases[] = {
        {{NULL, -1, NULL, 100, 0}, 6, "6,5,4,3,2,1"},
        {{NULL, -1, "open", 100, 0}, 3, "5,4,2"},
        {{NULL, -1, "partially_filled", 100, 0}, 1, "2"},
        {{NULL, -1, "filled", 100, 0}, 1, "1"},
        {{NULL, -1, "cancelled", 100, 0}, 1, "3"},
        {{NULL, -1, "expired", 100, 0}, 1, "6"},
        {{NULL, -1, "nonsense", 100, 0}, 0, ""},
        {{MKT2, -1, NULL, 100, 0}, 1, "5"},
        {{MKT, EPOCH0 + 1, NULL, 100, 0}, 1, "4"},
        {{MKT, EPOCH0, "open", 100, 0}, 1, "2"},
        {{NULL, -1, NULL, 2, 0}, 6, "6,5"},
        {{NULL, -1, NULL, 2, 2}, 6, "4,3"},
        {{NULL, -1, NULL, 2, 5}, 6, "1"},
        {{NULL, -1, NULL, 2, 9}, 6, ""},
        {{NULL, -1, NULL, 0, 0}, 6, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r = readmodel_user_orders (s_rm, "alice", &cases[i].f);
        cr_assert (r);
        cr_expect_eq (s_int (r, "total"), cases[i].total, "case %zu", i);
        cr_expect_eq (s_int (r, "limit"), cases[i].f.limit, "case %zu", i);
        cr_expect_eq (s_int (r, "offset"), cases[i].f.offset, "case %zu", i);
        char ids[64] = "";
        for (size_t k = 0; k < s_len (r, "orders"); k++)
            snprintf (ids + strlen (ids), sizeof ids - strlen (ids), "%s%s", k ? "," : "",
                      s_str (s_at (r, "orders", k), "order_id"));
        cr_expect_str_eq (ids, cases[i].ids, "case %zu", i);
        json_decref (r);
    }
    readmodel_order_filter_t any = {NULL, -1, NULL, 10, 0};
    json_t *r = readmodel_user_orders (s_rm, "nobody", &any);
    cr_assert (r, "an unknown user has no orders, which is an answer");
    cr_expect_eq (s_int (r, "total"), 0);
    json_decref (r);
}

Test (readmodel, finished_orders_evicted_oldest_first, .fini = s_teardown)
{
    readmodel_limits_t limits = {
        .finished_orders = 2, .market_trades = 10, .epochs = 10, .user_trades = 10};
    s_setup_limits (&limits);
    char coid[16];
    for (uint64_t id = 1; id <= 6; id++) {
        snprintf (coid, sizeof coid, "c%llu", (unsigned long long) id);
        s_accept_full (MKT, EPOCH0, id, "alice", coid, BUY, 10, 0.2, T0 + 1);
    }
    //  Finish 1, 3, 2, 4 in that order; 5 and 6 stay open.
    s_cancel (1, "alice", 10);
    s_trade (10, 3, 0, 10, 0.2);
    s_expire (2, "alice", 10);
    s_cancel (4, "alice", 10);

    cr_expect_null (readmodel_order (s_rm, 1, NULL), "finished first, evicted first");
    cr_expect_null (readmodel_order (s_rm, 3, NULL));
    s_expect_status (2, "expired");
    s_expect_status (4, "cancelled");
    s_expect_status (5, "open"); //  open orders are never evicted
    s_expect_status (6, "open");
    cr_expect_eq (readmodel_find_client_order (s_rm, "alice", "c1"), 0);
    cr_expect_eq (readmodel_find_client_order (s_rm, "alice", "c2"), 2);
    readmodel_order_filter_t any = {NULL, -1, NULL, 10, 0};
    json_t *r = readmodel_user_orders (s_rm, "alice", &any);
    cr_expect_eq (s_int (r, "total"), 4);
    json_decref (r);

    //  Many more: memory stays at the cap plus the open ones.
    for (uint64_t id = 100; id < 1100; id++) {
        s_accept (id, "bob", SELL, 1, 0.3);
        s_cancel (id, "bob", 1);
    }
    r = readmodel_user_orders (s_rm, "bob", &any);
    cr_expect_eq (s_int (r, "total"), 2);
    cr_expect_str_eq (s_str (s_at (r, "orders", 0), "order_id"), "1099");
    json_decref (r);
    r = readmodel_user_orders (s_rm, "alice", &any);
    cr_expect_eq (s_int (r, "total"), 2, "only alice's open orders are left");
    json_decref (r);
}

Test (readmodel, user_trades_both_sides_paginated_and_capped, .fini = s_teardown)
{
    readmodel_limits_t limits = {
        .finished_orders = 10, .market_trades = 10, .epochs = 10, .user_trades = 4};
    s_setup_limits (&limits);
    s_trade_at (1, 1, 2, "alice", "bob", 1, 0.2, T0 + 1);
    s_trade_at (2, 3, 4, "bob", "alice", 2, 0.21, T0 + 2);
    s_trade_at (3, 5, 6, "carol", "bob", 3, 0.22, T0 + 3);

    json_t *r = readmodel_user_trades (s_rm, "alice", 10, 0);
    cr_assert (r);
    cr_expect_eq (s_int (r, "total"), 2);
    cr_assert_eq (s_len (r, "trades"), 2);
    json_t *t = s_at (r, "trades", 0);
    cr_expect_str_eq (s_str (t, "trade_id"), "2");
    cr_expect_str_eq (s_str (t, "side"), "Sell", "alice sold in trade 2");
    cr_expect_str_eq (s_str (t, "market"), MKT);
    cr_expect_str_eq (s_str (t, "price"), "0.21");
    cr_expect_str_eq (s_str (t, "energy_amount"), "2");
    cr_expect_str_eq (s_str (t, "value"), "0.42");
    cr_expect_eq (s_int (t, "epoch"), EPOCH0);
    cr_expect_str_eq (s_str (s_at (r, "trades", 1), "side"), "Buy");
    json_decref (r);

    r = readmodel_user_trades (s_rm, "bob", 1, 1);
    cr_expect_eq (s_int (r, "total"), 3);
    cr_assert_eq (s_len (r, "trades"), 1);
    cr_expect_str_eq (s_str (s_at (r, "trades", 0), "trade_id"), "2");
    json_decref (r);

    //  Two more trades pass the cap of 4: trade 1 goes, from both of its users.
    s_trade_at (4, 7, 8, "carol", "dave", 1, 0.2, T0 + 4);
    s_trade_at (5, 9, 10, "carol", "dave", 1, 0.2, T0 + 5);
    r = readmodel_user_trades (s_rm, "alice", 10, 0);
    cr_expect_eq (s_int (r, "total"), 1);
    cr_expect_str_eq (s_str (s_at (r, "trades", 0), "trade_id"), "2");
    json_decref (r);
    r = readmodel_user_trades (s_rm, "bob", 10, 0);
    cr_expect_eq (s_int (r, "total"), 2);
    cr_expect_str_eq (s_str (s_at (r, "trades", 1), "trade_id"), "2");
    json_decref (r);
    r = readmodel_user_trades (s_rm, "nobody", 10, 0);
    cr_expect_eq (s_int (r, "total"), 0);
    json_decref (r);
}

//  ---------------------------------------------------------------------------------------
//  The model as a whole

Test (readmodel, unknown_market_is_null, .init = s_setup, .fini = s_teardown)
{
    cr_expect_null (readmodel_depth (s_rm, "nowhere", -1, 10));
    cr_expect_null (readmodel_depth_chart (s_rm, "nowhere", -1, 10));
    cr_expect_null (readmodel_stats (s_rm, "nowhere", T0));
    cr_expect_null (readmodel_clearing_price (s_rm, "nowhere", -1));
    cr_expect_null (readmodel_trades (s_rm, "nowhere", 10));
    cr_expect_null (readmodel_epoch_status (s_rm, "nowhere", T0));
    cr_expect_null (readmodel_epochs (s_rm, "nowhere", 10, 0));
    cr_expect_null (readmodel_depth (s_rm, NULL, -1, 10));
    //  Events of a market not configured are ignored.
    s_accept_full ("nowhere", EPOCH0, 1, "alice", NULL, BUY, 1, 0.2, T0);
    cr_expect_null (readmodel_order (s_rm, 1, NULL));
}

Test (readmodel, seq_follows_the_stream, .init = s_setup, .fini = s_teardown)
{
    cr_expect_eq (readmodel_seq (s_rm), 0);
    s_accept (1, "alice", BUY, 1, 0.2);
    cr_expect_eq (readmodel_seq (s_rm), 1);
    proto_msg_t rejected = {.kind = PROTO_order_rejected};
    snprintf (rejected.order_rejected.market, sizeof rejected.order_rejected.market, MKT);
    snprintf (rejected.order_rejected.user, sizeof rejected.order_rejected.user, "alice");
    rejected.order_rejected.reason = PROTO_REJECT_REASON_OFF_TICK;
    s_apply (rejected);
    cr_expect_eq (readmodel_seq (s_rm), 2, "ignored kinds still count");
    proto_msg_t hb = {.kind = PROTO_heartbeat};
    hb.heartbeat.seq = 99; //  the head of the stream, not this message's place in it
    readmodel_apply (s_rm, &hb);
    cr_expect_eq (readmodel_seq (s_rm), 2);
    json_t *d = readmodel_depth (s_rm, MKT, EPOCH0, 1);
    cr_expect_eq (s_int (d, "seq"), 2);
    json_decref (d);
}

static void s_balance (const char *user, proto_asset_t asset, int64_t available, int64_t reserved)
{
    proto_msg_t m = {.kind = PROTO_balance};
    snprintf (m.balance.user, sizeof m.balance.user, "%s", user);
    m.balance.asset = asset;
    m.balance.available = available;
    m.balance.reserved = reserved;
    m.balance.cause = PROTO_BALANCE_CAUSE_DEPOSIT;
    s_apply (m);
}

Test (readmodel, balances_are_the_latest_per_user_and_asset, .init = s_setup, .fini = s_teardown)
{
    json_t *b = readmodel_user_balances (s_rm, "alice");
    cr_assert_str_eq (
        s_str (json_object_get (json_object_get (b, "balances"), "energy"), "available"), "0",
        "a user never seen has nothing");
    json_decref (b);
    s_balance ("alice", PROTO_ASSET_PAYMENT, 1500000, 0);
    s_balance ("alice", PROTO_ASSET_PAYMENT, 500000, 1000000);
    s_balance ("alice", PROTO_ASSET_ENERGY, 2500, 500);
    s_balance ("bob", PROTO_ASSET_ENERGY, 7, 0);
    b = readmodel_user_balances (s_rm, "alice");
    json_t *pay = json_object_get (json_object_get (b, "balances"), "payment");
    cr_assert_str_eq (s_str (pay, "available"), "0.5");
    cr_assert_str_eq (s_str (pay, "reserved"), "1");
    cr_assert_str_eq (s_str (pay, "total"), "1.5");
    json_t *energy = json_object_get (json_object_get (b, "balances"), "energy");
    cr_assert_str_eq (s_str (energy, "available"), "2.5");
    cr_assert_str_eq (s_str (energy, "reserved"), "0.5");
    cr_assert_eq (s_int (b, "seq"), (json_int_t) s_seq);
    json_decref (b);
}

//  An epoch's figures as its trades come (continuous mode: no clearing price, an average
//  price), then as its cleared event says; an auction's own result; one epoch asked for.
Test (readmodel, epoch_figures_live_then_cleared, .init = s_setup, .fini = s_teardown)
{
    s_epoch (EPOCH0, PROTO_EPOCH_PHASE_ACTIVE);
    s_trade (1, 10, 11, 2, 0.10);
    s_trade (2, 10, 12, 3, 0.20);
    json_t *c = readmodel_clearing_price (s_rm, MKT, EPOCH0);
    cr_assert (c);
    cr_expect_str_eq (s_str (c, "state"), "active");
    cr_expect_str_eq (s_str (c, "volume"), "5", "the trades so far");
    cr_expect_eq (s_int (c, "trades"), 2);
    cr_expect_str_eq (s_str (c, "value"), "0.8");
    cr_expect_str_eq (s_str (c, "average_price"), "0.16", "0.8 / 5 kWh");
    cr_expect_str_eq (s_str (c, "clearing_price"), "null", "no auction");
    cr_expect (json_is_null (json_object_get (c, "last_auction")));
    json_decref (c);
    cr_expect_null (readmodel_clearing_price (s_rm, MKT, EPOCH0 + 7), "an epoch not known");

    //  an auction's own result, then the cleared event's figures replace the running ones
    proto_msg_t m = {.kind = PROTO_auction};
    proto_auction_t *a = &m.auction;
    snprintf (a->market, sizeof a->market, "%s", MKT);
    a->ts = T0 + 4;
    a->epoch = EPOCH0;
    a->price = PRICE (0.18);
    a->volume = KWH (4);
    a->trades = 2;
    a->demand = KWH (6);
    a->supply = KWH (4);
    a->grid_sold = KWH (1);
    a->triggered = true;
    s_apply (m);
    proto_msg_t e = {.kind = PROTO_epoch_state};
    proto_epoch_state_t *x = &e.epoch_state;
    snprintf (x->market, sizeof x->market, "%s", MKT);
    x->ts = T0 + EP_NS;
    x->epoch = EPOCH0;
    x->state = PROTO_EPOCH_PHASE_CLEARED;
    x->start = EPOCH0 * EP_NS;
    x->end = x->start + EP_NS;
    x->clearing_price = PRICE (0.18);
    x->volume = KWH (9);
    x->trades = 4;
    x->value = 1520000;
    x->demand = KWH (6);
    x->supply = KWH (4);
    s_apply (e);
    c = readmodel_clearing_price (s_rm, MKT, -1);
    cr_expect_eq (s_int (c, "epoch"), EPOCH0);
    cr_expect_str_eq (s_str (c, "clearing_price"), "0.18");
    cr_expect_str_eq (s_str (c, "volume"), "9", "the cleared event's");
    cr_expect_str_eq (s_str (c, "demand"), "6");
    cr_expect_str_eq (s_str (c, "supply"), "4");
    cr_expect_str_eq (s_str (c, "average_price"), "0.168888", "rounded down to the µ");
    json_decref (c);
    c = readmodel_clearing_price (s_rm, MKT, EPOCH0);
    json_t *last = json_object_get (c, "last_auction");
    cr_assert (json_is_object (last));
    cr_expect_str_eq (json_string_value (json_object_get (last, "clearing_price")), "0.18");
    cr_expect_str_eq (json_string_value (json_object_get (last, "grid_sold")), "1");
    cr_expect (json_is_true (json_object_get (last, "triggered")));
    cr_expect_eq (json_integer_value (json_object_get (last, "auctions")), 1);
    json_decref (c);
}
