/*  ratelimit — per-client token buckets for the gateway (docs/api.md, Limits).

    A bucket per key ("u:<user>" for a signed-in user, "a:<address>" otherwise) holds up to
    `burst` tokens and gains `rate` tokens a second; each request takes one. Arithmetic is in
    integer micro-tokens, so no rounding drifts. Buckets live in a fixed table (open addressing,
    a few probes): a client who has been idle long enough to have a full bucket is forgotten
    without loss, and when the table is crowded the least recently used of the probed buckets
    gives way, so memory stays fixed however many addresses knock. That makes the limit a
    little generous to a client evicted under pressure, never stricter than configured.
*/
#ifndef MCE_RATELIMIT_H
#define MCE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct _ratelimit_t ratelimit_t;

//  rate tokens per second, at most burst in hand, capacity buckets (rounded up to a power of
//  two). NULL when out of memory.
ratelimit_t *ratelimit_new (int64_t rate, int64_t burst, size_t capacity);
//  The same with rate tokens every period_s seconds (10 a minute: rate 10, period_s 60).
ratelimit_t *ratelimit_new_per (int64_t rate, int64_t period_s, int64_t burst, size_t capacity);
void ratelimit_destroy (ratelimit_t **self_p);
//  Takes a token for key at now_ns (monotonic). Returns 0 when the request may go on, or the
//  whole seconds until a token will be there (>= 1), for a 429's Retry-After.
unsigned ratelimit_take (ratelimit_t *self, const char *key, int64_t now_ns);

#endif
