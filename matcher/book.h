/*  book — the data structures of the order books: an order pool, an id index, and per book
    two sides of price levels, each level a FIFO of orders. No matching rules here (engine.c
    has those); this file is about memory and speed.

    Why it is shaped this way:
    - Orders live in one pool (a slab of 64-byte structs, indexed by uint32, with a stack of
      free slots), so an order is one cache line and links are 4-byte indices, not pointers.
      New capacity is touched when the pool grows, so no order pays for a page fault later.
    - Order ids are sequential, so the id index is an open-addressing table of slot numbers
      whose home position is id & mask: consecutive ids land in consecutive buckets, inserts
      are cache-friendly and probes are almost always one. The table stores only the slot;
      the id is checked in the order itself, which the caller touches next anyway.
    - A side is an array of levels sorted so that the best price is at the end: the levels
      that change most (near the touch) are the cheapest to insert and remove, and a book of a
      few hundred levels is searched with a binary search in a few cache lines. Levels that
      empty away from the touch stay in place, empty, until reused or compacted.
    Hot helpers are static inline here so the engine's matching loop compiles into one piece.
*/
#ifndef MCE_BOOK_H
#define MCE_BOOK_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BOOK_NIL UINT32_MAX

typedef enum { BOOK_BID = 0, BOOK_ASK = 1 } book_side_t;

//  One order: exactly one cache line.
typedef struct {
    uint64_t id;
    int64_t price;       //  µ/kWh; 0 for a market order (never rests in continuous mode)
    int64_t qty;         //  Wh as accepted (or as last amended up)
    int64_t remaining;   //  Wh still open
    int64_t expires_at;  //  ns, 0 = none
    uint32_t user;       //  interned user
    uint32_t prev, next; //  FIFO neighbours in the level, BOOK_NIL at the ends
    uint32_t book;       //  the book it rests in
    uint8_t side;        //  book_side_t
    uint8_t tif;         //  proto_tif_t
    uint8_t type;        //  proto_order_type_t
    uint8_t flags;       //  BOOK_ORDER_*
} book_order_t;

#define BOOK_ORDER_POST_ONLY 0x01

typedef struct {
    int64_t price;
    int64_t total; //  Wh resting at this price
    uint32_t head, tail;
    uint32_t count;
    uint32_t pad_;
} book_level_t;

typedef struct {
    book_level_t *levels; //  sorted, best last; never an empty level at the end
    uint32_t count, cap;
    uint32_t empty; //  levels kept with no orders (see book_level_remove)
} book_levels_t;

typedef struct {
    uint32_t market;
    int64_t epoch;
    book_levels_t side[2];
    uint64_t resting; //  orders resting
    int64_t volume;   //  Wh traded in this book
    uint64_t trades;
    int64_t last_price;
    int64_t value; //  µ traded in this book (its volume-weighted average price: value / volume)
    //  The gate closure's auction, while the epoch closes: its price (0: nothing crossed) and
    //  the participants' D and S there. Not state: set and read within one command.
    int64_t gate_price, gate_demand, gate_supply;
    bool changed; //  its depth changed since its last indicative clearing (auction modes)
    bool in_use;
} book_t;

//  The pool and the id index, shared by every book of an engine.
typedef struct {
    book_order_t *orders;
    uint32_t cap, used;  //  slots allocated, high-water mark
    uint32_t *free;      //  released slots, reused last-in first-out (still warm in cache); a
    uint32_t free_count; //  stack of its own so releasing an order never writes to its line
    uint32_t live;
    uint32_t *index; //  id → slot, BOOK_NIL when empty
    uint64_t index_mask;
} book_pool_t;

int book_pool_init (book_pool_t *pool);
void book_pool_free (book_pool_t *pool);
//  A fresh slot for an order with this id, indexed. BOOK_NIL when memory runs out.
uint32_t book_pool_alloc (book_pool_t *pool, uint64_t id);
//  Forgets the order in slot (its id leaves the index).
void book_pool_release (book_pool_t *pool, uint32_t slot);
//  The slot of the order with this id, BOOK_NIL if there is none.
static inline uint32_t book_pool_find (const book_pool_t *pool, uint64_t id)
{
    for (uint64_t h = id & pool->index_mask;; h = (h + 1) & pool->index_mask) {
        uint32_t slot = pool->index[h];
        if (slot == BOOK_NIL)
            return BOOK_NIL;
        if (pool->orders[slot].id == id)
            return slot;
    }
}

void book_init (book_t *book, uint32_t market, int64_t epoch);
void book_free (book_t *book);

//  True when price a is better than b on this side (higher bid, lower ask).
static inline bool book_better (int side, int64_t a, int64_t b)
{
    return side == BOOK_BID ? a > b : a < b;
}

//  The best level of a side, NULL when empty.
static inline book_level_t *book_best (book_t *book, int side)
{
    book_levels_t *s = &book->side[side];
    return s->count ? &s->levels[s->count - 1] : NULL;
}

//  Index of the first level not worse than price (levels are sorted worst → best), i.e.
//  where price is or would go. Branch-free: the comparisons of a search over hundreds of
//  levels are unpredictable, so a conditional move beats a branch that mispredicts.
static inline uint32_t book_level_position (const book_levels_t *s, int side, int64_t price)
{
    if (s->count == 0)
        return 0;
    int64_t dir = side == BOOK_BID ? 1 : -1; //  key = price × dir ascends in array order
    int64_t key = price * dir;
    const book_level_t *base = s->levels;
    uint32_t n = s->count;
    while (n > 1) {
        uint32_t half = n / 2;
        base = base[half].price * dir < key ? base + half : base;
        n -= half;
    }
    return (uint32_t) (base - s->levels) + (base->price * dir < key);
}

//  The level at price, NULL if none.
static inline book_level_t *book_level_find (book_t *book, int side, int64_t price)
{
    book_levels_t *s = &book->side[side];
    //  most lookups are at or near the touch: check the best first
    if (s->count && s->levels[s->count - 1].price == price)
        return &s->levels[s->count - 1];
    uint32_t i = book_level_position (s, side, price);
    return i < s->count && s->levels[i].price == price ? &s->levels[i] : NULL;
}

//  The level at price, created if needed (empty). NULL when memory runs out.
book_level_t *book_level_get (book_t *book, int side, int64_t price);
//  Says a level has become empty. At the best end it goes at once (with any empty levels
//  behind it), so book_best is always a live level; elsewhere it stays, empty, to be reused
//  when its price comes back: a book whose orders move between a few hundred prices then
//  never shifts its array. Walks over levels skip empty ones. The pointer is invalid after.
void book_level_remove (book_t *book, int side, book_level_t *level);

//  Appends the order in slot to its level's FIFO (the level must be its price's).
static inline void book_level_push (book_pool_t *pool, book_level_t *level, uint32_t slot)
{
    book_order_t *o = &pool->orders[slot];
    o->prev = level->tail;
    o->next = BOOK_NIL;
    if (level->tail != BOOK_NIL)
        pool->orders[level->tail].next = slot;
    else
        level->head = slot;
    level->tail = slot;
    level->count++;
    level->total += o->remaining;
}

//  Unlinks the order in slot from its level (total reduced by its remaining).
static inline void book_level_unlink (book_pool_t *pool, book_level_t *level, uint32_t slot)
{
    book_order_t *o = &pool->orders[slot];
    if (o->prev != BOOK_NIL)
        pool->orders[o->prev].next = o->next;
    else
        level->head = o->next;
    if (o->next != BOOK_NIL)
        pool->orders[o->next].prev = o->prev;
    else
        level->tail = o->prev;
    level->count--;
    level->total -= o->remaining;
}

#endif
