/*  router — one message off a ROUTER socket, as the services read their requests: the routing
    id, then the frames after it, of which a well-formed request has exactly one. Frames past
    the first are drained, so a malformed message never leaves half of itself in the socket.
*/
#ifndef MCE_ROUTER_H
#define MCE_ROUTER_H

#include <zmq.h>

//  Reads the routing id into id and the last frame after it into body (both initialised by
//  the caller, who closes them). Returns how many frames followed the id, or -1 when nothing
//  was waiting (flags ZMQ_DONTWAIT) or the read failed.
int router_recv (void *sock, zmq_msg_t *id, zmq_msg_t *body, int flags);

#endif
