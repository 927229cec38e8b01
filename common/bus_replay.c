/*  bus_replay — see bus_replay.h. A czmq actor: its pipe carries only the stop signal, the
    ROUTER carries requests. One journal reader is kept between requests, so a consumer
    catching up batch after batch never rescans a segment from its start.
*/
#include "bus_replay.h"
#include "bus_pub.h"
#include "journal.h"
#include "log.h"
#include "proto.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>

#define S_SNDHWM (4 * BUS_REPLAY_BATCH_MAX)

struct _bus_replay_t {
    zactor_t *actor;
    void *args; //  s_args_t, read by the actor, freed after it stops
};

typedef struct {
    char stream[8];
    char endpoint[256];
    char journal_dir[4096];
    const _Atomic uint64_t *committed;
    const curve_t *curve;
} s_args_t;

typedef struct {
    s_args_t *args;
    zsock_t *router;
    journal_reader_t *reader; //  kept open between requests
    proto_buf_t out;
    uint64_t requests, malformed;
} s_server_t;

//  Who sent a request: the TCP peer address that ZeroMQ attaches to frames received from the
//  wire (not to the routing id ROUTER makes up), else the routing id in hex.
static void s_peer_name (zmq_msg_t *id_frame, zmq_msg_t *wire_frame, char *buf, size_t size)
{
    const char *addr = wire_frame ? zmq_msg_gets (wire_frame, "Peer-Address") : NULL;
    if (addr) {
        snprintf (buf, size, "%s", addr);
        return;
    }
    const uint8_t *id = zmq_msg_data (id_frame);
    size_t n = zmq_msg_size (id_frame), o = 0;
    for (size_t i = 0; i < n && o + 3 < size; i++)
        o += (size_t) snprintf (buf + o, size - o, "%02x", id[i]);
    if (o == 0)
        snprintf (buf, size, "?");
}

static void s_send_end (s_server_t *self, zmq_msg_t *id, const proto_replay_end_t *end)
{
    proto_msg_t msg = {.kind = PROTO_replay_end};
    msg.replay_end = *end;
    proto_buf_reset (&self->out);
    if (proto_encode (&msg, &self->out))
        return;
    char topic[BUS_TOPIC_MAX];
    int tlen = snprintf (topic, sizeof topic, "%s.replay_end", self->args->stream);
    void *sock = zsock_resolve (self->router);
    if (zmq_send (sock, zmq_msg_data (id), zmq_msg_size (id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return; //  gone or not reading: it asks again after its timeout
    zmq_send (sock, topic, (size_t) tlen, ZMQ_SNDMORE);
    zmq_send (sock, self->out.data, self->out.len, 0);
}

static void s_serve (s_server_t *self, zmq_msg_t *id, const proto_replay_req_t *req)
{
    uint64_t head = atomic_load (self->args->committed);
    uint64_t first = journal_dir_first_seq (self->args->journal_dir);
    proto_replay_end_t end = {
        .from = req->from, .head = head, .first = first, .status = PROTO_REPLAY_STATUS_OK};
    uint64_t from = req->from ? req->from : 1;
    end.last = from - 1;
    if (first && from < first) {
        end.status = PROTO_REPLAY_STATUS_GONE;
        s_send_end (self, id, &end);
        return;
    }
    if (from > head) {
        s_send_end (self, id, &end); //  nothing newer yet
        return;
    }
    uint32_t max = req->max ? req->max : BUS_REPLAY_BATCH;
    if (max > BUS_REPLAY_BATCH_MAX)
        max = BUS_REPLAY_BATCH_MAX;
    uint64_t limit = from + max - 1 < head ? from + max - 1 : head;
    if (!self->reader || journal_reader_position (self->reader) != from) {
        journal_reader_destroy (&self->reader);
        self->reader = journal_reader_new (self->args->journal_dir, from);
    }
    void *sock = zsock_resolve (self->router);
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    while (self->reader && journal_reader_next (self->reader, limit, &seq, &data, &len) == 1) {
        const char *topic;
        const uint8_t *ev;
        size_t tlen, elen;
        if (bus_record_split (data, len, &topic, &tlen, &ev, &elen)) {
            log_error ("replay", "stream %s: journal record %" PRIu64 " is malformed",
                       self->args->stream, seq);
            break;
        }
        if (seq < from)
            continue;
        if (zmq_send (sock, zmq_msg_data (id), zmq_msg_size (id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            //  The peer is gone or not reading: drop the rest, it will ask again.
            log_debug ("replay", "stream %s: answer cut at seq %" PRIu64 ": %s", self->args->stream,
                       seq, zmq_strerror (zmq_errno ()));
            journal_reader_destroy (&self->reader);
            return;
        }
        zmq_send (sock, topic, tlen, ZMQ_SNDMORE);
        zmq_send (sock, ev, elen, 0);
        end.last = seq;
    }
    if (end.last < limit) {
        //  Committed seqs must be on disk: say so, and start afresh next time.
        log_error ("replay",
                   "stream %s: journal ends at seq %" PRIu64 " but %" PRIu64 " is committed",
                   self->args->stream, end.last, limit);
        journal_reader_destroy (&self->reader);
    }
    s_send_end (self, id, &end);
}

static void s_handle_request (s_server_t *self)
{
    void *sock = zsock_resolve (self->router);
    zmq_msg_t id, body;
    zmq_msg_init (&id);
    zmq_msg_init (&body);
    if (zmq_msg_recv (&id, sock, 0) < 0) {
        zmq_msg_close (&id);
        zmq_msg_close (&body);
        return;
    }
    int frames = 0;
    bool ok = true;
    while (zmq_msg_more (frames ? &body : &id)) {
        zmq_msg_close (&body);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&body, sock, 0) < 0) {
            ok = false;
            break;
        }
        frames++;
    }
    self->requests++;
    char peer[128];
    s_peer_name (&id, frames ? &body : NULL, peer, sizeof peer);
    proto_msg_t msg;
    char err[160] = "";
    if (ok && frames != 1)
        snprintf (err, sizeof err, "expected 1 frame after the routing id, got %d", frames);
    else if (ok)
        proto_decode_kind (PROTO_replay_req, zmq_msg_data (&body), zmq_msg_size (&body), &msg, err,
                           sizeof err);
    if (!ok || err[0]) {
        self->malformed++;
        log_warn ("replay", "stream %s: dropped malformed request #%" PRIu64 " from %s: %s",
                  self->args->stream, self->malformed, peer, err[0] ? err : "receive failed");
    }
    else
        s_serve (self, &id, &msg.replay_req);
    zmq_msg_close (&id);
    zmq_msg_close (&body);
}

static void s_actor (zsock_t *pipe, void *arg)
{
    s_server_t self = {.args = arg};
    proto_buf_init (&self.out);
    self.router = zsock_new (ZMQ_ROUTER);
    if (self.router) {
        //  Room for a few full answers per peer; past that (a consumer that stopped reading)
        //  the answer is cut short and the consumer asks again. Mandatory routing turns a
        //  vanished peer into an error instead of silently queueing for it.
        zsock_set_sndhwm (self.router, S_SNDHWM);
        zsock_set_router_mandatory (self.router, 1);
        zsock_set_maxmsgsize (self.router, PROTO_MAX_SIZE); //  requests are small messages
    }
    if (!self.router || curve_server (self.args->curve, self.router) < 0 ||
        bus_bind (self.router, self.args->endpoint) < 0) {
        log_error ("replay", "stream %s: cannot bind %s: %s", self.args->stream,
                   self.args->endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&self.router);
        proto_buf_free (&self.out);
        zsock_signal (pipe, 0); //  zactor_new's handshake
        zsock_signal (pipe, 1); //  our status: failed
        return;
    }
    zsock_signal (pipe, 0);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, self.router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe || !which)
            break; //  $TERM, or the context is shutting down
        s_handle_request (&self);
    }
    zpoller_destroy (&poller);
    journal_reader_destroy (&self.reader);
    zsock_destroy (&self.router);
    proto_buf_free (&self.out);
}

bus_replay_t *bus_replay_new (const char *stream, const char *endpoint, const char *journal_dir,
                              const _Atomic uint64_t *committed, const curve_t *curve)
{
    bus_replay_t *self = calloc (1, sizeof *self);
    s_args_t *args = calloc (1, sizeof *args);
    if (!self || !args) {
        free (self);
        free (args);
        return NULL;
    }
    snprintf (args->stream, sizeof args->stream, "%s", stream);
    snprintf (args->endpoint, sizeof args->endpoint, "%s", endpoint);
    snprintf (args->journal_dir, sizeof args->journal_dir, "%s", journal_dir);
    args->committed = committed;
    args->curve = curve;
    //  zactor_new consumes the actor's first signal; the second one is the bind status.
    self->actor = zactor_new (s_actor, args);
    self->args = args;
    if (!self->actor || zsock_wait (self->actor) != 0) {
        bus_replay_destroy (&self);
        return NULL;
    }
    return self;
}

void bus_replay_destroy (bus_replay_t **self_p)
{
    assert (self_p);
    bus_replay_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    free (self->args);
    free (self);
    *self_p = NULL;
}
