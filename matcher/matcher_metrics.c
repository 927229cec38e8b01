/*  matcher_metrics — see matcher_metrics.h.  */
#include "matcher_metrics.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TEXT_MAX 32768 //  room for 64 markets

struct _matcher_metrics_server_t {
    struct MHD_Daemon *daemon;
    const matcher_metrics_t *m;
};

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

static size_t s_histogram (char *out, size_t size, const char *name, const char *help,
                           const _Atomic uint64_t *buckets, int n, uint64_t base, double scale,
                           uint64_t sum, double sum_scale)
{
    size_t o =
        (size_t) snprintf (out, size, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (int b = 0; b <= n && o < size; b++) {
        cumulative += atomic_load_explicit (&buckets[b], memory_order_relaxed);
        if (b < n)
            o += (size_t) snprintf (out + o, size - o, "%s_bucket{le=\"%g\"} %llu\n", name,
                                    (double) (base << b) * scale, (unsigned long long) cumulative);
        else
            o += (size_t) snprintf (out + o, size - o, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                                    (unsigned long long) cumulative);
    }
    if (o < size)
        o += (size_t) snprintf (out + o, size - o, "%s_sum %g\n%s_count %llu\n", name,
                                (double) sum * sum_scale, name, (unsigned long long) cumulative);
    return o < size ? o : size - 1;
}

static enum MHD_Result s_access (void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    matcher_metrics_server_t *self = cls;
    const matcher_metrics_t *m = self->m;
    if (strcmp (method, "GET") != 0 || strcmp (url, "/metrics") != 0) {
        static char not_found[] = "only GET /metrics here\n";
        struct MHD_Response *r =
            MHD_create_response_from_buffer (strlen (not_found), not_found, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_NOT_FOUND, r);
        MHD_destroy_response (r);
        return rc;
    }
    char *text = malloc (S_TEXT_MAX);
    if (!text)
        return MHD_NO;
    size_t o = 0;
#define S_COUNTER(name, help, field)                                                               \
    o += (size_t) snprintf (text + o, S_TEXT_MAX - o,                                              \
                            "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",  \
                            (unsigned long long) atomic_load (&m->field));
#define S_GAUGE(name, help, field)                                                                 \
    o += (size_t) snprintf (text + o, S_TEXT_MAX - o,                                              \
                            "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %llu\n",    \
                            (unsigned long long) atomic_load (&m->field));
    S_COUNTER ("mce_matcher_commands_total", "Commands received (decided or dropped).", commands)
    S_COUNTER ("mce_matcher_malformed_total", "Malformed commands dropped.", malformed)
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
    o += (size_t) snprintf (text + o, S_TEXT_MAX - o,
                            "# HELP mce_matcher_state_hash_info The state hash of the books as of "
                            "seq (at start, then at each snapshot).\n"
                            "# TYPE mce_matcher_state_hash_info gauge\n"
                            "mce_matcher_state_hash_info{seq=\"%llu\",hash=\"%016llx\"} 1\n",
                            (unsigned long long) hash_seq, (unsigned long long) hash);
    o += (size_t) snprintf (text + o, S_TEXT_MAX - o,
                            "# HELP mce_matcher_book_resting_orders Orders resting in the open "
                            "books of a market.\n# TYPE mce_matcher_book_resting_orders gauge\n");
    for (int i = 0; i < m->market_count; i++)
        o += (size_t) snprintf (
            text + o, S_TEXT_MAX - o, "mce_matcher_book_resting_orders{market=\"%s\"} %llu\n",
            m->market_names[i], (unsigned long long) atomic_load (&m->market_resting[i]));
    o += s_histogram (text + o, S_TEXT_MAX - o, "mce_matcher_batch_commands",
                      "Commands decided per group commit.", m->batch_buckets, METRICS_BATCH_BUCKETS,
                      1, 1.0, atomic_load (&m->batch_sum), 1.0);
    o += s_histogram (text + o, S_TEXT_MAX - o, "mce_matcher_commit_seconds",
                      "Time from handing a batch to the journal writer until it is durable.",
                      m->commit_buckets, METRICS_FSYNC_BUCKETS, 50000, 1e-9,
                      atomic_load (&m->commit_sum_ns), 1e-9);
#undef S_COUNTER
#undef S_GAUGE
    struct MHD_Response *r = MHD_create_response_from_buffer (o, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_OK, r);
    MHD_destroy_response (r);
    return rc;
}

matcher_metrics_server_t *matcher_metrics_server_new (int port, const matcher_metrics_t *m)
{
    if (port <= 0)
        return NULL;
    matcher_metrics_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->m = m;
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                                     NULL, s_access, self, MHD_OPTION_SOCK_ADDR, &addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64, MHD_OPTION_END);
    if (!self->daemon) {
        log_error ("matcher", "metrics: cannot listen on 127.0.0.1:%d", port);
        free (self);
        return NULL;
    }
    log_info ("matcher", "metrics on http://127.0.0.1:%d/metrics", port);
    return self;
}

void matcher_metrics_server_destroy (matcher_metrics_server_t **self_p)
{
    matcher_metrics_server_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}

void matcher_metrics_hash (matcher_metrics_t *m, uint64_t seq, uint64_t hash)
{
    atomic_fetch_add (&m->hash_version, 1);
    atomic_store (&m->hash_seq, seq);
    atomic_store (&m->hash, hash);
    atomic_fetch_add (&m->hash_version, 1);
}
