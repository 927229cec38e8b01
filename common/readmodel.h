/*  readmodel — an in-memory view of the markets, kept from the matcher bus, shared by the
    gateway (market data, my orders) and the broadcaster (channel snapshots)
    (docs/architecture.md: the bus, the gateway, the broadcaster), answering the market-data and
    my-orders queries as JSON.

    Its owner's event loop feeds it every event of stream m in seq order (bus_sub does the
    replay and the de-duplication) and asks it questions between events, all on that one
    thread: there are no locks, and nothing here may be called from another thread.

    What it keeps, per market:
      - the book of every open epoch (from book_level), levels best first; an epoch's book is
        dropped when its epoch_state says cleared or settled;
      - the last trades (a ring) and per-minute buckets of the last 24 h for the stats;
      - the epochs (from epoch_state), newest first, up to a cap;
      - the market's status (open / paused, from market_state).
    And across markets:
      - orders by id (from order_accepted, then trade, order_cancelled, order_expired,
        order_amended), with a per-user list, newest first, and client_order_id -> order;
      - the last trades of every user (buyer or seller), a ring shared by all users;
      - every user's balances (from balance events): available and reserved, per asset.

    Bounded memory: every open order is kept (the matcher's books bound them); finished orders
    (filled, cancelled, expired) are kept up to limits.finished_orders, the oldest finished
    evicted first, and with them their client_order_id. Trades, epochs and user trades are
    rings. User names are interned and kept for the life of the model, as the matcher does.

    JSON conventions (the public API): quantities are kWh decimal strings, prices decimal
    strings per kWh, money decimal strings, times RFC 3339 UTC strings, order and trade ids
    strings (they are uint64), epoch numbers integers; a value not known yet is null. Market
    responses carry "market" and "seq" (the seq of the last event applied), so a client can
    relate them to the bus.
*/
#ifndef MCE_READMODEL_H
#define MCE_READMODEL_H

#include "config.h"
#include "proto.h"

#include <jansson.h>
#include <stdint.h>

//  Defaults of readmodel_limits_t.
#define READMODEL_FINISHED_ORDERS 100000 //  filled/cancelled/expired orders kept, all users
#define READMODEL_MARKET_TRADES   1000   //  trades kept per market for readmodel_trades
#define READMODEL_EPOCHS          2000   //  epochs kept per market
#define READMODEL_USER_TRADES     100000 //  trades kept for readmodel_user_trades, all users
//  The most items one query returns (limit, levels); larger requests are clamped.
#define READMODEL_LIMIT_MAX 1000

typedef struct _readmodel_t readmodel_t;

typedef struct {
    size_t finished_orders;
    size_t market_trades;
    size_t epochs;
    size_t user_trades;
} readmodel_limits_t;

//  A model of the markets of cfg (borrowed: it must outlive the model), with the default
//  limits. NULL when memory runs out.
readmodel_t *readmodel_new (const mce_config_t *cfg);
//  As readmodel_new with explicit limits (each at least 1); tests use small ones.
readmodel_t *readmodel_new_limits (const mce_config_t *cfg, const readmodel_limits_t *limits);
void readmodel_destroy (readmodel_t **self_p);

//  Applies one event of the matcher stream, in seq order, each seq once. Kinds it has no use
//  for (commands, clock, order_rejected) only advance the seq; heartbeats, replies and
//  settler events are ignored entirely. Events of markets not in cfg are ignored.
void readmodel_apply (readmodel_t *self, const proto_msg_t *event);
//  The seq of the last matcher event applied; 0 before the first.
uint64_t readmodel_seq (readmodel_t *self);

//  Every query returns a new JSON object that belongs to the caller (json_decref it), or NULL
//  when the market is unknown. epoch -1 means the current epoch: the last the matcher
//  announced active, or, before any such event, the one the wall clock is in. levels and
//  limit are clamped to 0 ... READMODEL_LIMIT_MAX (levels <= 0: all levels, up to that max);
//  a negative offset counts as 0. now_ns is the wall clock, for remaining time and 24 h.

//  {market, epoch, seq, bids: [{price, energy_amount, orders}], asks: [...]}, best first.
json_t *readmodel_depth (readmodel_t *self, const char *market, int64_t epoch, int levels);
//  As readmodel_depth, with every level of the book (no cap): the broadcaster's snapshots.
json_t *readmodel_book (readmodel_t *self, const char *market, int64_t epoch);
//  {epoch, state, start, end, clearing_price, volume, trades} of one epoch, as in
//  readmodel_epochs; NULL when the market or the epoch is unknown.
json_t *readmodel_epoch (readmodel_t *self, const char *market, int64_t epoch);
//  An auction market's indicative clearing of one open epoch (the matcher's latest indicative
//  event): {market, epoch, delivery_start, delivery_end, crossed, price, volume, demand,
//  supply, imbalance_side, imbalance, grid_sold, grid_bought, as_of, seq}; crossed false,
//  price null and as_of null while none has come. NULL when the market is unknown or the
//  epoch is not open (cleared, or never announced and not the current one).
json_t *readmodel_indicative (readmodel_t *self, const char *market, int64_t epoch);
//  Every open epoch's latest indicative clearing of a market, as readmodel_indicative, in no
//  particular order (the broadcaster's snapshot); NULL when the market is unknown.
json_t *readmodel_indicatives (readmodel_t *self, const char *market);
//  {market, epoch, seq, bids: [{price, cumulative_energy}], asks: [...]}: bids summed from the
//  best (highest) down, asks from the best (lowest) up.
json_t *readmodel_depth_chart (readmodel_t *self, const char *market, int64_t epoch, int levels);
//  {market, seq, epoch, status, best_bid, best_ask, spread, last_price, volume_24h, trades_24h,
//  change_24h, active_orders}. Best bid/ask are of the current epoch's book; active_orders
//  counts the resting orders of every open book; the 24 h window is to the minute, and
//  change_24h is the last price minus the first price in the window (signed).
json_t *readmodel_stats (readmodel_t *self, const char *market, int64_t now_ns);
//  {market, seq, epoch, state, <an epoch's figures>} of epoch (-1: the latest cleared or
//  settled one; all null but market and seq when none has cleared yet). NULL when the market,
//  or the epoch asked for, is unknown. An epoch's figures, everywhere an epoch is shown:
//  clearing_price (the gate closure's auction; null in continuous mode or when nothing
//  crossed), volume, trades, value and average_price (volume-weighted; all as the trades come,
//  then as the cleared epoch says), demand and supply (the participants' D and S at the
//  clearing price, null without one), last_auction ({clearing_price, volume, trades, demand,
//  supply, grid_sold, grid_bought, triggered, auctions}, or null).
json_t *readmodel_clearing_price (readmodel_t *self, const char *market, int64_t epoch);
//  {market, seq, trades: [{trade_id, epoch, price, energy_amount, value, aggressor, time}]},
//  newest first; aggressor "Buy", "Sell", or null for auction trades.
json_t *readmodel_trades (readmodel_t *self, const char *market, int limit);
//  {market, seq, epoch, state, start, end, seconds_remaining, market_status,
//  last_cleared_epoch, last_clearing_price, last_volume, last_average_price} of the current
//  epoch.
json_t *readmodel_epoch_status (readmodel_t *self, const char *market, int64_t now_ns);
//  {market, seq, epochs: [{epoch, state, start, end, clearing_price, volume, trades}],
//  limit, offset, total}, newest (highest epoch number) first.
json_t *readmodel_epochs (readmodel_t *self, const char *market, int limit, int offset);

//  Which orders of a user to list.
typedef struct {
    const char *market; //  NULL = any
    int64_t epoch;      //  -1 = any
    const char *status; //  NULL = any; "open" = open or partially_filled; else one status name
    int limit, offset;
} readmodel_order_filter_t;

//  {seq, orders: [order...], limit, offset, total}, newest first; total counts every match.
//  An order is {order_id, client_order_id, market, epoch, side, order_type, time_in_force,
//  post_only, energy_amount, price, filled_amount, remaining_amount, unfilled_amount,
//  average_price, status, end_reason, energy_source, expires_at, created_at, updated_at}.
//  energy_amount is filled + remaining + unfilled (an amendment changes it); remaining_amount
//  is what is still open (0 once it ended), unfilled_amount what an ended order left
//  untraded; end_reason says why it ended (filled; cancelled: user, admin, self_trade,
//  unfilled, fok_unfillable; expired: epoch_close, expires_at), null while it is open. Never
//  NULL (an unknown user has no orders).
json_t *readmodel_user_orders (readmodel_t *self, const char *user,
                               const readmodel_order_filter_t *filter);
//  One order as above plus seq, or NULL if unknown (never seen, or evicted). *owner, when
//  owner is not NULL, is set to the owner's user id (borrowed from the model, valid while it
//  lives) so the caller can refuse other users.
json_t *readmodel_order (readmodel_t *self, uint64_t order_id, const char **owner);
//  The id of the newest order the user placed with client_order_id, while that order is still
//  known (for idempotent retries), or 0.
uint64_t readmodel_find_client_order (readmodel_t *self, const char *user,
                                      const char *client_order_id);
//  {seq, trades: [{trade_id, order_id, market, epoch, side, price, energy_amount, value, time}],
//  limit, offset, total}: the user's recent trades (as buyer or seller; side is the user's side,
//  order_id the user's own order), newest first. Only the last limits.user_trades trades of all
//  users are kept. Never NULL.
json_t *readmodel_user_trades (readmodel_t *self, const char *user, int limit, int offset);
//  {seq, order_id, filled_amount, fills: [{trade_id, price, energy_amount, value, time}],
//  complete} of one order, its fills oldest first; complete is false when some of them have
//  left the read model (the oldest trades go first). NULL when the order is unknown; *owner
//  (when not NULL) its owner's name.
json_t *readmodel_order_fills (readmodel_t *self, uint64_t order_id, const char **owner);

//  {seq, balances: {energy: {available, reserved, total}, payment: {...}}}: energy in kWh,
//  payment in money units, as decimal strings; zeros for a user with no balance yet. Never NULL.
json_t *readmodel_user_balances (readmodel_t *self, const char *user);

#endif
