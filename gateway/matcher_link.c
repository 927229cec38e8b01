/*  matcher_link — see matcher_link.h.  */
#include "matcher_link.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <string.h>

typedef struct {
    uint64_t rid; //  0 = free
    matcher_link_done_fn *done;
    void *arg;
    int64_t deadline;
} s_slot_t;

struct _matcher_link_t {
    char endpoint[256];
    zsock_t *dealer;
    bool sent; //  a command went out since the last matcher_link_process (see the header)
    int64_t timeout_ns;
    int max_in_flight;
    int in_flight;
    uint64_t next_rid; //  the next rid to hand out
    uint64_t tail;     //  every rid below it is finished
    s_slot_t *ring;
    uint64_t mask;
    uint64_t timeouts;
    proto_buf_t buf;     //  commands encoded and not yet sent, back to back
    size_t *staged_ends; //  where each one ends in buf
    size_t staged;       //  how many; they are rids next_rid - staged ... next_rid - 1
    proto_buf_t frame;   //  the batch frame they go out in
    bool batch;          //  in one batch frame, or one frame each
};

//  Commands are sent once per loop turn (matcher_link_flush), or at once when this many wait,
//  together in one batch frame (proto.h). One send per handler, spread over a turn, woke
//  libzmq's I/O thread for nearly every command, and every frame costs CurveZMQ a box of its
//  own: one frame per turn pays both once.
#define S_STAGE_MAX   PROTO_BATCH_MAX
#define S_STAGE_BYTES (PROTO_MAX_SIZE / 2) //  a batch frame stays far below the matcher's limit

matcher_link_t *matcher_link_new (const char *endpoint, const curve_t *curve, int timeout_ms,
                                  int max_in_flight, bool batch)
{
    matcher_link_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->timeout_ns = (int64_t) timeout_ms * MCE_NS_PER_MSEC;
    self->max_in_flight = max_in_flight;
    self->batch = batch;
    self->next_rid = self->tail = 1;
    uint64_t size = 64;
    while (size < (uint64_t) max_in_flight * 4)
        size *= 2;
    self->ring = calloc (size, sizeof *self->ring);
    self->mask = size - 1;
    proto_buf_init (&self->buf);
    proto_buf_init (&self->frame);
    self->staged_ends = calloc (S_STAGE_MAX, sizeof *self->staged_ends);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->ring || !self->staged_ends || !self->dealer) {
        matcher_link_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndhwm (self->dealer, 0); //  bounded by max_in_flight instead
    if (curve_client (curve, self->dealer, "matcher") < 0) {
        matcher_link_destroy (&self);
        return NULL;
    }
    if (zsock_connect (self->dealer, "%s", endpoint) < 0) {
        log_error ("gateway", "matcher link: cannot connect to %s", endpoint);
        matcher_link_destroy (&self);
        return NULL;
    }
    return self;
}

static void s_finish (matcher_link_t *self, s_slot_t *slot, const proto_msg_t *reply)
{
    matcher_link_done_fn *done = slot->done;
    void *arg = slot->arg;
    slot->rid = 0;
    self->in_flight--;
    done (arg, reply);
}

//  Moves the tail past finished requests.
static void s_advance_tail (matcher_link_t *self)
{
    while (self->tail < self->next_rid && self->ring[self->tail & self->mask].rid != self->tail)
        self->tail++;
}

void matcher_link_destroy (matcher_link_t **self_p)
{
    assert (self_p);
    matcher_link_t *self = *self_p;
    if (!self)
        return;
    for (uint64_t rid = self->tail; self->ring && rid < self->next_rid; rid++) {
        s_slot_t *slot = &self->ring[rid & self->mask];
        if (slot->rid == rid)
            s_finish (self, slot, NULL);
    }
    zsock_destroy (&self->dealer);
    proto_buf_free (&self->buf);
    proto_buf_free (&self->frame);
    free (self->staged_ends);
    free (self->ring);
    free (self);
    *self_p = NULL;
}

int matcher_link_send (matcher_link_t *self, proto_msg_t *cmd, matcher_link_done_fn *done,
                       void *arg)
{
    uint64_t rid = self->next_rid;
    s_slot_t *slot = &self->ring[rid & self->mask];
    if (self->in_flight >= self->max_in_flight || slot->rid != 0)
        return -1;
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
        case PROTO_withdraw:
            cmd->withdraw.rid = rid;
            break;
        default:
            return -1; //  deposit credits and withdrawal closes are the settler's alone
    }
    if (proto_encode (cmd, &self->buf))
        return -1;
    self->staged_ends[self->staged++] = self->buf.len;
    self->next_rid++;
    *slot = (s_slot_t){
        .rid = rid, .done = done, .arg = arg, .deadline = clock_mono_ns () + self->timeout_ns};
    self->in_flight++;
    if (self->staged == S_STAGE_MAX || self->buf.len >= S_STAGE_BYTES)
        matcher_link_flush (self);
    return 0;
}

//  Requests from rid up to (not including) end that could not be queued: answered as if the
//  matcher had not. No high-water mark (max_in_flight bounds the link), so only a closing
//  context, or no memory for a batch frame, refuses.
static void s_unsent (matcher_link_t *self, uint64_t rid, uint64_t end, const char *why)
{
    log_warn ("gateway", "matcher link: cannot queue requests %" PRIu64 " to %" PRIu64 ": %s", rid,
              end - 1, why);
    for (; rid < end; rid++) {
        s_slot_t *slot = &self->ring[rid & self->mask];
        if (slot->rid == rid)
            s_finish (self, slot, NULL);
    }
}

void matcher_link_flush (matcher_link_t *self)
{
    assert (self);
    if (self->staged == 0)
        return;
    void *sock = zsock_resolve (self->dealer);
    uint64_t first = self->next_rid - self->staged;
    if (!self->batch || self->staged == 1) //  a frame each
        for (size_t i = 0, start = 0; i < self->staged; start = self->staged_ends[i++]) {
            size_t len = self->staged_ends[i] - start;
            if (zmq_send (sock, self->buf.data + start, len, ZMQ_DONTWAIT) < 0)
                s_unsent (self, first + i, first + i + 1, zmq_strerror (zmq_errno ()));
        }
    else {
        proto_buf_reset (&self->frame);
        int rc = proto_batch_start (&self->frame);
        for (size_t i = 0, start = 0; i < self->staged && rc == 0; start = self->staged_ends[i++])
            rc = proto_batch_add (&self->frame, self->buf.data + start,
                                  self->staged_ends[i] - start);
        if (rc)
            s_unsent (self, first, self->next_rid, "out of memory");
        else if (zmq_send (sock, self->frame.data, self->frame.len, ZMQ_DONTWAIT) < 0)
            s_unsent (self, first, self->next_rid, zmq_strerror (zmq_errno ()));
    }
    self->staged = 0;
    proto_buf_reset (&self->buf);
    self->sent = true;
}

//  One reply: finds its request and finishes it.
static void s_reply_one (matcher_link_t *self, const void *data, size_t size)
{
    proto_msg_t reply;
    char err[160] = "";
    proto_decode (data, size, &reply, err, sizeof err);
    uint64_t rid = 0;
    if (!err[0] && reply.kind == PROTO_ack)
        rid = reply.ack.rid;
    else if (!err[0] && reply.kind == PROTO_reject)
        rid = reply.reject.rid;
    else if (!err[0])
        snprintf (err, sizeof err, "unexpected %s", proto_kind_name (reply.kind));
    if (err[0]) {
        log_warn ("gateway", "matcher link: dropped malformed reply from %s: %s", self->endpoint,
                  err);
        return;
    }
    s_slot_t *slot = &self->ring[rid & self->mask];
    if (rid && slot->rid == rid)
        s_finish (self, slot, &reply);
    else
        log_debug ("gateway", "matcher link: late reply for request %" PRIu64, rid);
}

//  One reply frame: a reply, or a batch frame of them (the answers to a batch frame).
static void s_reply (matcher_link_t *self, zmq_msg_t *frame, bool multi)
{
    const uint8_t *data = zmq_msg_data (frame);
    size_t size = zmq_msg_size (frame), offset = 0, count = 0, len;
    if (multi)
        log_warn ("gateway", "matcher link: dropped malformed reply from %s: several frames",
                  self->endpoint);
    else if (!proto_batch_is (data, size))
        s_reply_one (self, data, size);
    else {
        const uint8_t *one;
        int more;
        while ((more = proto_batch_next (data, size, &offset, &count, &one, &len)) == 1)
            s_reply_one (self, one, len);
        if (more < 0)
            log_warn ("gateway", "matcher link: malformed batch of replies from %s",
                      self->endpoint);
    }
}

void matcher_link_process (matcher_link_t *self)
{
    void *sock = zsock_resolve (self->dealer);
    self->sent = false;
    while (true) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        bool multi = zmq_msg_more (&frame);
        s_reply (self, &frame, multi);
        zmq_msg_close (&frame);
        while (multi) { //  drain the rest of a malformed multi-frame reply
            zmq_msg_t rest;
            zmq_msg_init (&rest);
            multi = zmq_msg_recv (&rest, sock, 0) >= 0 && zmq_msg_more (&rest);
            zmq_msg_close (&rest);
        }
    }
    s_advance_tail (self);
    int64_t now = clock_mono_ns ();
    while (self->tail < self->next_rid) {
        s_slot_t *slot = &self->ring[self->tail & self->mask];
        if (slot->rid == self->tail) {
            if (slot->deadline > now)
                break;
            log_warn ("gateway", "matcher link: request %" PRIu64 " timed out after %lld ms",
                      slot->rid, (long long) (self->timeout_ns / MCE_NS_PER_MSEC));
            self->timeouts++;
            s_finish (self, slot, NULL);
        }
        self->tail++;
    }
}

bool matcher_link_sent (matcher_link_t *self)
{
    return self->sent;
}

int matcher_link_fd (matcher_link_t *self)
{
    return zsock_fd (self->dealer);
}

long matcher_link_wait_ms (matcher_link_t *self)
{
    s_advance_tail (self);
    if (self->tail >= self->next_rid)
        return -1;
    int64_t left = self->ring[self->tail & self->mask].deadline - clock_mono_ns ();
    return left > 0 ? (long) (left / MCE_NS_PER_MSEC) + 1 : 0;
}

int matcher_link_in_flight (matcher_link_t *self)
{
    return self->in_flight;
}

uint64_t matcher_link_timeouts (matcher_link_t *self)
{
    return self->timeouts;
}
