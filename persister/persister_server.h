/*  persister_server — follows the matcher and settler buses into Postgres, exactly once
    (docs/architecture.md, The persister): orders, trades, epochs and settlements, and the accounts
    (docs/clearing.md): balances and their movements, deposits and withdrawals (pgstore.h).

    It resumes the bus after the offset Postgres holds, gathers events into a batch (up to
    PERSISTER_BATCH_MAX, or what arrived within PERSISTER_BATCH_MS of the first), and applies
    the batch with pgstore in one transaction that also advances the offset. A crash at any
    moment leaves Postgres at the end of some whole batch, and the next start replays from
    there: no event is lost, none applies twice.

    When Postgres is unreachable the batch is kept, the position too, and it tries again with
    exponential backoff (capped); events keep arriving in the bus subscriber's queue and, past
    it, come back by replay. The log says how far behind it is, in events and in seconds.

    Redis (when redis.url is set) comes after Postgres: each batch Postgres took goes into the
    persister's replica of the books and balances (replica.h), and then, in one transaction,
    into Redis (rstore.h). Postgres does not wait for Redis: every Redis call is bounded by a
    short timeout, and when one fails Redis is marked behind and retried with the same capped
    exponential backoff while batches keep going into Postgres and the replica; once it
    answers again, every book, order, market total, the newest trades and every balance are
    rewritten from the replica in one transaction, and batches go in one by one again. At
    start the replica is loaded from Postgres as of its offset, and Redis is only rewritten if
    its own seq says it is not at that state. Without redis.url, none of this runs.
*/
#ifndef MCE_PERSISTER_SERVER_H
#define MCE_PERSISTER_SERVER_H

#include "config.h"

#define PERSISTER_BATCH_MAX      4000
#define PERSISTER_BATCH_MS       20
#define PERSISTER_BACKOFF_MS     100 //  first retry after an outage; doubles up to the cap
#define PERSISTER_BACKOFF_CAP_MS 5000
//  How often the TTLs of the live Redis keys are set again (well within RSTORE_TTL_S)
#define PERSISTER_REDIS_REFRESH_S 3600

typedef struct _persister_server_t persister_server_t;

//  Connects to Postgres (waiting with backoff until it answers, or until interrupted),
//  applies the migrations and subscribes to the bus after the stored offset. NULL on a
//  fatal error (a database newer than this binary, say).
persister_server_t *persister_server_new (const mce_config_t *cfg);
void persister_server_destroy (persister_server_t **self_p);
//  Runs until interrupted. 0, or -1 on a fatal error.
int persister_server_run (persister_server_t *self);

#endif
