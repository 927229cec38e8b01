/*  matcher_link — the gateway's connection to the matcher (DEALER → ROUTER).

    Handlers never wait for the matcher: they hand a command to the link, which sends it by
    the end of the loop's turn (together with the others of that turn), and suspend their
    connection. The gateway's loop polls the link's socket; each reply
    finds its request by rid and calls the request's `done`, which resumes the connection.
    Hundreds of orders are thus in flight at once and the matcher's group commit amortises its
    fsync. The link belongs to the gateway's one thread: no locks, no hand-offs.

    Requests in flight live in a ring indexed by rid: rids are handed out in order and every
    request has the same timeout, so the oldest is always at the tail and expiry is a walk
    from there. A rid whose slot is still taken (the ring is 4 × max_in_flight) is refused as
    overload rather than waiting.
*/
#ifndef MCE_MATCHER_LINK_H
#define MCE_MATCHER_LINK_H

#include "curve.h"
#include "proto.h"

#include <stdbool.h>

//  Called once per sent command: reply is the matcher's ack or reject, or NULL when the
//  matcher did not answer in time or the link is shutting down.
typedef void (matcher_link_done_fn) (void *arg, const proto_msg_t *reply);

typedef struct _matcher_link_t matcher_link_t;

//  Connects to endpoint, as a CURVE client with curve (NULL: none). With batch, a loop turn's
//  commands go in one batch frame (proto.h); without (the matcher's fsync = always: a commit
//  per command), one frame each. NULL on error (logged).
matcher_link_t *matcher_link_new (const char *endpoint, const curve_t *curve, int timeout_ms,
                                  int max_in_flight, bool batch);
//  Every request still in flight gets done (arg, NULL) first.
void matcher_link_destroy (matcher_link_t **self_p);
//  Queues cmd (its rid is assigned here) to go out with the next matcher_link_flush. 0, or -1
//  when the link is overloaded (done is then not called).
int matcher_link_send (matcher_link_t *self, proto_msg_t *cmd, matcher_link_done_fn *done,
                       void *arg);
//  Sends every queued command: the loop calls it once per turn, after its handlers ran (and
//  matcher_link_send itself when many wait).
void matcher_link_flush (matcher_link_t *self);
//  Reads every reply waiting and calls their done; then times out what is overdue.
void matcher_link_process (matcher_link_t *self);
//  The socket's ZMQ_FD, for a loop on epoll: readable when replies may be waiting. A send
//  can consume that signal while a reply is already queued, so a loop that waits on the fd
//  must call matcher_link_process before waiting whenever matcher_link_sent says a command
//  went out since the last call.
int matcher_link_fd (matcher_link_t *self);
bool matcher_link_sent (matcher_link_t *self);
//  Milliseconds until the oldest request times out (-1 when none is in flight).
long matcher_link_wait_ms (matcher_link_t *self);
//  Requests in flight, and replies seen in all, for /api/health and metrics.
int matcher_link_in_flight (matcher_link_t *self);
uint64_t matcher_link_timeouts (matcher_link_t *self);

#endif
