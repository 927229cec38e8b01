/*  bus_pub — the producing side of a durable, sequenced bus (DESIGN.md §5).

    The owning service (matcher, settler) decides a batch of commands and, for each event,
    calls bus_pub_append with the next seq; bus_pub encodes it, journals it and queues it.
    bus_pub_commit then group-commits the journal and only after that publishes the batch on
    the PUB socket as [topic][msgpack event], where topic = "<stream>.<kind>[.<market>]".
    A replay server (bus_replay, its own thread) answers "events from seq N" from the journal
    files and never serves past what has been committed here.

    A journal record holds u8 topic length, the topic, then the msgpack event, so replay can
    resend exactly what was published without decoding anything.
*/
#ifndef MCE_BUS_PUB_H
#define MCE_BUS_PUB_H

#include "journal.h"
#include "proto.h"

#include <stdbool.h>
#include <stdint.h>

#define BUS_TOPIC_MAX        64
#define BUS_HEARTBEAT_MS     1000
#define BUS_REPLAY_BATCH     1000 //  events per replay answer unless the request asks fewer
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
} bus_pub_opts_t;

typedef struct _bus_pub_t bus_pub_t;

//  Opens the journal (recovering it), binds both sockets, starts the replay thread.
//  NULL on error, logged.
bus_pub_t *bus_pub_new (const bus_pub_opts_t *opts);
void bus_pub_destroy (bus_pub_t **self_p);

//  Recovery is over: replay may serve the journal up to its end.
void bus_pub_recovered (bus_pub_t *self);
//  Cuts the journal back to keep_seq (see journal_truncate), during recovery. 0 or -1.
int bus_pub_truncate (bus_pub_t *self, uint64_t keep_seq);

//  The last seq appended; the next event must carry bus_pub_last_seq () + 1.
uint64_t bus_pub_last_seq (bus_pub_t *self);
//  The last seq committed and published.
uint64_t bus_pub_committed_seq (bus_pub_t *self);
//  Journals one event (its seq must be last + 1) and queues it for publishing. 0 or -1.
int bus_pub_append (bus_pub_t *self, const proto_msg_t *event);
//  Group-commits the journal, then publishes everything appended since the last commit.
//  Returns 0, or -1 when the journal failed (the caller must stop: nothing is durable).
int bus_pub_commit (bus_pub_t *self);
//  Publishes a heartbeat carrying the committed seq; call every BUS_HEARTBEAT_MS.
void bus_pub_heartbeat (bus_pub_t *self);
journal_t *bus_pub_journal (bus_pub_t *self);

//  Builds "<stream>.<kind>.<market>" (or "<stream>.<kind>" for kinds without a market).
//  Returns the length, -1 if it does not fit.
int bus_topic (const char *stream, const proto_msg_t *msg, char *buf, size_t size);
//  Splits a journal record into its topic and its msgpack event. 0, or -1 if malformed.
int bus_record_split (const uint8_t *data, size_t len, const char **topic, size_t *topic_len,
                      const uint8_t **event, size_t *event_len);

#endif
