/*  auction — see auction.h for the rules.

    Four linear passes over arrays already in priority order: validate (and total each side),
    scan the candidate prices in ascending order, fill each side up to the volume, zip the
    fills into trades. Sorting is the book's job, so the cost is linear in the orders (about
    a millisecond for 100 000) and the only memory is one int64 per order in the caller's
    scratch: the fill that is left to pair.

    The candidate scan walks the bids from their end (lowest price first) and the asks from
    their start, keeping D and S as running sums, so each candidate costs O(1) amortised
    and no per-price table is built. Every sum is bounded by a side's total, which
    validation has checked fits an int64; the one product that can exceed 64 bits (the pro
    rata share, remaining volume x order quantity) is formed in 128 bits.
*/
#include "auction.h"

#include <assert.h>

static int64_t s_min (int64_t a, int64_t b)
{
    return a < b ? a : b;
}

//  Checks one side and totals it. A market order's sentinel price is exempt from the tick;
//  every other price must be on it so that a midpoint of two candidates, floored to tick,
//  never falls below the lower one.
static int s_check_side (const auction_order_t *orders, size_t count, bool bids, int64_t tick,
                         int64_t lot, int64_t *total)
{
    int64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        const auction_order_t *order = &orders[i];
        if (order->qty <= 0 || order->qty % lot != 0 || order->qty > INT64_MAX - sum)
            return -1;
        if (order->price < 0)
            return -1;
        bool market = order->price == (bids ? AUCTION_MARKET_BID : AUCTION_MARKET_ASK);
        if (!market && order->price % tick != 0)
            return -1;
        if (i > 0 &&
            (bids ? order->price > orders[i - 1].price : order->price < orders[i - 1].price))
            return -1;
        sum += order->qty;
    }
    *total = sum;
    return 0;
}

//  The grid's prices, or an open corridor [0, INT64_MAX] without it.
typedef struct {
    int64_t floor, ceiling; //  the feed-in price (0: none), the import price (INT64_MAX: none)
    bool buys, sells;
} s_corridor_t;

//  V at a price with D and S of the participants: where the grid stands, its side is unbounded.
static int64_t s_volume (const s_corridor_t *c, int64_t price, int64_t demand, int64_t supply)
{
    if (c->sells && price >= c->ceiling)
        return demand;
    if (c->buys && price <= c->floor)
        return supply;
    return s_min (demand, supply);
}

//  Finds the interval [lo, hi] of the best candidates (rules 1, 2 and 6) and returns their
//  volume: 0 when no candidate has a positive volume, or there is no limit price at all.
static int64_t s_best_interval (const auction_order_t *bids, size_t nbids,
                                const auction_order_t *asks, size_t nasks, int64_t bid_total,
                                const s_corridor_t *c, int64_t *lo, int64_t *hi)
{
    //  Ascending candidates: the next bid price is bids[below_end - 1], the next ask price
    //  asks[ask_next], the next tariff edges[edge]. D(p) = bid_total - (bids priced below p);
    //  S(p) = asks priced <= p. Prices outside the corridor move the sums but do not compete.
    int64_t edges[2];
    size_t nedges = 0, edge = 0;
    if (c->buys)
        edges[nedges++] = c->floor;
    if (c->sells)
        edges[nedges++] = c->ceiling;
    size_t below_end = nbids, ask_next = 0;
    int64_t below = 0, supply = 0;
    while (ask_next < nasks && asks[ask_next].price == AUCTION_MARKET_ASK)
        supply += asks[ask_next++].qty;

    int64_t best_volume = 0, best_surplus = 0;
    while (true) {
        bool bid_left = below_end > 0 && bids[below_end - 1].price != AUCTION_MARKET_BID;
        bool ask_left = ask_next < nasks;
        bool edge_left = edge < nedges;
        if (!bid_left && !ask_left && !edge_left)
            break;
        int64_t price = INT64_MAX;
        if (bid_left)
            price = bids[below_end - 1].price;
        if (ask_left)
            price = s_min (price, asks[ask_next].price);
        if (edge_left)
            price = s_min (price, edges[edge]);
        while (edge < nedges && edges[edge] == price)
            edge++;
        while (ask_next < nasks && asks[ask_next].price == price)
            supply += asks[ask_next++].qty;
        int64_t demand = bid_total - below;
        while (below_end > 0 && bids[below_end - 1].price == price)
            below += bids[--below_end].qty;
        if (price < c->floor || price > c->ceiling)
            continue;

        int64_t volume = s_volume (c, price, demand, supply);
        int64_t surplus = demand > supply ? demand - supply : supply - demand;
        if (volume > best_volume ||
            (volume == best_volume && volume > 0 && surplus < best_surplus)) {
            best_volume = volume;
            best_surplus = surplus;
            *lo = *hi = price;
        }
        else if (volume == best_volume && volume > 0 && surplus == best_surplus)
            *hi = price; //  candidates ascend, so the last one seen is the highest
    }
    return best_volume;
}

//  Shares rem over one price level [first, end) whose quantity exceeds it, pro rata: each
//  order gets floor (rem x qty / level) floored to lot, then the lots left over go one each
//  in time order. Each order loses less than one lot to the flooring, so fewer lots are left
//  over than there are orders; and since rem < level, every share is at most qty - lot, so
//  the extra lot always fits.
static void s_fill_pro_rata (const auction_order_t *orders, size_t first, size_t end, int64_t level,
                             int64_t rem, int64_t lot, int64_t *fill)
{
    int64_t given = 0;
    for (size_t i = first; i < end; i++) {
        int64_t share =
            (int64_t) ((unsigned __int128) rem * (uint64_t) orders[i].qty / (uint64_t) level);
        share -= share % lot;
        fill[i] = share;
        given += share;
    }
    int64_t leftover = rem - given;
    for (size_t i = first; i < end && leftover > 0; i++) {
        assert (fill[i] + lot <= orders[i].qty);
        fill[i] += lot;
        leftover -= lot;
    }
    assert (leftover == 0);
}

//  Fills one side in priority order up to volume (rule 3): whole price levels while they
//  fit, then the level where the volume runs out shares what remains, then nothing.
static void s_fill_side (const auction_order_t *orders, size_t count, int64_t volume, int64_t lot,
                         auction_marginal_t marginal, int64_t *fill)
{
    int64_t rem = volume;
    size_t first = 0;
    while (first < count) {
        size_t end = first;
        int64_t level = 0;
        while (end < count && orders[end].price == orders[first].price)
            level += orders[end++].qty;
        if (level <= rem) {
            for (size_t i = first; i < end; i++)
                fill[i] = orders[i].qty;
            rem -= level;
        }
        else if (marginal == AUCTION_MARGINAL_PRO_RATA && rem > 0) {
            s_fill_pro_rata (orders, first, end, level, rem, lot, fill);
            rem = 0;
        }
        else {
            //  time priority, and also every level after the marginal one (rem is 0 there)
            for (size_t i = first; i < end; i++) {
                fill[i] = s_min (orders[i].qty, rem);
                rem -= fill[i];
            }
        }
        first = end;
    }
    assert (rem == 0);
}

//  One side for the zip: the participants' orders, then the grid's (its fill 0 without it).
typedef struct {
    const auction_order_t *orders;
    size_t count; //  participants; index count is the grid
    int64_t *fill;
    auction_order_t grid;
} s_side_t;

static inline const auction_order_t *s_at (const s_side_t *side, size_t i)
{
    return i < side->count ? &side->orders[i] : &side->grid;
}

//  Zips the fills into trades (rule 4), consuming both sides' fills. Returns the number of
//  trades written and adds their quantity to *volume.
//
//  When bid i and ask j belong to the same user, the bid pairs with the next ask of another
//  user that has fill left. The cursor alt remembers where that search stopped: every ask
//  with fill left strictly between j and alt belongs to ask j's user, and fills only ever
//  decrease, so the next search resumes at alt instead of j + 1. alt only moves forward, so
//  all searches together cost O(nasks). When no such ask exists, every ask left is the
//  bid's owner's: the bid can never trade and is passed over, and ask j meets the next bid.
static size_t s_pair (const s_side_t *b, const s_side_t *a, int64_t price,
                      auction_pricing_t pricing, auction_trade_t *trades, int64_t *volume)
{
    size_t nbids = b->count + 1, nasks = a->count + 1; //  with the grid's slots
    int64_t *bid_fill = b->fill, *ask_fill = a->fill;
    size_t count = 0, i = 0, j = 0, alt = 0;
    while (true) {
        while (i < nbids && bid_fill[i] == 0)
            i++;
        while (j < nasks && ask_fill[j] == 0)
            j++;
        if (i == nbids || j == nasks)
            break;
        const auction_order_t *bid = s_at (b, i), *ask = s_at (a, j);
        size_t k = j;
        if (bid->user == ask->user) {
            if (alt <= j)
                alt = j + 1;
            while (alt < nasks && (ask_fill[alt] == 0 || s_at (a, alt)->user == ask->user))
                alt++;
            if (alt == nasks) {
                i++; //  untraded: the caller expires what is left of it
                continue;
            }
            k = alt;
            ask = s_at (a, k);
        }
        int64_t qty = s_min (bid_fill[i], ask_fill[k]);
        bid_fill[i] -= qty;
        ask_fill[k] -= qty;
        //  the grid trades at its tariff, which is then the clearing price
        bool at_bid = pricing == AUCTION_PRICE_PAY_AS_BID && bid->price != AUCTION_MARKET_BID &&
                      i < b->count && k < a->count;
        trades[count++] = (auction_trade_t){
            .bid = bid->handle,
            .ask = ask->handle,
            .qty = qty,
            .price = at_bid ? bid->price : price,
        };
        *volume += qty;
    }
    assert (count <= nbids + nasks);
    return count;
}

size_t auction_scratch_size (size_t nbids, size_t nasks)
{
    size_t count = nbids + nasks;
    if (count < nbids || count > SIZE_MAX / sizeof (int64_t) - 2)
        return SIZE_MAX;
    return (count + 2) * sizeof (int64_t);
}

//  The corridor of a valid grid (NULL: none); -1 when its prices are invalid.
static int s_corridor (const auction_grid_t *grid, int64_t tick, s_corridor_t *c)
{
    *c = (s_corridor_t){.floor = 0, .ceiling = INT64_MAX};
    if (!grid)
        return 0;
    if (grid->import_price < 0 || grid->feed_in_price < 0 || grid->import_price % tick != 0 ||
        grid->feed_in_price % tick != 0)
        return -1;
    c->sells = grid->import_price > 0;
    c->buys = grid->feed_in_price > 0;
    if (c->sells)
        c->ceiling = grid->import_price;
    if (c->buys)
        c->floor = grid->feed_in_price;
    return c->floor < c->ceiling ? 0 : -1;
}

int auction_clear (const auction_order_t *bids, size_t nbids, const auction_order_t *asks,
                   size_t nasks, int64_t tick, int64_t lot, auction_marginal_t marginal,
                   auction_pricing_t pricing, const auction_grid_t *grid, void *scratch,
                   auction_trade_t *trades, auction_result_t *result)
{
    assert (result);
    assert (nbids == 0 || bids);
    assert (nasks == 0 || asks);
    assert (nbids + nasks == 0 || (scratch && trades));
    assert ((uintptr_t) scratch % _Alignof(int64_t) == 0);

    int64_t bid_total, ask_total;
    s_corridor_t corridor;
    if (tick <= 0 || lot <= 0 || s_check_side (bids, nbids, true, tick, lot, &bid_total) != 0 ||
        s_check_side (asks, nasks, false, tick, lot, &ask_total) != 0 ||
        s_corridor (grid, tick, &corridor) != 0)
        return -1;

    *result = (auction_result_t){.crossed = false};
    int64_t lo = 0, hi = 0;
    int64_t best_volume =
        s_best_interval (bids, nbids, asks, nasks, bid_total, &corridor, &lo, &hi);
    if (best_volume == 0)
        return 0;
    //  Both ends are on tick and >= 0, so flooring the midpoint keeps it in [lo, hi];
    //  lo + (hi - lo) / 2 cannot overflow where (lo + hi) / 2 could.
    int64_t price = lo + (hi - lo) / 2;
    price -= price % tick;

    int64_t demand = 0, supply = 0;
    for (size_t i = 0; i < nbids && bids[i].price >= price; i++)
        demand += bids[i].qty;
    for (size_t j = 0; j < nasks && asks[j].price <= price; j++)
        supply += asks[j].qty;
    //  Every candidate in [lo, hi] reaches the best volume (V is the minimum of a falling and
    //  a rising curve, the grid's unbounded sides included, so the candidates that reach it
    //  are contiguous). Between two adjacent ones c1 < p < c2, D (p) = D (c2) and S (p) =
    //  S (c1): an off-candidate midpoint trades the best volume too (and its surplus can be
    //  smaller than at either end).
    int64_t matched = s_volume (&corridor, price, demand, supply);
    assert (matched == best_volume);

    //  the participants fill what they can, the grid the rest (only at its own price)
    s_side_t b = {bids, nbids, scratch, {0}},
             a = {asks, nasks, (int64_t *) scratch + nbids + 1, {0}};
    int64_t bids_fill = s_min (matched, demand), asks_fill = s_min (matched, supply);
    s_fill_side (bids, nbids, bids_fill, lot, marginal, b.fill);
    s_fill_side (asks, nasks, asks_fill, lot, marginal, a.fill);
    b.fill[nbids] = matched - bids_fill;
    a.fill[nasks] = matched - asks_fill;
    if (grid) {
        b.grid = (auction_order_t){grid->handle, grid->user, corridor.floor, b.fill[nbids]};
        a.grid = (auction_order_t){grid->handle, grid->user, corridor.ceiling, a.fill[nasks]};
    }
    assert (b.fill[nbids] == 0 || price == corridor.floor);
    assert (a.fill[nasks] == 0 || price == corridor.ceiling);

    result->crossed = true;
    result->price = price;
    result->demand = demand;
    result->supply = supply;
    result->grid_bought = b.fill[nbids];
    result->grid_sold = a.fill[nasks];
    result->trade_count = s_pair (&b, &a, price, pricing, trades, &result->volume);
    return 0;
}
