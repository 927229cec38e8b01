/*  wsfloor — see wsfloor.h.  */
#include "wsfloor.h"
#include "latency_hist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define S_HEAD       16            //  a message: u32 length, u32 trades, u64 first trade's index
#define S_MSG_MAX    (1024 * 1024) //  bytes of one message, at most (a longer batch is cut)
#define S_SNDBUF     (256 * 1024)  //  as the broadcaster sets it
#define S_DRAIN_NS   30000000000LL //  after the last trade, for every client to have it
#define S_EVENTS     1024
#define S_CONNECT_NS 120000000000LL //  for every connection to be made
#define S_READ       (256 * 1024)

typedef struct {
    int client, server; //  the two ends: the client's in the reading process
    unsigned char head[S_HEAD];
    size_t have; //  bytes of the head read so far
    size_t skip; //  bytes of the message's body still to come
    uint64_t trades;
} s_conn_t;

typedef struct {
    int count, rate, bytes;
    long total; //  trades
    int64_t t0; //  CLOCK_MONOTONIC ns of trade 0
    s_conn_t *conns;
    int writers;
    //  The round being written: the writers meet at go before it and at gone after it.
    pthread_barrier_t go, gone;
    unsigned char *msg;
    size_t len;
    bool stop;
    //  The writers' figures.
    long rounds;
    int64_t round_ns;   //  summed: from a round's first send to its last
    int64_t longest_ns; //  the longest round
    uint64_t sends;
    double cpu_s; //  the writer thread's
    char failure[160];
} s_floor_t;

typedef struct {
    s_floor_t *f;
    int from, to; //  its connections
    pthread_t thread;
    int error; //  errno of a failed send
    double cpu_s;
} s_writer_t;

static int64_t s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t s_trade_ns (const s_floor_t *f, long i)
{
    return f->t0 + (int64_t) ((double) i * 1e9 / f->rate);
}

static void s_put32 (unsigned char *p, uint32_t v)
{
    memcpy (p, &v, sizeof v);
}

//  One send of msg to each connection of [from, to). 0, or -1 with errno.
static int s_send_slice (s_floor_t *f, int from, int to, const unsigned char *msg, size_t len)
{
    for (int i = from; i < to; i++) {
        size_t off = 0;
        while (off < len) {
            ssize_t n = send (f->conns[i].server, msg + off, len - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -1;
            off += (size_t) n;
        }
    }
    return 0;
}

static double s_thread_cpu (void)
{
    struct timespec cpu;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu);
    return (double) cpu.tv_sec + (double) cpu.tv_nsec / 1e9;
}

//  A writer thread past the first: its slice of every round, between the two barriers.
static void *s_helper (void *arg)
{
    s_writer_t *w = arg;
    s_floor_t *f = w->f;
    while (true) {
        pthread_barrier_wait (&f->go);
        if (f->stop)
            break;
        if (s_send_slice (f, w->from, w->to, f->msg, f->len))
            w->error = errno;
        pthread_barrier_wait (&f->gone);
    }
    w->cpu_s = s_thread_cpu ();
    return NULL;
}

static void s_write (s_floor_t *f)
{
    f->msg = calloc (1, S_MSG_MAX);
    s_writer_t *w = calloc ((size_t) f->writers, sizeof *w);
    if (!f->msg || !w || pthread_barrier_init (&f->go, NULL, (unsigned) f->writers) ||
        pthread_barrier_init (&f->gone, NULL, (unsigned) f->writers)) {
        snprintf (f->failure, sizeof f->failure, "cannot set up the writers");
        free (f->msg);
        free (w);
        return;
    }
    //  Writer i has connections [i·N/W, (i+1)·N/W); this thread is writer 0.
    int started = 1;
    for (int i = 0; i < f->writers; i++) {
        w[i].f = f;
        w[i].from = (int) ((long) i * f->count / f->writers);
        w[i].to = (int) ((long) (i + 1) * f->count / f->writers);
    }
    for (; started < f->writers; started++)
        if (pthread_create (&w[started].thread, NULL, s_helper, &w[started]))
            break;
    if (started < f->writers) {
        //  Threads that did not start cannot meet the barriers: give up (they never will).
        fprintf (stderr, "mce-wsbench: floor: cannot start writer threads\n");
        exit (1);
    }
    long next = 0; //  the first trade not sent yet
    while (next < f->total) {
        int64_t now = s_now ();
        long due = 1 + (long) ((double) (now - f->t0) * f->rate / 1e9);
        if (due > f->total)
            due = f->total;
        if (due <= next) { //  nothing new: until the next trade happens
            int64_t at = s_trade_ns (f, next);
            struct timespec ts = {(time_t) (at / 1000000000LL), (long) (at % 1000000000LL)};
            clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            continue;
        }
        uint64_t trades = (uint64_t) (due - next);
        uint64_t len = S_HEAD + trades * (uint64_t) f->bytes;
        if (len > S_MSG_MAX)
            len = S_MSG_MAX;
        s_put32 (f->msg, (uint32_t) len);
        s_put32 (f->msg + 4, (uint32_t) trades);
        uint64_t first = (uint64_t) next;
        memcpy (f->msg + 8, &first, sizeof first);
        f->len = len;
        int64_t start = s_now ();
        pthread_barrier_wait (&f->go);
        if (s_send_slice (f, w[0].from, w[0].to, f->msg, len))
            w[0].error = errno;
        pthread_barrier_wait (&f->gone);
        int64_t took = s_now () - start;
        for (int i = 0; i < f->writers; i++)
            if (w[i].error && !f->failure[0])
                snprintf (f->failure, sizeof f->failure, "send: %s", strerror (w[i].error));
        if (f->failure[0])
            break;
        f->sends += (uint64_t) f->count;
        f->round_ns += took;
        if (took > f->longest_ns)
            f->longest_ns = took;
        f->rounds++;
        next = due;
    }
    f->stop = true;
    pthread_barrier_wait (&f->go);
    f->cpu_s = s_thread_cpu ();
    for (int i = 1; i < f->writers; i++) {
        pthread_join (w[i].thread, NULL);
        f->cpu_s += w[i].cpu_s;
    }
    pthread_barrier_destroy (&f->go);
    pthread_barrier_destroy (&f->gone);
    free (f->msg);
    free (w);
}

//  Takes the bytes read from one connection: whole messages give their trades' deliveries.
static void s_take (s_floor_t *f, latency_hist_t *h, s_conn_t *c, const unsigned char *data,
                    size_t len, int64_t now)
{
    while (len > 0) {
        if (c->skip) {
            size_t n = len < c->skip ? len : c->skip;
            c->skip -= n;
            data += n;
            len -= n;
            continue;
        }
        size_t n = S_HEAD - c->have < len ? S_HEAD - c->have : len;
        memcpy (c->head + c->have, data, n);
        c->have += n;
        data += n;
        len -= n;
        if (c->have < S_HEAD)
            continue;
        c->have = 0;
        uint32_t size, trades;
        uint64_t first;
        memcpy (&size, c->head, 4);
        memcpy (&trades, c->head + 4, 4);
        memcpy (&first, c->head + 8, 8);
        c->skip = size - S_HEAD;
        //  A trade is delivered when its message's head is read (mce-wsbench's clients count
        //  an update once it is whole): a floor errs early, never late.
        for (uint32_t t = 0; t < trades; t++)
            latency_hist_record (h, now - s_trade_ns (f, (long) (first + t)), 1);
        c->trades += trades;
    }
}

//  Reads everything and writes it all (or fails), for the pipes between the two processes.
static int s_full (int fd, void *data, size_t len, bool out)
{
    unsigned char *p = data;
    while (len > 0) {
        ssize_t n = out ? write (fd, p, len) : read (fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

//  What the reading process sends back once done.
typedef struct {
    uint64_t got, bytes;
    int64_t last_rx;
    uint64_t count, negative;
    int64_t max_us;
    char failure[160];
} s_result_t;

//  The reading process: connects every client, waits for t0 on start, reads until every client
//  has every trade (or the time is up), and sends its figures and histogram on result.
static void s_reader (s_floor_t *f, struct sockaddr_in addr, int start, int result)
{
    s_result_t res = {0};
    latency_hist_t hist;
    unsigned char *buf = malloc (S_READ);
    int epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (!buf || epfd < 0 || latency_hist_init (&hist))
        _exit (2);
    for (int i = 0; i < f->count; i++) {
        s_conn_t *c = &f->conns[i];
        c->client = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->client < 0 || connect (c->client, (struct sockaddr *) &addr, sizeof addr)) {
            snprintf (res.failure, sizeof res.failure, "connection %d of %d: %s", i + 1, f->count,
                      strerror (errno));
            break;
        }
        fcntl (c->client, F_SETFL, fcntl (c->client, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) i};
        epoll_ctl (epfd, EPOLL_CTL_ADD, c->client, &ev);
    }
    if (!res.failure[0] && s_full (start, &f->t0, sizeof f->t0, false))
        snprintf (res.failure, sizeof res.failure, "the writer went away before it began");
    uint64_t want = (uint64_t) f->total * (uint64_t) f->count;
    int64_t deadline = f->t0 + (int64_t) ((double) f->total * 1e9 / f->rate) + S_DRAIN_NS;
    struct epoll_event events[S_EVENTS];
    while (!res.failure[0] && res.got < want && s_now () < deadline) {
        int n = epoll_wait (epfd, events, S_EVENTS, 100);
        for (int k = 0; k < n; k++) {
            s_conn_t *c = &f->conns[events[k].data.u32];
            ssize_t r;
            while ((r = recv (c->client, buf, S_READ, 0)) > 0) {
                int64_t now = s_now (); //  after the read: what it returned had arrived
                uint64_t before = c->trades;
                s_take (f, &hist, c, buf, (size_t) r, now);
                res.got += c->trades - before;
                res.bytes += (uint64_t) r;
                res.last_rx = now;
            }
        }
    }
    res.count = hist.count;
    res.negative = hist.negative;
    res.max_us = hist.max_us;
    if (s_full (result, &res, sizeof res, true) ||
        s_full (result, hist.buckets, LATENCY_HIST_BUCKETS * sizeof *hist.buckets, true))
        _exit (2);
    _exit (0);
}

int wsfloor_run (int clients, int rate, double seconds, int bytes_per_trade, int writers, bool json)
{
    s_floor_t *f = calloc (1, sizeof *f);
    latency_hist_t hist;
    if (!f || latency_hist_init (&hist)) {
        fprintf (stderr, "mce-wsbench: out of memory\n");
        return 1;
    }
    f->count = clients;
    f->rate = rate;
    f->bytes = bytes_per_trade;
    f->writers = writers;
    f->total = (long) (rate * seconds);
    f->conns = calloc ((size_t) clients, sizeof *f->conns);
    for (int i = 0; f->conns && i < clients; i++)
        f->conns[i].client = f->conns[i].server = -1;
    int rc = 1, start[2] = {-1, -1}, result[2] = {-1, -1};
    pid_t reader = -1;
    s_result_t res = {0};
    int listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    if (!f->conns || listener < 0 || bind (listener, (struct sockaddr *) &addr, sizeof addr) ||
        listen (listener, 1024) || getsockname (listener, (struct sockaddr *) &addr, &addr_len) ||
        pipe2 (start, O_CLOEXEC) || pipe2 (result, O_CLOEXEC)) {
        snprintf (f->failure, sizeof f->failure, "cannot set up: %s", strerror (errno));
        goto done;
    }
    //  The clients read in a process of their own, as mce-wsbench's do: each process holds one
    //  end of every connection, N descriptors.
    fflush (NULL);
    reader = fork ();
    if (reader < 0) {
        snprintf (f->failure, sizeof f->failure, "fork: %s", strerror (errno));
        goto done;
    }
    if (reader == 0) {
        close (listener);
        close (start[1]);
        close (result[0]);
        s_reader (f, addr, start[0], result[1]);
    }
    close (start[0]);
    close (result[1]);
    start[0] = result[1] = -1;
    int one = 1, sndbuf = S_SNDBUF;
    struct timeval wait = {(time_t) (S_CONNECT_NS / 1000000000LL), 0};
    setsockopt (listener, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    for (int i = 0; i < clients; i++) {
        int fd = accept4 (listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            snprintf (f->failure, sizeof f->failure, "accepting connection %d of %d: %s", i + 1,
                      clients, strerror (errno));
            goto done;
        }
        f->conns[i].server = fd;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    if (!json)
        fprintf (stderr,
                 "mce-wsbench: floor: %d loopback connections, %d writer thread(s), %d trades/s "
                 "for %g s, %d bytes per trade\n",
                 clients, writers, rate, seconds, bytes_per_trade);
    f->t0 = s_now ();
    if (s_full (start[1], &f->t0, sizeof f->t0, true)) {
        snprintf (f->failure, sizeof f->failure, "the reading process went away");
        goto done;
    }
    s_write (f);
    if (f->failure[0])
        goto done;
    if (s_full (result[0], &res, sizeof res, false) ||
        s_full (result[0], hist.buckets, LATENCY_HIST_BUCKETS * sizeof *hist.buckets, false)) {
        snprintf (f->failure, sizeof f->failure, "the reading process gave no figures");
        goto done;
    }
    if (res.failure[0]) {
        snprintf (f->failure, sizeof f->failure, "%s", res.failure);
        goto done;
    }
    hist.count = res.count;
    hist.negative = res.negative;
    hist.max_us = res.max_us;
    uint64_t want = (uint64_t) f->total * (uint64_t) clients;
    double span = (double) (res.last_rx - f->t0) / 1e9;
    double p50 = latency_hist_ms (&hist, 0.50), p99 = latency_hist_ms (&hist, 0.99),
           p999 = latency_hist_ms (&hist, 0.999), max = (double) hist.max_us / 1000.0;
    double round_ms = f->rounds ? (double) f->round_ns / (double) f->rounds / 1e6 : 0;
    double sends_s = span > 0 ? (double) f->sends / span : 0;
    double mbps = span > 0 ? (double) res.bytes / span / 1e6 : 0;
    if (json)
        printf ("{\"floor\":true,\"writers\":%d,\"clients\":%d,\"rate\":%d,\"trades\":%ld,\"bytes_"
                "per_trade\":%d,"
                "\"deliveries\":%llu,\"missing\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"rounds\":%ld,\"round_ms\":%.3f,"
                "\"longest_round_ms\":%.3f,\"sends_per_s\":%.0f,\"mb_per_s\":%.2f,"
                "\"writer_cpu_s\":%.2f,\"seconds\":%.2f}\n",
                writers, clients, rate, f->total, bytes_per_trade, (unsigned long long) res.got,
                (unsigned long long) (want - res.got), p50, p99, p999, max, f->rounds, round_ms,
                (double) f->longest_ns / 1e6, sends_s, mbps, f->cpu_s, span);
    else {
        printf ("%-8s %9s %11s %8s %8s %8s %9s %8s %7s %9s %10s %7s %10s\n", "floor", "trades/s",
                "deliveries", "missing", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "rounds",
                "round ms", "sends/s", "MB/s", "writer CPU");
        printf ("%-8d %9d %11llu %8llu %8.2f %8.2f %9.2f %8.2f %7ld %9.2f %10.0f %7.2f %9.2fs\n",
                clients, rate, (unsigned long long) res.got, (unsigned long long) (want - res.got),
                p50, p99, p999, max, f->rounds, round_ms, sends_s, mbps, f->cpu_s);
        printf ("%d writer thread%s sending every trade since the last round to each of %d "
                "loopback connections, %d bytes per trade: a round (one send to every "
                "connection) takes %.1f ms on average, %.1f ms at most\n",
                writers, writers == 1 ? "" : "s", clients, bytes_per_trade, round_ms,
                (double) f->longest_ns / 1e6);
    }
    if (hist.negative)
        fprintf (stderr, "mce-wsbench: floor: %llu deliveries before their trade's time\n",
                 (unsigned long long) hist.negative);
    rc = res.got == want ? 0 : 1;
    if (rc)
        snprintf (f->failure, sizeof f->failure, "%llu of %llu deliveries arrived",
                  (unsigned long long) res.got, (unsigned long long) want);
done:
    if (f->failure[0])
        fprintf (stderr, "mce-wsbench: floor: %s\n", f->failure);
    for (int i = 0; f->conns && i < clients; i++)
        if (f->conns[i].server >= 0)
            close (f->conns[i].server);
    int fds[] = {listener, start[0], start[1], result[0], result[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close (fds[i]);
    if (reader > 0) {
        if (rc)
            kill (reader, SIGKILL);
        waitpid (reader, NULL, 0);
    }
    latency_hist_free (&hist);
    free (f->conns);
    free (f);
    return rc;
}
