/*  matcher_metrics — see matcher_metrics.h.  */
#include "matcher_metrics.h"
#include "metrics_http.h"

#include <stdio.h>

void matcher_metrics_batch (matcher_metrics_t *m, uint64_t commands, int64_t commit_ns)
{
    atomic_fetch_add_explicit (&m->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&m->batch_sum, commands, memory_order_relaxed);
    int b = 0;
    while (b < METRICS_BATCH_BUCKETS && commands > (1ull << b))
        b++;
    atomic_fetch_add_explicit (&m->batch_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&m->commit_sum_ns, (uint64_t) commit_ns, memory_order_relaxed);
    b = 0;
    while (b < METRICS_FSYNC_BUCKETS && commit_ns > (50000ll << b))
        b++;
    atomic_fetch_add_explicit (&m->commit_buckets[b], 1, memory_order_relaxed);
}

static void s_histogram (FILE *f, const char *name, const char *help,
                         const _Atomic uint64_t *buckets, int n, uint64_t base, double scale,
                         uint64_t sum, double sum_scale)
{
    fprintf (f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (int b = 0; b <= n; b++) {
        cumulative += atomic_load_explicit (&buckets[b], memory_order_relaxed);
        if (b < n)
            fprintf (f, "%s_bucket{le=\"%g\"} %llu\n", name, (double) (base << b) * scale,
                     (unsigned long long) cumulative);
        else
            fprintf (f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long) cumulative);
    }
    fprintf (f, "%s_sum %g\n%s_count %llu\n", name, (double) sum * sum_scale, name,
             (unsigned long long) cumulative);
}

static void s_render (void *arg, FILE *f)
{
    const matcher_metrics_t *m = arg;
#define S_COUNTER(name, help, field)                                                               \
    fprintf (f, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",              \
             (unsigned long long) atomic_load (&m->field));
#define S_GAUGE(name, help, field)                                                                 \
    fprintf (f, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %llu\n",                \
             (unsigned long long) atomic_load (&m->field));
    S_COUNTER ("mce_matcher_commands_total", "Commands received (decided or dropped).", commands)
    S_COUNTER ("mce_matcher_malformed_total", "Malformed commands dropped.", malformed)
    S_COUNTER ("mce_matcher_refused_total", "Commands dropped as sent with a monitor's key.",
               refused)
    S_COUNTER ("mce_matcher_trades_total", "Trades made.", trades)
    S_COUNTER ("mce_matcher_events_total", "Records journaled (commands, clocks, events).", events)
    S_COUNTER ("mce_matcher_snapshots_total", "Snapshots taken.", snapshots)
    S_GAUGE ("mce_matcher_last_seq", "Last committed seq of the matcher bus.", last_seq)
    S_GAUGE ("mce_matcher_journal_bytes", "Bytes in the journal's segments.", journal_bytes)
    S_GAUGE ("mce_matcher_resting_orders", "Orders resting over all books.", resting)
    uint64_t hv, hash_seq, hash;
    do {
        hv = atomic_load (&m->hash_version);
        hash_seq = atomic_load (&m->hash_seq);
        hash = atomic_load (&m->hash);
    } while ((hv & 1) || hv != atomic_load (&m->hash_version));
    fprintf (f,
             "# HELP mce_matcher_state_hash_info The state hash of the books as of "
             "seq (at start, then at each snapshot).\n"
             "# TYPE mce_matcher_state_hash_info gauge\n"
             "mce_matcher_state_hash_info{seq=\"%llu\",hash=\"%016llx\"} 1\n",
             (unsigned long long) hash_seq, (unsigned long long) hash);
    fprintf (f, "# HELP mce_matcher_book_resting_orders Orders resting in the open "
                "books of a market.\n# TYPE mce_matcher_book_resting_orders gauge\n");
    for (int i = 0; i < m->market_count; i++)
        fprintf (f, "mce_matcher_book_resting_orders{market=\"%s\"} %llu\n", m->market_names[i],
                 (unsigned long long) atomic_load (&m->market_resting[i]));
    s_histogram (f, "mce_matcher_batch_commands", "Commands decided per group commit.",
                 m->batch_buckets, METRICS_BATCH_BUCKETS, 1, 1.0, atomic_load (&m->batch_sum), 1.0);
    s_histogram (f, "mce_matcher_commit_seconds",
                 "Time from handing a batch to the journal writer until it is durable.",
                 m->commit_buckets, METRICS_FSYNC_BUCKETS, 50000, 1e-9,
                 atomic_load (&m->commit_sum_ns), 1e-9);
#undef S_COUNTER
#undef S_GAUGE
}

metrics_http_t *matcher_metrics_serve (const char *address, int port, const matcher_metrics_t *m)
{
    return metrics_http_new ("matcher", address, port, s_render, (void *) m);
}

void matcher_metrics_hash (matcher_metrics_t *m, uint64_t seq, uint64_t hash)
{
    atomic_fetch_add (&m->hash_version, 1);
    atomic_store (&m->hash_seq, seq);
    atomic_store (&m->hash, hash);
    atomic_fetch_add (&m->hash_version, 1);
}
