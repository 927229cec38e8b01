/*  router — see router.h.  */
#include "router.h"

int router_recv (void *sock, zmq_msg_t *id, zmq_msg_t *body, int flags)
{
    if (zmq_msg_recv (id, sock, flags) < 0)
        return -1;
    int frames = 0;
    zmq_msg_t *last = id;
    while (zmq_msg_more (last)) {
        zmq_msg_close (body);
        zmq_msg_init (body);
        if (zmq_msg_recv (body, sock, 0) < 0)
            break;
        last = body;
        frames++;
    }
    return frames;
}
