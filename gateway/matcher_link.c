/*  matcher_link — see matcher_link.h.

    The caller's thread and the actor talk over an inproc PAIR: [rid][done][arg][command].
    Only the actor touches the pending table, so it needs no lock; the in-flight count is an
    atomic so the caller can refuse work beyond max_in_flight without a round trip.
*/
#include "matcher_link.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#define S_SWEEP_MS 50 //  how often timed-out requests are looked for

typedef struct {
    uint64_t rid;
    matcher_link_done_fn *done;
    void *arg;
    int64_t deadline;
} s_pending_t;

typedef struct {
    char endpoint[256];
    int timeout_ms;
    _Atomic int in_flight;
} s_shared_t;

struct _matcher_link_t {
    zactor_t *actor;
    zsock_t *pair; //  used only by the sending thread
    s_shared_t *shared;
    uint64_t next_rid;
    int max_in_flight;
};

static void s_finish (zhashx_t *pending, s_pending_t *p, const proto_msg_t *reply,
                      s_shared_t *shared)
{
    p->done (p->arg, reply);
    atomic_fetch_sub (&shared->in_flight, 1);
    zhashx_delete (pending, &p->rid);
}

static void *s_key_dup (const void *key)
{
    return (void *) key; //  keys point into their s_pending_t value, which owns them
}

static void s_key_free (void **key)
{
    *key = NULL;
}

static size_t s_key_hash (const void *key)
{
    uint64_t v = *(const uint64_t *) key;
    return (size_t) (v * 0x9E3779B97F4A7C15ull);
}

static int s_key_cmp (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void s_value_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  A command from the sending thread: remember it and forward it to the matcher.
static void s_from_caller (zsock_t *pair, zsock_t *dealer, zhashx_t *pending, s_shared_t *shared)
{
    zmsg_t *msg = zmsg_recv (pair);
    if (!msg)
        return;
    s_pending_t *p = calloc (1, sizeof *p);
    zframe_t *head = zmsg_pop (msg);
    zframe_t *cmd = zmsg_pop (msg);
    assert (p && head && cmd && zframe_size (head) == sizeof p->rid + 2 * sizeof (void *));
    memcpy (&p->rid, zframe_data (head), sizeof p->rid);
    memcpy (&p->done, zframe_data (head) + 8, sizeof (void *));
    memcpy (&p->arg, zframe_data (head) + 8 + sizeof (void *), sizeof (void *));
    p->deadline = clock_mono_ns () + (int64_t) shared->timeout_ms * MCE_NS_PER_MSEC;
    zhashx_insert (pending, &p->rid, p);
    if (zmq_send (zsock_resolve (dealer), zframe_data (cmd), zframe_size (cmd), ZMQ_DONTWAIT) < 0)
        log_warn ("gateway", "matcher link: cannot queue request %" PRIu64 ": %s", p->rid,
                  zmq_strerror (zmq_errno ()));
    zframe_destroy (&head);
    zframe_destroy (&cmd);
    zmsg_destroy (&msg);
}

static void s_from_matcher (zsock_t *dealer, zhashx_t *pending, s_shared_t *shared)
{
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, zsock_resolve (dealer), 0) < 0) {
        zmq_msg_close (&frame);
        return;
    }
    bool multi = zmq_msg_more (&frame);
    proto_msg_t reply;
    char err[160] = "";
    if (multi)
        snprintf (err, sizeof err, "expected a single frame");
    else
        proto_decode (zmq_msg_data (&frame), zmq_msg_size (&frame), &reply, err, sizeof err);
    while (multi) {
        zmq_msg_t rest;
        zmq_msg_init (&rest);
        zmq_msg_recv (&rest, zsock_resolve (dealer), 0);
        multi = zmq_msg_more (&rest);
        zmq_msg_close (&rest);
    }
    zmq_msg_close (&frame);
    uint64_t rid = 0;
    if (!err[0] && reply.kind == PROTO_ack)
        rid = reply.ack.rid;
    else if (!err[0] && reply.kind == PROTO_reject)
        rid = reply.reject.rid;
    else if (!err[0])
        snprintf (err, sizeof err, "unexpected %s", proto_kind_name (reply.kind));
    if (err[0]) {
        log_warn ("gateway", "matcher link: dropped malformed reply from %s: %s", shared->endpoint,
                  err);
        return;
    }
    s_pending_t *p = zhashx_lookup (pending, &rid);
    if (p)
        s_finish (pending, p, &reply, shared);
    else
        log_debug ("gateway", "matcher link: late reply for request %" PRIu64, rid);
}

static void s_sweep (zhashx_t *pending, s_shared_t *shared, bool all)
{
    int64_t now = clock_mono_ns ();
    zlistx_t *expired = zlistx_new ();
    for (s_pending_t *p = zhashx_first (pending); p; p = zhashx_next (pending))
        if (all || now >= p->deadline)
            zlistx_add_end (expired, p);
    for (s_pending_t *p = zlistx_first (expired); p; p = zlistx_next (expired)) {
        if (!all)
            log_warn ("gateway", "matcher link: request %" PRIu64 " timed out", p->rid);
        s_finish (pending, p, NULL, shared);
    }
    zlistx_destroy (&expired);
}

static void s_actor (zsock_t *pipe, void *arg)
{
    s_shared_t *shared = arg;
    zsock_t *pair = zsock_new (ZMQ_PAIR);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zhashx_t *pending = zhashx_new ();
    zhashx_set_key_duplicator (pending, s_key_dup);
    zhashx_set_key_destructor (pending, s_key_free);
    zhashx_set_key_hasher (pending, s_key_hash);
    zhashx_set_key_comparator (pending, s_key_cmp);
    zhashx_set_destructor (pending, s_value_free);
    char inproc[64];
    snprintf (inproc, sizeof inproc, "inproc://matcher-link-%p", (void *) shared);
    zsock_set_linger (dealer, 0);
    int rc =
        zsock_bind (pair, "%s", inproc) < 0 || zsock_connect (dealer, "%s", shared->endpoint) < 0;
    zsock_signal (pipe, 0);
    zsock_signal (pipe, (byte) rc);
    zpoller_t *poller = rc ? NULL : zpoller_new (pipe, pair, dealer, NULL);
    while (poller) {
        void *which = zpoller_wait (poller, S_SWEEP_MS);
        if (which == pipe || zpoller_terminated (poller))
            break;
        if (which == pair)
            s_from_caller (pair, dealer, pending, shared);
        else if (which == dealer)
            s_from_matcher (dealer, pending, shared);
        s_sweep (pending, shared, false);
    }
    s_sweep (pending, shared, true);
    zpoller_destroy (&poller);
    zhashx_destroy (&pending);
    zsock_destroy (&dealer);
    zsock_destroy (&pair);
}

matcher_link_t *matcher_link_new (const char *endpoint, int timeout_ms, int max_in_flight)
{
    matcher_link_t *self = calloc (1, sizeof *self);
    s_shared_t *shared = calloc (1, sizeof *shared);
    if (!self || !shared) {
        free (self);
        free (shared);
        return NULL;
    }
    snprintf (shared->endpoint, sizeof shared->endpoint, "%s", endpoint);
    shared->timeout_ms = timeout_ms;
    self->shared = shared;
    self->max_in_flight = max_in_flight;
    self->next_rid = 1;
    self->actor = zactor_new (s_actor, shared);
    if (!self->actor || zsock_wait (self->actor) != 0) {
        log_error ("gateway", "matcher link: cannot connect to %s", endpoint);
        matcher_link_destroy (&self);
        return NULL;
    }
    self->pair = zsock_new (ZMQ_PAIR);
    if (!self->pair ||
        zsock_connect (self->pair, "inproc://matcher-link-%p", (void *) shared) < 0) {
        matcher_link_destroy (&self);
        return NULL;
    }
    return self;
}

void matcher_link_destroy (matcher_link_t **self_p)
{
    assert (self_p);
    matcher_link_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    zsock_destroy (&self->pair);
    free (self->shared);
    free (self);
    *self_p = NULL;
}

int matcher_link_send (matcher_link_t *self, proto_msg_t *cmd, matcher_link_done_fn *done,
                       void *arg)
{
    if (atomic_load (&self->shared->in_flight) >= self->max_in_flight)
        return -1;
    uint64_t rid = self->next_rid++;
    switch (cmd->kind) {
        case PROTO_new_order:
            cmd->new_order.rid = rid;
            break;
        case PROTO_cancel_order:
            cmd->cancel_order.rid = rid;
            break;
        case PROTO_amend_order:
            cmd->amend_order.rid = rid;
            break;
        case PROTO_market_control:
            cmd->market_control.rid = rid;
            break;
        default:
            return -1;
    }
    proto_buf_t buf;
    proto_buf_init (&buf);
    if (proto_encode (cmd, &buf)) {
        proto_buf_free (&buf);
        return -1;
    }
    uint8_t head[sizeof rid + 2 * sizeof (void *)];
    memcpy (head, &rid, sizeof rid);
    memcpy (head + 8, &done, sizeof (void *));
    memcpy (head + 8 + sizeof (void *), &arg, sizeof (void *));
    atomic_fetch_add (&self->shared->in_flight, 1);
    void *sock = zsock_resolve (self->pair);
    int rc = zmq_send (sock, head, sizeof head, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
             zmq_send (sock, buf.data, buf.len, ZMQ_DONTWAIT) < 0;
    proto_buf_free (&buf);
    if (rc) {
        atomic_fetch_sub (&self->shared->in_flight, 1);
        return -1;
    }
    return 0;
}

int matcher_link_in_flight (matcher_link_t *self)
{
    return atomic_load (&self->shared->in_flight);
}
