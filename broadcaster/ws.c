/*  ws — see ws.h.  */
#include "ws.h"
#include "log.h"

#include <libwebsockets.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _ws_entry_t {
    ws_entry_t *next;
    ws_msg_t *msg;
    ws_sub_t *sub;     //  NULL for a control message
    int64_t queued_ns; //  when it was queued
};

ws_msg_t *ws_msg_new (const char *text, size_t len)
{
    _Static_assert(LWS_PRE >= 10, "room for the longest frame header");
    ws_msg_t *msg = malloc (sizeof *msg + LWS_PRE + len + 1);
    if (!msg)
        return NULL;
    msg->refs = 1;
    msg->len = len;
    memcpy (msg->data + LWS_PRE, text, len);
    msg->data[LWS_PRE + len] = '\0';
    //  RFC 6455 5.2: FIN + opcode 1 (text), then the length in 7, 7+16 or 7+64 bits.
    unsigned char head[10];
    size_t n = 0;
    head[n++] = 0x81;
    if (len < 126)
        head[n++] = (unsigned char) len;
    else if (len <= 0xffff) {
        head[n++] = 126;
        head[n++] = (unsigned char) (len >> 8);
        head[n++] = (unsigned char) len;
    }
    else {
        head[n++] = 127;
        for (int i = 7; i >= 0; i--)
            head[n++] = (unsigned char) ((uint64_t) len >> (8 * i));
    }
    msg->hlen = n;
    memcpy (msg->data + LWS_PRE - n, head, n);
    return msg;
}

const unsigned char *ws_msg_frame (const ws_msg_t *msg, size_t *size)
{
    *size = msg->hlen + msg->len;
    return msg->data + LWS_PRE - msg->hlen;
}

ws_msg_t *ws_msg_ref (ws_msg_t *msg)
{
    assert (msg);
    msg->refs++;
    return msg;
}

void ws_msg_unref (ws_msg_t **msg_p)
{
    assert (msg_p);
    ws_msg_t *msg = *msg_p;
    if (msg && --msg->refs == 0)
        free (msg);
    *msg_p = NULL;
}

const char *ws_msg_text (const ws_msg_t *msg)
{
    return (const char *) msg->data + LWS_PRE;
}

void ws_session_init (ws_session_t *self, struct lws *wsi, size_t queue_limit, int64_t queue_age_ns)
{
    memset (self, 0, sizeof *self);
    self->wsi = wsi;
    self->queue_limit = queue_limit;
    self->queue_age_ns = queue_age_ns;
}

void ws_session_clear (ws_session_t *self)
{
    assert (!self->subs);
    while (self->head)
        ws_session_pop (self);
    free (self->rx);
    self->rx = NULL;
    self->rx_len = 0;
}

void ws_session_push (ws_session_t *self, ws_msg_t *msg, ws_sub_t *sub, int64_t now_ns)
{
    if (self->closing || (sub && sub->stale))
        return;
    //  Behind (or now without room): this update goes, and its channel owes a snapshot. Once
    //  behind, every channel that moves is conflated so, until the snapshots have gone out.
    bool full = self->queued_bytes + msg->len > self->queue_limit ||
                (self->head && self->queue_age_ns > 0 &&
                 now_ns - self->head->queued_ns > self->queue_age_ns);
    if (sub && (self->behind_since || full)) {
        //  Conflate: this channel's queued updates go too, and a snapshot will replace them.
        ws_session_purge (self, sub);
        sub->stale = true;
        self->dropped++;
        if (!self->behind_since) {
            self->behind_since = now_ns;
            log_info ("broadcaster",
                      "client %s is behind: its updates are dropped until it has room for "
                      "snapshots",
                      self->peer);
        }
        if (self->wsi)
            lws_callback_on_writable (self->wsi);
        return;
    }
    bool address_full =
        !sub && self->address_bytes && *self->address_bytes + msg->len > self->address_limit;
    if (!sub && (self->queued_bytes + msg->len > 2 * self->queue_limit || address_full)) {
        //  Asking for snapshots or errors faster than it reads them: it goes (see ws.h). So
        //  does a client whose address, over all its sessions, holds its bound of them.
        if (!self->overflowed)
            log_info ("broadcaster", "client %s queued past %s without reading: closing it",
                      self->peer, address_full ? "its address's bound" : "twice its bound");
        self->overflowed = true;
        if (!self->behind_since)
            self->behind_since = now_ns;
        return;
    }
    ws_entry_t *entry = malloc (sizeof *entry);
    if (!entry)
        return;
    entry->next = NULL;
    entry->msg = ws_msg_ref (msg);
    entry->sub = sub;
    entry->queued_ns = now_ns;
    if (self->tail)
        self->tail->next = entry;
    else
        self->head = entry;
    self->tail = entry;
    self->queued_bytes += msg->len;
    if (!sub && self->address_bytes)
        *self->address_bytes += msg->len;
    if (self->wsi)
        lws_callback_on_writable (self->wsi);
}

void ws_session_purge (ws_session_t *self, ws_sub_t *sub)
{
    ws_entry_t **link = &self->head;
    self->tail = NULL;
    while (*link) {
        ws_entry_t *entry = *link;
        if (entry->sub == sub) {
            *link = entry->next;
            self->queued_bytes -= entry->msg->len;
            ws_msg_unref (&entry->msg);
            free (entry);
            continue;
        }
        self->tail = entry;
        link = &entry->next;
    }
}

ws_msg_t *ws_session_peek (ws_session_t *self)
{
    return self->head ? self->head->msg : NULL;
}

void ws_session_pop (ws_session_t *self)
{
    ws_entry_t *entry = self->head;
    if (!entry)
        return;
    self->head = entry->next;
    if (!self->head)
        self->tail = NULL;
    self->queued_bytes -= entry->msg->len;
    if (!entry->sub && self->address_bytes)
        *self->address_bytes -= entry->msg->len;
    ws_msg_unref (&entry->msg);
    free (entry);
}

size_t ws_session_gather (ws_session_t *self, unsigned char *buf, size_t cap, size_t *size)
{
    size_t count = 0, used = 0;
    for (ws_entry_t *entry = self->head; entry; entry = entry->next) {
        size_t frame_size;
        const unsigned char *frame = ws_msg_frame (entry->msg, &frame_size);
        if (used + frame_size > cap && count > 0)
            break;
        if (used + frame_size > cap)
            return 0; //  the first alone is larger than buf: the caller writes it by itself
        memcpy (buf + used, frame, frame_size);
        used += frame_size;
        count++;
    }
    *size = used;
    return count;
}

bool ws_session_overdue (const ws_session_t *self, int64_t now_ns, int64_t grace_ns)
{
    return self->overflowed || (self->behind_since && now_ns - self->behind_since > grace_ns);
}
