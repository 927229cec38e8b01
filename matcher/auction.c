/*  auction — see auction.h for the rules.

    Linear passes over arrays already in priority order: validate (and total each side), scan
    the candidate prices in ascending order, fill each side up to the volume, let a user
    with too much of it give way, zip the fills into trades. Sorting is the book's job, so
    the cost is linear in the orders, plus a log factor for the heap of users' loads the
    zip consults per trade (a few milliseconds for 100 000). The only memory is the
    caller's scratch: per order its fill and its owner's slot, and per user its quantities,
    a heap position and a hash index entry (open addressing, sized to twice the users, so
    a probe ends at an empty slot quickly; the users are the engine's own indices, not
    something a client picks).

    The candidate scan walks the bids from their end (lowest price first) and the asks from
    their start, keeping D and S as running sums, so each candidate costs O(1) amortised
    and no per-price table is built. Every sum is bounded by a side's total, which
    validation has checked fits an int64; the one product that can exceed 64 bits (the pro
    rata share, remaining volume x order quantity) is formed in 128 bits.
*/
#include "auction.h"

#include <assert.h>
#include <string.h>

#include "fnv.h"

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

//  One side: the participants' orders, then the grid's (its fill 0 without it).
typedef struct {
    const auction_order_t *orders;
    size_t count;    //  participants; index count is the grid
    size_t eligible; //  the participants at the front that can trade at the price
    int64_t *fill;
    uint32_t *owner; //  per order (and the grid): its slot in s_users_t.users
    auction_order_t grid;
    bool grid_here; //  the grid stands on this side at the price, with any quantity
} s_side_t;

static inline const auction_order_t *s_at (const s_side_t *side, size_t i)
{
    return i < side->count ? &side->orders[i] : &side->grid;
}

//  --------------------------------------------------------------------------------------
//  Self-trade-aware pairing (rule 4). A user's fill on both sides together is its load;
//  T is what is left to pair. Fills can be paired without a self pair exactly when no
//  load exceeds T (a user's bids need the others' asks, T - A_u of them), and a pair of
//  users x, y trading q keeps that true when q <= T - L_w for every other user w. So the
//  zip takes pairs in priority order, caps q by the largest load outside the pair (a heap
//  of loads, which only fall), and once a load equals T (the user is tight), pairs every
//  trade with that user.

typedef struct {
    uint32_t user;
    uint32_t at;         //  position in the heap
    int64_t eligible[2]; //  Wh it offers at the price, bids and asks
    int64_t fill[2];     //  Wh of those that fill, then what is left to pair
} s_user_t;

typedef struct {
    s_user_t *users;
    size_t count;
    uint32_t *index; //  open addressing: user -> slot + 1, 0 empty
    size_t mask;
    uint32_t *heap; //  slots, by load descending
} s_users_t;

static inline int64_t s_load (const s_users_t *u, uint32_t slot)
{
    return u->users[slot].fill[0] + u->users[slot].fill[1];
}

static uint32_t s_user_slot (s_users_t *u, uint32_t user)
{
    size_t h = (size_t) fnv1a (&user, sizeof user) & u->mask;
    while (u->index[h] != 0 && u->users[u->index[h] - 1].user != user)
        h = (h + 1) & u->mask;
    if (u->index[h] == 0) {
        u->users[u->count] = (s_user_t){.user = user};
        u->index[h] = (uint32_t) ++u->count;
    }
    return u->index[h] - 1;
}

//  Registers the eligible orders (and the grid) of one side with their owners.
static void s_users_add (s_users_t *u, s_side_t *side, int k)
{
    for (size_t i = 0; i <= side->eligible; i++) {
        if (i == side->eligible && !side->grid_here)
            break;
        size_t at = i < side->eligible ? i : side->count;
        const auction_order_t *order = s_at (side, at);
        uint32_t slot = s_user_slot (u, order->user);
        side->owner[at] = slot;
        if (at < side->count)
            u->users[slot].eligible[k] += order->qty;
    }
}

static void s_users_fill (s_users_t *u, const s_side_t *side, int k)
{
    for (size_t i = 0; i < side->eligible; i++)
        u->users[side->owner[i]].fill[k] += side->fill[i];
    if (side->grid_here)
        u->users[side->owner[side->count]].fill[k] += side->fill[side->count];
}

//  The largest volume any pairing of the eligible orders reaches (a max flow): a user's
//  bids can only meet the others' asks, so V <= (D - d_u) + (S - s_u) for every user,
//  and that bound is reached. With the grid at the price, its side is unbounded.
static int64_t s_best_pairable (const s_users_t *u, const s_side_t *b, const s_side_t *a,
                                int64_t volume, int64_t demand, int64_t supply)
{
    if (b->grid_here || a->grid_here)
        return volume;
    for (size_t s = 0; s < u->count; s++) {
        int64_t d = demand - u->users[s].eligible[0], o = supply - u->users[s].eligible[1];
        if (d < volume && o < volume - d)
            volume = d + o;
    }
    return volume;
}

//  Moves qty of the fill of side k from user slot's orders, last in priority first, to the
//  others' eligible orders with quantity left, first in priority first, then the grid.
static void s_move_fill (s_users_t *u, s_side_t *side, int k, uint32_t slot, int64_t qty)
{
    int64_t taken = 0;
    for (size_t i = side->eligible; i-- > 0 && taken < qty;)
        if (side->owner[i] == slot) {
            int64_t q = s_min (side->fill[i], qty - taken);
            side->fill[i] -= q;
            taken += q;
        }
    assert (taken == qty);
    u->users[slot].fill[k] -= qty;
    for (size_t i = 0; i < side->eligible && qty > 0; i++)
        if (side->owner[i] != slot) {
            int64_t q = s_min (side->orders[i].qty - side->fill[i], qty);
            side->fill[i] += q;
            u->users[side->owner[i]].fill[k] += q;
            qty -= q;
        }
    if (qty > 0) {
        assert (side->grid_here);
        side->fill[side->count] += qty;
        u->users[side->owner[side->count]].fill[k] += qty;
    }
}

//  What the users other than slot could still fill on one side.
static int64_t s_room (const s_side_t *side, uint32_t slot, int64_t needed)
{
    if (side->grid_here)
        return needed;
    int64_t room = 0;
    for (size_t i = 0; i < side->eligible && room < needed; i++)
        if (side->owner[i] != slot)
            room += side->orders[i].qty - side->fill[i];
    return s_min (room, needed);
}

//  At most one user can hold more than the volume in fills (two would hold more than both
//  sides' fills together). Its excess gives way, on its bids first, then on its asks, to
//  the other users' orders next in priority; s_best_pairable's bound leaves room for it.
static void s_give_way (s_users_t *u, s_side_t *b, s_side_t *a, int64_t volume)
{
    for (uint32_t slot = 0; slot < u->count; slot++) {
        s_user_t *user = &u->users[slot];
        int64_t excess = user->fill[0] + user->fill[1] - volume;
        if (excess <= 0)
            continue;
        int64_t from_bids = s_min (user->fill[0], s_room (b, slot, excess));
        s_move_fill (u, b, 0, slot, from_bids);
        s_move_fill (u, a, 1, slot, excess - from_bids);
        return;
    }
}

static void s_heap_down (s_users_t *u, size_t at)
{
    uint32_t slot = u->heap[at];
    int64_t load = s_load (u, slot);
    while (true) {
        size_t child = 2 * at + 1;
        if (child >= u->count)
            break;
        if (child + 1 < u->count && s_load (u, u->heap[child + 1]) > s_load (u, u->heap[child]))
            child++;
        if (s_load (u, u->heap[child]) <= load)
            break;
        u->heap[at] = u->heap[child];
        u->users[u->heap[at]].at = (uint32_t) at;
        at = child;
    }
    u->heap[at] = slot;
    u->users[slot].at = (uint32_t) at;
}

static void s_heap_build (s_users_t *u)
{
    for (size_t s = 0; s < u->count; s++)
        u->heap[s] = (uint32_t) s;
    for (size_t at = u->count / 2; at-- > 0;)
        s_heap_down (u, at);
}

//  The largest load of a user other than x and y: the three largest of a heap are within
//  its first seven entries.
static int64_t s_largest_other (const s_users_t *u, uint32_t x, uint32_t y)
{
    int64_t largest = 0;
    for (size_t at = 0; at < 7 && at < u->count; at++)
        if (u->heap[at] != x && u->heap[at] != y)
            largest = largest > s_load (u, u->heap[at]) ? largest : s_load (u, u->heap[at]);
    return largest;
}

//  Zips the fills into trades (rule 4), consuming both sides' fills, which no load exceeds.
//  Returns the number of trades written and adds their quantity to *volume.
//
//  Bid i meets ask j, the first of each with fill left, unless a user is tight and owns
//  neither (then the tight user's next ask: the cursor tight_at only moves forward, as a
//  tight user stays tight) or both belong to one user (then the next ask of another user:
//  every ask with fill left strictly between j and the cursor alt belongs to ask j's user,
//  and fills only decrease, so each search resumes at alt). A trade exhausts its bid or its
//  ask, or is capped and makes one more user tight; at most two users are ever tight (a
//  second leaves only the two), so count <= nbids + nasks + 2.
static size_t s_pair (const s_side_t *b, const s_side_t *a, s_users_t *u, int64_t price,
                      auction_pricing_t pricing, auction_trade_t *trades, int64_t *volume)
{
    size_t nbids = b->count + 1, nasks = a->count + 1; //  with the grid's slots
    int64_t *bid_fill = b->fill, *ask_fill = a->fill;
    int64_t left = 0;
    for (size_t i = 0; i < nbids; i++)
        left += bid_fill[i];
    s_heap_build (u);
    uint32_t tight = UINT32_MAX;
    size_t count = 0, i = 0, j = 0, alt = 0, tight_at = 0;
    while (left > 0) {
        while (bid_fill[i] == 0)
            i++;
        while (ask_fill[j] == 0)
            j++;
        if (tight == UINT32_MAX && s_load (u, u->heap[0]) == left)
            tight = u->heap[0];
        uint32_t x = b->owner[i];
        size_t k = j;
        if (tight != UINT32_MAX && x != tight && a->owner[j] != tight) {
            while (ask_fill[tight_at] == 0 || a->owner[tight_at] != tight)
                tight_at++;
            k = tight_at;
        }
        else if (x == a->owner[j]) {
            if (alt <= j)
                alt = j + 1;
            while (ask_fill[alt] == 0 || a->owner[alt] == x)
                alt++;
            k = alt;
        }
        uint32_t y = a->owner[k];
        assert (x != y && k < nasks);
        int64_t qty = s_min (s_min (bid_fill[i], ask_fill[k]), left - s_largest_other (u, x, y));
        assert (qty > 0);
        bid_fill[i] -= qty;
        ask_fill[k] -= qty;
        left -= qty;
        u->users[x].fill[0] -= qty;
        u->users[y].fill[1] -= qty;
        s_heap_down (u, u->users[x].at);
        s_heap_down (u, u->users[y].at);

        const auction_order_t *bid = s_at (b, i), *ask = s_at (a, k);
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

//  The scratch's parts, in order: fills and owners per side (each with the grid's slot),
//  the users, the heap and the index (a power of two at least twice the users).
typedef struct {
    size_t users, index, bytes;
} s_layout_t;

static bool s_layout (size_t nbids, size_t nasks, s_layout_t *l)
{
    size_t slots = nbids + nasks;
    if (slots < nbids || slots > SIZE_MAX / 64 - 2)
        return false;
    slots += 2;
    l->users = slots - 1; //  every participant, and the grid
    l->index = 1;
    while (l->index < 2 * l->users)
        l->index *= 2;
    l->bytes = slots * sizeof (int64_t) + l->users * sizeof (s_user_t) +
               (slots + l->users + l->index) * sizeof (uint32_t);
    return true;
}

size_t auction_scratch_size (size_t nbids, size_t nasks)
{
    s_layout_t l;
    return s_layout (nbids, nasks, &l) ? l.bytes : SIZE_MAX;
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

//  Rules 1, 2 and 6 on valid input: the price, the eligible prefix of each side, D, S and V.
typedef struct {
    s_corridor_t corridor;
    int64_t price, demand, supply, volume; //  volume 0: nothing crosses
    size_t bids, asks;                     //  eligible: bids priced >= price, asks <= price
} s_priced_t;

//  -1 on invalid input; else 0 with *out set (out->volume 0 when nothing crosses).
static int s_price (const auction_order_t *bids, size_t nbids, const auction_order_t *asks,
                    size_t nasks, int64_t tick, int64_t lot, const auction_grid_t *grid,
                    s_priced_t *out)
{
    int64_t bid_total, ask_total;
    *out = (s_priced_t){.volume = 0};
    if (tick <= 0 || lot <= 0 || s_check_side (bids, nbids, true, tick, lot, &bid_total) != 0 ||
        s_check_side (asks, nasks, false, tick, lot, &ask_total) != 0 ||
        s_corridor (grid, tick, &out->corridor) != 0)
        return -1;
    int64_t lo = 0, hi = 0;
    int64_t best_volume =
        s_best_interval (bids, nbids, asks, nasks, bid_total, &out->corridor, &lo, &hi);
    if (best_volume == 0)
        return 0;
    //  Both ends are on tick and >= 0, so flooring the midpoint keeps it in [lo, hi];
    //  lo + (hi - lo) / 2 cannot overflow where (lo + hi) / 2 could.
    int64_t price = lo + (hi - lo) / 2;
    price -= price % tick;
    out->price = price;
    for (; out->bids < nbids && bids[out->bids].price >= price; out->bids++)
        out->demand += bids[out->bids].qty;
    for (; out->asks < nasks && asks[out->asks].price <= price; out->asks++)
        out->supply += asks[out->asks].qty;
    //  Every candidate in [lo, hi] reaches the best volume (V is the minimum of a falling and
    //  a rising curve, the grid's unbounded sides included, so the candidates that reach it
    //  are contiguous). Between two adjacent ones c1 < p < c2, D (p) = D (c2) and S (p) =
    //  S (c1): an off-candidate midpoint trades the best volume too (and its surplus can be
    //  smaller than at either end).
    out->volume = s_volume (&out->corridor, price, out->demand, out->supply);
    assert (out->volume == best_volume);
    return 0;
}

int auction_indicate (const auction_order_t *bids, size_t nbids, const auction_order_t *asks,
                      size_t nasks, int64_t tick, int64_t lot, const auction_grid_t *grid,
                      auction_result_t *result)
{
    assert (result);
    assert (nbids == 0 || bids);
    assert (nasks == 0 || asks);
    s_priced_t p;
    if (s_price (bids, nbids, asks, nasks, tick, lot, grid, &p) != 0)
        return -1;
    *result = (auction_result_t){.crossed = p.volume > 0};
    if (!result->crossed)
        return 0;
    result->price = p.price;
    result->volume = p.volume;
    result->demand = p.demand;
    result->supply = p.supply;
    result->grid_bought = p.volume - s_min (p.volume, p.demand);
    result->grid_sold = p.volume - s_min (p.volume, p.supply);
    return 0;
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

    s_priced_t p;
    if (s_price (bids, nbids, asks, nasks, tick, lot, grid, &p) != 0)
        return -1;
    *result = (auction_result_t){.crossed = false};
    if (p.volume == 0)
        return 0;
    int64_t price = p.price, demand = p.demand, supply = p.supply, matched = p.volume;
    s_corridor_t corridor = p.corridor;
    s_side_t b = {.orders = bids, .count = nbids, .eligible = p.bids},
             a = {.orders = asks, .count = nasks, .eligible = p.asks};

    s_layout_t layout;
    bool fits = s_layout (nbids, nasks, &layout);
    assert (fits);
    (void) fits;
    b.fill = scratch;
    a.fill = b.fill + nbids + 1;
    s_users_t users = {.users = (s_user_t *) (a.fill + nasks + 1)};
    b.owner = (uint32_t *) (users.users + layout.users);
    a.owner = b.owner + nbids + 1;
    users.heap = a.owner + nasks + 1;
    users.index = users.heap + layout.users;
    users.mask = layout.index - 1;
    memset (users.index, 0, layout.index * sizeof (uint32_t));
    if (grid) {
        b.grid = (auction_order_t){grid->handle, grid->user, corridor.floor, 0};
        a.grid = (auction_order_t){grid->handle, grid->user, corridor.ceiling, 0};
        b.grid_here = corridor.buys && price == corridor.floor;
        a.grid_here = corridor.sells && price == corridor.ceiling;
    }
    s_users_add (&users, &b, 0);
    s_users_add (&users, &a, 1);

    //  the participants fill what they can, the grid the rest (only at its own price), up
    //  to what a pairing without self-trades reaches; then no user's fills exceed it
    int64_t pairable = s_best_pairable (&users, &b, &a, matched, demand, supply);
    int64_t bids_fill = s_min (pairable, demand), asks_fill = s_min (pairable, supply);
    s_fill_side (bids, nbids, bids_fill, lot, marginal, b.fill);
    s_fill_side (asks, nasks, asks_fill, lot, marginal, a.fill);
    b.fill[nbids] = pairable - bids_fill;
    a.fill[nasks] = pairable - asks_fill;
    assert (b.fill[nbids] == 0 || b.grid_here);
    assert (a.fill[nasks] == 0 || a.grid_here);
    s_users_fill (&users, &b, 0);
    s_users_fill (&users, &a, 1);
    s_give_way (&users, &b, &a, pairable);
    b.grid.qty = b.fill[nbids];
    a.grid.qty = a.fill[nasks];

    result->crossed = true;
    result->price = price;
    result->demand = demand;
    result->supply = supply;
    result->grid_bought = b.fill[nbids];
    result->grid_sold = a.fill[nasks];
    result->trade_count = s_pair (&b, &a, &users, price, pricing, trades, &result->volume);
    assert (result->volume == pairable);
    return 0;
}
