/*  matcher_server — the matcher's loop (docs/architecture.md, The matcher service): drain up to
    batch_max commands from the ROUTER, decide each, append the events to the journal, one group
    commit, then publish and reply. One thread owns everything here.

    The decisions are the engine's (engine.h): this file owns the sockets, the journal and
    snapshots, recovery, the clock the engine is told, and the turning of engine events into
    bus messages and replies.
*/
#ifndef MCE_MATCHER_SERVER_H
#define MCE_MATCHER_SERVER_H

#include "config.h"

typedef struct _matcher_server_t matcher_server_t;

//  Recovers state from the journal and binds the sockets. NULL on error (logged).
matcher_server_t *matcher_server_new (const mce_config_t *cfg);
void matcher_server_destroy (matcher_server_t **self_p);
//  Runs until interrupted (SIGINT/SIGTERM). 0 on a clean stop, -1 on a fatal error.
int matcher_server_run (matcher_server_t *self);

#endif
