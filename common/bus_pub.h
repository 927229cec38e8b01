/*  bus_pub — the producing side of a durable, sequenced bus (docs/architecture.md, The bus).

    The owning service (matcher, settler) decides commands and, for each event, calls
    bus_pub_append with the next seq; bus_pub encodes it straight into a framed journal batch.
    bus_pub_submit hands the batch to the writer thread, which writes it with one write(2) and
    one fdatasync (group commit), tells the owner (bus_pub_pollable becomes readable;
    bus_pub_collect), and only then publishes the events on the PUB socket as
    [topic][msgpack event], where topic = "<stream>.<kind>[.<market>]". Meanwhile the owner goes on
   deciding the next batch: its acknowledgements wait for bus_pub_collect, so nothing is
   acknowledged or published before it is durable, yet the disk and the decisions overlap.
   bus_pub_commit does both steps at once for owners that need no overlap.

    The writer also sends a heartbeat with the committed seq every BUS_HEARTBEAT_MS. A replay
    server (bus_replay, its own thread) answers "events from seq N" from the journal files and
    never serves past what has been committed.

    A journal record holds u8 topic length, the topic, then the msgpack event, so replay can
    resend exactly what was published without decoding anything.

    Threads: the journal belongs to the owner until its first submit (recovery reads and cuts
    it through bus_pub_journal and bus_pub_truncate), to the writer after that. The PUB socket
    is the writer's.
*/
#ifndef MCE_BUS_PUB_H
#define MCE_BUS_PUB_H

#include "curve.h"
#include "journal.h"
#include "proto.h"

#include <stdbool.h>
#include <stdint.h>

#define BUS_TOPIC_MAX        64
#define BUS_HEARTBEAT_MS     1000
#define BUS_PUB_HWM          1000000 //  messages queued per subscriber before PUB drops
#define BUS_REPLAY_BATCH     1000    //  events per replay answer unless the request asks fewer
#define BUS_REPLAY_BATCH_MAX 10000

typedef struct {
    const char *stream;          //  "m" (matcher) or "s" (settler)
    const char *pub_endpoint;    //  bound PUB, e.g. tcp://127.0.0.1:5556
    const char *replay_endpoint; //  bound ROUTER, e.g. tcp://127.0.0.1:5557
    const char *journal_dir;
    journal_opts_t journal;
    int sndhwm; //  PUB high-water mark in messages, 0 = ZeroMQ's default
    bool hold;  //  no replay until bus_pub_recovered: the journal's tail may be an uncommitted
                //  batch its owner is about to cut
    const curve_t *curve; //  both sockets are CURVE servers with it; NULL = no CURVE
} bus_pub_opts_t;

typedef struct _bus_pub_t bus_pub_t;

//  Opens the journal (recovering it), binds both sockets, starts the replay thread.
//  NULL on error, logged.
bus_pub_t *bus_pub_new (const bus_pub_opts_t *opts);

//  zsock_bind (sock is a zsock_t *), tried again while the address is in use, for up to
//  BUS_BIND_PATIENCE_MS: a producer restarted at once after a crash can find its ports held for
//  a moment by what it left behind (a snapshot writer the kernel has not finished killing).
//  0, or -1 with zmq_errno () saying why.
#define BUS_BIND_PATIENCE_MS 5000
int bus_bind (void *sock, const char *endpoint);
void bus_pub_destroy (bus_pub_t **self_p);

//  Recovery is over: replay may serve the journal up to its end.
void bus_pub_recovered (bus_pub_t *self);
//  Cuts the journal back to keep_seq (see journal_truncate), during recovery. 0 or -1.
int bus_pub_truncate (bus_pub_t *self, uint64_t keep_seq);

//  The last seq appended; the next event must carry bus_pub_last_seq () + 1.
uint64_t bus_pub_last_seq (bus_pub_t *self);
//  The last seq committed (durable; published right after).
uint64_t bus_pub_committed_seq (bus_pub_t *self);
//  Bytes in the journal's files, as of the last commit.
uint64_t bus_pub_journal_bytes (bus_pub_t *self);
//  Frames one event (its seq must be last + 1) into the batch being filled. 0 or -1.
int bus_pub_append (bus_pub_t *self, const proto_msg_t *event);
//  Events appended since the last submit.
size_t bus_pub_appended (bus_pub_t *self);

//  Hands the events appended since the last submit to the writer; the previous batch must
//  have been collected (bus_pub_busy is false). 0, or -1 once the journal has failed.
int bus_pub_submit (bus_pub_t *self);
//  Whether a submitted batch has not been collected yet.
bool bus_pub_busy (bus_pub_t *self);
//  A ZeroMQ socket handle, readable when the batch in flight is done (the matcher's loop
//  watches its ZMQ_FD).
void *bus_pub_pollable (bus_pub_t *self);
//  Waits for the batch in flight (at once if bus_pub_pollable was readable). Returns 0 when
//  it is durable (its publishing follows on the writer thread), -1 when the journal failed: the
//  owner must stop, as nothing after bus_pub_committed_seq is durable.
int bus_pub_collect (bus_pub_t *self);
//  Submits what was appended and waits for it (collecting a batch in flight first). 0 or -1.
int bus_pub_commit (bus_pub_t *self);

//  Asks the writer for a heartbeat now (it sends one every BUS_HEARTBEAT_MS anyway).
void bus_pub_heartbeat (bus_pub_t *self);
//  The journal, for recovery before the first submit (see above).
journal_t *bus_pub_journal (bus_pub_t *self);

//  Builds "<stream>.<kind>.<market>" (or "<stream>.<kind>" for kinds without a market).
//  Returns the length, -1 if it does not fit.
int bus_topic (const char *stream, const proto_msg_t *msg, char *buf, size_t size);
//  Splits a journal record into its topic and its msgpack event. 0, or -1 if malformed.
int bus_record_split (const uint8_t *data, size_t len, const char **topic, size_t *topic_len,
                      const uint8_t **event, size_t *event_len);

#endif
