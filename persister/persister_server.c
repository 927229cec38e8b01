/*  persister_server — see persister_server.h.  */
#include "persister_server.h"
#include "bus_sub.h"
#include "clock.h"
#include "log.h"
#include "metrics_http.h"
#include "pgstore.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define S_LAG_LOG_MS 5000 //  how often a lag is reported while there is one

struct _persister_server_t {
    const mce_config_t *cfg;
    pgstore_t *store;
    bus_sub_t *sub;
    proto_msg_t *batch;
    size_t count;
    int64_t batch_started; //  mono ns of the batch's first event
    int backoff_ms;
    int64_t retry_at; //  mono ns: no attempt before (after a failure)
    int64_t last_ts;  //  wall ns of the last applied event, for the lag in seconds
    int64_t next_lag_log;
    //  for the metrics thread
    _Atomic uint64_t m_events, m_batches, m_failures, m_seq, m_behind, m_lag_ms, m_up;
    metrics_http_t *metrics;
};

//  GET /metrics (on the metrics thread): what was applied, how far behind, and whether
//  Postgres takes batches.
static void s_render (void *arg, FILE *f)
{
    persister_server_t *self = arg;
    fprintf (f,
             "# HELP mce_persister_events_total Events applied to Postgres.\n"
             "# TYPE mce_persister_events_total counter\nmce_persister_events_total %llu\n"
             "# HELP mce_persister_batches_total Transactions committed.\n"
             "# TYPE mce_persister_batches_total counter\nmce_persister_batches_total %llu\n"
             "# HELP mce_persister_failures_total Batches Postgres did not take (retried).\n"
             "# TYPE mce_persister_failures_total counter\nmce_persister_failures_total %llu\n"
             "# HELP mce_persister_applied_seq Last matcher seq in Postgres.\n"
             "# TYPE mce_persister_applied_seq gauge\nmce_persister_applied_seq %llu\n"
             "# HELP mce_persister_lag_events Matcher events not yet in Postgres.\n"
             "# TYPE mce_persister_lag_events gauge\nmce_persister_lag_events %llu\n"
             "# HELP mce_persister_lag_seconds Age of the newest event applied.\n"
             "# TYPE mce_persister_lag_seconds gauge\nmce_persister_lag_seconds %.3f\n"
             "# HELP mce_persister_postgres_up Whether the last batch went in.\n"
             "# TYPE mce_persister_postgres_up gauge\nmce_persister_postgres_up %llu\n",
             (unsigned long long) atomic_load (&self->m_events),
             (unsigned long long) atomic_load (&self->m_batches),
             (unsigned long long) atomic_load (&self->m_failures),
             (unsigned long long) atomic_load (&self->m_seq),
             (unsigned long long) atomic_load (&self->m_behind),
             (double) atomic_load (&self->m_lag_ms) / 1000.0,
             (unsigned long long) atomic_load (&self->m_up));
}

//  Waits with backoff until Postgres answers (or the process is interrupted).
static pgstore_t *s_connect (const mce_config_t *cfg, bool *fatal)
{
    int backoff = PERSISTER_BACKOFF_MS;
    *fatal = false;
    while (!zsys_interrupted) {
        char err[512];
        pgstore_t *store = pgstore_new (cfg->postgres.url, err, sizeof err);
        if (store)
            return store;
        if (strstr (err, "refusing to start")) {
            log_error ("persister", "%s", err);
            *fatal = true;
            return NULL;
        }
        log_warn ("persister", "Postgres unreachable (%s); retrying in %d ms", err, backoff);
        zclock_sleep (backoff);
        backoff = backoff * 2 > PERSISTER_BACKOFF_CAP_MS ? PERSISTER_BACKOFF_CAP_MS : backoff * 2;
    }
    return NULL;
}

persister_server_t *persister_server_new (const mce_config_t *cfg)
{
    persister_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->backoff_ms = PERSISTER_BACKOFF_MS;
    self->batch = calloc (PERSISTER_BATCH_MAX, sizeof *self->batch);
    bool fatal;
    self->store = self->batch ? s_connect (cfg, &fatal) : NULL;
    if (!self->store) {
        persister_server_destroy (&self);
        return NULL;
    }
    int64_t offset = pgstore_offset (self->store, "m");
    if (offset < 0) {
        log_error ("persister", "cannot read the bus offset: %s", pgstore_error (self->store));
        persister_server_destroy (&self);
        return NULL;
    }
    self->sub = bus_sub_new_for (cfg, "m", "persister", (uint64_t) offset);
    if (!self->sub) {
        persister_server_destroy (&self);
        return NULL;
    }
    atomic_store (&self->m_seq, (uint64_t) offset);
    atomic_store (&self->m_up, 1);
    self->metrics =
        metrics_http_new ("persister", (int) cfg->persister.metrics_port, s_render, self);
    log_info ("persister", "Postgres ready; following stream m after seq %" PRId64, offset);
    return self;
}

void persister_server_destroy (persister_server_t **self_p)
{
    persister_server_t *self = *self_p;
    if (!self)
        return;
    metrics_http_destroy (&self->metrics);
    bus_sub_destroy (&self->sub);
    pgstore_destroy (&self->store);
    free (self->batch);
    free (self);
    *self_p = NULL;
}

//  Applies the batch. 0 when done (or empty), -1 when it must be tried again later.
static int s_flush (persister_server_t *self)
{
    if (self->count == 0)
        return 0;
    if (clock_mono_ns () < self->retry_at)
        return -1;
    if (!pgstore_ok (self->store) && pgstore_reconnect (self->store)) {
        log_warn ("persister", "Postgres still unreachable (%s); next try in %d ms",
                  pgstore_error (self->store), self->backoff_ms);
        goto backoff;
    }
    if (pgstore_apply (self->store, "m", self->batch, self->count)) {
        log_warn ("persister",
                  "batch of %zu events (seq %" PRIu64 "..) not applied: %s; next "
                  "try in %d ms",
                  self->count, proto_msg_seq (&self->batch[0]), pgstore_error (self->store),
                  self->backoff_ms);
        goto backoff;
    }
    if (self->backoff_ms > PERSISTER_BACKOFF_MS)
        log_info ("persister", "Postgres is back: applied through seq %" PRIu64,
                  proto_msg_seq (&self->batch[self->count - 1]));
    self->backoff_ms = PERSISTER_BACKOFF_MS;
    self->retry_at = 0;
    uint64_t through = proto_msg_seq (&self->batch[self->count - 1]);
    atomic_fetch_add (&self->m_events, self->count);
    atomic_fetch_add (&self->m_batches, 1);
    atomic_store (&self->m_seq, through);
    log_debug ("persister", "applied %zu events through seq %" PRIu64, self->count, through);
    atomic_store (&self->m_up, 1);
    self->count = 0;
    return 0;
backoff:
    atomic_fetch_add (&self->m_failures, 1);
    atomic_store (&self->m_up, 0);
    self->retry_at = clock_mono_ns () + (int64_t) self->backoff_ms * MCE_NS_PER_MSEC;
    self->backoff_ms = self->backoff_ms * 2 > PERSISTER_BACKOFF_CAP_MS ? PERSISTER_BACKOFF_CAP_MS
                                                                       : self->backoff_ms * 2;
    return -1;
}

//  Event time of a message, when it has one (commands and events carry ts).
static int64_t s_ts (const proto_msg_t *m)
{
    switch (m->kind) {
        case PROTO_order_accepted:
            return m->order_accepted.ts;
        case PROTO_trade:
            return m->trade.ts;
        case PROTO_clock:
            return m->clock.ts;
        default:
            return 0;
    }
}

static void s_report_lag (persister_server_t *self)
{
    int64_t now = clock_mono_ns ();
    uint64_t head = bus_sub_head_seq (self->sub), last = bus_sub_last_seq (self->sub);
    uint64_t behind = head > last ? head - last : 0;
    behind += self->count;
    atomic_store (&self->m_behind, behind);
    atomic_store (&self->m_lag_ms,
                  behind && self->last_ts
                      ? (uint64_t) ((clock_wall_ns () - self->last_ts) / MCE_NS_PER_MSEC)
                      : 0);
    if (now < self->next_lag_log)
        return;
    self->next_lag_log = now + S_LAG_LOG_MS * MCE_NS_PER_MSEC;
    if (behind || self->backoff_ms > PERSISTER_BACKOFF_MS)
        log_info ("persister",
                  "behind by %" PRIu64 " events (%.1f s); %" PRIu64 " events applied in %" PRIu64
                  " batches",
                  behind, self->last_ts ? (double) (clock_wall_ns () - self->last_ts) / 1e9 : 0.0,
                  atomic_load (&self->m_events), atomic_load (&self->m_batches));
}

int persister_server_run (persister_server_t *self)
{
    while (!zsys_interrupted) {
        //  Gather until the batch is full or due (PERSISTER_BATCH_MS after its first event).
        //  While a retry is pending the batch may still grow: it is applied whole later.
        while (self->count < PERSISTER_BATCH_MAX) {
            int64_t now = clock_mono_ns ();
            long wait_ms = 100;
            if (self->count) {
                int64_t due = self->batch_started + PERSISTER_BATCH_MS * MCE_NS_PER_MSEC;
                if (self->retry_at > due)
                    due = self->retry_at;
                if (now >= due)
                    break;
                wait_ms = (long) ((due - now) / MCE_NS_PER_MSEC) + 1;
            }
            bus_event_t ev;
            int rc = bus_sub_recv (self->sub, &ev, (int) wait_ms);
            if (rc < 0)
                return -1;
            if (rc == 0) {
                if (!self->count || zsys_interrupted)
                    break; //  nothing at all: go round (lag report, interrupt check)
                continue;
            }
            if (!self->count)
                self->batch_started = clock_mono_ns ();
            self->batch[self->count++] = ev.msg;
            int64_t ts = s_ts (&ev.msg);
            if (ts)
                self->last_ts = ts;
        }
        //  A full batch waiting for its retry: nothing to do until then (the subscriber's
        //  queue holds what arrives meanwhile, and replay what overflows it).
        int64_t now = clock_mono_ns ();
        if (self->count == PERSISTER_BATCH_MAX && now < self->retry_at) {
            int64_t ms = (self->retry_at - now) / MCE_NS_PER_MSEC + 1;
            zclock_sleep ((int) (ms < 100 ? ms : 100));
        }
        s_flush (self);
        s_report_lag (self);
    }
    //  Stop: apply what is in hand if Postgres takes it (otherwise the next start replays it).
    if (self->count && pgstore_ok (self->store))
        pgstore_apply (self->store, "m", self->batch, self->count);
    log_info ("persister", "stopping after %" PRIu64 " events in %" PRIu64 " batches",
              atomic_load (&self->m_events), atomic_load (&self->m_batches));
    return 0;
}
