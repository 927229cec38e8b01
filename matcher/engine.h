/*  engine — the matching engine: markets, delivery epochs, books, the matching rules. No
    sockets, no I/O, no clock: every call says what time it is, so replaying the same calls
    gives the same events and the same state hash (docs/clearing.md; docs/architecture.md, The
    matcher service).

    Each call decides one command and returns its outcome and its events, in the order they
    happen. Events are compact structs (engine_event_t) rather than proto messages: the hot
    path writes 80 bytes per event (sizeof (engine_event_t)), and the service turns them into bus
   messages, resolving market and user indices to names.

    Users and markets are indices: the service interns a user name once per command with
    engine_user_intern and looks markets up with engine_market_find.
*/
#ifndef MCE_ENGINE_H
#define MCE_ENGINE_H

#include "config.h"
#include "proto.h"

#include <stdbool.h>
#include <stdint.h>

#define ENGINE_USER_MAX 64 //  bytes in a user id (as proto's STR64)

typedef enum {
    ENGINE_STP_CANCEL_RESTING = 0, //  default: the resting order of the same user is cancelled
    ENGINE_STP_CANCEL_NEWEST,      //  the incoming order's remainder is cancelled
    ENGINE_STP_CANCEL_BOTH,
} engine_stp_t;

typedef enum {
    ENGINE_EV_ACCEPTED = 1, //  order_id, user, side, qty, price, epoch
    ENGINE_EV_REJECTED,     //  user, reason (proto_reject_reason_t)
    ENGINE_EV_TRADE,        //  trade_id, order_id (buy), order_id2 (sell), user (buyer),
                            //  user2 (seller), qty, price, value, side (aggressor, 0 in auctions),
                            //  flag (proto_side_t the grid took, 0 = none; its order id is 0)
    ENGINE_EV_CANCELLED,    //  order_id, user, qty (removed), reason (proto_cancel_reason_t)
    ENGINE_EV_EXPIRED,      //  order_id, user, qty (removed), reason (proto_expire_reason_t)
    ENGINE_EV_AMENDED,      //  order_id, user, qty (new remaining), price, flag (kept priority)
    ENGINE_EV_LEVEL,        //  side, price, qty (total now), count
    ENGINE_EV_EPOCH,        //  reason (proto_epoch_phase_t), epoch; once cleared: price (the
                            //  gate closure's auction, 0 = none), qty (volume), count (trades),
                            //  value, demand and supply (of that auction)
    ENGINE_EV_AUCTION,      //  epoch, price (0 = nothing crossed), qty (volume), count (trades),
                            //  demand, supply, grid (> 0 sold, < 0 bought), flag (1: triggered)
    ENGINE_EV_INDICATIVE,   //  epoch, price (0 = nothing crosses), qty (V), demand, supply, grid
                            //  (> 0 sells, < 0 buys), side (proto_side_t left unmatched, 0 =
                            //  none) and value (Wh left unmatched there)
    ENGINE_EV_MARKET,       //  reason (proto_market_status_t), flag (proto_control_action_t), user
    ENGINE_EV_WITHDRAWAL,   //  order_id (withdrawal id), user, side (proto_asset_t), qty (amount),
                            //  reason (proto_withdrawal_phase_t)
} engine_event_kind_t;

typedef struct {
    uint8_t kind;   //  engine_event_kind_t
    uint8_t side;   //  proto_side_t where it applies
    uint8_t reason; //  per kind, see above
    uint8_t flag;
    uint32_t market;
    uint32_t user, user2;
    uint32_t count;
    int64_t epoch;
    union {
        struct {
            uint64_t order_id, order_id2;
            uint64_t trade_id;
        };
        struct { //  ENGINE_EV_EPOCH and ENGINE_EV_AUCTION
            int64_t demand, supply;
            int64_t grid;
        };
    };
    int64_t qty;
    int64_t price;
    int64_t value;
} engine_event_t;

//  A (user, asset) balance a command changed: where it ended and by how much. These follow a
//  command's events (engine_result_balance), one per pair, in the order first touched.
typedef struct {
    uint32_t user;
    uint32_t market; //  of the order or trade behind it; UINT32_MAX = none
    proto_asset_t asset;
    proto_balance_cause_t cause;
    uint64_t ref;                    //  order, trade, deposit or withdrawal id, per cause
    int64_t available, reserved;     //  after the command
    int64_t d_available, d_reserved; //  the change
} engine_balance_t;

//  What the command's sender is told (the reply), besides the events.
typedef struct {
    const engine_event_t *events; //  valid until the next call
    uint32_t event_count;
    uint32_t balance_count; //  balances touched, read with engine_result_balance
    bool rejected;
    bool duplicate;               //  a resubmitted client_order_id: the first answer, no events
    proto_reject_reason_t reason; //  when rejected
    const char *message;          //  human text for a rejection (static)
    uint64_t order_id;
    int64_t epoch;
    proto_order_status_t status;
    int64_t filled, remaining; //  Wh
    uint64_t ref;              //  the withdrawal created, or the deposit or withdrawal acted on
} engine_result_t;

//  A new order, with market and user already resolved.
typedef struct {
    uint32_t market;
    uint32_t user;
    bool admin;
    proto_side_t side;
    proto_order_type_t type;
    proto_tif_t tif;
    bool post_only;
    int64_t qty;                 //  Wh
    int64_t price;               //  µ/kWh, ignored for market orders
    int64_t epoch;               //  delivery epoch number, 0 = the current one
    int64_t expires_at;          //  ns, 0 = none
    const char *client_order_id; //  NULL or "" = none
} engine_order_t;

typedef struct _engine_t engine_t;

//  The index-th balance the last command touched (index < balance_count), or false when it
//  ended where it began (nothing to publish). The engine keeps a list of the pairs it touched
//  and builds each change only here: the matcher turns it straight into its bus message,
//  and a command that publishes nothing (a benchmark) pays only for the list.
bool engine_result_balance (const engine_t *self, uint32_t index, engine_balance_t *out);

//  An engine for the markets of cfg (copied). NULL when out of memory.
engine_t *engine_new (const mce_config_t *cfg);
void engine_destroy (engine_t **self_p);

//  Market index of id, or -1.
int engine_market_find (const engine_t *self, const char *id);
const char *engine_market_name (const engine_t *self, uint32_t market);
//  The index of a user name (interned on first sight). UINT32_MAX when out of memory.
uint32_t engine_user_intern (engine_t *self, const char *name);
const char *engine_user_name (const engine_t *self, uint32_t user);
//  Self-trade prevention of a market (default: cancel the resting order).
void engine_set_stp (engine_t *self, uint32_t market, engine_stp_t stp);

const engine_result_t *engine_new_order (engine_t *self, const engine_order_t *order, int64_t now);
const engine_result_t *engine_cancel (engine_t *self, uint32_t market, uint32_t user, bool admin,
                                      uint64_t order_id, int64_t now);
//  New remaining quantity (0 = unchanged); new price (0 = unchanged). A lower quantity at the same
//  price keeps priority; a higher one or a new price loses it, and a new price may trade.
const engine_result_t *engine_amend (engine_t *self, uint32_t market, uint32_t user, bool admin,
                                     uint64_t order_id, int64_t qty, int64_t price, int64_t now);
const engine_result_t *engine_control (engine_t *self, uint32_t market, uint32_t user, bool admin,
                                       proto_control_action_t action, int64_t now);
//  Accounts (docs/clearing.md, Accounts and escrow). A confirmed deposit is credited once per
//  deposit id (a repeat is acknowledged as a duplicate and changes nothing). A withdrawal debits
//  available (never reserved) and gets an id; closing it either records it paid or credits it
//  back, once.
const engine_result_t *engine_deposit (engine_t *self, uint32_t user, proto_asset_t asset,
                                       int64_t amount, uint64_t deposit_id, int64_t now);
const engine_result_t *engine_withdraw (engine_t *self, uint32_t user, proto_asset_t asset,
                                        int64_t amount, int64_t now);
const engine_result_t *engine_withdrawal_close (engine_t *self, uint64_t withdrawal_id, bool refund,
                                                int64_t now);
//  A user's balance of one asset (zeros for a user never seen).
void engine_balance (const engine_t *self, uint32_t user, proto_asset_t asset, int64_t *available,
                     int64_t *reserved);
//  Every user's balances of one asset added up, and what open withdrawals of it still owe.
void engine_asset_totals (const engine_t *self, proto_asset_t asset, int64_t *available,
                          int64_t *reserved, int64_t *withdrawing);
//  True when the market's orders reserve balances (config escrow).
bool engine_market_escrow (const engine_t *self, uint32_t market);

//  Moves every market's epochs to `now`: closes (and in auction mode clears) the epochs that
//  ended, expires their leftovers and orders past expires_at, opens the new ones.
const engine_result_t *engine_advance (engine_t *self, int64_t now);

//  The whole state as bytes (books, orders in queue order, users, markets, counters, client
//  order ids), for a snapshot. Returns a buffer the caller frees, NULL when out of memory.
uint8_t *engine_snapshot (const engine_t *self, size_t *size);
//  Replaces the state with a snapshot's. 0; -1 when it is malformed or was taken with other
//  markets; -2 when a market with orders resting in it now reserves differently (escrow, lot,
//  tick or max_price changed: what those orders hold would not match). The engine is then
//  empty, as new.
int engine_restore (engine_t *self, const uint8_t *data, size_t size);

//  A hash over every book, order, epoch and counter: equal states, equal hashes.
uint64_t engine_state_hash (const engine_t *self);
//  Orders resting over all books.
uint64_t engine_resting (const engine_t *self);
//  Orders resting in the open books (every epoch) of one market.
uint64_t engine_market_resting (const engine_t *self, uint32_t market);
//  Bytes the engine holds on the heap (pool, index, levels), for the benchmark.
size_t engine_memory (const engine_t *self);

#endif
