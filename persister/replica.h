/*  replica — the persister's own copy of what Redis should hold: every resting order, per
    market the trade totals and the newest trades, and every user's balances. It is what lets
    Redis be rebuilt at any moment without asking anyone: after a Redis outage, or when Redis
    comes back empty, rstore rewrites every book and balance from here.

    It follows the matcher's events in seq order, right after Postgres has taken them, so it is
    always the state as of Postgres's offset. At start it is loaded from Postgres (the resting
    orders, the totals, the newest trades, all as of that offset), then it follows the bus from
    there; the persister never has to replay history to know the current books.

    Only GTC limit orders rest: a market, IOC or FOK order is gone by the end of the command
    that brought it, so it is never put in (a batch cut between its accept and its cancel
    would otherwise show it in a book for a moment). Trades and cancels of orders it does not
    hold are ignored.

    A balance event sets its user's balance of its asset (the event carries the new balance, so
    nothing is added up here); a user, once seen, stays.

    Between replica_apply and replica_clear_changes it remembers what changed: the orders
    touched (with the book they are or were in, so a removal can be written), the markets
    whose totals moved and how many trades each gained, the users whose balances changed.
    rstore writes exactly that.

    One thread uses a replica_t. Integers only: Wh, µ/kWh, µ.
*/
#ifndef MCE_REPLICA_H
#define MCE_REPLICA_H

#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLICA_TRADES_DEFAULT 1000 //  newest trades kept per market (the Redis list's length)

//  One resting order.
typedef struct {
    uint64_t id;
    int64_t epoch;
    int64_t price;     //  µ/kWh
    int64_t qty;       //  Wh: filled + remaining
    int64_t filled;    //  Wh
    int64_t remaining; //  Wh, > 0
    uint64_t seq;      //  of the last event that changed it
    uint32_t market;   //  index: replica_market
    proto_side_t side;
    char user[PROTO_STR64_MAX + 1];
    uint64_t change_gen; //  internal: whether it is in the current change list
} replica_order_t;

//  One trade as the newest-trades list keeps it (the public part of a trade event).
typedef struct {
    uint64_t trade_id;
    uint64_t seq;
    int64_t ts; //  ns
    int64_t epoch;
    uint64_t buy_order_id, sell_order_id;
    int64_t qty;   //  Wh
    int64_t price; //  µ/kWh
    int64_t value; //  µ
    proto_side_t aggressor;
} replica_trade_t;

//  A market's totals and newest trades.
typedef struct {
    char id[PROTO_STR32_MAX + 1];
    uint64_t trades;       //  number of trades ever
    int64_t volume;        //  Wh traded ever
    int64_t value;         //  µ traded ever
    uint64_t seq;          //  of its last trade; 0 when none
    size_t new_trades;     //  trades since replica_clear_changes
    bool changed;          //  totals moved since replica_clear_changes
    size_t ring_count;     //  trades kept (replica_trade)
    replica_trade_t *ring; //  internal: a circular buffer of ring_cap trades
    size_t ring_head, ring_cap;
} replica_market_t;

//  One user's balances as the latest balance events left them (zero for an asset none has
//  touched): asset[REPLICA_ENERGY] in Wh, asset[REPLICA_PAYMENT] in µ.
#define REPLICA_ENERGY  0
#define REPLICA_PAYMENT 1
typedef struct {
    char user[PROTO_STR64_MAX + 1];
    struct {
        int64_t available; //  free to order or withdraw
        int64_t reserved;  //  held by open orders
    } asset[2];
    uint64_t seq;        //  of its last balance event
    uint64_t change_gen; //  internal: whether it is in the current change list
} replica_balance_t;

//  An order touched since replica_clear_changes: where it is (or was) resting. Whether it is
//  still resting is replica_order (self, id) != NULL.
typedef struct {
    uint64_t id;
    uint32_t market;
    int64_t epoch;
    proto_side_t side;
} replica_change_t;

typedef struct _replica_t replica_t;

//  An empty replica keeping the newest trades_kept trades per market (>= 1). NULL when memory
//  runs out.
replica_t *replica_new (size_t trades_kept);
//  Idempotent; nulls *self_p.
void replica_destroy (replica_t **self_p);

//  Loading, before the first replica_apply (from Postgres, as of its offset seq). 0, or -1
//  when memory runs out or the record is not one that rests (no id, no price, nothing left).
int replica_load_order (replica_t *self, const char *market, const replica_order_t *order);
//  Sets a market's totals (creating it).
int replica_load_totals (replica_t *self, const char *market, uint64_t trades, int64_t volume,
                         int64_t value);
//  Adds one of a market's newest trades, oldest first; the totals are not touched.
int replica_load_trade (replica_t *self, const char *market, const replica_trade_t *trade);
//  Sets a user's balance of one asset (creating the user), with the seq of the event it is from.
//  0, or -1 when memory runs out or the asset is neither energy nor payment.
int replica_load_balance (replica_t *self, const char *user, proto_asset_t asset, int64_t available,
                          int64_t reserved, uint64_t seq);
//  The seq the loaded state is at.
void replica_set_seq (replica_t *self, uint64_t seq);

//  Applies events of the matcher's stream, in seq order, and records what changed. 0, or -1
//  when memory runs out (the replica is then incomplete: rebuild it).
int replica_apply (replica_t *self, const proto_msg_t *events, size_t count);
//  Forgets the changes (once Redis has them, or when a rewrite will cover them).
void replica_clear_changes (replica_t *self);

//  The seq of the last event applied (or set).
uint64_t replica_seq (const replica_t *self);
//  The resting order with that id, or NULL. Borrowed until the next change to self.
const replica_order_t *replica_order (const replica_t *self, uint64_t id);
size_t replica_order_count (const replica_t *self);
//  Calls fn for every resting order, in no particular order.
void replica_each_order (const replica_t *self,
                         void (*fn) (void *arg, const replica_order_t *order), void *arg);

size_t replica_market_count (const replica_t *self);
//  Market number i (0 .. count - 1). Borrowed.
const replica_market_t *replica_market (const replica_t *self, uint32_t i);
//  Its trades kept: i = 0 is the newest, up to ring_count - 1. Borrowed.
const replica_trade_t *replica_trade (const replica_market_t *market, size_t i);
size_t replica_trades_kept (const replica_t *self);

size_t replica_change_count (const replica_t *self);
const replica_change_t *replica_change (const replica_t *self, size_t i);

size_t replica_balance_count (const replica_t *self);
//  User number i (0 .. count - 1), in the order they first appeared. Borrowed until the next
//  change to self.
const replica_balance_t *replica_balance (const replica_t *self, size_t i);
//  The user's balances, or NULL when no balance event named the user. Borrowed likewise.
const replica_balance_t *replica_balance_find (const replica_t *self, const char *user);
//  The users whose balances changed since replica_clear_changes, each once. Borrowed likewise.
size_t replica_balance_change_count (const replica_t *self);
const replica_balance_t *replica_balance_change (const replica_t *self, size_t i);

#endif
