/*  matcher_server — see matcher_server.h.

    What goes into the journal, and why: for every batch, a `clock` record (the time the
    batch is decided at), then for every command the command itself followed by the events
    the engine made of it; epoch changes follow the clock record that caused them. Recovery
    re-executes the clock records and commands through the same engine and checks that every
    event it makes is byte for byte the one in the journal: replay never reads the wall clock,
    and a journal that does not reproduce is refused rather than silently diverging.

    Replies wait in `replies` until their batch is committed: an order is acknowledged only
    once its events are durable (docs/architecture.md, Durability). The commit itself runs on
    bus_pub's writer thread, so while one batch is being written and synced the loop decides the
    next: a batch is handed over as soon as the writer is free, and grows (up to batch_max commands)
    while it is not. With fsync = always every command is a batch of its own.

    Snapshots are taken when nothing is in flight, so the engine is exactly the committed
    state; the writer forks and serialises in the child, so the loop pauses for the fork only.
*/
#include "matcher_server.h"
#include "matcher_metrics.h"
#include "bus_pub.h"
#include "clock.h"
#include "engine.h"
#include "log.h"
#include "proto.h"
#include "router.h"
#include "snapshot.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define S_ID_MAX  256 //  ZeroMQ routing ids are at most 255 bytes
#define S_TICK_MS 100 //  how often the clock moves epochs and expiries when idle

typedef struct {
    uint8_t id[S_ID_MAX];
    size_t id_len;
    bool batched; //  its command came in a batch frame: it goes back in one
    proto_msg_t msg;
} s_reply_t;

struct _matcher_server_t {
    const mce_config_t *cfg;
    engine_t *engine;
    bus_pub_t *bus;
    curve_t *curve; //  our key; the authenticator behind every socket we bind
    zsock_t *router;
    snapshot_writer_t *snapshots;
    matcher_metrics_t metrics; //  read by the metrics thread
    metrics_http_t *metrics_server;
    uint64_t snapshot_seq;   //  seq of the newest snapshot taken or restored
    bool snapshot_requested; //  by an admin, taken once the batch in flight is committed
    int64_t now;             //  the clock of the batch being decided
    bool clock_journaled;    //  its clock record is in the journal
    s_reply_t *replies;      //  replies of the batch being filled, sent after its commit
    size_t reply_count;
    s_reply_t *flight; //  replies of the batch with the writer
    size_t flight_count;
    int64_t flight_started; //  when it was submitted
    size_t batch_limit;     //  commands per batch: batch_max, or 1 with fsync = always (a batch
                            //  frame's commands are taken together, up to PROTO_BATCH_MAX more)
    proto_buf_t out;
    //  recovery: the journal being replayed, and the record expected next
    journal_reader_t *replay;
    uint64_t replay_last;
    proto_buf_t expect;
    int replay_error;
    bool replay_short; //  the journal ended inside what a record made
};

//  ---------------------------------------------------------------------------------------
//  Engine events → bus messages

//  A bounded string copy; runs several times per event, where snprintf's formatting showed.
static void s_copy (char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen (src, size - 1) : 0;
    memcpy (dst, src, n);
    dst[n] = '\0';
}

//  The bus message for one engine event. cmd is the command that caused it (NULL for the
//  clock's own events); its fields complete an accepted order.
static void s_to_proto (matcher_server_t *self, const engine_event_t *ev, const proto_msg_t *cmd,
                        proto_msg_t *m)
{
    memset (m, 0, sizeof *m);
    const char *market = engine_market_name (self->engine, ev->market);
    if (cmd && proto_msg_market (cmd) && ev->market >= (uint32_t) self->cfg->market_count)
        market = proto_msg_market (cmd); //  an unknown market is named as the sender wrote it
    const char *user = engine_user_name (self->engine, ev->user);
    switch (ev->kind) {
        case ENGINE_EV_ACCEPTED: {
            m->kind = PROTO_order_accepted;
            proto_order_accepted_t *a = &m->order_accepted;
            const proto_new_order_t *o = &cmd->new_order;
            s_copy (a->market, sizeof a->market, market);
            s_copy (a->user, sizeof a->user, user);
            s_copy (a->client_order_id, sizeof a->client_order_id, o->client_order_id);
            s_copy (a->source, sizeof a->source, o->source);
            a->epoch = ev->epoch;
            a->order_id = ev->order_id;
            a->side = o->side;
            a->type = o->type;
            a->tif = o->tif;
            a->post_only = o->post_only;
            a->qty = ev->qty;
            a->price = ev->price;
            a->expires_at = o->expires_at;
            break;
        }
        case ENGINE_EV_REJECTED: {
            m->kind = PROTO_order_rejected;
            proto_order_rejected_t *r = &m->order_rejected;
            s_copy (r->market, sizeof r->market, market);
            s_copy (r->user, sizeof r->user, cmd ? cmd->new_order.user : user);
            r->reason = ev->reason;
            if (cmd && cmd->kind == PROTO_new_order) {
                s_copy (r->client_order_id, sizeof r->client_order_id,
                        cmd->new_order.client_order_id);
                r->rid = cmd->new_order.rid;
            }
            else if (cmd && cmd->kind == PROTO_cancel_order)
                r->rid = cmd->cancel_order.rid, r->order_id = cmd->cancel_order.order_id;
            else if (cmd && cmd->kind == PROTO_amend_order)
                r->rid = cmd->amend_order.rid, r->order_id = cmd->amend_order.order_id;
            else if (cmd && cmd->kind == PROTO_market_control)
                r->rid = cmd->market_control.rid;
            break;
        }
        case ENGINE_EV_TRADE: {
            m->kind = PROTO_trade;
            proto_trade_t *t = &m->trade;
            s_copy (t->market, sizeof t->market, market);
            s_copy (t->buyer, sizeof t->buyer, user);
            s_copy (t->seller, sizeof t->seller, engine_user_name (self->engine, ev->user2));
            t->escrow = engine_market_escrow (self->engine, ev->market);
            t->epoch = ev->epoch;
            t->trade_id = ev->trade_id;
            t->buy_order_id = ev->order_id;
            t->sell_order_id = ev->order_id2;
            t->qty = ev->qty;
            t->price = ev->price;
            t->value = ev->value;
            t->aggressor = ev->side;
            t->grid = ev->flag;
            break;
        }
        case ENGINE_EV_CANCELLED: {
            m->kind = PROTO_order_cancelled;
            proto_order_cancelled_t *c = &m->order_cancelled;
            s_copy (c->market, sizeof c->market, market);
            s_copy (c->user, sizeof c->user, user);
            if (ev->reason == PROTO_CANCEL_REASON_ADMIN)
                s_copy (c->by, sizeof c->by, engine_user_name (self->engine, ev->user2));
            c->epoch = ev->epoch;
            c->order_id = ev->order_id;
            c->remaining = ev->qty;
            c->reason = ev->reason;
            break;
        }
        case ENGINE_EV_EXPIRED: {
            m->kind = PROTO_order_expired;
            proto_order_expired_t *x = &m->order_expired;
            s_copy (x->market, sizeof x->market, market);
            s_copy (x->user, sizeof x->user, user);
            x->epoch = ev->epoch;
            x->order_id = ev->order_id;
            x->remaining = ev->qty;
            x->reason = ev->reason;
            break;
        }
        case ENGINE_EV_AMENDED: {
            m->kind = PROTO_order_amended;
            proto_order_amended_t *a = &m->order_amended;
            s_copy (a->market, sizeof a->market, market);
            s_copy (a->user, sizeof a->user, user);
            a->epoch = ev->epoch;
            a->order_id = ev->order_id;
            a->qty = ev->qty;
            a->price = ev->price;
            a->kept_priority = ev->flag;
            break;
        }
        case ENGINE_EV_LEVEL: {
            m->kind = PROTO_book_level;
            proto_book_level_t *l = &m->book_level;
            s_copy (l->market, sizeof l->market, market);
            l->epoch = ev->epoch;
            l->side = ev->side;
            l->price = ev->price;
            l->qty = ev->qty;
            l->count = ev->count;
            break;
        }
        case ENGINE_EV_EPOCH: {
            m->kind = PROTO_epoch_state;
            proto_epoch_state_t *e = &m->epoch_state;
            int64_t len = self->cfg->markets[ev->market].epoch_seconds * MCE_NS_PER_SEC;
            s_copy (e->market, sizeof e->market, market);
            e->epoch = ev->epoch;
            e->state = ev->reason;
            e->start = ev->epoch * len;
            e->end = e->start + len;
            e->clearing_price = ev->price;
            e->volume = ev->qty;
            e->trades = ev->count;
            if (e->state == PROTO_EPOCH_PHASE_CLEARED) {
                e->demand = ev->demand;
                e->supply = ev->supply;
                e->value = ev->value;
                //  value is Wh × µ/kWh / 1000 per trade: back to µ/kWh, rounded down
                if (ev->qty > 0)
                    e->vwap = (int64_t) ((__int128) ev->value * 1000 / ev->qty);
            }
            break;
        }
        case ENGINE_EV_AUCTION: {
            m->kind = PROTO_auction;
            proto_auction_t *a = &m->auction;
            s_copy (a->market, sizeof a->market, market);
            a->epoch = ev->epoch;
            a->price = ev->price;
            a->volume = ev->qty;
            a->trades = ev->count;
            a->demand = ev->demand;
            a->supply = ev->supply;
            a->grid_sold = ev->grid > 0 ? ev->grid : 0;
            a->grid_bought = ev->grid < 0 ? -ev->grid : 0;
            a->triggered = ev->flag;
            break;
        }
        case ENGINE_EV_INDICATIVE: {
            m->kind = PROTO_indicative;
            proto_indicative_t *x = &m->indicative;
            s_copy (x->market, sizeof x->market, market);
            x->epoch = ev->epoch;
            x->price = ev->price;
            x->volume = ev->qty;
            x->demand = ev->demand;
            x->supply = ev->supply;
            x->grid_sold = ev->grid > 0 ? ev->grid : 0;
            x->grid_bought = ev->grid < 0 ? -ev->grid : 0;
            x->imbalance_side = ev->side;
            x->imbalance = ev->value;
            break;
        }
        case ENGINE_EV_MARKET: {
            m->kind = PROTO_market_state;
            proto_market_state_t *s = &m->market_state;
            s_copy (s->market, sizeof s->market, market);
            s_copy (s->by, sizeof s->by, user);
            s->state = ev->reason;
            s->action = ev->flag;
            break;
        }
        case ENGINE_EV_WITHDRAWAL: {
            m->kind = PROTO_withdrawal;
            proto_withdrawal_t *w = &m->withdrawal;
            s_copy (w->user, sizeof w->user, user);
            w->withdrawal_id = ev->order_id;
            w->asset = ev->side;
            w->amount = ev->qty;
            w->state = ev->reason;
            break;
        }
        default:
            assert (false);
    }
}

//  Every event message carries seq and ts in the same two places of its struct.
static void s_stamp (proto_msg_t *m, uint64_t seq, int64_t ts)
{
    switch (m->kind) {
#define S_STAMP(kind)                                                                              \
    case PROTO_##kind:                                                                             \
        m->kind.seq = seq;                                                                         \
        m->kind.ts = ts;                                                                           \
        break;
        S_STAMP (order_accepted)
        S_STAMP (order_rejected)
        S_STAMP (order_cancelled)
        S_STAMP (order_expired)
        S_STAMP (order_amended)
        S_STAMP (trade)
        S_STAMP (book_level)
        S_STAMP (epoch_state)
        S_STAMP (auction)
        S_STAMP (indicative)
        S_STAMP (market_state)
        S_STAMP (balance)
        S_STAMP (withdrawal)
        S_STAMP (clock)
#undef S_STAMP
        case PROTO_new_order:
            m->new_order.seq = seq;
            break;
        case PROTO_cancel_order:
            m->cancel_order.seq = seq;
            break;
        case PROTO_amend_order:
            m->amend_order.seq = seq;
            break;
        case PROTO_market_control:
            m->market_control.seq = seq;
            break;
        case PROTO_withdraw:
            m->withdraw.seq = seq;
            break;
        case PROTO_deposit_credit:
            m->deposit_credit.seq = seq;
            break;
        case PROTO_withdrawal_close:
            m->withdrawal_close.seq = seq;
            break;
        default:
            assert (false);
    }
}

//  ---------------------------------------------------------------------------------------
//  Journaling (live) and checking (recovery) go through one door

//  Live: appends msg with the next seq. Recovery: checks that the journal's next record is
//  exactly msg. 0, or -1 on a journal failure or a mismatch.
static int s_record (matcher_server_t *self, proto_msg_t *msg)
{
    if (!self->replay) {
        s_stamp (msg, bus_pub_last_seq (self->bus) + 1, self->now);
        atomic_fetch_add_explicit (&self->metrics.events, 1, memory_order_relaxed);
        if (msg->kind == PROTO_trade)
            atomic_fetch_add_explicit (&self->metrics.trades, 1, memory_order_relaxed);
        return bus_pub_append (self->bus, msg);
    }
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    const char *topic;
    const uint8_t *ev;
    size_t tlen, elen;
    if (journal_reader_next (self->replay, self->replay_last, &seq, &data, &len) != 1 ||
        bus_record_split (data, len, &topic, &tlen, &ev, &elen)) {
        self->replay_short = true;
        self->replay_error = -1;
        return -1;
    }
    s_stamp (msg, seq, self->now);
    proto_buf_reset (&self->expect);
    if (proto_encode (msg, &self->expect) || self->expect.len != elen ||
        memcmp (self->expect.data, ev, elen) != 0) {
        log_error ("matcher",
                   "recovery: journal seq %" PRIu64 " is not what the engine makes of the same "
                   "commands (engine: %s); refusing to start on a journal that does not "
                   "reproduce",
                   seq, proto_kind_name (msg->kind));
        self->replay_error = -1;
        return -1;
    }
    return 0;
}

//  The clock record goes in before the first thing decided at self->now.
static int s_clock (matcher_server_t *self)
{
    if (self->clock_journaled || self->replay)
        return 0;
    self->clock_journaled = true;
    proto_msg_t m = {.kind = PROTO_clock};
    return s_record (self, &m);
}

//  The bus message for a balance the command changed.
static void s_balance_to_proto (matcher_server_t *self, const engine_balance_t *b, proto_msg_t *m)
{
    m->kind = PROTO_balance;
    proto_balance_t *e = &m->balance;
    memset (e, 0, sizeof *e);
    s_copy (e->user, sizeof e->user, engine_user_name (self->engine, b->user));
    if (b->market < (uint32_t) self->cfg->market_count)
        s_copy (e->market, sizeof e->market, engine_market_name (self->engine, b->market));
    e->asset = b->asset;
    e->available = b->available;
    e->reserved = b->reserved;
    e->d_available = b->d_available;
    e->d_reserved = b->d_reserved;
    e->cause = b->cause;
    e->ref = b->ref;
}

//  Records the events of one engine call, then its balance changes; returns the seq of the
//  first (0 if none).
static int s_events (matcher_server_t *self, const engine_result_t *r, const proto_msg_t *cmd,
                     uint64_t *first_seq)
{
    uint64_t first = 0;
    proto_msg_t m;
    for (uint32_t i = 0; i < r->event_count; i++) {
        s_to_proto (self, &r->events[i], cmd, &m);
        if (s_record (self, &m))
            return -1;
        if (!first)
            first = proto_msg_seq (&m);
    }
    for (uint32_t i = 0; i < r->balance_count; i++) {
        engine_balance_t b;
        if (!engine_result_balance (self->engine, i, &b))
            continue;
        s_balance_to_proto (self, &b, &m);
        if (s_record (self, &m))
            return -1;
        if (!first)
            first = proto_msg_seq (&m);
    }
    if (first_seq)
        *first_seq = first;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Deciding

//  Moves the engine's epochs and expiries to self->now.
static int s_advance (matcher_server_t *self)
{
    const engine_result_t *r = engine_advance (self->engine, self->now);
    if (r->event_count == 0 && r->balance_count == 0)
        return 0;
    if (s_clock (self))
        return -1;
    return s_events (self, r, NULL, NULL);
}

static int s_role_admin (proto_role_t role)
{
    return role == PROTO_ROLE_ADMIN;
}

//  Decides one command (already journaled, or being replayed): engine, events, reply.
static int s_decide (matcher_server_t *self, proto_msg_t *cmd, proto_msg_t *reply)
{
    const engine_result_t *r = NULL;
    const char *market_name = proto_msg_market (cmd);
    int mi = market_name ? engine_market_find (self->engine, market_name) : -1;
    uint32_t market = mi < 0 ? UINT32_MAX : (uint32_t) mi;
    switch (cmd->kind) {
        case PROTO_new_order: {
            const proto_new_order_t *o = &cmd->new_order;
            engine_order_t eo = {.market = market,
                                 .user = engine_user_intern (self->engine, o->user),
                                 .admin = s_role_admin (o->role),
                                 .side = o->side,
                                 .type = o->type,
                                 .tif = o->tif,
                                 .post_only = o->post_only,
                                 .qty = o->qty,
                                 .price = o->price,
                                 .epoch = o->epoch,
                                 .expires_at = o->expires_at,
                                 .client_order_id = o->client_order_id};
            r = engine_new_order (self->engine, &eo, self->now);
            break;
        }
        case PROTO_cancel_order: {
            const proto_cancel_order_t *c = &cmd->cancel_order;
            r = engine_cancel (self->engine, market, engine_user_intern (self->engine, c->user),
                               s_role_admin (c->role), c->order_id, self->now);
            break;
        }
        case PROTO_amend_order: {
            const proto_amend_order_t *a = &cmd->amend_order;
            r = engine_amend (self->engine, market, engine_user_intern (self->engine, a->user),
                              s_role_admin (a->role), a->order_id, a->qty, a->price, self->now);
            break;
        }
        case PROTO_market_control: {
            const proto_market_control_t *c = &cmd->market_control;
            if (c->action == PROTO_CONTROL_ACTION_SNAPSHOT && s_role_admin (c->role) &&
                !self->replay)
                self->snapshot_requested = true;
            r = engine_control (self->engine, market, engine_user_intern (self->engine, c->user),
                                s_role_admin (c->role), c->action, self->now);
            break;
        }
        case PROTO_withdraw: {
            const proto_withdraw_t *w = &cmd->withdraw;
            r = engine_withdraw (self->engine, engine_user_intern (self->engine, w->user), w->asset,
                                 w->amount, self->now);
            break;
        }
        case PROTO_deposit_credit: {
            const proto_deposit_credit_t *d = &cmd->deposit_credit;
            r = engine_deposit (self->engine, engine_user_intern (self->engine, d->user), d->asset,
                                d->amount, d->deposit_id, self->now);
            break;
        }
        case PROTO_withdrawal_close: {
            const proto_withdrawal_close_t *c = &cmd->withdrawal_close;
            r = engine_withdrawal_close (self->engine, c->withdrawal_id, c->refund, self->now);
            break;
        }
        default:
            assert (false);
    }
    uint64_t first = 0;
    if (s_events (self, r, cmd, &first))
        return -1;
    if (!reply)
        return 0;
    uint64_t rid = cmd->new_order.rid; //  rid is the first field of every command
    memset (reply, 0, sizeof *reply);
    if (r->rejected) {
        reply->kind = PROTO_reject;
        reply->reject.rid = rid;
        reply->reject.reason = r->reason;
        s_copy (reply->reject.message, sizeof reply->reject.message, r->message);
        reply->reject.last_seq = self->replay ? 0 : bus_pub_last_seq (self->bus);
    }
    else {
        reply->kind = PROTO_ack;
        proto_ack_t *a = &reply->ack;
        a->rid = rid;
        a->order_id = r->order_id;
        a->seq = first;
        a->last_seq = self->replay ? 0 : bus_pub_last_seq (self->bus);
        a->epoch = r->epoch;
        a->status = r->status;
        a->filled = r->filled;
        a->remaining = r->remaining;
        a->ref = r->ref;
        a->duplicate = r->duplicate && !r->order_id; //  a resubmitted order answers as the first
    }
    return 0;
}

static const char *s_check_command (const proto_msg_t *msg)
{
    switch (msg->kind) {
        case PROTO_new_order:
        case PROTO_cancel_order:
        case PROTO_amend_order:
        case PROTO_market_control:
        case PROTO_withdraw:
        case PROTO_deposit_credit:
        case PROTO_withdrawal_close:
            return NULL;
        default:
            return "is not a command";
    }
}

//  Counts and logs a command dropped as malformed; body names its peer.
static void s_malformed (matcher_server_t *self, zmq_msg_t *body, int frames, const char *err)
{
    uint64_t malformed =
        atomic_fetch_add_explicit (&self->metrics.malformed, 1, memory_order_relaxed) + 1;
    //  ZeroMQ attaches the peer's address to frames from the wire, not to the routing id
    const char *peer = frames ? zmq_msg_gets (body, "Peer-Address") : NULL;
    log_warn ("matcher", "dropped malformed command #%" PRIu64 " from %s: %s", malformed,
              peer ? peer : "?", err);
}

//  One command (data, size) from the peer id: journaled and decided, its reply joining the
//  batch. 0 (decided, or dropped as malformed), or -1 on a journal failure.
static int s_command (matcher_server_t *self, zmq_msg_t *id, zmq_msg_t *body, const uint8_t *data,
                      size_t size, bool batched)
{
    atomic_fetch_add_explicit (&self->metrics.commands, 1, memory_order_relaxed);
    proto_msg_t cmd;
    char err[160] = "";
    if (proto_decode (data, size, &cmd, err, sizeof err) == 0 && s_check_command (&cmd))
        snprintf (err, sizeof err, "%s %s", proto_kind_name (cmd.kind), s_check_command (&cmd));
    if (err[0]) {
        s_malformed (self, body, 1, err);
        return 0;
    }
    assert (self->reply_count < self->batch_limit + PROTO_BATCH_MAX);
    s_reply_t *reply = &self->replies[self->reply_count++];
    reply->id_len = zmq_msg_size (id);
    memcpy (reply->id, zmq_msg_data (id), reply->id_len);
    reply->batched = batched;
    return s_clock (self) || s_record (self, &cmd) || s_decide (self, &cmd, &reply->msg) ? -1 : 0;
}

//  Reads one frame [id][body] and decides its command, or each command of a batch frame (a
//  gateway's loop turn: proto.h). 0 when one was read (decided, or dropped as malformed), 1
//  when none was waiting, -1 only on a journal failure.
static int s_handle_command (matcher_server_t *self)
{
    void *sock = zsock_resolve (self->router);
    zmq_msg_t id, body;
    zmq_msg_init (&id);
    zmq_msg_init (&body);
    int rc = 0;
    int frames = router_recv (sock, &id, &body, ZMQ_DONTWAIT);
    if (frames < 0) {
        rc = 1;
        goto done;
    }
    const uint8_t *data = zmq_msg_data (&body);
    size_t size = zmq_msg_size (&body);
    bool allowed = frames == 1 && curve_from_process (self->curve, &body);
    if (allowed && proto_batch_is (data, size)) {
        size_t offset = 0, count = 0, len;
        const uint8_t *one;
        int more = 0;
        while (rc == 0 && (more = proto_batch_next (data, size, &offset, &count, &one, &len)) == 1)
            rc = s_command (self, &id, &body, one, len, true);
        if (rc == 0 && more < 0) {
            atomic_fetch_add_explicit (&self->metrics.commands, 1, memory_order_relaxed);
            s_malformed (self, &body, frames,
                         "a batch frame cut inside a message, or of too many messages");
        }
    }
    else if (allowed)
        rc = s_command (self, &id, &body, data, size, false);
    else if (frames != 1) {
        atomic_fetch_add_explicit (&self->metrics.commands, 1, memory_order_relaxed);
        char err[80];
        snprintf (err, sizeof err, "expected one frame after the routing id, got %d", frames);
        s_malformed (self, &body, frames, err);
    }
    else {
        //  A monitor's key reads the bus; it never places, cancels or pauses anything.
        atomic_fetch_add_explicit (&self->metrics.commands, 1, memory_order_relaxed);
        uint64_t refused =
            atomic_fetch_add_explicit (&self->metrics.refused, 1, memory_order_relaxed) + 1;
        const char *peer = zmq_msg_gets (&body, "Peer-Address");
        log_warn ("matcher",
                  "refused command #%" PRIu64 " from %s: a monitor's key may not send commands",
                  refused, peer ? peer : "?");
    }
done:
    zmq_msg_close (&id);
    zmq_msg_close (&body);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Recovery

//  Re-executes the journal: clock records set the time and move epochs; commands are decided
//  again; every event must come out as journaled.
static int s_recover (matcher_server_t *self)
{
    journal_t *journal = bus_pub_journal (self->bus);
    uint64_t last = journal_last_seq (journal);
    if (last == 0)
        return 0;
    //  The newest whole snapshot the journal reaches, then the journal after it.
    uint64_t from = 1, snap_seq;
    int64_t snap_clock;
    size_t size;
    int64_t t0 = clock_mono_ns ();
    uint8_t *snap = snapshot_load (journal_dir (journal), last, &snap_seq, &snap_clock, &size);
    if (snap && journal_first_seq (journal) <= snap_seq + 1) {
        int restored = engine_restore (self->engine, snap, size);
        if (restored == -2)
            log_error ("matcher",
                       "snapshot seq %" PRIu64 ": a market's escrow, lot, tick or max_price "
                       "changed while orders rest in it, so what they hold would not match; "
                       "put the configuration back, or drain the market (clear its epochs) "
                       "before changing it",
                       snap_seq);
        if (restored == 0) {
            from = snap_seq + 1;
            self->now = snap_clock;
            self->snapshot_seq = snap_seq;
            log_info ("matcher",
                      "restored snapshot seq %" PRIu64 " (%zu bytes, %" PRIu64
                      " orders resting) in %.1f ms",
                      snap_seq, size, engine_resting (self->engine),
                      (double) (clock_mono_ns () - t0) / 1e6);
        }
        else if (restored == -2) {
            free (snap);
            return -1;
        }
        else
            log_warn ("matcher", "snapshot seq %" PRIu64 " does not restore: replaying the journal",
                      snap_seq);
    }
    free (snap);
    if (from > last)
        return 0;
    if (journal_first_seq (journal) > from) {
        //  Retention removed the start of history and there are no snapshots yet: the books
        //  cannot be rebuilt, so refuse rather than reuse order ids.
        log_error ("matcher",
                   "journal %s starts at seq %" PRIu64 " and no snapshot reaches it: the books "
                   "cannot be rebuilt; restore the removed segments or a snapshot",
                   journal_dir (journal), journal_first_seq (journal));
        return -1;
    }
    self->replay = journal_reader_new (journal_dir (journal), from);
    self->replay_last = last;
    if (!self->replay)
        return -1;
    t0 = clock_mono_ns ();
    uint64_t seq, commands = 0;
    const uint8_t *data;
    size_t len;
    int rc;
    uint64_t unit = 0; //  seq of the clock or command record being re-executed
    while ((rc = journal_reader_next (self->replay, last, &seq, &data, &len)) == 1) {
        unit = seq;
        const char *topic;
        const uint8_t *ev;
        size_t tlen, elen;
        proto_msg_t msg;
        char err[160];
        if (bus_record_split (data, len, &topic, &tlen, &ev, &elen) ||
            proto_decode (ev, elen, &msg, err, sizeof err)) {
            log_error ("matcher", "recovery: journal seq %" PRIu64 " does not decode", seq);
            rc = -1;
            break;
        }
        if (msg.kind == PROTO_clock) {
            self->now = msg.clock.ts;
            if (s_advance (self)) {
                rc = -1;
                break;
            }
        }
        else if (!s_check_command (&msg)) {
            if (s_decide (self, &msg, NULL)) {
                rc = -1;
                break;
            }
            commands++;
        }
        else {
            log_error ("matcher",
                       "recovery: journal seq %" PRIu64 " (%s) was not made by the commands "
                       "before it",
                       seq, proto_kind_name (msg.kind));
            rc = -1;
            break;
        }
    }
    journal_reader_destroy (&self->replay);
    if (self->replay_short) {
        //  A crash in the middle of writing a batch: the last command's events are not all
        //  there. That batch was never committed, so nothing of it was published or
        //  acknowledged: cut the journal back to before that command and recover again.
        log_warn ("matcher",
                  "recovery: the journal ends inside the effects of seq %" PRIu64
                  " (a batch cut short by a crash, never acknowledged): cutting it back",
                  unit);
        self->replay_short = false;
        self->replay_error = 0;
        if (bus_pub_truncate (self->bus, unit - 1))
            return -1;
        engine_t *fresh = engine_new (self->cfg);
        if (!fresh)
            return -1;
        engine_destroy (&self->engine);
        self->engine = fresh;
        self->now = 0;
        return s_recover (self);
    }
    if (rc < 0 || self->replay_error)
        return -1;
    double ms = (double) (clock_mono_ns () - t0) / 1e6;
    log_info ("matcher",
              "replayed %" PRIu64 " records (%" PRIu64 " commands) through seq %" PRIu64
              " in %.1f ms (%.0f records/s); %" PRIu64 " orders resting, state hash %016" PRIx64,
              last - from + 1, commands, last, ms,
              ms > 0 ? (double) (last - from + 1) / ms * 1000 : 0, engine_resting (self->engine),
              engine_state_hash (self->engine));
    return 0;
}

//  ---------------------------------------------------------------------------------------

static void s_metrics_resting (matcher_server_t *self)
{
    atomic_store_explicit (&self->metrics.resting, engine_resting (self->engine),
                           memory_order_relaxed);
    for (int i = 0; i < self->metrics.market_count; i++)
        atomic_store_explicit (&self->metrics.market_resting[i],
                               engine_market_resting (self->engine, (uint32_t) i),
                               memory_order_relaxed);
}

matcher_server_t *matcher_server_new (const mce_config_t *cfg)
{
    matcher_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    proto_buf_init (&self->out);
    proto_buf_init (&self->expect);
    self->batch_limit =
        cfg->matcher.fsync == JOURNAL_FSYNC_ALWAYS ? 1 : (size_t) cfg->matcher.batch_max;
    //  room for a batch frame's commands beyond the limit (the last frame is taken whole)
    self->replies = calloc (self->batch_limit + PROTO_BATCH_MAX, sizeof *self->replies);
    self->flight = calloc (self->batch_limit + PROTO_BATCH_MAX, sizeof *self->flight);
    self->engine = engine_new (cfg);
    self->curve = curve_new (cfg, "matcher", true);
    char dir[CONFIG_PATH_MAX + 16];
    bus_pub_opts_t opts = {
        .stream = "m",
        .curve = self->curve,
        .pub_endpoint = cfg->matcher.bus.pub,
        .replay_endpoint = cfg->matcher.bus.replay,
        .journal_dir = config_journal_dir (cfg, "matcher", dir, sizeof dir),
        .hold = true,          //  until recovery has cut any uncommitted tail
        .sndhwm = BUS_PUB_HWM, //  bursts go out whole; a slow subscriber still cannot stall us
        .journal = {.fsync = cfg->matcher.fsync,
                    .segment_bytes = (uint64_t) cfg->matcher.segment_mb << 20,
                    .retain_segments = (uint32_t) cfg->matcher.retain_segments},
    };
    if (!self->replies || !self->flight || !self->engine || !self->curve ||
        !(self->bus = bus_pub_new (&opts)) ||
        !(self->snapshots =
              snapshot_writer_new (opts.journal_dir, (int) cfg->matcher.snapshot_keep)) ||
        s_recover (self)) {
        matcher_server_destroy (&self);
        return NULL;
    }
    bus_pub_recovered (self->bus);
    self->metrics.market_count = cfg->market_count;
    for (int i = 0; i < cfg->market_count; i++)
        self->metrics.market_names[i] = cfg->markets[i].id;
    s_metrics_resting (self);
    atomic_store (&self->metrics.last_seq, bus_pub_committed_seq (self->bus));
    uint64_t hash = engine_state_hash (self->engine);
    matcher_metrics_hash (&self->metrics, bus_pub_committed_seq (self->bus), hash);
    if (cfg->matcher.metrics_port)
        self->metrics_server = matcher_metrics_serve (
            cfg->metrics_address, (int) cfg->matcher.metrics_port, &self->metrics);
    self->router = zsock_new (ZMQ_ROUTER);
    //  A frame longer than any command is refused from its header, never buffered.
    if (self->router)
        zsock_set_maxmsgsize (self->router, PROTO_MAX_SIZE);
    if (!self->router || curve_server (self->curve, self->router) < 0 ||
        bus_bind (self->router, cfg->matcher.commands) < 0) {
        log_error ("matcher", "cannot bind commands %s: %s", cfg->matcher.commands,
                   zmq_strerror (zmq_errno ()));
        matcher_server_destroy (&self);
        return NULL;
    }
    //  A gateway that vanished or stopped reading must not make replies pile up or block the
    //  loop: unroutable or over-the-limit replies are dropped (the gateway times out).
    zsock_set_router_mandatory (self->router, 0);
    log_info ("matcher", "commands on %s; %" PRIu64 " orders resting; state hash %016" PRIx64,
              cfg->matcher.commands, engine_resting (self->engine), hash);
    return self;
}

void matcher_server_destroy (matcher_server_t **self_p)
{
    assert (self_p);
    matcher_server_t *self = *self_p;
    if (!self)
        return;
    metrics_http_destroy (&self->metrics_server);
    zsock_destroy (&self->router);
    snapshot_writer_destroy (&self->snapshots);
    bus_pub_destroy (&self->bus);
    engine_destroy (&self->engine);
    curve_destroy (&self->curve); //  after every socket it serves
    proto_buf_free (&self->out);
    proto_buf_free (&self->expect);
    free (self->replies);
    free (self->flight);
    free (self);
    *self_p = NULL;
}

static bool s_same_peer (const s_reply_t *a, const s_reply_t *b)
{
    return a->id_len == b->id_len && memcmp (a->id, b->id, a->id_len) == 0;
}

//  Sends each reply to its peer; the replies to a batch frame go back together, in one batch
//  frame per run of them (at most PROTO_BATCH_MAX: more from one peer start another).
static void s_send_replies (matcher_server_t *self, s_reply_t *replies, size_t count)
{
    void *sock = zsock_resolve (self->router);
    for (size_t i = 0, n; i < count; i += n) {
        s_reply_t *r = &replies[i];
        proto_buf_reset (&self->out);
        n = 1;
        if (r->batched) {
            proto_batch_start (&self->out);
            for (n = 0; n < PROTO_BATCH_MAX && i + n < count && replies[i + n].batched &&
                        s_same_peer (r, &replies[i + n]);
                 n++)
                proto_batch_encode (&self->out, &replies[i + n].msg);
        }
        else if (proto_encode (&r->msg, &self->out))
            continue;
        zmq_send (sock, r->id, r->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send (sock, self->out.data, self->out.len, ZMQ_DONTWAIT);
    }
}

//  In the snapshot writer's child process.
static uint8_t *s_serialise (void *engine, size_t *size, uint64_t *hash)
{
    *hash = engine_state_hash (engine);
    return engine_snapshot (engine, size);
}

//  Starts a snapshot of the committed state (nothing may be in flight or appended): everything
//  through `seq`, the end of a batch, so replay resumes at a clock.
static void s_snapshot (matcher_server_t *self)
{
    uint64_t seq = bus_pub_committed_seq (self->bus);
    assert (!bus_pub_busy (self->bus) && seq == bus_pub_last_seq (self->bus));
    if (snapshot_writer_start (self->snapshots, seq, self->now, s_serialise, self->engine) == 1)
        return; //  the previous one is still being written: try again after the next batch
    self->snapshot_requested = false;
    self->snapshot_seq = seq;
}

//  Reaps a finished snapshot writer and shows the state hash its child computed.
static void s_reap_snapshot (matcher_server_t *self)
{
    uint64_t before = snapshot_writer_written (self->snapshots);
    if (!snapshot_writer_busy (self->snapshots) &&
        snapshot_writer_written (self->snapshots) != before) {
        uint64_t hash;
        uint64_t seq = snapshot_writer_last (self->snapshots, &hash);
        matcher_metrics_hash (&self->metrics, seq, hash);
    }
}

//  A snapshot is due by count or by request, unless the previous one is still being written
//  (then it waits, and commands go on).
static bool s_snapshot_due (matcher_server_t *self)
{
    uint64_t every = (uint64_t) self->cfg->matcher.snapshot_every;
    if (!self->snapshot_requested &&
        !(every && bus_pub_committed_seq (self->bus) - self->snapshot_seq >= every))
        return false;
    s_reap_snapshot (self);
    return !snapshot_writer_busy (self->snapshots);
}

//  The clock of a new batch: the wall clock, but never earlier than the last one journaled,
//  so that time in the journal only moves forward.
static void s_begin_batch (matcher_server_t *self)
{
    int64_t wall = clock_wall_ns ();
    if (wall > self->now)
        self->now = wall;
    self->clock_journaled = false;
}

//  Hands what was decided since the last submit to the writer; its replies wait in flight.
static int s_submit (matcher_server_t *self)
{
    if (bus_pub_submit (self->bus))
        return -1;
    s_reply_t *swap = self->flight;
    self->flight = self->replies;
    self->flight_count = self->reply_count;
    self->replies = swap;
    self->reply_count = 0;
    self->flight_started = clock_mono_ns ();
    return 0;
}

//  The batch in flight is durable and published: acknowledge its commands.
static int s_collect (matcher_server_t *self)
{
    if (bus_pub_collect (self->bus)) {
        log_error ("matcher",
                   "journal commit failed: stopping; nothing after seq %" PRIu64
                   " was acknowledged",
                   bus_pub_committed_seq (self->bus));
        return -1;
    }
    s_send_replies (self, self->flight, self->flight_count);
    matcher_metrics_batch (&self->metrics, (uint64_t) self->flight_count,
                           clock_mono_ns () - self->flight_started);
    self->flight_count = 0;
    atomic_store_explicit (&self->metrics.last_seq, bus_pub_committed_seq (self->bus),
                           memory_order_relaxed);
    atomic_store_explicit (&self->metrics.journal_bytes, bus_pub_journal_bytes (self->bus),
                           memory_order_relaxed);
    return 0;
}

//  Watches the ROUTER (only while the batch has room) and the writer's answer with epoll on
//  their ZMQ_FDs. zmq_poll asks every socket for its events around each wait, and the loop
//  asked the ROUTER again before each command: a system call each time, most of the loop's
//  cost at a few commands per batch. A ZMQ_FD only signals after a read found its socket empty
//  (libzmq's pipes wake a reader that went to sleep), so the ROUTER is read until empty or
//  marked pending, and the writer's socket is looked at once after each submit.
static int s_epoll_set (int loop_fd, int op, void *sock, uint32_t which, bool on)
{
    int fd;
    size_t size = sizeof fd;
    if (zmq_getsockopt (sock, ZMQ_FD, &fd, &size))
        return -1;
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.u32 = which};
    return epoll_ctl (loop_fd, op, fd, &ev);
}

int matcher_server_run (matcher_server_t *self)
{
    enum { S_ROUTER, S_WRITER };
    void *router = zsock_resolve (self->router);
    void *writer = bus_pub_pollable (self->bus);
    int loop_fd = epoll_create1 (EPOLL_CLOEXEC);
    if (loop_fd < 0 || s_epoll_set (loop_fd, EPOLL_CTL_ADD, router, S_ROUTER, true) ||
        s_epoll_set (loop_fd, EPOLL_CTL_ADD, writer, S_WRITER, true)) {
        log_error ("matcher", "epoll: %s", strerror (errno));
        if (loop_fd >= 0)
            close (loop_fd);
        return -1;
    }
    bool router_on = true;       //  the ROUTER's fd is in the epoll set
    bool router_pending = true;  //  commands may be waiting without a signal
    bool writer_checked = false; //  the writer's socket was looked at since the last submit
    int64_t next_tick = clock_mono_ns ();
    int rc = 0;
    while (!zsys_interrupted) {
        //  Commands wait while a snapshot is due, so that the in-flight batch drains.
        bool due = s_snapshot_due (self);
        bool room = !due && self->reply_count < self->batch_limit;
        bool busy = bus_pub_busy (self->bus);
        bool waiting = self->reply_count || bus_pub_appended (self->bus);
        if (room != router_on) {
            if (s_epoll_set (loop_fd, EPOLL_CTL_MOD, router, S_ROUTER, room)) {
                rc = -1;
                break;
            }
            router_on = room;
        }
        bool done = false;
        if (busy && !writer_checked) {
            done = zsock_events (writer) & ZMQ_POLLIN;
            writer_checked = true;
        }
        int64_t mono = clock_mono_ns ();
        long wait_ms = next_tick > mono ? (long) ((next_tick - mono) / MCE_NS_PER_MSEC) + 1 : 0;
        if ((waiting && !busy) || done || (room && router_pending))
            wait_ms = 0;
        struct epoll_event evs[2];
        int n = epoll_wait (loop_fd, evs, 2, (int) wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error ("matcher", "epoll_wait: %s", strerror (errno));
            rc = -1;
            break;
        }
        bool ready[2] = {false, false};
        for (int i = 0; i < n; i++)
            ready[evs[i].data.u32] = true;
        if (busy && !done && ready[S_WRITER])
            done = zsock_events (writer) & ZMQ_POLLIN;
        if (done) {
            if (s_collect (self)) {
                rc = -1;
                break;
            }
            router_pending = true; //  the replies went out on it: see above
        }
        bool commands = room && (ready[S_ROUTER] || router_pending);
        if (commands || clock_mono_ns () >= next_tick) {
            //  Decide: the clock, epoch changes due by now, then the commands waiting (up to
            //  the room left in the batch).
            if (!commands) {
                next_tick = clock_mono_ns () + S_TICK_MS * MCE_NS_PER_MSEC;
                s_reap_snapshot (self);
            }
            s_begin_batch (self);
            if (s_advance (self)) {
                rc = -1;
                break;
            }
            if (commands) {
                int got = 0;
                router_pending = true; //  unless the ROUTER is read until empty below
                for (size_t k = 0; k < self->batch_limit && self->reply_count < self->batch_limit;
                     k++) {
                    got = s_handle_command (self);
                    if (got)
                        break;
                }
                if (got < 0) {
                    rc = -1;
                    break;
                }
                if (got == 1)
                    router_pending = false;
            }
            s_metrics_resting (self);
            atomic_store_explicit (&self->metrics.snapshots,
                                   snapshot_writer_written (self->snapshots), memory_order_relaxed);
        }
        if (!bus_pub_busy (self->bus) && (self->reply_count || bus_pub_appended (self->bus))) {
            if (s_submit (self)) {
                rc = -1;
                break;
            }
            writer_checked = false;
        }
        if (due && !bus_pub_busy (self->bus) && !bus_pub_appended (self->bus))
            s_snapshot (self);
    }
    close (loop_fd);
    if (rc)
        return -1;
    //  Finish what was decided: it is journaled and acknowledged before stopping.
    if ((bus_pub_busy (self->bus) && s_collect (self)) ||
        ((self->reply_count || bus_pub_appended (self->bus)) &&
         (s_submit (self) || s_collect (self))))
        return -1;
    snapshot_writer_wait (self->snapshots);
    log_info ("matcher",
              "stopping at seq %" PRIu64 " after %" PRIu64 " commands in %" PRIu64
              " batches (%" PRIu64 " malformed); state hash %016" PRIx64,
              bus_pub_committed_seq (self->bus), atomic_load (&self->metrics.commands),
              atomic_load (&self->metrics.batches), atomic_load (&self->metrics.malformed),
              engine_state_hash (self->engine));
    return 0;
}
