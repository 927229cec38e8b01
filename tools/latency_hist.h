/*  latency_hist — a latency histogram for the benchmarks (mce-wsbench and its --floor): log
    buckets 0.1 % wide, as HdrHistogram's 3 significant digits, from 1 µs to 2^50 µs. Exact
    below 2048 µs; above, 1024 buckets per power of two. Quantiles are a bucket's upper bound
    (the maximum for the last one).
*/
#ifndef MCE_LATENCY_HIST_H
#define MCE_LATENCY_HIST_H

#include <stdint.h>
#include <stdlib.h>

#define LATENCY_HIST_SUB     1024
#define LATENCY_HIST_BUCKETS (2 * LATENCY_HIST_SUB + 40 * LATENCY_HIST_SUB)

typedef struct {
    uint64_t *buckets;
    uint64_t count;
    uint64_t negative; //  samples below zero (counted as 0): clocks that disagree
    int64_t max_us;
} latency_hist_t;

static inline int latency_hist_init (latency_hist_t *h)
{
    *h = (latency_hist_t){0};
    h->buckets = calloc (LATENCY_HIST_BUCKETS, sizeof *h->buckets);
    return h->buckets ? 0 : -1;
}

static inline void latency_hist_free (latency_hist_t *h)
{
    free (h->buckets);
    h->buckets = NULL;
}

static inline int64_t latency_hist_bucket (int64_t us)
{
    if (us < 2 * LATENCY_HIST_SUB)
        return us;
    int shift = 63 - __builtin_clzll ((unsigned long long) us) - 10; //  us >> shift in [1024, 2048)
    int64_t i = 2 * LATENCY_HIST_SUB + (int64_t) (shift - 1) * LATENCY_HIST_SUB +
                ((us >> shift) - LATENCY_HIST_SUB);
    return i < LATENCY_HIST_BUCKETS ? i : LATENCY_HIST_BUCKETS - 1;
}

//  The largest µs value of bucket i.
static inline int64_t latency_hist_top (int64_t i)
{
    if (i < 2 * LATENCY_HIST_SUB)
        return i;
    int64_t shift = (i - 2 * LATENCY_HIST_SUB) / LATENCY_HIST_SUB + 1;
    int64_t sub = LATENCY_HIST_SUB + (i - 2 * LATENCY_HIST_SUB) % LATENCY_HIST_SUB;
    return ((sub + 1) << shift) - 1;
}

//  n samples of ns nanoseconds.
static inline void latency_hist_record (latency_hist_t *h, int64_t ns, uint64_t n)
{
    if (ns < 0) {
        h->negative += n;
        ns = 0;
    }
    int64_t us = ns / 1000;
    h->buckets[latency_hist_bucket (us)] += n;
    h->count += n;
    if (us > h->max_us)
        h->max_us = us;
}

//  The q-quantile in ms.
static inline double latency_hist_ms (const latency_hist_t *h, double q)
{
    if (!h->count)
        return 0;
    double want = q * (double) h->count;
    uint64_t rank = (uint64_t) want;
    if ((double) rank < want || rank == 0)
        rank++;
    uint64_t seen = 0;
    for (int64_t i = 0; i < LATENCY_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            int64_t us = latency_hist_top (i);
            return (double) (us < h->max_us ? us : h->max_us) / 1000.0;
        }
    }
    return (double) h->max_us / 1000.0;
}

#endif
