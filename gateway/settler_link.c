/*  settler_link — see settler_link.h.  */
#include "settler_link.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <string.h>

typedef struct {
    uint64_t rid; //  0 = free
    settler_link_done_fn *done;
    void *arg;
    int64_t deadline;
} s_slot_t;

struct _settler_link_t {
    zsock_t *dealer; //  NULL when not configured
    bool sent;
    int64_t timeout_ns;
    uint64_t next_rid;
    s_slot_t slots[SETTLER_LINK_SLOTS];
    proto_settlement_t *found; //  SETTLER_LINK_MAX decoded settlements of the answer at hand
    proto_buf_t buf;
};

settler_link_t *settler_link_new (const char *endpoint, const curve_t *curve, int timeout_ms)
{
    settler_link_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->timeout_ns = (int64_t) timeout_ms * MCE_NS_PER_MSEC;
    self->next_rid = 1;
    proto_buf_init (&self->buf);
    if (!endpoint[0])
        return self;
    self->found = calloc (SETTLER_LINK_MAX, sizeof *self->found);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->found || !self->dealer) {
        settler_link_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_immediate (self->dealer, 1); //  no settler connected: refuse at once, not time out
    if (curve_client (curve, self->dealer, "settler") < 0) {
        settler_link_destroy (&self);
        return NULL;
    }
    if (zsock_connect (self->dealer, "%s", endpoint) < 0) {
        log_error ("gateway", "settler link: cannot connect to %s", endpoint);
        settler_link_destroy (&self);
        return NULL;
    }
    return self;
}

void settler_link_destroy (settler_link_t **self_p)
{
    assert (self_p);
    settler_link_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < SETTLER_LINK_SLOTS; i++)
        if (self->slots[i].rid) {
            self->slots[i].rid = 0;
            self->slots[i].done (self->slots[i].arg, NULL, NULL, 0);
        }
    zsock_destroy (&self->dealer);
    free (self->found);
    proto_buf_free (&self->buf);
    free (self);
    *self_p = NULL;
}

int settler_link_send (settler_link_t *self, proto_msg_t *cmd, settler_link_done_fn *done,
                       void *arg)
{
    assert (cmd->kind == PROTO_settler_command);
    if (!self->dealer)
        return -1;
    s_slot_t *slot = NULL;
    for (int i = 0; i < SETTLER_LINK_SLOTS && !slot; i++)
        if (!self->slots[i].rid)
            slot = &self->slots[i];
    if (!slot)
        return -1;
    cmd->settler_command.rid = self->next_rid++;
    proto_buf_reset (&self->buf);
    if (proto_encode (cmd, &self->buf) ||
        zmq_send (zsock_resolve (self->dealer), self->buf.data, self->buf.len, ZMQ_DONTWAIT) < 0)
        return -1;
    *slot = (s_slot_t){.rid = cmd->settler_command.rid,
                       .done = done,
                       .arg = arg,
                       .deadline = clock_mono_ns () + self->timeout_ns};
    self->sent = true;
    return 0;
}

int settler_link_fd (settler_link_t *self)
{
    return self->dealer ? zsock_fd (self->dealer) : -1;
}

bool settler_link_sent (settler_link_t *self)
{
    return self->sent;
}

//  Hands an answer to the request it belongs to.
static void s_deliver (settler_link_t *self, const proto_settler_reply_t *reply, size_t count)
{
    for (int i = 0; i < SETTLER_LINK_SLOTS; i++)
        if (self->slots[i].rid && self->slots[i].rid == reply->rid) {
            s_slot_t slot = self->slots[i];
            self->slots[i].rid = 0;
            slot.done (slot.arg, reply, self->found, count);
            return;
        }
    log_debug ("gateway", "settler link: late answer for request %" PRIu64, reply->rid);
}

//  Reads one answer (settlement frames, then the settler_reply) and delivers it. false when
//  none was waiting. A malformed answer is logged and dropped (its request then times out).
static bool s_answer (settler_link_t *self, void *sock)
{
    size_t count = 0;
    bool good = true;
    char err[160] = "";
    proto_msg_t decoded = {0};
    for (int frames = 0;; frames++) {
        zmq_msg_t f;
        zmq_msg_init (&f);
        if (zmq_msg_recv (&f, sock, frames ? 0 : ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&f);
            if (frames == 0)
                return false;
            good = false;
            break;
        }
        bool last = !zmq_msg_more (&f);
        if (good && !last &&
            proto_decode (zmq_msg_data (&f), zmq_msg_size (&f), &decoded, err, sizeof err) == 0 &&
            decoded.kind == PROTO_transfer) {
            //  a deposit's record precedes its reply; the reply carries its id
        }
        else if (good && proto_decode_kind (last ? PROTO_settler_reply : PROTO_settlement,
                                            zmq_msg_data (&f), zmq_msg_size (&f), &decoded, err,
                                            sizeof err))
            good = false;
        else if (good && !last) {
            if (count < SETTLER_LINK_MAX)
                self->found[count++] = decoded.settlement;
            else {
                snprintf (err, sizeof err, "more than %d settlements", SETTLER_LINK_MAX);
                good = false;
            }
        }
        zmq_msg_close (&f);
        if (last)
            break;
    }
    if (good)
        s_deliver (self, &decoded.settler_reply, count);
    else
        log_warn ("gateway", "settler link: dropped a malformed answer: %s", err);
    return true;
}

void settler_link_process (settler_link_t *self)
{
    self->sent = false;
    if (!self->dealer)
        return;
    while (s_answer (self, zsock_resolve (self->dealer)))
        ;
    int64_t now = clock_mono_ns ();
    for (int i = 0; i < SETTLER_LINK_SLOTS; i++)
        if (self->slots[i].rid && self->slots[i].deadline <= now) {
            s_slot_t slot = self->slots[i];
            self->slots[i].rid = 0;
            log_warn ("gateway", "settler link: request %" PRIu64 " timed out", slot.rid);
            slot.done (slot.arg, NULL, NULL, 0);
        }
}

long settler_link_wait_ms (settler_link_t *self)
{
    int64_t first = 0;
    for (int i = 0; i < SETTLER_LINK_SLOTS; i++)
        if (self->slots[i].rid && (!first || self->slots[i].deadline < first))
            first = self->slots[i].deadline;
    if (!first)
        return -1;
    int64_t left = first - clock_mono_ns ();
    return left > 0 ? (long) (left / MCE_NS_PER_MSEC) + 1 : 0;
}
