/*  bus_pub — see bus_pub.h. Events wait in `pending` between append and commit, so that
    nothing is published before it is durable (DESIGN.md §5.2).
*/
#include "bus_pub.h"
#include "bus_replay.h"
#include "clock.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

struct _bus_pub_t {
    char stream[8];
    journal_t *journal;
    zsock_t *pub;
    bus_replay_t *replay;
    _Atomic uint64_t committed; //  read by the replay thread
    proto_buf_t scratch;        //  encoding buffer
    uint8_t *pending;           //  records appended since the last commit: u32 len | record
    size_t pending_len, pending_cap;
};

int bus_topic (const char *stream, const proto_msg_t *msg, char *buf, size_t size)
{
    //  "<stream>.<kind>[.<market>]", assembled by hand: once per published event
    const char *parts[3] = {stream, proto_kind_name (msg->kind), proto_msg_market (msg)};
    if (!parts[1])
        return -1;
    size_t n = 0;
    for (int i = 0; i < 3 && parts[i]; i++) {
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

bus_pub_t *bus_pub_new (const bus_pub_opts_t *opts)
{
    bus_pub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->stream, sizeof self->stream, "%s", opts->stream);
    proto_buf_init (&self->scratch);
    self->journal = journal_open (opts->journal_dir, &opts->journal);
    if (!self->journal) {
        bus_pub_destroy (&self);
        return NULL;
    }
    atomic_store (&self->committed, opts->hold ? 0 : journal_last_seq (self->journal));
    self->pub = zsock_new (ZMQ_PUB);
    if (self->pub && opts->sndhwm > 0)
        zsock_set_sndhwm (self->pub, opts->sndhwm);
    if (!self->pub || zsock_bind (self->pub, "%s", opts->pub_endpoint) < 0) {
        log_error ("bus", "stream %s: cannot bind PUB %s: %s", self->stream, opts->pub_endpoint,
                   zmq_strerror (zmq_errno ()));
        bus_pub_destroy (&self);
        return NULL;
    }
    self->replay =
        bus_replay_new (self->stream, opts->replay_endpoint, opts->journal_dir, &self->committed);
    if (!self->replay) {
        bus_pub_destroy (&self);
        return NULL;
    }
    log_info ("bus", "stream %s: publishing on %s, replay on %s, last seq %" PRIu64, self->stream,
              opts->pub_endpoint, opts->replay_endpoint, journal_last_seq (self->journal));
    return self;
}

void bus_pub_destroy (bus_pub_t **self_p)
{
    assert (self_p);
    bus_pub_t *self = *self_p;
    if (!self)
        return;
    bus_replay_destroy (&self->replay);
    zsock_destroy (&self->pub);
    journal_destroy (&self->journal);
    proto_buf_free (&self->scratch);
    free (self->pending);
    free (self);
    *self_p = NULL;
}

void bus_pub_recovered (bus_pub_t *self)
{
    atomic_store (&self->committed, journal_last_seq (self->journal));
}

int bus_pub_truncate (bus_pub_t *self, uint64_t keep_seq)
{
    assert (self->pending_len == 0);
    return journal_truncate (self->journal, keep_seq);
}

uint64_t bus_pub_last_seq (bus_pub_t *self)
{
    return journal_last_seq (self->journal);
}

uint64_t bus_pub_committed_seq (bus_pub_t *self)
{
    return atomic_load (&self->committed);
}

journal_t *bus_pub_journal (bus_pub_t *self)
{
    return self->journal;
}

int bus_pub_append (bus_pub_t *self, const proto_msg_t *event)
{
    uint64_t seq = proto_msg_seq (event);
    assert (seq == journal_last_seq (self->journal) + 1);
    char topic[BUS_TOPIC_MAX];
    int tlen = bus_topic (self->stream, event, topic, sizeof topic);
    proto_buf_reset (&self->scratch);
    if (tlen < 0 || proto_encode (event, &self->scratch)) {
        log_error ("bus", "stream %s: cannot encode %s event seq %" PRIu64, self->stream,
                   proto_kind_name (event->kind), seq);
        return -1;
    }
    size_t rec_len = 1 + (size_t) tlen + self->scratch.len;
    size_t need = self->pending_len + 4 + rec_len;
    if (need > self->pending_cap) {
        size_t cap = self->pending_cap ? self->pending_cap : 64 * 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *bigger = realloc (self->pending, cap);
        if (!bigger)
            return -1;
        self->pending = bigger;
        self->pending_cap = cap;
    }
    uint8_t *p = self->pending + self->pending_len;
    uint32_t len32 = (uint32_t) rec_len;
    memcpy (p, &len32, 4);
    p[4] = (uint8_t) tlen;
    memcpy (p + 5, topic, (size_t) tlen);
    memcpy (p + 5 + tlen, self->scratch.data, self->scratch.len);
    //  Queued for publishing only once it is in the journal: a failed append leaves no trace.
    if (journal_append (self->journal, seq, p + 4, rec_len))
        return -1;
    self->pending_len = need;
    return 0;
}

int bus_pub_commit (bus_pub_t *self)
{
    if (journal_commit (self->journal))
        return -1;
    atomic_store (&self->committed, journal_last_seq (self->journal));
    void *sock = zsock_resolve (self->pub);
    size_t off = 0;
    while (off < self->pending_len) {
        uint32_t len32;
        memcpy (&len32, self->pending + off, 4);
        const char *topic;
        size_t tlen, elen;
        const uint8_t *ev;
        int rc = bus_record_split (self->pending + off + 4, len32, &topic, &tlen, &ev, &elen);
        assert (rc == 0);
        //  PUB never blocks: at the high-water mark ZeroMQ drops, and subscribers replay.
        zmq_send (sock, topic, tlen, ZMQ_SNDMORE);
        zmq_send (sock, ev, elen, 0);
        off += 4 + len32;
    }
    self->pending_len = 0;
    return 0;
}

void bus_pub_heartbeat (bus_pub_t *self)
{
    proto_msg_t hb = {.kind = PROTO_heartbeat};
    snprintf (hb.heartbeat.stream, sizeof hb.heartbeat.stream, "%s", self->stream);
    hb.heartbeat.seq = atomic_load (&self->committed);
    hb.heartbeat.ts = clock_wall_ns ();
    hb.heartbeat.version = PROTO_VERSION;
    char topic[BUS_TOPIC_MAX];
    int tlen = bus_topic (self->stream, &hb, topic, sizeof topic);
    proto_buf_reset (&self->scratch);
    if (tlen < 0 || proto_encode (&hb, &self->scratch))
        return;
    void *sock = zsock_resolve (self->pub);
    zmq_send (sock, topic, (size_t) tlen, ZMQ_SNDMORE);
    zmq_send (sock, self->scratch.data, self->scratch.len, 0);
}
