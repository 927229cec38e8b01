/*  matcher_metrics — the matcher's numbers in Prometheus text on matcher.metrics_port.

    The loop updates plain atomics (no locks, relaxed order: these are statistics); a
    metrics_http thread formats them on GET /metrics. Histograms are cumulative counters per
    bucket, as Prometheus expects.
*/
#ifndef MCE_MATCHER_METRICS_H
#define MCE_MATCHER_METRICS_H

#include "config.h"
#include "metrics_http.h"

#include <stdatomic.h>
#include <stdint.h>

#define METRICS_BATCH_BUCKETS 12 //  1, 2, 4, ... 2048 commands
#define METRICS_FSYNC_BUCKETS 12 //  50 µs, 100 µs, 200 µs, ... ~100 ms

typedef struct {
    _Atomic uint64_t commands, malformed, refused, trades, events, batches;
    _Atomic uint64_t last_seq, journal_bytes, resting, snapshots;
    //  The state hash at a known seq: at recovery, then at each snapshot (computed by the
    //  snapshot's child: hashing the books on the loop would pause it). A hash and its seq
    //  are published together through hash_version (odd while they change).
    _Atomic uint64_t hash_version, hash_seq, hash;
    _Atomic uint64_t batch_buckets[METRICS_BATCH_BUCKETS + 1]; //  the last is +Inf
    _Atomic uint64_t batch_sum;
    _Atomic uint64_t commit_buckets[METRICS_FSYNC_BUCKETS + 1];
    _Atomic uint64_t commit_sum_ns;
    //  per market, in the config's order (names borrowed from it)
    int market_count;
    const char *market_names[CONFIG_MARKETS_MAX];
    _Atomic uint64_t market_resting[CONFIG_MARKETS_MAX];
} matcher_metrics_t;

//  Serves m on address:port (metrics_http). NULL if port is 0 or it cannot listen (logged).
metrics_http_t *matcher_metrics_serve (const char *address, int port, const matcher_metrics_t *m);

void matcher_metrics_batch (matcher_metrics_t *m, uint64_t commands, int64_t commit_ns);
//  Sets the state hash as of seq (the loop's thread only).
void matcher_metrics_hash (matcher_metrics_t *m, uint64_t seq, uint64_t hash);

#endif
