/*  ratelimit — see ratelimit.h.  */
#include "ratelimit.h"
#include "fnv.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 72
#define S_PROBES  8
#define S_MICRO   1000000LL //  micro-tokens per token

typedef struct {
    char key[S_KEY_MAX]; //  "" = free
    int64_t tokens;      //  micro-tokens at `at`
    int64_t at;          //  ns of the last refill
} s_bucket_t;

struct _ratelimit_t {
    int64_t rate, period_s, burst; //  rate tokens every period_s seconds
    s_bucket_t *table;
    size_t mask;
};

ratelimit_t *ratelimit_new (int64_t rate, int64_t burst, size_t capacity)
{
    return ratelimit_new_per (rate, 1, burst, capacity);
}

ratelimit_t *ratelimit_new_per (int64_t rate, int64_t period_s, int64_t burst, size_t capacity)
{
    assert (rate > 0 && period_s > 0 && burst > 0);
    ratelimit_t *self = calloc (1, sizeof *self);
    size_t size = 16;
    while (size < capacity)
        size *= 2;
    if (self)
        self->table = calloc (size, sizeof *self->table);
    if (!self || !self->table) {
        ratelimit_destroy (&self);
        return NULL;
    }
    self->rate = rate;
    self->period_s = period_s;
    self->burst = burst;
    self->mask = size - 1;
    return self;
}

void ratelimit_destroy (ratelimit_t **self_p)
{
    ratelimit_t *self = *self_p;
    if (!self)
        return;
    free (self->table);
    free (self);
    *self_p = NULL;
}

//  The bucket's tokens brought up to now, capped at the burst; *at (when not NULL) is the
//  time they are counted to: now, or just short of it by the part of a micro-token not yet
//  earned, so that refills at any spacing add up to the rate exactly.
static int64_t s_refill (const ratelimit_t *self, const s_bucket_t *b, int64_t now, int64_t *at)
{
    int64_t elapsed = now > b->at ? now - b->at : 0;
    int64_t cap = self->burst * S_MICRO;
    if (at)
        *at = now;
    //  rate × elapsed in micro-tokens without overflow: elapsed is capped at the time a full
    //  refill takes, which is small.
    int64_t full_ns = (cap * self->period_s / self->rate + 1) * 1000;
    if (elapsed > full_ns)
        return cap;
    int64_t per = 1000 * self->period_s; //  ns × rate per micro-token
    int64_t gained = self->rate * elapsed / per;
    int64_t tokens = b->tokens + gained;
    if (tokens >= cap)
        return cap;
    if (at)
        *at = b->at + gained * per / self->rate;
    return tokens;
}

unsigned ratelimit_take (ratelimit_t *self, const char *key, int64_t now)
{
    char k[S_KEY_MAX];
    size_t n = strnlen (key, S_KEY_MAX - 1);
    memcpy (k, key, n);
    k[n] = '\0';
    uint64_t h = fnv1a (k, n);
    s_bucket_t *slot = NULL, *victim = NULL;
    for (int i = 0; i < S_PROBES && !slot; i++) {
        s_bucket_t *b = &self->table[(h + (uint64_t) i) & self->mask];
        if (strcmp (b->key, k) == 0)
            slot = b;
        else if (!b->key[0] || s_refill (self, b, now, NULL) == self->burst * S_MICRO) {
            //  free, or idle long enough to be full: forgetting it loses nothing
            if (!victim || victim->key[0])
                victim = b;
        }
        else if (!victim || (victim->key[0] && b->at < victim->at))
            victim = b;
    }
    if (!slot) {
        slot = victim;
        memcpy (slot->key, k, n + 1);
        slot->tokens = self->burst * S_MICRO;
        slot->at = now;
    }
    int64_t at;
    slot->tokens = s_refill (self, slot, now, &at);
    slot->at = at;
    if (slot->tokens >= S_MICRO) {
        slot->tokens -= S_MICRO;
        return 0;
    }
    //  whole seconds until one token: (missing micro-tokens) / (rate per s), rounded up
    int64_t missing = (S_MICRO - slot->tokens) * self->period_s;
    int64_t wait = (missing + self->rate * S_MICRO - 1) / (self->rate * S_MICRO);
    return wait < 1 ? 1 : (unsigned) wait;
}
