/*  transfer_link — see transfer_link.h.  */
#include "transfer_link.h"
#include "clock.h"
#include "log.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SNDHWM 10000 //  commands queued towards a connected matcher, at most

struct _transfer_link_t {
    zsock_t *dealer;
    proto_buf_t buf;
};

transfer_link_t *transfer_link_new (const char *endpoint, const curve_t *curve)
{
    transfer_link_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    proto_buf_init (&self->buf);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer) {
        transfer_link_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_immediate (self->dealer, 1);
    zsock_set_sndhwm (self->dealer, S_SNDHWM);
    if (curve_client (curve, self->dealer, "matcher") < 0) {
        transfer_link_destroy (&self);
        return NULL;
    }
    if (zsock_connect (self->dealer, "%s", endpoint) < 0) {
        log_error ("settler", "matcher commands: cannot connect to %s", endpoint);
        transfer_link_destroy (&self);
        return NULL;
    }
    return self;
}

void transfer_link_destroy (transfer_link_t **self_p)
{
    transfer_link_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->dealer);
    proto_buf_free (&self->buf);
    free (self);
    *self_p = NULL;
}

void *transfer_link_socket (transfer_link_t *self)
{
    return zsock_resolve (self->dealer);
}

int transfer_link_send (transfer_link_t *self, transfer_link_what_t what, const transfer_t *t)
{
    if (t->id > TRANSFER_LINK_ID_MAX)
        return -1;
    uint64_t rid = t->id << 2 | (uint64_t) what;
    proto_msg_t msg;
    memset (&msg, 0, sizeof msg);
    if (what == TRANSFER_LINK_CREDIT) {
        msg.kind = PROTO_deposit_credit;
        proto_deposit_credit_t *c = &msg.deposit_credit;
        c->rid = rid;
        c->deposit_id = t->id;
        snprintf (c->user, sizeof c->user, "%s", t->user);
        c->asset = t->asset;
        c->amount = t->amount;
        c->ts = clock_wall_ns ();
    }
    else {
        msg.kind = PROTO_withdrawal_close;
        proto_withdrawal_close_t *c = &msg.withdrawal_close;
        c->rid = rid;
        c->withdrawal_id = t->id;
        c->refund = what == TRANSFER_LINK_REFUND;
        c->ts = clock_wall_ns ();
    }
    proto_buf_reset (&self->buf);
    if (proto_encode (&msg, &self->buf))
        return -1;
    return zmq_send (zsock_resolve (self->dealer), self->buf.data, self->buf.len, ZMQ_DONTWAIT) < 0
               ? -1
               : 0;
}

int transfer_link_recv (transfer_link_t *self, transfer_link_reply_t *reply)
{
    void *sock = zsock_resolve (self->dealer);
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            return 0;
        }
        bool more = zmq_msg_more (&frame);
        proto_msg_t msg;
        char err[160] = "";
        int rc = more ? -1
                      : proto_decode (zmq_msg_data (&frame), zmq_msg_size (&frame), &msg, err,
                                      sizeof err);
        zmq_msg_close (&frame);
        while (more) { //  one frame is all a reply has: drop the rest
            zmq_msg_init (&frame);
            more = zmq_msg_recv (&frame, sock, 0) >= 0 && zmq_msg_more (&frame);
            zmq_msg_close (&frame);
            snprintf (err, sizeof err, "more than one frame");
        }
        if (rc == 0 && msg.kind != PROTO_ack && msg.kind != PROTO_reject)
            snprintf (err, sizeof err, "a %s is no answer", proto_kind_name (msg.kind));
        uint64_t rid =
            rc == 0 && !err[0] ? msg.kind == PROTO_ack ? msg.ack.rid : msg.reject.rid : 0;
        if (rc == 0 && !err[0] && (rid & 3) == 0)
            snprintf (err, sizeof err, "rid %" PRIu64 " is not one of ours", rid);
        if (err[0]) {
            log_warn ("settler", "matcher commands: answer dropped: %s", err);
            continue;
        }
        memset (reply, 0, sizeof *reply);
        reply->what = (transfer_link_what_t) (rid & 3);
        reply->id = rid >> 2;
        if (msg.kind == PROTO_ack) {
            reply->ack = true;
            reply->duplicate = msg.ack.duplicate;
            reply->seq = msg.ack.seq;
        }
        else {
            reply->reason = msg.reject.reason;
            snprintf (reply->message, sizeof reply->message, "%s", msg.reject.message);
        }
        return 1;
    }
}
