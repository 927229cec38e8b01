/*  persister_server — see persister_server.h.  */
#include "persister_server.h"
#include "bus_sub.h"
#include "clock.h"
#include "log.h"
#include "metrics_http.h"
#include "pgstore.h"
#include "replica.h"
#include "rstore.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define S_LAG_LOG_MS 5000 //  how often a lag is reported while there is one
#define S_FATAL      -2   //  s_flush: the process cannot go on

struct _persister_server_t {
    const mce_config_t *cfg;
    pgstore_t *store;
    bus_sub_t *sub;
    curve_t *curve; //  our key, for both buses
    proto_msg_t *batch;
    size_t count;
    bus_sub_t *ssub;     //  the settler's bus (stream s): settlements, settled epochs
    proto_msg_t *sbatch; //  its events not yet applied (PERSISTER_BATCH_MAX at most)
    size_t scount;
    int64_t batch_started; //  mono ns of the batch's first event
    int backoff_ms;
    int64_t retry_at; //  mono ns: no attempt before (after a failure)
    int64_t last_ts;  //  wall ns of the last applied event, for the lag in seconds
    int64_t next_lag_log;
    //  Redis (both NULL when redis.url is empty)
    replica_t *replica;
    rstore_t *rstore;
    bool redis_synced;       //  Redis holds the replica's state: batches go in one by one
    bool redis_must_rewrite; //  a write failed: whatever Redis's seq says, rewrite it
    int redis_backoff_ms;
    int64_t redis_retry_at;     //  mono ns: no attempt before
    int64_t redis_down_since;   //  mono ns of the first failure of this outage; 0 when up
    int64_t redis_next_refresh; //  mono ns: when the TTLs of the live keys are set again
    int64_t replica_ts;         //  wall ns of the newest event in the replica
    int64_t redis_ts;           //  ... and in Redis
    //  for the metrics thread
    _Atomic uint64_t m_events, m_batches, m_failures, m_seq, m_behind, m_lag_ms, m_up;
    _Atomic uint64_t m_settler_events, m_settler_seq;
    _Atomic uint64_t m_redis_up, m_redis_failures, m_redis_rewrites, m_redis_seq, m_redis_behind,
        m_redis_lag_ms, m_resting;
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
    fprintf (
        f,
        "# HELP mce_persister_settler_events_total Settler bus events applied to Postgres.\n"
        "# TYPE mce_persister_settler_events_total counter\n"
        "mce_persister_settler_events_total %llu\n"
        "# HELP mce_persister_settler_applied_seq Last settler seq in Postgres.\n"
        "# TYPE mce_persister_settler_applied_seq gauge\nmce_persister_settler_applied_seq %llu\n",
        (unsigned long long) atomic_load (&self->m_settler_events),
        (unsigned long long) atomic_load (&self->m_settler_seq));
    if (!self->rstore)
        return;
    fprintf (f,
             "# HELP mce_persister_redis_up Whether Redis holds the current state and takes "
             "batches.\n"
             "# TYPE mce_persister_redis_up gauge\nmce_persister_redis_up %llu\n"
             "# HELP mce_persister_redis_failures_total Redis writes or connections that failed.\n"
             "# TYPE mce_persister_redis_failures_total counter\n"
             "mce_persister_redis_failures_total %llu\n"
             "# HELP mce_persister_redis_rewrites_total Times the books were rewritten whole.\n"
             "# TYPE mce_persister_redis_rewrites_total counter\n"
             "mce_persister_redis_rewrites_total %llu\n"
             "# HELP mce_persister_redis_applied_seq Last matcher seq in Redis.\n"
             "# TYPE mce_persister_redis_applied_seq gauge\nmce_persister_redis_applied_seq %llu\n"
             "# HELP mce_persister_redis_lag_events Events in Postgres not yet in Redis.\n"
             "# TYPE mce_persister_redis_lag_events gauge\nmce_persister_redis_lag_events %llu\n"
             "# HELP mce_persister_redis_lag_seconds Age of the newest event in Redis while it "
             "is behind.\n"
             "# TYPE mce_persister_redis_lag_seconds gauge\nmce_persister_redis_lag_seconds %.3f\n"
             "# HELP mce_persister_resting_orders Resting orders in the persister's replica.\n"
             "# TYPE mce_persister_resting_orders gauge\nmce_persister_resting_orders %llu\n",
             (unsigned long long) atomic_load (&self->m_redis_up),
             (unsigned long long) atomic_load (&self->m_redis_failures),
             (unsigned long long) atomic_load (&self->m_redis_rewrites),
             (unsigned long long) atomic_load (&self->m_redis_seq),
             (unsigned long long) atomic_load (&self->m_redis_behind),
             (double) atomic_load (&self->m_redis_lag_ms) / 1000.0,
             (unsigned long long) atomic_load (&self->m_resting));
}

//  Event time of a message, when it has one (commands and events carry ts).
static int64_t s_ts (const proto_msg_t *m)
{
    switch (m->kind) {
        case PROTO_order_accepted:
            return m->order_accepted.ts;
        case PROTO_trade:
            return m->trade.ts;
        case PROTO_balance:
            return m->balance.ts;
        case PROTO_clock:
            return m->clock.ts;
        default:
            return 0;
    }
}

//  --------------------------------------------------------------------------------------------
//  Redis: the replica follows Postgres batch by batch; Redis follows the replica when it can.

static int s_next_backoff (int ms)
{
    return ms * 2 > PERSISTER_BACKOFF_CAP_MS ? PERSISTER_BACKOFF_CAP_MS : ms * 2;
}

//  A Redis call failed: Redis falls behind (Postgres does not wait for it) until a retry after
//  the backoff brings it back.
static void s_redis_down (persister_server_t *self)
{
    int64_t now = clock_mono_ns ();
    atomic_fetch_add (&self->m_redis_failures, 1);
    atomic_store (&self->m_redis_up, 0);
    if (!self->redis_down_since) {
        self->redis_down_since = now;
        log_warn ("persister",
                  "redis: %s; Postgres goes on without it, the books are rewritten when it is "
                  "back; next try in %d ms",
                  rstore_error (self->rstore), self->redis_backoff_ms);
    }
    else
        log_warn ("persister", "redis: still down (%s); next try in %d ms",
                  rstore_error (self->rstore), self->redis_backoff_ms);
    self->redis_synced = false;
    self->redis_retry_at = now + (int64_t) self->redis_backoff_ms * MCE_NS_PER_MSEC;
    self->redis_backoff_ms = s_next_backoff (self->redis_backoff_ms);
}

//  Brings Redis to the replica's state: it may be there already (same seq, nothing failed since),
//  else every book is rewritten. 0, or -1 (still unreachable, or refusing).
static int s_redis_sync (persister_server_t *self)
{
    if (!rstore_ok (self->rstore) && rstore_connect (self->rstore) != 0)
        return -1;
    int64_t seq = rstore_seq (self->rstore);
    if (seq == -1)
        return -1;
    uint64_t want = replica_seq (self->replica);
    bool rewrite = self->redis_must_rewrite || seq < 0 || (uint64_t) seq != want;
    if (rewrite) {
        if (rstore_rewrite (self->rstore, self->replica) != 0)
            return -1;
        atomic_fetch_add (&self->m_redis_rewrites, 1);
    }
    int64_t now = clock_mono_ns ();
    char what[160];
    if (rewrite)
        snprintf (what, sizeof what,
                  "book rewritten: %zu orders, %zu users' balances (Redis was at seq %" PRId64 ")",
                  replica_order_count (self->replica), replica_balance_count (self->replica), seq);
    else
        snprintf (what, sizeof what, "nothing to rewrite");
    if (self->redis_down_since)
        log_info ("persister", "redis: back after %.1f s; %s; at seq %" PRIu64,
                  (double) (now - self->redis_down_since) / 1e9, what, want);
    else
        log_info ("persister", "redis: ready; %s; at seq %" PRIu64, what, want);
    self->redis_synced = true;
    self->redis_must_rewrite = false;
    self->redis_down_since = 0;
    self->redis_backoff_ms = PERSISTER_BACKOFF_MS;
    self->redis_next_refresh = now + (int64_t) PERSISTER_REDIS_REFRESH_S * MCE_NS_PER_SEC;
    self->redis_ts = self->replica_ts;
    atomic_store (&self->m_redis_seq, want);
    atomic_store (&self->m_redis_up, 1);
    return 0;
}

//  A batch Postgres took: into the replica, then (when it is in step) into Redis. 0, or -1 when
//  the replica runs out of memory (fatal: a restart loads it again from Postgres).
static int s_redis_batch (persister_server_t *self, const proto_msg_t *batch, size_t count)
{
    if (!self->replica)
        return 0;
    if (replica_apply (self->replica, batch, count) != 0) {
        log_error ("persister", "redis: out of memory in the replica at seq %" PRIu64,
                   proto_msg_seq (&batch[count - 1]));
        return -1;
    }
    for (size_t i = count; i-- > 0;) {
        int64_t ts = s_ts (&batch[i]);
        if (ts) {
            self->replica_ts = ts;
            break;
        }
    }
    atomic_store (&self->m_resting, replica_order_count (self->replica));
    if (self->redis_synced) {
        if (rstore_apply (self->rstore, self->replica) == 0) {
            atomic_store (&self->m_redis_seq, replica_seq (self->replica));
            self->redis_ts = self->replica_ts;
            log_debug ("persister", "redis: at seq %" PRIu64, replica_seq (self->replica));
        }
        else {
            self->redis_must_rewrite = true;
            s_redis_down (self);
        }
    }
    //  Redis has them, or a rewrite will
    replica_clear_changes (self->replica);
    return 0;
}

//  Between batches: retries after an outage, and keeps the live keys' TTLs from running out.
static void s_redis_tick (persister_server_t *self)
{
    if (!self->rstore)
        return;
    int64_t now = clock_mono_ns ();
    if (!self->redis_synced) {
        if (now >= self->redis_retry_at && s_redis_sync (self) != 0)
            s_redis_down (self);
        return;
    }
    if (now < self->redis_next_refresh)
        return;
    self->redis_next_refresh = now + (int64_t) PERSISTER_REDIS_REFRESH_S * MCE_NS_PER_SEC;
    if (rstore_refresh (self->rstore, self->replica) != 0)
        s_redis_down (self); //  the state is still right: the seq tells on reconnection
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

//  With redis.url set: the replica, loaded from Postgres as of its offset, and a first try
//  at Redis (which may fail: Postgres does not wait for Redis). 0, or -1 when fatal.
static int s_redis_start (persister_server_t *self, int64_t *offset)
{
    char err[512];
    self->rstore = rstore_new (self->cfg->redis.url, err, sizeof err);
    if (!self->rstore) {
        log_error ("persister", "%s", err);
        return -1;
    }
    self->replica = replica_new (REPLICA_TRADES_DEFAULT);
    if (!self->replica) {
        log_error ("persister", "redis: out of memory");
        return -1;
    }
    if (pgstore_load_replica (self->store, "m", self->replica, offset) != 0) {
        log_error ("persister", "cannot load the resting orders: %s", pgstore_error (self->store));
        return -1;
    }
    self->replica_ts = clock_wall_ns ();
    atomic_store (&self->m_resting, replica_order_count (self->replica));
    log_info ("persister",
              "replica loaded at seq %" PRId64
              ": %zu resting orders, %zu markets, %zu users' balances; Redis at %s",
              *offset, replica_order_count (self->replica), replica_market_count (self->replica),
              replica_balance_count (self->replica), self->cfg->redis.url);
    self->redis_backoff_ms = PERSISTER_BACKOFF_MS;
    if (s_redis_sync (self) != 0)
        s_redis_down (self);
    return 0;
}

persister_server_t *persister_server_new (const mce_config_t *cfg)
{
    persister_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->backoff_ms = PERSISTER_BACKOFF_MS;
    self->batch = calloc (PERSISTER_BATCH_MAX, sizeof *self->batch);
    self->sbatch = calloc (PERSISTER_BATCH_MAX, sizeof *self->sbatch);
    bool fatal;
    self->store = self->batch && self->sbatch ? s_connect (cfg, &fatal) : NULL;
    if (!self->store) {
        persister_server_destroy (&self);
        return NULL;
    }
    int64_t offset;
    if (cfg->redis.url[0]) {
        if (s_redis_start (self, &offset) != 0) {
            persister_server_destroy (&self);
            return NULL;
        }
    }
    else {
        offset = pgstore_offset (self->store, "m");
        if (offset < 0) {
            log_error ("persister", "cannot read the bus offset: %s", pgstore_error (self->store));
            persister_server_destroy (&self);
            return NULL;
        }
        log_info ("persister", "redis.url is empty: Postgres only");
    }
    self->curve = curve_new (cfg, "persister", false);
    self->sub = self->curve
                    ? bus_sub_new_for (cfg, self->curve, "m", "persister", (uint64_t) offset)
                    : NULL;
    int64_t soffset = pgstore_offset (self->store, "s");
    self->ssub = self->sub && soffset >= 0
                     ? bus_sub_new_for (cfg, self->curve, "s", "persister", (uint64_t) soffset)
                     : NULL;
    if (!self->sub || !self->ssub) {
        persister_server_destroy (&self);
        return NULL;
    }
    atomic_store (&self->m_seq, (uint64_t) offset);
    atomic_store (&self->m_settler_seq, (uint64_t) soffset);
    atomic_store (&self->m_up, 1);
    self->metrics = metrics_http_new ("persister", cfg->metrics_address,
                                      (int) cfg->persister.metrics_port, s_render, self);
    log_info ("persister",
              "Postgres ready; following stream m after seq %" PRId64 " and s after seq %" PRId64,
              offset, soffset);
    return self;
}

void persister_server_destroy (persister_server_t **self_p)
{
    persister_server_t *self = *self_p;
    if (!self)
        return;
    metrics_http_destroy (&self->metrics);
    bus_sub_destroy (&self->sub);
    bus_sub_destroy (&self->ssub);
    curve_destroy (&self->curve);
    free (self->sbatch);
    rstore_destroy (&self->rstore);
    replica_destroy (&self->replica);
    pgstore_destroy (&self->store);
    free (self->batch);
    free (self);
    *self_p = NULL;
}

//  Applies the batch, to Postgres, then to the replica and Redis. 0 when done (or empty), -1
//  when it must be tried again later, S_FATAL when the process cannot go on.
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
    if (s_redis_batch (self, self->batch, self->count) != 0)
        return S_FATAL;
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
    self->backoff_ms = s_next_backoff (self->backoff_ms);
    return -1;
}

//  Applies the settler's events gathered so far, in their own transaction with stream s's
//  offset. Shares the backoff with the matcher stream: Postgres is down for both. 0 or -1.
static int s_flush_settler (persister_server_t *self)
{
    if (self->scount == 0 || clock_mono_ns () < self->retry_at)
        return self->scount ? -1 : 0;
    if (!pgstore_ok (self->store) && pgstore_reconnect (self->store))
        return -1; //  s_flush reports and backs off
    if (pgstore_apply (self->store, "s", self->sbatch, self->scount)) {
        log_warn ("persister", "settler batch of %zu events (seq %" PRIu64 "..) not applied: %s",
                  self->scount, proto_msg_seq (&self->sbatch[0]), pgstore_error (self->store));
        atomic_fetch_add (&self->m_failures, 1);
        self->retry_at = clock_mono_ns () + (int64_t) self->backoff_ms * MCE_NS_PER_MSEC;
        self->backoff_ms = s_next_backoff (self->backoff_ms);
        return -1;
    }
    atomic_fetch_add (&self->m_settler_events, self->scount);
    atomic_store (&self->m_settler_seq, proto_msg_seq (&self->sbatch[self->scount - 1]));
    self->scount = 0;
    return 0;
}

//  Takes what the settler's bus has, without waiting (its events are few).
static int s_gather_settler (persister_server_t *self)
{
    bus_event_t ev;
    int rc;
    while (self->scount < PERSISTER_BATCH_MAX && (rc = bus_sub_recv (self->ssub, &ev, 0)) == 1)
        self->sbatch[self->scount++] = ev.msg;
    return self->scount < PERSISTER_BATCH_MAX && rc < 0 ? -1 : 0;
}

static void s_report_lag (persister_server_t *self)
{
    int64_t now = clock_mono_ns ();
    uint64_t head = bus_sub_head_seq (self->sub), last = bus_sub_last_seq (self->sub);
    uint64_t behind = head > last ? head - last : 0;
    behind += self->count;
    atomic_store (&self->m_behind, behind);
    if (self->rstore) {
        uint64_t redis_seq = atomic_load (&self->m_redis_seq);
        uint64_t redis_behind = self->redis_synced ? 0 : replica_seq (self->replica) - redis_seq;
        atomic_store (&self->m_redis_behind, redis_behind);
        atomic_store (&self->m_redis_lag_ms,
                      redis_behind && self->redis_ts
                          ? (uint64_t) ((clock_wall_ns () - self->redis_ts) / MCE_NS_PER_MSEC)
                          : 0);
    }
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
    if (self->rstore && !self->redis_synced)
        log_info ("persister", "redis: behind by %" PRIu64 " events (%.1f s), down for %.1f s",
                  atomic_load (&self->m_redis_behind),
                  (double) atomic_load (&self->m_redis_lag_ms) / 1000.0,
                  (double) (now - self->redis_down_since) / 1e9);
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
            if (s_gather_settler (self))
                return -1;
            if (self->scount == PERSISTER_BATCH_MAX)
                break;
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
        if (s_flush (self) == S_FATAL)
            return -1;
        s_flush_settler (self);
        s_redis_tick (self);
        s_report_lag (self);
    }
    //  Stop: apply what is in hand if Postgres takes it (otherwise the next start replays it).
    if (self->scount && pgstore_ok (self->store))
        pgstore_apply (self->store, "s", self->sbatch, self->scount);
    if (self->count && pgstore_ok (self->store) &&
        pgstore_apply (self->store, "m", self->batch, self->count) == 0)
        s_redis_batch (self, self->batch, self->count);
    log_info ("persister", "stopping after %" PRIu64 " events in %" PRIu64 " batches",
              atomic_load (&self->m_events), atomic_load (&self->m_batches));
    return 0;
}
