/*  gateway_worker — the gateway's slow work, off its loop: Postgres queries and argon2id
    password hashing (tens of milliseconds by design).

    A job is a struct the caller allocates with two functions: `run` on a worker thread (with
    that thread's own Postgres connection, or NULL while the database is unreachable) and
    `done` back on the gateway's thread, which typically resumes a suspended HTTP request or
    answers a native-port login. Jobs travel as pointers over inproc sockets: PUSH to the
    workers (ZeroMQ balances them), PUSH back to the loop. A job belongs to the worker between
    submit and done, to the caller otherwise. Nothing else is shared.
*/
#ifndef MCE_GATEWAY_WORKER_H
#define MCE_GATEWAY_WORKER_H

#include "pg.h"

#include <stdbool.h>

typedef struct _gateway_job_t gateway_job_t;
struct _gateway_job_t {
    void (*run) (gateway_job_t *job, pg_t *pg); //  worker thread; pg NULL = database down
    void (*done) (gateway_job_t *job);          //  the gateway's thread
};

typedef struct _gateway_worker_t gateway_worker_t;

//  Runs on a worker thread after each (re)connection, e.g. to apply migrations: 0, or -1
//  with a reason in err (the connection is then dropped and retried with backoff).
typedef int (gateway_worker_connected_fn) (pg_t *pg, char *err, size_t errlen);

//  Starts `threads` workers, each connecting to conninfo (and reconnecting with backoff), with
//  at most queue_max jobs submitted and not yet done; connected may be NULL.
gateway_worker_t *gateway_worker_new (const char *conninfo, int threads, int queue_max,
                                      gateway_worker_connected_fn *connected);
//  Lets the workers finish every job submitted, calls their done, then stops.
void gateway_worker_destroy (gateway_worker_t **self_p);
//  Queues a job. 0, or -1 when queue_max jobs are already in hand (the caller answers 503).
int gateway_worker_submit (gateway_worker_t *self, gateway_job_t *job);
//  The socket finished jobs arrive on (the loop watches its ZMQ_FD); then call
//  gateway_worker_process.
void *gateway_worker_socket (gateway_worker_t *self);
//  Calls done for every finished job waiting.
void gateway_worker_process (gateway_worker_t *self);
//  Jobs submitted and not yet done.
int gateway_worker_pending (gateway_worker_t *self);
//  Whether the last attempt of any worker to reach Postgres succeeded (for /api/health).
bool gateway_worker_db_up (gateway_worker_t *self);

#endif
