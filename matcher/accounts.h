/*  accounts — every user's balances in the matcher (docs/clearing.md, Accounts and escrow): per
    asset, `available` (free to order or withdraw) and `reserved` (held by open orders). The
    matcher's one thread owns them and the engine changes them in the same step as the match they
    guard, so a reservation and its trade are one decision, journaled and replayed together.

    What an order holds. A sell holds its remaining energy. A buy of R Wh at limit L pays at
    most the sum of value (q_i, p_i) over its fills, each p_i <= L and each value rounded
    half-even to a µ (money.h). A value can round up by up to one µ per fill, so value (R, L)
    alone may fall short (two fills of 1 Wh at 1 500 µ/kWh pay 2 + 2 µ where value (2, 1500) is
    3). A buy therefore holds ceil (R × L / 1000) plus one µ per lot of R, unless lot × tick is
    a multiple of 1000 (every value is then exact and nothing extra is held). The hold depends
    on (R, L) only, so nothing is stored per order; a fill of q at p moves
    hold (R) − hold (R − q) out of reserved, value (q, p) of it to pay the trade and the rest
    back to available. That rest is never negative: with m = q / lot >= 1 lots,
    ceil (R L) − ceil ((R − q) L) >= ceil (q L) − 1 >= value (q, p) − 1, and the m extra µ cover
    the 1 (test_accounts checks it at the edges).

    Balance events. A command touches a few (user, asset) pairs. The first touch in a command
    records the balance as it was (a generation number per entry makes "first touch" one
    compare); after the command the list is what the engine reports, and each pair that
    changed becomes one balance event with the new balance and the change.
*/
#ifndef MCE_ACCOUNTS_H
#define MCE_ACCOUNTS_H

#include "proto.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACCOUNTS_ASSETS 2 //  index 0 energy (Wh), 1 payment (µ)
//  Most one user may hold of an asset (available + reserved): sums of a few of them, and a
//  hold added to one, stay far inside int64.
#define ACCOUNTS_BALANCE_MAX (INT64_MAX / 4)

typedef struct {
    int64_t available;
    int64_t reserved;
} accounts_balance_t;

typedef struct {
    accounts_balance_t asset[ACCOUNTS_ASSETS];
    uint32_t touched[ACCOUNTS_ASSETS]; //  generation of the last command that touched it
} accounts_entry_t;

//  A pair touched by the current command: what it was before, and why it changed.
typedef struct {
    uint32_t user;
    uint8_t asset; //  index
    uint8_t cause; //  proto_balance_cause_t
    uint32_t market;
    uint64_t ref;
    accounts_balance_t before;
} accounts_touch_t;

typedef struct {
    accounts_entry_t *entries; //  by user index
    size_t count;              //  entries in use (every user index below it is valid)
    size_t cap;
    uint32_t generation; //  the current command's
    accounts_touch_t *touches;
    size_t touch_count, touch_cap;
} accounts_t;

void accounts_init (accounts_t *self);
void accounts_free (accounts_t *self);
//  Makes entries up to user index `users - 1` exist (zero balances). 0, or -1 out of memory.
int accounts_reserve_users (accounts_t *self, size_t users);
//  Clears every entry's mark, for when the generation wraps (accounts_begin).
void accounts_forget_marks (accounts_t *self);

//  Starts a command: nothing touched yet. Every command calls it, so it is inline; the wrap
//  after 4 billion commands is the only call out.
static inline void accounts_begin (accounts_t *self)
{
    self->touch_count = 0;
    if (__builtin_expect (++self->generation == 0, 0))
        accounts_forget_marks (self);
}

static inline int accounts_asset_index (proto_asset_t asset)
{
    return asset == PROTO_ASSET_ENERGY ? 0 : 1;
}

//  Makes room for one more touch (the list is reused, so this grows only while warming up).
void accounts_touch_grow (accounts_t *self);

//  The entry's balance of asset index a, after recording the first touch of this command.
static inline accounts_balance_t *accounts_touch (accounts_t *self, uint32_t user, int a,
                                                  proto_balance_cause_t cause, uint64_t ref,
                                                  uint32_t market)
{
    assert (user < self->count);
    accounts_entry_t *e = &self->entries[user];
    if (e->touched[a] != self->generation) {
        e->touched[a] = self->generation;
        if (self->touch_count == self->touch_cap)
            accounts_touch_grow (self);
        self->touches[self->touch_count++] = (accounts_touch_t){.user = user,
                                                                .asset = (uint8_t) a,
                                                                .cause = (uint8_t) cause,
                                                                .market = market,
                                                                .ref = ref,
                                                                .before = e->asset[a]};
    }
    return &e->asset[a];
}

//  The hold of a buy of `remaining` Wh at `limit` µ/kWh (see the top of this file); `exact`
//  when lot × tick is a multiple of 1000 and every price is on the tick.
//  The product nearly always fits 64 bits, where dividing by the constant 1000 is a multiply;
//  128-bit division is a library call, kept for the orders that need it.
//  Both factors are never negative, so the quotient is taken unsigned: a multiply and a shift,
//  without the sign fix-up a signed division by a constant needs.
static inline int64_t accounts_buy_hold (int64_t remaining, int64_t limit, int64_t lot, bool exact)
{
    int64_t product, hold;
    if (!__builtin_mul_overflow (remaining, limit, &product) && product <= INT64_MAX - 999)
        hold = (int64_t) ((uint64_t) (product + 999) / 1000u);
    else
        hold = (int64_t) (((__int128) remaining * limit + 999) / 1000);
    if (exact)
        return hold;
    return hold + (lot == 1 ? remaining : (remaining + lot - 1) / lot); //  1 Wh lots: no divide
}

//  What a fill of q of a buy's `remaining` frees: hold (remaining) − hold (remaining − q). Both
//  holds are always computed, even when q is all of it (hold (0) is 0): a branch on that would
//  be mispredicted about once per taker, at its last maker, where the second hold costs a few
//  cycles that overlap the first.
static inline int64_t accounts_buy_freed (int64_t remaining, int64_t q, int64_t limit, int64_t lot,
                                          bool exact)
{
    return accounts_buy_hold (remaining, limit, lot, exact) -
           accounts_buy_hold (remaining - q, limit, lot, exact);
}

#endif
