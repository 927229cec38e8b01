/*  ws — one WebSocket client of the broadcaster: its outgoing queue and its subscriptions.

    Outgoing messages are rendered once and shared by every session that sends them
    (ws_msg_t, reference-counted), with LWS_PRE bytes of headroom for libwebsockets' frame
    header: ten thousand clients of one channel cost one JSON rendering per update.

    The queue is bounded in bytes (broadcaster.queue_bytes) and in age (broadcaster.queue_ms:
    a client whose oldest queued update is older is not keeping up). An update that does not
    fit is dropped, and so are that subscription's updates already queued; the subscription is then
    marked stale and owes the client a snapshot, and the session is behind: until the queue
    has emptied, every subscription that gets an update goes stale the same way. Once it
    has, the snapshots owed are queued (channels_catch_up). A session that stays behind longer than
   broadcaster.slow_grace_ms is closed with 1008 "too slow" (ws_session_overdue says when). Queued
   bytes count each message in full, shared or not, so one slow client never holds more than its
   bound. Messages of no subscription (snapshots, acknowledgements, errors) are never dropped
   by conflation, since the client needs each one; they may take the queue to twice its bound,
   and one that would go past that means the client sends faster than it reads what it asked
   for: it is dropped and the session is closed at once (ws_session_overdue says so too).

    Sessions live in libwebsockets' per-session memory; the server calls ws_session_init on
    LWS_CALLBACK_ESTABLISHED and ws_session_clear on LWS_CALLBACK_CLOSED. One thread.
*/
#ifndef MCE_WS_H
#define MCE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws;
typedef struct _channel_t channel_t;

//  A rendered message: data[LWS_PRE ...] holds len bytes of JSON, and the hlen bytes before
//  them its WebSocket frame header (a final text frame, unmasked, as a server sends it), so
//  the whole frame is built once for every client and several go out in one write.
typedef struct {
    int refs;
    size_t len;
    size_t hlen;
    unsigned char data[];
} ws_msg_t;

//  A new message holding a copy of text, one reference. NULL when memory runs out.
ws_msg_t *ws_msg_new (const char *text, size_t len);
ws_msg_t *ws_msg_ref (ws_msg_t *msg);
void ws_msg_unref (ws_msg_t **msg_p);
//  The JSON text (NUL-terminated after len bytes).
const char *ws_msg_text (const ws_msg_t *msg);
//  The whole frame: header and payload, *size bytes.
const unsigned char *ws_msg_frame (const ws_msg_t *msg, size_t *size);

typedef struct _ws_sub_t ws_sub_t;
typedef struct _ws_entry_t ws_entry_t;

typedef struct _ws_session_t ws_session_t;
struct _ws_session_t {
    struct lws *wsi;
    ws_entry_t *head, *tail; //  the outgoing queue
    size_t queued_bytes;
    size_t queue_limit;
    int64_t queue_age_ns; //  an update older than this in the queue puts the session behind
    ws_sub_t *subs;       //  this session's subscriptions
    int sub_count;
    int64_t behind_since; //  monotonic ns when updates were first dropped; 0 = not behind
    bool closing;         //  asked to go; nothing more is queued
    bool overflowed;      //  its queue passed twice its bound: it goes at the next tick
    char *rx;             //  a message arriving in fragments
    size_t rx_len;
    ws_session_t *prev, *next; //  the server's list of sessions
    uint64_t dropped;          //  updates dropped for this client (conflation)
    char peer[64];             //  "address:port", for logs
    char address[64];          //  the address alone, for the per-address count
    //  Answers (snapshots, errors) queued for every session of this address, and their bound
    //  (broadcaster.queue_bytes_per_address); NULL: not counted.
    size_t *address_bytes;
    size_t address_limit;
};

//  A subscription: one session on one channel.
struct _ws_sub_t {
    channel_t *channel;
    ws_session_t *session;
    ws_sub_t *ch_prev, *ch_next; //  in the channel's list of subscribers
    ws_sub_t *next;              //  in the session's list
    bool stale;                  //  updates were dropped: a snapshot is owed
    int64_t expires_s;           //  orders: the token's exp (Unix s); the channel ends then
    uint64_t snap_seq;           //  the seq of the last snapshot queued for it
};

void ws_session_init (ws_session_t *self, struct lws *wsi, size_t queue_limit,
                      int64_t queue_age_ns);
//  Drops the queue and the receive buffer; the subscriptions must be gone (channels_drop_session).
void ws_session_clear (ws_session_t *self);

//  Queues msg (a new reference is taken) for sub's channel, or as a control message when sub
//  is NULL (errors, acknowledgements, snapshots: always queued). Applies the bound: an update
//  that does not fit makes sub stale instead. Asks libwebsockets for a writable callback.
void ws_session_push (ws_session_t *self, ws_msg_t *msg, ws_sub_t *sub, int64_t now_ns);
//  Forgets the queued updates of sub (it is being removed or made stale).
void ws_session_purge (ws_session_t *self, ws_sub_t *sub);
//  The next message to write, still queued (NULL when none); ws_session_pop after writing it.
ws_msg_t *ws_session_peek (ws_session_t *self);
void ws_session_pop (ws_session_t *self);
//  Copies the frames of the queued messages, from the first, into buf while they fit (at
//  least the first must), and returns how many; their bytes in *size. The caller writes them
//  in one go and pops that many.
size_t ws_session_gather (ws_session_t *self, unsigned char *buf, size_t cap, size_t *size);
//  Whether the session has been behind for longer than grace_ns at now_ns.
bool ws_session_overdue (const ws_session_t *self, int64_t now_ns, int64_t grace_ns);

#endif
