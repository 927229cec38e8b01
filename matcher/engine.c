/*  engine — see engine.h. The rules of docs/clearing.md, in the order a command meets them:

    new order   idempotency (client_order_id) → market paused → epoch window → quantity (limits,
                lot) → price (positive, tick, band) → post-only / FOK checks → accepted →
                matching (continuous mode) → rest, or cancel the remainder (IOC, market)
    matching    best opposite level first, FIFO within it; a resting order past its expires_at
                expires instead of trading; the same user's resting order is handled by the
                market's self-trade rule; after each level, one level event with its new total
    auction     orders rest without matching; at gate closure (or trigger_matching) the
                uniform price is found by auction.c and the fills applied here

    accounts    in markets with escrow, an order reserves what it may need (accounts.h) before
                it can trade: a buy the payment at its limit, a sell its energy; every fill,
                cancel, expiry, amend and auction clearing below the limit releases what is
                no longer needed, in the same step. A command ends with one balance change
                per (user, asset) it changed, after its other events. Those carry the end
                state and its change, so a new order's own balance, checked for its hold
                before it trades, moves once when its command is decided (s_settle_taker).

    Events are appended to one reused array, so a command costs no allocation once warm.
*/
#include "engine.h"
#include "accounts.h"
#include "auction.h"
#include "book.h"
#include "clock.h"
#include "money.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_EVENTS_START       64
#define S_USERS_START        64
#define S_BOOKS_MAX          4096 //  live (market, epoch) books at once
#define S_AUCTION_MARKET_BID INT64_MAX

typedef struct {
    config_market_t cfg;
    bool escrow; //  orders reserve balances (cfg.escrow)
    bool exact;  //  lot × tick is a multiple of 1000: values never round (accounts.h)
    engine_stp_t stp;
    bool pro_rata;
    bool grid; //  the grid stands at a tariff (cfg.grid_*): see s_grid_price
    bool paused;
    bool started;              //  epochs announced at least once
    int64_t current;           //  the active epoch (by the clock)
    int64_t closed_through;    //  every epoch <= this is closed
    int64_t announced_through; //  every epoch <= this was announced (pending or active)
    int64_t indicative_due;    //  the clock from which its next indicative clearing may go out
} s_market_t;

typedef struct {
    int64_t expires_at;
    uint64_t order_id;
} s_expiry_t;

//  A withdrawal debited and not yet closed: what a refund gives back.
typedef struct {
    uint64_t id;
    uint32_t user;
    uint8_t asset; //  accounts index
    int64_t amount;
} s_withdrawal_t;

//  The first answer to a client_order_id, for idempotent resubmission.
typedef struct {
    uint64_t content; //  hash of what was asked
    uint32_t market;
    int64_t epoch;
    bool rejected;
    proto_reject_reason_t reason;
    const char *message;
    uint64_t order_id;
    proto_order_status_t status;
    int64_t filled, remaining;
} s_coid_t;

struct _engine_t {
    s_market_t *markets;
    uint32_t market_count;
    book_pool_t pool;
    book_t *books;
    uint32_t book_count; //  high-water mark of books[]
    uint64_t next_order_id;
    uint64_t next_trade_id;
    //  users: names in one array, an open-addressing index by hash
    char (*user_names)[ENGINE_USER_MAX + 1];
    uint32_t user_count, user_cap;
    uint32_t *user_index;
    uint32_t user_mask;
    zhashx_t *coids;    //  "user/coid" → s_coid_t
    s_expiry_t *expiry; //  min-heap by expires_at
    size_t expiry_count, expiry_cap;
    //  balances, by user index
    accounts_t accounts;
    uint64_t next_withdrawal_id;
    zhashx_t *withdrawals;   //  open withdrawals: decimal id → s_withdrawal_t
    uint64_t deposits_floor; //  every deposit id <= this was credited
    zhashx_t *deposits;      //  ids above the floor credited out of order: decimal id → id
    //  the current call's result
    engine_event_t *events;
    uint32_t event_count, event_cap;
    engine_result_t result;
    //  auction scratch
    void *scratch;
    size_t scratch_size;
};

//  ---------------------------------------------------------------------------------------
//  Small pieces

static uint64_t s_mix (uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t s_hash_str (const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t) *s++) * 1099511628211ull;
    return h;
}

//  Grows the event array to hold `more` events after the current ones. The array is reused,
//  so this runs only while warming up: kept out of line (cold), so that s_event, which every
//  event goes through, stays small enough to inline.
static __attribute__ ((noinline, cold)) void s_events_grow (engine_t *self, size_t more)
{
    size_t cap = self->event_cap ? self->event_cap : S_EVENTS_START;
    while (cap < self->event_count + more)
        cap *= 2;
    assert (cap <= UINT32_MAX);
    engine_event_t *bigger = realloc (self->events, cap * sizeof *bigger);
    assert (bigger); //  a few KB: running out here leaves nothing sensible to do
    self->events = bigger;
    self->event_cap = (uint32_t) cap;
}

static inline engine_event_t *s_event (engine_t *self, engine_event_kind_t kind, uint32_t market)
{
    if (self->event_count == self->event_cap)
        s_events_grow (self, 1);
    engine_event_t *ev = &self->events[self->event_count++];
    memset (ev, 0, sizeof *ev);
    ev->kind = (uint8_t) kind;
    ev->market = market;
    return ev;
}

//  An event about one order: accepted, cancelled, expired or amended.
static engine_event_t *s_order_event (engine_t *self, engine_event_kind_t kind, uint32_t market,
                                      int64_t epoch, uint64_t order_id, uint32_t user, uint8_t side,
                                      int64_t qty, int64_t price)
{
    engine_event_t *ev = s_event (self, kind, market);
    ev->epoch = epoch;
    ev->order_id = order_id;
    ev->user = user;
    ev->side = side;
    ev->qty = qty;
    ev->price = price;
    return ev;
}

static engine_result_t *s_begin (engine_t *self)
{
    self->event_count = 0;
    memset (&self->result, 0, sizeof self->result);
    accounts_begin (&self->accounts);
    return &self->result;
}

static proto_asset_t s_asset (int index)
{
    return index == 0 ? PROTO_ASSET_ENERGY : PROTO_ASSET_PAYMENT;
}

bool engine_result_balance (const engine_t *self, uint32_t index, engine_balance_t *out)
{
    assert (index < self->result.balance_count);
    const accounts_touch_t *t = &self->accounts.touches[index];
    const accounts_balance_t *now = &self->accounts.entries[t->user].asset[t->asset];
    int64_t d_available = now->available - t->before.available;
    int64_t d_reserved = now->reserved - t->before.reserved;
    if ((d_available | d_reserved) == 0)
        return false;
    *out = (engine_balance_t){.user = t->user,
                              .market = t->market,
                              .asset = s_asset (t->asset),
                              .cause = (proto_balance_cause_t) t->cause,
                              .ref = t->ref,
                              .available = now->available,
                              .reserved = now->reserved,
                              .d_available = d_available,
                              .d_reserved = d_reserved};
    return true;
}

//  The touched balances stay in the accounts' list until the next command's s_begin.
static const engine_result_t *s_finish (engine_t *self)
{
    self->result.events = self->events;
    self->result.event_count = self->event_count;
    self->result.balance_count = (uint32_t) self->accounts.touch_count;
    return &self->result;
}

//  A refusal with no event: account commands, whose rejections name no market and need none
//  to answer a resubmission (the settler's ids make those idempotent).
static const engine_result_t *s_refuse (engine_t *self, proto_reject_reason_t reason,
                                        const char *message)
{
    engine_result_t *r = &self->result;
    r->rejected = true;
    r->reason = reason;
    r->message = message;
    r->status = PROTO_ORDER_STATUS_REJECTED;
    return s_finish (self);
}

static const engine_result_t *s_reject (engine_t *self, uint32_t market, uint32_t user,
                                        proto_reject_reason_t reason, const char *message)
{
    engine_event_t *ev = s_event (self, ENGINE_EV_REJECTED, market);
    ev->user = user;
    ev->reason = (uint8_t) reason;
    return s_refuse (self, reason, message);
}

static int s_side_of (proto_side_t side)
{
    return side == PROTO_SIDE_BUY ? BOOK_BID : BOOK_ASK;
}

static proto_side_t s_proto_side (int side)
{
    return side == BOOK_BID ? PROTO_SIDE_BUY : PROTO_SIDE_SELL;
}

static int64_t s_epoch_of (const s_market_t *m, int64_t now)
{
    return now / 1000000000LL / m->cfg.epoch_seconds;
}

//  ---------------------------------------------------------------------------------------
//  Reservations (accounts.h): what an order of `remaining` holds, and its moves

#define S_ENERGY  0 //  accounts asset index of what a sell holds
#define S_PAYMENT 1 //  ... of what a buy holds

//  What a book side holds: a buy payment, a sell energy.
static int s_held_asset (int side)
{
    return side == BOOK_BID ? S_PAYMENT : S_ENERGY;
}

//  The hold of an order: a market buy is bounded by the market's max_price (the price band's
//  top, which no ask exceeds), a limit buy by its limit, a sell by its energy.
static inline int64_t s_hold (const s_market_t *m, int side, int type, int64_t price,
                              int64_t remaining)
{
    if (side == BOOK_ASK)
        return remaining;
    int64_t limit = type == PROTO_ORDER_TYPE_MARKET ? m->cfg.max_price : price;
    return accounts_buy_hold (remaining, limit, m->cfg.lot, m->exact);
}

//  True when the user's available balance covers `amount` more of asset a.
static bool s_covers (const engine_t *self, uint32_t user, int a, int64_t amount)
{
    return amount <= self->accounts.entries[user].asset[a].available;
}

//  Moves amount from available to reserved (negative: back), for the order `ref`.
static inline void s_hold_move (engine_t *self, uint32_t market, uint32_t user, int a,
                                int64_t amount, proto_balance_cause_t cause, uint64_t ref)
{
    accounts_balance_t *b = accounts_touch (&self->accounts, user, a, cause, ref, market);
    b->available -= amount;
    b->reserved += amount;
    assert (b->available >= 0 && b->reserved >= 0); //  callers checked s_covers
}

//  An order leaves the book with `remaining` open: its hold is available again. Inline: every
//  cancel and expiry makes one, and as a call (nine arguments, six registers saved) it spent
//  about a third of its instructions getting in and out.
static inline void s_release (engine_t *self, uint32_t market, const s_market_t *m, uint32_t user,
                              int side, int type, int64_t price, int64_t remaining,
                              uint64_t order_id)
{
    if (!m->escrow || remaining <= 0)
        return;
    s_hold_move (self, market, user, s_held_asset (side), -s_hold (m, side, type, price, remaining),
                 PROTO_BALANCE_CAUSE_RELEASE, order_id);
}

//  What a fill of q frees of a buy's hold (accounts.h), the buy bounded as in s_hold.
static inline int64_t s_buy_freed (const s_market_t *m, int type, int64_t price, int64_t remaining,
                                   int64_t q)
{
    int64_t limit = type == PROTO_ORDER_TYPE_MARKET ? m->cfg.max_price : price;
    return accounts_buy_freed (remaining, q, limit, m->cfg.lot, m->exact);
}

//  The balance b of an order with `remaining` open that traded q for `value` (in one fill or
//  several, summed): the hold of q leaves reserved, the value (a buy) or the energy (a sell) to
//  pay the trade, and what a buy held beyond the value becomes available.
static inline void s_fill_balance (accounts_balance_t *b, const s_market_t *m, int side, int type,
                                   int64_t price, int64_t remaining, int64_t q, int64_t value)
{
    if (side == BOOK_ASK) {
        b->reserved -= q;
        assert (b->reserved >= 0);
        return;
    }
    int64_t freed = s_buy_freed (m, type, price, remaining, q);
    assert (freed >= value && b->reserved >= freed); //  accounts.h: the hold covers every fill
    b->reserved -= freed;
    b->available += freed - value;
}

//  A new order's whole effect on its balance b, in one step instead of a reservation of its hold,
//  a release of it fill by fill and of what is left when it does not rest: of the `hold` its
//  quantity needed, `spent` paid its fills (a buy's value, a sell's energy), `keep` stays
//  reserved while the rest rests, and the remainder was never taken from available. Only the
//  command's end state and its change are published (one balance event), so the steps between
//  need not be made; a taker on its own computes one hold, not two per fill and one to release.
static inline void s_settle_taker (accounts_balance_t *b, int64_t hold, int64_t spent, int64_t keep)
{
    assert (hold <= b->available && spent + keep <= hold); //  accounts.h: the hold covers it
    b->available -= spent + keep;
    b->reserved += keep;
}

//  One fill of an order (a maker, or either side in an auction), recorded under `cause`/`ref`.
static inline void s_fill (engine_t *self, uint32_t market, const s_market_t *m, uint32_t user,
                           int side, int type, int64_t price, int64_t remaining, int64_t q,
                           int64_t value, proto_balance_cause_t cause, uint64_t ref)
{
    if (!m->escrow)
        return;
    accounts_balance_t *b =
        accounts_touch (&self->accounts, user, s_held_asset (side), cause, ref, market);
    s_fill_balance (b, m, side, type, price, remaining, q, value);
}

//  ---------------------------------------------------------------------------------------
//  Books

static book_t *s_book_find (engine_t *self, uint32_t market, int64_t epoch)
{
    for (uint32_t i = 0; i < self->book_count; i++) {
        book_t *b = &self->books[i];
        if (b->in_use && b->market == market && b->epoch == epoch)
            return b;
    }
    return NULL;
}

static book_t *s_book_get (engine_t *self, uint32_t market, int64_t epoch)
{
    book_t *b = s_book_find (self, market, epoch);
    if (b)
        return b;
    for (uint32_t i = 0; i < self->book_count; i++)
        if (!self->books[i].in_use) {
            book_init (&self->books[i], market, epoch);
            return &self->books[i];
        }
    if (self->book_count == S_BOOKS_MAX)
        return NULL;
    b = &self->books[self->book_count++];
    book_init (b, market, epoch);
    return b;
}

static uint32_t s_book_index (engine_t *self, book_t *b)
{
    return (uint32_t) (b - self->books);
}

static void s_level_event (engine_t *self, book_t *book, int side, const book_level_t *level,
                           int64_t price)
{
    engine_event_t *ev = s_event (self, ENGINE_EV_LEVEL, book->market);
    book->changed = true;
    ev->epoch = book->epoch;
    ev->side = (uint8_t) s_proto_side (side);
    ev->price = price;
    ev->qty = level ? level->total : 0;
    ev->count = level ? level->count : 0;
}

//  Removes a resting order (cancel or expiry) and says so with one event of `kind` and a level
//  event. The level may vanish: callers must not hold level pointers across this.
static void s_remove_resting (engine_t *self, uint32_t slot, engine_event_kind_t kind,
                              uint8_t reason, bool level_event)
{
    book_order_t *o = &self->pool.orders[slot];
    book_t *book = &self->books[o->book];
    int side = o->side;
    int64_t price = o->price;
    book_level_t *level = book_level_find (book, side, price);
    assert (level);
    book_level_unlink (&self->pool, level, slot);
    engine_event_t *ev = s_event (self, kind, book->market);
    ev->epoch = book->epoch;
    ev->order_id = o->id;
    ev->user = o->user;
    ev->side = (uint8_t) s_proto_side (side);
    ev->qty = o->remaining;
    ev->price = price;
    ev->reason = reason;
    s_release (self, book->market, &self->markets[book->market], o->user, side, o->type, price,
               o->remaining, o->id);
    book->resting--;
    book_pool_release (&self->pool, slot);
    if (level->count == 0) {
        book_level_remove (book, side, level);
        level = NULL;
    }
    if (level_event)
        s_level_event (self, book, side, level, price);
}

//  ---------------------------------------------------------------------------------------
//  Users and client order ids

static int s_user_index_grow (engine_t *self)
{
    uint32_t cap = self->user_mask ? (self->user_mask + 1) * 2 : 2 * S_USERS_START;
    uint32_t *index = malloc (cap * sizeof *index);
    if (!index)
        return -1;
    memset (index, 0xff, cap * sizeof *index);
    for (uint32_t u = 0; u < self->user_count; u++) {
        uint32_t h = (uint32_t) s_hash_str (self->user_names[u]) & (cap - 1);
        while (index[h] != UINT32_MAX)
            h = (h + 1) & (cap - 1);
        index[h] = u;
    }
    free (self->user_index);
    self->user_index = index;
    self->user_mask = cap - 1;
    return 0;
}

uint32_t engine_user_intern (engine_t *self, const char *name)
{
    uint32_t h = (uint32_t) s_hash_str (name) & self->user_mask;
    for (;; h = (h + 1) & self->user_mask) {
        uint32_t u = self->user_index[h];
        if (u == UINT32_MAX)
            break;
        if (strcmp (self->user_names[u], name) == 0)
            return u;
    }
    if (strlen (name) > ENGINE_USER_MAX)
        return UINT32_MAX;
    if (self->user_count == self->user_cap) {
        uint32_t cap = 2 * self->user_cap;
        void *bigger = realloc (self->user_names, cap * sizeof *self->user_names);
        if (!bigger)
            return UINT32_MAX;
        self->user_names = bigger;
        self->user_cap = cap;
    }
    if (accounts_reserve_users (&self->accounts, self->user_count + 1))
        return UINT32_MAX;
    uint32_t u = self->user_count++;
    snprintf (self->user_names[u], sizeof self->user_names[u], "%s", name);
    if ((self->user_count * 2 > self->user_mask + 1) && s_user_index_grow (self))
        return UINT32_MAX;
    h = (uint32_t) s_hash_str (name) & self->user_mask;
    while (self->user_index[h] != UINT32_MAX && self->user_index[h] != u)
        h = (h + 1) & self->user_mask;
    self->user_index[h] = u;
    return u;
}

const char *engine_user_name (const engine_t *self, uint32_t user)
{
    return user < self->user_count ? self->user_names[user] : "?";
}

static void s_coid_key (const engine_t *self, uint32_t user, const char *coid, char *key,
                        size_t size)
{
    snprintf (key, size, "%s\x1f%s", self->user_names[user], coid);
}

static uint64_t s_order_content (const engine_order_t *o)
{
    uint64_t h = 0;
    h = s_mix (h, o->market);
    h = s_mix (h, (uint64_t) o->side << 16 | (uint64_t) o->type << 8 | (uint64_t) o->tif);
    h = s_mix (h, o->post_only);
    h = s_mix (h, (uint64_t) o->qty);
    h = s_mix (h, o->type == PROTO_ORDER_TYPE_LIMIT ? (uint64_t) o->price : 0);
    h = s_mix (h, (uint64_t) o->epoch);
    h = s_mix (h, (uint64_t) o->expires_at);
    return h;
}

static void s_coid_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void s_coid_remember (engine_t *self, const engine_order_t *o, const engine_result_t *r)
{
    if (!o->client_order_id || !o->client_order_id[0])
        return;
    char key[2 * ENGINE_USER_MAX + 4];
    s_coid_key (self, o->user, o->client_order_id, key, sizeof key);
    s_coid_t *c = calloc (1, sizeof *c);
    if (!c)
        return;
    *c = (s_coid_t){.content = s_order_content (o),
                    .market = o->market,
                    .epoch = r->epoch,
                    .rejected = r->rejected,
                    .reason = r->reason,
                    .message = r->message,
                    .order_id = r->order_id,
                    .status = r->status,
                    .filled = r->filled,
                    .remaining = r->remaining};
    zhashx_insert (self->coids, key, c);
}

//  ---------------------------------------------------------------------------------------
//  Expiry heap

static void s_expiry_push (engine_t *self, int64_t at, uint64_t id)
{
    if (self->expiry_count == self->expiry_cap) {
        size_t cap = self->expiry_cap ? 2 * self->expiry_cap : 64;
        s_expiry_t *bigger = realloc (self->expiry, cap * sizeof *bigger);
        if (!bigger)
            return; //  the order still expires lazily when matched or at epoch close
        self->expiry = bigger;
        self->expiry_cap = cap;
    }
    size_t i = self->expiry_count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->expiry[parent].expires_at <= at)
            break;
        self->expiry[i] = self->expiry[parent];
        i = parent;
    }
    self->expiry[i] = (s_expiry_t){at, id};
}

static s_expiry_t s_expiry_pop (engine_t *self)
{
    s_expiry_t top = self->expiry[0];
    s_expiry_t last = self->expiry[--self->expiry_count];
    size_t i = 0, n = self->expiry_count;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && self->expiry[c + 1].expires_at < self->expiry[c].expires_at)
            c++;
        if (last.expires_at <= self->expiry[c].expires_at)
            break;
        self->expiry[i] = self->expiry[c];
        i = c;
    }
    if (n)
        self->expiry[i] = last;
    return top;
}

//  ---------------------------------------------------------------------------------------
//  Construction

engine_t *engine_new (const mce_config_t *cfg)
{
    engine_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->market_count = (uint32_t) cfg->market_count;
    self->markets = calloc (self->market_count, sizeof *self->markets);
    self->books = calloc (S_BOOKS_MAX, sizeof *self->books);
    self->user_cap = S_USERS_START;
    self->user_names = malloc (self->user_cap * sizeof *self->user_names);
    self->coids = zhashx_new ();
    self->withdrawals = zhashx_new ();
    self->deposits = zhashx_new ();
    accounts_init (&self->accounts);
    if (!self->markets || !self->books || !self->user_names || !self->coids || !self->withdrawals ||
        !self->deposits || book_pool_init (&self->pool) || s_user_index_grow (self)) {
        engine_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->coids, s_coid_free);
    zhashx_set_destructor (self->withdrawals, s_coid_free);
    zhashx_set_destructor (self->deposits, s_coid_free);
    for (uint32_t i = 0; i < self->market_count; i++) {
        self->markets[i].cfg = cfg->markets[i];
        self->markets[i].escrow = cfg->markets[i].escrow;
        self->markets[i].exact = (cfg->markets[i].lot * cfg->markets[i].tick) % 1000 == 0 &&
                                 cfg->markets[i].max_price % cfg->markets[i].tick == 0;
        self->markets[i].stp = (engine_stp_t) cfg->markets[i].stp;
        self->markets[i].pro_rata = cfg->markets[i].marginal == CONFIG_MARGINAL_PRO_RATA;
        self->markets[i].grid =
            cfg->markets[i].grid_import_price > 0 || cfg->markets[i].grid_feed_in_price > 0;
        self->markets[i].current = -1;
        self->markets[i].closed_through = -1;
        self->markets[i].announced_through = -1;
    }
    self->next_order_id = 1;
    self->next_trade_id = 1;
    self->next_withdrawal_id = 1;
    return self;
}

void engine_destroy (engine_t **self_p)
{
    assert (self_p);
    engine_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; self->books && i < self->book_count; i++)
        book_free (&self->books[i]);
    book_pool_free (&self->pool);
    zhashx_destroy (&self->coids);
    zhashx_destroy (&self->withdrawals);
    zhashx_destroy (&self->deposits);
    accounts_free (&self->accounts);
    free (self->books);
    free (self->markets);
    free (self->user_names);
    free (self->user_index);
    free (self->expiry);
    free (self->events);
    free (self->scratch);
    free (self);
    *self_p = NULL;
}

int engine_market_find (const engine_t *self, const char *id)
{
    for (uint32_t i = 0; i < self->market_count; i++)
        if (strcmp (self->markets[i].cfg.id, id) == 0)
            return (int) i;
    return -1;
}

const char *engine_market_name (const engine_t *self, uint32_t market)
{
    return market < self->market_count ? self->markets[market].cfg.id : "?";
}

void engine_set_stp (engine_t *self, uint32_t market, engine_stp_t stp)
{
    if (market < self->market_count)
        self->markets[market].stp = stp;
}

//  ---------------------------------------------------------------------------------------
//  Continuous matching

static int64_t s_trade_price (const s_market_t *m, int taker_side, int64_t taker_price,
                              bool taker_is_market, int64_t maker_price)
{
    switch (m->cfg.price_rule) {
        case CONFIG_PRICE_ASK:
            //  the ask's price: the maker's when the taker buys, the taker's when it sells
            return taker_side == BOOK_ASK && !taker_is_market ? taker_price : maker_price;
        case CONFIG_PRICE_MID: {
            if (taker_is_market)
                return maker_price;
            int64_t mid =
                taker_price / 2 + maker_price / 2 + (taker_price % 2 + maker_price % 2) / 2;
            return mid - mid % m->cfg.tick; //  rounded down to the tick
        }
        default:
            return maker_price;
    }
}

//  The grid as backstop: the price it stands at against an order on `side` (it sells to a bid
//  at the import tariff, buys from an ask at the feed-in one), 0 when it does not.
static inline int64_t s_grid_price (const s_market_t *m, int side)
{
    return side == BOOK_BID ? m->cfg.grid_import_price : m->cfg.grid_feed_in_price;
}

//  True when the grid takes what an order on `side` at `price` leaves after the book.
static bool s_grid_reached (const s_market_t *m, int side, bool is_market, int64_t price)
{
    int64_t grid = s_grid_price (m, side);
    return grid > 0 && (is_market || (side == BOOK_BID ? grid <= price : grid >= price));
}

//  The grid's user (interned on first use; the name is the market's grid_user).
static uint32_t s_grid_user (engine_t *self, const s_market_t *m)
{
    return engine_user_intern (self, m->cfg.grid_user);
}

//  True when a resting order at `resting` crosses an incoming `price` on `side`.
static bool s_crosses (int side, bool is_market, int64_t price, int64_t resting)
{
    if (is_market)
        return true;
    return side == BOOK_BID ? resting <= price : resting >= price;
}

//  Fillable quantity against the opposite side for FOK: own orders do not count (self-trade
//  prevention would remove them) and neither do expired ones.
static int64_t s_fillable (engine_t *self, book_t *book, int side, bool is_market, int64_t price,
                           uint32_t user, int64_t want, int64_t now)
{
    if (s_grid_reached (&self->markets[book->market], side, is_market, price))
        return want; //  the grid takes any quantity
    book_levels_t *opp = &book->side[!side];
    int64_t sum = 0;
    for (uint32_t i = opp->count; i-- > 0 && sum < want;) {
        book_level_t *level = &opp->levels[i];
        if (!s_crosses (side, is_market, price, level->price))
            break;
        for (uint32_t s = level->head; s != BOOK_NIL && sum < want; s = self->pool.orders[s].next) {
            book_order_t *o = &self->pool.orders[s];
            if (o->user != user && !(o->expires_at && o->expires_at <= now))
                sum += o->remaining;
        }
    }
    return sum;
}

//  A trade of q at `price` between an order (side, id, user) and the grid (grid_user, no
//  order, no balance of its own: it is exempt from reservation); the order is the aggressor
//  when it arrived (continuous), none in an auction. Returns its value.
static int64_t s_grid_trade (engine_t *self, book_t *book, int side, uint64_t id, uint32_t user,
                             uint32_t grid_user, int64_t q, int64_t price, bool aggressor)
{
    int64_t value = 0;
    money_value (q, price, &value);
    engine_event_t *ev = s_event (self, ENGINE_EV_TRADE, book->market);
    ev->epoch = book->epoch;
    ev->trade_id = self->next_trade_id++;
    ev->order_id = side == BOOK_BID ? id : 0;
    ev->order_id2 = side == BOOK_BID ? 0 : id;
    ev->user = side == BOOK_BID ? user : grid_user;
    ev->user2 = side == BOOK_BID ? grid_user : user;
    ev->side = aggressor ? (uint8_t) s_proto_side (side) : 0;
    ev->flag = (uint8_t) s_proto_side (!side);
    ev->qty = q;
    ev->price = price;
    ev->value = value;
    book->volume += q;
    book->value += value;
    book->trades++;
    book->last_price = price;
    return value;
}

//  Matches the taker (not resting) against the opposite side. Returns the quantity filled;
//  *stopped is set when self-trade prevention ended the taker. With escrow the makers' balances
//  move fill by fill, and the taker's is left to the caller (s_settle_taker, s_fill_balance),
//  which moves it once for all its fills: *paid is their value. The taker's pair is touched at
//  its first fill all the same, so that the balance events keep their order.
static int64_t s_match (engine_t *self, book_t *book, s_market_t *m, book_order_t *taker,
                        int64_t now, bool *stopped, int64_t *paid)
{
    int side = taker->side;
    bool is_market = taker->type == PROTO_ORDER_TYPE_MARKET;
    int64_t filled = 0;
    *stopped = false;
    int64_t value_sum = 0;
    //  The levels it may take: up to its limit, and where the grid stands, no further than the
    //  grid's price (the book first at that price, then the grid: s_grid_trade below).
    int64_t grid = s_grid_price (m, side);
    bool bounded = !is_market || grid > 0;
    int64_t bound = is_market ? grid : taker->price;
    if (grid > 0 && !is_market)
        bound = side == BOOK_BID ? (grid < bound ? grid : bound) : (grid > bound ? grid : bound);
    while (taker->remaining > 0 && !*stopped) {
        book_level_t *level = book_best (book, !side);
        if (!level || (bounded && (side == BOOK_BID ? level->price > bound : level->price < bound)))
            break;
        int64_t level_price = level->price;
        uint32_t slot = level->head;
        while (slot != BOOK_NIL && taker->remaining > 0) {
            book_order_t *maker = &self->pool.orders[slot];
            uint32_t next = maker->next;
            //  The next maker is usually far from this one in the pool and cold: ask for it now,
            //  so its miss overlaps this fill's work (events, and with escrow two balances)
            //  instead of starting after it.
            if (next != BOOK_NIL)
                __builtin_prefetch (&self->pool.orders[next]);
            if (maker->expires_at && maker->expires_at <= now) {
                bool last = level->count == 1;
                s_remove_resting (self, slot, ENGINE_EV_EXPIRED, PROTO_EXPIRE_REASON_EXPIRES_AT,
                                  false);
                if (last) {
                    level = NULL;
                    break;
                }
                slot = next;
                continue;
            }
            if (maker->user == taker->user) {
                engine_stp_t stp = m->stp;
                if (stp == ENGINE_STP_CANCEL_RESTING || stp == ENGINE_STP_CANCEL_BOTH) {
                    bool last = level->count == 1;
                    s_remove_resting (self, slot, ENGINE_EV_CANCELLED,
                                      PROTO_CANCEL_REASON_SELF_TRADE, false);
                    if (last)
                        level = NULL;
                }
                if (stp != ENGINE_STP_CANCEL_RESTING) {
                    *stopped = true;
                    break;
                }
                if (!level)
                    break;
                slot = next;
                continue;
            }
            int64_t q = taker->remaining < maker->remaining ? taker->remaining : maker->remaining;
            int64_t price = s_trade_price (m, side, taker->price, is_market, maker->price);
            int64_t value = 0;
            money_value (q, price, &value);
            if (m->escrow) {
                if (filled == 0) //  the taker's first fill
                    accounts_touch (&self->accounts, taker->user, s_held_asset (side),
                                    PROTO_BALANCE_CAUSE_ORDER, taker->id, book->market);
                value_sum += value;
                s_fill (self, book->market, m, maker->user, !side, maker->type, maker->price,
                        maker->remaining, q, value, PROTO_BALANCE_CAUSE_TRADE, self->next_trade_id);
            }
            engine_event_t *ev = s_event (self, ENGINE_EV_TRADE, book->market);
            ev->epoch = book->epoch;
            ev->trade_id = self->next_trade_id++;
            ev->order_id = side == BOOK_BID ? taker->id : maker->id;
            ev->order_id2 = side == BOOK_BID ? maker->id : taker->id;
            ev->user = side == BOOK_BID ? taker->user : maker->user;
            ev->user2 = side == BOOK_BID ? maker->user : taker->user;
            ev->side = (uint8_t) s_proto_side (side);
            ev->qty = q;
            ev->price = price;
            ev->value = value;
            taker->remaining -= q;
            maker->remaining -= q;
            level->total -= q;
            filled += q;
            book->volume += q;
            book->value += value;
            book->trades++;
            book->last_price = price;
            if (maker->remaining == 0) {
                book_level_unlink (&self->pool, level, slot);
                book->resting--;
                book_pool_release (&self->pool, slot);
            }
            slot = next;
        }
        //  One level event per level the taker went through.
        level = book_level_find (book, !side, level_price);
        if (level && level->count == 0) {
            book_level_remove (book, !side, level);
            level = NULL;
        }
        s_level_event (self, book, !side, level, level_price);
    }
    if (taker->remaining > 0 && !*stopped && s_grid_reached (m, side, is_market, taker->price)) {
        uint32_t user = s_grid_user (self, m);
        if (user != UINT32_MAX) {
            if (m->escrow && filled == 0)
                accounts_touch (&self->accounts, taker->user, s_held_asset (side),
                                PROTO_BALANCE_CAUSE_ORDER, taker->id, book->market);
            int64_t q = taker->remaining;
            value_sum +=
                s_grid_trade (self, book, side, taker->id, taker->user, user, q, grid, true);
            taker->remaining = 0;
            filled += q;
        }
    }
    *paid = value_sum;
    return filled;
}

//  ---------------------------------------------------------------------------------------
//  Commands

//  Resolves the order's epoch; 0 and a reason when it is not open for orders.
static int s_check_epoch (const s_market_t *m, int64_t wanted, int64_t now, int64_t *epoch,
                          proto_reject_reason_t *reason, const char **message)
{
    int64_t current = s_epoch_of (m, now);
    int64_t e = wanted ? wanted : current;
    if (e < current || e <= m->closed_through) {
        *reason = PROTO_REJECT_REASON_EPOCH_CLOSED;
        *message = "the delivery epoch is closed";
        return -1;
    }
    if (e > current + m->cfg.future_epochs) {
        *reason = PROTO_REJECT_REASON_EPOCH_TOO_FAR;
        *message = "the delivery epoch is too far ahead";
        return -1;
    }
    *epoch = e;
    return 0;
}

const engine_result_t *engine_new_order (engine_t *self, const engine_order_t *o, int64_t now)
{
    engine_result_t *r = s_begin (self);
    if (o->market >= self->market_count)
        return s_reject (self, o->market, o->user, PROTO_REJECT_REASON_UNKNOWN_MARKET,
                         "unknown market");
    if (o->user >= self->user_count) //  the service could not intern the name (out of memory)
        return s_reject (self, o->market, o->user, PROTO_REJECT_REASON_OVERLOADED, "out of memory");
    s_market_t *m = &self->markets[o->market];
    //  A resubmitted client_order_id gets its first answer, whatever changed since.
    if (o->client_order_id && o->client_order_id[0]) {
        char key[2 * ENGINE_USER_MAX + 4];
        s_coid_key (self, o->user, o->client_order_id, key, sizeof key);
        s_coid_t *c = zhashx_lookup (self->coids, key);
        if (c) {
            if (c->content != s_order_content (o))
                return s_reject (self, o->market, o->user, PROTO_REJECT_REASON_DUPLICATE_CLIENT_ID,
                                 "client_order_id already used for a different order");
            r->duplicate = true;
            r->rejected = c->rejected;
            r->reason = c->reason;
            r->message = c->message;
            r->order_id = c->order_id;
            r->epoch = c->epoch;
            r->status = c->status;
            r->filled = c->filled;
            r->remaining = c->remaining;
            return s_finish (self);
        }
    }
    const engine_result_t *rej = NULL;
    proto_reject_reason_t reason = 0;
    const char *message = NULL;
    int64_t epoch = 0;
    bool is_market = o->type == PROTO_ORDER_TYPE_MARKET;
    bool auction = m->cfg.mode != CONFIG_MODE_CONTINUOUS;
    if (m->paused)
        reason = PROTO_REJECT_REASON_MARKET_PAUSED, message = "trading is paused in this market";
    else if (s_check_epoch (m, o->epoch, now, &epoch, &reason, &message))
        ;
    else if (o->qty <= 0 || o->qty < m->cfg.min_qty || o->qty > m->cfg.max_qty)
        reason = PROTO_REJECT_REASON_BAD_QUANTITY, message = "quantity outside the market's limits";
    else if (o->qty % m->cfg.lot)
        reason = PROTO_REJECT_REASON_OFF_LOT, message = "quantity is not a multiple of the lot";
    else if (!is_market && o->price <= 0)
        reason = PROTO_REJECT_REASON_BAD_PRICE, message = "price must be positive";
    else if (!is_market && o->price % m->cfg.tick)
        reason = PROTO_REJECT_REASON_OFF_TICK, message = "price is off the tick";
    else if (!is_market && (o->price < m->cfg.min_price || o->price > m->cfg.max_price))
        reason = PROTO_REJECT_REASON_OUTSIDE_BAND, message = "price outside the market's band";
    else if (m->grid && strcmp (self->user_names[o->user], m->cfg.grid_user) == 0)
        reason = PROTO_REJECT_REASON_GRID_USER,
        message = "the grid user trades only as the grid, with no orders of its own";
    else if (auction && o->tif == PROTO_TIF_FOK)
        reason = PROTO_REJECT_REASON_FOK_UNFILLABLE,
        message = "fill-or-kill is not available in auction mode";
    int side = s_side_of (o->side);
    int64_t hold = 0;
    if (!reason && m->escrow) {
        hold = s_hold (m, side, o->type, o->price, o->qty);
        if (!s_covers (self, o->user, s_held_asset (side), hold))
            reason = PROTO_REJECT_REASON_INSUFFICIENT_BALANCE,
            message = "the available balance does not cover the order";
    }
    if (reason) {
        r->epoch = epoch;
        rej = s_reject (self, o->market, o->user, reason, message);
        //  A refusal for want of balance is not the order's answer for good: resubmitted after
        //  a deposit, the same client_order_id is decided again.
        if (reason != PROTO_REJECT_REASON_INSUFFICIENT_BALANCE)
            s_coid_remember (self, o, rej);
        return rej;
    }
    book_t *book = s_book_get (self, o->market, epoch);
    if (!book)
        return s_reject (self, o->market, o->user, PROTO_REJECT_REASON_OVERLOADED,
                         "too many open books");
    int64_t price =
        is_market ? (auction ? (side == BOOK_BID ? S_AUCTION_MARKET_BID : 0) : 0) : o->price;
    if (!auction && !is_market) {
        book_level_t *best = book_best (book, !side);
        bool crosses = (best && s_crosses (side, false, price, best->price)) ||
                       s_grid_reached (m, side, false, price);
        if (o->post_only && crosses) {
            rej = s_reject (self, o->market, o->user, PROTO_REJECT_REASON_POST_ONLY_WOULD_CROSS,
                            "post-only order would trade");
            s_coid_remember (self, o, rej);
            return rej;
        }
    }
    if (!auction && o->tif == PROTO_TIF_FOK &&
        s_fillable (self, book, side, is_market, price, o->user, o->qty, now) < o->qty) {
        rej = s_reject (self, o->market, o->user, PROTO_REJECT_REASON_FOK_UNFILLABLE,
                        "fill-or-kill order cannot be filled entirely");
        s_coid_remember (self, o, rej);
        return rej;
    }
    uint64_t id = self->next_order_id;
    uint32_t slot = book_pool_alloc (&self->pool, id);
    if (slot == BOOK_NIL)
        return s_reject (self, o->market, o->user, PROTO_REJECT_REASON_OVERLOADED, "out of memory");
    self->next_order_id++;
    book_order_t *t = &self->pool.orders[slot];
    t->price = price;
    t->qty = t->remaining = o->qty;
    t->expires_at = o->expires_at;
    t->user = o->user;
    t->prev = t->next = BOOK_NIL;
    t->book = s_book_index (self, book);
    t->side = (uint8_t) side;
    t->tif = (uint8_t) o->tif;
    t->type = (uint8_t) o->type;
    t->flags = o->post_only ? BOOK_ORDER_POST_ONLY : 0;
    s_order_event (self, ENGINE_EV_ACCEPTED, o->market, epoch, id, o->user, (uint8_t) o->side,
                   o->qty, is_market ? 0 : price);
    //  The order's own balance is touched now, before any maker's, as reserving its hold here
    //  would; it then moves once, when the command is decided (s_settle_taker).
    accounts_balance_t *held = m->escrow
                                   ? accounts_touch (&self->accounts, o->user, s_held_asset (side),
                                                     PROTO_BALANCE_CAUSE_ORDER, id, o->market)
                                   : NULL;
    r->order_id = id;
    r->epoch = epoch;
    bool stopped = false;
    int64_t paid = 0;
    int64_t filled = auction ? 0 : s_match (self, book, m, t, now, &stopped, &paid);
    r->filled = filled;
    bool rests =
        t->remaining > 0 && !stopped && (auction || (!is_market && t->tif == PROTO_TIF_GTC));
    if (rests) {
        book_level_t *level = book_level_get (book, side, price);
        if (!level) {
            //  Out of memory for a new level: the order cannot rest.
            stopped = true;
            rests = false;
        }
        else {
            book_level_push (&self->pool, level, slot);
            book->resting++;
            if (t->expires_at)
                s_expiry_push (self, t->expires_at, id);
            s_level_event (self, book, side, level, price);
            r->remaining = t->remaining;
            r->status = filled ? PROTO_ORDER_STATUS_PARTIALLY_FILLED : PROTO_ORDER_STATUS_OPEN;
        }
    }
    if (!rests) {
        if (t->remaining > 0) {
            engine_event_t *c =
                s_order_event (self, ENGINE_EV_CANCELLED, o->market, epoch, id, o->user,
                               (uint8_t) o->side, t->remaining, is_market ? 0 : price);
            c->reason = stopped ? PROTO_CANCEL_REASON_SELF_TRADE : PROTO_CANCEL_REASON_UNFILLED;
            r->status = PROTO_ORDER_STATUS_CANCELLED;
        }
        else
            r->status = PROTO_ORDER_STATUS_FILLED;
        r->remaining = 0;
        book_pool_release (&self->pool, slot);
    }
    if (held) {
        int64_t keep = 0; //  what a resting remainder holds: the whole hold when nothing traded
        if (rests)
            keep = filled ? s_hold (m, side, t->type, t->price, t->remaining) : hold;
        s_settle_taker (held, hold, side == BOOK_BID ? paid : filled, keep);
    }
    s_coid_remember (self, o, r);
    return s_finish (self);
}

//  Finds an order the caller may act on. Rejects (and returns BOOK_NIL) otherwise.
static uint32_t s_owned (engine_t *self, uint32_t market, uint32_t user, bool admin, uint64_t id)
{
    uint32_t slot = book_pool_find (&self->pool, id);
    if (slot == BOOK_NIL || self->books[self->pool.orders[slot].book].market != market) {
        s_reject (self, market, user, PROTO_REJECT_REASON_UNKNOWN_ORDER, "no such open order");
        return BOOK_NIL;
    }
    if (!admin && self->pool.orders[slot].user != user) {
        s_reject (self, market, user, PROTO_REJECT_REASON_NOT_OWNER,
                  "the order belongs to another user");
        return BOOK_NIL;
    }
    return slot;
}

const engine_result_t *engine_cancel (engine_t *self, uint32_t market, uint32_t user, bool admin,
                                      uint64_t order_id, int64_t now)
{
    engine_result_t *r = s_begin (self);
    uint32_t slot = s_owned (self, market, user, admin, order_id);
    if (slot == BOOK_NIL)
        return s_finish (self);
    book_order_t *o = &self->pool.orders[slot];
    r->order_id = order_id;
    r->epoch = self->books[o->book].epoch;
    r->filled = o->qty - o->remaining;
    r->status = PROTO_ORDER_STATUS_CANCELLED;
    bool by_admin = admin && o->user != user;
    s_remove_resting (self, slot, ENGINE_EV_CANCELLED,
                      by_admin ? PROTO_CANCEL_REASON_ADMIN : PROTO_CANCEL_REASON_USER, true);
    if (by_admin)
        self->events[self->event_count - 2].user2 = user; //  who cancelled it
    return s_finish (self);
}

const engine_result_t *engine_amend (engine_t *self, uint32_t market, uint32_t user, bool admin,
                                     uint64_t order_id, int64_t qty, int64_t price, int64_t now)
{
    engine_result_t *r = s_begin (self);
    uint32_t slot = s_owned (self, market, user, admin, order_id);
    if (slot == BOOK_NIL)
        return s_finish (self);
    s_market_t *m = &self->markets[market];
    book_order_t *o = &self->pool.orders[slot];
    book_t *book = &self->books[o->book];
    if (m->paused)
        return s_reject (self, market, user, PROTO_REJECT_REASON_MARKET_PAUSED,
                         "trading is paused in this market");
    int64_t filled_before = o->qty - o->remaining;
    if (qty == 0)
        qty = o->remaining; //  unchanged
    if (qty < 0 || qty + filled_before > m->cfg.max_qty)
        return s_reject (self, market, user, PROTO_REJECT_REASON_BAD_QUANTITY,
                         "quantity outside the market's limits");
    if (qty % m->cfg.lot)
        return s_reject (self, market, user, PROTO_REJECT_REASON_OFF_LOT,
                         "quantity is not a multiple of the lot");
    bool is_market = o->type == PROTO_ORDER_TYPE_MARKET;
    bool new_price = price && price != o->price;
    if (new_price && (is_market || price % m->cfg.tick))
        return s_reject (self, market, user, PROTO_REJECT_REASON_OFF_TICK,
                         is_market ? "a market order has no price" : "price is off the tick");
    if (new_price && (price < m->cfg.min_price || price > m->cfg.max_price))
        return s_reject (self, market, user, PROTO_REJECT_REASON_OUTSIDE_BAND,
                         "price outside the market's band");
    bool auction = m->cfg.mode != CONFIG_MODE_CONTINUOUS;
    int side = o->side;
    if (new_price && !auction && (o->flags & BOOK_ORDER_POST_ONLY)) {
        book_level_t *best = book_best (book, !side);
        if (best && s_crosses (side, false, price, best->price))
            return s_reject (self, market, user, PROTO_REJECT_REASON_POST_ONLY_WOULD_CROSS,
                             "post-only order would trade");
    }
    if (m->escrow) {
        //  The owner's balance pays for an amend up (an admin's amend too) and gets back what
        //  an amend down frees.
        int64_t more = s_hold (m, side, o->type, new_price ? price : o->price, qty) -
                       s_hold (m, side, o->type, o->price, o->remaining);
        if (more > 0 && !s_covers (self, o->user, s_held_asset (side), more))
            return s_reject (self, market, user, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE,
                             "the available balance does not cover the order");
        if (more)
            s_hold_move (self, market, o->user, s_held_asset (side), more,
                         PROTO_BALANCE_CAUSE_ORDER, order_id);
    }
    r->order_id = order_id;
    r->epoch = book->epoch;
    bool keeps = !new_price && qty <= o->remaining;
    int64_t old_price = o->price;
    book_level_t *level = book_level_find (book, side, old_price);
    if (keeps) {
        //  Same place in the queue, less quantity.
        level->total -= o->remaining - qty;
        o->qty -= o->remaining - qty;
        o->remaining = qty;
        engine_event_t *ev = s_order_event (self, ENGINE_EV_AMENDED, market, book->epoch, order_id,
                                            o->user, (uint8_t) s_proto_side (side), qty, old_price);
        ev->flag = 1;
        s_level_event (self, book, side, level, old_price);
        r->remaining = qty;
        r->filled = filled_before;
        r->status = filled_before ? PROTO_ORDER_STATUS_PARTIALLY_FILLED : PROTO_ORDER_STATUS_OPEN;
        return s_finish (self);
    }
    //  Loses priority: out of its level, new quantity and price, in again as if new (it may
    //  trade at a new price), keeping its id.
    book_level_unlink (&self->pool, level, slot);
    book->resting--;
    if (level->count == 0) {
        book_level_remove (book, side, level);
        level = NULL;
    }
    o->qty = filled_before + qty;
    o->remaining = qty;
    if (new_price)
        o->price = price;
    engine_event_t *ev = s_order_event (self, ENGINE_EV_AMENDED, market, book->epoch, order_id,
                                        o->user, (uint8_t) s_proto_side (side), qty, o->price);
    ev->flag = 0;
    s_level_event (self, book, side, level, old_price);
    bool stopped = false;
    int64_t paid = 0;
    int64_t filled = auction ? 0 : s_match (self, book, m, o, now, &stopped, &paid);
    o = &self->pool.orders[slot];
    if (filled && m->escrow) //  its fills, from the hold of qty (s_match touched the pair)
        s_fill_balance (accounts_touch (&self->accounts, o->user, s_held_asset (side),
                                        PROTO_BALANCE_CAUSE_ORDER, order_id, market),
                        m, side, o->type, o->price, qty, filled, paid);
    r->filled = filled_before + filled;
    if (o->remaining > 0 && !stopped) {
        level = book_level_get (book, side, o->price);
        if (level) {
            book_level_push (&self->pool, level, slot);
            book->resting++;
            s_level_event (self, book, side, level, o->price);
            r->remaining = o->remaining;
            r->status = r->filled ? PROTO_ORDER_STATUS_PARTIALLY_FILLED : PROTO_ORDER_STATUS_OPEN;
            return s_finish (self);
        }
        stopped = true;
    }
    if (o->remaining > 0) {
        engine_event_t *c =
            s_order_event (self, ENGINE_EV_CANCELLED, market, book->epoch, order_id, o->user,
                           (uint8_t) s_proto_side (side), o->remaining, o->price);
        c->reason = PROTO_CANCEL_REASON_SELF_TRADE;
        r->status = PROTO_ORDER_STATUS_CANCELLED;
        s_release (self, market, m, o->user, side, o->type, o->price, o->remaining, order_id);
    }
    else
        r->status = PROTO_ORDER_STATUS_FILLED;
    book_pool_release (&self->pool, slot);
    return s_finish (self);
}

//  ---------------------------------------------------------------------------------------
//  Auctions, epochs, control

//  Runs the call auction of a book (auction.c finds the price and the fills).
static void s_auction (engine_t *self, book_t *book, s_market_t *m, bool closing);
static void s_indicatives (engine_t *self, int64_t now);

//  Expires every order of a book (gate closure). One walk of each FIFO: the whole book goes,
//  so nothing is unlinked, and each order is read once.
static void s_close_book (engine_t *self, book_t *book)
{
    const s_market_t *m = &self->markets[book->market];
    for (int side = 0; side < 2; side++) {
        book_levels_t *s = &book->side[side];
        for (uint32_t l = s->count; l-- > 0;) {
            for (uint32_t slot = s->levels[l].head; slot != BOOK_NIL;) {
                book_order_t *o = &self->pool.orders[slot];
                uint32_t next = o->next;
                engine_event_t *ev =
                    s_order_event (self, ENGINE_EV_EXPIRED, book->market, book->epoch, o->id,
                                   o->user, (uint8_t) s_proto_side (side), o->remaining, o->price);
                ev->reason = PROTO_EXPIRE_REASON_EPOCH_CLOSE;
                s_release (self, book->market, m, o->user, side, o->type, o->price, o->remaining,
                           o->id);
                book_pool_release (&self->pool, slot);
                slot = next;
            }
            if (s->levels[l].count)
                s_level_event (self, book, side, NULL, s->levels[l].price);
        }
        s->count = 0;
        s->empty = 0;
    }
    book->resting = 0;
}

static void s_epoch_event (engine_t *self, uint32_t market, int64_t epoch,
                           proto_epoch_phase_t phase, const book_t *book)
{
    engine_event_t *ev = s_event (self, ENGINE_EV_EPOCH, market);
    ev->epoch = epoch;
    ev->reason = (uint8_t) phase;
    if (!book)
        return;
    ev->qty = book->volume;
    ev->count = (uint32_t) book->trades;
    ev->value = book->value;
    if (phase == PROTO_EPOCH_PHASE_CLEARED) {
        ev->price = book->gate_price;
        ev->demand = book->gate_demand;
        ev->supply = book->gate_supply;
    }
}

//  Closes epoch e of market mi: auction (if any), expiry of leftovers, cleared.
static void s_close_epoch (engine_t *self, uint32_t mi, int64_t e)
{
    s_market_t *m = &self->markets[mi];
    book_t *book = s_book_find (self, mi, e);
    if (book && m->cfg.mode != CONFIG_MODE_CONTINUOUS)
        s_auction (self, book, m, true); //  clears and closes the book
    if (book)
        s_close_book (self, book); //  whatever is left (all of it in continuous mode)
    s_epoch_event (self, mi, e, PROTO_EPOCH_PHASE_CLEARED, book);
    if (book)
        book_free (book);
    if (e > m->closed_through)
        m->closed_through = e;
}

//  Client order ids of closed epochs can no longer be used (the epoch rejects them): forget.
static void s_forget_closed_coids (engine_t *self)
{
    zlistx_t *gone = zlistx_new ();
    for (s_coid_t *c = zhashx_first (self->coids); c; c = zhashx_next (self->coids))
        if (c->epoch <= self->markets[c->market].closed_through)
            zlistx_add_end (gone, (void *) zhashx_cursor (self->coids));
    for (const char *key = zlistx_first (gone); key; key = zlistx_next (gone))
        zhashx_delete (self->coids, key);
    zlistx_destroy (&gone);
}

const engine_result_t *engine_advance (engine_t *self, int64_t now)
{
    s_begin (self);
    //  Orders past their expires_at.
    while (self->expiry_count && self->expiry[0].expires_at <= now) {
        s_expiry_t x = s_expiry_pop (self);
        uint32_t slot = book_pool_find (&self->pool, x.order_id);
        if (slot != BOOK_NIL && self->pool.orders[slot].expires_at == x.expires_at &&
            self->pool.orders[slot].remaining > 0)
            s_remove_resting (self, slot, ENGINE_EV_EXPIRED, PROTO_EXPIRE_REASON_EXPIRES_AT, true);
    }
    bool closed = false;
    for (uint32_t mi = 0; mi < self->market_count; mi++) {
        s_market_t *m = &self->markets[mi];
        int64_t n = s_epoch_of (m, now);
        if (m->started && n <= m->current)
            continue;
        if (m->started) {
            //  Every epoch that ended, oldest first (only those announced or holding orders).
            for (int64_t e = m->closed_through + 1; e < n; e++) {
                if (e > m->announced_through && !s_book_find (self, mi, e))
                    continue;
                s_close_epoch (self, mi, e);
                closed = true;
            }
        }
        m->started = true;
        m->current = n;
        if (m->closed_through < n - 1)
            m->closed_through = n - 1;
        //  Newly open for orders: pending until their interval comes.
        int64_t from = m->announced_through + 1 > n + 1 ? m->announced_through + 1 : n + 1;
        for (int64_t e = from; e <= n + m->cfg.future_epochs; e++)
            s_epoch_event (self, mi, e, PROTO_EPOCH_PHASE_PENDING, NULL);
        if (n + m->cfg.future_epochs > m->announced_through)
            m->announced_through = n + m->cfg.future_epochs;
        s_epoch_event (self, mi, n, PROTO_EPOCH_PHASE_ACTIVE, s_book_find (self, mi, n));
    }
    if (closed)
        s_forget_closed_coids (self);
    s_indicatives (self, now);
    return s_finish (self);
}

const engine_result_t *engine_control (engine_t *self, uint32_t market, uint32_t user, bool admin,
                                       proto_control_action_t action, int64_t now)
{
    engine_result_t *r = s_begin (self);
    if (market >= self->market_count)
        return s_reject (self, market, user, PROTO_REJECT_REASON_UNKNOWN_MARKET, "unknown market");
    if (!admin)
        return s_reject (self, market, user, PROTO_REJECT_REASON_NOT_ADMIN,
                         "market controls are for administrators");
    s_market_t *m = &self->markets[market];
    int64_t n = s_epoch_of (m, now);
    switch (action) {
        case PROTO_CONTROL_ACTION_PAUSE_TRADING:
        case PROTO_CONTROL_ACTION_RESUME_TRADING: {
            m->paused = action == PROTO_CONTROL_ACTION_PAUSE_TRADING;
            engine_event_t *ev = s_event (self, ENGINE_EV_MARKET, market);
            ev->reason =
                (uint8_t) (m->paused ? PROTO_MARKET_STATUS_PAUSED : PROTO_MARKET_STATUS_OPEN);
            ev->flag = (uint8_t) action;
            ev->user = user;
            break;
        }
        case PROTO_CONTROL_ACTION_TRIGGER_MATCHING: {
            book_t *book = s_book_find (self, market, n);
            if (book && m->cfg.mode != CONFIG_MODE_CONTINUOUS)
                s_auction (self, book, m, false);
            break;
        }
        case PROTO_CONTROL_ACTION_CLEAR_EPOCH:
            if (n > m->closed_through) {
                s_close_epoch (self, market, n);
                s_forget_closed_coids (self);
            }
            break;
        case PROTO_CONTROL_ACTION_SNAPSHOT:
            break; //  the service's business; nothing changes in the books
        default:
            return s_reject (self, market, user, PROTO_REJECT_REASON_MALFORMED, "unknown action");
    }
    r->epoch = n;
    return s_finish (self);
}

//  ---------------------------------------------------------------------------------------
//  Deposits and withdrawals

static void s_id_key (uint64_t id, char *key, size_t size)
{
    snprintf (key, size, "%" PRIu64, id);
}

//  Remembers a credited deposit id. Ids come from the settler's counter and are credited
//  roughly in order, so the set holds only those above a floor of contiguous ones.
static void s_deposit_remember (engine_t *self, uint64_t id)
{
    char key[24];
    if (id == self->deposits_floor + 1) {
        self->deposits_floor = id;
        for (;;) {
            s_id_key (self->deposits_floor + 1, key, sizeof key);
            if (!zhashx_lookup (self->deposits, key))
                break;
            zhashx_delete (self->deposits, key);
            self->deposits_floor++;
        }
        return;
    }
    uint64_t *item = malloc (sizeof *item);
    assert (item); //  8 bytes: nothing sensible is left to do without them
    *item = id;
    s_id_key (id, key, sizeof key);
    zhashx_update (self->deposits, key, item);
}

static bool s_deposit_known (engine_t *self, uint64_t id)
{
    char key[24];
    s_id_key (id, key, sizeof key);
    return id <= self->deposits_floor || zhashx_lookup (self->deposits, key);
}

static bool s_amount_ok (proto_asset_t asset, int64_t amount)
{
    return (asset == PROTO_ASSET_ENERGY || asset == PROTO_ASSET_PAYMENT) && amount > 0 &&
           amount <= ACCOUNTS_BALANCE_MAX;
}

static void s_withdrawal_event (engine_t *self, const s_withdrawal_t *w,
                                proto_withdrawal_phase_t phase)
{
    engine_event_t *ev = s_event (self, ENGINE_EV_WITHDRAWAL, UINT32_MAX);
    ev->order_id = w->id;
    ev->user = w->user;
    ev->side = (uint8_t) s_asset (w->asset);
    ev->qty = w->amount;
    ev->reason = (uint8_t) phase;
}

const engine_result_t *engine_deposit (engine_t *self, uint32_t user, proto_asset_t asset,
                                       int64_t amount, uint64_t deposit_id, int64_t now)
{
    (void) now;
    engine_result_t *r = s_begin (self);
    r->ref = deposit_id;
    if (user >= self->user_count || deposit_id == 0 || !s_amount_ok (asset, amount))
        return s_refuse (self, PROTO_REJECT_REASON_BAD_AMOUNT,
                         "a deposit needs an id, an asset and a positive amount");
    if (s_deposit_known (self, deposit_id)) {
        r->duplicate = true; //  credited before: the same answer, nothing changes
        return s_finish (self);
    }
    int a = accounts_asset_index (asset);
    accounts_balance_t *b = &self->accounts.entries[user].asset[a];
    if (amount > ACCOUNTS_BALANCE_MAX - b->available - b->reserved)
        return s_refuse (self, PROTO_REJECT_REASON_BAD_AMOUNT,
                         "the balance would exceed the largest one an account may hold");
    b = accounts_touch (&self->accounts, user, a, PROTO_BALANCE_CAUSE_DEPOSIT, deposit_id,
                        UINT32_MAX);
    b->available += amount;
    s_deposit_remember (self, deposit_id);
    return s_finish (self);
}

const engine_result_t *engine_withdraw (engine_t *self, uint32_t user, proto_asset_t asset,
                                        int64_t amount, int64_t now)
{
    (void) now;
    engine_result_t *r = s_begin (self);
    if (user >= self->user_count || !s_amount_ok (asset, amount))
        return s_refuse (self, PROTO_REJECT_REASON_BAD_AMOUNT,
                         "a withdrawal needs an asset and a positive amount");
    int a = accounts_asset_index (asset);
    if (!s_covers (self, user, a, amount))
        return s_refuse (self, PROTO_REJECT_REASON_INSUFFICIENT_BALANCE,
                         "the available balance does not cover the withdrawal");
    s_withdrawal_t *w = malloc (sizeof *w);
    if (!w)
        return s_refuse (self, PROTO_REJECT_REASON_OVERLOADED, "out of memory");
    *w = (s_withdrawal_t){
        .id = self->next_withdrawal_id++, .user = user, .asset = (uint8_t) a, .amount = amount};
    char key[24];
    s_id_key (w->id, key, sizeof key);
    zhashx_insert (self->withdrawals, key, w);
    accounts_balance_t *b = accounts_touch (&self->accounts, user, a,
                                            PROTO_BALANCE_CAUSE_WITHDRAWAL, w->id, UINT32_MAX);
    b->available -= amount;
    s_withdrawal_event (self, w, PROTO_WITHDRAWAL_PHASE_REQUESTED);
    r->ref = w->id;
    return s_finish (self);
}

const engine_result_t *engine_withdrawal_close (engine_t *self, uint64_t withdrawal_id, bool refund,
                                                int64_t now)
{
    (void) now;
    engine_result_t *r = s_begin (self);
    r->ref = withdrawal_id;
    char key[24];
    s_id_key (withdrawal_id, key, sizeof key);
    s_withdrawal_t *w = zhashx_lookup (self->withdrawals, key);
    if (!w) {
        if (withdrawal_id == 0 || withdrawal_id >= self->next_withdrawal_id)
            return s_refuse (self, PROTO_REJECT_REASON_UNKNOWN_WITHDRAWAL, "no such withdrawal");
        r->duplicate = true; //  closed before: the same answer, nothing changes
        return s_finish (self);
    }
    if (refund) {
        //  never refused: deposits since may have filled the balance to ACCOUNTS_BALANCE_MAX,
        //  so it can end above it by at most the amount (itself at most that): twice the bound
        //  is still far inside int64
        accounts_balance_t *b = accounts_touch (&self->accounts, w->user, w->asset,
                                                PROTO_BALANCE_CAUSE_REFUND, w->id, UINT32_MAX);
        b->available += w->amount;
    }
    s_withdrawal_event (self, w,
                        refund ? PROTO_WITHDRAWAL_PHASE_REFUNDED : PROTO_WITHDRAWAL_PHASE_PAID);
    zhashx_delete (self->withdrawals, key);
    return s_finish (self);
}

void engine_balance (const engine_t *self, uint32_t user, proto_asset_t asset, int64_t *available,
                     int64_t *reserved)
{
    *available = *reserved = 0;
    if (user >= self->accounts.count)
        return;
    const accounts_balance_t *b = &self->accounts.entries[user].asset[accounts_asset_index (asset)];
    *available = b->available;
    *reserved = b->reserved;
}

void engine_asset_totals (const engine_t *self, proto_asset_t asset, int64_t *available,
                          int64_t *reserved, int64_t *withdrawing)
{
    int a = accounts_asset_index (asset);
    *available = *reserved = *withdrawing = 0;
    for (size_t u = 0; u < self->accounts.count; u++) {
        *available += self->accounts.entries[u].asset[a].available;
        *reserved += self->accounts.entries[u].asset[a].reserved;
    }
    for (const s_withdrawal_t *w = zhashx_first (self->withdrawals); w;
         w = zhashx_next (self->withdrawals))
        if (w->asset == a)
            *withdrawing += w->amount;
}

bool engine_market_escrow (const engine_t *self, uint32_t market)
{
    return market < self->market_count && self->markets[market].escrow;
}

//  ---------------------------------------------------------------------------------------
//  The auction

#define S_COLLECT_LANES 16

//  Appends a side's orders in priority order (best level first, FIFO within it); handles are
//  positions in the combined arrays, so the clearing's results index plain arrays.
//  Walking one FIFO is a chain of dependent cache misses (each order names the next), so up
//  to S_COLLECT_LANES levels are walked side by side, each into its own stretch of the output
//  (its offset is known from the level counts): their misses overlap instead of queueing.
static void s_collect (engine_t *self, book_t *book, int side, auction_order_t *out, uint32_t first,
                       uint64_t *ids, uint32_t *slots)
{
    book_levels_t *s = &book->side[side];
    uint32_t cursor[S_COLLECT_LANES], at[S_COLLECT_LANES];
    uint32_t base = 0;
    for (uint32_t l0 = s->count; l0 > 0;) {
        //  the next lanes: levels l0-1, l0-2, ... (best first)
        uint32_t lanes = l0 < S_COLLECT_LANES ? l0 : S_COLLECT_LANES;
        uint32_t pos = base;
        for (uint32_t k = 0; k < lanes; k++) {
            book_level_t *level = &s->levels[l0 - 1 - k];
            cursor[k] = level->head;
            at[k] = pos;
            pos += level->count;
            if (cursor[k] != BOOK_NIL)
                __builtin_prefetch (&self->pool.orders[cursor[k]]);
        }
        for (uint32_t active = lanes; active > 0;) {
            active = 0;
            for (uint32_t k = 0; k < lanes; k++) {
                uint32_t o = cursor[k];
                if (o == BOOK_NIL)
                    continue;
                const book_order_t *ord = &self->pool.orders[o];
                uint32_t n = at[k]++;
                out[n] = (auction_order_t){.handle = first + n,
                                           .user = ord->user,
                                           .price = ord->price,
                                           .qty = ord->remaining};
                ids[first + n] = ord->id;
                slots[first + n] = o;
                cursor[k] = ord->next;
                if (ord->next != BOOK_NIL) {
                    __builtin_prefetch (&self->pool.orders[ord->next]);
                    active++;
                }
            }
        }
        base = pos;
        l0 -= lanes;
    }
}

static int s_reserve (void **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    void *bigger = realloc (*buf, need);
    if (!bigger)
        return -1;
    *buf = bigger;
    *cap = need;
    return 0;
}

//  One level event for each level whose total changed since `before` (bid levels first, then
//  ask levels, each as stored: worst to best), best first on each side.
static void s_level_changes (engine_t *self, book_t *book, const book_level_t *before,
                             uint32_t nbid_levels, size_t nlevels)
{
    for (int side = 0; side < 2; side++) {
        size_t from = side == BOOK_BID ? 0 : nbid_levels;
        size_t to = side == BOOK_BID ? nbid_levels : nlevels;
        for (size_t i = to; i-- > from;) {
            book_level_t *now = book_level_find (book, side, before[i].price);
            if (!now || now->total != before[i].total || now->count != before[i].count)
                s_level_event (self, book, side, now, before[i].price);
        }
    }
}

//  At gate closure the whole book goes: leftovers expire straight from the collected arrays,
//  level by level, without touching an order again.
static void s_auction_close (engine_t *self, book_t *book, const auction_order_t *orders,
                             const uint64_t *ids, const uint32_t *slots, const int64_t *filled)
{
    const s_market_t *m = &self->markets[book->market];
    uint32_t pos = 0;
    for (int side = 0; side < 2; side++) {
        book_levels_t *s = &book->side[side];
        for (uint32_t l = s->count; l-- > 0;) {
            for (uint32_t k = 0; k < s->levels[l].count; k++, pos++) {
                int64_t left = orders[pos].qty - filled[pos];
                if (left > 0) {
                    engine_event_t *ev = s_order_event (
                        self, ENGINE_EV_EXPIRED, book->market, book->epoch, ids[pos],
                        orders[pos].user, (uint8_t) s_proto_side (side), left, orders[pos].price);
                    ev->reason = PROTO_EXPIRE_REASON_EPOCH_CLOSE;
                    s_release (self, book->market, m, orders[pos].user, side,
                               self->pool.orders[slots[pos]].type, orders[pos].price, left,
                               ids[pos]);
                }
                book_pool_release (&self->pool, slots[pos]);
            }
            if (s->levels[l].count)
                s_level_event (self, book, side, NULL, s->levels[l].price);
        }
        s->count = 0;
        s->empty = 0;
    }
    book->resting = 0;
}

//  Mid-epoch (trigger_matching): the fills go into the orders, the filled ones leave, the
//  rest stays, IOC orders go.
//  before has room for every level of the book: it comes with the auction's scratch, so that
//  nothing can fail once the trades are made.
static void s_auction_apply (engine_t *self, book_t *book, const uint32_t *slots,
                             const int64_t *filled, uint32_t n, book_level_t *before)
{
    size_t nlevels = book->side[0].count + book->side[1].count;
    uint32_t nbid_levels = book->side[0].count;
    memcpy (before, book->side[0].levels, nbid_levels * sizeof *before);
    memcpy (before + nbid_levels, book->side[1].levels, book->side[1].count * sizeof *before);
    for (uint32_t pos = 0; pos < n; pos++) {
        book_order_t *o = &self->pool.orders[slots[pos]];
        bool ioc = o->tif == PROTO_TIF_IOC;
        if (filled[pos] == 0 && !ioc)
            continue;
        book_level_t *level = book_level_find (book, o->side, o->price);
        o->remaining -= filled[pos];
        level->total -= filled[pos];
        if (o->remaining > 0 && !ioc)
            continue;
        if (o->remaining > 0) { //  IOC orders take part in one auction only
            engine_event_t *ev =
                s_order_event (self, ENGINE_EV_CANCELLED, book->market, book->epoch, o->id, o->user,
                               (uint8_t) s_proto_side (o->side), o->remaining, o->price);
            ev->reason = PROTO_CANCEL_REASON_UNFILLED;
            s_release (self, book->market, &self->markets[book->market], o->user, o->side, o->type,
                       o->price, o->remaining, o->id);
        }
        int side = o->side;
        book_level_unlink (&self->pool, level, slots[pos]);
        book->resting--;
        book_pool_release (&self->pool, slots[pos]);
        if (level->count == 0)
            book_level_remove (book, side, level);
    }
    s_level_changes (self, book, before, nbid_levels, nlevels);
}

//  Clears the book by auction (auction.c finds the price and the fills): its trades and their
//  balances, then what is left rests (mid-epoch) or expires (closing). *result: the clearing's.
static void s_auction_run (engine_t *self, book_t *book, s_market_t *m, bool closing,
                           auction_result_t *result)
{
    size_t nb = 0, na = 0;
    for (uint32_t l = 0; l < book->side[BOOK_BID].count; l++)
        nb += book->side[BOOK_BID].levels[l].count;
    for (uint32_t l = 0; l < book->side[BOOK_ASK].count; l++)
        na += book->side[BOOK_ASK].levels[l].count;
    //  without the grid, both sides are needed; with it, one is enough
    if (nb + na == 0 || (!m->grid && (nb == 0 || na == 0)))
        return;
    uint32_t grid_user = m->grid ? s_grid_user (self, m) : UINT32_MAX;
    if (m->grid && grid_user == UINT32_MAX)
        return; //  out of memory: nothing trades; the epoch still closes
    //  One buffer: orders, ids, slots, fills, trades, the clearing's scratch, and the levels as
    //  they were (for the level events of a mid-epoch clearing). The grid's handle is n.
    size_t n = nb + na;
    size_t nlevels = (size_t) book->side[0].count + book->side[1].count + 1;
    size_t sizes[] = {n * sizeof (auction_order_t),
                      n * sizeof (uint64_t),
                      n * sizeof (uint32_t),
                      n * sizeof (int64_t),
                      (n + 2) * sizeof (auction_trade_t),
                      auction_scratch_size (nb, na),
                      nlevels * sizeof (book_level_t)};
    size_t total = 0;
    for (size_t i = 0; i < 7; i++) {
        if (sizes[i] == SIZE_MAX)
            return;
        total += (sizes[i] + 15) & ~(size_t) 15;
    }
    if (s_reserve (&self->scratch, &self->scratch_size, total))
        return; //  out of memory: nothing trades; the epoch still closes
    uint8_t *p = self->scratch;
    void *parts[7];
    for (size_t i = 0; i < 7; i++) {
        parts[i] = p;
        p += (sizes[i] + 15) & ~(size_t) 15;
    }
    auction_order_t *orders = parts[0];
    uint64_t *ids = parts[1];
    uint32_t *slots = parts[2];
    int64_t *filled = parts[3];
    auction_trade_t *trades = parts[4];
    s_collect (self, book, BOOK_BID, orders, 0, ids, slots);
    s_collect (self, book, BOOK_ASK, orders + nb, (uint32_t) nb, ids, slots);
    memset (filled, 0, n * sizeof *filled);
    auction_grid_t grid = {m->cfg.grid_import_price, m->cfg.grid_feed_in_price, (uint32_t) n,
                           grid_user};
    int rc = auction_clear (orders, nb, orders + nb, na, m->cfg.tick, m->cfg.lot,
                            m->pro_rata ? AUCTION_MARGINAL_PRO_RATA : AUCTION_MARGINAL_TIME,
                            m->cfg.mode == CONFIG_MODE_PAY_AS_BID ? AUCTION_PRICE_PAY_AS_BID
                                                                  : AUCTION_PRICE_UNIFORM,
                            m->grid ? &grid : NULL, parts[5], trades, result);
    assert (rc == 0); //  the book hands it valid, ordered input
    for (size_t i = 0; result->crossed && i < result->trade_count; i++) {
        const auction_trade_t *t = &trades[i];
        if (t->bid == n || t->ask == n) {
            bool grid_sells = t->ask == n;
            uint32_t h = grid_sells ? t->bid : t->ask;
            const book_order_t *o = &self->pool.orders[slots[h]];
            int side = grid_sells ? BOOK_BID : BOOK_ASK;
            int64_t value = 0;
            money_value (t->qty, t->price, &value);
            s_fill (self, book->market, m, o->user, side, o->type, o->price,
                    orders[h].qty - filled[h], t->qty, value, PROTO_BALANCE_CAUSE_TRADE,
                    self->next_trade_id);
            s_grid_trade (self, book, side, ids[h], o->user, grid_user, t->qty, t->price, false);
            filled[h] += t->qty;
            continue;
        }
        int64_t value = 0;
        money_value (t->qty, t->price, &value);
        if (m->escrow) {
            const book_order_t *bid = &self->pool.orders[slots[t->bid]];
            const book_order_t *ask = &self->pool.orders[slots[t->ask]];
            s_fill (self, book->market, m, bid->user, BOOK_BID, bid->type, bid->price,
                    orders[t->bid].qty - filled[t->bid], t->qty, value, PROTO_BALANCE_CAUSE_TRADE,
                    self->next_trade_id);
            s_fill (self, book->market, m, ask->user, BOOK_ASK, ask->type, ask->price,
                    orders[t->ask].qty - filled[t->ask], t->qty, value, PROTO_BALANCE_CAUSE_TRADE,
                    self->next_trade_id);
        }
        engine_event_t *ev = s_event (self, ENGINE_EV_TRADE, book->market);
        ev->epoch = book->epoch;
        ev->trade_id = self->next_trade_id++;
        ev->order_id = ids[t->bid];
        ev->order_id2 = ids[t->ask];
        ev->user = orders[t->bid].user;
        ev->user2 = orders[t->ask].user;
        ev->qty = t->qty;
        ev->price = t->price;
        ev->value = value;
        filled[t->bid] += t->qty;
        filled[t->ask] += t->qty;
        book->volume += t->qty;
        book->value += value;
        book->trades++;
    }
    if (result->crossed)
        book->last_price = result->price;
    if (closing)
        s_auction_close (self, book, orders, ids, slots, filled);
    else
        s_auction_apply (self, book, slots, filled, (uint32_t) n, parts[6]);
}

//  Runs the call auction of a book and publishes its result: every auction has its own, at
//  gate closure (and then the cleared epoch repeats its price, D and S) or triggered mid-epoch.
static void s_auction (engine_t *self, book_t *book, s_market_t *m, bool closing)
{
    auction_result_t result = {.crossed = false};
    s_auction_run (self, book, m, closing, &result);
    engine_event_t *ev = s_event (self, ENGINE_EV_AUCTION, book->market);
    ev->epoch = book->epoch;
    ev->flag = !closing;
    if (result.crossed) {
        ev->price = result.price;
        ev->qty = result.volume;
        ev->count = (uint32_t) result.trade_count;
        ev->demand = result.demand;
        ev->supply = result.supply;
        ev->grid = result.grid_sold - result.grid_bought;
    }
    if (closing) {
        book->gate_price = ev->price;
        book->gate_demand = ev->demand;
        book->gate_supply = ev->supply;
    }
}

//  The indicative clearing of a book as it stands, from its depth: one entry per price level
//  (auction_indicate gives the same figures as from the orders, and a book has far fewer
//  levels than orders, so this stays cheap on a deep book).
static void s_indicative (engine_t *self, book_t *book, const s_market_t *m)
{
    size_t counts[2] = {book->side[BOOK_BID].count, book->side[BOOK_ASK].count};
    if (s_reserve (&self->scratch, &self->scratch_size,
                   (counts[0] + counts[1]) * sizeof (auction_order_t)))
        return; //  out of memory: no indicative this time; the book stays changed
    auction_order_t *levels[2] = {self->scratch, (auction_order_t *) self->scratch + counts[0]};
    size_t n[2] = {0, 0};
    for (int side = 0; side < 2; side++)
        for (uint32_t l = book->side[side].count; l-- > 0;) { //  best first
            const book_level_t *level = &book->side[side].levels[l];
            if (level->count)
                levels[side][n[side]++] =
                    (auction_order_t){.price = level->price, .qty = level->total};
        }
    auction_grid_t grid = {m->cfg.grid_import_price, m->cfg.grid_feed_in_price, 0, UINT32_MAX};
    auction_result_t result;
    int rc = auction_indicate (levels[BOOK_BID], n[BOOK_BID], levels[BOOK_ASK], n[BOOK_ASK],
                               m->cfg.tick, m->cfg.lot, m->grid ? &grid : NULL, &result);
    assert (rc == 0); //  the book's levels are on tick, in lots and in priority order
    (void) rc;
    engine_event_t *ev = s_event (self, ENGINE_EV_INDICATIVE, book->market);
    ev->epoch = book->epoch;
    book->changed = false;
    if (!result.crossed)
        return;
    ev->price = result.price;
    ev->qty = result.volume;
    ev->demand = result.demand;
    ev->supply = result.supply;
    ev->grid = result.grid_sold - result.grid_bought;
    //  V >= min (D, S), so at most one side is left with quantity unmatched
    int64_t bids_left = result.demand - (result.volume - result.grid_bought);
    int64_t asks_left = result.supply - (result.volume - result.grid_sold);
    if (bids_left > 0 || asks_left > 0) {
        ev->side = (uint8_t) (bids_left > 0 ? PROTO_SIDE_BUY : PROTO_SIDE_SELL);
        ev->value = bids_left > 0 ? bids_left : asks_left;
    }
}

//  Every open book of an auction market whose depth changed gets its indicative clearing, at
//  most once per indicative_ms of the clock. This runs from engine_advance, on the clock the
//  matcher journals, and its state (changed, indicative_due) is in snapshots, so replay makes
//  the same events; commands only set a flag.
static void s_indicatives (engine_t *self, int64_t now)
{
    for (uint32_t mi = 0; mi < self->market_count; mi++) {
        s_market_t *m = &self->markets[mi];
        if (m->cfg.mode == CONFIG_MODE_CONTINUOUS || m->cfg.indicative_ms == 0 ||
            now < m->indicative_due)
            continue;
        bool any = false;
        for (uint32_t i = 0; i < self->book_count; i++) {
            book_t *b = &self->books[i];
            if (b->in_use && b->market == mi && b->changed && b->epoch > m->closed_through) {
                s_indicative (self, b, m);
                any = true;
            }
        }
        if (any)
            m->indicative_due = now + m->cfg.indicative_ms * MCE_NS_PER_MSEC;
    }
}

//  ---------------------------------------------------------------------------------------
//  State

//  Balances by user index; the open withdrawals and the deposit ids above the floor are sets
//  (a map's iteration order is not part of the state), so they are summed, not chained.
static uint64_t s_accounts_hash (const engine_t *self, uint64_t h)
{
    for (uint32_t u = 0; u < self->user_count; u++)
        for (int a = 0; a < ACCOUNTS_ASSETS; a++) {
            h = s_mix (h, (uint64_t) self->accounts.entries[u].asset[a].available);
            h = s_mix (h, (uint64_t) self->accounts.entries[u].asset[a].reserved);
        }
    h = s_mix (h, self->next_withdrawal_id);
    h = s_mix (h, self->deposits_floor);
    uint64_t set = 0;
    for (const s_withdrawal_t *w = zhashx_first (self->withdrawals); w;
         w = zhashx_next (self->withdrawals))
        set += s_mix (s_mix (w->id, (uint64_t) w->user << 8 | w->asset), (uint64_t) w->amount);
    for (const uint64_t *id = zhashx_first (self->deposits); id; id = zhashx_next (self->deposits))
        set += s_mix (*id, 0xde9051);
    return s_mix (h, set);
}

uint64_t engine_state_hash (const engine_t *self)
{
    uint64_t h = s_mix (self->next_order_id, self->next_trade_id);
    for (uint32_t mi = 0; mi < self->market_count; mi++) {
        const s_market_t *m = &self->markets[mi];
        h = s_mix (h, (uint64_t) m->paused << 1 | m->started);
        h = s_mix (h, (uint64_t) m->current);
        h = s_mix (h, (uint64_t) m->closed_through);
        h = s_mix (h, (uint64_t) m->announced_through);
        //  books in epoch order, whatever their place in the array
        int64_t last = INT64_MIN;
        for (;;) {
            const book_t *next = NULL;
            for (uint32_t i = 0; i < self->book_count; i++) {
                const book_t *b = &self->books[i];
                if (b->in_use && b->market == mi && b->epoch > last &&
                    (!next || b->epoch < next->epoch))
                    next = b;
            }
            if (!next)
                break;
            last = next->epoch;
            h = s_mix (h, (uint64_t) next->epoch);
            h = s_mix (h, (uint64_t) next->volume);
            h = s_mix (h, next->trades);
            h = s_mix (h, (uint64_t) next->value);
            for (int side = 0; side < 2; side++) {
                const book_levels_t *s = &next->side[side];
                for (uint32_t l = s->count; l-- > 0;) {
                    const book_level_t *level = &s->levels[l];
                    if (level->count == 0)
                        continue; //  kept for reuse, not part of the state
                    h = s_mix (h, (uint64_t) level->price);
                    h = s_mix (h, (uint64_t) level->total);
                    for (uint32_t o = level->head; o != BOOK_NIL; o = self->pool.orders[o].next) {
                        const book_order_t *ord = &self->pool.orders[o];
                        h = s_mix (h, ord->id);
                        h = s_mix (h, ord->user);
                        h = s_mix (h, (uint64_t) ord->remaining);
                        h = s_mix (h, (uint64_t) ord->qty);
                        h = s_mix (h, (uint64_t) ord->expires_at);
                        h = s_mix (h, (uint64_t) ord->tif << 16 | (uint64_t) ord->type << 8 |
                                          ord->flags);
                    }
                }
            }
        }
    }
    return s_accounts_hash (self, h);
}

uint64_t engine_resting (const engine_t *self)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < self->book_count; i++)
        if (self->books[i].in_use)
            n += self->books[i].resting;
    return n;
}

uint64_t engine_market_resting (const engine_t *self, uint32_t market)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < self->book_count; i++)
        if (self->books[i].in_use && self->books[i].market == market)
            n += self->books[i].resting;
    return n;
}

size_t engine_memory (const engine_t *self)
{
    size_t bytes = (size_t) self->pool.cap * sizeof (book_order_t) +
                   (self->pool.index_mask + 1) * sizeof (uint32_t) +
                   self->expiry_cap * sizeof (s_expiry_t);
    for (uint32_t i = 0; i < self->book_count; i++)
        for (int side = 0; side < 2; side++)
            bytes += self->books[i].side[side].cap * sizeof (book_level_t);
    return bytes;
}

//  ---------------------------------------------------------------------------------------
//  Snapshots: a plain little-endian dump, versioned. Writing and reading go through one
//  cursor type each, so a field added to one side is added to the other next to it.

//  2 added the accounts (a version 1 snapshot restores with none); 3 each book's value (a
//  version 2 snapshot restores its books with none: only their epoch's average price is off);
//  4 when each market's next indicative clearing is due and which books changed since theirs
//  (a version 3 snapshot restores with none due and none changed)
#define S_SNAP_VERSION 4

typedef struct {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} s_out_t;

static void s_put (s_out_t *o, const void *p, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        uint8_t *bigger = realloc (o->data, cap);
        if (!bigger) {
            o->failed = true;
            return;
        }
        o->data = bigger;
        o->cap = cap;
    }
    memcpy (o->data + o->len, p, n);
    o->len += n;
}

static void s_put64 (s_out_t *o, uint64_t v)
{
    s_put (o, &v, sizeof v); //  x86-64 and aarch64 Linux are little-endian, as the file is
}

static void s_put_str (s_out_t *o, const char *s)
{
    uint64_t n = strlen (s);
    s_put64 (o, n);
    s_put (o, s, n);
}

typedef struct {
    const uint8_t *p, *end;
    bool failed;
} s_in_t;

static uint64_t s_get64 (s_in_t *in)
{
    uint64_t v = 0;
    if (in->failed || (size_t) (in->end - in->p) < sizeof v) {
        in->failed = true;
        return 0;
    }
    memcpy (&v, in->p, sizeof v);
    in->p += sizeof v;
    return v;
}

//  Reads a string of at most max bytes into buf (size max + 1).
static void s_get_str (s_in_t *in, char *buf, size_t max)
{
    uint64_t n = s_get64 (in);
    if (in->failed || n > max || (size_t) (in->end - in->p) < n) {
        in->failed = true;
        buf[0] = '\0';
        return;
    }
    memcpy (buf, in->p, n);
    buf[n] = '\0';
    in->p += n;
}

uint8_t *engine_snapshot (const engine_t *self, size_t *size)
{
    s_out_t o = {0};
    s_put64 (&o, S_SNAP_VERSION);
    s_put64 (&o, self->next_order_id);
    s_put64 (&o, self->next_trade_id);
    s_put64 (&o, self->user_count);
    for (uint32_t u = 0; u < self->user_count; u++)
        s_put_str (&o, self->user_names[u]);
    s_put64 (&o, self->market_count);
    for (uint32_t mi = 0; mi < self->market_count; mi++) {
        const s_market_t *m = &self->markets[mi];
        s_put_str (&o, m->cfg.id);
        s_put64 (&o, (uint64_t) m->paused | (uint64_t) m->started << 1);
        s_put64 (&o, (uint64_t) m->current);
        s_put64 (&o, (uint64_t) m->closed_through);
        s_put64 (&o, (uint64_t) m->announced_through);
        s_put64 (&o, (uint64_t) m->indicative_due);
    }
    uint64_t books = 0;
    for (uint32_t i = 0; i < self->book_count; i++)
        books += self->books[i].in_use;
    s_put64 (&o, books);
    for (uint32_t i = 0; i < self->book_count; i++) {
        const book_t *b = &self->books[i];
        if (!b->in_use)
            continue;
        s_put64 (&o, b->market);
        s_put64 (&o, (uint64_t) b->epoch);
        s_put64 (&o, (uint64_t) b->volume);
        s_put64 (&o, b->trades);
        s_put64 (&o, (uint64_t) b->last_price);
        s_put64 (&o, (uint64_t) b->value);
        s_put64 (&o, b->changed);
        for (int side = 0; side < 2; side++) {
            //  orders of a side, best level first, queue order within it
            uint64_t n = 0;
            for (uint32_t l = 0; l < b->side[side].count; l++)
                n += b->side[side].levels[l].count;
            s_put64 (&o, n);
            for (uint32_t l = b->side[side].count; l-- > 0;)
                for (uint32_t s = b->side[side].levels[l].head; s != BOOK_NIL;
                     s = self->pool.orders[s].next) {
                    const book_order_t *ord = &self->pool.orders[s];
                    s_put64 (&o, ord->id);
                    s_put64 (&o, (uint64_t) ord->price);
                    s_put64 (&o, (uint64_t) ord->qty);
                    s_put64 (&o, (uint64_t) ord->remaining);
                    s_put64 (&o, (uint64_t) ord->expires_at);
                    s_put64 (&o, (uint64_t) ord->user | (uint64_t) ord->tif << 32 |
                                     (uint64_t) ord->type << 40 | (uint64_t) ord->flags << 48);
                }
        }
    }
    s_put64 (&o, zhashx_size (self->coids));
    for (const s_coid_t *c = zhashx_first (self->coids); c; c = zhashx_next (self->coids)) {
        s_put_str (&o, (const char *) zhashx_cursor (self->coids));
        s_put64 (&o, c->content);
        s_put64 (&o, c->market);
        s_put64 (&o, (uint64_t) c->epoch);
        s_put64 (&o,
                 (uint64_t) c->rejected | (uint64_t) c->reason << 8 | (uint64_t) c->status << 16);
        s_put_str (&o, c->message ? c->message : "");
        s_put64 (&o, c->order_id);
        s_put64 (&o, (uint64_t) c->filled);
        s_put64 (&o, (uint64_t) c->remaining);
    }
    //  accounts: one entry per user, then the open withdrawals and the credited deposits
    for (uint32_t u = 0; u < self->user_count; u++)
        for (int a = 0; a < ACCOUNTS_ASSETS; a++) {
            s_put64 (&o, (uint64_t) self->accounts.entries[u].asset[a].available);
            s_put64 (&o, (uint64_t) self->accounts.entries[u].asset[a].reserved);
        }
    s_put64 (&o, self->next_withdrawal_id);
    s_put64 (&o, zhashx_size (self->withdrawals));
    for (const s_withdrawal_t *w = zhashx_first (self->withdrawals); w;
         w = zhashx_next (self->withdrawals)) {
        s_put64 (&o, w->id);
        s_put64 (&o, (uint64_t) w->user | (uint64_t) w->asset << 32);
        s_put64 (&o, (uint64_t) w->amount);
    }
    s_put64 (&o, self->deposits_floor);
    s_put64 (&o, zhashx_size (self->deposits));
    for (const uint64_t *id = zhashx_first (self->deposits); id; id = zhashx_next (self->deposits))
        s_put64 (&o, *id);
    //  what each market's holds were computed with (see s_settings_changed)
    for (uint32_t mi = 0; mi < self->market_count; mi++) {
        const s_market_t *m = &self->markets[mi];
        s_put64 (&o, m->escrow);
        s_put64 (&o, (uint64_t) m->cfg.lot);
        s_put64 (&o, (uint64_t) m->cfg.tick);
        s_put64 (&o, (uint64_t) m->cfg.max_price);
    }
    if (o.failed) {
        free (o.data);
        return NULL;
    }
    *size = o.len;
    return o.data;
}

//  Reject messages come from literals in this file; a restored answer points at one with the
//  same text, so the bytes of the reply after a restart are those of the first answer.
static const char *s_message_literal (const char *text)
{
    static const char *const known[] = {
        "unknown market",
        "the delivery epoch is closed",
        "the delivery epoch is too far ahead",
        "quantity outside the market's limits",
        "quantity is not a multiple of the lot",
        "price must be positive",
        "price is off the tick",
        "price outside the market's band",
        "fill-or-kill is not available in auction mode",
        "too many open books",
        "out of memory",
        "post-only order would trade",
        "fill-or-kill order cannot be filled entirely",
        "trading is paused in this market",
        "client_order_id already used for a different order",
        "the available balance does not cover the order",
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp (known[i], text) == 0)
            return known[i];
    return text[0] ? "refused" : NULL;
}

static void s_clear (engine_t *self)
{
    for (uint32_t i = 0; i < self->book_count; i++)
        book_free (&self->books[i]);
    self->book_count = 0;
    book_pool_free (&self->pool);
    book_pool_init (&self->pool);
    zhashx_purge (self->coids);
    zhashx_purge (self->withdrawals);
    zhashx_purge (self->deposits);
    if (self->accounts.count)
        memset (self->accounts.entries, 0, self->accounts.count * sizeof *self->accounts.entries);
    self->next_withdrawal_id = 1;
    self->deposits_floor = 0;
    self->expiry_count = 0;
    self->user_count = 0;
    memset (self->user_index, 0xff, (self->user_mask + 1) * sizeof *self->user_index);
    for (uint32_t i = 0; i < self->market_count; i++) {
        s_market_t *m = &self->markets[i];
        m->paused = m->started = false;
        m->current = m->closed_through = m->announced_through = -1;
    }
    self->next_order_id = self->next_trade_id = 1;
}

static void s_restore_accounts (engine_t *self, s_in_t *in)
{
    for (uint32_t u = 0; u < self->user_count; u++)
        for (int a = 0; a < ACCOUNTS_ASSETS; a++) {
            accounts_balance_t *b = &self->accounts.entries[u].asset[a];
            b->available = (int64_t) s_get64 (in);
            b->reserved = (int64_t) s_get64 (in);
            if (b->available < 0 || b->reserved < 0)
                in->failed = true;
        }
    self->next_withdrawal_id = s_get64 (in);
    uint64_t n = s_get64 (in);
    if (n > (uint64_t) (in->end - in->p) / 24)
        in->failed = true;
    for (uint64_t i = 0; i < n && !in->failed; i++) {
        s_withdrawal_t *w = malloc (sizeof *w);
        if (!w) {
            in->failed = true;
            break;
        }
        w->id = s_get64 (in);
        uint64_t packed = s_get64 (in);
        w->user = (uint32_t) packed;
        w->asset = (uint8_t) (packed >> 32);
        w->amount = (int64_t) s_get64 (in);
        char key[24];
        s_id_key (w->id, key, sizeof key);
        if (w->user >= self->user_count || w->asset >= ACCOUNTS_ASSETS || w->amount <= 0 ||
            w->id == 0 || w->id >= self->next_withdrawal_id ||
            zhashx_lookup (self->withdrawals, key))
            in->failed = true;
        zhashx_update (self->withdrawals, key, w);
    }
    self->deposits_floor = s_get64 (in);
    n = s_get64 (in);
    if (n > (uint64_t) (in->end - in->p) / 8)
        in->failed = true;
    for (uint64_t i = 0; i < n && !in->failed; i++) {
        uint64_t id = s_get64 (in);
        if (id <= self->deposits_floor + 1)
            in->failed = true; //  such an id would have joined the floor
        else
            s_deposit_remember (self, id);
    }
}

//  True when a market with orders resting in the snapshot now computes holds otherwise than
//  when they were reserved (escrow turned on or off, another lot, tick or max_price): their
//  releases would not match what they hold. A version 1 snapshot reserved nothing.
static bool s_settings_changed (engine_t *self, s_in_t *in, uint64_t version)
{
    bool changed = false;
    for (uint32_t mi = 0; mi < self->market_count; mi++) {
        const s_market_t *m = &self->markets[mi];
        bool escrow = false;
        int64_t lot = m->cfg.lot, tick = m->cfg.tick, max_price = m->cfg.max_price;
        if (version >= 2) {
            escrow = s_get64 (in) != 0;
            lot = (int64_t) s_get64 (in);
            tick = (int64_t) s_get64 (in);
            max_price = (int64_t) s_get64 (in);
        }
        bool differs =
            escrow != m->escrow || (m->escrow && (lot != m->cfg.lot || tick != m->cfg.tick ||
                                                  max_price != m->cfg.max_price));
        if (differs && engine_market_resting (self, mi) > 0)
            changed = true;
    }
    return changed && !in->failed;
}

int engine_restore (engine_t *self, const uint8_t *data, size_t size)
{
    s_clear (self);
    s_in_t in = {data, data + size, false};
    uint64_t version = s_get64 (&in);
    if (version < 1 || version > S_SNAP_VERSION)
        return -1;
    self->next_order_id = s_get64 (&in);
    self->next_trade_id = s_get64 (&in);
    uint64_t users = s_get64 (&in);
    char name[ENGINE_USER_MAX + 1];
    for (uint64_t u = 0; u < users && !in.failed; u++) {
        s_get_str (&in, name, ENGINE_USER_MAX);
        if (engine_user_intern (self, name) != u)
            in.failed = true; //  duplicate names: not a snapshot of ours
    }
    if (s_get64 (&in) != self->market_count)
        in.failed = true;
    for (uint32_t mi = 0; mi < self->market_count && !in.failed; mi++) {
        s_market_t *m = &self->markets[mi];
        char id[sizeof m->cfg.id];
        s_get_str (&in, id, sizeof id - 1);
        if (strcmp (id, m->cfg.id) != 0)
            in.failed = true; //  taken with other markets
        uint64_t flags = s_get64 (&in);
        m->paused = flags & 1;
        m->started = flags & 2;
        m->current = (int64_t) s_get64 (&in);
        m->closed_through = (int64_t) s_get64 (&in);
        m->announced_through = (int64_t) s_get64 (&in);
        if (version >= 4)
            m->indicative_due = (int64_t) s_get64 (&in);
    }
    uint64_t books = s_get64 (&in);
    for (uint64_t i = 0; i < books && !in.failed; i++) {
        uint64_t market = s_get64 (&in);
        int64_t epoch = (int64_t) s_get64 (&in);
        book_t *b =
            market < self->market_count ? s_book_get (self, (uint32_t) market, epoch) : NULL;
        if (!b) {
            in.failed = true;
            break;
        }
        b->volume = (int64_t) s_get64 (&in);
        b->trades = s_get64 (&in);
        b->last_price = (int64_t) s_get64 (&in);
        if (version >= 3)
            b->value = (int64_t) s_get64 (&in);
        if (version >= 4)
            b->changed = s_get64 (&in) != 0;
        for (int side = 0; side < 2 && !in.failed; side++) {
            uint64_t n = s_get64 (&in);
            if (n > (uint64_t) (in.end - in.p) / 48) {
                in.failed = true; //  claims more orders than there are bytes for
                break;
            }
            for (uint64_t k = 0; k < n && !in.failed; k++) {
                uint64_t id = s_get64 (&in);
                int64_t price = (int64_t) s_get64 (&in);
                int64_t qty = (int64_t) s_get64 (&in);
                int64_t remaining = (int64_t) s_get64 (&in);
                int64_t expires = (int64_t) s_get64 (&in);
                uint64_t packed = s_get64 (&in);
                uint32_t user = (uint32_t) packed;
                if (in.failed || user >= self->user_count || remaining <= 0 || remaining > qty ||
                    id == 0 || id >= self->next_order_id ||
                    book_pool_find (&self->pool, id) != BOOK_NIL) {
                    in.failed = true;
                    break;
                }
                uint32_t slot = book_pool_alloc (&self->pool, id);
                book_level_t *level = slot == BOOK_NIL ? NULL : book_level_get (b, side, price);
                if (!level) {
                    in.failed = true;
                    break;
                }
                book_order_t *ord = &self->pool.orders[slot];
                ord->price = price;
                ord->qty = qty;
                ord->remaining = remaining;
                ord->expires_at = expires;
                ord->user = user;
                ord->book = s_book_index (self, b);
                ord->side = (uint8_t) side;
                ord->tif = (uint8_t) (packed >> 32);
                ord->type = (uint8_t) (packed >> 40);
                ord->flags = (uint8_t) (packed >> 48);
                book_level_push (&self->pool, level, slot);
                b->resting++;
                if (expires)
                    s_expiry_push (self, expires, id);
            }
        }
    }
    uint64_t coids = s_get64 (&in);
    for (uint64_t i = 0; i < coids && !in.failed; i++) {
        char key[2 * ENGINE_USER_MAX + 4], message[160];
        s_get_str (&in, key, sizeof key - 1);
        s_coid_t *c = calloc (1, sizeof *c);
        if (!c) {
            in.failed = true;
            break;
        }
        c->content = s_get64 (&in);
        c->market = (uint32_t) s_get64 (&in);
        c->epoch = (int64_t) s_get64 (&in);
        uint64_t flags = s_get64 (&in);
        c->rejected = flags & 1;
        c->reason = (proto_reject_reason_t) ((flags >> 8) & 0xff);
        c->status = (proto_order_status_t) ((flags >> 16) & 0xff);
        s_get_str (&in, message, sizeof message - 1);
        c->message = s_message_literal (message);
        c->order_id = s_get64 (&in);
        c->filled = (int64_t) s_get64 (&in);
        c->remaining = (int64_t) s_get64 (&in);
        if (c->market >= self->market_count)
            in.failed = true;
        zhashx_update (self->coids, key, c);
    }
    if (version >= 2 && !in.failed)
        s_restore_accounts (self, &in);
    bool changed = !in.failed && s_settings_changed (self, &in, version);
    if (in.failed || in.p != in.end || changed) {
        s_clear (self);
        return changed ? -2 : -1;
    }
    return 0;
}
