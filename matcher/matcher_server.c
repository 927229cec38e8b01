/*  matcher_server — see matcher_server.h.

    Replies wait in `replies` until the batch is committed: an order is acknowledged only once
    its events are durable (DESIGN.md §5.2). Recovery replays the journal through the same
    s_apply that live events go through, so state after a restart is what it was.
*/
#include "matcher_server.h"
#include "bus_pub.h"
#include "clock.h"
#include "log.h"
#include "proto.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <string.h>

#define S_ID_MAX 256 //  ZeroMQ routing ids are at most 255 bytes

typedef struct {
    uint8_t id[S_ID_MAX];
    size_t id_len;
    proto_msg_t msg;
} s_reply_t;

struct _matcher_server_t {
    const mce_config_t *cfg;
    bus_pub_t *bus;
    zsock_t *router;
    uint64_t next_order_id;
    uint64_t resting;   //  orders accepted and not yet gone (skeleton depth)
    s_reply_t *replies; //  this batch's replies, sent after the commit
    size_t reply_count;
    proto_buf_t out;
    uint64_t commands, malformed, batches;
};

//  Applies a committed or recovered event to the state.
static void s_apply (matcher_server_t *self, const proto_msg_t *ev)
{
    if (ev->kind == PROTO_order_accepted) {
        if (ev->order_accepted.order_id >= self->next_order_id)
            self->next_order_id = ev->order_accepted.order_id + 1;
        self->resting++;
    }
}

static int s_recover (matcher_server_t *self)
{
    journal_t *journal = bus_pub_journal (self->bus);
    uint64_t last = journal_last_seq (journal);
    if (last == 0)
        return 0;
    if (journal_first_seq (journal) > 1) {
        //  Retention removed the start of history and there are no snapshots yet (the matcher
        //  service issue adds them): the books cannot be rebuilt, so refuse rather than
        //  reuse order ids.
        log_error ("matcher",
                   "journal %s starts at seq %" PRIu64 ", not 1, and there is no snapshot to "
                   "start from: set matcher.retain_segments = 0 or restore the removed segments",
                   journal_dir (journal), journal_first_seq (journal));
        return -1;
    }
    journal_reader_t *reader = journal_reader_new (journal_dir (journal), 1);
    if (!reader)
        return -1;
    uint64_t seq, count = 0;
    const uint8_t *data;
    size_t len;
    int64_t t0 = clock_mono_ns ();
    int rc;
    while ((rc = journal_reader_next (reader, last, &seq, &data, &len)) == 1) {
        const char *topic;
        const uint8_t *ev;
        size_t tlen, elen;
        proto_msg_t msg;
        char err[160];
        if (bus_record_split (data, len, &topic, &tlen, &ev, &elen) ||
            proto_decode (ev, elen, &msg, err, sizeof err)) {
            log_error ("matcher", "journal record seq %" PRIu64 " does not decode", seq);
            rc = -1;
            break;
        }
        s_apply (self, &msg);
        count++;
    }
    journal_reader_destroy (&reader);
    if (rc < 0)
        return -1;
    log_info ("matcher", "recovered %" PRIu64 " events through seq %" PRIu64 " in %.1f ms", count,
              last, (double) (clock_mono_ns () - t0) / 1e6);
    return 0;
}

matcher_server_t *matcher_server_new (const mce_config_t *cfg)
{
    matcher_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->next_order_id = 1;
    proto_buf_init (&self->out);
    self->replies = calloc ((size_t) cfg->matcher.batch_max, sizeof *self->replies);
    char dir[CONFIG_PATH_MAX + 16];
    bus_pub_opts_t opts = {
        .stream = "m",
        .pub_endpoint = cfg->matcher.bus.pub,
        .replay_endpoint = cfg->matcher.bus.replay,
        .journal_dir = config_journal_dir (cfg, "matcher", dir, sizeof dir),
        .journal = {.fsync = cfg->matcher.fsync,
                    .segment_bytes = (uint64_t) cfg->matcher.segment_mb << 20,
                    .retain_segments = (uint32_t) cfg->matcher.retain_segments},
    };
    if (!self->replies || !(self->bus = bus_pub_new (&opts)) || s_recover (self)) {
        matcher_server_destroy (&self);
        return NULL;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router || zsock_bind (self->router, "%s", cfg->matcher.commands) < 0) {
        log_error ("matcher", "cannot bind commands %s: %s", cfg->matcher.commands,
                   zmq_strerror (zmq_errno ()));
        matcher_server_destroy (&self);
        return NULL;
    }
    //  A gateway that vanished must not make replies pile up or block the loop.
    zsock_set_router_mandatory (self->router, 0);
    log_info ("matcher", "commands on %s, next order id %" PRIu64 ", %" PRIu64 " resting",
              cfg->matcher.commands, self->next_order_id, self->resting);
    return self;
}

void matcher_server_destroy (matcher_server_t **self_p)
{
    assert (self_p);
    matcher_server_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->router);
    bus_pub_destroy (&self->bus);
    proto_buf_free (&self->out);
    free (self->replies);
    free (self);
    *self_p = NULL;
}

static proto_msg_t *s_reply (matcher_server_t *self, const zmq_msg_t *id, proto_kind_t kind)
{
    assert (self->reply_count < (size_t) self->cfg->matcher.batch_max);
    s_reply_t *r = &self->replies[self->reply_count++];
    r->id_len = zmq_msg_size ((zmq_msg_t *) id);
    memcpy (r->id, zmq_msg_data ((zmq_msg_t *) id), r->id_len);
    memset (&r->msg, 0, sizeof r->msg);
    r->msg.kind = kind;
    return &r->msg;
}

static int s_emit (matcher_server_t *self, proto_msg_t *ev)
{
    //  every event kind carries seq as its first-class field; set through the union member
    uint64_t seq = bus_pub_last_seq (self->bus) + 1;
    switch (ev->kind) {
        case PROTO_order_accepted:
            ev->order_accepted.seq = seq;
            break;
        case PROTO_order_rejected:
            ev->order_rejected.seq = seq;
            break;
        default:
            assert (false);
    }
    if (bus_pub_append (self->bus, ev))
        return -1;
    s_apply (self, ev);
    return 0;
}

static int s_reject (matcher_server_t *self, const zmq_msg_t *id, const proto_new_order_t *cmd,
                     proto_reject_reason_t reason, const char *text)
{
    proto_msg_t ev = {.kind = PROTO_order_rejected};
    proto_order_rejected_t *r = &ev.order_rejected;
    r->ts = clock_wall_ns ();
    snprintf (r->market, sizeof r->market, "%s", cmd->market);
    snprintf (r->user, sizeof r->user, "%s", cmd->user);
    snprintf (r->client_order_id, sizeof r->client_order_id, "%s", cmd->client_order_id);
    r->rid = cmd->rid;
    r->reason = reason;
    snprintf (r->message, sizeof r->message, "%s", text);
    if (s_emit (self, &ev))
        return -1;
    proto_msg_t *rep = s_reply (self, id, PROTO_reject);
    rep->reject.rid = cmd->rid;
    rep->reject.reason = reason;
    snprintf (rep->reject.message, sizeof rep->reject.message, "%s", text);
    log_debug ("matcher", "order from %s rejected: %s (market %s)", cmd->user, text, cmd->market);
    return 0;
}

static int s_new_order (matcher_server_t *self, const zmq_msg_t *id, const proto_new_order_t *cmd)
{
    const config_market_t *m = config_market (self->cfg, cmd->market);
    if (!m) {
        return s_reject (self, id, cmd, PROTO_REJECT_REASON_UNKNOWN_MARKET, "unknown market");
    }
    if (cmd->qty <= 0 || cmd->qty < m->min_qty || cmd->qty > m->max_qty) {
        return s_reject (self, id, cmd, PROTO_REJECT_REASON_BAD_QUANTITY,
                         "quantity outside the market's limits");
    }
    if (cmd->qty % m->lot) {
        return s_reject (self, id, cmd, PROTO_REJECT_REASON_OFF_LOT,
                         "quantity is not a multiple of the lot");
    }
    if (cmd->type == PROTO_ORDER_TYPE_LIMIT) {
        if (cmd->price <= 0) {
            return s_reject (self, id, cmd, PROTO_REJECT_REASON_BAD_PRICE,
                             "price must be positive");
        }
        if (cmd->price % m->tick) {
            return s_reject (self, id, cmd, PROTO_REJECT_REASON_OFF_TICK, "price is off the tick");
        }
        if (cmd->price < m->min_price || cmd->price > m->max_price) {
            return s_reject (self, id, cmd, PROTO_REJECT_REASON_OUTSIDE_BAND,
                             "price outside the market's band");
        }
    }
    int64_t now = clock_wall_ns ();
    proto_msg_t ev = {.kind = PROTO_order_accepted};
    proto_order_accepted_t *a = &ev.order_accepted;
    a->ts = now;
    snprintf (a->market, sizeof a->market, "%s", cmd->market);
    a->epoch = cmd->epoch ? cmd->epoch : now / MCE_NS_PER_SEC / m->epoch_seconds;
    a->order_id = self->next_order_id;
    snprintf (a->user, sizeof a->user, "%s", cmd->user);
    snprintf (a->client_order_id, sizeof a->client_order_id, "%s", cmd->client_order_id);
    a->side = cmd->side;
    a->type = cmd->type;
    a->tif = cmd->tif;
    a->post_only = cmd->post_only;
    a->qty = cmd->qty;
    a->price = cmd->price;
    a->expires_at = cmd->expires_at;
    snprintf (a->source, sizeof a->source, "%s", cmd->source);
    if (s_emit (self, &ev))
        return -1;
    proto_msg_t *rep = s_reply (self, id, PROTO_ack);
    rep->ack.rid = cmd->rid;
    rep->ack.order_id = a->order_id;
    rep->ack.seq = a->seq;
    rep->ack.epoch = a->epoch;
    rep->ack.status = PROTO_ORDER_STATUS_OPEN;
    rep->ack.remaining = a->qty;
    log_info ("matcher", "order %" PRIu64 " accepted (market %s, seq %" PRIu64 ")", a->order_id,
              a->market, a->seq);
    return 0;
}

//  Reads one command [id][body] and decides it. -1 only on a journal failure.
static int s_handle_command (matcher_server_t *self)
{
    void *sock = zsock_resolve (self->router);
    zmq_msg_t id, body;
    zmq_msg_init (&id);
    zmq_msg_init (&body);
    int rc = 0;
    if (zmq_msg_recv (&id, sock, ZMQ_DONTWAIT) < 0)
        goto done;
    int frames = 0;
    zmq_msg_t *last = &id;
    while (zmq_msg_more (last)) {
        zmq_msg_close (&body);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&body, sock, 0) < 0)
            break;
        last = &body;
        frames++;
    }
    self->commands++;
    proto_msg_t msg;
    char err[160] = "";
    if (frames != 1)
        snprintf (err, sizeof err, "expected one frame after the routing id, got %d", frames);
    else
        proto_decode (zmq_msg_data (&body), zmq_msg_size (&body), &msg, err, sizeof err);
    if (!err[0] && msg.kind != PROTO_new_order)
        snprintf (err, sizeof err, "%s is not a command the matcher takes yet",
                  proto_kind_name (msg.kind));
    if (err[0]) {
        self->malformed++;
        //  ZeroMQ attaches the peer's address to frames from the wire, not to the routing id
        const char *peer = frames ? zmq_msg_gets (&body, "Peer-Address") : NULL;
        log_warn ("matcher", "dropped malformed command #%" PRIu64 " from %s: %s", self->malformed,
                  peer ? peer : "?", err);
        goto done;
    }
    rc = s_new_order (self, &id, &msg.new_order);
done:
    zmq_msg_close (&id);
    zmq_msg_close (&body);
    return rc;
}

static void s_send_replies (matcher_server_t *self)
{
    void *sock = zsock_resolve (self->router);
    for (size_t i = 0; i < self->reply_count; i++) {
        s_reply_t *r = &self->replies[i];
        proto_buf_reset (&self->out);
        if (proto_encode (&r->msg, &self->out))
            continue;
        zmq_send (sock, r->id, r->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send (sock, self->out.data, self->out.len, ZMQ_DONTWAIT);
    }
    self->reply_count = 0;
}

int matcher_server_run (matcher_server_t *self)
{
    zmq_pollitem_t item = {zsock_resolve (self->router), 0, ZMQ_POLLIN, 0};
    int64_t next_heartbeat = clock_mono_ns ();
    while (!zsys_interrupted) {
        int64_t now = clock_mono_ns ();
        if (now >= next_heartbeat) {
            bus_pub_heartbeat (self->bus);
            next_heartbeat = now + BUS_HEARTBEAT_MS * MCE_NS_PER_MSEC;
        }
        long wait_ms = (long) ((next_heartbeat - now) / MCE_NS_PER_MSEC) + 1;
        if (zmq_poll (&item, 1, wait_ms) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            break;
        }
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        //  Drain what is waiting, up to batch_max, then pay for one commit.
        int64_t n = 0;
        zsock_t *router = self->router;
        while (n < self->cfg->matcher.batch_max && (zsock_events (router) & ZMQ_POLLIN)) {
            if (s_handle_command (self))
                return -1;
            n++;
        }
        if (bus_pub_commit (self->bus)) {
            log_error ("matcher",
                       "journal commit failed: stopping, nothing after seq %" PRIu64
                       " was acknowledged",
                       bus_pub_committed_seq (self->bus));
            return -1;
        }
        s_send_replies (self);
        self->batches++;
    }
    log_info ("matcher",
              "stopping at seq %" PRIu64 " after %" PRIu64 " commands in %" PRIu64
              " batches (%" PRIu64 " malformed)",
              bus_pub_committed_seq (self->bus), self->commands, self->batches, self->malformed);
    return 0;
}
