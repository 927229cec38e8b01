/*  settler_link — the gateway's connection to the settler's admin port (a DEALER to
    settler.commands, the settler's ROUTER), for the admin routes that list settlements not
    yet confirmed and retry failed ones.

    A command (settler_command) goes out at once and the request waits, like a matcher
    command, without blocking the loop. The settler answers one command with one multipart
    message: a `settlement` frame per settlement concerned, then a `settler_reply` frame with
    the same rid. The link decodes them and calls the request's done with the settlements and
    the reply, or with NULLs when the settler did not answer within the timeout (or the link is
    shutting down). Admin commands are few: a small table of slots, not a ring.

    The link belongs to the gateway's one thread. Its ZMQ_FD goes in the loop's epoll set; as
    for the matcher link, a send can consume the socket's signal, so the loop calls
    settler_link_process before waiting whenever settler_link_sent says something went out.
*/
#ifndef MCE_SETTLER_LINK_H
#define MCE_SETTLER_LINK_H

#include "curve.h"
#include "proto.h"

#include <stdbool.h>

#define SETTLER_LINK_SLOTS 32   //  admin commands in flight at once, at most
#define SETTLER_LINK_MAX   1000 //  settlements one answer may carry (the settler's own bound)

//  reply is the settler's settler_reply and settlements the count frames before it (decoded),
//  or both NULL (count 0) when the settler did not answer in time. Borrowed for the call.
typedef void (settler_link_done_fn) (void *arg, const proto_settler_reply_t *reply,
                                     const proto_settlement_t *settlements, size_t count);

typedef struct _settler_link_t settler_link_t;

//  A link to endpoint; an empty endpoint makes a link that refuses every command (the settler
//  is not configured). A CURVE client with curve (NULL: none). NULL when the socket cannot be
//  made.
settler_link_t *settler_link_new (const char *endpoint, const curve_t *curve, int timeout_ms);
//  Every command still waiting gets done (arg, NULL, NULL, 0) first.
void settler_link_destroy (settler_link_t **self_p);
//  Sends cmd (a settler_command; its rid is assigned here). 0, or -1 when the settler is not
//  configured, not connected, or too many commands wait (done is then not called).
int settler_link_send (settler_link_t *self, proto_msg_t *cmd, settler_link_done_fn *done,
                       void *arg);
//  The socket's ZMQ_FD (-1 when not configured), and whether a command went out since the
//  last settler_link_process.
int settler_link_fd (settler_link_t *self);
bool settler_link_sent (settler_link_t *self);
//  Reads every answer waiting and calls their done; then times out what is overdue.
void settler_link_process (settler_link_t *self);
//  Milliseconds until the oldest command times out (-1 when none waits).
long settler_link_wait_ms (settler_link_t *self);

#endif
