/*  broadcaster_server — mce-broadcaster's one thread: libwebsockets' event loop, with the
    matcher and settler buses and the monitors' XPUB in it.

    libwebsockets as Debian builds it has no external-poll mode, so the loop is its own: the
    ZMQ_FDs of the bus subscriptions and of the XPUB are adopted into it as raw descriptors
    (duplicates, so that libwebsockets closing them never closes ZeroMQ's), and a readable one
    means "drain that socket". A 50 ms timer drains everything too: ZMQ_FD is an edge, and a
    send (a replay request, a monitor snapshot) can consume the signal of a message already
    queued. One thread owns the read model, the channels and every session: no locks.
*/
#ifndef MCE_BROADCASTER_SERVER_H
#define MCE_BROADCASTER_SERVER_H

#include "config.h"

typedef struct _broadcaster_server_t broadcaster_server_t;

//  Listens (WebSocket, XPUB, metrics) and subscribes to both buses from their first event.
//  NULL on error, logged.
broadcaster_server_t *broadcaster_server_new (const mce_config_t *cfg);
void broadcaster_server_destroy (broadcaster_server_t **self_p);
//  Runs until interrupted. 0, or -1 on a fatal error.
int broadcaster_server_run (broadcaster_server_t *self);

#endif
