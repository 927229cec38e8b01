/*  test_accounts — balances and reservations (docs/clearing.md, Accounts and escrow): the hold
    arithmetic at its edges, then the engine reserving and releasing on every path an order can
    take, deposits and withdrawals, and the accounts surviving a snapshot.
*/
#include "accounts.h"
#include "engine.h"
#include "money.h"

#include <criterion/criterion.h>
#include <string.h>

#define T0     (1000000LL * 900 * 1000000000LL) //  the start of epoch 1 000 000 (900 s)
#define EPOCH0 1000000
#define E      PROTO_ASSET_ENERGY
#define P      PROTO_ASSET_PAYMENT

//  ------------------------------------------------------------------------------------------
//  The hold: a buy's hold always covers its next fill, whatever the fill's size and price

//  Every remaining (in lots), every fill of it, every price at or under the limit: what a fill
//  frees covers what it pays, and a hold of nothing is nothing.
static void s_check_holds (int64_t lot, int64_t tick, int64_t max_lots, int64_t max_ticks)
{
    bool exact = (lot * tick) % 1000 == 0;
    for (int64_t lt = 1; lt <= max_ticks; lt++) {
        int64_t limit = lt * tick;
        cr_assert_eq (accounts_buy_hold (0, limit, lot, exact), 0);
        for (int64_t n = 1; n <= max_lots; n++)
            for (int64_t m = 1; m <= n; m++)
                for (int64_t pt = 1; pt <= lt; pt++) {
                    int64_t r = n * lot, q = m * lot, value;
                    cr_assert_eq (money_value (q, pt * tick, &value), 0);
                    int64_t freed = accounts_buy_hold (r, limit, lot, exact) -
                                    accounts_buy_hold (r - q, limit, lot, exact);
                    cr_assert_geq (freed, value,
                                   "lot %lld tick %lld: %lld of %lld Wh at %lld (limit %lld) "
                                   "frees %lld, pays %lld",
                                   (long long) lot, (long long) tick, (long long) q, (long long) r,
                                   (long long) (pt * tick), (long long) limit, (long long) freed,
                                   (long long) value);
                }
    }
}

Test (hold, covers_every_fill_where_values_round)
{
    s_check_holds (1, 100, 12, 40); //  the defaults: 1 Wh lots, 0.0001 ticks
    s_check_holds (1, 1, 10, 3000); //  the finest prices: every rounding case of 1 Wh
    s_check_holds (3, 7, 10, 300);  //  steps that share no factor with 1000
    s_check_holds (1, 1500, 8, 12); //  1 Wh at 1.5 µ rounds up to 2 µ on every fill
}

Test (hold, is_exact_when_values_cannot_round)
{
    s_check_holds (1000, 1, 6, 50); //  whole kWh: every value is whole
    cr_assert_eq (accounts_buy_hold (5000, 150000, 1000, true), 750000);
    //  where values may round, a buy holds one µ per lot more than its value
    cr_assert_eq (accounts_buy_hold (2, 1500, 1, false), 3 + 2);
}

Test (hold, largest_order_of_a_market_fits)
{
    //  config.c refuses markets whose max_qty × max_price / 1000 exceeds INT64_MAX / 4
    int64_t qty = 1000000000000LL, price = INT64_MAX / 4 / qty * 1000;
    int64_t hold = accounts_buy_hold (qty, price, 1, false);
    cr_assert_gt (hold, 0);
    cr_assert_leq (hold, INT64_MAX / 4 + qty + 1);
}

//  ------------------------------------------------------------------------------------------
//  The engine with escrow on

static engine_t *s_e;
static uint32_t s_alice, s_bob;

static void s_setup_with (int mode, int64_t tick, int64_t lot)
{
    mce_config_t cfg;
    char err[256];
    cr_assert_eq (config_load (&cfg, NULL, err, sizeof err), 0);
    cfg.markets[0].tick = tick;
    cfg.markets[0].lot = lot;
    cfg.markets[0].min_qty = lot;
    cfg.markets[0].mode = mode;
    cfg.markets[0].future_epochs = 2;
    cfg.markets[0].escrow = true;
    s_e = engine_new (&cfg);
    s_alice = engine_user_intern (s_e, "alice");
    s_bob = engine_user_intern (s_e, "bob");
    engine_advance (s_e, T0);
}

//  Whole-kWh lots and cent ticks: values are exact, so the sums below are plain arithmetic.
static void s_setup (void)
{
    s_setup_with (CONFIG_MODE_CONTINUOUS, 10000, 1000);
}

static void s_teardown (void)
{
    engine_destroy (&s_e);
}

static uint64_t s_deposit_id;

static void s_fund (uint32_t user, proto_asset_t asset, int64_t amount)
{
    const engine_result_t *r = engine_deposit (s_e, user, asset, amount, ++s_deposit_id, T0 + 1);
    cr_assert (!r->rejected && !r->duplicate);
}

static const engine_result_t *s_order (uint32_t user, proto_side_t side, proto_order_type_t type,
                                       proto_tif_t tif, int64_t kwh, int64_t price)
{
    engine_order_t o = {
        .user = user, .side = side, .type = type, .tif = tif, .qty = kwh * 1000, .price = price};
    return engine_new_order (s_e, &o, T0 + 1);
}

static const engine_result_t *s_limit (uint32_t user, proto_side_t side, int64_t kwh, int64_t price)
{
    return s_order (user, side, PROTO_ORDER_TYPE_LIMIT, PROTO_TIF_GTC, kwh, price);
}

static void s_assert_balance (uint32_t user, proto_asset_t asset, int64_t available,
                              int64_t reserved)
{
    int64_t a, r;
    engine_balance (s_e, user, asset, &a, &r);
    cr_assert_eq (a, available, "%s %s available: %lld, expected %lld",
                  engine_user_name (s_e, user), proto_asset_name (asset), (long long) a,
                  (long long) available);
    cr_assert_eq (r, reserved, "%s %s reserved: %lld, expected %lld", engine_user_name (s_e, user),
                  proto_asset_name (asset), (long long) r, (long long) reserved);
}

//  The change of (user, asset) among a result's balances, or NULL.
static const engine_balance_t *s_balance_event (const engine_result_t *r, uint32_t user,
                                                proto_asset_t asset)
{
    static engine_balance_t found;
    bool seen = false;
    for (uint32_t i = 0; i < r->balance_count; i++) {
        engine_balance_t b;
        if (engine_result_balance (s_e, i, &b) && b.user == user && b.asset == asset) {
            cr_assert (!seen, "one balance change per user and asset and command");
            found = b;
            seen = true;
        }
    }
    return seen ? &found : NULL;
}

TestSuite (escrow, .init = s_setup, .fini = s_teardown);

Test (escrow, an_unfunded_buyer_and_an_oversold_seller_are_refused_before_anything_happens)
{
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 2, 990000);
    cr_assert (r->rejected);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE);
    s_fund (s_bob, E, 1000 * 1000);
    r = s_limit (s_bob, PROTO_SIDE_SELL, 100000, 10000);
    cr_assert (r->rejected);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE);
    cr_assert_eq (engine_resting (s_e), 0);
    s_assert_balance (s_bob, E, 1000 * 1000, 0);
    //  exactly enough is enough
    r = s_limit (s_bob, PROTO_SIDE_SELL, 1000, 10000);
    cr_assert (!r->rejected);
    s_assert_balance (s_bob, E, 0, 1000 * 1000);
}

Test (escrow, a_fill_pays_the_trade_and_frees_what_the_limit_held_beyond_it)
{
    s_fund (s_alice, P, 1000000);
    s_fund (s_bob, E, 10000);
    cr_assert (!s_limit (s_bob, PROTO_SIDE_SELL, 4, 150000)->rejected);
    s_assert_balance (s_bob, E, 6000, 4000);
    //  alice bids 5 kWh at 0.20: holds 1.00, buys 4 kWh at 0.15 (0.60), 1 kWh rests (0.20)
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 5, 200000);
    cr_assert_eq (r->filled, 4000);
    s_assert_balance (s_alice, P, 1000000 - 600000 - 200000, 200000);
    s_assert_balance (s_bob, E, 6000, 0);
    const engine_balance_t *ev = s_balance_event (r, s_alice, P);
    cr_assert_not_null (ev);
    cr_assert_eq (ev->cause, PROTO_BALANCE_CAUSE_ORDER);
    cr_assert_eq (ev->available, 200000);
    cr_assert_eq (ev->reserved, 200000);
    cr_assert_eq (ev->d_available, -800000, "change of available");
    cr_assert_eq (ev->d_reserved, 200000, "change of reserved");
    cr_assert_eq (ev->ref, r->order_id);
    ev = s_balance_event (r, s_bob, E);
    cr_assert_not_null (ev);
    cr_assert_eq (ev->cause, PROTO_BALANCE_CAUSE_TRADE);
    cr_assert_eq (ev->d_reserved, -4000);
    engine_balance_t first;
    cr_assert (engine_result_balance (s_e, 0, &first));
    cr_assert_eq (first.user, s_alice, "the taker's own balance is touched first");
}

Test (escrow, cancel_and_expiry_release_exactly_the_hold)
{
    s_fund (s_alice, P, 500000);
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 2, 100000);
    uint64_t id = r->order_id;
    s_assert_balance (s_alice, P, 300000, 200000);
    r = engine_cancel (s_e, 0, s_alice, false, id, T0 + 2);
    cr_assert (!r->rejected);
    s_assert_balance (s_alice, P, 500000, 0);
    cr_assert_eq (s_balance_event (r, s_alice, P)->cause, PROTO_BALANCE_CAUSE_RELEASE);
    //  expiry at expires_at, then at the epoch's close
    engine_order_t o = {.user = s_alice,
                        .side = PROTO_SIDE_BUY,
                        .type = PROTO_ORDER_TYPE_LIMIT,
                        .tif = PROTO_TIF_GTC,
                        .qty = 1000,
                        .price = 100000,
                        .expires_at = T0 + 5};
    cr_assert (!engine_new_order (s_e, &o, T0 + 3)->rejected);
    cr_assert (!s_limit (s_alice, PROTO_SIDE_BUY, 1, 100000)->rejected);
    s_assert_balance (s_alice, P, 300000, 200000);
    engine_advance (s_e, T0 + 6);
    s_assert_balance (s_alice, P, 400000, 100000);
    engine_advance (s_e, T0 + 900LL * 1000000000LL);
    s_assert_balance (s_alice, P, 500000, 0);
}

Test (escrow, ioc_and_market_orders_release_their_unfilled_rest)
{
    s_fund (s_alice, P, 300000000); //  a market buy holds at max_price (100 per kWh)
    s_fund (s_bob, E, 3000);
    cr_assert (!s_limit (s_bob, PROTO_SIDE_SELL, 1, 150000)->rejected);
    const engine_result_t *r =
        s_order (s_alice, PROTO_SIDE_BUY, PROTO_ORDER_TYPE_MARKET, PROTO_TIF_IOC, 2, 0);
    cr_assert_eq (r->filled, 1000);
    s_assert_balance (s_alice, P, 300000000 - 150000, 0);
    r = s_order (s_alice, PROTO_SIDE_BUY, PROTO_ORDER_TYPE_MARKET, PROTO_TIF_IOC, 3, 0);
    cr_assert (r->rejected, "3 kWh at the band's top is more than alice has left");
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE);
    r = s_order (s_bob, PROTO_SIDE_SELL, PROTO_ORDER_TYPE_LIMIT, PROTO_TIF_IOC, 2, 10000);
    cr_assert_eq (r->status, PROTO_ORDER_STATUS_CANCELLED);
    s_assert_balance (s_bob, E, 2000, 0);
}

Test (escrow, amends_move_the_hold_up_and_down)
{
    s_fund (s_alice, P, 300000);
    uint64_t id = s_limit (s_alice, PROTO_SIDE_BUY, 1, 100000)->order_id;
    s_assert_balance (s_alice, P, 200000, 100000);
    const engine_result_t *r = engine_amend (s_e, 0, s_alice, false, id, 4000, 0, T0 + 2);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE, "4 kWh needs 0.40");
    s_assert_balance (s_alice, P, 200000, 100000);
    r = engine_amend (s_e, 0, s_alice, false, id, 3000, 0, T0 + 2);
    cr_assert (!r->rejected);
    s_assert_balance (s_alice, P, 0, 300000);
    r = engine_amend (s_e, 0, s_alice, false, id, 2000, 50000, T0 + 2);
    cr_assert (!r->rejected);
    s_assert_balance (s_alice, P, 200000, 100000);
    r = engine_amend (s_e, 0, s_alice, false, id, 1000, 0, T0 + 2);
    s_assert_balance (s_alice, P, 250000, 50000);
}

Test (escrow, self_trade_prevention_releases_the_cancelled_order)
{
    s_fund (s_alice, P, 1000000);
    s_fund (s_alice, E, 2000);
    cr_assert (!s_limit (s_alice, PROTO_SIDE_SELL, 2, 100000)->rejected);
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 1, 100000);
    cr_assert_eq (r->filled, 0);
    s_assert_balance (s_alice, E, 2000, 0);
    s_assert_balance (s_alice, P, 900000, 100000);
}

Test (escrow, withdrawals_take_only_what_is_available_and_refund_once)
{
    s_fund (s_alice, P, 300000);
    cr_assert (!s_limit (s_alice, PROTO_SIDE_BUY, 2, 100000)->rejected);
    const engine_result_t *r = engine_withdraw (s_e, s_alice, P, 100001, T0 + 2);
    cr_assert (r->rejected, "reserved funds cannot be withdrawn");
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE);
    r = engine_withdraw (s_e, s_alice, P, 100000, T0 + 2);
    cr_assert (!r->rejected);
    uint64_t wid = r->ref;
    cr_assert_gt (wid, 0);
    s_assert_balance (s_alice, P, 0, 200000);
    int64_t avail, resv, out;
    engine_asset_totals (s_e, P, &avail, &resv, &out);
    cr_assert_eq (out, 100000);
    r = engine_withdrawal_close (s_e, wid, true, T0 + 3);
    cr_assert (!r->rejected && !r->duplicate);
    s_assert_balance (s_alice, P, 100000, 200000);
    r = engine_withdrawal_close (s_e, wid, true, T0 + 3);
    cr_assert (r->duplicate, "a second close changes nothing");
    s_assert_balance (s_alice, P, 100000, 200000);
    r = engine_withdrawal_close (s_e, wid + 1, false, T0 + 3);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_UNKNOWN_WITHDRAWAL);
    //  a paid one gives nothing back
    wid = engine_withdraw (s_e, s_alice, P, 50000, T0 + 4)->ref;
    cr_assert (!engine_withdrawal_close (s_e, wid, false, T0 + 5)->rejected);
    s_assert_balance (s_alice, P, 50000, 200000);
    engine_asset_totals (s_e, P, &avail, &resv, &out);
    cr_assert_eq (out, 0);
}

Test (escrow, a_deposit_is_credited_once_per_id_in_any_order)
{
    const engine_result_t *r = engine_deposit (s_e, s_bob, E, 5000, 3, T0 + 1);
    cr_assert (!r->rejected && !r->duplicate);
    cr_assert_eq (s_balance_event (r, s_bob, E)->cause, PROTO_BALANCE_CAUSE_DEPOSIT);
    cr_assert_eq (s_balance_event (r, s_bob, E)->ref, 3);
    cr_assert (engine_deposit (s_e, s_bob, E, 5000, 3, T0 + 1)->duplicate);
    cr_assert (!engine_deposit (s_e, s_bob, E, 1000, 1, T0 + 1)->duplicate);
    cr_assert (!engine_deposit (s_e, s_bob, E, 1000, 2, T0 + 1)->duplicate);
    for (uint64_t id = 1; id <= 3; id++)
        cr_assert (engine_deposit (s_e, s_bob, E, 1000, id, T0 + 1)->duplicate);
    s_assert_balance (s_bob, E, 7000, 0);
    r = engine_deposit (s_e, s_bob, E, 0, 4, T0 + 1);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_BAD_AMOUNT);
    r = engine_deposit (s_e, s_bob, E, ACCOUNTS_BALANCE_MAX, 5, T0 + 1);
    cr_assert_eq (r->reason, PROTO_REJECT_REASON_BAD_AMOUNT, "past the largest balance");
    cr_assert_eq (r->event_count, 0, "a refused account command has no event");
}

Test (escrow, accounts_survive_a_snapshot)
{
    s_fund (s_alice, P, 700000);
    s_fund (s_bob, E, 9000);
    cr_assert (!s_limit (s_alice, PROTO_SIDE_BUY, 3, 100000)->rejected);
    cr_assert (!s_limit (s_bob, PROTO_SIDE_SELL, 1, 100000)->rejected);
    engine_withdraw (s_e, s_bob, E, 1000, T0 + 2);
    engine_deposit (s_e, s_bob, P, 10, 9, T0 + 2); //  out of order: kept above the floor
    size_t size;
    uint8_t *snap = engine_snapshot (s_e, &size);
    cr_assert_not_null (snap);
    uint64_t hash = engine_state_hash (s_e);
    mce_config_t cfg;
    char err[256];
    config_load (&cfg, NULL, err, sizeof err);
    cfg.markets[0].escrow = true;
    cfg.markets[0].tick = 10000; //  as s_setup's: the holds of resting orders depend on them
    cfg.markets[0].lot = 1000;
    cfg.markets[0].min_qty = 1000;
    engine_t *copy = engine_new (&cfg);
    cr_assert_eq (engine_restore (copy, snap, size), 0);
    cr_assert_eq (engine_state_hash (copy), hash);
    int64_t a, r;
    engine_balance (copy, s_bob, E, &a, &r);
    cr_assert_eq (a, 7000);
    cr_assert (engine_deposit (copy, s_bob, P, 10, 9, T0 + 3)->duplicate);
    cr_assert (!engine_withdrawal_close (copy, 1, true, T0 + 3)->duplicate);
    engine_balance (copy, s_bob, E, &a, &r);
    cr_assert_eq (a, 8000);
    //  the balances are part of the hash
    engine_deposit (s_e, s_alice, P, 1, 10, T0 + 3);
    cr_assert_neq (engine_state_hash (s_e), hash);
    engine_destroy (&copy);
    free (snap);
}

Test (escrow, a_snapshot_does_not_restore_under_other_reservation_settings)
{
    s_fund (s_alice, P, 700000);
    cr_assert (!s_limit (s_alice, PROTO_SIDE_BUY, 3, 100000)->rejected);
    size_t size;
    uint8_t *snap = engine_snapshot (s_e, &size);
    mce_config_t cfg;
    char err[256];
    config_load (&cfg, NULL, err, sizeof err);
    cfg.markets[0].tick = 10000;
    cfg.markets[0].lot = 1000;
    cfg.markets[0].min_qty = 1000;
    cfg.markets[0].escrow = false;
    engine_t *other = engine_new (&cfg); //  escrow off: the resting bid's hold would leak
    cr_assert_eq (engine_restore (other, snap, size), -2);
    engine_destroy (&other);
    cfg.markets[0].escrow = true;
    cfg.markets[0].max_price = 50000000; //  a market buy would hold at another price
    other = engine_new (&cfg);
    cr_assert_eq (engine_restore (other, snap, size), -2);
    engine_destroy (&other);
    cfg.markets[0].max_price = 100000000; //  as it was: it restores
    other = engine_new (&cfg);
    cr_assert_eq (engine_restore (other, snap, size), 0);
    cr_assert_eq (engine_state_hash (other), engine_state_hash (s_e));
    engine_destroy (&other);
    free (snap);
}

//  ------------------------------------------------------------------------------------------
//  Auctions

Test (escrow_auction, clearing_below_the_limit_frees_the_difference)
{
    s_setup_with (CONFIG_MODE_AUCTION, 10000, 1000);
    s_fund (s_alice, P, 1000000);
    s_fund (s_bob, E, 5000);
    cr_assert (!s_limit (s_alice, PROTO_SIDE_BUY, 4, 200000)->rejected); //  holds 0.80
    cr_assert (!s_limit (s_bob, PROTO_SIDE_SELL, 3, 100000)->rejected);
    s_assert_balance (s_alice, P, 200000, 800000);
    const engine_result_t *r =
        engine_control (s_e, 0, s_alice, true, PROTO_CONTROL_ACTION_TRIGGER_MATCHING, T0 + 2);
    cr_assert (!r->rejected);
    //  3 kWh clear at 0.15 (the midpoint): 0.45 paid, 1 kWh still rests holding 0.20
    s_assert_balance (s_alice, P, 1000000 - 450000 - 200000, 200000);
    s_assert_balance (s_bob, E, 2000, 0);
    engine_advance (s_e, T0 + 900LL * 1000000000LL);
    s_assert_balance (s_alice, P, 550000, 0);
    engine_destroy (&s_e);
}

Test (escrow_auction, a_market_bid_is_bounded_by_the_band)
{
    s_setup_with (CONFIG_MODE_AUCTION, 10000, 1000);
    s_fund (s_alice, P, 200000000);
    s_fund (s_bob, E, 2000);
    cr_assert (
        !s_order (s_alice, PROTO_SIDE_BUY, PROTO_ORDER_TYPE_MARKET, PROTO_TIF_GTC, 2, 0)->rejected);
    s_assert_balance (s_alice, P, 0, 200000000);
    cr_assert (!s_limit (s_bob, PROTO_SIDE_SELL, 1, 300000)->rejected);
    engine_advance (s_e, T0 + 900LL * 1000000000LL); //  gate closure: clears, the rest expires
    s_assert_balance (s_alice, P, 200000000 - 300000, 0);
    s_assert_balance (s_bob, E, 1000, 0);
    engine_destroy (&s_e);
}

Test (escrow_off, a_market_without_escrow_trades_with_no_balance)
{
    mce_config_t cfg;
    char err[256];
    config_load (&cfg, NULL, err, sizeof err);
    cr_assert (cfg.markets[0].escrow, "escrow is the default");
    cfg.markets[0].escrow = false;
    s_e = engine_new (&cfg);
    cr_assert (!engine_market_escrow (s_e, 0));
    s_alice = engine_user_intern (s_e, "alice");
    s_bob = engine_user_intern (s_e, "bob");
    engine_advance (s_e, T0);
    cr_assert (!s_limit (s_bob, PROTO_SIDE_SELL, 1, 100000)->rejected);
    const engine_result_t *r = s_limit (s_alice, PROTO_SIDE_BUY, 1, 100000);
    cr_assert_eq (r->filled, 1000);
    cr_assert_null (s_balance_event (r, s_alice, P));
    s_assert_balance (s_alice, P, 0, 0);
    engine_destroy (&s_e);
}
