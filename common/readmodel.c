/*  readmodel — see readmodel.h.

    Shapes, chosen for the questions asked and for bounded memory:

    - A book side is a sorted array of levels, best first, found by binary search. A level
      event changes one price, so an update is a search plus at most one memmove; a depth
      query is a prefix of the array. Books of an epoch live in a small per-market array:
      the matcher keeps only future_epochs + 1 open at once.
    - Orders sit in one hash by id and in two intrusive lists: the owner's, newest first
      (orders arrive in id order, so prepending keeps it sorted), and the finished list, in
      the order they finished, whose head is evicted once the cap is passed. Open orders are
      never evicted: the matcher holds them, and an order_expired ends each at its epoch's
      close.
    - The user trades are one ring shared by all users, each trade with two legs (buyer and
      seller) linked into their users' lists. The ring's oldest trade is always the oldest
      of its users too, so eviction unlinks list tails and memory is one fixed array.
    - The 24 h stats are 1440 one-minute buckets per market, indexed by minute modulo 1440:
      constant memory and a constant-time query, exact to the minute.
    - Epochs are an array sorted by epoch number: the matcher announces them slightly out of
      order at start (pending ones before the active one), and sorted they list newest first.

    Prices, quantities and money stay integers; the average fill price is the 128-bit sum of
    quantity × price divided by the quantity, rounded half-even like every money figure.
*/
#include "readmodel.h"
#include "clock.h"
#include "apijson.h"
#include "decimal.h"
#include "money.h"

#include <assert.h>
#include <limits.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define S_BID           0
#define S_ASK           1
#define S_MINUTES       1440 //  the stats window: 24 h of one-minute buckets
#define S_NS_PER_MINUTE (60 * MCE_NS_PER_SEC)
#define S_MINUTE_UNUSED INT64_MIN
#define S_LEVELS_START  16
#define S_BOOKS_START   4

typedef struct {
    int64_t price;
    int64_t qty; //  Wh resting at the price
    uint32_t count;
} s_level_t;

typedef struct {
    s_level_t *levels; //  best first: bids by price descending, asks ascending
    uint32_t count, cap;
} s_side_t;

typedef struct {
    int64_t epoch;
    s_side_t side[2];
    proto_indicative_t indicative; //  the latest for this epoch (seq 0: none yet)
} s_book_t;

typedef struct {
    uint64_t trade_id;
    int64_t epoch, price, qty, value, ts;
    proto_side_t aggressor;
} s_trade_t;

typedef struct {
    int64_t minute; //  ts / 1 min of the trades counted here; S_MINUTE_UNUSED when none
    int64_t volume; //  Wh
    int64_t first_price;
    uint32_t count;
} s_bucket_t;

//  The latest auction of an epoch (auction mode), as its auction event said.
typedef struct {
    int64_t price, volume, demand, supply, grid_sold, grid_bought;
    uint64_t trades;
    bool triggered;
} s_auction_t;

typedef struct {
    int64_t epoch;
    proto_epoch_phase_t state;
    int64_t start, end, clearing_price, volume;
    uint64_t trades;
    int64_t value;          //  µ: volume, trades and value add up the trades as they come, and
                            //  the cleared event's figures replace them
    int64_t demand, supply; //  at the gate closure's clearing price (0: none)
    uint32_t auctions;      //  auctions run in the epoch
    s_auction_t auction;    //  the latest
} s_epoch_t;

typedef struct {
    const config_market_t *cfg;
    s_book_t *books; //  open epochs only
    uint32_t book_count, book_cap;
    s_trade_t *trades; //  ring of limits.market_trades
    size_t trade_next, trade_count;
    s_bucket_t *buckets; //  S_MINUTES
    s_epoch_t *epochs;   //  sorted by epoch, at most limits.epochs
    size_t epoch_count;
    bool has_active;
    int64_t active; //  the epoch the matcher last announced active
    bool has_cleared;
    s_epoch_t cleared; //  the latest epoch cleared or settled
    bool paused;
    bool has_last;
    int64_t last_price;
} s_market_t;

typedef struct _s_user_t s_user_t;
typedef struct _s_order_t s_order_t;
typedef struct _s_leg_t s_leg_t;
typedef struct _s_user_trade_t s_user_trade_t;

struct _s_order_t {
    uint64_t id;
    uint32_t market;
    s_user_t *user;
    int64_t epoch;
    proto_side_t side;
    proto_order_type_t type;
    proto_tif_t tif;
    bool post_only;
    proto_order_status_t status;
    int64_t qty; //  filled + remaining
    int64_t price, expires_at, filled, remaining, created, updated;
    __int128 notional; //  sum of fill quantity × price, for the average price
    char client_order_id[PROTO_STR64_MAX + 1];
    char source[PROTO_STR32_MAX + 1];
    const char *end_reason; //  why it ended (a static name: filled, user, self_trade, ...)
    s_order_t *user_prev, *user_next; //  the owner's orders, newest first
    s_order_t *done_prev, *done_next; //  finished orders, oldest first
};

struct _s_leg_t {
    s_user_t *user; //  NULL while the ring slot is unused
    proto_side_t side;
    s_user_trade_t *trade;
    s_leg_t *prev, *next; //  the user's trades, newest first
};

struct _s_user_trade_t {
    uint64_t trade_id;
    uint64_t order_id[2]; //  buy, sell
    uint32_t market;
    int64_t epoch, price, qty, value, ts;
    s_leg_t leg[2]; //  buyer, seller
};

struct _s_user_t {
    char name[PROTO_STR64_MAX + 1];
    int64_t available[2], reserved[2]; //  [0] energy (Wh), [1] payment (µ), from balance events
    s_order_t *orders;                 //  newest first
    zhashx_t *coids;                   //  client_order_id -> s_order_t *, created on first use
    s_leg_t *trades;                   //  newest first
    size_t trade_count;
};

struct _readmodel_t {
    const mce_config_t *cfg;
    readmodel_limits_t limits;
    uint64_t seq;
    s_market_t *markets;
    uint32_t market_count;
    zhashx_t *orders; //  order id -> s_order_t * (owns them)
    zhashx_t *users;  //  name -> s_user_t * (owns them)
    s_order_t *done_head, *done_tail;
    size_t done_count;
    s_user_trade_t *user_trades; //  ring of limits.user_trades
    size_t user_trade_next;
};

//  ---------------------------------------------------------------------------------------
//  Hash callbacks

static size_t s_id_hash (const void *key)
{
    //  splitmix64's finaliser: ids are sequential, and zhashx wants the low bits to differ.
    uint64_t x = *(const uint64_t *) key;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t) x;
}

static int s_id_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void s_order_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void s_user_free (void **item)
{
    s_user_t *user = *item;
    if (user) {
        zhashx_destroy (&user->coids);
        free (user);
    }
    *item = NULL;
}

//  ---------------------------------------------------------------------------------------
//  Construction

readmodel_t *readmodel_new (const mce_config_t *cfg)
{
    readmodel_limits_t limits = {
        .finished_orders = READMODEL_FINISHED_ORDERS,
        .market_trades = READMODEL_MARKET_TRADES,
        .epochs = READMODEL_EPOCHS,
        .user_trades = READMODEL_USER_TRADES,
    };
    return readmodel_new_limits (cfg, &limits);
}

readmodel_t *readmodel_new_limits (const mce_config_t *cfg, const readmodel_limits_t *limits)
{
    assert (cfg);
    assert (limits);
    assert (limits->finished_orders >= 1 && limits->market_trades >= 1 && limits->epochs >= 1 &&
            limits->user_trades >= 1);
    readmodel_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->limits = *limits;
    self->seq = 0;
    self->market_count = (uint32_t) cfg->market_count;
    self->markets = calloc (self->market_count ? self->market_count : 1, sizeof *self->markets);
    self->orders = zhashx_new ();
    self->users = zhashx_new ();
    //  calloc: pages of the ring are only touched as trades arrive.
    self->user_trades = calloc (limits->user_trades, sizeof *self->user_trades);
    if (!self->markets || !self->orders || !self->users || !self->user_trades) {
        readmodel_destroy (&self);
        return NULL;
    }
    zhashx_set_key_hasher (self->orders, s_id_hash);
    zhashx_set_key_comparator (self->orders, s_id_compare);
    zhashx_set_key_duplicator (self->orders, NULL); //  the key is the order's own id field
    zhashx_set_key_destructor (self->orders, NULL);
    zhashx_set_destructor (self->orders, s_order_free);
    zhashx_set_destructor (self->users, s_user_free);
    self->done_head = self->done_tail = NULL;
    self->done_count = 0;
    self->user_trade_next = 0;

    for (uint32_t i = 0; i < self->market_count; i++) {
        s_market_t *m = &self->markets[i];
        m->cfg = &cfg->markets[i];
        m->trades = calloc (limits->market_trades, sizeof *m->trades);
        m->buckets = calloc (S_MINUTES, sizeof *m->buckets);
        m->epochs = calloc (limits->epochs, sizeof *m->epochs);
        if (!m->trades || !m->buckets || !m->epochs) {
            readmodel_destroy (&self);
            return NULL;
        }
        for (size_t b = 0; b < S_MINUTES; b++)
            m->buckets[b].minute = S_MINUTE_UNUSED;
        m->books = NULL;
        m->book_count = m->book_cap = 0;
        m->trade_next = m->trade_count = 0;
        m->epoch_count = 0;
        m->has_active = m->has_cleared = m->paused = m->has_last = false;
    }
    return self;
}

static void s_book_free (s_book_t *book)
{
    free (book->side[S_BID].levels);
    free (book->side[S_ASK].levels);
}

void readmodel_destroy (readmodel_t **self_p)
{
    assert (self_p);
    readmodel_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; self->markets && i < self->market_count; i++) {
        s_market_t *m = &self->markets[i];
        for (uint32_t b = 0; b < m->book_count; b++)
            s_book_free (&m->books[b]);
        free (m->books);
        free (m->trades);
        free (m->buckets);
        free (m->epochs);
    }
    free (self->markets);
    zhashx_destroy (&self->orders);
    zhashx_destroy (&self->users);
    free (self->user_trades);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------------------
//  Lookups

static s_market_t *s_market (readmodel_t *self, const char *id)
{
    if (!id)
        return NULL;
    //  A handful of markets: a scan beats hashing every event's market name.
    for (uint32_t i = 0; i < self->market_count; i++)
        if (strcmp (self->markets[i].cfg->id, id) == 0)
            return &self->markets[i];
    return NULL;
}

static s_user_t *s_user_find (readmodel_t *self, const char *name)
{
    return name ? zhashx_lookup (self->users, name) : NULL;
}

static s_user_t *s_user_get (readmodel_t *self, const char *name)
{
    s_user_t *user = s_user_find (self, name);
    if (user)
        return user;
    user = calloc (1, sizeof *user);
    if (!user)
        return NULL;
    snprintf (user->name, sizeof user->name, "%s", name);
    if (zhashx_insert (self->users, user->name, user)) {
        free (user);
        return NULL;
    }
    return user;
}

static s_order_t *s_order_find (readmodel_t *self, uint64_t order_id)
{
    return zhashx_lookup (self->orders, &order_id);
}

static bool s_finished (const s_order_t *o)
{
    return o->status == PROTO_ORDER_STATUS_FILLED || o->status == PROTO_ORDER_STATUS_CANCELLED ||
           o->status == PROTO_ORDER_STATUS_EXPIRED;
}

//  The epoch -1 stands for: the matcher's active one, or the wall clock's before it said.
static int64_t s_current_epoch (const s_market_t *m)
{
    if (m->has_active)
        return m->active;
    return clock_wall_ns () / MCE_NS_PER_SEC / m->cfg->epoch_seconds;
}

static int64_t s_resolve_epoch (const s_market_t *m, int64_t epoch)
{
    return epoch < 0 ? s_current_epoch (m) : epoch;
}

static s_book_t *s_book_find (s_market_t *m, int64_t epoch)
{
    for (uint32_t i = 0; i < m->book_count; i++)
        if (m->books[i].epoch == epoch)
            return &m->books[i];
    return NULL;
}

static bool s_epoch_closed (proto_epoch_phase_t state)
{
    return state == PROTO_EPOCH_PHASE_CLEARED || state == PROTO_EPOCH_PHASE_SETTLED;
}

static s_epoch_t *s_epoch_find (s_market_t *m, int64_t epoch)
{
    size_t lo = 0, hi = m->epoch_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->epochs[mid].epoch < epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->epoch_count && m->epochs[lo].epoch == epoch ? &m->epochs[lo] : NULL;
}

static int s_clamp (int value, int max)
{
    return value < 0 ? 0 : value > max ? max : value;
}

//  ---------------------------------------------------------------------------------------
//  Books

static s_book_t *s_book_get (s_market_t *m, int64_t epoch)
{
    s_book_t *book = s_book_find (m, epoch);
    if (book)
        return book;
    if (m->book_count == m->book_cap) {
        uint32_t cap = m->book_cap ? m->book_cap * 2 : S_BOOKS_START;
        s_book_t *books = realloc (m->books, cap * sizeof *books);
        if (!books)
            return NULL;
        m->books = books;
        m->book_cap = cap;
    }
    book = &m->books[m->book_count++];
    memset (book, 0, sizeof *book);
    book->epoch = epoch;
    return book;
}

static void s_book_drop (s_market_t *m, int64_t epoch)
{
    s_book_t *book = s_book_find (m, epoch);
    if (!book)
        return;
    s_book_free (book);
    *book = m->books[--m->book_count];
}

//  True when price a is better than b on this side.
static bool s_better (int side, int64_t a, int64_t b)
{
    return side == S_BID ? a > b : a < b;
}

//  Index of the level at price, or of where it would go.
static uint32_t s_level_search (const s_side_t *s, int side, int64_t price)
{
    uint32_t lo = 0, hi = s->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s_better (side, s->levels[mid].price, price))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void s_level_set (s_side_t *s, int side, int64_t price, int64_t qty, uint32_t count)
{
    uint32_t at = s_level_search (s, side, price);
    bool found = at < s->count && s->levels[at].price == price;
    if (qty <= 0) {
        if (found) {
            memmove (&s->levels[at], &s->levels[at + 1], (s->count - at - 1) * sizeof *s->levels);
            s->count--;
        }
        return;
    }
    if (!found) {
        if (s->count == s->cap) {
            uint32_t cap = s->cap ? s->cap * 2 : S_LEVELS_START;
            s_level_t *levels = realloc (s->levels, cap * sizeof *levels);
            if (!levels)
                return; //  the level is missing until memory allows: a view, not the book
            s->levels = levels;
            s->cap = cap;
        }
        memmove (&s->levels[at + 1], &s->levels[at], (s->count - at) * sizeof *s->levels);
        s->count++;
        s->levels[at].price = price;
    }
    s->levels[at].qty = qty;
    s->levels[at].count = count;
}

//  ---------------------------------------------------------------------------------------
//  Orders

static void s_user_unlink_order (s_user_t *user, s_order_t *o)
{
    if (o->user_prev)
        o->user_prev->user_next = o->user_next;
    else
        user->orders = o->user_next;
    if (o->user_next)
        o->user_next->user_prev = o->user_prev;
    o->user_prev = o->user_next = NULL;
}

static void s_evict (readmodel_t *self, s_order_t *o)
{
    //  Off the finished list (o is its head).
    self->done_head = o->done_next;
    if (self->done_head)
        self->done_head->done_prev = NULL;
    else
        self->done_tail = NULL;
    self->done_count--;

    s_user_t *user = o->user;
    s_user_unlink_order (user, o);
    //  A reused client_order_id may already name a newer order: leave that one.
    if (o->client_order_id[0] && user->coids &&
        zhashx_lookup (user->coids, o->client_order_id) == o)
        zhashx_delete (user->coids, o->client_order_id);
    uint64_t id = o->id; //  the hash's key points into o, which the delete frees
    zhashx_delete (self->orders, &id);
}

static void s_finish (readmodel_t *self, s_order_t *o, proto_order_status_t status, int64_t ts)
{
    o->status = status;
    o->updated = ts;
    o->done_prev = self->done_tail;
    o->done_next = NULL;
    if (self->done_tail)
        self->done_tail->done_next = o;
    else
        self->done_head = o;
    self->done_tail = o;
    self->done_count++;
    while (self->done_count > self->limits.finished_orders)
        s_evict (self, self->done_head);
}

static void s_on_accepted (readmodel_t *self, const proto_order_accepted_t *a)
{
    s_market_t *m = s_market (self, a->market);
    if (!m || s_order_find (self, a->order_id))
        return;
    s_user_t *user = s_user_get (self, a->user);
    s_order_t *o = calloc (1, sizeof *o);
    if (!user || !o) {
        free (o);
        return;
    }
    o->id = a->order_id;
    o->market = (uint32_t) (m - self->markets);
    o->user = user;
    o->epoch = a->epoch;
    o->side = a->side;
    o->type = a->type;
    o->tif = a->tif;
    o->post_only = a->post_only;
    o->status = PROTO_ORDER_STATUS_OPEN;
    o->qty = a->qty;
    o->price = a->price;
    o->expires_at = a->expires_at;
    o->filled = 0;
    o->remaining = a->qty;
    o->created = o->updated = a->ts;
    o->notional = 0;
    snprintf (o->client_order_id, sizeof o->client_order_id, "%s", a->client_order_id);
    snprintf (o->source, sizeof o->source, "%s", a->source);
    if (zhashx_insert (self->orders, &o->id, o)) {
        free (o);
        return;
    }
    o->user_prev = NULL;
    o->user_next = user->orders;
    if (user->orders)
        user->orders->user_prev = o;
    user->orders = o;
    if (o->client_order_id[0]) {
        if (!user->coids)
            user->coids = zhashx_new ();
        //  The matcher forgets a client_order_id once its epoch closes, so it may come back
        //  on a new order: the newest order owns it.
        if (user->coids)
            zhashx_update (user->coids, o->client_order_id, o);
    }
}

static void s_fill (readmodel_t *self, uint64_t order_id, int64_t qty, int64_t price, int64_t ts)
{
    s_order_t *o = s_order_find (self, order_id);
    if (!o || s_finished (o))
        return;
    o->filled += qty;
    o->remaining = o->remaining > qty ? o->remaining - qty : 0;
    o->notional += (__int128) qty * price;
    o->updated = ts;
    if (o->remaining == 0) {
        o->end_reason = "filled";
        s_finish (self, o, PROTO_ORDER_STATUS_FILLED, ts);
    }
    else
        o->status = PROTO_ORDER_STATUS_PARTIALLY_FILLED;
}

static void s_on_ended (readmodel_t *self, uint64_t order_id, int64_t remaining,
                        proto_order_status_t status, const char *reason, int64_t ts)
{
    s_order_t *o = s_order_find (self, order_id);
    if (!o || s_finished (o))
        return;
    o->remaining = remaining;
    o->end_reason = reason;
    s_finish (self, o, status, ts);
}

static void s_on_amended (readmodel_t *self, const proto_order_amended_t *a)
{
    s_order_t *o = s_order_find (self, a->order_id);
    if (!o || s_finished (o))
        return;
    //  The event's qty is the new remaining quantity; the order's size follows, as in the
    //  matcher, so that filled + remaining is always the size.
    o->remaining = a->qty;
    o->qty = o->filled + a->qty;
    o->price = a->price;
    o->updated = a->ts;
}

//  ---------------------------------------------------------------------------------------
//  Trades

static void s_leg_link (s_leg_t *leg, s_user_t *user, proto_side_t side, s_user_trade_t *trade)
{
    leg->user = user;
    leg->side = side;
    leg->trade = trade;
    leg->prev = NULL;
    leg->next = user->trades;
    if (user->trades)
        user->trades->prev = leg;
    user->trades = leg;
    user->trade_count++;
}

static void s_leg_unlink (s_leg_t *leg)
{
    s_user_t *user = leg->user;
    if (!user)
        return;
    if (leg->prev)
        leg->prev->next = leg->next;
    else
        user->trades = leg->next;
    if (leg->next)
        leg->next->prev = leg->prev;
    user->trade_count--;
    leg->user = NULL;
    leg->prev = leg->next = NULL;
}

static void s_record_user_trade (readmodel_t *self, s_market_t *m, const proto_trade_t *t)
{
    s_user_trade_t *ut = &self->user_trades[self->user_trade_next];
    self->user_trade_next = (self->user_trade_next + 1) % self->limits.user_trades;
    //  The slot's previous trade is the oldest kept, so the last of each of its users' lists.
    s_leg_unlink (&ut->leg[0]);
    s_leg_unlink (&ut->leg[1]);
    ut->trade_id = t->trade_id;
    ut->order_id[0] = t->buy_order_id;
    ut->order_id[1] = t->sell_order_id;
    ut->market = (uint32_t) (m - self->markets);
    ut->epoch = t->epoch;
    ut->price = t->price;
    ut->qty = t->qty;
    ut->value = t->value;
    ut->ts = t->ts;
    s_user_t *buyer = s_user_get (self, t->buyer);
    s_user_t *seller = s_user_get (self, t->seller);
    if (buyer)
        s_leg_link (&ut->leg[0], buyer, PROTO_SIDE_BUY, ut);
    if (seller)
        s_leg_link (&ut->leg[1], seller, PROTO_SIDE_SELL, ut);
}

static void s_on_trade (readmodel_t *self, const proto_trade_t *t)
{
    s_market_t *m = s_market (self, t->market);
    if (!m)
        return;
    s_trade_t *slot = &m->trades[m->trade_next];
    m->trade_next = (m->trade_next + 1) % self->limits.market_trades;
    if (m->trade_count < self->limits.market_trades)
        m->trade_count++;
    *slot = (s_trade_t){.trade_id = t->trade_id,
                        .epoch = t->epoch,
                        .price = t->price,
                        .qty = t->qty,
                        .value = t->value,
                        .ts = t->ts,
                        .aggressor = t->aggressor};
    m->has_last = true;
    m->last_price = t->price;
    //  the epoch's figures as its trades come (the cleared event then says them for good)
    s_epoch_t *e = s_epoch_find (m, t->epoch);
    if (e && !s_epoch_closed (e->state)) {
        e->volume += t->qty;
        e->trades++;
        e->value += t->value;
    }

    //  A bucket holds one minute; an older minute in its slot is more than 24 h old. A trade
    //  older than what its slot holds (the matcher's clock stepped back a day) is not counted.
    int64_t minute = t->ts / S_NS_PER_MINUTE;
    s_bucket_t *b = &m->buckets[((minute % S_MINUTES) + S_MINUTES) % S_MINUTES];
    if (b->minute < minute)
        *b = (s_bucket_t){.minute = minute, .volume = 0, .first_price = t->price, .count = 0};
    if (b->minute == minute) {
        b->volume += t->qty;
        b->count++;
    }

    s_record_user_trade (self, m, t);
    s_fill (self, t->buy_order_id, t->qty, t->price, t->ts);
    s_fill (self, t->sell_order_id, t->qty, t->price, t->ts);
}

//  ---------------------------------------------------------------------------------------
//  Epochs, levels, market state

static void s_epoch_merge (s_epoch_t *e, const proto_epoch_state_t *ev)
{
    e->epoch = ev->epoch;
    e->state = ev->state;
    e->start = ev->start;
    e->end = ev->end;
    //  Optional figures: absent (0) in a later event does not erase what an earlier one said.
    if (ev->clearing_price)
        e->clearing_price = ev->clearing_price;
    if (ev->volume)
        e->volume = ev->volume;
    if (ev->trades)
        e->trades = ev->trades;
    if (ev->value)
        e->value = ev->value;
    if (ev->demand)
        e->demand = ev->demand;
    if (ev->supply)
        e->supply = ev->supply;
}

static void s_epoch_record (readmodel_t *self, s_market_t *m, const proto_epoch_state_t *ev)
{
    s_epoch_t *e = s_epoch_find (m, ev->epoch);
    if (!e) {
        size_t at = 0;
        while (at < m->epoch_count && m->epochs[m->epoch_count - 1 - at].epoch > ev->epoch)
            at++;
        at = m->epoch_count - at; //  insertion index; usually the end
        if (m->epoch_count == self->limits.epochs) {
            if (at == 0)
                return; //  older than every epoch kept
            memmove (&m->epochs[0], &m->epochs[1], (at - 1) * sizeof *m->epochs);
            at--;
        }
        else {
            memmove (&m->epochs[at + 1], &m->epochs[at], (m->epoch_count - at) * sizeof *m->epochs);
            m->epoch_count++;
        }
        e = &m->epochs[at];
        memset (e, 0, sizeof *e);
    }
    s_epoch_merge (e, ev);
}

static void s_on_epoch (readmodel_t *self, const proto_epoch_state_t *ev)
{
    s_market_t *m = s_market (self, ev->market);
    if (!m)
        return;
    s_epoch_record (self, m, ev);
    if (ev->state == PROTO_EPOCH_PHASE_ACTIVE && (!m->has_active || ev->epoch >= m->active)) {
        m->has_active = true;
        m->active = ev->epoch;
    }
    if (s_epoch_closed (ev->state)) {
        s_book_drop (m, ev->epoch);
        if (!m->has_cleared || ev->epoch > m->cleared.epoch) {
            memset (&m->cleared, 0, sizeof m->cleared);
            m->cleared.epoch = ev->epoch;
            m->has_cleared = true;
        }
        if (ev->epoch == m->cleared.epoch)
            s_epoch_merge (&m->cleared, ev);
    }
}

static void s_on_auction (readmodel_t *self, const proto_auction_t *a)
{
    s_market_t *m = s_market (self, a->market);
    s_epoch_t *e = m ? s_epoch_find (m, a->epoch) : NULL;
    if (!e)
        return;
    e->auctions++;
    e->auction = (s_auction_t){.price = a->price,
                               .volume = a->volume,
                               .demand = a->demand,
                               .supply = a->supply,
                               .grid_sold = a->grid_sold,
                               .grid_bought = a->grid_bought,
                               .trades = a->trades,
                               .triggered = a->triggered};
}

//  An auction market's indicative clearing: kept with its open book until the epoch clears.
static void s_on_indicative (readmodel_t *self, const proto_indicative_t *x)
{
    s_market_t *m = s_market (self, x->market);
    if (!m || (m->has_cleared && x->epoch <= m->cleared.epoch))
        return;
    s_book_t *book = s_book_get (m, x->epoch);
    if (book)
        book->indicative = *x;
}

static void s_on_level (readmodel_t *self, const proto_book_level_t *l)
{
    s_market_t *m = s_market (self, l->market);
    if (!m || (l->side != PROTO_SIDE_BUY && l->side != PROTO_SIDE_SELL))
        return;
    //  The matcher closes epochs oldest first, so nothing at or before the latest cleared one
    //  is open: a book made for it would never be dropped.
    if (m->has_cleared && l->epoch <= m->cleared.epoch)
        return;
    s_book_t *book = l->qty > 0 ? s_book_get (m, l->epoch) : s_book_find (m, l->epoch);
    if (!book)
        return;
    int side = l->side == PROTO_SIDE_BUY ? S_BID : S_ASK;
    s_level_set (&book->side[side], side, l->price, l->qty, l->count);
}

void readmodel_apply (readmodel_t *self, const proto_msg_t *event)
{
    assert (self);
    assert (event);
    switch (event->kind) {
        case PROTO_order_accepted:
            s_on_accepted (self, &event->order_accepted);
            break;
        case PROTO_trade:
            s_on_trade (self, &event->trade);
            break;
        case PROTO_order_cancelled:
            s_on_ended (self, event->order_cancelled.order_id, event->order_cancelled.remaining,
                        PROTO_ORDER_STATUS_CANCELLED,
                        proto_cancel_reason_name (event->order_cancelled.reason),
                        event->order_cancelled.ts);
            break;
        case PROTO_order_expired:
            s_on_ended (self, event->order_expired.order_id, event->order_expired.remaining,
                        PROTO_ORDER_STATUS_EXPIRED,
                        proto_expire_reason_name (event->order_expired.reason),
                        event->order_expired.ts);
            break;
        case PROTO_order_amended:
            s_on_amended (self, &event->order_amended);
            break;
        case PROTO_book_level:
            s_on_level (self, &event->book_level);
            break;
        case PROTO_epoch_state:
            s_on_epoch (self, &event->epoch_state);
            break;
        case PROTO_auction:
            s_on_auction (self, &event->auction);
            break;
        case PROTO_indicative:
            s_on_indicative (self, &event->indicative);
            break;
        case PROTO_market_state: {
            s_market_t *m = s_market (self, event->market_state.market);
            if (m)
                m->paused = event->market_state.state == PROTO_MARKET_STATUS_PAUSED;
            break;
        }
        case PROTO_balance: {
            const proto_balance_t *b = &event->balance;
            s_user_t *user = s_user_get (self, b->user);
            int a = b->asset == PROTO_ASSET_ENERGY ? 0 : 1;
            if (user) {
                user->available[a] = b->available;
                user->reserved[a] = b->reserved;
            }
            break;
        }
        case PROTO_new_order:
        case PROTO_cancel_order:
        case PROTO_amend_order:
        case PROTO_market_control:
        case PROTO_withdraw:
        case PROTO_deposit_credit:
        case PROTO_withdrawal_close:
        case PROTO_withdrawal:
        case PROTO_order_rejected:
        case PROTO_clock:
            break; //  on stream m, so they count for the seq, but change nothing shown here
        default:
            return; //  not a stream m event (heartbeat's seq is the head's, not its own)
    }
    uint64_t seq = proto_msg_seq (event);
    if (seq > self->seq)
        self->seq = seq;
}

uint64_t readmodel_seq (readmodel_t *self)
{
    assert (self);
    return self->seq;
}

//  ---------------------------------------------------------------------------------------
//  JSON helpers: every value the API shows goes through one of these

//  0 means "not known" for prices and times in events (optional fields).
static json_t *s_price_or_null (int64_t price)
{
    return price ? apijson_price (price) : json_null ();
}

static json_t *s_int (int64_t value)
{
    return json_integer ((json_int_t) value);
}

//  An epoch where the API shows one: its number, and beside it the delivery period it stands
//  for, [delivery_start, delivery_end) in RFC 3339 (epoch × epoch_seconds, as the matcher
//  reckons it). m NULL: all three null.
static void s_put_epoch (json_t *row, const s_market_t *m, int64_t epoch)
{
    int64_t len = m ? m->cfg->epoch_seconds * MCE_NS_PER_SEC : 0;
    json_object_set_new (row, "epoch", m ? s_int (epoch) : json_null ());
    json_object_set_new (row, "delivery_start", m ? apijson_time (epoch * len) : json_null ());
    json_object_set_new (row, "delivery_end", m ? apijson_time (epoch * len + len) : json_null ());
}

static json_t *s_side (proto_side_t side)
{
    return side == PROTO_SIDE_BUY    ? json_string ("Buy")
           : side == PROTO_SIDE_SELL ? json_string ("Sell")
                                     : json_null ();
}

static json_t *s_epoch_state (proto_epoch_phase_t state)
{
    return apijson_text_or_null (proto_epoch_phase_name (state));
}

//  {market, seq}, the start of every market response.
static json_t *s_market_head (readmodel_t *self, const s_market_t *m)
{
    json_t *root = json_object ();
    json_object_set_new (root, "market", json_string (m->cfg->id));
    json_object_set_new (root, "seq", json_integer ((json_int_t) self->seq));
    return root;
}

//  ---------------------------------------------------------------------------------------
//  Market queries

static json_t *s_depth (readmodel_t *self, const char *market, int64_t epoch, int levels,
                        bool chart)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    epoch = s_resolve_epoch (m, epoch);
    int max = levels == INT_MAX ? INT_MAX
              : levels <= 0     ? READMODEL_LIMIT_MAX
                                : s_clamp (levels, READMODEL_LIMIT_MAX);
    const s_book_t *book = s_book_find (m, epoch);
    json_t *root = s_market_head (self, m);
    s_put_epoch (root, m, epoch);
    for (int side = S_BID; side <= S_ASK; side++) {
        json_t *list = json_array ();
        uint32_t count = book ? book->side[side].count : 0;
        int64_t cumulative = 0;
        for (uint32_t i = 0; i < count && i < (uint32_t) max; i++) {
            const s_level_t *l = &book->side[side].levels[i];
            cumulative += l->qty;
            json_t *row = json_object ();
            json_object_set_new (row, "price", apijson_price (l->price));
            if (chart)
                json_object_set_new (row, "cumulative_energy", apijson_kwh (cumulative));
            else {
                json_object_set_new (row, "energy_amount", apijson_kwh (l->qty));
                json_object_set_new (row, "orders", json_integer (l->count));
            }
            json_array_append_new (list, row);
        }
        json_object_set_new (root, side == S_BID ? "bids" : "asks", list);
    }
    return root;
}

json_t *readmodel_depth (readmodel_t *self, const char *market, int64_t epoch, int levels)
{
    return s_depth (self, market, epoch, levels, false);
}

json_t *readmodel_depth_chart (readmodel_t *self, const char *market, int64_t epoch, int levels)
{
    return s_depth (self, market, epoch, levels, true);
}

json_t *readmodel_book (readmodel_t *self, const char *market, int64_t epoch)
{
    return s_depth (self, market, epoch, INT_MAX, false);
}

json_t *readmodel_stats (readmodel_t *self, const char *market, int64_t now_ns)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    int64_t epoch = s_current_epoch (m);
    const s_book_t *book = s_book_find (m, epoch);
    const s_level_t *bid = book && book->side[S_BID].count ? &book->side[S_BID].levels[0] : NULL;
    const s_level_t *ask = book && book->side[S_ASK].count ? &book->side[S_ASK].levels[0] : NULL;

    int64_t volume = 0, trades = 0;
    const s_bucket_t *first = NULL;
    int64_t now_minute = now_ns / S_NS_PER_MINUTE;
    //  No upper bound: a trade stamped a little ahead of the gateway's clock still counts.
    for (size_t i = 0; i < S_MINUTES; i++) {
        const s_bucket_t *b = &m->buckets[i];
        if (b->minute == S_MINUTE_UNUSED || b->minute <= now_minute - S_MINUTES)
            continue;
        volume += b->volume;
        trades += b->count;
        if (!first || b->minute < first->minute)
            first = b;
    }
    int64_t active = 0;
    for (uint32_t i = 0; i < m->book_count; i++)
        for (int side = S_BID; side <= S_ASK; side++)
            for (uint32_t l = 0; l < m->books[i].side[side].count; l++)
                active += m->books[i].side[side].levels[l].count;

    json_t *root = s_market_head (self, m);
    s_put_epoch (root, m, epoch);
    json_object_set_new (root, "status", json_string (m->paused ? "paused" : "open"));
    json_object_set_new (root, "best_bid", bid ? apijson_price (bid->price) : json_null ());
    json_object_set_new (root, "best_ask", ask ? apijson_price (ask->price) : json_null ());
    json_object_set_new (root, "spread",
                         bid && ask ? apijson_price (ask->price - bid->price) : json_null ());
    json_object_set_new (root, "last_price",
                         m->has_last ? apijson_price (m->last_price) : json_null ());
    json_object_set_new (root, "volume_24h", apijson_kwh (volume));
    json_object_set_new (root, "trades_24h", s_int (trades));
    json_object_set_new (root, "change_24h",
                         first && m->has_last ? apijson_price (m->last_price - first->first_price)
                                              : json_null ());
    json_object_set_new (root, "active_orders", s_int (active));
    return root;
}

//  The volume-weighted average price of value µ over volume Wh, rounded down; null for none.
static json_t *s_vwap (int64_t value, int64_t volume)
{
    return volume > 0 ? s_price_or_null ((int64_t) ((__int128) value * 1000 / volume))
                      : json_null ();
}

static json_t *s_kwh_or_null (int64_t wh)
{
    return wh ? apijson_kwh (wh) : json_null ();
}

static json_t *s_auction_json (const s_epoch_t *e)
{
    if (!e->auctions)
        return json_null ();
    const s_auction_t *a = &e->auction;
    return json_pack ("{s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:b,s:I}", "clearing_price",
                      s_price_or_null (a->price), "volume", apijson_kwh (a->volume), "trades",
                      (json_int_t) a->trades, "demand", s_kwh_or_null (a->demand), "supply",
                      s_kwh_or_null (a->supply), "grid_sold", apijson_kwh (a->grid_sold),
                      "grid_bought", apijson_kwh (a->grid_bought), "triggered", a->triggered,
                      "auctions", (json_int_t) e->auctions);
}

//  An epoch's figures, as every endpoint shows them (the object gains its keys).
static void s_epoch_figures (json_t *row, const s_epoch_t *e)
{
    json_object_set_new (row, "clearing_price", s_price_or_null (e->clearing_price));
    json_object_set_new (row, "volume", apijson_kwh (e->volume));
    json_object_set_new (row, "trades", s_int ((int64_t) e->trades));
    json_object_set_new (row, "value", apijson_money (e->value));
    json_object_set_new (row, "average_price", s_vwap (e->value, e->volume));
    json_object_set_new (row, "demand", s_kwh_or_null (e->demand));
    json_object_set_new (row, "supply", s_kwh_or_null (e->supply));
    json_object_set_new (row, "last_auction", s_auction_json (e));
}

json_t *readmodel_clearing_price (readmodel_t *self, const char *market, int64_t epoch)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    const s_epoch_t *e = m->has_cleared ? &m->cleared : NULL;
    if (epoch >= 0) {
        e = s_epoch_find (m, epoch);
        if (!e)
            return NULL;
    }
    json_t *root = s_market_head (self, m);
    s_put_epoch (root, e ? m : NULL, e ? e->epoch : 0);
    json_object_set_new (root, "state", e ? s_epoch_state (e->state) : json_null ());
    if (e)
        s_epoch_figures (root, e); //  a cleared epoch without an auction has no clearing price
    else {
        const char *keys[] = {"clearing_price", "volume", "trades", "value",
                              "average_price",  "demand", "supply", "last_auction"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            json_object_set_new (root, keys[i], json_null ());
    }
    return root;
}

json_t *readmodel_trades (readmodel_t *self, const char *market, int limit)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    size_t n = (size_t) s_clamp (limit, READMODEL_LIMIT_MAX);
    size_t cap = self->limits.market_trades;
    json_t *list = json_array ();
    for (size_t i = 0; i < n && i < m->trade_count; i++) {
        const s_trade_t *t = &m->trades[(m->trade_next + cap - 1 - i) % cap];
        json_t *row = json_object ();
        json_object_set_new (row, "trade_id", apijson_id (t->trade_id));
        s_put_epoch (row, m, t->epoch);
        json_object_set_new (row, "price", apijson_price (t->price));
        json_object_set_new (row, "energy_amount", apijson_kwh (t->qty));
        json_object_set_new (row, "value", apijson_money (t->value));
        json_object_set_new (row, "aggressor", s_side (t->aggressor));
        json_object_set_new (row, "time", apijson_time (t->ts));
        json_array_append_new (list, row);
    }
    json_t *root = s_market_head (self, m);
    json_object_set_new (root, "trades", list);
    return root;
}

json_t *readmodel_epoch_status (readmodel_t *self, const char *market, int64_t now_ns)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    int64_t epoch = s_current_epoch (m);
    const s_epoch_t *e = s_epoch_find (m, epoch);
    int64_t len = m->cfg->epoch_seconds * MCE_NS_PER_SEC;
    //  The matcher's numbers when it announced the epoch; the arithmetic it uses otherwise.
    int64_t start = e ? e->start : epoch * len;
    int64_t end = e ? e->end : start + len;
    int64_t remaining = end > now_ns ? (end - now_ns) / MCE_NS_PER_SEC : 0;
    const s_epoch_t *last = m->has_cleared ? &m->cleared : NULL;

    json_t *root = s_market_head (self, m);
    s_put_epoch (root, m, epoch);
    json_object_set_new (root, "state", e ? s_epoch_state (e->state) : json_null ());
    json_object_set_new (root, "start", apijson_time (start));
    json_object_set_new (root, "end", apijson_time (end));
    json_object_set_new (root, "seconds_remaining", s_int (remaining));
    json_object_set_new (root, "market_status", json_string (m->paused ? "paused" : "open"));
    json_object_set_new (root, "last_cleared_epoch", last ? s_int (last->epoch) : json_null ());
    json_object_set_new (root, "last_clearing_price",
                         last ? s_price_or_null (last->clearing_price) : json_null ());
    json_object_set_new (root, "last_volume", last ? apijson_kwh (last->volume) : json_null ());
    json_object_set_new (root, "last_average_price",
                         last ? s_vwap (last->value, last->volume) : json_null ());
    return root;
}

static json_t *s_epoch_json (const s_epoch_t *e)
{
    json_t *row = json_object ();
    json_object_set_new (row, "epoch", s_int (e->epoch));
    json_object_set_new (row, "state", s_epoch_state (e->state));
    json_object_set_new (row, "start", apijson_time (e->start));
    json_object_set_new (row, "end", apijson_time (e->end));
    json_object_set_new (row, "delivery_start", apijson_time (e->start));
    json_object_set_new (row, "delivery_end", apijson_time (e->end));
    s_epoch_figures (row, e);
    return row;
}

//  Open: not cleared, and announced (or the current one before any announcement).
static bool s_epoch_open (s_market_t *m, int64_t epoch)
{
    s_epoch_t *e = s_epoch_find (m, epoch);
    bool open = e ? !s_epoch_closed (e->state) : epoch == s_current_epoch (m);
    return open && !(m->has_cleared && epoch <= m->cleared.epoch);
}

//  One open epoch's row; x NULL (or seq 0) while none has come.
static json_t *s_indicative_json (const s_market_t *m, int64_t epoch, const proto_indicative_t *x)
{
    static const proto_indicative_t none; //  every figure 0: nothing crosses, nothing known
    if (!x || x->seq == 0)
        x = &none;
    json_t *row = json_object ();
    json_object_set_new (row, "market", json_string (m->cfg->id));
    s_put_epoch (row, m, epoch);
    json_object_set_new (row, "crossed", json_boolean (x->price != 0));
    json_object_set_new (row, "price", s_price_or_null (x->price));
    json_object_set_new (row, "volume", apijson_kwh (x->volume));
    json_object_set_new (row, "demand", apijson_kwh (x->demand));
    json_object_set_new (row, "supply", apijson_kwh (x->supply));
    json_object_set_new (row, "imbalance_side", s_side (x->imbalance_side));
    json_object_set_new (row, "imbalance", apijson_kwh (x->imbalance));
    json_object_set_new (row, "grid_sold", apijson_kwh (x->grid_sold));
    json_object_set_new (row, "grid_bought", apijson_kwh (x->grid_bought));
    json_object_set_new (row, "as_of", x->seq ? apijson_time (x->ts) : json_null ());
    json_object_set_new (row, "seq", json_integer ((json_int_t) x->seq));
    return row;
}

json_t *readmodel_indicative (readmodel_t *self, const char *market, int64_t epoch)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    epoch = s_resolve_epoch (m, epoch);
    if (!s_epoch_open (m, epoch))
        return NULL;
    const s_book_t *book = s_book_find (m, epoch);
    return s_indicative_json (m, epoch, book ? &book->indicative : NULL);
}

json_t *readmodel_indicatives (readmodel_t *self, const char *market)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    json_t *list = json_array ();
    for (uint32_t i = 0; i < m->book_count; i++) {
        const s_book_t *book = &m->books[i];
        if (book->indicative.seq != 0 && s_epoch_open (m, book->epoch))
            json_array_append_new (list, s_indicative_json (m, book->epoch, &book->indicative));
    }
    return list;
}

json_t *readmodel_epoch (readmodel_t *self, const char *market, int64_t epoch)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    for (size_t i = 0; m && i < m->epoch_count; i++)
        if (m->epochs[i].epoch == epoch)
            return s_epoch_json (&m->epochs[i]);
    return NULL;
}

json_t *readmodel_epochs (readmodel_t *self, const char *market, int limit, int offset)
{
    assert (self);
    s_market_t *m = s_market (self, market);
    if (!m)
        return NULL;
    limit = s_clamp (limit, READMODEL_LIMIT_MAX);
    offset = offset < 0 ? 0 : offset;
    json_t *list = json_array ();
    for (size_t i = (size_t) offset; i < (size_t) offset + (size_t) limit && i < m->epoch_count;
         i++) {
        json_array_append_new (list, s_epoch_json (&m->epochs[m->epoch_count - 1 - i]));
    }
    json_t *root = s_market_head (self, m);
    json_object_set_new (root, "epochs", list);
    json_object_set_new (root, "limit", json_integer (limit));
    json_object_set_new (root, "offset", json_integer (offset));
    json_object_set_new (root, "total", json_integer ((json_int_t) m->epoch_count));
    return root;
}

//  ---------------------------------------------------------------------------------------
//  Orders and user trades

static const char *s_type_name (proto_order_type_t type)
{
    return type == PROTO_ORDER_TYPE_LIMIT    ? "Limit"
           : type == PROTO_ORDER_TYPE_MARKET ? "Market"
                                             : NULL;
}

static const char *s_tif_name (proto_tif_t tif)
{
    return tif == PROTO_TIF_GTC   ? "GTC"
           : tif == PROTO_TIF_IOC ? "IOC"
           : tif == PROTO_TIF_FOK ? "FOK"
                                  : NULL;
}

static json_t *s_order_json (readmodel_t *self, const s_order_t *o)
{
    json_t *row = json_object ();
    json_object_set_new (row, "order_id", apijson_id (o->id));
    json_object_set_new (row, "client_order_id", apijson_text_or_null (o->client_order_id));
    json_object_set_new (row, "market", json_string (self->markets[o->market].cfg->id));
    s_put_epoch (row, &self->markets[o->market], o->epoch);
    json_object_set_new (row, "side", s_side (o->side));
    json_object_set_new (row, "order_type", apijson_text_or_null (s_type_name (o->type)));
    json_object_set_new (row, "time_in_force", apijson_text_or_null (s_tif_name (o->tif)));
    json_object_set_new (row, "post_only", json_boolean (o->post_only));
    json_object_set_new (row, "energy_amount", apijson_kwh (o->qty));
    json_object_set_new (row, "price",
                         o->type == PROTO_ORDER_TYPE_MARKET ? json_null ()
                                                            : s_price_or_null (o->price));
    //  one meaning everywhere: remaining is what is still open (0 once the order ended, as the
    //  answer to a write says); what an ended order left untraded is unfilled_amount
    bool ended = s_finished (o);
    json_object_set_new (row, "filled_amount", apijson_kwh (o->filled));
    json_object_set_new (row, "remaining_amount", apijson_kwh (ended ? 0 : o->remaining));
    json_object_set_new (row, "unfilled_amount", apijson_kwh (ended ? o->remaining : 0));
    json_object_set_new (row, "average_price",
                         o->filled > 0
                             ? apijson_price (money_div_half_even (o->notional, o->filled))
                             : json_null ());
    json_object_set_new (row, "status", apijson_text_or_null (proto_order_status_name (o->status)));
    json_object_set_new (row, "end_reason", apijson_text_or_null (ended ? o->end_reason : NULL));
    json_object_set_new (row, "energy_source", apijson_text_or_null (o->source));
    json_object_set_new (row, "expires_at", apijson_time (o->expires_at));
    json_object_set_new (row, "created_at", apijson_time (o->created));
    json_object_set_new (row, "updated_at", apijson_time (o->updated));
    return row;
}

static bool s_order_matches (readmodel_t *self, const s_order_t *o,
                             const readmodel_order_filter_t *f, proto_order_status_t status)
{
    if (f->market && strcmp (self->markets[o->market].cfg->id, f->market) != 0)
        return false;
    if (f->epoch >= 0 && o->epoch != f->epoch)
        return false;
    if (!f->status)
        return true;
    if (strcmp (f->status, "open") == 0)
        return o->status == PROTO_ORDER_STATUS_OPEN ||
               o->status == PROTO_ORDER_STATUS_PARTIALLY_FILLED;
    return status != PROTO_ORDER_STATUS_NONE && o->status == status;
}

json_t *readmodel_user_orders (readmodel_t *self, const char *user,
                               const readmodel_order_filter_t *filter)
{
    assert (self);
    assert (filter);
    int limit = s_clamp (filter->limit, READMODEL_LIMIT_MAX);
    int offset = filter->offset < 0 ? 0 : filter->offset;
    //  An unknown status name matches nothing (NONE never equals an order's status).
    proto_order_status_t status =
        filter->status ? proto_order_status_from_name (filter->status) : PROTO_ORDER_STATUS_NONE;
    json_t *list = json_array ();
    int64_t total = 0;
    const s_user_t *u = s_user_find (self, user);
    for (const s_order_t *o = u ? u->orders : NULL; o; o = o->user_next) {
        if (!s_order_matches (self, o, filter, status))
            continue;
        if (total >= offset && total < (int64_t) offset + limit)
            json_array_append_new (list, s_order_json (self, o));
        total++;
    }
    json_t *root = json_object ();
    json_object_set_new (root, "seq", json_integer ((json_int_t) self->seq));
    json_object_set_new (root, "orders", list);
    json_object_set_new (root, "limit", json_integer (limit));
    json_object_set_new (root, "offset", json_integer (offset));
    json_object_set_new (root, "total", s_int (total));
    return root;
}

json_t *readmodel_order (readmodel_t *self, uint64_t order_id, const char **owner)
{
    assert (self);
    const s_order_t *o = s_order_find (self, order_id);
    if (owner)
        *owner = o ? o->user->name : NULL;
    if (!o)
        return NULL;
    json_t *row = s_order_json (self, o);
    json_object_set_new (row, "seq", json_integer ((json_int_t) self->seq));
    return row;
}

json_t *readmodel_order_fills (readmodel_t *self, uint64_t order_id, const char **owner)
{
    assert (self);
    const s_order_t *o = s_order_find (self, order_id);
    if (owner)
        *owner = o ? o->user->name : NULL;
    if (!o)
        return NULL;
    int side = o->side == PROTO_SIDE_BUY ? 0 : 1;
    json_t *list = json_array ();
    int64_t found = 0;
    //  the owner's trades, newest first: those of this order, oldest first in the answer
    for (const s_leg_t *leg = o->user->trades; leg; leg = leg->next) {
        const s_user_trade_t *t = leg->trade;
        if (leg->side != o->side || t->order_id[side] != order_id)
            continue;
        found += t->qty;
        json_array_insert_new (
            list, 0,
            json_pack ("{s:o,s:o,s:o,s:o,s:o}", "trade_id", apijson_id (t->trade_id), "price",
                       apijson_price (t->price), "energy_amount", apijson_kwh (t->qty), "value",
                       apijson_money (t->value), "time", apijson_time (t->ts)));
    }
    json_t *root = json_object ();
    json_object_set_new (root, "seq", json_integer ((json_int_t) self->seq));
    json_object_set_new (root, "order_id", apijson_id (order_id));
    json_object_set_new (root, "filled_amount", apijson_kwh (o->filled));
    json_object_set_new (root, "fills", list);
    //  the oldest trades leave the read model first: then the list is not the whole story
    json_object_set_new (root, "complete", json_boolean (found == o->filled));
    return root;
}

uint64_t readmodel_find_client_order (readmodel_t *self, const char *user,
                                      const char *client_order_id)
{
    assert (self);
    const s_user_t *u = s_user_find (self, user);
    if (!u || !u->coids || !client_order_id || !*client_order_id)
        return 0;
    const s_order_t *o = zhashx_lookup (u->coids, client_order_id);
    return o ? o->id : 0;
}

json_t *readmodel_user_trades (readmodel_t *self, const char *user, int limit, int offset)
{
    assert (self);
    limit = s_clamp (limit, READMODEL_LIMIT_MAX);
    offset = offset < 0 ? 0 : offset;
    const s_user_t *u = s_user_find (self, user);
    json_t *list = json_array ();
    int64_t i = 0;
    for (const s_leg_t *leg = u ? u->trades : NULL; leg && i < (int64_t) offset + limit;
         leg = leg->next, i++) {
        if (i < offset)
            continue;
        const s_user_trade_t *t = leg->trade;
        json_t *row = json_object ();
        json_object_set_new (row, "trade_id", apijson_id (t->trade_id));
        json_object_set_new (row, "order_id",
                             apijson_id (t->order_id[leg->side == PROTO_SIDE_BUY ? 0 : 1]));
        json_object_set_new (row, "market", json_string (self->markets[t->market].cfg->id));
        s_put_epoch (row, &self->markets[t->market], t->epoch);
        json_object_set_new (row, "side", s_side (leg->side));
        json_object_set_new (row, "price", apijson_price (t->price));
        json_object_set_new (row, "energy_amount", apijson_kwh (t->qty));
        json_object_set_new (row, "value", apijson_money (t->value));
        json_object_set_new (row, "time", apijson_time (t->ts));
        json_array_append_new (list, row);
    }
    json_t *root = json_object ();
    json_object_set_new (root, "seq", json_integer ((json_int_t) self->seq));
    json_object_set_new (root, "trades", list);
    json_object_set_new (root, "limit", json_integer (limit));
    json_object_set_new (root, "offset", json_integer (offset));
    json_object_set_new (root, "total", json_integer ((json_int_t) (u ? u->trade_count : 0)));
    return root;
}

json_t *readmodel_user_balances (readmodel_t *self, const char *user)
{
    assert (self);
    const s_user_t *u = s_user_find (self, user);
    json_t *balances = json_object ();
    for (int a = 0; a < 2; a++) {
        int64_t available = u ? u->available[a] : 0, reserved = u ? u->reserved[a] : 0;
        json_t *row = json_object ();
        json_object_set_new (row, "available",
                             a ? apijson_money (available) : apijson_kwh (available));
        json_object_set_new (row, "reserved",
                             a ? apijson_money (reserved) : apijson_kwh (reserved));
        json_object_set_new (row, "total",
                             a ? apijson_money (available + reserved)
                               : apijson_kwh (available + reserved));
        json_object_set_new (balances, a ? "payment" : "energy", row);
    }
    json_t *root = json_object ();
    json_object_set_new (root, "seq", json_integer ((json_int_t) self->seq));
    json_object_set_new (root, "balances", balances);
    return root;
}
