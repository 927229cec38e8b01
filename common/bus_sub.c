/*  bus_sub — see bus_sub.h. Raw libzmq calls on czmq sockets: two frames per event, no zmsg_t
    allocation per message on the consumer's hot path.
*/
#include "bus_sub.h"
#include "bus_pub.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define S_RESEND_SOON_MS 20 //  a request that could not be sent is tried again this soon

#define S_TOPIC_MAX 256

struct _bus_sub_t {
    char name[32];
    char stream[8];
    char pub_endpoint[256];
    char replay_endpoint[256];
    zsock_t *sub;
    zsock_t *replay;
    uint64_t last_seq;
    uint64_t head_seq;
    bool replay_outstanding;
    bool replay_drained;     //  bus_sub_recv (timeout 0) found the replay socket empty this round
    uint64_t replay_from;    //  `from` of the outstanding request: only its replay_end counts
    int64_t replay_deadline; //  monotonic ns after which the request is sent again
    int replay_timeout_ms;
    zmq_msg_t topic, body; //  the frames of the event last handed out
    bus_sub_stats_t stats;
};

static void s_request_replay (bus_sub_t *self)
{
    proto_msg_t req = {.kind = PROTO_replay_req};
    req.replay_req.from = self->last_seq + 1;
    self->replay_from = req.replay_req.from;
    //  As much as one answer may carry: a subscriber that fell behind drops the live events
    //  until replay reaches them, so it catches up in as few round trips as the producer allows.
    req.replay_req.max = BUS_REPLAY_BATCH_MAX;
    proto_buf_t buf;
    proto_buf_init (&buf);
    bool sent = false;
    if (proto_encode (&req, &buf) == 0) {
        //  With ZMQ_IMMEDIATE nothing is queued while the producer is away: the send fails and
        //  the request is sent again later, so requests never pile up. "Later" is soon when the
        //  send failed (the connection is often just not up yet, as at start), the full timeout
        //  when it went out and the answer is what we wait for.
        sent = zmq_send (zsock_resolve (self->replay), buf.data, buf.len, ZMQ_DONTWAIT) >= 0;
        if (sent)
            self->stats.replays++;
    }
    proto_buf_free (&buf);
    self->replay_outstanding = true;
    self->replay_deadline =
        clock_mono_ns () +
        (int64_t) (sent ? self->replay_timeout_ms : S_RESEND_SOON_MS) * MCE_NS_PER_MSEC;
    log_debug ("bus", "%s: stream %s: replay from seq %" PRIu64, self->name, self->stream,
               self->last_seq + 1);
}

bus_sub_t *bus_sub_new (const bus_sub_opts_t *opts)
{
    bus_sub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->name, sizeof self->name, "%s", opts->name ? opts->name : "consumer");
    snprintf (self->stream, sizeof self->stream, "%s", opts->stream);
    snprintf (self->pub_endpoint, sizeof self->pub_endpoint, "%s", opts->pub_endpoint);
    snprintf (self->replay_endpoint, sizeof self->replay_endpoint, "%s", opts->replay_endpoint);
    self->last_seq = opts->last_seq;
    self->replay_timeout_ms =
        opts->replay_timeout_ms > 0 ? opts->replay_timeout_ms : BUS_SUB_REPLAY_TIMEOUT_MS;
    zmq_msg_init (&self->topic);
    zmq_msg_init (&self->body);
    self->sub = zsock_new (ZMQ_SUB);
    self->replay = zsock_new (ZMQ_DEALER);
    if (!self->sub || !self->replay) {
        bus_sub_destroy (&self);
        return NULL;
    }
    if (opts->rcvhwm > 0)
        zsock_set_rcvhwm (self->sub, opts->rcvhwm);
    char prefix[16];
    snprintf (prefix, sizeof prefix, "%s.", self->stream);
    zsock_set_subscribe (self->sub, prefix);
    //  A request must not linger or queue for a producer that is gone; it is re-sent on timeout.
    zsock_set_linger (self->replay, 0);
    zsock_set_immediate (self->replay, 1);
    if (curve_client (opts->curve, self->sub, opts->server) < 0 ||
        curve_client (opts->curve, self->replay, opts->server) < 0) {
        bus_sub_destroy (&self);
        return NULL;
    }
    if (zsock_connect (self->sub, "%s", opts->pub_endpoint) < 0 ||
        zsock_connect (self->replay, "%s", opts->replay_endpoint) < 0) {
        log_error ("bus", "%s: cannot connect to stream %s at %s / %s", self->name, self->stream,
                   opts->pub_endpoint, opts->replay_endpoint);
        bus_sub_destroy (&self);
        return NULL;
    }
    //  Subscribed first, then catch up: whatever is published meanwhile is either in the
    //  replay or arrives live after it.
    s_request_replay (self);
    return self;
}

void bus_sub_destroy (bus_sub_t **self_p)
{
    assert (self_p);
    bus_sub_t *self = *self_p;
    if (!self)
        return;
    zmq_msg_close (&self->topic);
    zmq_msg_close (&self->body);
    zsock_destroy (&self->sub);
    zsock_destroy (&self->replay);
    free (self);
    *self_p = NULL;
}

uint64_t bus_sub_last_seq (bus_sub_t *self)
{
    return self->last_seq;
}

uint64_t bus_sub_head_seq (bus_sub_t *self)
{
    return self->head_seq;
}

bus_sub_stats_t bus_sub_stats (bus_sub_t *self)
{
    return self->stats;
}

//  Reads [topic][body] from sock into self->topic/body. 0, or -1 if it was not two frames
//  (the rest of the message is drained).
//  Receives [topic][event] into self->topic and self->body. 0, -1 when malformed, or -2 when
//  flags has ZMQ_DONTWAIT and nothing is there (the rest of a message is always there).
static int s_recv_pair (bus_sub_t *self, void *sock, int flags)
{
    int frames = 0;
    int more = 1;
    while (more) {
        zmq_msg_t *dst = frames == 0 ? &self->topic : &self->body;
        if (frames >= 2) {
            zmq_msg_t junk;
            zmq_msg_init (&junk);
            zmq_msg_recv (&junk, sock, 0);
            more = zmq_msg_more (&junk);
            zmq_msg_close (&junk);
        }
        else {
            if (zmq_msg_recv (dst, sock, frames == 0 ? flags : 0) < 0)
                return frames == 0 && zmq_errno () == EAGAIN ? -2 : -1;
            more = zmq_msg_more (dst);
        }
        frames++;
    }
    return frames == 2 ? 0 : -1;
}

static bool s_topic_is (zmq_msg_t *topic, const char *stream, const char *kind)
{
    char want[64];
    int n = snprintf (want, sizeof want, "%s.%s", stream, kind);
    return zmq_msg_size (topic) == (size_t) n &&
           memcmp (zmq_msg_data (topic), want, (size_t) n) == 0;
}

static void s_malformed (bus_sub_t *self, const char *source, const char *why)
{
    self->stats.malformed++;
    log_warn ("bus", "%s: stream %s: dropped malformed frame #%" PRIu64 " from %s: %s", self->name,
              self->stream, self->stats.malformed, source, why);
}

//  Handles a replay_end. Asks for more if the producer holds more.
static void s_replay_end (bus_sub_t *self)
{
    proto_msg_t msg;
    char err[160];
    if (proto_decode_kind (PROTO_replay_end, zmq_msg_data (&self->body), zmq_msg_size (&self->body),
                           &msg, err, sizeof err)) {
        s_malformed (self, self->replay_endpoint, err);
        return;
    }
    const proto_replay_end_t *end = &msg.replay_end;
    if (!self->replay_outstanding || end->from != self->replay_from)
        return; //  the end of an answer to a request that timed out: its events were handled
    self->head_seq = end->head; //  the producer's word, even if it went back
    if (end->status == PROTO_REPLAY_STATUS_GONE && end->first > self->last_seq + 1) {
        //  Retention already removed what we need: nothing can bring it back. Say so loudly
        //  and go on from the oldest seq that still exists.
        log_error ("bus",
                   "%s: stream %s: seqs %" PRIu64 "..%" PRIu64
                   " are no longer retained by the producer; continuing from %" PRIu64,
                   self->name, self->stream, self->last_seq + 1, end->first - 1, end->first);
        self->last_seq = end->first - 1;
        s_request_replay (self);
        return;
    }
    if (end->last < end->from && end->head >= end->from) {
        //  The producer holds more but sent none (it logs why): keep the request outstanding
        //  so it is asked again after the timeout, not in a tight loop.
        log_warn ("bus",
                  "%s: stream %s: replay from %" PRIu64 " returned nothing (head %" PRIu64
                  "); asking again in %d ms",
                  self->name, self->stream, end->from, end->head, self->replay_timeout_ms);
        return;
    }
    self->replay_outstanding = false;
    if (self->head_seq > self->last_seq)
        s_request_replay (self); //  more than one bounded answer's worth: next batch
}

//  Decides what to do with the event in self->topic/body. Returns 1 if it is to be delivered.
static int s_consider (bus_sub_t *self, bus_event_t *event, bool from_replay)
{
    char err[160];
    const char *source = from_replay ? self->replay_endpoint : self->pub_endpoint;
    if (zmq_msg_size (&self->topic) == 0 || zmq_msg_size (&self->topic) > S_TOPIC_MAX) {
        s_malformed (self, source, "bad topic frame");
        return 0;
    }
    if (from_replay && self->replay_outstanding) //  an answer is streaming in: not lost
        self->replay_deadline =
            clock_mono_ns () + (int64_t) self->replay_timeout_ms * MCE_NS_PER_MSEC;
    if (from_replay && s_topic_is (&self->topic, self->stream, "replay_end")) {
        s_replay_end (self);
        return 0;
    }
    if (proto_decode (zmq_msg_data (&self->body), zmq_msg_size (&self->body), &event->msg, err,
                      sizeof err)) {
        s_malformed (self, source, err);
        return 0;
    }
    if (event->msg.kind == PROTO_heartbeat) {
        self->stats.heartbeats++;
        self->stats.heartbeat_ns = clock_mono_ns ();
        uint64_t head = event->msg.heartbeat.seq;
        if (head > self->head_seq)
            self->head_seq = head;
        if (head > self->last_seq && !self->replay_outstanding) {
            self->stats.gaps++;
            s_request_replay (self);
        }
        return 0;
    }
    uint64_t seq = proto_msg_seq (&event->msg);
    if (seq == 0) {
        s_malformed (self, source, "event without seq");
        return 0;
    }
    if (seq > self->head_seq)
        self->head_seq = seq;
    if (seq <= self->last_seq) {
        self->stats.duplicates++;
        return 0;
    }
    if (seq > self->last_seq + 1) {
        //  Missed something: drop this one, the replay brings it back in order.
        self->stats.gaps++;
        if (!self->replay_outstanding)
            s_request_replay (self);
        return 0;
    }
    self->last_seq = seq;
    self->stats.delivered++;
    event->seq = seq;
    event->topic = zmq_msg_data (&self->topic);
    event->topic_len = zmq_msg_size (&self->topic);
    event->data = zmq_msg_data (&self->body);
    event->size = zmq_msg_size (&self->body);
    return 1;
}

int bus_sub_recv (bus_sub_t *self, bus_event_t *event, int timeout_ms)
{
    zmq_pollitem_t items[2];
    bus_sub_pollitems (self, items);
    if (timeout_ms == 0) {
        //  Draining without waiting (a consumer with its own loop): straight reads, no poll
        //  per event, which is what a busy consumer would otherwise spend its time on.
        if (self->replay_outstanding && clock_mono_ns () >= self->replay_deadline)
            s_request_replay (self);
        //  A round of such calls (until one returns 0) looks at the replay socket once: it is
        //  empty nearly always, and each empty read costs a system call.
        for (int i = self->replay_drained ? 1 : 0; i < 2; i++) {
            int rc;
            while ((rc = s_recv_pair (self, items[i].socket, ZMQ_DONTWAIT)) != -2) {
                if (rc) {
                    s_malformed (self, i == 0 ? self->replay_endpoint : self->pub_endpoint,
                                 "expected [topic][event]");
                    continue;
                }
                if (s_consider (self, event, i == 0))
                    return 1;
            }
            if (i == 0)
                self->replay_drained = true;
        }
        self->replay_drained = false;
        return 0;
    }
    int64_t deadline = clock_mono_ns () + (int64_t) timeout_ms * MCE_NS_PER_MSEC;
    while (!zsys_interrupted) {
        int64_t now = clock_mono_ns ();
        if (self->replay_outstanding && now >= self->replay_deadline)
            s_request_replay (self);
        long wait_ms = -1;
        if (timeout_ms >= 0)
            wait_ms = deadline > now
                          ? (long) ((deadline - now + MCE_NS_PER_MSEC - 1) / MCE_NS_PER_MSEC)
                          : 0;
        if (self->replay_outstanding) {
            long until_resend = (long) ((self->replay_deadline - now) / MCE_NS_PER_MSEC) + 1;
            if (wait_ms < 0 || until_resend < wait_ms)
                wait_ms = until_resend;
        }
        int rc = zmq_poll (items, 2, wait_ms);
        if (rc < 0)
            return zmq_errno () == EINTR ? 0 : -1;
        //  Replay answers first: while catching up, live events are mostly ahead of us.
        for (int i = 0; i < 2; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            if (s_recv_pair (self, items[i].socket, 0)) {
                s_malformed (self, i == 0 ? self->replay_endpoint : self->pub_endpoint,
                             "expected [topic][event]");
                continue;
            }
            if (s_consider (self, event, i == 0))
                return 1;
        }
        if (timeout_ms >= 0 && clock_mono_ns () >= deadline)
            return 0;
    }
    return 0;
}

void bus_sub_fds (bus_sub_t *self, int fds[2])
{
    fds[0] = zsock_fd (self->replay);
    fds[1] = zsock_fd (self->sub);
}

bool bus_sub_replaying (bus_sub_t *self)
{
    return self->replay_outstanding;
}

void bus_sub_pollitems (bus_sub_t *self, zmq_pollitem_t items[2])
{
    items[0] = (zmq_pollitem_t){zsock_resolve (self->replay), 0, ZMQ_POLLIN, 0};
    items[1] = (zmq_pollitem_t){zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0};
}

bus_sub_t *bus_sub_new_for (const mce_config_t *cfg, const curve_t *curve, const char *stream,
                            const char *name, uint64_t last_seq)
{
    bool settler = strcmp (stream, "s") == 0;
    const config_bus_t *bus = settler ? &cfg->settler.bus : &cfg->matcher.bus;
    bus_sub_opts_t opts = {.name = name,
                           .curve = curve,
                           .server = settler ? "settler" : "matcher",
                           .stream = stream,
                           .pub_endpoint = bus->pub,
                           .replay_endpoint = bus->replay,
                           .last_seq = last_seq,
                           //  a burst must not overflow into drops: each costs a replay, and a
                           //  gap at the end of a burst is only seen at the next heartbeat
                           .rcvhwm = BUS_SUB_HWM};
    bus_sub_t *self = bus_sub_new (&opts);
    if (self)
        log_info ("bus", "%s: following stream %s at %s (replay %s) after seq %" PRIu64, name,
                  stream, bus->pub, bus->replay, last_seq);
    return self;
}
