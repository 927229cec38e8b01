/*  mce-bench-settler — trades settled per second, end to end, against the local ledger.

    It starts the local ledger (tools/ledger, --users U), a real mce-matcher and a real
    mce-settler (wallets from the ledger's setup file, so no Postgres) in a temporary folder,
    then sends N crossing order pairs between random users to the matcher as fast as it takes
    them, and follows the settler's bus until all N settlements are confirmed. Its market has
    escrow off, so trades settle wallet to wallet with nothing deposited first (the same three
    transfers per trade a settlement out of the vaults makes). It reports:

        trades/s           N / (time from the first order to the last confirmation)
        trades per tx      settlements confirmed / transactions confirmed
        confirmations/s    transactions confirmed per second
        intake s           until the settler had recorded the intent of the last trade: the
                           matcher and the intake are not the bottleneck

    With --transfers N it measures deposits and withdrawals instead: N deposits asked of the
    settler's admin port at once (round-robin over the users, alternating energy and payment),
    followed on the settler's bus until every one is confirmed on the ledger and credited by
    the matcher; then N withdrawals asked of the matcher at once (from those balances), until
    every one is confirmed on the ledger and closed at the matcher. It reports, per kind:

        confirmed/s        N / (time from the first command to the last confirmation)
        final/s            N / (time to the last credited, or closed)
        per tx             transfers confirmed / transactions confirmed

    Prints a table, or with --json one JSON object on the last line. A benchmark, not a test:
    it exits 0 when it ran (whatever the numbers), 1 when it could not run or not everything
    was confirmed before the deadline.
*/
#include "bus_sub.h"
#include "clock.h"
#include "harness.h"
#include "ledgertest.h"
#include "proto.h"

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_DEADLINE_S 300
#define S_PRICE      150000 //  µ/kWh: every order, so every pair trades

typedef struct {
    int trades, users, fee_ppm, per_tx, in_flight, transfers;
    const char *fsync;
    bool json;
} s_opts_t;

static uint64_t s_rand (void)
{
    static uint64_t x = 0x2545F4914F6CDD1Dull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static double s_metric (int port, const char *name)
{
    char *body = NULL;
    double v = -1;
    if (harness_http_port (port, "GET", "/metrics", NULL, &body) == 200) {
        size_t len = strlen (name);
        for (const char *p = body; p && *p; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
            if (strncmp (p, name, len) == 0 && p[len] == ' ') {
                v = strtod (p + len + 1, NULL);
                break;
            }
    }
    free (body);
    return v;
}

static int s_usage (int rc)
{
    printf ("Usage: mce-bench-settler [--trades N] [--users U] [--fee-ppm P] [--per-tx M]\n"
            "                         [--in-flight T] [--fsync batch|always|never] [--json]\n"
            "                         [--transfers N]\n"
            "Settles N trades (default 20000) between U ledger users (default 20) and reports\n"
            "trades/s, trades per transaction and confirmations/s. With --transfers N: N\n"
            "deposits, then N withdrawals, and deposits and withdrawals confirmed per second.\n");
    return rc;
}

typedef struct {
    int confirmed, final, failed;
    int64_t t_confirmed, t_final; //  monotonic ns of the last of each
} s_tcount_t;

//  Follows the settler bus until n transfers of kind are final (or failed), or the deadline.
static void s_follow (bus_sub_t *bus, proto_transfer_kind_t kind, int n, s_tcount_t *c,
                      int64_t deadline)
{
    zmq_pollitem_t items[2];
    bus_sub_pollitems (bus, items);
    proto_transfer_state_t final = kind == PROTO_TRANSFER_KIND_DEPOSIT
                                       ? PROTO_TRANSFER_STATE_CREDITED
                                       : PROTO_TRANSFER_STATE_CLOSED;
    while (c->final + c->failed < n && clock_mono_ns () < deadline) {
        zmq_poll (items, 2, 100);
        bus_event_t ev;
        while (bus_sub_recv (bus, &ev, 0) == 1) {
            if (ev.msg.kind != PROTO_transfer || ev.msg.transfer.kind != kind)
                continue;
            proto_transfer_state_t st = ev.msg.transfer.state;
            if (st == PROTO_TRANSFER_STATE_CONFIRMED) {
                c->confirmed++;
                c->t_confirmed = clock_mono_ns ();
            }
            else if (st == final) {
                c->final++;
                c->t_final = clock_mono_ns ();
            }
            else if (st == PROTO_TRANSFER_STATE_FAILED)
                c->failed++;
        }
    }
}

//  N deposits, then N withdrawals. 0 when every one was confirmed and made final.
static int s_transfers (const s_opts_t *o, harness_t *h, ledgertest_t *ledger, bus_sub_t *bus)
{
    char admin[64], endpoint[64];
    snprintf (admin, sizeof admin, "tcp://127.0.0.1:%d", h->port_settler_commands);
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", h->port_commands);
    zsock_t *settler = harness_dealer (h, "settler", admin);
    zsock_t *matcher = harness_dealer (h, "matcher", endpoint);
    zsock_set_sndhwm (settler, 0);
    zsock_set_rcvhwm (settler, 0);
    zsock_set_sndhwm (matcher, 0);
    zsock_set_rcvhwm (matcher, 0);
    proto_buf_t buf;
    proto_buf_init (&buf);
    int64_t deadline = clock_mono_ns () + S_DEADLINE_S * MCE_NS_PER_SEC;
    s_tcount_t dep = {0}, wd = {0};
    //  deposits: 1 000 Wh or 1 000 000 µ each, every user in turn
    int64_t t0 = clock_mono_ns ();
    for (int i = 0; i < o->transfers; i++) {
        proto_msg_t m = {.kind = PROTO_settler_command};
        proto_settler_command_t *c = &m.settler_command;
        c->rid = (uint64_t) i + 1;
        c->action = PROTO_SETTLER_ACTION_DEPOSIT;
        snprintf (c->owner, sizeof c->owner, "user%d", 1 + i % o->users);
        c->asset = (i / o->users) % 2 ? PROTO_ASSET_PAYMENT : PROTO_ASSET_ENERGY;
        c->amount = c->asset == PROTO_ASSET_ENERGY ? 1000 : 1000000;
        proto_buf_reset (&buf);
        if (proto_encode (&m, &buf) == 0)
            zmq_send (zsock_resolve (settler), buf.data, buf.len, 0);
    }
    s_follow (bus, PROTO_TRANSFER_KIND_DEPOSIT, o->transfers, &dep, deadline);
    int64_t t1 = clock_mono_ns ();
    double dep_txs = s_metric (h->port_ws, "mce_settler_transactions_total{event=\"confirmed\"}");
    //  withdrawals: half of each deposit back
    for (int i = 0; i < o->transfers; i++) {
        proto_msg_t m = {.kind = PROTO_withdraw};
        proto_withdraw_t *w = &m.withdraw;
        w->rid = (uint64_t) i + 1;
        snprintf (w->user, sizeof w->user, "user%d", 1 + i % o->users);
        w->asset = (i / o->users) % 2 ? PROTO_ASSET_PAYMENT : PROTO_ASSET_ENERGY;
        w->amount = w->asset == PROTO_ASSET_ENERGY ? 500 : 500000;
        w->ts = clock_wall_ns ();
        proto_buf_reset (&buf);
        if (proto_encode (&m, &buf) == 0)
            zmq_send (zsock_resolve (matcher), buf.data, buf.len, 0);
    }
    s_follow (bus, PROTO_TRANSFER_KIND_WITHDRAWAL, o->transfers, &wd, deadline);
    double all_txs = s_metric (h->port_ws, "mce_settler_transactions_total{event=\"confirmed\"}");
    proto_buf_free (&buf);
    zsock_destroy (&settler);
    zsock_destroy (&matcher);
    json_t *stats = ledgertest_rpc (ledger, "mce_stats", NULL);
    long long landed = (long long) json_integer_value (json_object_get (stats, "txLanded"));
    json_decref (stats);
    if (dep.final < o->transfers || wd.final < o->transfers) {
        fprintf (stderr,
                 "mce-bench-settler: deposits %d credited (%d failed), withdrawals %d closed (%d "
                 "failed) of %d in %d s\n",
                 dep.final, dep.failed, wd.final, wd.failed, o->transfers, S_DEADLINE_S);
        return -1;
    }
    double n = o->transfers;
    double dc = n / ((double) (dep.t_confirmed - t0) / 1e9);
    double df = n / ((double) (dep.t_final - t0) / 1e9);
    double wc = n / ((double) (wd.t_confirmed - t1) / 1e9);
    double wf = n / ((double) (wd.t_final - t1) / 1e9);
    double dpt = dep_txs > 0 ? n / dep_txs : 0,
           wpt = all_txs > dep_txs ? n / (all_txs - dep_txs) : 0;
    printf ("%-12s %8s %6s %14s %10s %8s\n", "kind", "count", "users", "confirmed/s", "final/s",
            "per tx");
    printf ("%-12s %8d %6d %14.0f %10.0f %8.2f\n", "deposits", o->transfers, o->users, dc, df, dpt);
    printf ("%-12s %8d %6d %14.0f %10.0f %8.2f\n", "withdrawals", o->transfers, o->users, wc, wf,
            wpt);
    printf ("deposits final = credited by the matcher, withdrawals final = closed at the matcher; "
            "ledger: %lld landed; fsync %s\n",
            landed, o->fsync);
    if (o->json)
        printf ("{\"transfers\":%d,\"users\":%d,\"deposits_confirmed_per_s\":%.1f,"
                "\"deposits_credited_per_s\":%.1f,\"deposits_per_tx\":%.2f,"
                "\"withdrawals_confirmed_per_s\":%.1f,\"withdrawals_closed_per_s\":%.1f,"
                "\"withdrawals_per_tx\":%.2f,\"fsync\":\"%s\"}\n",
                o->transfers, o->users, dc, df, dpt, wc, wf, wpt, o->fsync);
    return 0;
}

int main (int argc, char **argv)
{
    s_opts_t o = {.trades = 20000,
                  .users = 20,
                  .fee_ppm = 2500,
                  .per_tx = 16,
                  .in_flight = 256,
                  .fsync = "batch"};
    static const struct option longs[] = {{"trades", 1, 0, 't'},    {"users", 1, 0, 'u'},
                                          {"fee-ppm", 1, 0, 'f'},   {"per-tx", 1, 0, 'p'},
                                          {"in-flight", 1, 0, 'i'}, {"fsync", 1, 0, 's'},
                                          {"json", 0, 0, 'j'},      {"help", 0, 0, 'h'},
                                          {"transfers", 1, 0, 'x'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1)
        switch (c) {
            case 't':
                o.trades = atoi (optarg);
                break;
            case 'u':
                o.users = atoi (optarg);
                break;
            case 'f':
                o.fee_ppm = atoi (optarg);
                break;
            case 'p':
                o.per_tx = atoi (optarg);
                break;
            case 'i':
                o.in_flight = atoi (optarg);
                break;
            case 's':
                o.fsync = optarg;
                break;
            case 'j':
                o.json = true;
                break;
            case 'x':
                o.transfers = atoi (optarg);
                break;
            case 'h':
                return s_usage (0);
            default:
                return s_usage (1);
        }
    if (o.trades < 1 || o.users < 2 || o.users > 60 || o.per_tx < 1 || o.transfers < 0) {
        fprintf (stderr, "mce-bench-settler: bad options (try --help)\n");
        return 1;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    harness_t h;
    char config[512];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; "
              "fee_ppm = %d; max_qty = \"1000000\"; escrow = false; } );\n",
              o.fee_ppm);
    harness_init (&h, config);
    ledgertest_t ledger;
    char users[16];
    snprintf (users, sizeof users, "%d", o.users);
    const char *args[] = {
        "--users",          users, "--energy-amount", "1000000000000", "--payment-amount",
        "1000000000000000", NULL};
    if (ledgertest_start (&ledger, h.dir, args)) {
        harness_cleanup (&h);
        return 1;
    }
    char port[16], per_tx[16], in_flight[16];
    snprintf (port, sizeof port, "%d", h.port_ws);
    snprintf (per_tx, sizeof per_tx, "%d", o.per_tx);
    snprintf (in_flight, sizeof in_flight, "%d", o.in_flight);
    setenv ("MCE_SETTLER_RPC_URL", ledger.url, 1);
    setenv ("MCE_SETTLER_KEYS_FILE", ledger.setup_path, 1);
    setenv ("MCE_SETTLER_WALLETS", "keys_file", 1);
    setenv ("MCE_SETTLER_METRICS_PORT", port, 1);
    setenv ("MCE_SETTLER_MAX_TRADES_PER_TX", per_tx, 1);
    setenv ("MCE_SETTLER_MAX_IN_FLIGHT", in_flight, 1);
    setenv ("MCE_SETTLER_FSYNC", o.fsync, 1);
    setenv ("MCE_SETTLER_MAX_TRANSFERS_PER_TX", per_tx, 1);
    harness_start (&h, "mce-matcher");
    int settler = harness_start (&h, "mce-settler");
    int rc = 1;
    if (!harness_wait_log (&h, settler, "settler: ready", HARNESS_DEADLINE_MS)) {
        fprintf (stderr, "mce-bench-settler: the settler did not start (see %s)\n",
                 h.procs[settler].log);
        goto done;
    }
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", h.port_commands);
    bus_sub_t *bus = harness_bus_sub (&h, "s", 0);
    if (o.transfers) {
        rc = s_transfers (&o, &h, &ledger, bus) ? 1 : 0;
        bus_sub_destroy (&bus);
        goto done;
    }
    zsock_t *dealer = harness_dealer (&h, "matcher", endpoint);
    zsock_set_sndhwm (dealer, 0);
    zsock_set_rcvhwm (dealer, 0);
    //  every order goes out at once; the replies are counted while the settlements come in
    int64_t t0 = clock_mono_ns ();
    for (int i = 0; i < o.trades; i++) {
        int seller = 1 + (int) (s_rand () % (uint64_t) o.users);
        int buyer = 1 + (int) ((seller + s_rand () % (uint64_t) (o.users - 1)) % o.users);
        int64_t qty = 1000 + (int64_t) (s_rand () % 1000);
        char sell_user[16], buy_user[16];
        snprintf (sell_user, sizeof sell_user, "user%d", seller);
        snprintf (buy_user, sizeof buy_user, "user%d", buyer);
        harness_order (dealer, 2 * (uint64_t) i + 1, sell_user, false, qty, S_PRICE);
        harness_order (dealer, 2 * (uint64_t) i + 2, buy_user, true, qty, S_PRICE);
    }
    int replies = 0, intents = 0, confirmed = 0, failed = 0;
    int64_t t_matched = 0, t_first = 0, t_last = 0;
    int64_t deadline = t0 + S_DEADLINE_S * MCE_NS_PER_SEC;
    zmq_pollitem_t items[3];
    bus_sub_pollitems (bus, items);
    items[2] = (zmq_pollitem_t){zsock_resolve (dealer), 0, ZMQ_POLLIN, 0};
    while (confirmed + failed < o.trades && clock_mono_ns () < deadline) {
        zmq_poll (items, 3, 100);
        zframe_t *f;
        while ((f = zframe_recv_nowait (dealer))) {
            zframe_destroy (&f);
            replies++;
        }
        bus_event_t ev;
        while (bus_sub_recv (bus, &ev, 0) == 1)
            if (ev.msg.kind == PROTO_settlement) {
                if (ev.msg.settlement.state == PROTO_SETTLE_STATE_CONFIRMED) {
                    confirmed++;
                    t_last = clock_mono_ns ();
                    if (!t_first)
                        t_first = t_last;
                }
                else if (ev.msg.settlement.state == PROTO_SETTLE_STATE_FAILED)
                    failed++;
                else if (ev.msg.settlement.buyer[0] && ++intents == o.trades)
                    t_matched = clock_mono_ns (); //  the intent of the last trade
            }
    }
    zsock_destroy (&dealer);
    bus_sub_destroy (&bus);
    double secs = (double) (t_last - t0) / 1e9;
    double txs = s_metric (h.port_ws, "mce_settler_transactions_total{event=\"confirmed\"}");
    double sent = s_metric (h.port_ws, "mce_settler_transactions_total{event=\"sent\"}");
    json_t *stats = ledgertest_rpc (&ledger, "mce_stats", NULL);
    long long landed = (long long) json_integer_value (json_object_get (stats, "txLanded"));
    json_decref (stats);
    if (confirmed < o.trades) {
        fprintf (stderr, "mce-bench-settler: %d of %d trades confirmed (%d failed) in %d s\n",
                 confirmed, o.trades, failed, S_DEADLINE_S);
        goto done;
    }
    double tps = confirmed / secs, per_tx_avg = txs > 0 ? confirmed / txs : 0;
    double matcher = t_matched ? (double) (t_matched - t0) / 1e9 : 0;
    printf ("%-8s %6s %8s %10s %14s %16s %12s\n", "trades", "users", "seconds", "trades/s",
            "trades per tx", "confirmations/s", "intake s");
    printf ("%-8d %6d %8.2f %10.0f %14.2f %16.0f %12.2f\n", confirmed, o.users, secs, tps,
            per_tx_avg, txs / secs, matcher);
    printf ("transactions: %.0f confirmed, %.0f sendTransaction calls; ledger: %lld landed; fee "
            "%d ppm, fsync %s\n",
            txs, sent, landed, o.fee_ppm, o.fsync);
    if (o.json)
        printf ("{\"trades\":%d,\"users\":%d,\"seconds\":%.3f,\"trades_per_s\":%.1f,"
                "\"trades_per_tx\":%.2f,\"confirmations_per_s\":%.1f,\"intake_s\":%.3f,"
                "\"fsync\":\"%s\"}\n",
                confirmed, o.users, secs, tps, per_tx_avg, txs / secs, matcher, o.fsync);
    rc = 0;
done:
    harness_cleanup (&h);
    ledgertest_stop (&ledger);
    return rc;
}
