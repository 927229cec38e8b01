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

//  Finds the interval [lo, hi] of the best candidates (rules 1 and 2) and returns their
//  volume: 0 when no candidate has a positive volume, or there is no limit price at all.
static int64_t s_best_interval (const auction_order_t *bids, size_t nbids,
                                const auction_order_t *asks, size_t nasks, int64_t bid_total,
                                int64_t *lo, int64_t *hi)
{
    //  Ascending candidates: the next bid price is bids[below_end - 1], the next ask price
    //  asks[ask_next]. D(p) = bid_total - (bids priced below p); S(p) = asks priced <= p.
    size_t below_end = nbids, ask_next = 0;
    int64_t below = 0, supply = 0;
    while (ask_next < nasks && asks[ask_next].price == AUCTION_MARKET_ASK)
        supply += asks[ask_next++].qty;

    int64_t best_volume = 0, best_surplus = 0;
    while (true) {
        bool bid_left = below_end > 0 && bids[below_end - 1].price != AUCTION_MARKET_BID;
        bool ask_left = ask_next < nasks;
        if (!bid_left && !ask_left)
            break;
        int64_t price = !bid_left   ? asks[ask_next].price
                        : !ask_left ? bids[below_end - 1].price
                                    : s_min (asks[ask_next].price, bids[below_end - 1].price);
        while (ask_next < nasks && asks[ask_next].price == price)
            supply += asks[ask_next++].qty;
        int64_t demand = bid_total - below;
        while (below_end > 0 && bids[below_end - 1].price == price)
            below += bids[--below_end].qty;

        int64_t volume = s_min (demand, supply);
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

//  Zips the fills into trades (rule 4), consuming bid_fill and ask_fill. Returns the number
//  of trades written and adds their quantity to *volume.
//
//  When bid i and ask j belong to the same user, the bid pairs with the next ask of another
//  user that has fill left. The cursor alt remembers where that search stopped: every ask
//  with fill left strictly between j and alt belongs to ask j's user, and fills only ever
//  decrease, so the next search resumes at alt instead of j + 1. alt only moves forward, so
//  all searches together cost O(nasks). When no such ask exists, every ask left is the
//  bid's owner's: the bid can never trade and is passed over, and ask j meets the next bid.
static size_t s_pair (const auction_order_t *bids, size_t nbids, int64_t *bid_fill,
                      const auction_order_t *asks, size_t nasks, int64_t *ask_fill, int64_t price,
                      auction_pricing_t pricing, auction_trade_t *trades, int64_t *volume)
{
    size_t count = 0, i = 0, j = 0, alt = 0;
    while (true) {
        while (i < nbids && bid_fill[i] == 0)
            i++;
        while (j < nasks && ask_fill[j] == 0)
            j++;
        if (i == nbids || j == nasks)
            break;
        size_t k = j;
        if (bids[i].user == asks[j].user) {
            if (alt <= j)
                alt = j + 1;
            while (alt < nasks && (ask_fill[alt] == 0 || asks[alt].user == asks[j].user))
                alt++;
            if (alt == nasks) {
                i++; //  untraded: the caller expires what is left of it
                continue;
            }
            k = alt;
        }
        int64_t qty = s_min (bid_fill[i], ask_fill[k]);
        bid_fill[i] -= qty;
        ask_fill[k] -= qty;
        bool at_bid = pricing == AUCTION_PRICE_PAY_AS_BID && bids[i].price != AUCTION_MARKET_BID;
        trades[count++] = (auction_trade_t){
            .bid = bids[i].handle,
            .ask = asks[k].handle,
            .qty = qty,
            .price = at_bid ? bids[i].price : price,
        };
        *volume += qty;
    }
    assert (count <= nbids + nasks);
    return count;
}

size_t auction_scratch_size (size_t nbids, size_t nasks)
{
    size_t count = nbids + nasks;
    if (count < nbids || count > SIZE_MAX / sizeof (int64_t))
        return SIZE_MAX;
    return count * sizeof (int64_t);
}

int auction_clear (const auction_order_t *bids, size_t nbids, const auction_order_t *asks,
                   size_t nasks, int64_t tick, int64_t lot, auction_marginal_t marginal,
                   auction_pricing_t pricing, void *scratch, auction_trade_t *trades,
                   auction_result_t *result)
{
    assert (result);
    assert (nbids == 0 || bids);
    assert (nasks == 0 || asks);
    assert (nbids + nasks == 0 || (scratch && trades));
    assert ((uintptr_t) scratch % _Alignof(int64_t) == 0);

    int64_t bid_total, ask_total;
    if (tick <= 0 || lot <= 0 || s_check_side (bids, nbids, true, tick, lot, &bid_total) != 0 ||
        s_check_side (asks, nasks, false, tick, lot, &ask_total) != 0)
        return -1;

    *result = (auction_result_t){.crossed = false};
    int64_t lo = 0, hi = 0;
    int64_t best_volume = s_best_interval (bids, nbids, asks, nasks, bid_total, &lo, &hi);
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
    //  a rising curve, so the candidates that reach it are contiguous). Between two adjacent
    //  ones c1 < p < c2, D (p) = D (c2) and S (p) = S (c1): an off-candidate midpoint trades
    //  the best volume too (and its surplus can be smaller than at either end).
    int64_t matched = s_min (demand, supply);
    assert (matched == best_volume);

    int64_t *bid_fill = scratch;
    int64_t *ask_fill = bid_fill + nbids;
    s_fill_side (bids, nbids, matched, lot, marginal, bid_fill);
    s_fill_side (asks, nasks, matched, lot, marginal, ask_fill);

    result->crossed = true;
    result->price = price;
    result->demand = demand;
    result->supply = supply;
    result->trade_count = s_pair (bids, nbids, bid_fill, asks, nasks, ask_fill, price, pricing,
                                  trades, &result->volume);
    return 0;
}
