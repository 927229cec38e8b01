/*  persister_server — follows the matcher bus into Postgres, exactly once (DESIGN.md §5.6).

    It resumes the bus after the offset Postgres holds, gathers events into a batch (up to
    PERSISTER_BATCH_MAX, or what arrived within PERSISTER_BATCH_MS of the first), and applies
    the batch with pgstore in one transaction that also advances the offset. A crash at any
    moment leaves Postgres at the end of some whole batch, and the next start replays from
    there: no event is lost, none applies twice.

    When Postgres is unreachable the batch is kept, the position too, and it tries again with
    exponential backoff (capped); events keep arriving in the bus subscriber's queue and, past
    it, come back by replay. The log says how far behind it is, in events and in seconds.
*/
#ifndef MCE_PERSISTER_SERVER_H
#define MCE_PERSISTER_SERVER_H

#include "config.h"

#define PERSISTER_BATCH_MAX      4000
#define PERSISTER_BATCH_MS       20
#define PERSISTER_BACKOFF_MS     100 //  first retry after an outage; doubles up to the cap
#define PERSISTER_BACKOFF_CAP_MS 5000

typedef struct _persister_server_t persister_server_t;

//  Connects to Postgres (waiting with backoff until it answers, or until interrupted),
//  applies the migrations and subscribes to the bus after the stored offset. NULL on a
//  fatal error (a database newer than this binary, say).
persister_server_t *persister_server_new (const mce_config_t *cfg);
void persister_server_destroy (persister_server_t **self_p);
//  Runs until interrupted. 0, or -1 on a fatal error.
int persister_server_run (persister_server_t *self);

#endif
