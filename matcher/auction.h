/*  auction — the uniform-price call auction that clears an epoch's book at gate closure
    (docs/clearing.md, Auction mode; pay-as-clear).

    Pure functions over two arrays the caller already keeps in priority order (the book does):
    auction_clear clears in a handful of linear passes and a heap of users' loads, and
    auction_indicate says what it would do (no fills, no trades). No sort, no allocation, no
    globals, no I/O. The caller owns every buffer, sized by auction_scratch_size and nbids +
    nasks, so the matcher can reuse them epoch after epoch and a benchmark or a test can call
    them alone.

    The rules, precisely (docs/clearing.md repeats them with a worked example):
    1. Candidates are the distinct limit prices on both sides. D(p) is the quantity of bids
       priced >= p, S(p) of asks priced <= p; market orders count at every price. V(p) is
       min (D, S), the surplus |D - S|.
    2. Keep the candidates of maximal V (V > 0, else nothing crosses), of those the ones of
       minimal surplus; the price is the midpoint of the lowest and highest of them, rounded
       down to a multiple of tick. Only market orders: nothing crosses (no price to use).
    3. At that price each side fills in priority order up to V = min (D, S); at the level
       where V runs out, by time or pro rata (floor to lot, leftover lots by time).
    4. No user trades with itself, and the volume is the most any such pairing of the eligible
       orders reaches: V, or less when one user's orders stand on both sides, at most
       (D - d_u) + (S - s_u) for each user u. The sides fill by rule 3 up to that volume;
       a user whose fills on both sides then exceed it (at most one can) gives the excess
       way, on its bids first, then its asks, each from its last order in priority, to the
       other users' orders next in priority (then the grid where it stands). The fills are
       zipped in priority order; a bid that meets its owner's ask takes the next ask of
       another user, and a trade stops short where it would leave any user holding more
       than what is left to pair. Everything filled trades. The price (rules 1 and 2) does
       not look at users.
    5. Uniform: every trade at the clearing price. Pay-as-bid: at the bid's limit price,
       a market bid at the clearing price.
    6. The grid, when the market names its tariffs (the grid as backstop), stands as an ask of any
       quantity at the import price I and a bid of any quantity at the feed-in price F < I.
       Candidates are then the limit prices inside [F, I] and the two tariffs themselves, so
       the price never leaves that corridor. At I the supply is unbounded, so V (I) = D (I);
       at F the demand is, so V (F) = S (F); the surplus that breaks ties is the
       participants' |D - S| everywhere. The grid trades only at its own price: it sells
       V - S when the price is I and buys V - D when it is F, last in priority at that price
       (a prosumer's ask at I sells before the grid's). Its trades are at that price under
       either pricing rule, and it is never a participant (its user places no orders).
*/
#ifndef MCE_AUCTION_H
#define MCE_AUCTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  A limit ask at 0 and a market ask are the same order (both sell at any price >= 0), so
//  0 is never a candidate price from the ask side; a limit bid at 0 is a candidate.
#define AUCTION_MARKET_BID INT64_MAX /* price of a market bid: buys at any price */
#define AUCTION_MARKET_ASK 0         /* price of a market ask: sells at any price */

typedef struct {
    uint32_t handle; /* the caller's order handle, echoed in trades */
    uint32_t user;   /* owner; a user's bid is never paired with the same user's ask */
    int64_t price;   /* µ/kWh: limit price on tick, or AUCTION_MARKET_BID / _ASK */
    int64_t qty;     /* Wh, > 0, a multiple of lot */
} auction_order_t;

typedef enum {
    AUCTION_MARGINAL_TIME = 0, /* the marginal level fills earliest first */
    AUCTION_MARGINAL_PRO_RATA  /* in proportion to quantity, in lots, leftovers by time */
} auction_marginal_t;

typedef enum {
    AUCTION_PRICE_UNIFORM = 0, /* every trade at the clearing price */
    AUCTION_PRICE_PAY_AS_BID   /* at the bid's limit (a market bid: the clearing price) */
} auction_pricing_t;

/* The grid as backstop: 0 for a tariff it does not offer. The prices are on tick and, when
   both are offered, feed_in_price < import_price. */
typedef struct {
    int64_t import_price;  /* µ/kWh it sells at, any quantity; 0: it does not sell */
    int64_t feed_in_price; /* µ/kWh it buys at, any quantity; 0: it does not buy */
    uint32_t handle;       /* its handle in trades (on whichever side it trades) */
    uint32_t user;         /* its user, for the self-trade rule */
} auction_grid_t;

typedef struct {
    uint32_t bid, ask; /* handles */
    int64_t qty;       /* Wh, > 0, a multiple of lot */
    int64_t price;     /* µ/kWh, per auction_pricing_t */
} auction_trade_t;

typedef struct {
    bool crossed;           /* false: nothing trades (no overlap, or no limit price at all) */
    int64_t price;          /* the uniform clearing price, also for pay-as-bid; 0 if not crossed */
    int64_t volume;         /* Wh traded, the most a pairing without self-trades reaches */
    int64_t demand, supply; /* the participants' D and S at the clearing price; 0 if not crossed */
    int64_t grid_sold;      /* Wh the grid sells (at the import price); 0 without it */
    int64_t grid_bought;    /* Wh the grid buys (at the feed-in price); 0 without it */
    size_t trade_count;     /* entries written to trades */
} auction_result_t;

//  Bytes of scratch auction_clear needs for these side sizes (per order its fill, its owner
//  and room for a user; per side one more for the grid; a hash index of the users), or
//  SIZE_MAX when that does not fit a size_t (so the allocation fails).
size_t auction_scratch_size (size_t nbids, size_t nasks);

//  Clears one auction. bids: price descending, then time (earlier first); asks: price
//  ascending, then time; array order within a price is time priority. scratch: at least
//  auction_scratch_size (nbids, nasks) bytes aligned for int64_t (malloc's are), contents
//  ignored. trades: room for nbids + nasks + 2 entries: every trade uses up what is left of
//  the fill of its bid or of its ask (or both), except one that stops short for the
//  self-trade rule, which makes a user take part in every trade after it; that happens at
//  most twice (a second such user leaves only the two), and the last trade uses up both.
//  grid: NULL for none.
//  Returns 0 with *result and trades[0 .. trade_count) written, or -1 on invalid input, with
//  *result and trades untouched: tick <= 0, lot <= 0, a qty <= 0 or not a multiple of lot, a
//  negative price, a limit price off tick, prices out of priority order, a side whose total
//  quantity exceeds INT64_MAX, or a grid price negative, off tick, or feed-in >= import.
int auction_clear (const auction_order_t *bids, size_t nbids, const auction_order_t *asks,
                   size_t nasks, int64_t tick, int64_t lot, auction_marginal_t marginal,
                   auction_pricing_t pricing, const auction_grid_t *grid, void *scratch,
                   auction_trade_t *trades, auction_result_t *result);

//  The indicative clearing of a book as it stands (rules 1, 2 and 6): the price, V, D, S and
//  the grid's part, what auction_clear would report before self-trade prevention (its
//  volume is lower only where one user's orders stand on both sides). Each side may be the
//  book's price levels rather than its orders (qty: the level's total), which give the same
//  figures: rules 1 and 2 look at prices and quantities only. No scratch, no trades.
//  Returns 0 with *result written (trade_count 0), or -1 on input auction_clear refuses.
int auction_indicate (const auction_order_t *bids, size_t nbids, const auction_order_t *asks,
                      size_t nasks, int64_t tick, int64_t lot, const auction_grid_t *grid,
                      auction_result_t *result);

#endif
