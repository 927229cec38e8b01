/*  mce-loadgen — drives orders into the matcher (or, later, a gateway) and measures how fast
    they are acknowledged.

    Each connection keeps a window of commands in flight, so the matcher sees batches and its
    group commit has something to amortise. The flow is an energy market's: limit orders
    priced around a clearing level (0.15 per kWh, ± 0.01), buys and sells, a share crossing
    the spread, 1–20 kWh each, and cancels of earlier orders (10 %). Latency is send → ack per
    command, from one monotonic clock read at each; percentiles over every command.
*/
#include "clock.h"
#include "config.h"
#include "log.h"
#include "proto.h"

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WINDOW_DEFAULT 256

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

int main (int argc, char **argv)
{
    static const struct option options[] = {
        {"target", required_argument, NULL, 't'},
        {"orders", required_argument, NULL, 'n'},
        {"connections", required_argument, NULL, 'C'},
        {"window", required_argument, NULL, 'w'},
        {"config", required_argument, NULL, 'c'},
        {"market", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *target = "matcher", *config_path = NULL, *market = "campus-1";
    long orders = 100000, connections = 4, window = S_WINDOW_DEFAULT;
    bool json = false;
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
            case 'j':
                json = true;
                break;
            case 'h':
                printf ("Usage: mce-loadgen --target matcher|gateway-native|gateway-http\n"
                        "                   [--orders N] [--connections C] [--window W]\n"
                        "                   [-c FILE] [--market ID] [--json]\n\n"
                        "Sends N commands (orders around 0.15/kWh, a share crossing, 10 %% "
                        "cancels)\nover C connections with W in flight each (default 100000, 4, "
                        "256), to the\nendpoints of the config (default: built-in), and prints "
                        "acknowledged/s and\nack latency percentiles; --json adds one JSON "
                        "object on the last line.\n");
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
    if (strcmp (target, "matcher") != 0) {
        fprintf (stderr,
                 "mce-loadgen: --target %s needs the gateway's native port and authentication, "
                 "which come with the gateway issue; only --target matcher works today\n",
                 target);
        return 2;
    }
    log_init ("mce-loadgen");
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    if (config_load (&cfg, config_path, err, sizeof err)) {
        fprintf (stderr, "mce-loadgen: configuration error: %s\n", err);
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    s_conn_t *conns = calloc ((size_t) connections, sizeof *conns);
    int64_t *sent_at = calloc ((size_t) orders + 1, sizeof *sent_at);
    int64_t *latency = calloc ((size_t) orders + 1, sizeof *latency);
    for (long c = 0; c < connections; c++) {
        conns[c].sock = zsock_new (ZMQ_DEALER);
        zsock_set_linger (conns[c].sock, 0);
        zsock_set_sndhwm (conns[c].sock, 0);
        zsock_set_rcvhwm (conns[c].sock, 0);
        zsock_connect (conns[c].sock, "%s", cfg.matcher.commands);
        conns[c].rng = 0x9E3779B97F4A7C15ull * (uint64_t) (c + 1);
        conns[c].orders = calloc ((size_t) orders + 1, sizeof (uint64_t));
    }
    zmq_pollitem_t *items = calloc ((size_t) connections, sizeof *items);
    for (long c = 0; c < connections; c++)
        items[c] = (zmq_pollitem_t){zsock_resolve (conns[c].sock), 0, ZMQ_POLLIN, 0};
    proto_buf_t buf;
    proto_buf_init (&buf);
    uint64_t next_rid = 1, acked = 0, errors = 0, rejected = 0;
    int64_t t0 = clock_mono_ns (), last_progress = t0;
    while ((long) acked + (long) errors < orders) {
        for (long c = 0; c < connections; c++)
            while (conns[c].in_flight < window && (long) next_rid <= orders) {
                s_build (&conns[c], next_rid, (int) ((next_rid * 7 + (uint64_t) c) % 50), market,
                         &buf);
                sent_at[next_rid] = clock_mono_ns ();
                zmq_send (items[c].socket, buf.data, buf.len, 0);
                next_rid++;
                conns[c].in_flight++;
            }
        if (zmq_poll (items, (int) connections, 1000) <= 0) {
            if (clock_mono_ns () - last_progress > 10 * MCE_NS_PER_SEC) {
                fprintf (stderr, "mce-loadgen: no answer for 10 s from %s (%llu of %ld acked)\n",
                         cfg.matcher.commands, (unsigned long long) acked, orders);
                errors += (uint64_t) (orders - (long) acked - (long) errors);
                break;
            }
            continue;
        }
        last_progress = clock_mono_ns ();
        for (long c = 0; c < connections; c++) {
            if (!(items[c].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            while (zmq_msg_recv (&frame, items[c].socket, ZMQ_DONTWAIT) >= 0) {
                int64_t now = clock_mono_ns ();
                proto_msg_t reply;
                if (proto_decode (zmq_msg_data (&frame), zmq_msg_size (&frame), &reply, NULL, 0)) {
                    errors++;
                    continue;
                }
                uint64_t rid = reply.kind == PROTO_ack ? reply.ack.rid : reply.reject.rid;
                if (rid == 0 || rid > (uint64_t) orders || !sent_at[rid]) {
                    errors++;
                    continue;
                }
                latency[acked + errors] = now - sent_at[rid];
                sent_at[rid] = 0;
                if (reply.kind == PROTO_ack) {
                    acked++;
                    if (reply.ack.remaining > 0)
                        conns[c].orders[conns[c].norders++] = reply.ack.order_id;
                }
                else {
                    //  a refusal is an answer too (a cancel of an order that traded meanwhile)
                    acked++;
                    rejected++;
                }
                conns[c].in_flight--;
            }
            zmq_msg_close (&frame);
        }
    }
    double secs = (double) (clock_mono_ns () - t0) / 1e9;
    size_t n = (size_t) (acked);
    qsort (latency, n, sizeof *latency, s_cmp_i64);
    double p50 = n ? latency[n / 2] / 1e3 : 0, p99 = n ? latency[(size_t) (n * 0.99)] / 1e3 : 0;
    double p999 = n ? latency[(size_t) (n * 0.999)] / 1e3 : 0;
    printf ("%-10s %8s %6s %12s %10s %10s %10s %8s\n", "target", "orders", "conns", "acked/s",
            "p50 us", "p99 us", "p99.9 us", "errors");
    printf ("%-10s %8ld %6ld %12.0f %10.1f %10.1f %10.1f %8llu\n", target, orders, connections,
            (double) acked / secs, p50, p99, p999, (unsigned long long) errors);
    if (json)
        printf ("{\"target\":\"%s\",\"orders\":%ld,\"connections\":%ld,\"window\":%ld,"
                "\"acked_per_sec\":%.0f,\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f,"
                "\"ack_p999_us\":%.1f,\"rejected\":%llu,\"errors\":%llu}\n",
                target, orders, connections, window, (double) acked / secs, p50, p99, p999,
                (unsigned long long) rejected, (unsigned long long) errors);
    proto_buf_free (&buf);
    for (long c = 0; c < connections; c++) {
        zsock_destroy (&conns[c].sock);
        free (conns[c].orders);
    }
    free (conns);
    free (items);
    free (sent_at);
    free (latency);
    return errors ? 1 : 0;
}
