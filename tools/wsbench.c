/*  mce-wsbench — the broadcaster's fan-out: how long a trade takes to reach each of N
    WebSocket clients, at a steady trade rate.

    It starts a real mce-matcher and a real mce-broadcaster in a temporary folder (the
    integration tests' harness), opens N WebSocket clients to the broadcaster, each subscribed
    to the depth and trades channels of campus-1, and waits until every one holds both
    snapshots. Then a thread of its own sends crossing order pairs to the matcher (a sell, then
    a buy at the same price and quantity from another user: one trade per pair) at --rate pairs
    per second for --seconds, paced by the clock in 1 ms steps, while the main thread reads
    every client. It measures, from the first order until every client has every trade:

        delivery latency   for every client and every trade of a trades update: the client's
                           CLOCK_REALTIME when its read returned, minus the trade's "time" (the
                           matcher's clock when it decided the trade, in µs). So it includes the
                           matcher's journal write, the bus, the broadcaster's gathering of
                           changes (broadcaster.flush_ms, 10 ms by default) and both kernels'
                           sides of loopback TCP. p50/p99/p99.9/max from a histogram of
                           log buckets, 0.1 % wide (as HdrHistogram's 3 significant digits),
                           over the trades delivered: the missing ones are not in it.
        deliveries         (client, trade) pairs received in updates. Every client must see
                           every trade; the missing ones are reported (a conflated client gets
                           a snapshot instead of what it missed).
        messages/s, MB/s   received by all clients together (MB: payload and framing).
        conflated          clients that got a second snapshot of a channel: the broadcaster
                           dropped their updates because their queue was full.
        dropped            clients the broadcaster closed.
        CPU s              of the broadcaster, all its threads (and of the matcher and of
                           this program, which share the machine) from /proc/<pid>/stat, over
                           the same span.

    The clients are written here by hand on one epoll loop, rather than on libwebsockets'
    client or tests/integration/wsclient (blocking, one socket at a time): thousands of sockets
    want one non-blocking loop and the least work per message, and the server's frames are
    simple (unmasked, unfragmented text, and pings), so a frame is a 2 to 10 byte header and a
    payload read in place. Messages are recognised by scanning their first keys, not parsed
    with jansson: every client receives the very same trades update (rendered once, shared by
    all), so the trade times of an update are parsed once, remembered by its seq and length,
    and each client's copy costs a scan of its header. The clients send RFC 6455's example
    Sec-WebSocket-Key so that the server's answer can be checked without SHA-1.

    With --floor it runs wsfloor.h instead: the same load and the same latency, written by one
    bare thread straight to N loopback TCP connections, the floor the broadcaster is held to.

    Prints a table, or with --json one JSON object on the last line. A benchmark, not a test:
    it exits 0 when it ran (whatever the numbers), 1 when it could not run (a client could not
    connect or subscribe, the matcher did not answer, the broadcaster died).
*/
#include "clock.h"
#include "harness.h"
#include "latency_hist.h"
#include "wsfloor.h"
#include "proto.h"

#include <arpa/inet.h>
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_CONFIG                                                                                   \
    "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; escrow = false; " \
    "} );\n"
#define S_FD_SPARE   100          //  descriptors beyond the clients: harness, ZeroMQ, logs
#define S_WAVE       256          //  handshakes in flight at once, well inside the backlog
#define S_PROGRESS   1000         //  a progress line every so many clients connected
#define S_READ_BYTES (256 * 1024) //  one read of one client, at most
#define S_HANDSHAKE  8192         //  the server's answer to the upgrade, at most
#define S_EVENTS     1024
#define S_CONNECT_S  300                  //  to connect every client and get every snapshot
#define S_DRAIN_S    30                   //  after the last order, for the last trades to arrive
#define S_QUIET_NS   (3 * MCE_NS_PER_SEC) //  ... or until nothing arrived at all this long
#define S_REPLIES_S  30                   //  for the matcher's last replies
#define S_CACHE      4096                 //  trades updates whose times are remembered (by seq)
#define S_HEAD       256                  //  a message's keys before "data" lie within this
#define S_QTY        1000                 //  Wh per order
#define S_PRICE      150000               //  µ/kWh, on the 0.001 tick
#define S_WS_KEY     "dGhlIHNhbXBsZSBub25jZQ=="     //  RFC 6455 §1.3's example key ...
#define S_WS_ACCEPT  "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" //  ... and the answer it must get

typedef struct {
    int clients, rate;
    double seconds;
    int flush_ms; //  broadcaster.flush_ms; -1: its default
    const char *fsync;
    bool json;
    bool floor;          //  --floor: the raw loopback fan-out instead (wsfloor.h)
    int bytes_per_trade; //  --floor's message size per trade
    int writers;         //  --floor's writer threads
} s_opts_t;

typedef enum { S_IDLE, S_CONNECTING, S_UPGRADING, S_OPEN, S_CLOSED } s_state_t;
enum { S_DEPTH, S_TRADES };

typedef struct {
    int fd;
    s_state_t state;
    uint32_t snapshots[2]; //  by channel
    uint64_t trades;       //  trade rows received in trades updates
    unsigned char *rest;   //  the start of a frame (or of the upgrade answer) not complete yet
    size_t rest_len, rest_cap;
} s_client_t;

//  The trade times of one trades update, parsed from the first copy that arrived.
typedef struct {
    uint64_t seq;
    size_t len;
    uint32_t rows;  //  trade rows
    uint32_t count; //  of them with a time
    int64_t *times; //  ns since the epoch
    uint32_t cap;
} s_times_t;

//  The load, on its own thread: its own DEALER (a ZeroMQ socket stays on one thread).
typedef struct {
    int port;
    harness_t *h; //  for the matcher's key
    int rate;
    double seconds;
    pthread_t thread;
    atomic_bool done; //  the fields below are final once set
    long pairs;       //  sent
    long acked, rejected;
    long trades;      //  acks that report a fill: each pair's aggressor, one trade each
    double driven_s;  //  from the first order to the last
    char reject[160]; //  the first rejection, to explain it
} s_drive_t;

typedef struct {
    s_opts_t o;
    harness_t h;
    int matcher, broadcaster; //  harness indexes
    int epfd;
    s_client_t *clients;
    int started, connected, subscribed, failed, in_flight;
    char failure[256]; //  the first failure, to explain it
    unsigned char *buf;
    size_t buf_cap;
    uint64_t rng;
    //  Counted from the first order on.
    bool loading;
    int64_t load_ns, last_rx_ns; //  wall: the first order, the last read
    uint64_t messages, bytes, resnapshots, errors, dropped;
    latency_hist_t hist;
    s_times_t cache[S_CACHE];
} s_bench_t;

static uint64_t s_rand (s_bench_t *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng;
}

//  ---------------------------------------------------------------------------------------
//  Processes

//  CPU seconds (user + system) of pid, and whether it is still alive (not gone, not a zombie).
static double s_cpu (pid_t pid, bool *alive)
{
    char path[64], text[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    size_t n = f ? fread (text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose (f);
    text[n] = '\0';
    const char *p = strrchr (text, ')'); //  the command name may hold spaces
    char state = 0;
    unsigned long utime = 0, stime = 0;
    if (!p || sscanf (p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &utime,
                      &stime) != 3) {
        if (alive)
            *alive = false;
        return 0;
    }
    if (alive)
        *alive = state != 'Z' && state != 'X';
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

static double s_self_cpu (void)
{
    struct rusage u;
    getrusage (RUSAGE_SELF, &u);
    return (double) u.ru_utime.tv_sec + (double) u.ru_utime.tv_usec / 1e6 +
           (double) u.ru_stime.tv_sec + (double) u.ru_stime.tv_usec / 1e6;
}

static bool s_alive (s_bench_t *b)
{
    bool broadcaster, matcher;
    s_cpu (b->h.procs[b->broadcaster].pid, &broadcaster);
    s_cpu (b->h.procs[b->matcher].pid, &matcher);
    if (!broadcaster || !matcher)
        snprintf (b->failure, sizeof b->failure, "the %s died (see %s)",
                  broadcaster ? "matcher" : "broadcaster",
                  b->h.procs[broadcaster ? b->matcher : b->broadcaster].log);
    return broadcaster && matcher;
}

//  Raises the soft descriptor limit to what is needed: N clients here and N in the broadcaster,
//  which inherits it (with --floor, the two ends in two processes). Raising the hard limit too
//  takes CAP_SYS_RESOURCE.
static int s_raise_fd_limit (int needed)
{
    struct rlimit r;
    if (getrlimit (RLIMIT_NOFILE, &r))
        return -1;
    if (r.rlim_max != RLIM_INFINITY && (rlim_t) needed > r.rlim_max) {
        struct rlimit more = {(rlim_t) needed, (rlim_t) needed};
        if (setrlimit (RLIMIT_NOFILE, &more) == 0)
            return 0;
        fprintf (stderr,
                 "mce-wsbench: this run needs %d descriptors, and the hard limit is %llu: raise "
                 "it (ulimit -Hn, /etc/security/limits.conf) or ask for fewer clients\n",
                 needed, (unsigned long long) r.rlim_max);
        return -1;
    }
    r.rlim_cur = r.rlim_max;
    return setrlimit (RLIMIT_NOFILE, &r);
}

//  ---------------------------------------------------------------------------------------
//  The load

static void s_replies (s_drive_t *d, zsock_t *dealer)
{
    zframe_t *f;
    while ((f = zframe_recv_nowait (dealer))) {
        proto_msg_t reply;
        if (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0) == 0) {
            if (reply.kind == PROTO_ack) {
                d->acked++;
                if (reply.ack.filled > 0)
                    d->trades++;
            }
            else if (reply.kind == PROTO_reject) {
                if (d->rejected++ == 0)
                    snprintf (d->reject, sizeof d->reject, "%s: %s",
                              proto_reject_reason_name (reply.reject.reason), reply.reject.message);
            }
        }
        zframe_destroy (&f);
    }
}

static void *s_drive (void *arg)
{
    s_drive_t *d = arg;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", d->port);
    zsock_t *dealer = harness_dealer (d->h, "matcher", endpoint);
    if (!dealer) {
        atomic_store (&d->done, true);
        return NULL;
    }
    zsock_set_sndhwm (dealer, 0);
    zsock_set_rcvhwm (dealer, 0);
    long total = (long) (d->rate * d->seconds);
    int64_t t0 = clock_mono_ns (), now;
    zmq_pollitem_t item = {zsock_resolve (dealer), 0, ZMQ_POLLIN, 0};
    //  Every millisecond, the pairs due by now: a steady rate in small batches.
    while (d->pairs < total) {
        now = clock_mono_ns ();
        long due = 1 + (long) ((double) (now - t0) * d->rate / 1e9);
        for (; d->pairs < due && d->pairs < total; d->pairs++) {
            harness_order (dealer, 2 * (uint64_t) d->pairs + 1, "seller", false, S_QTY, S_PRICE);
            harness_order (dealer, 2 * (uint64_t) d->pairs + 2, "buyer", true, S_QTY, S_PRICE);
        }
        s_replies (d, dealer);
        zmq_poll (&item, 1, 1);
    }
    d->driven_s = (double) (clock_mono_ns () - t0) / 1e9;
    int64_t deadline = clock_mono_ns () + S_REPLIES_S * MCE_NS_PER_SEC;
    while (d->acked + d->rejected < 2 * d->pairs && clock_mono_ns () < deadline) {
        zmq_poll (&item, 1, 100);
        s_replies (d, dealer);
    }
    zsock_destroy (&dealer);
    atomic_store (&d->done, true);
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Messages

//  Where key's value starts in the message's head, or NULL.
static const char *s_value (const char *text, size_t len, const char *key)
{
    size_t n = strlen (key);
    const char *at = memmem (text, len < S_HEAD ? len : S_HEAD, key, n);
    return at ? at + n : NULL;
}

static bool s_is (const char *value, const char *end, const char *word)
{
    size_t n = strlen (word);
    return value && (size_t) (end - value) > n && memcmp (value, word, n) == 0 && value[n] == '"';
}

//  The update's trade rows and times, from the cache or parsed now.
static const s_times_t *s_times (s_bench_t *b, const char *text, size_t len)
{
    const char *at = s_value (text, len, "\"seq\":");
    uint64_t seq = 0;
    while (at && at < text + len && *at >= '0' && *at <= '9')
        seq = seq * 10 + (uint64_t) (*at++ - '0');
    s_times_t *t = &b->cache[seq % S_CACHE];
    if (seq && t->seq == seq && t->len == len)
        return t;
    t->seq = seq;
    t->len = len;
    t->rows = t->count = 0;
    const char *end = text + len;
    static const char row[] = "\"trade_id\":\"", key[] = "\"time\":\"";
    for (const char *p = text; (p = memmem (p, (size_t) (end - p), row, sizeof row - 1));
         p += sizeof row - 1)
        t->rows++;
    for (const char *p = text; (p = memmem (p, (size_t) (end - p), key, sizeof key - 1));) {
        p += sizeof key - 1;
        const char *close = memchr (p, '"', (size_t) (end - p));
        int64_t ns;
        if (!close)
            break;
        if (clock_parse_rfc3339 (p, (size_t) (close - p), &ns) == 0) {
            if (t->count == t->cap) {
                uint32_t cap = t->cap ? 2 * t->cap : 64;
                int64_t *grown = realloc (t->times, cap * sizeof *grown);
                if (!grown)
                    abort ();
                t->times = grown;
                t->cap = cap;
            }
            t->times[t->count++] = ns;
        }
        p = close;
    }
    return t;
}

static void s_text (s_bench_t *b, s_client_t *c, const char *text, size_t len, int64_t now)
{
    b->messages += b->loading;
    const char *end = text + len;
    const char *type = s_value (text, len, "\"type\":\"");
    const char *channel = s_value (text, len, "\"channel\":\"");
    int ch = s_is (channel, end, "depth") ? S_DEPTH : s_is (channel, end, "trades") ? S_TRADES : -1;
    if (ch >= 0 && s_is (type, end, "snapshot")) {
        if (c->snapshots[ch]++ > 0)
            b->resnapshots++; //  after the first: updates were dropped (conflation)
        else if (c->snapshots[!ch] > 0)
            b->subscribed++;
    }
    else if (ch == S_TRADES && s_is (type, end, "update")) {
        const s_times_t *t = s_times (b, text, len);
        for (uint32_t i = 0; i < t->count; i++)
            latency_hist_record (&b->hist, now - t->times[i], 1);
        c->trades += t->rows;
    }
    else if (s_is (type, end, "error")) {
        if (b->errors++ == 0)
            fprintf (stderr, "mce-wsbench: the broadcaster answered %.*s\n", (int) len, text);
    }
}

//  ---------------------------------------------------------------------------------------
//  Clients

//  One masked frame (RFC 6455 §5.3) of a short payload (under 126 bytes) into out.
static size_t s_frame (s_bench_t *b, unsigned char *out, int opcode, const void *data, size_t len)
{
    uint32_t mask = (uint32_t) s_rand (b);
    out[0] = (unsigned char) (0x80 | opcode);
    out[1] = (unsigned char) (0x80 | len);
    memcpy (out + 2, &mask, 4);
    for (size_t i = 0; i < len; i++)
        out[6 + i] = ((const unsigned char *) data)[i] ^ out[2 + i % 4];
    return 6 + len;
}

static void s_close (s_bench_t *b, s_client_t *c)
{
    if (c->state == S_CONNECTING || c->state == S_UPGRADING)
        b->in_flight--;
    close (c->fd);
    c->fd = -1;
    c->state = S_CLOSED;
    free (c->rest);
    c->rest = NULL;
    c->rest_len = c->rest_cap = 0;
}

//  A client that could not connect or subscribe: the benchmark cannot run.
static void s_fail (s_bench_t *b, s_client_t *c, const char *why)
{
    if (b->failed++ == 0)
        snprintf (b->failure, sizeof b->failure, "client %d: %s", (int) (c - b->clients), why);
    s_close (b, c);
}

//  A client the server closed (or whose connection broke) once it was open.
static void s_lost (s_bench_t *b, s_client_t *c, const char *why)
{
    if (b->dropped++ == 0 && !(b->o.json))
        fprintf (stderr, "mce-wsbench: client %d closed by the broadcaster: %s\n",
                 (int) (c - b->clients), why);
    s_close (b, c);
}

static void s_send (s_bench_t *b, s_client_t *c, const unsigned char *data, size_t len)
{
    //  A few small frames on a socket that is not behind: the kernel takes them whole.
    if (send (c->fd, data, len, MSG_NOSIGNAL) != (ssize_t) len)
        s_lost (b, c, "a send failed");
}

static void s_subscribe (s_bench_t *b, s_client_t *c)
{
    static const char depth[] =
        "{\"op\":\"subscribe\",\"channel\":\"depth\",\"market\":\"campus-1\"}",
                      trades[] =
                          "{\"op\":\"subscribe\",\"channel\":\"trades\",\"market\":\"campus-1\"}";
    unsigned char out[2 * (6 + 125)];
    size_t n = s_frame (b, out, 0x1, depth, sizeof depth - 1);
    n += s_frame (b, out + n, 0x1, trades, sizeof trades - 1);
    s_send (b, c, out, n);
}

//  Consumes the whole frames at the start of data; returns how many bytes they took.
static size_t s_frames (s_bench_t *b, s_client_t *c, unsigned char *data, size_t len, int64_t now)
{
    size_t at = 0;
    while (c->state == S_OPEN && len - at >= 2) {
        const unsigned char *f = data + at;
        int opcode = f[0] & 0x0f;
        uint64_t size = f[1] & 0x7f;
        size_t head = 2;
        if (size == 126) {
            if (len - at < 4)
                break;
            size = (uint64_t) f[2] << 8 | f[3];
            head = 4;
        }
        else if (size == 127) {
            if (len - at < 10)
                break;
            size = 0;
            for (int i = 0; i < 8; i++)
                size = size << 8 | f[2 + i];
            head = 10;
        }
        if ((f[1] & 0x80) || !(f[0] & 0x80) || opcode == 0x0) {
            s_lost (b, c, "a masked or fragmented frame from the server");
            break;
        }
        if (size > len - at - head)
            break;
        const unsigned char *payload = f + head;
        if (opcode == 0x1)
            s_text (b, c, (const char *) payload, (size_t) size, now);
        else if (opcode == 0x9) { //  ping: the same payload back
            unsigned char pong[6 + 125];
            s_send (b, c, pong, s_frame (b, pong, 0xA, payload, size < 125 ? size : 125));
        }
        else if (opcode == 0x8) {
            char why[160];
            snprintf (why, sizeof why, "close frame %d %.*s",
                      size >= 2 ? payload[0] << 8 | payload[1] : 0, size > 2 ? (int) size - 2 : 0,
                      (const char *) payload + 2);
            s_lost (b, c, why);
        }
        at += head + (size_t) size;
    }
    return at;
}

//  The upgrade answer, once whole: checks it and subscribes. Returns the bytes it took, 0 when
//  it is not whole yet, -1 when the client failed.
static long s_upgraded (s_bench_t *b, s_client_t *c, const unsigned char *data, size_t len)
{
    assert (data);
    const unsigned char *end = memmem (data, len, "\r\n\r\n", 4);
    if (!end) {
        if (len > S_HANDSHAKE)
            s_fail (b, c, "an upgrade answer with no end");
        return len > S_HANDSHAKE ? -1 : 0;
    }
    size_t head = (size_t) (end - data) + 4;
    if (head < 12 || memcmp (data, "HTTP/1.1 101", 12) != 0 ||
        !memmem (data, head, S_WS_ACCEPT, sizeof S_WS_ACCEPT - 1)) {
        char why[160];
        const unsigned char *eol = memchr (data, '\r', head);
        snprintf (why, sizeof why, "the upgrade was refused: %.*s", (int) (eol - data), data);
        s_fail (b, c, why);
        return -1;
    }
    c->state = S_OPEN;
    b->in_flight--;
    b->connected++;
    if (!b->o.json && b->connected % S_PROGRESS == 0)
        fprintf (stderr, "mce-wsbench: %d of %d clients connected\n", b->connected, b->o.clients);
    s_subscribe (b, c);
    return c->state == S_OPEN ? (long) head : -1;
}

static void s_read (s_bench_t *b, s_client_t *c)
{
    if (b->buf_cap < c->rest_len + S_READ_BYTES) {
        size_t cap = c->rest_len + S_READ_BYTES;
        unsigned char *grown = realloc (b->buf, cap);
        if (!grown)
            abort ();
        b->buf = grown;
        b->buf_cap = cap;
    }
    if (c->rest_len)
        memcpy (b->buf, c->rest, c->rest_len);
    ssize_t got = recv (c->fd, b->buf + c->rest_len, b->buf_cap - c->rest_len, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        if (c->state == S_OPEN)
            s_lost (b, c, got == 0 ? "the connection ended" : strerror (errno));
        else
            s_fail (b, c, got == 0 ? "the connection ended" : strerror (errno));
        return;
    }
    int64_t now = clock_wall_ns ();
    if (b->loading) {
        b->bytes += (uint64_t) got;
        b->last_rx_ns = now;
    }
    size_t len = c->rest_len + (size_t) got, used = 0;
    if (c->state == S_UPGRADING) {
        long head = s_upgraded (b, c, b->buf, len);
        if (head < 0)
            return;
        used = (size_t) head;
    }
    if (c->state == S_OPEN)
        used += s_frames (b, c, b->buf + used, len - used, now);
    if (c->state == S_CLOSED)
        return;
    c->rest_len = len - used;
    if (c->rest_len > c->rest_cap) {
        size_t cap = c->rest_len < 4096 ? 4096 : c->rest_len;
        unsigned char *grown = realloc (c->rest, cap);
        if (!grown)
            abort ();
        c->rest = grown;
        c->rest_cap = cap;
    }
    if (c->rest_len)
        memcpy (c->rest, b->buf + used, c->rest_len);
}

static void s_connect (s_bench_t *b)
{
    int i = b->started++;
    s_client_t *c = &b->clients[i];
    c->state = S_CONNECTING;
    b->in_flight++;
    c->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        s_fail (b, c, strerror (errno));
        return;
    }
    int one = 1;
    setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) b->h.port_ws),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t) i};
    if ((connect (c->fd, (struct sockaddr *) &addr, sizeof addr) < 0 && errno != EINPROGRESS) ||
        epoll_ctl (b->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        s_fail (b, c, strerror (errno));
}

//  The connection is made (or failed): the upgrade request goes.
static void s_connected (s_bench_t *b, s_client_t *c, uint32_t events)
{
    int err = 0;
    socklen_t size = sizeof err;
    getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &size);
    if (err || (events & (EPOLLERR | EPOLLHUP))) {
        s_fail (b, c, err ? strerror (err) : "the connection failed");
        return;
    }
    if (!(events & EPOLLOUT))
        return;
    char request[256];
    int n = snprintf (request, sizeof request,
                      "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: " S_WS_KEY "\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      b->h.port_ws);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) (c - b->clients)};
    if (send (c->fd, request, (size_t) n, MSG_NOSIGNAL) != n ||
        epoll_ctl (b->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        s_fail (b, c, strerror (errno));
        return;
    }
    c->state = S_UPGRADING;
}

//  One turn of the loop: new connections up to the wave, then whatever is ready.
static void s_poll (s_bench_t *b, int timeout_ms)
{
    while (b->in_flight < S_WAVE && b->started < b->o.clients)
        s_connect (b);
    struct epoll_event events[S_EVENTS];
    int n = epoll_wait (b->epfd, events, S_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++) {
        s_client_t *c = &b->clients[events[i].data.u32];
        if (c->state == S_CONNECTING)
            s_connected (b, c, events[i].events);
        else if (c->state != S_CLOSED)
            s_read (b, c);
    }
}

//  ---------------------------------------------------------------------------------------

static int s_usage (int rc)
{
    printf (
        "Usage: mce-wsbench [--clients N] [--rate R] [--seconds S] [--flush-ms MS]\n"
        "                   [--fsync batch|always|never] [--json]\n"
        "       mce-wsbench --floor [--clients N] [--rate R] [--seconds S] [--bytes-per-trade B]\n"
        "                   [--writers W] [--json]\n"
        "The broadcaster's fan-out. Starts a real mce-matcher and mce-broadcaster, connects N\n"
        "WebSocket clients (default 1000), each subscribed to the depth and trades channels of\n"
        "campus-1, then makes R trades/s (default 1000: crossing order pairs sent to the\n"
        "matcher) for S seconds (default 10) and measures:\n"
        "  delivery latency   per client per trade: the client's wall clock when it read the\n"
        "                     trades update minus the trade's time (the matcher's clock):\n"
        "                     p50, p99, p99.9 and max in ms\n"
        "  deliveries         (client, trade) pairs received, and the missing ones\n"
        "  messages/s, MB/s   received by all clients together\n"
        "  conflated          clients that got a snapshot again (updates dropped: queue full)\n"
        "  dropped            clients the broadcaster closed\n"
        "  CPU s              of the broadcaster, the matcher and this program\n"
        "Options:\n"
        "  --flush-ms MS      the broadcaster's broadcaster.flush_ms (default: its own, 10)\n"
        "  --fsync MODE       the matcher's matcher.fsync (default batch)\n"
        "  --json             one JSON object on the last line instead of the table\n"
        "  --floor            no broadcaster: one thread writes each trade batch straight to N\n"
        "                     loopback TCP connections (a send each, as soon as the last round\n"
        "                     is done) and the same latency is measured: what any one-thread\n"
        "                     fan-out could do on this machine\n"
        "  --bytes-per-trade B   --floor's message size per trade (default 140, about what a\n"
        "                     client receives per trade on depth and trades)\n"
        "  --writers W        --floor's writer threads, each with N/W connections (default 1,\n"
        "                     as the broadcaster)\n"
        "Needs N + %d descriptors (the hard RLIMIT_NOFILE; the soft one is raised to it).\n"
        "Exits 0 when it ran, 1 when it could not (a client could not connect or subscribe,\n"
        "the matcher did not answer, the broadcaster died).\n",
        S_FD_SPARE);
    return rc;
}

static int s_options (int argc, char **argv, s_opts_t *o)
{
    static const struct option longs[] = {{"clients", 1, 0, 'c'},
                                          {"rate", 1, 0, 'r'},
                                          {"seconds", 1, 0, 's'},
                                          {"flush-ms", 1, 0, 'f'},
                                          {"fsync", 1, 0, 'y'},
                                          {"json", 0, 0, 'j'},
                                          {"floor", 0, 0, 'F'},
                                          {"bytes-per-trade", 1, 0, 'b'},
                                          {"writers", 1, 0, 'w'},
                                          {"help", 0, 0, 'h'},
                                          {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1)
        switch (c) {
            case 'c':
                o->clients = atoi (optarg);
                break;
            case 'r':
                o->rate = atoi (optarg);
                break;
            case 's':
                o->seconds = atof (optarg);
                break;
            case 'f':
                o->flush_ms = atoi (optarg);
                break;
            case 'y':
                o->fsync = optarg;
                break;
            case 'j':
                o->json = true;
                break;
            case 'F':
                o->floor = true;
                break;
            case 'b':
                o->bytes_per_trade = atoi (optarg);
                break;
            case 'w':
                o->writers = atoi (optarg);
                break;
            case 'h':
                exit (s_usage (0));
            default:
                exit (s_usage (1));
        }
    if (o->clients < 1 || o->rate < 1 || o->seconds <= 0 || o->flush_ms < -1 ||
        o->bytes_per_trade < 1 || o->bytes_per_trade > 65536 || o->writers < 1 || o->writers > 64 ||
        o->flush_ms > 1000 ||
        (strcmp (o->fsync, "batch") && strcmp (o->fsync, "always") && strcmp (o->fsync, "never"))) {
        fprintf (stderr, "mce-wsbench: bad options (try --help)\n");
        return -1;
    }
    return 0;
}

//  Starts the processes, connects and subscribes every client. 0, or -1 (b->failure says why).
static int s_setup (s_bench_t *b)
{
    harness_init (&b->h, S_CONFIG);
    char flush[16];
    snprintf (flush, sizeof flush, "%d", b->o.flush_ms);
    if (b->o.flush_ms >= 0)
        setenv ("MCE_BROADCASTER_FLUSH_MS", flush, 1);
    setenv ("MCE_MATCHER_FSYNC", b->o.fsync, 1);
    b->matcher = harness_start (&b->h, "mce-matcher");
    b->broadcaster = harness_start (&b->h, "mce-broadcaster");
    if (!harness_wait_log (&b->h, b->broadcaster, "WebSocket on", HARNESS_DEADLINE_MS)) {
        snprintf (b->failure, sizeof b->failure, "the broadcaster did not start (see %s)",
                  b->h.procs[b->broadcaster].log);
        return -1;
    }
    int64_t t0 = clock_mono_ns (), checked = t0;
    int64_t deadline = t0 + S_CONNECT_S * MCE_NS_PER_SEC;
    while (b->subscribed < b->o.clients && !b->failed && !b->dropped && !zsys_interrupted) {
        s_poll (b, 10);
        int64_t now = clock_mono_ns ();
        if (now - checked > MCE_NS_PER_SEC) {
            checked = now;
            if (!s_alive (b))
                return -1;
        }
        if (now > deadline) {
            snprintf (b->failure, sizeof b->failure,
                      "after %d s, %d clients connected and %d subscribed of %d", S_CONNECT_S,
                      b->connected, b->subscribed, b->o.clients);
            return -1;
        }
    }
    if (b->dropped && !b->failed)
        snprintf (b->failure, sizeof b->failure, "a client was closed before the load began");
    if (b->failed || b->dropped || zsys_interrupted)
        return -1;
    if (!b->o.json)
        fprintf (stderr, "mce-wsbench: %d clients subscribed in %.1f s\n", b->subscribed,
                 (double) (clock_mono_ns () - t0) / 1e9);
    return 0;
}

int main (int argc, char **argv)
{
    s_bench_t *b = calloc (1, sizeof *b);
    if (!b)
        return 1;
    b->o = (s_opts_t){.clients = 1000,
                      .rate = 1000,
                      .seconds = 10,
                      .flush_ms = -1,
                      .fsync = "batch",
                      .bytes_per_trade = 140,
                      .writers = 1};
    if (s_options (argc, argv, &b->o) || s_raise_fd_limit (b->o.clients + S_FD_SPARE))
        return 1;
    if (b->o.floor) {
        int rc = wsfloor_run (b->o.clients, b->o.rate, b->o.seconds, b->o.bytes_per_trade,
                              b->o.writers, b->o.json);
        free (b);
        return rc;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    b->rng = 0x2545F4914F6CDD1DULL ^ (uint64_t) clock_wall_ns ();
    b->clients = calloc ((size_t) b->o.clients, sizeof *b->clients);
    b->epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (!b->clients || latency_hist_init (&b->hist) || b->epfd < 0)
        return 1;
    for (int i = 0; i < b->o.clients; i++)
        b->clients[i].fd = -1;
    int rc = 1;
    s_drive_t d = {.rate = b->o.rate, .seconds = b->o.seconds};
    bool driving = false;
    if (s_setup (b))
        goto done;

    //  The load, and every client read until each has every trade.
    b->loading = true;
    b->load_ns = b->last_rx_ns = clock_wall_ns ();
    pid_t bpid = b->h.procs[b->broadcaster].pid, mpid = b->h.procs[b->matcher].pid;
    double cpu_b = s_cpu (bpid, NULL), cpu_m = s_cpu (mpid, NULL), cpu_self = s_self_cpu ();
    d.port = b->h.port_commands;
    d.h = &b->h;
    if (pthread_create (&d.thread, NULL, s_drive, &d)) {
        snprintf (b->failure, sizeof b->failure, "cannot start the load's thread");
        goto done;
    }
    driving = true;
    if (!b->o.json)
        fprintf (stderr, "mce-wsbench: %d trades/s for %g s\n", b->o.rate, b->o.seconds);
    int64_t checked = clock_mono_ns (), drained = 0;
    bool dead = false;
    while (!zsys_interrupted) {
        s_poll (b, 10);
        int64_t now = clock_mono_ns ();
        if (now - checked > MCE_NS_PER_SEC) {
            checked = now;
            if ((dead = !s_alive (b)))
                break;
        }
        if (!atomic_load (&d.done))
            continue;
        if (!drained)
            drained = now;
        bool all = true;
        for (int i = 0; i < b->o.clients && all; i++)
            all = b->clients[i].state != S_OPEN || b->clients[i].trades >= (uint64_t) d.trades;
        if (all || now - drained > S_DRAIN_S * MCE_NS_PER_SEC ||
            clock_wall_ns () - b->last_rx_ns > S_QUIET_NS)
            break;
    }
    double span = (double) (b->last_rx_ns - b->load_ns) / 1e9;
    cpu_b = s_cpu (bpid, NULL) - cpu_b;
    cpu_m = s_cpu (mpid, NULL) - cpu_m;
    cpu_self = s_self_cpu () - cpu_self;
    pthread_join (d.thread, NULL);
    driving = false;
    if (dead || zsys_interrupted)
        goto done;
    if (d.pairs == 0 || d.acked + d.rejected < 2 * d.pairs) {
        snprintf (b->failure, sizeof b->failure, "the matcher answered %ld of %ld orders",
                  d.acked + d.rejected, 2 * d.pairs);
        goto done;
    }
    if (d.rejected)
        fprintf (stderr, "mce-wsbench: the matcher rejected %ld orders (%s)\n", d.rejected,
                 d.reject);

    //  Figures
    uint64_t deliveries = 0, missing = 0;
    int conflated = 0, short_clients = 0;
    for (int i = 0; i < b->o.clients; i++) {
        const s_client_t *c = &b->clients[i];
        deliveries += c->trades;
        if (c->trades < (uint64_t) d.trades) {
            missing += (uint64_t) d.trades - c->trades;
            short_clients++;
        }
        conflated += c->snapshots[S_DEPTH] > 1 || c->snapshots[S_TRADES] > 1;
    }
    double tps = d.driven_s > 0 ? (double) d.trades / d.driven_s : 0;
    double mps = span > 0 ? (double) b->messages / span : 0;
    double mbps = span > 0 ? (double) b->bytes / span / 1e6 : 0;
    double p50 = latency_hist_ms (&b->hist, 0.50), p99 = latency_hist_ms (&b->hist, 0.99),
           p999 = latency_hist_ms (&b->hist, 0.999), max = (double) b->hist.max_us / 1000.0;
    if (b->o.json)
        printf ("{\"clients\":%d,\"rate\":%d,\"trades\":%ld,\"trades_per_s\":%.1f,"
                "\"deliveries\":%llu,\"missing\":%llu,\"clients_missing\":%d,"
                "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
                "\"messages_per_s\":%.0f,\"mb_per_s\":%.2f,\"conflated_clients\":%d,"
                "\"resnapshots\":%llu,\"dropped_clients\":%llu,\"broadcaster_cpu_s\":%.2f,"
                "\"matcher_cpu_s\":%.2f,\"wsbench_cpu_s\":%.2f,\"seconds\":%.2f}\n",
                b->o.clients, b->o.rate, d.trades, tps, (unsigned long long) deliveries,
                (unsigned long long) missing, short_clients, p50, p99, p999, max, mps, mbps,
                conflated, (unsigned long long) b->resnapshots, (unsigned long long) b->dropped,
                cpu_b, cpu_m, cpu_self, span);
    else {
        printf ("%-8s %9s %11s %8s %8s %8s %9s %8s %10s %7s %9s %8s %9s\n", "clients", "trades/s",
                "deliveries", "missing", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "messages/s",
                "MB/s", "conflated", "dropped", "bcast CPU");
        printf ("%-8d %9.0f %11llu %8llu %8.2f %8.2f %9.2f %8.2f %10.0f %7.2f %9d %8llu %8.2fs\n",
                b->o.clients, tps, (unsigned long long) deliveries, (unsigned long long) missing,
                p50, p99, p999, max, mps, mbps, conflated, (unsigned long long) b->dropped, cpu_b);
        printf ("%ld trades in %.2f s (%d/s asked); measured over %.2f s, until the last message; "
                "CPU s: broadcaster %.2f (%.0f%% of a core), matcher %.2f, mce-wsbench %.2f; "
                "%llu snapshots after the first; %d clients missing trades\n",
                d.trades, d.driven_s, b->o.rate, span, cpu_b, span > 0 ? 100 * cpu_b / span : 0,
                cpu_m, cpu_self, (unsigned long long) b->resnapshots, short_clients);
    }
    if (b->hist.negative)
        fprintf (stderr, "mce-wsbench: %llu deliveries before their trade's time (clock?)\n",
                 (unsigned long long) b->hist.negative);
    rc = 0;
done:
    if (driving)
        pthread_join (d.thread, NULL);
    if (rc)
        fprintf (stderr, "mce-wsbench: could not run: %s\n",
                 b->failure[0] ? b->failure : "interrupted");
    for (int i = 0; i < b->o.clients; i++)
        if (b->clients[i].state != S_IDLE && b->clients[i].state != S_CLOSED)
            s_close (b, &b->clients[i]);
    harness_cleanup (&b->h);
    close (b->epfd);
    for (int i = 0; i < S_CACHE; i++)
        free (b->cache[i].times);
    free (b->clients);
    latency_hist_free (&b->hist);
    free (b->buf);
    free (b);
    return rc;
}
