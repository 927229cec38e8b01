/*  book — see book.h. The cold half: growing the pool, the index and the level arrays.  */
#include "book.h"

#include <stdlib.h>

#define S_POOL_START   4096u
#define S_LEVELS_START 16u
#define S_EMPTY_MAX    64u //  empty levels tolerated before a mostly-empty side is compacted

static int s_index_grow (book_pool_t *pool)
{
    uint64_t cap = pool->index_mask ? (pool->index_mask + 1) * 2 : 2 * S_POOL_START;
    uint32_t *index = malloc (cap * sizeof *index);
    if (!index)
        return -1;
    memset (index, 0xff, cap * sizeof *index);
    uint64_t mask = cap - 1;
    for (uint64_t i = 0; pool->index && i <= pool->index_mask; i++) {
        uint32_t slot = pool->index[i];
        if (slot == BOOK_NIL)
            continue;
        uint64_t h = pool->orders[slot].id & mask;
        while (index[h] != BOOK_NIL)
            h = (h + 1) & mask;
        index[h] = slot;
    }
    free (pool->index);
    pool->index = index;
    pool->index_mask = mask;
    return 0;
}

int book_pool_init (book_pool_t *pool)
{
    memset (pool, 0, sizeof *pool);
    pool->orders = calloc (S_POOL_START, sizeof *pool->orders);
    pool->free = malloc (S_POOL_START * sizeof *pool->free);
    pool->cap = pool->orders && pool->free ? S_POOL_START : 0;
    return pool->cap && s_index_grow (pool) == 0 ? 0 : -1;
}

void book_pool_free (book_pool_t *pool)
{
    free (pool->orders);
    free (pool->free);
    free (pool->index);
    memset (pool, 0, sizeof *pool);
}

static int s_pool_grow (book_pool_t *pool)
{
    if (pool->cap >= BOOK_NIL / 2)
        return -1;
    size_t cap = 2 * (size_t) pool->cap;
    book_order_t *orders = realloc (pool->orders, cap * sizeof *orders);
    if (!orders)
        return -1;
    pool->orders = orders;
    uint32_t *free_slots = realloc (pool->free, cap * sizeof *free_slots);
    if (!free_slots)
        return -1;
    pool->free = free_slots;
    //  Touch the new half now: one pause here instead of a page fault every 64 orders later.
    memset (orders + pool->cap, 0, (cap - pool->cap) * sizeof *orders);
    pool->cap = (uint32_t) cap;
    return 0;
}

uint32_t book_pool_alloc (book_pool_t *pool, uint64_t id)
{
    //  Keep the index at most half full: probes stay at about one.
    if ((uint64_t) (pool->live + 1) * 2 > pool->index_mask + 1 && s_index_grow (pool))
        return BOOK_NIL;
    uint32_t slot;
    if (pool->free_count)
        slot = pool->free[--pool->free_count];
    else {
        if (pool->used == pool->cap && s_pool_grow (pool))
            return BOOK_NIL;
        slot = pool->used++;
    }
    pool->orders[slot].id = id;
    uint64_t h = id & pool->index_mask;
    while (pool->index[h] != BOOK_NIL)
        h = (h + 1) & pool->index_mask;
    pool->index[h] = slot;
    pool->live++;
    return slot;
}

void book_pool_release (book_pool_t *pool, uint32_t slot)
{
    uint64_t mask = pool->index_mask;
    uint64_t h = pool->orders[slot].id & mask;
    while (pool->index[h] != slot)
        h = (h + 1) & mask;
    //  Backward-shift deletion: pull later entries of the probe run into the hole, so the
    //  table never fills with tombstones.
    uint64_t hole = h;
    for (uint64_t i = (h + 1) & mask; pool->index[i] != BOOK_NIL; i = (i + 1) & mask) {
        uint64_t home = pool->orders[pool->index[i]].id & mask;
        //  entry i may move to the hole if its home is not in (hole, i] (cyclically)
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            pool->index[hole] = pool->index[i];
            hole = i;
        }
    }
    pool->index[hole] = BOOK_NIL;
    pool->free[pool->free_count++] = slot;
    pool->live--;
}

void book_init (book_t *book, uint32_t market, int64_t epoch)
{
    memset (book, 0, sizeof *book);
    book->market = market;
    book->epoch = epoch;
    book->in_use = true;
}

void book_free (book_t *book)
{
    free (book->side[0].levels);
    free (book->side[1].levels);
    memset (book, 0, sizeof *book);
}

book_level_t *book_level_get (book_t *book, int side, int64_t price)
{
    book_levels_t *s = &book->side[side];
    uint32_t lo = s->count;
    if (!s->count || !book_better (side, price, s->levels[s->count - 1].price))
        lo = book_level_position (s, side, price); //  else a new best: the common case
    if (lo < s->count && s->levels[lo].price == price) {
        if (s->levels[lo].count == 0)
            s->empty--; //  an empty level comes back to life
        return &s->levels[lo];
    }
    if (s->count == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : S_LEVELS_START;
        book_level_t *bigger = realloc (s->levels, cap * sizeof *bigger);
        if (!bigger)
            return NULL;
        s->levels = bigger;
        s->cap = cap;
    }
    memmove (&s->levels[lo + 1], &s->levels[lo], (s->count - lo) * sizeof *s->levels);
    s->count++;
    book_level_t *level = &s->levels[lo];
    *level = (book_level_t){.price = price, .head = BOOK_NIL, .tail = BOOK_NIL};
    return level;
}

void book_level_remove (book_t *book, int side, book_level_t *level)
{
    book_levels_t *s = &book->side[side];
    uint32_t i = (uint32_t) (level - s->levels);
    assert (i < s->count && level->count == 0 && level->total == 0);
    if (i + 1 == s->count) {
        //  The best level: drop it and any empty ones it uncovers.
        s->count--;
        while (s->count && s->levels[s->count - 1].count == 0) {
            s->count--;
            s->empty--;
        }
        return;
    }
    s->empty++;
    if (s->empty > S_EMPTY_MAX && s->empty * 2 > s->count) {
        //  Mostly empty: compact once, in order.
        uint32_t w = 0;
        for (uint32_t r = 0; r < s->count; r++)
            if (s->levels[r].count)
                s->levels[w++] = s->levels[r];
        s->count = w;
        s->empty = 0;
    }
}
