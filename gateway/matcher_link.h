/*  matcher_link — the gateway's connection to the matcher (DEALER → ROUTER).

    HTTP handlers never wait for the matcher: they hand a command to the link and suspend
    their connection. The link, a czmq actor, owns the DEALER and the table of requests in
    flight (by rid); when the matcher answers, or the request times out, it calls the
    request's `done` in the link's thread, which resumes the connection. Hundreds of orders are
    thus in flight at once and the matcher's group commit amortises its fsync.
*/
#ifndef MCE_MATCHER_LINK_H
#define MCE_MATCHER_LINK_H

#include "proto.h"

//  Called once per sent command, in the link's thread: reply is the matcher's ack or reject,
//  or NULL when the matcher did not answer in time or the link is shutting down.
typedef void (matcher_link_done_fn) (void *arg, const proto_msg_t *reply);

typedef struct _matcher_link_t matcher_link_t;

matcher_link_t *matcher_link_new (const char *endpoint, int timeout_ms, int max_in_flight);
//  Stops the link; every request still in flight gets done (arg, NULL) first.
void matcher_link_destroy (matcher_link_t **self_p);
//  Sends cmd (its rid is assigned here) from the one thread that calls this (libmicrohttpd's).
//  Returns 0, or -1 when the link is overloaded or stopping (done is then not called).
int matcher_link_send (matcher_link_t *self, proto_msg_t *cmd, matcher_link_done_fn *done,
                       void *arg);
//  Requests in flight, for /api/health and metrics.
int matcher_link_in_flight (matcher_link_t *self);

#endif
