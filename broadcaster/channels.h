/*  channels — the broadcaster's channels: who is subscribed to what, and what each event of
    the buses means for them (broadcaster/PROTOCOL.md is the contract with clients).

    A channel is a kind and a key: depth of one market's epoch, trades, ticker, epochs and
    settlements of a market, or one user's orders or account (balances). Its snapshot is the
    read model's answer (the same JSON the gateway's HTTP API gives), at the read model's seq;
    its updates are rendered once per event and shared by every subscriber, each carrying the
    seq of its event and the seq of the channel's previous update (prev), so a client can tell
    when it missed one. A channel exists while someone follows it: a WebSocket subscriber,
    or, for public channels, any monitor on the ZeroMQ XPUB.

    The settler's stream (s) only feeds the settlements channels; the module keeps the last
    settlements of each market for their snapshots. Everything runs on the server's one
    thread.
*/
#ifndef MCE_CHANNELS_H
#define MCE_CHANNELS_H

#include "config.h"
#include "proto.h"
#include "readmodel.h"
#include "ws.h"

#include <stdint.h>

typedef struct _channels_t channels_t;

//  Called with every update and monitor snapshot of a public channel, for the XPUB: topic
//  "<channel>.<market>", msg borrowed.
typedef void (channels_publish_fn) (void *arg, const char *topic, const ws_msg_t *msg);

channels_t *channels_new (const mce_config_t *cfg, readmodel_t *model, channels_publish_fn *publish,
                          void *arg);
void channels_destroy (channels_t **self_p);

//  A client's message (JSON text): subscribe or unsubscribe. Answers (snapshot, error,
//  acknowledgement) are queued on the session.
void channels_request (channels_t *self, ws_session_t *session, const char *text, size_t len,
                       int64_t now_ns);
//  The session is closing: every subscription of it goes.
void channels_drop_session (channels_t *self, ws_session_t *session);
//  Queues a fresh snapshot for each stale subscription of the session (call when its queue is
//  empty). Returns true when the session is no longer behind.
bool channels_catch_up (channels_t *self, ws_session_t *session, int64_t now_ns);

//  One event of stream m, already applied to the read model; one of stream s. Their changes
//  wait for the next channels_flush.
void channels_apply_m (channels_t *self, const proto_msg_t *event, int64_t now_ns);
void channels_apply_s (channels_t *self, const proto_msg_t *event, int64_t now_ns);
//  Whether changes wait to be sent.
bool channels_pending (channels_t *self);
//  Sends one update per channel that changed: everything since its previous update, in the
//  snapshot's shape (the levels changed, the new trades, the orders as they now are, ...).
void channels_flush (channels_t *self, int64_t now_ns);

//  Monitors on the XPUB: with any, public channels are rendered even without WebSocket
//  subscribers. A monitor's subscription to topic gets the snapshots of the channels it
//  covers, published on the XPUB.
void channels_set_monitors (channels_t *self, int count);
void channels_monitor_subscribed (channels_t *self, const char *topic, int64_t now_ns);

//  Gauges for /metrics.
size_t channels_count (channels_t *self);
size_t channels_subscriptions (channels_t *self);
uint64_t channels_updates (channels_t *self);

#endif
