/*  gateway_worker — see gateway_worker.h.  */
#include "gateway_worker.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <stdatomic.h>
#include <string.h>

#define S_THREADS_MAX    8
#define S_CONNECT_MS     2000
#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 5000
#define S_DRAIN_MS       10000 //  at stop, how long the jobs in hand may take

struct _gateway_worker_t {
    char conninfo[1024];
    gateway_worker_connected_fn *connected;
    zsock_t *jobs; //  PUSH, to the workers
    zsock_t *done; //  PULL, from them
    zactor_t *threads[S_THREADS_MAX];
    int thread_count;
    int pending;
    int queue_max;
    _Atomic int db_up;
};

//  One worker thread: takes a job, runs it with its connection, hands it back.
static void s_worker (zsock_t *pipe, void *arg)
{
    gateway_worker_t *self = arg;
    zsock_t *jobs = zsock_new (ZMQ_PULL);
    zsock_t *done = zsock_new (ZMQ_PUSH);
    bool ok = jobs && done && zsock_connect (jobs, "inproc://gw-jobs-%p", (void *) self) == 0 &&
              zsock_connect (done, "inproc://gw-done-%p", (void *) self) == 0;
    zsock_signal (pipe, 0);          //  zactor_new waits for this one
    zsock_signal (pipe, ok ? 0 : 1); //  and gateway_worker_new for this one
    zpoller_t *poller = ok ? zpoller_new (pipe, jobs, NULL) : NULL;
    pg_t *pg = NULL;
    int64_t next_try = 0;
    int backoff_ms = S_BACKOFF_MIN_MS;
    while (poller) {
        void *which = zpoller_wait (poller, -1);
        if (which != jobs)
            break; //  $TERM, or interrupted
        gateway_job_t *job = NULL;
        if (zmq_recv (zsock_resolve (jobs), &job, sizeof job, 0) != sizeof job || !job)
            continue;
        if (pg && !pg_ok (pg) && pg_reset (pg))
            pg_destroy (&pg);
        int64_t now = clock_mono_ns ();
        if (!pg && now >= next_try) {
            char err[256];
            pg = pg_connect (self->conninfo, S_CONNECT_MS, err, sizeof err);
            if (pg && self->connected && self->connected (pg, err, sizeof err))
                pg_destroy (&pg); //  e.g. the schema could not be brought up to date
            if (pg)
                backoff_ms = S_BACKOFF_MIN_MS;
            else {
                //  Back off, so that a database outage costs one attempt per interval, not
                //  one per request; requests meanwhile are answered 503 at once.
                log_warn ("gateway", "worker: Postgres unreachable (%s); next try in %d ms", err,
                          backoff_ms);
                next_try = now + (int64_t) backoff_ms * MCE_NS_PER_MSEC;
                backoff_ms = backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : backoff_ms * 2;
            }
        }
        atomic_store (&self->db_up, pg != NULL);
        job->run (job, pg);
        zmq_send (zsock_resolve (done), &job, sizeof job, 0);
    }
    pg_destroy (&pg);
    zpoller_destroy (&poller);
    zsock_destroy (&jobs);
    zsock_destroy (&done);
}

gateway_worker_t *gateway_worker_new (const char *conninfo, int threads, int queue_max,
                                      gateway_worker_connected_fn *connected)
{
    gateway_worker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->conninfo, sizeof self->conninfo, "%s", conninfo);
    self->connected = connected;
    self->queue_max = queue_max > 0 ? queue_max : 1;
    atomic_store (&self->db_up, 1);
    self->jobs = zsock_new (ZMQ_PUSH);
    self->done = zsock_new (ZMQ_PULL);
    if (!self->jobs || !self->done ||
        zsock_bind (self->jobs, "inproc://gw-jobs-%p", (void *) self) < 0 ||
        zsock_bind (self->done, "inproc://gw-done-%p", (void *) self) < 0) {
        gateway_worker_destroy (&self);
        return NULL;
    }
    zsock_set_sndhwm (self->jobs, self->queue_max); //  submit counts; this only agrees
    if (threads < 1)
        threads = 1;
    if (threads > S_THREADS_MAX)
        threads = S_THREADS_MAX;
    for (int i = 0; i < threads; i++) {
        self->threads[i] = zactor_new (s_worker, self);
        if (!self->threads[i] || zsock_wait (self->threads[i]) != 0) {
            gateway_worker_destroy (&self);
            return NULL;
        }
        self->thread_count++;
    }
    return self;
}

void gateway_worker_destroy (gateway_worker_t **self_p)
{
    assert (self_p);
    gateway_worker_t *self = *self_p;
    if (!self)
        return;
    int64_t deadline = clock_mono_ns () + S_DRAIN_MS * MCE_NS_PER_MSEC;
    while (self->pending > 0 && clock_mono_ns () < deadline) {
        zmq_pollitem_t item = {zsock_resolve (self->done), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 100) > 0)
            gateway_worker_process (self);
    }
    if (self->pending > 0)
        log_warn ("gateway", "worker: stopping with %d jobs unfinished", self->pending);
    for (int i = 0; i < self->thread_count; i++)
        zactor_destroy (&self->threads[i]);
    zsock_destroy (&self->jobs);
    zsock_destroy (&self->done);
    free (self);
    *self_p = NULL;
}

int gateway_worker_submit (gateway_worker_t *self, gateway_job_t *job)
{
    if (self->pending >= self->queue_max)
        return -1;
    if (zmq_send (zsock_resolve (self->jobs), &job, sizeof job, ZMQ_DONTWAIT) != sizeof job)
        return -1;
    self->pending++;
    return 0;
}

void *gateway_worker_socket (gateway_worker_t *self)
{
    return zsock_resolve (self->done);
}

void gateway_worker_process (gateway_worker_t *self)
{
    gateway_job_t *job;
    while (zmq_recv (zsock_resolve (self->done), &job, sizeof job, ZMQ_DONTWAIT) == sizeof job) {
        self->pending--;
        job->done (job);
    }
}

int gateway_worker_pending (gateway_worker_t *self)
{
    return self->pending;
}

bool gateway_worker_db_up (gateway_worker_t *self)
{
    return atomic_load (&self->db_up);
}
