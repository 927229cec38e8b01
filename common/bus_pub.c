/*  bus_pub — see bus_pub.h. Three batch buffers take turns: the owner frames events into
    one while the writer thread writes and syncs the next, then says so and publishes it, so
    nothing is published before it is durable (docs/architecture.md, Durability) and neither the
    disk nor the publishing holds up the owner. When the owner collects batch i, batch i-1 has been
    fully published (the writer works in order), so its buffer is free to fill again.
*/
#include "bus_pub.h"
#include "bus_replay.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

struct _bus_pub_t {
    char stream[8];
    journal_t *journal; //  the owner's until the first submit, then the writer's
    zsock_t *pub;       //  the writer's
    zactor_t *writer;
    bus_replay_t *replay;
    _Atomic uint64_t committed;     //  read by the replay thread and the owner
    _Atomic uint64_t journal_bytes; //  as of the last commit
    uint64_t last_seq;              //  appended by the owner
    proto_buf_t batch[3];           //  framed journal records
    size_t count[3];                //  events in each
    int filling;                    //  the owner's; the one before it may be the writer's
    bool busy;
    bool failed;
    proto_buf_t heartbeat; //  the writer's encoding buffer
};

//  ---------------------------------------------------------------------------------------
//  The writer thread

static void s_send_heartbeat (bus_pub_t *self)
{
    proto_msg_t hb = {.kind = PROTO_heartbeat};
    snprintf (hb.heartbeat.stream, sizeof hb.heartbeat.stream, "%s", self->stream);
    hb.heartbeat.seq = atomic_load (&self->committed);
    hb.heartbeat.ts = clock_wall_ns ();
    hb.heartbeat.version = PROTO_VERSION;
    char topic[BUS_TOPIC_MAX];
    int tlen = bus_topic (self->stream, &hb, topic, sizeof topic);
    proto_buf_reset (&self->heartbeat);
    if (tlen < 0 || proto_encode (&hb, &self->heartbeat))
        return;
    void *sock = zsock_resolve (self->pub);
    zmq_send (sock, topic, (size_t) tlen, ZMQ_SNDMORE);
    zmq_send (sock, self->heartbeat.data, self->heartbeat.len, 0);
}

//  Journals a batch and advances the committed seq. 0 or -1.
static int s_write_batch (bus_pub_t *self, proto_buf_t *batch)
{
    if (journal_write (self->journal, batch->data, batch->len))
        return -1;
    atomic_store (&self->committed, journal_last_seq (self->journal));
    atomic_store_explicit (&self->journal_bytes, journal_bytes (self->journal),
                           memory_order_relaxed);
    return 0;
}

//  Publishes a committed batch. PUB never blocks: at the high-water mark ZeroMQ drops, and
//  subscribers replay.
static void s_publish_batch (bus_pub_t *self, const proto_buf_t *batch)
{
    void *sock = zsock_resolve (self->pub);
    for (size_t off = 0; off < batch->len;) {
        uint32_t len32;
        memcpy (&len32, batch->data + off, 4); //  little-endian, as journal_frame wrote it
        const char *topic;
        size_t tlen, elen;
        const uint8_t *ev;
        int rc = bus_record_split (batch->data + off + JOURNAL_RECORD_HDR, len32, &topic, &tlen,
                                   &ev, &elen);
        assert (rc == 0);
        zmq_send (sock, topic, tlen, ZMQ_SNDMORE);
        zmq_send (sock, ev, elen, 0);
        off += JOURNAL_RECORD_HDR + len32;
    }
}

//  Commands on the pipe: "BATCH" + pointer (answered with 0 or -1 as soon as it is durable,
//  published after that), "HEARTBEAT", "$TERM".
static void s_writer (zsock_t *pipe, void *arg)
{
    bus_pub_t *self = arg;
    zsock_signal (pipe, 0);
    zmq_pollitem_t item = {zsock_resolve (pipe), 0, ZMQ_POLLIN, 0};
    int64_t next_heartbeat = clock_mono_ns ();
    bool failed = false;
    while (true) {
        int64_t now = clock_mono_ns ();
        if (now >= next_heartbeat) {
            s_send_heartbeat (self);
            next_heartbeat = now + BUS_HEARTBEAT_MS * MCE_NS_PER_MSEC;
        }
        long wait_ms = (long) ((next_heartbeat - now) / MCE_NS_PER_MSEC) + 1;
        if (zmq_poll (&item, 1, wait_ms) < 0 && zmq_errno () != EINTR)
            break;
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        char *command = NULL;
        void *batch = NULL;
        if (zsock_recv (pipe, "sp", &command, &batch))
            break;
        bool term = streq (command, "$TERM");
        if (streq (command, "BATCH")) {
            //  After a failure nothing more is written: see journal.c on fdatasync errors.
            failed = failed || s_write_batch (self, batch);
            zsock_send (pipe, "i", failed ? -1 : 0);
            if (!failed)
                s_publish_batch (self, batch);
        }
        else if (streq (command, "HEARTBEAT"))
            s_send_heartbeat (self);
        zstr_free (&command);
        if (term)
            break;
    }
}

//  ---------------------------------------------------------------------------------------

int bus_topic (const char *stream, const proto_msg_t *msg, char *buf, size_t size)
{
    //  "<stream>.<kind>[.<market>]", assembled by hand: once per published event; no market part
    //  when the message has none or it is empty (a balance that no order changed)
    const char *parts[3] = {stream, proto_kind_name (msg->kind), proto_msg_market (msg)};
    if (!parts[1])
        return -1;
    size_t n = 0;
    for (int i = 0; i < 3 && parts[i] && (i < 2 || parts[i][0]); i++) {
        size_t len = strlen (parts[i]);
        if (n + len + 2 > size || n + len + 1 > 256)
            return -1;
        if (i)
            buf[n++] = '.';
        memcpy (buf + n, parts[i], len);
        n += len;
    }
    buf[n] = '\0';
    return (int) n;
}

int bus_record_split (const uint8_t *data, size_t len, const char **topic, size_t *topic_len,
                      const uint8_t **event, size_t *event_len)
{
    if (len < 1 || (size_t) data[0] + 1 >= len)
        return -1;
    *topic = (const char *) data + 1;
    *topic_len = data[0];
    *event = data + 1 + data[0];
    *event_len = len - 1 - data[0];
    return 0;
}

int bus_bind (void *sock, const char *endpoint)
{
    int64_t deadline = clock_mono_ns () + (int64_t) BUS_BIND_PATIENCE_MS * MCE_NS_PER_MSEC;
    bool said = false;
    while (zsock_bind (sock, "%s", endpoint) < 0) {
        if (zmq_errno () != EADDRINUSE || clock_mono_ns () >= deadline)
            return -1;
        if (!said)
            log_warn ("bus", "%s is in use; trying again for up to %d ms", endpoint,
                      BUS_BIND_PATIENCE_MS);
        said = true;
        zclock_sleep (50); //  a retry's pace: nothing tells us when the holder lets go
    }
    return 0;
}

bus_pub_t *bus_pub_new (const bus_pub_opts_t *opts)
{
    bus_pub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->stream, sizeof self->stream, "%s", opts->stream);
    for (int i = 0; i < 3; i++)
        proto_buf_init (&self->batch[i]);
    proto_buf_init (&self->heartbeat);
    self->journal = journal_open (opts->journal_dir, &opts->journal);
    if (!self->journal) {
        bus_pub_destroy (&self);
        return NULL;
    }
    self->last_seq = journal_last_seq (self->journal);
    atomic_store (&self->committed, opts->hold ? 0 : self->last_seq);
    atomic_store (&self->journal_bytes, journal_bytes (self->journal));
    self->pub = zsock_new (ZMQ_PUB);
    if (self->pub && opts->sndhwm > 0)
        zsock_set_sndhwm (self->pub, opts->sndhwm);
    if (!self->pub || curve_server (opts->curve, self->pub) < 0 ||
        bus_bind (self->pub, opts->pub_endpoint) < 0) {
        log_error ("bus", "stream %s: cannot bind PUB %s: %s", self->stream, opts->pub_endpoint,
                   zmq_strerror (zmq_errno ()));
        bus_pub_destroy (&self);
        return NULL;
    }
    self->replay = bus_replay_new (self->stream, opts->replay_endpoint, opts->journal_dir,
                                   &self->committed, opts->curve);
    self->writer = self->replay ? zactor_new (s_writer, self) : NULL;
    if (!self->writer) {
        bus_pub_destroy (&self);
        return NULL;
    }
    log_info ("bus", "stream %s: publishing on %s, replay on %s, last seq %" PRIu64, self->stream,
              opts->pub_endpoint, opts->replay_endpoint, self->last_seq);
    return self;
}

void bus_pub_destroy (bus_pub_t **self_p)
{
    assert (self_p);
    bus_pub_t *self = *self_p;
    if (!self)
        return;
    if (self->busy)
        bus_pub_collect (self);
    zactor_destroy (&self->writer);
    bus_replay_destroy (&self->replay);
    zsock_destroy (&self->pub);
    journal_destroy (&self->journal);
    for (int i = 0; i < 3; i++)
        proto_buf_free (&self->batch[i]);
    proto_buf_free (&self->heartbeat);
    free (self);
    *self_p = NULL;
}

void bus_pub_recovered (bus_pub_t *self)
{
    atomic_store (&self->committed, self->last_seq);
}

int bus_pub_truncate (bus_pub_t *self, uint64_t keep_seq)
{
    assert (self->count[self->filling] == 0 && !self->busy);
    if (journal_truncate (self->journal, keep_seq))
        return -1;
    self->last_seq = journal_last_seq (self->journal);
    return 0;
}

uint64_t bus_pub_last_seq (bus_pub_t *self)
{
    return self->last_seq;
}

uint64_t bus_pub_committed_seq (bus_pub_t *self)
{
    return atomic_load (&self->committed);
}

uint64_t bus_pub_journal_bytes (bus_pub_t *self)
{
    return atomic_load_explicit (&self->journal_bytes, memory_order_relaxed);
}

journal_t *bus_pub_journal (bus_pub_t *self)
{
    return self->journal;
}

int bus_pub_append (bus_pub_t *self, const proto_msg_t *event)
{
    uint64_t seq = proto_msg_seq (event);
    assert (seq == self->last_seq + 1);
    if (self->failed)
        return -1;
    //  [journal record header][u8 topic length][topic][msgpack event], encoded in place
    uint8_t head[JOURNAL_RECORD_HDR + 1 + BUS_TOPIC_MAX];
    int tlen =
        bus_topic (self->stream, event, (char *) head + JOURNAL_RECORD_HDR + 1, BUS_TOPIC_MAX);
    proto_buf_t *batch = &self->batch[self->filling];
    size_t at = batch->len;
    if (tlen >= 0) {
        head[JOURNAL_RECORD_HDR] = (uint8_t) tlen;
        if (proto_buf_append (batch, head, JOURNAL_RECORD_HDR + 1 + (size_t) tlen) == 0 &&
            proto_encode (event, batch) == 0) {
            journal_frame (batch->data + at, seq, batch->len - at - JOURNAL_RECORD_HDR);
            self->last_seq = seq;
            self->count[self->filling]++;
            return 0;
        }
    }
    batch->len = at;
    log_error ("bus", "stream %s: cannot encode %s event seq %" PRIu64, self->stream,
               proto_kind_name (event->kind), seq);
    return -1;
}

size_t bus_pub_appended (bus_pub_t *self)
{
    return self->count[self->filling];
}

int bus_pub_submit (bus_pub_t *self)
{
    assert (!self->busy);
    if (self->failed)
        return -1;
    proto_buf_t *batch = &self->batch[self->filling];
    if (zsock_send (self->writer, "sp", "BATCH", batch))
        return -1;
    self->busy = true;
    self->filling = (self->filling + 1) % 3;
    proto_buf_reset (&self->batch[self->filling]);
    self->count[self->filling] = 0;
    return 0;
}

bool bus_pub_busy (bus_pub_t *self)
{
    return self->busy;
}

void *bus_pub_pollable (bus_pub_t *self)
{
    return zsock_resolve (self->writer);
}

int bus_pub_collect (bus_pub_t *self)
{
    assert (self->busy);
    int rc = -1;
    if (zsock_recv (self->writer, "i", &rc))
        rc = -1;
    self->busy = false;
    if (rc)
        self->failed = true;
    return rc;
}

int bus_pub_commit (bus_pub_t *self)
{
    if (self->busy && bus_pub_collect (self))
        return -1;
    if (bus_pub_submit (self))
        return -1;
    return bus_pub_collect (self);
}

void bus_pub_heartbeat (bus_pub_t *self)
{
    zsock_send (self->writer, "sp", "HEARTBEAT", NULL);
}
