/*  replica — see replica.h.

    The resting orders live packed in one array (removal moves the last one into the hole), and
    an open-addressing index of positions finds them by id: linear probing, deletion by
    backward shift so that no tombstones accumulate however many orders come and go. Markets
    are few (a campus has a handful): a plain array searched by name, the last hit remembered.
    Balances are one entry per user, packed likewise and found through an index of their own
    by a hash of the name; users are never removed, so that index needs no deletion.
*/
#include "replica.h"
#include "fnv.h"
#include "grow.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EMPTY UINT32_MAX

struct _replica_t {
    replica_order_t *orders;
    size_t count, cap;
    uint32_t *index; //  positions in orders, S_EMPTY; a power of two long, or NULL
    size_t index_cap;
    replica_market_t *markets;
    uint32_t nmarkets, markets_cap;
    uint32_t last_market; //  where the last lookup found its market
    size_t trades_kept;
    replica_change_t *changes;
    size_t nchanges, changes_cap;
    uint64_t gen; //  of the current change list; an order with this change_gen is in it
    uint64_t seq;
    replica_balance_t *balances; //  by position, in the order users first appeared
    size_t nbalances, balances_cap;
    uint32_t *bindex; //  positions in balances, S_EMPTY; a power of two long, or NULL
    size_t bindex_cap;
    uint32_t *bchanges; //  positions of the balances changed, each once (change_gen)
    size_t nbchanges, bchanges_cap;
};

static uint64_t s_mix (uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

replica_t *replica_new (size_t trades_kept)
{
    assert (trades_kept >= 1);
    replica_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->trades_kept = trades_kept;
    self->gen = 1;
    return self;
}

void replica_destroy (replica_t **self_p)
{
    assert (self_p);
    replica_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; i < self->nmarkets; i++)
        free (self->markets[i].ring);
    free (self->markets);
    free (self->orders);
    free (self->index);
    free (self->changes);
    free (self->balances);
    free (self->bindex);
    free (self->bchanges);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Orders by id

//  The index slot holding id, or the empty slot where it would go.
static size_t s_slot (const replica_t *self, uint64_t id)
{
    size_t mask = self->index_cap - 1;
    size_t i = (size_t) s_mix (id) & mask;
    while (self->index[i] != S_EMPTY && self->orders[self->index[i]].id != id)
        i = (i + 1) & mask;
    return i;
}

static replica_order_t *s_find (const replica_t *self, uint64_t id)
{
    if (!self->index_cap)
        return NULL;
    uint32_t pos = self->index[s_slot (self, id)];
    return pos == S_EMPTY ? NULL : &self->orders[pos];
}

//  Makes room for one more order. false when memory runs out.
static bool s_reserve (replica_t *self)
{
    if (!grow_to ((void **) &self->orders, &self->cap, self->count + 1, sizeof *self->orders))
        return false;
    if ((self->count + 1) * 2 <= self->index_cap)
        return true;
    size_t cap = self->index_cap ? self->index_cap * 2 : 256;
    uint32_t *index = malloc (cap * sizeof *index);
    if (!index)
        return false;
    memset (index, 0xff, cap * sizeof *index); //  every slot S_EMPTY
    free (self->index);
    self->index = index;
    self->index_cap = cap;
    for (size_t pos = 0; pos < self->count; pos++)
        self->index[s_slot (self, self->orders[pos].id)] = (uint32_t) pos;
    return true;
}

//  Adds (or replaces) an order. NULL when memory runs out.
static replica_order_t *s_put (replica_t *self, const replica_order_t *order)
{
    replica_order_t *o = s_find (self, order->id);
    if (o) {
        *o = *order;
        return o;
    }
    if (self->count >= UINT32_MAX - 1 || !s_reserve (self))
        return NULL;
    size_t pos = self->count++;
    self->orders[pos] = *order;
    self->index[s_slot (self, order->id)] = (uint32_t) pos;
    return &self->orders[pos];
}

//  Removes order o (found by s_find).
static void s_remove (replica_t *self, replica_order_t *o)
{
    size_t mask = self->index_cap - 1;
    size_t hole = s_slot (self, o->id);
    uint32_t pos = self->index[hole];
    //  Backward shift: pull later entries of the probe run into the hole when their home slot
    //  does not lie cyclically within (hole, j].
    for (size_t j = (hole + 1) & mask; self->index[j] != S_EMPTY; j = (j + 1) & mask) {
        size_t home = (size_t) s_mix (self->orders[self->index[j]].id) & mask;
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            self->index[hole] = self->index[j];
            hole = j;
        }
    }
    self->index[hole] = S_EMPTY;
    //  The last order moves into the freed position.
    size_t last = self->count - 1;
    if (pos != last) {
        self->orders[pos] = self->orders[last];
        self->index[s_slot (self, self->orders[pos].id)] = pos;
    }
    self->count--;
}

//  --------------------------------------------------------------------------------------------
//  Markets

//  The index of market id, created if new; UINT32_MAX when memory runs out.
static uint32_t s_market (replica_t *self, const char *id)
{
    if (self->last_market < self->nmarkets && strcmp (self->markets[self->last_market].id, id) == 0)
        return self->last_market;
    for (uint32_t i = 0; i < self->nmarkets; i++)
        if (strcmp (self->markets[i].id, id) == 0)
            return self->last_market = i;
    size_t cap = self->markets_cap;
    if (!grow_to ((void **) &self->markets, &cap, (size_t) self->nmarkets + 1,
                  sizeof *self->markets))
        return UINT32_MAX;
    self->markets_cap = (uint32_t) cap;
    replica_trade_t *ring = calloc (self->trades_kept, sizeof *ring);
    if (!ring)
        return UINT32_MAX;
    replica_market_t *m = &self->markets[self->nmarkets];
    *m = (replica_market_t){.ring = ring, .ring_cap = self->trades_kept};
    snprintf (m->id, sizeof m->id, "%s", id);
    return self->last_market = self->nmarkets++;
}

static void s_ring_push (replica_market_t *m, const replica_trade_t *t)
{
    m->ring[m->ring_head] = *t;
    m->ring_head = (m->ring_head + 1) % m->ring_cap;
    if (m->ring_count < m->ring_cap)
        m->ring_count++;
}

//  --------------------------------------------------------------------------------------------
//  Balances by user

static uint64_t s_user_hash (const char *user)
{
    return s_mix (fnv1a (user, strlen (user)));
}

//  The balance index slot holding user, or the empty slot where it would go.
static size_t s_bslot (const replica_t *self, const char *user, uint64_t hash)
{
    size_t mask = self->bindex_cap - 1;
    size_t i = (size_t) hash & mask;
    while (self->bindex[i] != S_EMPTY && strcmp (self->balances[self->bindex[i]].user, user) != 0)
        i = (i + 1) & mask;
    return i;
}

static replica_balance_t *s_balance_find (const replica_t *self, const char *user)
{
    if (!self->bindex_cap)
        return NULL;
    uint32_t pos = self->bindex[s_bslot (self, user, s_user_hash (user))];
    return pos == S_EMPTY ? NULL : &self->balances[pos];
}

//  The user's balances, created at zero when new. NULL when memory runs out.
static replica_balance_t *s_balance (replica_t *self, const char *user)
{
    replica_balance_t *b = s_balance_find (self, user);
    if (b)
        return b;
    if (self->nbalances >= UINT32_MAX - 1 ||
        !grow_to ((void **) &self->balances, &self->balances_cap, self->nbalances + 1,
                  sizeof *self->balances))
        return NULL;
    if ((self->nbalances + 1) * 2 > self->bindex_cap) {
        size_t cap = self->bindex_cap ? self->bindex_cap * 2 : 256;
        uint32_t *index = malloc (cap * sizeof *index);
        if (!index)
            return NULL;
        memset (index, 0xff, cap * sizeof *index); //  every slot S_EMPTY
        free (self->bindex);
        self->bindex = index;
        self->bindex_cap = cap;
        for (size_t pos = 0; pos < self->nbalances; pos++) {
            const char *name = self->balances[pos].user;
            self->bindex[s_bslot (self, name, s_user_hash (name))] = (uint32_t) pos;
        }
    }
    size_t pos = self->nbalances++;
    b = &self->balances[pos];
    *b = (replica_balance_t){0};
    snprintf (b->user, sizeof b->user, "%s", user);
    self->bindex[s_bslot (self, b->user, s_user_hash (b->user))] = (uint32_t) pos;
    return b;
}

//  Index of an asset in replica_balance_t, -1 for neither.
static int s_asset (proto_asset_t asset)
{
    return asset == PROTO_ASSET_ENERGY    ? REPLICA_ENERGY
           : asset == PROTO_ASSET_PAYMENT ? REPLICA_PAYMENT
                                          : -1;
}

//  --------------------------------------------------------------------------------------------
//  Changes

//  Puts the order in the change list (once per list). false when memory runs out.
static bool s_touch (replica_t *self, replica_order_t *o)
{
    if (o->change_gen == self->gen)
        return true;
    if (!grow_to ((void **) &self->changes, &self->changes_cap, self->nchanges + 1,
                  sizeof *self->changes))
        return false;
    self->changes[self->nchanges++] =
        (replica_change_t){.id = o->id, .market = o->market, .epoch = o->epoch, .side = o->side};
    o->change_gen = self->gen;
    return true;
}

//  Puts the balance in the change list (once per list). false when memory runs out.
static bool s_touch_balance (replica_t *self, replica_balance_t *b)
{
    if (b->change_gen == self->gen)
        return true;
    if (!grow_to ((void **) &self->bchanges, &self->bchanges_cap, self->nbchanges + 1,
                  sizeof *self->bchanges))
        return false;
    self->bchanges[self->nbchanges++] = (uint32_t) (b - self->balances);
    b->change_gen = self->gen;
    return true;
}

void replica_clear_changes (replica_t *self)
{
    assert (self);
    self->nchanges = 0;
    self->nbchanges = 0;
    self->gen++;
    for (uint32_t i = 0; i < self->nmarkets; i++) {
        self->markets[i].changed = false;
        self->markets[i].new_trades = 0;
    }
}

//  --------------------------------------------------------------------------------------------
//  Loading

int replica_load_order (replica_t *self, const char *market, const replica_order_t *order)
{
    assert (self);
    assert (market && order);
    if (!order->id || order->price <= 0 || order->remaining <= 0)
        return -1;
    replica_order_t o = *order;
    o.market = s_market (self, market);
    if (o.market == UINT32_MAX)
        return -1;
    o.change_gen = 0;
    return s_put (self, &o) ? 0 : -1;
}

int replica_load_totals (replica_t *self, const char *market, uint64_t trades, int64_t volume,
                         int64_t value)
{
    assert (self);
    uint32_t i = s_market (self, market);
    if (i == UINT32_MAX)
        return -1;
    replica_market_t *m = &self->markets[i];
    m->trades = trades;
    m->volume = volume;
    m->value = value;
    return 0;
}

int replica_load_trade (replica_t *self, const char *market, const replica_trade_t *trade)
{
    assert (self);
    uint32_t i = s_market (self, market);
    if (i == UINT32_MAX)
        return -1;
    replica_market_t *m = &self->markets[i];
    s_ring_push (m, trade);
    if (trade->seq > m->seq)
        m->seq = trade->seq;
    return 0;
}

int replica_load_balance (replica_t *self, const char *user, proto_asset_t asset, int64_t available,
                          int64_t reserved, uint64_t seq)
{
    assert (self);
    assert (user);
    int a = s_asset (asset);
    replica_balance_t *b = a < 0 ? NULL : s_balance (self, user);
    if (!b)
        return -1;
    b->asset[a].available = available;
    b->asset[a].reserved = reserved;
    if (seq > b->seq)
        b->seq = seq;
    return 0;
}

void replica_set_seq (replica_t *self, uint64_t seq)
{
    assert (self);
    self->seq = seq;
}

//  --------------------------------------------------------------------------------------------
//  Following the bus

static int s_accepted (replica_t *self, const proto_order_accepted_t *e)
{
    uint32_t market = s_market (self, e->market);
    if (market == UINT32_MAX)
        return -1;
    //  only a GTC limit order can rest (see the header)
    if (e->type != PROTO_ORDER_TYPE_LIMIT || e->tif != PROTO_TIF_GTC || e->price <= 0 ||
        e->qty <= 0 || !e->order_id)
        return 0;
    replica_order_t o = {.id = e->order_id,
                         .epoch = e->epoch,
                         .price = e->price,
                         .qty = e->qty,
                         .remaining = e->qty,
                         .seq = e->seq,
                         .market = market,
                         .side = e->side};
    snprintf (o.user, sizeof o.user, "%s", e->user);
    replica_order_t *put = s_put (self, &o);
    return put && s_touch (self, put) ? 0 : -1;
}

static int s_trade (replica_t *self, const proto_trade_t *e)
{
    uint32_t market = s_market (self, e->market);
    if (market == UINT32_MAX)
        return -1;
    replica_market_t *m = &self->markets[market];
    m->trades++;
    m->volume += e->qty;
    m->value += e->value;
    m->seq = e->seq;
    m->changed = true;
    m->new_trades++;
    replica_trade_t t = {.trade_id = e->trade_id,
                         .seq = e->seq,
                         .ts = e->ts,
                         .epoch = e->epoch,
                         .buy_order_id = e->buy_order_id,
                         .sell_order_id = e->sell_order_id,
                         .qty = e->qty,
                         .price = e->price,
                         .value = e->value,
                         .aggressor = e->aggressor};
    s_ring_push (m, &t);
    const uint64_t ids[2] = {e->buy_order_id, e->sell_order_id};
    for (int i = 0; i < 2; i++) {
        replica_order_t *o = s_find (self, ids[i]);
        if (!o)
            continue;
        if (!s_touch (self, o))
            return -1;
        o->filled += e->qty;
        o->remaining -= e->qty;
        o->seq = e->seq;
        if (o->remaining <= 0)
            s_remove (self, o);
    }
    return 0;
}

//  A cancel or an expiry: the order leaves its book.
static int s_gone (replica_t *self, uint64_t id)
{
    replica_order_t *o = s_find (self, id);
    if (!o)
        return 0;
    if (!s_touch (self, o))
        return -1;
    s_remove (self, o);
    return 0;
}

static int s_amended (replica_t *self, const proto_order_amended_t *e)
{
    replica_order_t *o = s_find (self, e->order_id);
    if (!o)
        return 0;
    if (!s_touch (self, o))
        return -1;
    o->remaining = e->qty;
    o->qty = o->filled + e->qty;
    if (e->price > 0)
        o->price = e->price;
    o->seq = e->seq;
    if (o->remaining <= 0)
        s_remove (self, o);
    return 0;
}

//  A balance event: the user's new balance of its asset.
static int s_balance_event (replica_t *self, const proto_balance_t *e)
{
    int a = s_asset (e->asset);
    if (a < 0 || !e->user[0])
        return 0; //  not a balance anyone can hold
    replica_balance_t *b = s_balance (self, e->user);
    if (!b || !s_touch_balance (self, b))
        return -1;
    b->asset[a].available = e->available;
    b->asset[a].reserved = e->reserved;
    b->seq = e->seq;
    return 0;
}

int replica_apply (replica_t *self, const proto_msg_t *events, size_t count)
{
    assert (self);
    assert (events || count == 0);
    for (size_t i = 0; i < count; i++) {
        const proto_msg_t *msg = &events[i];
        int rc = 0;
        switch (msg->kind) {
            case PROTO_order_accepted:
                rc = s_accepted (self, &msg->order_accepted);
                break;
            case PROTO_trade:
                rc = s_trade (self, &msg->trade);
                break;
            case PROTO_order_cancelled:
                rc = s_gone (self, msg->order_cancelled.order_id);
                break;
            case PROTO_order_expired:
                rc = s_gone (self, msg->order_expired.order_id);
                break;
            case PROTO_order_amended:
                rc = s_amended (self, &msg->order_amended);
                break;
            case PROTO_balance:
                rc = s_balance_event (self, &msg->balance);
                break;
            default: //  book levels, epochs, markets, clocks, rejects: nothing rests or trades
                break;
        }
        if (rc)
            return -1;
        uint64_t seq = proto_msg_seq (msg);
        if (seq)
            self->seq = seq;
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Reading

uint64_t replica_seq (const replica_t *self)
{
    assert (self);
    return self->seq;
}

const replica_order_t *replica_order (const replica_t *self, uint64_t id)
{
    assert (self);
    return s_find (self, id);
}

size_t replica_order_count (const replica_t *self)
{
    assert (self);
    return self->count;
}

void replica_each_order (const replica_t *self,
                         void (*fn) (void *arg, const replica_order_t *order), void *arg)
{
    assert (self);
    for (size_t i = 0; i < self->count; i++)
        fn (arg, &self->orders[i]);
}

size_t replica_market_count (const replica_t *self)
{
    assert (self);
    return self->nmarkets;
}

const replica_market_t *replica_market (const replica_t *self, uint32_t i)
{
    assert (self);
    assert (i < self->nmarkets);
    return &self->markets[i];
}

size_t replica_trades_kept (const replica_t *self)
{
    assert (self);
    return self->trades_kept;
}

const replica_trade_t *replica_trade (const replica_market_t *market, size_t i)
{
    assert (market);
    assert (i < market->ring_count);
    //  ring_head is where the next trade goes
    size_t cap = market->ring_cap;
    return &market->ring[(market->ring_head + cap - 1 - i) % cap];
}

size_t replica_change_count (const replica_t *self)
{
    assert (self);
    return self->nchanges;
}

const replica_change_t *replica_change (const replica_t *self, size_t i)
{
    assert (self);
    assert (i < self->nchanges);
    return &self->changes[i];
}

size_t replica_balance_count (const replica_t *self)
{
    assert (self);
    return self->nbalances;
}

const replica_balance_t *replica_balance (const replica_t *self, size_t i)
{
    assert (self);
    assert (i < self->nbalances);
    return &self->balances[i];
}

const replica_balance_t *replica_balance_find (const replica_t *self, const char *user)
{
    assert (self);
    assert (user);
    return s_balance_find (self, user);
}

size_t replica_balance_change_count (const replica_t *self)
{
    assert (self);
    return self->nbchanges;
}

const replica_balance_t *replica_balance_change (const replica_t *self, size_t i)
{
    assert (self);
    assert (i < self->nbchanges);
    return &self->balances[self->bchanges[i]];
}
