/*  broadcaster_server — see broadcaster_server.h.  */
#include "broadcaster_server.h"
#include "bus_sub.h"
#include "channels.h"
#include "clock.h"
#include "log.h"
#include "metrics_http.h"
#include "readmodel.h"
#include "ws.h"

#include <libwebsockets.h>

#include <assert.h>
#include <czmq.h>
#include <stdatomic.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_PROTOCOL    "mce.v1"
#define S_TICK_US     (50 * LWS_US_PER_MS) //  the loop drains every socket at least this often
#define S_RX_MAX      4096                 //  a client message, at most (they are small)
#define S_SNDBUF_MAX  262144 //  kernel send buffer per client: queue_bytes, up to this
#define S_FDS         5      //  m: pub + replay, s: pub + replay, the XPUB
#define S_CLOSE_AFTER 2      //  s to send the close frame before the socket goes
#define S_BATCH_MAX   65536  //  bytes of frames gathered into one write

struct _broadcaster_server_t {
    const mce_config_t *cfg;
    struct lws_context *context;
    struct lws_vhost *vhost;
    readmodel_t *model;
    channels_t *channels;
    bus_sub_t *m, *s;
    zsock_t *xpub;
    curve_t *curve; //  our key; the authenticator behind the XPUB
    int monitors;
    ws_session_t *sessions; //  every open WebSocket session
    lws_sorted_usec_list_t tick;
    lws_sorted_usec_list_t flush; //  the next channels_flush, while changes wait
    lws_sorted_usec_list_t again; //  s_drain once more: a socket had more
    bool drained_any;             //  the last s_drain applied events
    bool flush_scheduled;
    int64_t flushed_ns; //  when the last flush ran
    int fd_tags[S_FDS]; //  what an adopted descriptor's opaque user data points at
    unsigned char batch[LWS_PRE + S_BATCH_MAX]; //  a session's frames, gathered for one write
    metrics_http_t *metrics;
    int64_t started;
    atomic_uint_least64_t sessions_open, subscriptions, channel_count, updates, dropped,
        closed_slow, m_seq, s_seq, monitors_now, sessions_total, sessions_refused;
    zhashx_t *per_address; //  address -> s_address_t (an entry only while sessions are open)
};

static void s_drain (broadcaster_server_t *self);

//  ---------------------------------------------------------------------------------------
//  Monitors (XPUB)

static void s_publish (void *arg, const char *topic, const ws_msg_t *msg)
{
    broadcaster_server_t *self = arg;
    void *sock = zsock_resolve (self->xpub);
    if (zmq_send (sock, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send (sock, ws_msg_text (msg), msg->len, ZMQ_DONTWAIT);
}

//  Subscription messages from monitors: 1 + topic to subscribe, 0 + topic to leave.
static void s_monitors (broadcaster_server_t *self)
{
    void *sock = zsock_resolve (self->xpub);
    while (true) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        const char *data = zmq_msg_data (&frame);
        size_t size = zmq_msg_size (&frame);
        if (size >= 1 && (data[0] == 1 || data[0] == 0)) {
            char topic[256];
            snprintf (topic, sizeof topic, "%.*s", (int) (size - 1), data + 1);
            if (data[0] == 1) {
                self->monitors++;
                channels_set_monitors (self->channels, self->monitors);
                channels_monitor_subscribed (self->channels, topic, clock_mono_ns ());
                log_info ("broadcaster", "monitor subscribed to \"%s\" (%d subscriptions)", topic,
                          self->monitors);
            }
            else if (self->monitors > 0) {
                self->monitors--;
                channels_set_monitors (self->channels, self->monitors);
            }
        }
        zmq_msg_close (&frame);
    }
}

//  ---------------------------------------------------------------------------------------
//  The buses

static void s_flush (lws_sorted_usec_list_t *sul)
{
    broadcaster_server_t *self = lws_container_of (sul, broadcaster_server_t, flush);
    self->flush_scheduled = false;
    self->flushed_ns = clock_mono_ns ();
    channels_flush (self->channels, self->flushed_ns);
}

//  Changes go out flush_ms after the previous flush: at once after a quiet spell, and
//  gathered into one update per channel during a burst.
static void s_schedule_flush (broadcaster_server_t *self, int64_t now)
{
    if (self->flush_scheduled || !channels_pending (self->channels))
        return;
    int64_t due = self->flushed_ns + self->cfg->broadcaster.flush_ms * MCE_NS_PER_MSEC;
    lws_usec_t us = due > now ? (lws_usec_t) ((due - now) / 1000) : 1;
    self->flush_scheduled = true;
    lws_sul_schedule (self->context, 0, &self->flush, s_flush, us);
}

//  With --log-level debug, a line per event (the tests follow the broadcaster by them).
static void s_log_event (const char *stream, const bus_event_t *ev)
{
    const char *market = proto_msg_market (&ev->msg);
    log_debug ("broadcaster", "stream %s event seq %llu: %s%s%s", stream,
               (unsigned long long) ev->seq, proto_kind_name (ev->msg.kind),
               market ? " market " : "", market ? market : "");
}

static bool s_readable (void *socket)
{
    int events = 0;
    size_t size = sizeof events;
    return zmq_getsockopt (socket, ZMQ_EVENTS, &events, &size) == 0 && (events & ZMQ_POLLIN);
}

static void s_again (lws_sorted_usec_list_t *sul)
{
    s_drain (lws_container_of (sul, broadcaster_server_t, again));
}

static void s_drain (broadcaster_server_t *self)
{
    int64_t now = clock_mono_ns ();
    bus_event_t ev;
    bool any = false;
    int rc;
    while ((rc = bus_sub_recv (self->m, &ev, 0)) == 1) {
        s_log_event ("m", &ev);
        readmodel_apply (self->model, &ev.msg);
        channels_apply_m (self->channels, &ev.msg, now);
        any = true;
    }
    while ((rc = bus_sub_recv (self->s, &ev, 0)) == 1) {
        s_log_event ("s", &ev);
        channels_apply_s (self->channels, &ev.msg, now);
        any = true;
    }
    self->drained_any = any;
    s_schedule_flush (self, now);
    s_monitors (self);
    //  ZMQ_FD is an edge, but libwebsockets polls it as a level: a descriptor left signalled
    //  made its loop spin (14 000 polls a second while idle). Asking each socket for its
    //  events clears the signal, and says whether something came in meanwhile: then this
    //  runs again at once, after the loop has served the clients.
    zmq_pollitem_t items[4];
    bus_sub_pollitems (self->m, items);
    bus_sub_pollitems (self->s, items + 2);
    bool more = s_readable (zsock_resolve (self->xpub));
    for (int i = 0; i < 4; i++)
        more = s_readable (items[i].socket) || more;
    if (more)
        lws_sul_schedule (self->context, 0, &self->again, s_again, 1);
    atomic_store (&self->m_seq, readmodel_seq (self->model));
    atomic_store (&self->s_seq, bus_sub_last_seq (self->s));
    atomic_store (&self->channel_count, channels_count (self->channels));
    atomic_store (&self->subscriptions, channels_subscriptions (self->channels));
    atomic_store (&self->updates, channels_updates (self->channels));
    atomic_store (&self->monitors_now, (uint64_t) self->monitors);
}

static void s_close_slow (broadcaster_server_t *self, ws_session_t *session)
{
    session->closing = true;
    atomic_fetch_add (&self->closed_slow, 1);
    log_info ("broadcaster", "closing client %s, %lld ms behind (%llu updates dropped): too slow",
              session->peer,
              (long long) ((clock_mono_ns () - session->behind_since) / MCE_NS_PER_MSEC),
              (unsigned long long) session->dropped);
    //  The close frame goes out if the socket takes it; the connection goes either way.
    lws_set_timeout (session->wsi, PENDING_TIMEOUT_USER_OK, S_CLOSE_AFTER);
    lws_callback_on_writable (session->wsi);
}

static void s_tick (lws_sorted_usec_list_t *sul)
{
    broadcaster_server_t *self = lws_container_of (sul, broadcaster_server_t, tick);
    s_drain (self);
    int64_t now = clock_mono_ns ();
    int64_t grace = self->cfg->broadcaster.slow_grace_ms * MCE_NS_PER_MSEC;
    uint64_t dropped = 0;
    for (ws_session_t *session = self->sessions; session; session = session->next) {
        if (!session->closing && ws_session_overdue (session, now, grace))
            s_close_slow (self, session);
        dropped += session->dropped;
    }
    (void) dropped;
    //  While a replay is streaming in, come back at once: its signals may have been consumed.
    //  A replay asked of a producer that is not there (no settler yet) is no reason to hurry:
    //  that made the loop tick every millisecond.
    bool streaming =
        self->drained_any && (bus_sub_replaying (self->m) || bus_sub_replaying (self->s));
    lws_sul_schedule (self->context, 0, &self->tick, s_tick, streaming ? 1000 : S_TICK_US);
}

//  ---------------------------------------------------------------------------------------
//  libwebsockets

static bool s_origin_allowed (const char *allowed, const char *origin)
{
    if (!*allowed)
        return true;
    size_t n = strlen (origin);
    const char *at = allowed;
    while (*at) {
        while (*at == ' ' || *at == ',')
            at++;
        const char *end = at;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > at && last[-1] == ' ')
            last--;
        if ((size_t) (last - at) == n && strncmp (at, origin, n) == 0)
            return true;
        at = end;
    }
    return false;
}

static void s_session_unlink (broadcaster_server_t *self, ws_session_t *session)
{
    if (session->prev)
        session->prev->next = session->next;
    else if (self->sessions == session)
        self->sessions = session->next;
    if (session->next)
        session->next->prev = session->prev;
    session->prev = session->next = NULL;
}

static int s_writable (broadcaster_server_t *self, ws_session_t *session)
{
    struct lws *wsi = session->wsi;
    if (session->closing) {
        static const char reason[] = "too slow";
        lws_close_reason (wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *) reason,
                          sizeof reason - 1);
        return -1;
    }
    ws_msg_t *msg = ws_session_peek (session);
    if (!msg && session->behind_since) {
        //  The queue has room again: the snapshots owed replace what was dropped.
        channels_catch_up (self->channels, session, clock_mono_ns ());
        msg = ws_session_peek (session);
    }
    if (!msg)
        return 0;
    //  Everything queued, in one write: the frames are built already (ws_msg_frame), so
    //  several go out as one run of bytes. One write per message and per loop turn fell
    //  behind as soon as a turn took longer than a flush.
    size_t size, count = ws_session_gather (session, self->batch + LWS_PRE, S_BATCH_MAX, &size);
    const unsigned char *bytes = self->batch + LWS_PRE;
    if (count == 0) { //  one message larger than the batch buffer: its own frame
        bytes = ws_msg_frame (msg, &size);
        count = 1;
    }
    //  LWS_WRITE_RAW: the bytes are whole frames; libwebsockets keeps what the socket does
    //  not take and calls back only once it is sent.
    if (lws_write (wsi, (unsigned char *) bytes, size, LWS_WRITE_RAW) < (int) size)
        return -1;
    while (count--)
        ws_session_pop (session);
    if (ws_session_peek (session) || session->behind_since)
        lws_callback_on_writable (wsi);
    return 0;
}

static int s_receive (broadcaster_server_t *self, ws_session_t *session, struct lws *wsi,
                      const void *in, size_t len)
{
    if (lws_frame_is_binary (wsi)) {
        static const char reason[] = "text frames only";
        lws_close_reason (wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, (unsigned char *) reason,
                          sizeof reason - 1);
        return -1;
    }
    if (session->rx_len + len > S_RX_MAX) {
        static const char reason[] = "message too big";
        lws_close_reason (wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *) reason,
                          sizeof reason - 1);
        return -1;
    }
    bool whole = lws_is_final_fragment (wsi) && lws_remaining_packet_payload (wsi) == 0;
    if (whole && session->rx_len == 0) {
        channels_request (self->channels, session, in, len, clock_mono_ns ());
        return 0;
    }
    if (!session->rx) {
        session->rx = malloc (S_RX_MAX);
        if (!session->rx)
            return -1;
    }
    memcpy (session->rx + session->rx_len, in, len);
    session->rx_len += len;
    if (whole) {
        channels_request (self->channels, session, session->rx, session->rx_len, clock_mono_ns ());
        session->rx_len = 0;
    }
    return 0;
}

//  What one client address holds: sessions open, and bytes of answers (snapshots, errors)
//  queued for them, which no other client shares (ws_session_t.address_bytes points here).
typedef struct {
    int sessions;
    size_t bytes;
} s_address_t;

static void s_free_count (void **item)
{
    free (*item);
    *item = NULL;
}

//  The client's address as the per-address count knows it (IPv4-mapped shown as IPv4).
static const char *s_address (struct lws *wsi, char *buf, size_t size)
{
    snprintf (buf, size, "?");
    lws_get_peer_simple (wsi, buf, size);
    return strncmp (buf, "::ffff:", 7) == 0 ? buf + 7 : buf;
}

//  Sessions open from address: +1 or -1. The entry goes with its last session (after its
//  queue: see LWS_CALLBACK_CLOSED), so the map never holds more than the sessions open.
//  Returns the entry (NULL once gone, or out of memory).
static s_address_t *s_count_address (broadcaster_server_t *self, const char *address, int change)
{
    s_address_t *entry = zhashx_lookup (self->per_address, address);
    if (!entry && change > 0) {
        entry = calloc (1, sizeof *entry);
        if (!entry || zhashx_insert (self->per_address, address, entry) != 0) {
            free (entry);
            return NULL;
        }
    }
    if (!entry)
        return NULL;
    entry->sessions += change;
    if (entry->sessions > 0)
        return entry;
    zhashx_delete (self->per_address, address);
    return NULL;
}

static int s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct lws_context *context = lws_get_context (wsi);
    broadcaster_server_t *self = context ? lws_context_user (context) : NULL;
    ws_session_t *session = user;
    switch (reason) {
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
            char origin[256] = "";
            if (lws_hdr_copy (wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
                origin[0] = '\0';
            if (origin[0] && !s_origin_allowed (self->cfg->broadcaster.origins, origin)) {
                log_info ("broadcaster", "refused a connection from origin %s", origin);
                return 1;
            }
            //  An address at its limit is refused before the upgrade: counted, not logged
            //  (a flood of refusals would be a flood of lines).
            char buf[64];
            const s_address_t *open =
                zhashx_lookup (self->per_address, s_address (wsi, buf, sizeof buf));
            if (open && open->sessions >= self->cfg->broadcaster.max_sessions_per_address) {
                atomic_fetch_add (&self->sessions_refused, 1);
                return 1;
            }
            return 0;
        }
        case LWS_CALLBACK_ESTABLISHED: {
            ws_session_init (session, wsi, (size_t) self->cfg->broadcaster.queue_bytes,
                             self->cfg->broadcaster.queue_ms * MCE_NS_PER_MSEC);
            int fd = lws_get_socket_fd (wsi);
            int sndbuf = (int) (self->cfg->broadcaster.queue_bytes < S_SNDBUF_MAX
                                    ? self->cfg->broadcaster.queue_bytes
                                    : S_SNDBUF_MAX);
            setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
            struct sockaddr_storage peer;
            socklen_t peer_len = sizeof peer;
            unsigned port = 0;
            if (getpeername (fd, (struct sockaddr *) &peer, &peer_len) == 0)
                port = peer.ss_family == AF_INET6
                           ? ntohs (((struct sockaddr_in6 *) &peer)->sin6_port)
                           : ntohs (((struct sockaddr_in *) &peer)->sin_port);
            char ip[48]; //  INET6_ADDRSTRLEN, and room for ":port" in session->peer
            const char *shown = s_address (wsi, ip, sizeof ip);
            snprintf (session->peer, sizeof session->peer, "%s:%u", shown, port);
            snprintf (session->address, sizeof session->address, "%s", shown);
            s_address_t *address = s_count_address (self, session->address, +1);
            if (address) {
                session->address_bytes = &address->bytes;
                session->address_limit = (size_t) self->cfg->broadcaster.queue_bytes_per_address;
            }
            session->next = self->sessions;
            if (self->sessions)
                self->sessions->prev = session;
            self->sessions = session;
            atomic_fetch_add (&self->sessions_open, 1);
            atomic_fetch_add (&self->sessions_total, 1);
            return 0;
        }
        case LWS_CALLBACK_RECEIVE:
            return s_receive (self, session, wsi, in, len);
        case LWS_CALLBACK_SERVER_WRITEABLE:
            return s_writable (self, session);
        case LWS_CALLBACK_CLOSED:
            channels_drop_session (self->channels, session);
            ws_session_clear (session); //  its bytes leave the address's count first
            s_count_address (self, session->address, -1);
            s_session_unlink (self, session);
            atomic_fetch_sub (&self->sessions_open, 1);
            return 0;
        case LWS_CALLBACK_RAW_RX_FILE:
            s_drain (self);
            return 0;
        case LWS_CALLBACK_RAW_CLOSE_FILE:
            return 0;
        default:
            return lws_callback_http_dummy (wsi, reason, user, in, len);
    }
}

//  tx_packet_size: with 0, libwebsockets cuts every write to rx_buffer_size (4 KB) and sends
//  the rest on later loop turns, a poll and a send each; a gathered batch goes in one send.
static const struct lws_protocols s_protocols[] = {
    {S_PROTOCOL, s_callback, sizeof (ws_session_t), S_RX_MAX, 0, NULL, S_BATCH_MAX},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

//  Idle connections are pinged, and dropped when they stop answering.
static const lws_retry_bo_t s_retry = {
    .secs_since_valid_ping = 20,
    .secs_since_valid_hangup = 40,
};

static void s_lws_log (int level, const char *line)
{
    size_t n = strlen (line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        log_error ("broadcaster", "libwebsockets: %.*s", (int) n, line);
    else
        log_warn ("broadcaster", "libwebsockets: %.*s", (int) n, line);
}

//  Adopts a duplicate of fd into the loop: readable means "drain".
static int s_adopt (broadcaster_server_t *self, int fd, int tag)
{
    int copy = dup (fd);
    if (copy < 0)
        return -1;
    lws_sock_file_fd_type desc = {.filefd = copy};
    struct lws *wsi =
        lws_adopt_descriptor_vhost (self->vhost, LWS_ADOPT_RAW_FILE_DESC, desc, S_PROTOCOL, NULL);
    if (!wsi) {
        close (copy);
        return -1;
    }
    self->fd_tags[tag] = tag;
    lws_set_opaque_user_data (wsi, &self->fd_tags[tag]);
    return 0;
}

static void s_render (void *arg, FILE *f)
{
    broadcaster_server_t *self = arg;
    fprintf (f,
             "# HELP mce_broadcaster_sessions WebSocket clients connected.\n"
             "# TYPE mce_broadcaster_sessions gauge\n"
             "mce_broadcaster_sessions %llu\n"
             "# HELP mce_broadcaster_sessions_total WebSocket clients accepted since start.\n"
             "# TYPE mce_broadcaster_sessions_total counter\n"
             "mce_broadcaster_sessions_total %llu\n"
             "# HELP mce_broadcaster_subscriptions Channel subscriptions of all clients.\n"
             "# TYPE mce_broadcaster_subscriptions gauge\n"
             "mce_broadcaster_subscriptions %llu\n"
             "# HELP mce_broadcaster_channels Channels followed by a client or a monitor.\n"
             "# TYPE mce_broadcaster_channels gauge\n"
             "mce_broadcaster_channels %llu\n"
             "# HELP mce_broadcaster_updates_total Channel updates rendered.\n"
             "# TYPE mce_broadcaster_updates_total counter\n"
             "mce_broadcaster_updates_total %llu\n"
             "# HELP mce_broadcaster_slow_closed_total Clients closed for staying behind.\n"
             "# TYPE mce_broadcaster_slow_closed_total counter\n"
             "mce_broadcaster_slow_closed_total %llu\n"
             "# HELP mce_broadcaster_sessions_refused_total Connections refused: their address "
             "had max_sessions_per_address open.\n"
             "# TYPE mce_broadcaster_sessions_refused_total counter\n"
             "mce_broadcaster_sessions_refused_total %llu\n"
             "# HELP mce_broadcaster_monitor_subscriptions Subscriptions on the XPUB.\n"
             "# TYPE mce_broadcaster_monitor_subscriptions gauge\n"
             "mce_broadcaster_monitor_subscriptions %llu\n"
             "# HELP mce_broadcaster_bus_seq Last event applied, per stream.\n"
             "# TYPE mce_broadcaster_bus_seq gauge\n"
             "mce_broadcaster_bus_seq{stream=\"m\"} %llu\n"
             "mce_broadcaster_bus_seq{stream=\"s\"} %llu\n",
             (unsigned long long) atomic_load (&self->sessions_open),
             (unsigned long long) atomic_load (&self->sessions_total),
             (unsigned long long) atomic_load (&self->subscriptions),
             (unsigned long long) atomic_load (&self->channel_count),
             (unsigned long long) atomic_load (&self->updates),
             (unsigned long long) atomic_load (&self->closed_slow),
             (unsigned long long) atomic_load (&self->sessions_refused),
             (unsigned long long) atomic_load (&self->monitors_now),
             (unsigned long long) atomic_load (&self->m_seq),
             (unsigned long long) atomic_load (&self->s_seq));
}

broadcaster_server_t *broadcaster_server_new (const mce_config_t *cfg)
{
    assert (cfg);
    broadcaster_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->started = clock_mono_ns ();
    self->per_address = zhashx_new ();
    if (!self->per_address) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->per_address, s_free_count);
    self->model = readmodel_new (cfg);
    self->channels = self->model ? channels_new (cfg, self->model, s_publish, self) : NULL;
    self->curve = curve_new (cfg, "broadcaster", true);
    self->m = self->curve ? bus_sub_new_for (cfg, self->curve, "m", "broadcaster", 0) : NULL;
    self->s = self->curve ? bus_sub_new_for (cfg, self->curve, "s", "broadcaster", 0) : NULL;
    self->xpub = zsock_new (ZMQ_XPUB);
    if (!self->channels || !self->m || !self->s || !self->xpub) {
        broadcaster_server_destroy (&self);
        return NULL;
    }
    zsock_set_xpub_verboser (self->xpub, 1); //  every subscribe and unsubscribe, counted
    zsock_set_sndhwm (self->xpub, 100000);
    //  What a monitor sends is a subscription: a topic prefix, never longer than a topic.
    zsock_set_maxmsgsize (self->xpub, 1024);
    if (curve_server (self->curve, self->xpub) < 0 ||
        zsock_bind (self->xpub, "%s", cfg->broadcaster.xpub) < 0) {
        log_error ("broadcaster", "cannot bind the monitors' XPUB on %s", cfg->broadcaster.xpub);
        broadcaster_server_destroy (&self);
        return NULL;
    }
    lws_set_log_level (LLL_ERR | LLL_WARN, s_lws_log);
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.user = self;
    self->context = lws_create_context (&info);
    if (!self->context) {
        log_error ("broadcaster", "libwebsockets would not start");
        broadcaster_server_destroy (&self);
        return NULL;
    }
    memset (&info, 0, sizeof info);
    info.port = (int) cfg->broadcaster.ws_port;
    info.iface = cfg->broadcaster.ws_address;
    info.protocols = s_protocols;
    info.vhost_name = "mce-broadcaster";
    info.retry_and_idle_policy = &s_retry;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    self->vhost = lws_create_vhost (self->context, &info);
    if (!self->vhost) {
        log_error ("broadcaster", "cannot listen on ws://%s:%lld", cfg->broadcaster.ws_address,
                   (long long) cfg->broadcaster.ws_port);
        broadcaster_server_destroy (&self);
        return NULL;
    }
    int fds[S_FDS];
    bus_sub_fds (self->m, fds);
    bus_sub_fds (self->s, fds + 2);
    fds[4] = zsock_fd (self->xpub);
    for (int i = 0; i < S_FDS; i++)
        if (s_adopt (self, fds[i], i)) {
            log_error ("broadcaster", "cannot watch a ZeroMQ descriptor in the event loop");
            broadcaster_server_destroy (&self);
            return NULL;
        }
    lws_sul_schedule (self->context, 0, &self->tick, s_tick, 1);
    self->metrics = metrics_http_new ("broadcaster", cfg->metrics_address,
                                      (int) cfg->broadcaster.metrics_port, s_render, self);
    log_info ("broadcaster", "WebSocket on ws://%s:%lld, monitors on %s",
              cfg->broadcaster.ws_address, (long long) cfg->broadcaster.ws_port,
              cfg->broadcaster.xpub);
    return self;
}

void broadcaster_server_destroy (broadcaster_server_t **self_p)
{
    assert (self_p);
    broadcaster_server_t *self = *self_p;
    if (!self)
        return;
    metrics_http_destroy (&self->metrics);
    if (self->context) //  closes every session (and the adopted duplicates) first
        lws_context_destroy (self->context);
    channels_destroy (&self->channels);
    readmodel_destroy (&self->model);
    bus_sub_destroy (&self->m);
    bus_sub_destroy (&self->s);
    zsock_destroy (&self->xpub);
    curve_destroy (&self->curve);        //  after the XPUB it serves
    zhashx_destroy (&self->per_address); //  after the context: closing sessions counts down
    free (self);
    *self_p = NULL;
}

int broadcaster_server_run (broadcaster_server_t *self)
{
    assert (self);
    while (!zsys_interrupted)
        if (lws_service (self->context, 0) < 0)
            return -1;
    return 0;
}
