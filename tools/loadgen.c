/*  mce-loadgen — drives orders into the matcher or a gateway and measures how fast they are
    acknowledged: --target matcher (DEALER to its commands port), gateway-native (DEALER to the
    gateway's msgpack port, ZMQ PLAIN with a token per connection), gateway-native-curve (the
    encrypted port: ZMQ CURVE with a key pair per connection, registered by its user) or
    gateway-http (HTTP/1.1
    keep-alive connections, W requests pipelined on each, a token per connection). The users
    of those tokens (load-<n>) are signed up first, as any client does, since a gateway takes
    tokens of registered users only.

    Each connection keeps a window of commands in flight, so the matcher sees batches and its
    group commit has something to amortise. The flow is an energy market's: limit orders
    priced around a clearing level (0.15 per kWh, ± 0.01), buys and sells, a share crossing
    the spread, 1–20 kWh each, and cancels of earlier orders (10 %). Latency is send → ack per
    command, from one monotonic clock read at each; percentiles over every command.

    In a market with escrow (the default) every order must be covered by its user's balance, so
    the load generator first credits each load user a large balance of both assets, with
   deposit_credit commands on the matcher's command port as the settler sends them once a deposit is
   confirmed (a benchmark's shortcut: no tokens move on any chain), under deposit ids taken from the
   wall clock so that each run's are new.
*/
#include "auth.h"
#include "clock.h"
#include "config.h"
#include "curve.h"
#include "decimal.h"
#include "log.h"
#include "proto.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WINDOW_DEFAULT 256
#define S_PASSWORD       "mce-loadgen password" //  of the load-<n> users (nobody signs in)

static uint64_t s_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static int s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

typedef struct {
    zsock_t *sock;
    int in_flight;
    uint64_t rng;
    uint64_t *orders; //  order ids acknowledged on this connection, for cancels
    size_t norders;
} s_conn_t;

static void s_build (s_conn_t *c, uint64_t rid, int user, const char *market, proto_buf_t *buf)
{
    proto_msg_t cmd = {0};
    if (c->norders > 16 && s_rand (&c->rng) % 10 == 0) {
        cmd.kind = PROTO_cancel_order;
        cmd.cancel_order.rid = rid;
        snprintf (cmd.cancel_order.user, sizeof cmd.cancel_order.user, "load-%d", user);
        snprintf (cmd.cancel_order.market, sizeof cmd.cancel_order.market, "%s", market);
        cmd.cancel_order.role = PROTO_ROLE_ADMIN;
        cmd.cancel_order.order_id = c->orders[s_rand (&c->rng) % c->norders];
        cmd.cancel_order.ts = clock_wall_ns ();
    }
    else {
        cmd.kind = PROTO_new_order;
        proto_new_order_t *o = &cmd.new_order;
        o->rid = rid;
        snprintf (o->user, sizeof o->user, "load-%d", user);
        snprintf (o->market, sizeof o->market, "%s", market);
        bool buy = s_rand (&c->rng) & 1;
        o->side = buy ? PROTO_SIDE_BUY : PROTO_SIDE_SELL;
        o->type = PROTO_ORDER_TYPE_LIMIT;
        o->tif = PROTO_TIF_GTC;
        o->qty = (int64_t) (1 + s_rand (&c->rng) % 20) * 1000;
        //  around 0.150: buys mostly below, sells mostly above, about a fifth crossing
        int64_t off = (int64_t) (s_rand (&c->rng) % 100) - 20;
        o->price = buy ? 150000 - off * 100 : 150000 + off * 100;
        o->ts = clock_wall_ns ();
    }
    proto_buf_reset (buf);
    proto_encode (&cmd, buf);
}

#define S_KEY          "gateway"        //  whose key the load uses on the matcher's port (see main)
#define S_FUND_USERS   50               //  the matcher target's users are load-0 ... load-49
#define S_FUND_ENERGY  1000000000000LL  //  Wh credited to each load user: 1 TWh
#define S_FUND_PAYMENT 10000000000000LL //  µ: 10 million currency units

//  Credits every load user (users of them) both assets on the matcher's command port and
//  waits for each answer. 0, or -1 after saying why.
static int s_fund (const curve_t *curve, const char *endpoint, long users)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 10000);
    if (!dealer || curve_client (curve, dealer, "matcher") ||
        zsock_connect (dealer, "%s", endpoint)) {
        fprintf (stderr, "mce-loadgen: funding the load users: cannot connect to %s\n", endpoint);
        zsock_destroy (&dealer);
        return -1;
    }
    uint64_t base = (uint64_t) clock_wall_ns (); //  a new range of deposit ids every run
    proto_buf_t buf;
    proto_buf_init (&buf);
    for (long u = 0; u < users; u++)
        for (int a = 0; a < 2; a++) {
            proto_msg_t cmd = {.kind = PROTO_deposit_credit};
            proto_deposit_credit_t *d = &cmd.deposit_credit;
            d->rid = d->deposit_id = base + 2 * (uint64_t) u + (uint64_t) a;
            snprintf (d->user, sizeof d->user, "load-%ld", u);
            d->asset = a ? PROTO_ASSET_PAYMENT : PROTO_ASSET_ENERGY;
            d->amount = a ? S_FUND_PAYMENT : S_FUND_ENERGY;
            d->ts = clock_wall_ns ();
            proto_buf_reset (&buf);
            if (proto_encode (&cmd, &buf) == 0)
                zmq_send (zsock_resolve (dealer), buf.data, buf.len, 0);
        }
    proto_buf_free (&buf);
    int rc = 0;
    for (long i = 0; i < 2 * users && rc == 0; i++) {
        zframe_t *f = zframe_recv (dealer);
        proto_msg_t reply;
        if (!f || proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0) ||
            reply.kind != PROTO_ack) {
            fprintf (stderr, "mce-loadgen: funding the load users: the matcher at %s %s\n",
                     endpoint, f ? "refused a credit" : "did not answer");
            rc = -1;
        }
        zframe_destroy (&f);
    }
    zsock_destroy (&dealer);
    return rc;
}

typedef struct {
    uint64_t acked, rejected, errors;
    int64_t *latency; //  one per answered command, ns
    double seconds;
} s_result_t;

//  --------------------------------------------------------------------------------------
//  ZeroMQ targets: the matcher's commands port, or the gateway's native ports

//  How each connection signs in: with the gateway's process key (the matcher), a token
//  (PLAIN), or a key pair its user registered (CURVE), trusting server_key.
typedef struct {
    const curve_t *curve;
    char **tokens;
    zcert_t **certs;
    const char *server_key;
} s_auth_t;

//  One answer (data, size) on connection c: counted, its latency taken.
static void s_answer (s_conn_t *c, const uint8_t *data, size_t size, int64_t *sent_at, long orders,
                      s_result_t *res, int64_t now)
{
    proto_msg_t reply;
    if (proto_decode (data, size, &reply, NULL, 0)) {
        res->errors++;
        return;
    }
    uint64_t rid = reply.kind == PROTO_ack ? reply.ack.rid : reply.reject.rid;
    if (rid == 0 || rid > (uint64_t) orders || !sent_at[rid]) {
        res->errors++;
        return;
    }
    res->latency[res->acked] = now - sent_at[rid];
    sent_at[rid] = 0;
    //  a refusal is an answer too (a cancel of an order that traded meanwhile)
    res->acked++;
    if (reply.kind == PROTO_ack && reply.ack.remaining > 0)
        c->orders[c->norders++] = reply.ack.order_id;
    else if (reply.kind == PROTO_reject)
        res->rejected++;
    c->in_flight--;
}

//  batch: commands go to the matcher as a gateway sends them, a batch frame of up to
//  PROTO_BATCH_MAX at a time (proto.h); the native port takes one command per frame.
static int s_run_zmq (const s_auth_t *auth, const char *endpoint, const char *market, long orders,
                      long connections, long window, bool batch, s_result_t *res)
{
    s_conn_t *conns = calloc ((size_t) connections, sizeof *conns);
    int64_t *sent_at = calloc ((size_t) orders + 1, sizeof *sent_at);
    for (long c = 0; c < connections; c++) {
        conns[c].sock = zsock_new (ZMQ_DEALER);
        zsock_set_linger (conns[c].sock, 0);
        zsock_set_sndhwm (conns[c].sock, 0);
        zsock_set_rcvhwm (conns[c].sock, 0);
        if (auth->certs) {
            zcert_apply (auth->certs[c], conns[c].sock);
            zsock_set_curve_serverkey (conns[c].sock, auth->server_key);
        }
        else if (auth->tokens) {
            zsock_set_plain_username (conns[c].sock, "jwt");
            zsock_set_plain_password (conns[c].sock, auth->tokens[c]);
        }
        else
            curve_client (auth->curve, conns[c].sock, "matcher");
        zsock_connect (conns[c].sock, "%s", endpoint);
        conns[c].rng = 0x9E3779B97F4A7C15ull * (uint64_t) (c + 1);
        conns[c].orders = calloc ((size_t) orders + 1, sizeof (uint64_t));
    }
    zmq_pollitem_t *items = calloc ((size_t) connections, sizeof *items);
    for (long c = 0; c < connections; c++)
        items[c] = (zmq_pollitem_t){zsock_resolve (conns[c].sock), 0, ZMQ_POLLIN, 0};
    proto_buf_t buf, frame;
    proto_buf_init (&buf);
    proto_buf_init (&frame);
    uint64_t next_rid = 1;
    int64_t t0 = clock_mono_ns (), last_progress = t0;
    while ((long) (res->acked + res->errors) < orders) {
        for (long c = 0; c < connections; c++) {
            int framed = 0;
            while (conns[c].in_flight < window && (long) next_rid <= orders) {
                s_build (&conns[c], next_rid, (int) ((next_rid * 7 + (uint64_t) c) % 50), market,
                         &buf);
                sent_at[next_rid] = clock_mono_ns ();
                if (!batch)
                    zmq_send (items[c].socket, buf.data, buf.len, 0);
                else {
                    if (framed == 0) {
                        proto_buf_reset (&frame);
                        proto_batch_start (&frame);
                    }
                    proto_batch_add (&frame, buf.data, buf.len);
                    if (++framed == PROTO_BATCH_MAX) {
                        zmq_send (items[c].socket, frame.data, frame.len, 0);
                        framed = 0;
                    }
                }
                next_rid++;
                conns[c].in_flight++;
            }
            if (framed)
                zmq_send (items[c].socket, frame.data, frame.len, 0);
        }
        if (zmq_poll (items, (int) connections, 1000) <= 0) {
            if (clock_mono_ns () - last_progress > 10 * MCE_NS_PER_SEC) {
                fprintf (stderr, "mce-loadgen: no answer for 10 s from %s (%llu of %ld acked)\n",
                         endpoint, (unsigned long long) res->acked, orders);
                res->errors += (uint64_t) (orders - (long) (res->acked + res->errors));
                break;
            }
            continue;
        }
        last_progress = clock_mono_ns ();
        for (long c = 0; c < connections; c++) {
            if (!(items[c].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t answer;
            zmq_msg_init (&answer);
            while (zmq_msg_recv (&answer, items[c].socket, ZMQ_DONTWAIT) >= 0) {
                int64_t now = clock_mono_ns ();
                const uint8_t *data = zmq_msg_data (&answer), *one;
                size_t size = zmq_msg_size (&answer), offset = 0, count = 0, len;
                if (!proto_batch_is (data, size))
                    s_answer (&conns[c], data, size, sent_at, orders, res, now);
                else {
                    int more;
                    while ((more = proto_batch_next (data, size, &offset, &count, &one, &len)) == 1)
                        s_answer (&conns[c], one, len, sent_at, orders, res, now);
                    res->errors += more < 0;
                }
            }
            zmq_msg_close (&answer);
        }
    }
    res->seconds = (double) (clock_mono_ns () - t0) / 1e9;
    proto_buf_free (&buf);
    proto_buf_free (&frame);
    for (long c = 0; c < connections; c++) {
        zsock_destroy (&conns[c].sock);
        free (conns[c].orders);
    }
    free (conns);
    free (items);
    free (sent_at);
    return 0;
}

//  --------------------------------------------------------------------------------------
//  HTTP target: plain HTTP/1.1 over keep-alive connections, requests pipelined; written here
//  rather than with libcurl so that the client costs less than the server it measures

typedef struct {
    int fd;
    char out[1 << 16];
    size_t out_len, out_sent;
    char in[1 << 16];
    size_t in_len;
    int64_t *sent; //  send times of the requests in flight, oldest first (a ring)
    size_t head, count, cap;
    s_conn_t gen;
    char auth[1200];
    bool want_out; //  registered for EPOLLOUT
} s_http_t;

static int s_connect (const char *address, int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    inet_pton (AF_INET, address, &sa.sin_addr);
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect (fd, (struct sockaddr *) &sa, sizeof sa)) {
        close (fd);
        return -1;
    }
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

//  Waits (up to 30 s) until the gateway's /api/health says its matcher is up: its bus
//  subscription is live, so the run measures a running system, not the start-up race of a
//  fresh gateway (whose first events would be fetched by replay while the writes wait). 0,
//  or -1 with the reason on stderr.
//  One HTTP exchange on a connection of its own (Connection: close): method path with body
//  (JSON, may be NULL) and token (may be NULL). Returns the status (0: no answer) and the
//  answer's body in out (NUL-terminated, cut at size).
static int s_exchange (const char *address, int port, const char *method, const char *path,
                       const char *token, const char *body, char *out, size_t size)
{
    out[0] = '\0';
    int fd = s_connect (address, port);
    if (fd < 0)
        return 0;
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = 30}; //  a sign-up hashes a password on the gateway
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[AUTH_JWT_MAX + 2048];
    int n = snprintf (req, sizeof req,
                      "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n%s%s%s\r\n%s",
                      method, path, address, port, body ? strlen (body) : 0,
                      token ? "Authorization: Bearer " : "", token ? token : "",
                      token ? "\r\n" : "", body ? body : "");
    char buf[16384];
    size_t len = 0;
    ssize_t got = n > 0 && (size_t) n < sizeof req ? send (fd, req, (size_t) n, 0) : -1;
    while (got > 0 && len < sizeof buf - 1 &&
           (got = recv (fd, buf + len, sizeof buf - 1 - len, 0)) > 0)
        len += (size_t) got;
    buf[len] = '\0';
    close (fd);
    int status = 0;
    if (sscanf (buf, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    const char *start = strstr (buf, "\r\n\r\n");
    snprintf (out, size, "%s", start ? start + 4 : "");
    return status;
}

//  For --target gateway-native-curve: a key pair per connection, its public half registered
//  as an API key of the connection's user (ids[c], deleted again by s_curve_forget), and the
//  gateway's server key. 0, or -1 with the reason on stderr.
static int s_curve_keys (const mce_config_t *cfg, char **tokens, long connections, zcert_t **certs,
                         long long *ids, char *server_key, size_t size)
{
    const char *address = cfg->gateway.http_address;
    int port = (int) cfg->gateway.http_port;
    char answer[4096], body[128];
    int status = s_exchange (address, port, "GET", "/api/auth/native-key", NULL, NULL, answer,
                             sizeof answer);
    json_t *j = status == 200 ? json_loads (answer, 0, NULL) : NULL;
    snprintf (server_key, size, "%s",
              j ? json_string_value (json_object_get (j, "server_key")) : "");
    json_decref (j);
    if (!server_key[0]) {
        fprintf (stderr, "mce-loadgen: the gateway has no CURVE order port: %d %s\n", status,
                 answer);
        return -1;
    }
    for (long c = 0; c < connections; c++) {
        certs[c] = zcert_new ();
        snprintf (body, sizeof body, "{\"curve_public_key\":\"%s\",\"label\":\"mce-loadgen\"}",
                  zcert_public_txt (certs[c]));
        status = s_exchange (address, port, "POST", "/api/auth/api-keys", tokens[c], body, answer,
                             sizeof answer);
        j = status == 201 ? json_loads (answer, 0, NULL) : NULL;
        ids[c] = j ? (long long) json_integer_value (json_object_get (j, "id")) : 0;
        json_decref (j);
        if (!ids[c]) {
            fprintf (stderr, "mce-loadgen: cannot register a CURVE key: %d %s\n", status, answer);
            return -1;
        }
    }
    return 0;
}

//  Deletes the keys s_curve_keys registered (each user may hold only so many).
static void s_curve_forget (const mce_config_t *cfg, char **tokens, long connections,
                            zcert_t **certs, const long long *ids)
{
    for (long c = 0; c < connections; c++) {
        char path[64], answer[1024];
        snprintf (path, sizeof path, "/api/auth/api-keys/%lld", ids[c]);
        if (ids[c])
            s_exchange (cfg->gateway.http_address, (int) cfg->gateway.http_port, "DELETE", path,
                        tokens[c], NULL, answer, sizeof answer);
        zcert_destroy (&certs[c]);
    }
}

static int s_wait_gateway (const char *address, int port)
{
    int64_t deadline = clock_mono_ns () + 30 * MCE_NS_PER_SEC;
    while (clock_mono_ns () < deadline) {
        char buf[4096];
        if (s_exchange (address, port, "GET", "/api/health", NULL, NULL, buf, sizeof buf) == 200 &&
            strstr (buf, "\"matcher\":{\"up\":true"))
            return 0;
        struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
        nanosleep (&ts, NULL); //  polling a server that is starting, not synchronising a test
    }
    fprintf (stderr,
             "mce-loadgen: the gateway at %s:%d did not report its matcher up within "
             "30 s (GET /api/health)\n",
             address, port);
    return -1;
}

//  Makes sure user exists, as the gateway requires of a token's user: signs it up the way a
//  client does, with a fresh wallet of its own (a challenge, its signature, the registration),
//  unless it is registered already (from an earlier run). 0, or -1 with the reason on stderr.
static int s_sign_up (const char *address, int port, const char *user)
{
    uint8_t seed[AUTH_SEED_BYTES];
    char wallet[AUTH_WALLET_MAX], signature[AUTH_SIGNATURE_TEXT_MAX], body[1024], answer[4096];
    auth_random (seed, sizeof seed);
    auth_wallet_of_seed (seed, wallet, sizeof wallet);
    snprintf (body, sizeof body, "{\"wallet\":\"%s\",\"username\":\"%s\"}", wallet, user);
    int status = s_exchange (address, port, "POST", "/api/auth/challenge", NULL, body, answer,
                             sizeof answer);
    json_t *challenge = status == 200 ? json_loads (answer, 0, NULL) : NULL;
    const char *message = json_string_value (json_object_get (challenge, "message"));
    if (message) {
        auth_wallet_sign (seed, message, strlen (message), signature, sizeof signature);
        snprintf (body, sizeof body,
                  "{\"username\":\"%s\",\"password\":\"%s\",\"wallet\":\"%s\","
                  "\"signature\":\"%s\"}",
                  user, S_PASSWORD, wallet, signature);
        status = s_exchange (address, port, "POST", "/api/auth/register", NULL, body, answer,
                             sizeof answer);
    }
    json_decref (challenge);
    auth_wipe (seed, sizeof seed);
    if (status == 201 || (status == 409 && strstr (answer, "\"username_taken\"")))
        return 0;
    fprintf (stderr, "mce-loadgen: cannot sign up %s: %d %s\n", user, status, answer);
    return -1;
}

//  Waits until the gateway takes token (its user known there: a gateway that did not see the
//  user register looks it up once, a bounded number a second), so the run measures orders,
//  not first lookups. 0, or -1 with the reason on stderr.
static int s_warm_up (const char *address, int port, const char *token)
{
    int64_t deadline = clock_mono_ns () + 60 * MCE_NS_PER_SEC;
    char answer[4096];
    int status = 0;
    while (clock_mono_ns () < deadline) {
        status = s_exchange (address, port, "GET", "/api/trading/orders?limit=1", token, NULL,
                             answer, sizeof answer);
        if (status == 200)
            return 0;
        if (status != 429 && status != 503)
            break;
        struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
        nanosleep (&ts, NULL); //  the gateway said to come back
    }
    fprintf (stderr, "mce-loadgen: the gateway does not take a load user's token: %d %s\n", status,
             answer);
    return -1;
}

//  Appends the next request of this connection's flow to its output.
static void s_http_request (s_http_t *h, const char *market, bool depth)
{
    char body[256], line[4096];
    int n;
    if (depth)
        n = snprintf (line, sizeof line,
                      "GET /api/market/depth?market=%s&levels=20 HTTP/1.1\r\nHost: x\r\n\r\n",
                      market);
    else if (h->gen.norders > 16 && s_rand (&h->gen.rng) % 10 == 0) {
        uint64_t id = h->gen.orders[s_rand (&h->gen.rng) % h->gen.norders];
        n = snprintf (line, sizeof line,
                      "DELETE /api/trading/orders/%llu HTTP/1.1\r\nHost: x\r\n%s\r\n",
                      (unsigned long long) id, h->auth);
    }
    else {
        bool buy = s_rand (&h->gen.rng) & 1;
        int64_t qty = (int64_t) (1 + s_rand (&h->gen.rng) % 20) * 1000;
        int64_t off = (int64_t) (s_rand (&h->gen.rng) % 100) - 20;
        int64_t price = buy ? 150000 - off * 100 : 150000 + off * 100;
        char q[DECIMAL_FORMAT_MAX], p[DECIMAL_FORMAT_MAX];
        decimal_format (qty, DECIMAL_KWH_SCALE, q, sizeof q);
        decimal_format (price, DECIMAL_PRICE_SCALE, p, sizeof p);
        int blen = snprintf (body, sizeof body,
                             "{\"market\":\"%s\",\"side\":\"%s\",\"energy_amount\":\"%s\","
                             "\"price\":\"%s\"}",
                             market, buy ? "Buy" : "Sell", q, p);
        n = snprintf (line, sizeof line,
                      "POST /api/trading/orders HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
                      "application/json\r\nContent-Length: %d\r\n\r\n%s",
                      h->auth, blen, body);
    }
    if (h->out_len + (size_t) n <= sizeof h->out) {
        memcpy (h->out + h->out_len, line, (size_t) n);
        h->out_len += (size_t) n;
    }
    h->sent[(h->head + h->count++) % h->cap] = clock_mono_ns ();
}

//  Takes every whole response out of h->in. Returns how many, -1 on a broken stream.
static int s_http_responses (s_http_t *h, s_result_t *res)
{
    int done = 0;
    while (true) {
        char *end = memmem (h->in, h->in_len, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head = (size_t) (end - h->in) + 4;
        int status = 0;
        if (sscanf (h->in, "HTTP/1.1 %d", &status) != 1)
            return -1;
        char *cl = memmem (h->in, head, "Content-Length: ", 16);
        size_t body = cl ? (size_t) strtoul (cl + 16, NULL, 10) : 0;
        if (h->in_len < head + body)
            break;
        if (!h->count)
            return -1;
        int64_t sent = h->sent[h->head];
        h->head = (h->head + 1) % h->cap;
        h->count--;
        if (status >= 200 && status < 300) {
            char *id = memmem (h->in + head, body, "\"order_id\":\"", 12);
            char *left = memmem (h->in + head, body, "\"remaining_amount\":\"0\"", 22);
            if (id && !left && h->gen.norders < 1000000)
                h->gen.orders[h->gen.norders++] = strtoull (id + 12, NULL, 10);
        }
        if (status >= 200 && status < 500 && status != 429) {
            res->latency[res->acked++] = clock_mono_ns () - sent;
            if (status >= 400)
                res->rejected++;
        }
        else
            res->errors++;
        memmove (h->in, h->in + head + body, h->in_len - head - body);
        h->in_len -= head + body;
        done++;
    }
    return done;
}

//  Tops the connection's window up with new requests and sends what is waiting; asks epoll
//  for writability only while a send could not finish.
static void s_http_fill (s_http_t *h, int ep, long c, const char *market, bool depth, long window,
                         long orders, long *issued)
{
    while ((long) h->count < window && *issued < orders) {
        s_http_request (h, market, depth);
        (*issued)++;
    }
    if (h->out_sent < h->out_len) {
        ssize_t n = send (h->fd, h->out + h->out_sent, h->out_len - h->out_sent, MSG_NOSIGNAL);
        if (n > 0 && (h->out_sent += (size_t) n) == h->out_len)
            h->out_sent = h->out_len = 0;
    }
    bool want_out = h->out_sent < h->out_len;
    if (want_out != h->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
                                 .data.u64 = (uint64_t) c};
        epoll_ctl (ep, EPOLL_CTL_MOD, h->fd, &ev);
        h->want_out = want_out;
    }
}

static int s_run_http (const mce_config_t *cfg, char **tokens, const char *market, bool depth,
                       long orders, long connections, long window, s_result_t *res)
{
    s_http_t *conns = calloc ((size_t) connections, sizeof *conns);
    for (long c = 0; c < connections; c++) {
        s_http_t *h = &conns[c];
        h->fd = s_connect (cfg->gateway.http_address, (int) cfg->gateway.http_port);
        if (h->fd < 0) {
            fprintf (stderr, "mce-loadgen: cannot connect to http://%s:%lld: %s\n",
                     cfg->gateway.http_address, (long long) cfg->gateway.http_port,
                     strerror (errno));
            return -1;
        }
        h->cap = (size_t) window;
        h->sent = calloc (h->cap, sizeof *h->sent);
        h->gen.rng = 0x9E3779B97F4A7C15ull * (uint64_t) (c + 1);
        h->gen.orders = calloc (1000000, sizeof (uint64_t));
        snprintf (h->auth, sizeof h->auth, "Authorization: Bearer %s\r\n", tokens[c]);
    }
    //  epoll, and requests sent as soon as they are made: the client must cost far less than
    //  the server it measures (a poll over every connection per turn did not)
    int ep = epoll_create1 (0);
    for (long c = 0; c < connections; c++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t) c};
        epoll_ctl (ep, EPOLL_CTL_ADD, conns[c].fd, &ev);
    }
    long issued = 0;
    int64_t t0 = clock_mono_ns (), last_progress = t0;
    for (long c = 0; c < connections; c++)
        s_http_fill (&conns[c], ep, c, market, depth, window, orders, &issued);
    struct epoll_event events[256];
    while ((long) (res->acked + res->errors) < orders) {
        int n = epoll_wait (ep, events, 256, 1000);
        if (n <= 0) {
            if (clock_mono_ns () - last_progress > 10 * MCE_NS_PER_SEC) {
                fprintf (stderr, "mce-loadgen: no answer for 10 s (%llu of %ld answered)\n",
                         (unsigned long long) res->acked, orders);
                res->errors += (uint64_t) (orders - (long) (res->acked + res->errors));
                break;
            }
            continue;
        }
        last_progress = clock_mono_ns ();
        for (int e = 0; e < n; e++) {
            long c = (long) events[e].data.u64;
            s_http_t *h = &conns[c];
            if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t got = recv (h->fd, h->in + h->in_len, sizeof h->in - h->in_len, 0);
                if (got <= 0 && errno != EAGAIN) {
                    fprintf (stderr, "mce-loadgen: connection %ld closed by the gateway\n", c);
                    res->errors += h->count;
                    return -1;
                }
                if (got > 0) {
                    h->in_len += (size_t) got;
                    if (s_http_responses (h, res) < 0) {
                        fprintf (stderr, "mce-loadgen: a response did not parse\n");
                        return -1;
                    }
                }
            }
            s_http_fill (h, ep, c, market, depth, window, orders, &issued);
        }
    }
    close (ep);
    res->seconds = (double) (clock_mono_ns () - t0) / 1e9;
    for (long c = 0; c < connections; c++) {
        close (conns[c].fd);
        free (conns[c].sent);
        free (conns[c].gen.orders);
    }
    free (conns);
    return 0;
}

int main (int argc, char **argv)
{
    static const struct option options[] = {
        {"target", required_argument, NULL, 't'},
        {"orders", required_argument, NULL, 'n'},
        {"connections", required_argument, NULL, 'C'},
        {"window", required_argument, NULL, 'w'},
        {"config", required_argument, NULL, 'c'},
        {"market", required_argument, NULL, 'm'},
        {"flow", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"fund", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *target = "matcher", *config_path = NULL, *market = "campus-1", *flow = "orders";
    long orders = 100000, connections = 4, window = S_WINDOW_DEFAULT;
    bool json = false, fund = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
            case 't':
                target = optarg;
                break;
            case 'n':
                orders = atol (optarg);
                break;
            case 'C':
                connections = atol (optarg);
                break;
            case 'w':
                window = atol (optarg);
                break;
            case 'c':
                config_path = optarg;
                break;
            case 'm':
                market = optarg;
                break;
            case 'f':
                flow = optarg;
                break;
            case 'j':
                json = true;
                break;
            case 'F':
                fund = true;
                break;
            case 'h':
                printf ("Usage: mce-loadgen --target "
                        "matcher|gateway-native|gateway-native-curve|gateway-http\n"
                        "                   [--orders N] [--connections C] [--window W]\n"
                        "                   [--flow orders|depth] [-c FILE] [--market ID] "
                        "[--fund] [--json]\n\n"
                        "Sends N commands (orders around 0.15/kWh, a share crossing, 10 %% "
                        "cancels)\nover C connections with W in flight each (default 100000, 4, "
                        "256), to the\nendpoints of the config (default: built-in), and prints "
                        "acknowledged/s and\nlatency percentiles; --json adds one JSON object on "
                        "the last line.\n\n"
                        "gateway-native-curve registers a CURVE key pair per connection as its "
                        "user's API key\n(deleted after the run) and uses the encrypted "
                        "port (gateway.native_curve).\n"
                        "The gateway targets sign a token per connection (user load-<n>) with "
                        "the config's\ngateway.jwt_secret, which must be the gateway's, and "
                        "sign those users up first\n(each with a wallet of its own; once: a "
                        "later run finds them); run the gateway\nwith a rate limit above the "
                        "load (MCE_GATEWAY_RATE_PER_S). "
                        "--flow depth (gateway-http)\nreads GET /api/market/depth instead of "
                        "placing orders. When the market has escrow (the default), every load\n"
                        "user is first credited a large balance on the matcher's command port\n"
                        "(matcher.commands), since an order must be covered; --fund does so\n"
                        "whatever the market's setting.\n");
                return 0;
            default:
                fprintf (stderr, "mce-loadgen: try --help\n");
                return 2;
        }
    }
    if (orders < 1 || connections < 1 || connections > 1000 || window < 1 || window > 100000) {
        fprintf (stderr, "mce-loadgen: --orders >= 1, --connections 1..1000, --window 1..100000\n");
        return 2;
    }
    bool http = strcmp (target, "gateway-http") == 0;
    bool native_curve = strcmp (target, "gateway-native-curve") == 0;
    bool native = strcmp (target, "gateway-native") == 0 || native_curve;
    if (!http && !native && strcmp (target, "matcher") != 0) {
        fprintf (stderr, "mce-loadgen: --target is matcher, gateway-native, "
                         "gateway-native-curve or gateway-http\n");
        return 2;
    }
    bool depth = strcmp (flow, "depth") == 0;
    if (!depth && strcmp (flow, "orders") != 0) {
        fprintf (stderr, "mce-loadgen: --flow is orders or depth\n");
        return 2;
    }
    if (depth && !http) {
        fprintf (stderr, "mce-loadgen: --flow depth reads market data: --target gateway-http\n");
        return 2;
    }
    log_init ("mce-loadgen");
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    if (config_load (&cfg, config_path, err, sizeof err)) {
        fprintf (stderr, "mce-loadgen: configuration error: %s\n", err);
        return 2;
    }
    //  A token per connection, user load-<c>, signed with the gateway's key.
    char **tokens = NULL;
    if (http || native) {
        size_t key_len = strlen (cfg.gateway.jwt_secret);
        if (key_len < AUTH_JWT_SECRET_MIN || auth_init ()) {
            fprintf (stderr,
                     "mce-loadgen: the gateway targets sign their tokens with "
                     "gateway.jwt_secret: set it (%d bytes or more) in the config or "
                     "MCE_GATEWAY_JWT_SECRET, the same as the gateway's\n",
                     AUTH_JWT_SECRET_MIN);
            return 2;
        }
        tokens = calloc ((size_t) connections, sizeof *tokens);
        int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
        for (long c = 0; c < connections; c++) {
            auth_claims_t claims = {.role = PROTO_ROLE_USER, .iat = now, .exp = now + 86400};
            snprintf (claims.sub, sizeof claims.sub, "load-%ld", c);
            tokens[c] = malloc (AUTH_JWT_MAX);
            if (auth_jwt_mint ((const uint8_t *) cfg.gateway.jwt_secret, key_len, &claims,
                               tokens[c], AUTH_JWT_MAX))
                return 2;
        }
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    if ((http || native) && s_wait_gateway (cfg.gateway.http_address, (int) cfg.gateway.http_port))
        return 1;
    //  The gateway refuses tokens of users who never registered: the load users sign up
    //  (once: a later run finds them), and each token is taken before the clock starts.
    for (long c = 0; tokens && c < connections; c++) {
        char user[32];
        snprintf (user, sizeof user, "load-%ld", c);
        if (s_sign_up (cfg.gateway.http_address, (int) cfg.gateway.http_port, user) ||
            s_warm_up (cfg.gateway.http_address, (int) cfg.gateway.http_port, tokens[c]))
            return 1;
    }
    const config_market_t *m = config_market (&cfg, market);
    if (!m) {
        fprintf (stderr, "mce-loadgen: the configuration has no market '%s'\n", market);
        return 2;
    }
    fund = fund || (m->escrow && !depth);
    //  Commands on the matcher's port come from gateways: the load stands in for one, with the
    //  gateway's key.
    curve_t *curve = fund || (!http && !native) ? curve_new (&cfg, S_KEY, false) : NULL;
    if ((fund || (!http && !native)) && !curve)
        return 1;
    if (fund && s_fund (curve, cfg.matcher.commands,
                        connections > S_FUND_USERS ? connections : S_FUND_USERS)) {
        curve_destroy (&curve);
        return 1;
    }
    s_auth_t auth = {.curve = curve, .tokens = tokens};
    char server_key[64] = "";
    long long *ids = native_curve ? calloc ((size_t) connections, sizeof *ids) : NULL;
    zcert_t **certs = native_curve ? calloc ((size_t) connections, sizeof *certs) : NULL;
    if (native_curve &&
        s_curve_keys (&cfg, tokens, connections, certs, ids, server_key, sizeof server_key)) {
        s_curve_forget (&cfg, tokens, connections, certs, ids);
        curve_destroy (&curve);
        return 1;
    }
    auth.certs = certs;
    auth.server_key = server_key;
    s_result_t res = {.latency = calloc ((size_t) orders + 1, sizeof (int64_t))};
    int rc = http ? s_run_http (&cfg, tokens, market, depth, orders, connections, window, &res)
                  : s_run_zmq (&auth,
                               native_curve ? cfg.gateway.native_curve
                               : native     ? cfg.gateway.native
                                            : cfg.matcher.commands,
                               market, orders, connections, window, !native, &res);
    if (native_curve)
        s_curve_forget (&cfg, tokens, connections, certs, ids);
    free (certs);
    free (ids);
    curve_destroy (&curve);
    size_t n = (size_t) res.acked;
    qsort (res.latency, n, sizeof *res.latency, s_cmp_i64);
    double p50 = n ? res.latency[n / 2] / 1e3 : 0,
           p99 = n ? res.latency[(size_t) (n * 0.99)] / 1e3 : 0;
    double p999 = n ? res.latency[(size_t) (n * 0.999)] / 1e3 : 0;
    double rate = res.seconds > 0 ? (double) res.acked / res.seconds : 0;
    printf ("%-14s %6s %8s %6s %12s %10s %10s %10s %8s\n", "target", "flow", "orders", "conns",
            "acked/s", "p50 us", "p99 us", "p99.9 us", "errors");
    printf ("%-14s %6s %8ld %6ld %12.0f %10.1f %10.1f %10.1f %8llu\n", target, flow, orders,
            connections, rate, p50, p99, p999, (unsigned long long) res.errors);
    if (json)
        printf ("{\"target\":\"%s\",\"flow\":\"%s\",\"orders\":%ld,\"connections\":%ld,"
                "\"window\":%ld,\"acked_per_sec\":%.0f,\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f,"
                "\"ack_p999_us\":%.1f,\"rejected\":%llu,\"errors\":%llu}\n",
                target, flow, orders, connections, window, rate, p50, p99, p999,
                (unsigned long long) res.rejected, (unsigned long long) res.errors);
    for (long c = 0; tokens && c < connections; c++)
        free (tokens[c]);
    free (tokens);
    free (res.latency);
    return rc || res.errors ? 1 : 0;
}
