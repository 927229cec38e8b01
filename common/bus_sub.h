/*  bus_sub — the one consuming side of a bus, used by every consumer (docs/architecture.md,
    The bus).

    Subscribes to the whole stream first, then asks the replay endpoint for everything after
    last_seq. From then on the rule is simple and total: an event whose seq is last + 1 is
    delivered, an older one is a duplicate and dropped, a newer one (or a heartbeat ahead of
    us) means a gap, and a replay from last + 1 is requested. Replays are answered in bounded
    batches and re-requested until caught up; an unanswered request is sent again after a
    timeout, so a restarted producer is picked up by itself.

    The consumer sees each seq exactly once, in order, whatever the PUB socket dropped.
*/
#ifndef MCE_BUS_SUB_H
#define MCE_BUS_SUB_H

#include "config.h"
#include "curve.h"
#include "proto.h"

#include <zmq.h>

#include <stddef.h>
#include <stdint.h>

#define BUS_SUB_REPLAY_TIMEOUT_MS 2000
#define BUS_SUB_HWM               1000000 //  messages a consumer may fall behind by (bus_sub_new_for)

typedef struct {
    const char *name;            //  the consumer, for logs ("persister")
    const char *stream;          //  "m" or "s"
    const char *pub_endpoint;    //  producer's PUB
    const char *replay_endpoint; //  producer's replay ROUTER
    uint64_t last_seq;           //  resume after this seq (0 = from the beginning)
    int rcvhwm;                  //  SUB high-water mark in messages, 0 = ZeroMQ's default
    int replay_timeout_ms;       //  0 = BUS_SUB_REPLAY_TIMEOUT_MS
    const curve_t *curve;        //  CURVE client with it (NULL: none; used only in _new) ...
    const char *server;          //  ... trusting this process's key ("matcher")
} bus_sub_opts_t;

typedef struct {
    uint64_t seq;
    const char *topic; //  borrowed, valid until the next bus_sub_recv
    size_t topic_len;
    const uint8_t *data; //  the msgpack event, borrowed likewise
    size_t size;
    proto_msg_t msg; //  the decoded event
} bus_event_t;

typedef struct {
    uint64_t delivered;   //  events handed to the consumer
    uint64_t duplicates;  //  events dropped as already delivered
    uint64_t gaps;        //  events (or heartbeats) that arrived ahead of the sequence
    uint64_t replays;     //  replay requests sent
    uint64_t malformed;   //  frames dropped as malformed
    uint64_t heartbeats;  //  heartbeats received
    int64_t heartbeat_ns; //  when the last one came (clock_mono_ns), 0 before the first
} bus_sub_stats_t;

typedef struct _bus_sub_t bus_sub_t;

bus_sub_t *bus_sub_new (const bus_sub_opts_t *opts);
void bus_sub_destroy (bus_sub_t **self_p);
//  Waits up to timeout_ms for the next event in sequence. Returns 1 with *event filled,
//  0 on timeout or interrupt, -1 on a fatal error.
int bus_sub_recv (bus_sub_t *self, bus_event_t *event, int timeout_ms);
//  The two sockets to watch, for a consumer polling several buses in one loop: when either is
//  readable, call bus_sub_recv with timeout 0 until it returns 0. Call it at least every
//  BUS_SUB_REPLAY_TIMEOUT_MS as well, so that lost replay requests are sent again.
void bus_sub_pollitems (bus_sub_t *self, zmq_pollitem_t items[2]);
//  The same sockets' ZMQ_FDs, for a loop on epoll: readable when something may be waiting.
//  Drain as above when either is, and on every turn while bus_sub_replaying (a replay
//  request sent from inside bus_sub_recv can consume the replay socket's signal).
void bus_sub_fds (bus_sub_t *self, int fds[2]);
bool bus_sub_replaying (bus_sub_t *self);
uint64_t bus_sub_last_seq (bus_sub_t *self);
//  Newest seq the producer is known to have (from heartbeats and replay answers).
uint64_t bus_sub_head_seq (bus_sub_t *self);
bus_sub_stats_t bus_sub_stats (bus_sub_t *self);

//  A bus_sub on the matcher's (stream "m") or the settler's ("s") bus, with the endpoints of
//  cfg and the identity curve, resuming after last_seq. NULL on error.
bus_sub_t *bus_sub_new_for (const mce_config_t *cfg, const curve_t *curve, const char *stream,
                            const char *name, uint64_t last_seq);

#endif
