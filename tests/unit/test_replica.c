/*  test_replica — the persister's replica of the books follows matcher events as the matcher's
    own book would: GTC limit orders rest until filled, cancelled or expired; amendments change
    their quantity and price; trades move the market's totals and its newest trades; balance
    events set each user's balances. And it says exactly what changed since the last time
    Redis took the changes.
*/
#include "replica.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MKT "campus-1"
#define EP  42

static uint64_t s_seq;

static proto_msg_t s_accept (uint64_t id, proto_side_t side, int64_t qty, int64_t price)
{
    proto_msg_t m = {.kind = PROTO_order_accepted};
    proto_order_accepted_t *e = &m.order_accepted;
    e->seq = ++s_seq;
    e->ts = 1000 + (int64_t) s_seq;
    snprintf (e->market, sizeof e->market, MKT);
    e->epoch = EP;
    e->order_id = id;
    snprintf (e->user, sizeof e->user, "%s", side == PROTO_SIDE_BUY ? "bob" : "sue");
    e->side = side;
    e->type = PROTO_ORDER_TYPE_LIMIT;
    e->tif = PROTO_TIF_GTC;
    e->qty = qty;
    e->price = price;
    return m;
}

static proto_msg_t s_trade (uint64_t tid, uint64_t buy, uint64_t sell, int64_t qty, int64_t price)
{
    proto_msg_t m = {.kind = PROTO_trade};
    proto_trade_t *e = &m.trade;
    e->seq = ++s_seq;
    e->ts = 1000 + (int64_t) s_seq;
    snprintf (e->market, sizeof e->market, MKT);
    e->epoch = EP;
    e->trade_id = tid;
    e->buy_order_id = buy;
    e->sell_order_id = sell;
    snprintf (e->buyer, sizeof e->buyer, "bob");
    snprintf (e->seller, sizeof e->seller, "sue");
    e->qty = qty;
    e->price = price;
    e->value = qty * price / 1000;
    e->aggressor = PROTO_SIDE_BUY;
    return m;
}

static proto_msg_t s_cancel (uint64_t id, int64_t left)
{
    proto_msg_t m = {.kind = PROTO_order_cancelled};
    proto_order_cancelled_t *e = &m.order_cancelled;
    e->seq = ++s_seq;
    snprintf (e->market, sizeof e->market, MKT);
    e->epoch = EP;
    e->order_id = id;
    e->remaining = left;
    e->reason = PROTO_CANCEL_REASON_USER;
    return m;
}

static proto_msg_t s_expire (uint64_t id, int64_t left)
{
    proto_msg_t m = {.kind = PROTO_order_expired};
    proto_order_expired_t *e = &m.order_expired;
    e->seq = ++s_seq;
    snprintf (e->market, sizeof e->market, MKT);
    e->epoch = EP;
    e->order_id = id;
    e->remaining = left;
    e->reason = PROTO_EXPIRE_REASON_EPOCH_CLOSE;
    return m;
}

static proto_msg_t s_amend (uint64_t id, int64_t qty, int64_t price)
{
    proto_msg_t m = {.kind = PROTO_order_amended};
    proto_order_amended_t *e = &m.order_amended;
    e->seq = ++s_seq;
    snprintf (e->market, sizeof e->market, MKT);
    e->epoch = EP;
    e->order_id = id;
    e->qty = qty;
    e->price = price;
    return m;
}

static void s_apply (replica_t *r, proto_msg_t m)
{
    cr_assert_eq (replica_apply (r, &m, 1), 0);
}

//  Whether order id is in the change list.
static bool s_changed (const replica_t *r, uint64_t id)
{
    for (size_t i = 0; i < replica_change_count (r); i++)
        if (replica_change (r, i)->id == id)
            return true;
    return false;
}

Test (replica, a_gtc_limit_order_rests_and_is_a_change)
{
    replica_t *r = replica_new (10);
    s_apply (r, s_accept (7, PROTO_SIDE_BUY, 5000, 150000));
    const replica_order_t *o = replica_order (r, 7);
    cr_assert_not_null (o);
    cr_assert_eq (o->price, 150000);
    cr_assert_eq (o->qty, 5000);
    cr_assert_eq (o->remaining, 5000);
    cr_assert_eq (o->filled, 0);
    cr_assert_eq (o->side, PROTO_SIDE_BUY);
    cr_assert_eq (o->epoch, EP);
    cr_assert_str_eq (o->user, "bob");
    cr_assert_str_eq (replica_market (r, o->market)->id, MKT);
    cr_assert_eq (replica_seq (r), s_seq);
    cr_assert_eq (replica_change_count (r), 1);
    cr_assert_eq (replica_change (r, 0)->id, 7);
    replica_clear_changes (r);
    cr_assert_eq (replica_change_count (r), 0);
    replica_destroy (&r);
    replica_destroy (&r); //  idempotent
    cr_assert_null (r);
}

Test (replica, orders_that_never_rest_are_not_kept)
{
    replica_t *r = replica_new (10);
    proto_msg_t ioc = s_accept (1, PROTO_SIDE_BUY, 1000, 150000);
    ioc.order_accepted.tif = PROTO_TIF_IOC;
    proto_msg_t market = s_accept (2, PROTO_SIDE_SELL, 1000, 0);
    market.order_accepted.type = PROTO_ORDER_TYPE_MARKET;
    proto_msg_t fok = s_accept (3, PROTO_SIDE_SELL, 1000, 140000);
    fok.order_accepted.tif = PROTO_TIF_FOK;
    proto_msg_t batch[] = {ioc, market, fok, s_cancel (1, 1000)};
    cr_assert_eq (replica_apply (r, batch, 4), 0);
    cr_assert_eq (replica_order_count (r), 0);
    cr_assert_eq (replica_change_count (r), 0);
    cr_assert_eq (replica_seq (r), s_seq, "the seq moves all the same");
    replica_destroy (&r);
}

Test (replica, trades_fill_orders_and_move_the_totals)
{
    replica_t *r = replica_new (10);
    s_apply (r, s_accept (1, PROTO_SIDE_SELL, 3000, 150000));
    replica_clear_changes (r);
    s_apply (r, s_accept (2, PROTO_SIDE_BUY, 1000, 150000));
    s_apply (r, s_trade (100, 2, 1, 1000, 150000));
    //  the buy filled whole: gone, but a change that says where it was
    cr_assert_null (replica_order (r, 2));
    cr_assert (s_changed (r, 2));
    const replica_change_t *c = replica_change (r, 0);
    cr_assert_eq (c->id, 2);
    cr_assert_eq (c->side, PROTO_SIDE_BUY);
    cr_assert_eq (c->epoch, EP);
    //  the sell partly
    const replica_order_t *o = replica_order (r, 1);
    cr_assert_not_null (o);
    cr_assert_eq (o->filled, 1000);
    cr_assert_eq (o->remaining, 2000);
    cr_assert_eq (o->qty, 3000);
    cr_assert_eq (o->seq, s_seq);
    cr_assert (s_changed (r, 1));
    cr_assert_eq (replica_change_count (r), 2, "one change per order, however many events");
    const replica_market_t *m = replica_market (r, 0);
    cr_assert_eq (m->trades, 1);
    cr_assert_eq (m->volume, 1000);
    cr_assert_eq (m->value, 150000);
    cr_assert_eq (m->seq, s_seq);
    cr_assert (m->changed);
    cr_assert_eq (m->new_trades, 1);
    cr_assert_eq (m->ring_count, 1);
    cr_assert_eq (replica_trade (m, 0)->trade_id, 100);
    cr_assert_eq (replica_trade (m, 0)->aggressor, PROTO_SIDE_BUY);
    replica_clear_changes (r);
    cr_assert_not (replica_market (r, 0)->changed);
    cr_assert_eq (replica_market (r, 0)->new_trades, 0);
    replica_destroy (&r);
}

Test (replica, cancels_expiries_and_amendments)
{
    replica_t *r = replica_new (10);
    s_apply (r, s_accept (1, PROTO_SIDE_SELL, 3000, 150000));
    s_apply (r, s_accept (2, PROTO_SIDE_SELL, 3000, 151000));
    s_apply (r, s_accept (3, PROTO_SIDE_BUY, 3000, 140000));
    replica_clear_changes (r);
    s_apply (r, s_trade (100, 3, 1, 1000, 150000)); //  as if 3 had crossed
    s_apply (r, s_amend (1, 500, 152000));          //  a new price and less left
    const replica_order_t *o = replica_order (r, 1);
    cr_assert_eq (o->price, 152000);
    cr_assert_eq (o->remaining, 500);
    cr_assert_eq (o->filled, 1000);
    cr_assert_eq (o->qty, 1500, "qty is filled + remaining after an amendment");
    s_apply (r, s_cancel (2, 3000));
    s_apply (r, s_expire (3, 2000));
    cr_assert_null (replica_order (r, 2));
    cr_assert_null (replica_order (r, 3));
    cr_assert_eq (replica_order_count (r), 1);
    cr_assert_eq (replica_change_count (r), 3);
    //  events for orders it does not hold change nothing
    s_apply (r, s_cancel (99, 1));
    s_apply (r, s_amend (98, 1, 1));
    cr_assert_eq (replica_change_count (r), 3);
    replica_destroy (&r);
}

Test (replica, keeps_the_newest_trades_newest_first)
{
    replica_t *r = replica_new (3);
    s_apply (r, s_accept (1, PROTO_SIDE_SELL, 100000, 150000));
    for (uint64_t t = 1; t <= 5; t++)
        s_apply (r, s_trade (t, 1000 + t, 1, 1000, 150000));
    const replica_market_t *m = replica_market (r, 0);
    cr_assert_eq (m->ring_count, 3);
    cr_assert_eq (m->new_trades, 5, "the count says how many are new, even past the ring");
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq (replica_trade (m, i)->trade_id, 5 - i);
    cr_assert_eq (m->trades, 5);
    cr_assert_eq (replica_order (r, 1)->remaining, 95000);
    replica_destroy (&r);
}

Test (replica, loads_a_state_then_follows_it)
{
    replica_t *r = replica_new (2);
    replica_order_t o = {.id = 11,
                         .epoch = EP,
                         .price = 150000,
                         .qty = 5000,
                         .filled = 2000,
                         .remaining = 3000,
                         .seq = 9,
                         .side = PROTO_SIDE_SELL};
    snprintf (o.user, sizeof o.user, "sue");
    cr_assert_eq (replica_load_order (r, MKT, &o), 0);
    o.id = 12;
    o.remaining = 0;
    cr_assert_eq (replica_load_order (r, MKT, &o), -1, "nothing left: not resting");
    cr_assert_eq (replica_load_totals (r, MKT, 7, 7000, 1050), 0);
    cr_assert_eq (replica_load_totals (r, "other", 0, 0, 0), 0);
    replica_trade_t t = {.trade_id = 70, .seq = 8, .qty = 1000, .price = 150000};
    cr_assert_eq (replica_load_trade (r, MKT, &t), 0);
    replica_set_seq (r, 9);
    cr_assert_eq (replica_seq (r), 9);
    cr_assert_eq (replica_order_count (r), 1);
    cr_assert_eq (replica_market_count (r), 2);
    cr_assert_eq (replica_change_count (r), 0, "loading is not a change");
    const replica_market_t *m = replica_market (r, 0);
    cr_assert_eq (m->trades, 7);
    cr_assert_eq (m->seq, 8);
    cr_assert_eq (replica_trade (m, 0)->trade_id, 70);
    s_seq = 9;
    s_apply (r, s_trade (71, 500, 11, 3000, 150000));
    cr_assert_null (replica_order (r, 11));
    cr_assert_eq (replica_market (r, 0)->trades, 8);
    cr_assert_eq (replica_trade (replica_market (r, 0), 1)->trade_id, 70);
    replica_destroy (&r);
}

static void s_sum (void *arg, const replica_order_t *o)
{
    *(int64_t *) arg += o->remaining;
}

//  Many orders in, many out, in a random order: the index finds exactly those still resting.
Test (replica, thousands_of_orders_come_and_go)
{
    enum { N = 20000 };
    replica_t *r = replica_new (1);
    static bool resting[N + 1];
    uint64_t x = 88172645463325252ull;
    int64_t want = 0;
    for (uint64_t id = 1; id <= N; id++) {
        s_apply (r, s_accept (id * 7919, id & 1 ? PROTO_SIDE_BUY : PROTO_SIDE_SELL, 1000, 1000));
        resting[id] = true;
    }
    for (int i = 0; i < N * 2; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t id = 1 + x % N;
        if (resting[id]) {
            s_apply (r, s_cancel (id * 7919, 1000));
            resting[id] = false;
        }
        else if (x & 1) {
            s_apply (r, s_accept (id * 7919, PROTO_SIDE_BUY, 1000, 1000));
            resting[id] = true;
        }
        if (i % 1000 == 0)
            replica_clear_changes (r);
    }
    size_t count = 0;
    for (uint64_t id = 1; id <= N; id++) {
        const replica_order_t *o = replica_order (r, id * 7919);
        cr_assert_eq (o != NULL, resting[id], "order %llu", (unsigned long long) id * 7919);
        if (o) {
            cr_assert_eq (o->id, id * 7919);
            count++;
            want += 1000;
        }
    }
    cr_assert_eq (replica_order_count (r), count);
    int64_t sum = 0;
    replica_each_order (r, s_sum, &sum);
    cr_assert_eq (sum, want);
    replica_destroy (&r);
}

static proto_msg_t s_balance (const char *user, proto_asset_t asset, int64_t available,
                              int64_t reserved)
{
    proto_msg_t m = {.kind = PROTO_balance};
    proto_balance_t *e = &m.balance;
    e->seq = ++s_seq;
    snprintf (e->user, sizeof e->user, "%s", user);
    e->asset = asset;
    e->available = available;
    e->reserved = reserved;
    e->cause = PROTO_BALANCE_CAUSE_DEPOSIT;
    return m;
}

Test (replica, balance_events_set_each_users_balances_and_are_changes)
{
    replica_t *r = replica_new (10);
    cr_assert_eq (replica_balance_count (r), 0);
    cr_assert_null (replica_balance_find (r, "bob"));
    proto_msg_t batch[] = {s_balance ("bob", PROTO_ASSET_PAYMENT, 1000000, 0),
                           s_balance ("sue", PROTO_ASSET_ENERGY, 5000, 0),
                           s_balance ("bob", PROTO_ASSET_PAYMENT, 850000, 150000),
                           s_balance ("bob", PROTO_ASSET_ENERGY, 300, 0)};
    cr_assert_eq (replica_apply (r, batch, 4), 0);
    cr_assert_eq (replica_balance_count (r), 2);
    const replica_balance_t *bob = replica_balance_find (r, "bob");
    cr_assert_not_null (bob);
    cr_assert_str_eq (bob->user, "bob");
    cr_assert_eq (bob->asset[REPLICA_PAYMENT].available, 850000, "the last event's balance");
    cr_assert_eq (bob->asset[REPLICA_PAYMENT].reserved, 150000);
    cr_assert_eq (bob->asset[REPLICA_ENERGY].available, 300);
    cr_assert_eq (bob->seq, s_seq);
    const replica_balance_t *sue = replica_balance_find (r, "sue");
    cr_assert_eq (sue->asset[REPLICA_ENERGY].available, 5000);
    cr_assert_eq (sue->asset[REPLICA_PAYMENT].available, 0, "untouched: zero");
    cr_assert_eq (replica_balance (r, 0), bob, "in the order they first appeared");
    cr_assert_eq (replica_balance (r, 1), sue);
    cr_assert_eq (replica_balance_change_count (r), 2, "each user once");
    cr_assert_eq (replica_balance_change (r, 0), bob);
    cr_assert_eq (replica_balance_change (r, 1), sue);
    cr_assert_eq (replica_seq (r), s_seq);
    replica_clear_changes (r);
    cr_assert_eq (replica_balance_change_count (r), 0);
    s_apply (r, s_balance ("sue", PROTO_ASSET_ENERGY, 4000, 1000));
    cr_assert_eq (replica_balance_change_count (r), 1);
    cr_assert_str_eq (replica_balance_change (r, 0)->user, "sue");
    replica_destroy (&r);
}

Test (replica, loads_balances_then_follows_them)
{
    replica_t *r = replica_new (10);
    cr_assert_eq (replica_load_balance (r, "sue", PROTO_ASSET_ENERGY, 5000, 200, 7), 0);
    cr_assert_eq (replica_load_balance (r, "sue", PROTO_ASSET_PAYMENT, 90000, 0, 4), 0);
    cr_assert_eq (replica_load_balance (r, "sue", PROTO_ASSET_NONE, 1, 1, 1), -1);
    cr_assert_eq (replica_balance_count (r), 1);
    cr_assert_eq (replica_balance_change_count (r), 0, "loading is not a change");
    const replica_balance_t *sue = replica_balance_find (r, "sue");
    cr_assert_eq (sue->asset[REPLICA_ENERGY].reserved, 200);
    cr_assert_eq (sue->asset[REPLICA_PAYMENT].available, 90000);
    cr_assert_eq (sue->seq, 7, "the newest of its events");
    s_seq = 9;
    s_apply (r, s_balance ("sue", PROTO_ASSET_PAYMENT, 80000, 10000));
    cr_assert_eq (sue->asset[REPLICA_ENERGY].available, 5000);
    cr_assert_eq (sue->asset[REPLICA_PAYMENT].reserved, 10000);
    cr_assert_eq (sue->seq, 10);
    cr_assert_eq (replica_balance_change_count (r), 1);
    replica_destroy (&r);
}

//  Many users: the index grows and finds each of them.
Test (replica, thousands_of_users)
{
    enum { N = 5000 };
    replica_t *r = replica_new (1);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            char user[16];
            snprintf (user, sizeof user, "u%d", i);
            s_apply (r, s_balance (user, PROTO_ASSET_ENERGY, i + round, 0));
        }
    cr_assert_eq (replica_balance_count (r), N);
    cr_assert_eq (replica_balance_change_count (r), N);
    for (int i = 0; i < N; i++) {
        char user[16];
        snprintf (user, sizeof user, "u%d", i);
        const replica_balance_t *b = replica_balance_find (r, user);
        cr_assert_not_null (b, "%s", user);
        cr_assert_str_eq (b->user, user);
        cr_assert_eq (b->asset[REPLICA_ENERGY].available, i + 1);
    }
    cr_assert_null (replica_balance_find (r, "nobody"));
    replica_destroy (&r);
}
