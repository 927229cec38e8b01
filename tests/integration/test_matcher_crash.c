/*  test_matcher_crash — kill -9 the matcher at random moments under load from several
    clients, 20 times, and check what docs/architecture.md promises (The bus, Durability):
    - every acknowledged order is in the journal (so in the book or in a trade after replay);
    - the journal's seqs are gap-free, and every message seen on the bus is exactly the
      journal's record at that seq: no seq was ever published twice with different content;
    - the state hash of the last matcher (which restarted from snapshots) equals that of a
      fresh matcher replaying a copy of the whole journal.
    The market has escrow on and the load mixes in deposit credits (a share of them resent, as
    the settler resends until it has an answer), withdrawals and their closes: the hash covers
    every balance, and the journal credits each deposit id and closes each withdrawal once.
*/
#include "harness.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <czmq.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define S_CLIENTS 4
#define S_WINDOW  32 //  commands in flight per client
#define S_KILLS   20
#define S_MAX_ACK 200000
#define S_MAX_IDS 100000 //  deposit and withdrawal ids tracked
#define S_MARKETS                                                                                  \
    "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; "                 \
    "escrow = true; } );\n"

static harness_t s_h, s_fresh, s_probe;

static void s_fini (void)
{
    harness_cleanup (&s_h);
    harness_cleanup (&s_fresh);
    harness_cleanup (&s_probe);
}

typedef struct {
    uint8_t *data;
    size_t len;
} s_seen_t;

//  The journal read back: its seqs, the orders it accepted, and the bus messages compared.
typedef struct {
    uint64_t expect, compared;
    uint8_t *accepted; //  by order id, below S_MAX_ACK * 4
    const s_seen_t *seen;
    uint8_t *credited, *closed; //  by deposit / withdrawal id: how often the journal says so
    uint64_t deposits, refunds;
} s_check_t;

static void s_check_event (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                           void *arg)
{
    s_check_t *c = arg;
    cr_assert_eq (seq, c->expect++, "journal seq gap");
    if (msg->kind == PROTO_order_accepted && msg->order_accepted.order_id < S_MAX_ACK * 4)
        c->accepted[msg->order_accepted.order_id] = 1;
    if (msg->kind == PROTO_balance && msg->balance.cause == PROTO_BALANCE_CAUSE_DEPOSIT) {
        cr_assert_lt (msg->balance.ref, S_MAX_IDS);
        cr_assert_eq (c->credited[msg->balance.ref]++, 0, "deposit %lu credited twice",
                      (unsigned long) msg->balance.ref);
        c->deposits++;
    }
    if (msg->kind == PROTO_withdrawal &&
        msg->withdrawal.state != PROTO_WITHDRAWAL_PHASE_REQUESTED) {
        cr_assert_lt (msg->withdrawal.withdrawal_id, S_MAX_IDS);
        cr_assert_eq (c->closed[msg->withdrawal.withdrawal_id]++, 0, "withdrawal %lu closed twice",
                      (unsigned long) msg->withdrawal.withdrawal_id);
        c->refunds += msg->withdrawal.state == PROTO_WITHDRAWAL_PHASE_REFUNDED;
    }
    if (seq < 4000000 && c->seen[seq].data) {
        cr_assert (c->seen[seq].len == len && memcmp (c->seen[seq].data, ev, len) == 0,
                   "bus seq %lu differs from the journal", (unsigned long) seq);
        c->compared++;
    }
}

static uint64_t s_rng = 0x2545F4914F6CDD1Dull;

static uint64_t s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

//  The last "state hash <hex>" in process i's log.
static uint64_t s_logged_hash (harness_t *h, int i)
{
    FILE *f = fopen (h->procs[i].log, "r");
    cr_assert_not_null (f);
    char line[1024];
    uint64_t hash = 0;
    while (fgets (line, sizeof line, f)) {
        char *p = strstr (line, "state hash ");
        if (p)
            hash = strtoull (p + 11, NULL, 16);
    }
    fclose (f);
    return hash;
}

static uint64_t s_deposit_ids; //  deposit ids sent so far

static void s_send_order (zsock_t *client, uint64_t rid, uint64_t *acked, size_t nacked)
{
    proto_msg_t cmd = {0};
    char user[16];
    int u = (int) (s_rand () % 8);
    snprintf (user, sizeof user, "u%d", u);
    uint64_t pick = s_rand () % 100;
    if (pick < 12 && s_deposit_ids < S_MAX_IDS - 1) {
        //  a deposit: mostly new, a third of them a resend of an earlier id (same content)
        uint64_t id = s_deposit_ids && pick < 4 ? 1 + s_rand () % s_deposit_ids : ++s_deposit_ids;
        cmd.kind = PROTO_deposit_credit;
        proto_deposit_credit_t *d = &cmd.deposit_credit;
        d->rid = rid;
        d->deposit_id = id;
        snprintf (d->user, sizeof d->user, "u%d", (int) (id % 8));
        d->asset = id & 8 ? PROTO_ASSET_ENERGY : PROTO_ASSET_PAYMENT;
        d->amount = d->asset == PROTO_ASSET_ENERGY ? 30000 : 4000000;
        d->ts = 1;
    }
    else if (pick < 14) {
        cmd.kind = PROTO_withdraw;
        cmd.withdraw.rid = rid;
        snprintf (cmd.withdraw.user, sizeof cmd.withdraw.user, "%s", user);
        cmd.withdraw.asset = s_rand () & 1 ? PROTO_ASSET_ENERGY : PROTO_ASSET_PAYMENT;
        cmd.withdraw.amount = 1 + (int64_t) (s_rand () % 5000);
        cmd.withdraw.ts = 1;
    }
    else if (pick < 16) {
        //  the settler closing one, maybe twice, maybe one that never existed
        cmd.kind = PROTO_withdrawal_close;
        cmd.withdrawal_close.rid = rid;
        cmd.withdrawal_close.withdrawal_id = 1 + s_rand () % (1 + rid / 40);
        cmd.withdrawal_close.refund = s_rand () & 1;
        cmd.withdrawal_close.ts = 1;
    }
    else if (nacked > 10 && s_rand () % 10 == 0) {
        //  a cancel of something acknowledged earlier (it may have traded already)
        cmd.kind = PROTO_cancel_order;
        cmd.cancel_order.rid = rid;
        snprintf (cmd.cancel_order.user, sizeof cmd.cancel_order.user, "%s", user);
        snprintf (cmd.cancel_order.market, sizeof cmd.cancel_order.market, "campus-1");
        cmd.cancel_order.role = PROTO_ROLE_ADMIN;
        cmd.cancel_order.order_id = acked[s_rand () % nacked];
        cmd.cancel_order.ts = 1;
    }
    else {
        cmd.kind = PROTO_new_order;
        proto_new_order_t *o = &cmd.new_order;
        o->rid = rid;
        snprintf (o->user, sizeof o->user, "%s", user);
        snprintf (o->market, sizeof o->market, "campus-1");
        o->side = s_rand () & 1 ? PROTO_SIDE_BUY : PROTO_SIDE_SELL;
        o->type = PROTO_ORDER_TYPE_LIMIT;
        o->tif = s_rand () % 10 == 0 ? PROTO_TIF_IOC : PROTO_TIF_GTC;
        o->qty = (int64_t) (1 + s_rand () % 20) * 1000;
        o->price = (int64_t) (140 + s_rand () % 21) * 1000; //  0.140 .. 0.160: they cross
        o->ts = 1;
    }
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&cmd, &buf), 0);
    zmq_send (zsock_resolve (client), buf.data, buf.len, ZMQ_DONTWAIT);
    proto_buf_free (&buf);
}

static int s_by_seq (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

//  Seen about once in 40 runs under the sanitizers, not yet understood: the restarted
//  matcher's final state differs from a full replay's. Each snapshot kept, restored on its
//  own and replayed to the end, says which side it is on: the first that reaches the
//  restarted matcher's state carries the difference (or its restore made it); if none does,
//  the last process made it while running.
static void s_bisect (const char *dir, uint64_t full, uint64_t live)
{
    uint64_t seqs[128];
    size_t n = 0;
    DIR *d = opendir (dir);
    for (struct dirent *e = d ? readdir (d) : NULL; e && n < 128; e = readdir (d)) {
        unsigned long long seq;
        char tail[8];
        if (sscanf (e->d_name, "snapshot-%llu.%7s", &seq, tail) == 2 && strcmp (tail, "snap") == 0)
            seqs[n++] = seq;
    }
    if (d)
        closedir (d);
    qsort (seqs, n, sizeof seqs[0], s_by_seq);
    fprintf (stderr,
             "matcher_crash: states differ (full replay %016lx, restarted %016lx); %zu "
             "snapshots kept\n",
             (unsigned long) full, (unsigned long) live, n);
    for (size_t i = 0; i < n; i++) {
        harness_init (&s_probe, S_MARKETS);
        char cmd[1024];
        snprintf (cmd, sizeof cmd,
                  "mkdir -p %s/data && cp -r %s %s/data/matcher && find %s/data/matcher -name "
                  "'snapshot-*' ! -name 'snapshot-%llu.snap' -delete",
                  s_probe.dir, dir, s_probe.dir, s_probe.dir, (unsigned long long) seqs[i]);
        uint64_t hash = 0;
        if (system (cmd) == 0) {
            int m = harness_start (&s_probe, "mce-matcher");
            if (harness_wait_log (&s_probe, m, "commands on", HARNESS_DEADLINE_MS))
                hash = s_logged_hash (&s_probe, m);
        }
        fprintf (stderr,
                 "matcher_crash: snapshot at seq %llu, restored and replayed: %016lx (%s)\n",
                 (unsigned long long) seqs[i], (unsigned long) hash,
                 hash == full   ? "as the full replay"
                 : hash == live ? "as the restarted matcher"
                                : "neither");
        harness_cleanup (&s_probe);
    }
}

Test (matcher_crash, kill_nine_twenty_times_under_load, .fini = s_fini, .timeout = 600)
{
    //  Snapshots every 2 000 events, so kills fall before, during and after their writes.
    setenv ("MCE_MATCHER_SNAPSHOT_EVERY", "2000", 1); //  the harness writes the matcher group
    setenv ("MCE_MATCHER_SNAPSHOT_KEEP", "64", 1);    //  for s_bisect, should the states differ
    harness_init (&s_h, S_MARKETS);
    char commands[64], bus[64];
    snprintf (commands, sizeof commands, "tcp://127.0.0.1:%d", s_h.port_commands);
    snprintf (bus, sizeof bus, "tcp://127.0.0.1:%d", s_h.port_bus);

    zsock_t *clients[S_CLIENTS];
    for (int c = 0; c < S_CLIENTS; c++) {
        clients[c] = zsock_new (ZMQ_DEALER);
        zsock_set_linger (clients[c], 0);
        cr_assert_eq (harness_client (&s_h, clients[c], HARNESS_KEY, "matcher"), 0);
        zsock_connect (clients[c], "%s", commands);
    }
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (sub, 0);
    zsock_set_subscribe (sub, "m.");
    cr_assert_eq (harness_client (&s_h, sub, HARNESS_MONITOR, "matcher"), 0);
    zsock_connect (sub, "%s", bus);
    s_seen_t *seen = calloc (4000000, sizeof *seen);
    uint64_t *acked = calloc (S_MAX_ACK, sizeof *acked);
    size_t nacked = 0, nseen_total = 0;
    uint64_t rid = 1;
    int in_flight[S_CLIENTS] = {0};
    int matcher = -1;

    for (int round = 0; round <= S_KILLS; round++) {
        matcher = harness_start (&s_h, "mce-matcher");
        cr_assert (
            harness_wait_log_count (&s_h, matcher, "commands on", round + 1, HARNESS_DEADLINE_MS),
            "round %d: the matcher did not come back", round);
        //  Requests sent to the dead matcher are lost: start each round with a clean window.
        for (int c = 0; c < S_CLIENTS; c++)
            in_flight[c] = 0;
        size_t goal = nacked + 50 + s_rand () % 400;
        int64_t deadline = zclock_mono () + HARNESS_DEADLINE_MS;
        while (nacked < goal) {
            cr_assert_lt (zclock_mono (), deadline, "round %d: acks stopped at %zu", round, nacked);
            for (int c = 0; c < S_CLIENTS; c++)
                while (in_flight[c] < S_WINDOW) {
                    s_send_order (clients[c], rid++, acked, nacked);
                    in_flight[c]++;
                }
            zmq_pollitem_t items[S_CLIENTS + 1];
            for (int c = 0; c < S_CLIENTS; c++)
                items[c] = (zmq_pollitem_t){zsock_resolve (clients[c]), 0, ZMQ_POLLIN, 0};
            items[S_CLIENTS] = (zmq_pollitem_t){zsock_resolve (sub), 0, ZMQ_POLLIN, 0};
            zmq_poll (items, S_CLIENTS + 1, 100);
            for (int c = 0; c < S_CLIENTS; c++)
                while (zsock_events (clients[c]) & ZMQ_POLLIN) {
                    zframe_t *f = zframe_recv (clients[c]);
                    if (!f)
                        break; //  interrupted (a child's SIGCHLD): poll again
                    proto_msg_t reply;
                    char err[128];
                    cr_assert_eq (
                        proto_decode (zframe_data (f), zframe_size (f), &reply, err, sizeof err), 0,
                        "%s", err);
                    //  an ack names the order it created or acted on: that order was accepted
                    if (reply.kind == PROTO_ack && reply.ack.order_id && nacked < S_MAX_ACK)
                        acked[nacked++] = reply.ack.order_id;
                    in_flight[c] = in_flight[c] > 0 ? in_flight[c] - 1 : 0;
                    zframe_destroy (&f);
                }
            //  Everything published: topic, event; remember the event's bytes by its seq.
            while (zsock_events (sub) & ZMQ_POLLIN) {
                zframe_t *topic = zframe_recv (sub);
                zframe_t *ev = topic && zframe_more (topic) ? zframe_recv (sub) : NULL;
                proto_msg_t msg;
                char err[128];
                if (ev &&
                    proto_decode (zframe_data (ev), zframe_size (ev), &msg, err, sizeof err) == 0 &&
                    msg.kind != PROTO_heartbeat) {
                    uint64_t seq = proto_msg_seq (&msg);
                    cr_assert (seq > 0 && seq < 4000000);
                    if (seen[seq].data) {
                        cr_assert (
                            seen[seq].len == zframe_size (ev) &&
                                memcmp (seen[seq].data, zframe_data (ev), seen[seq].len) == 0,
                            "seq %lu published twice with different content", (unsigned long) seq);
                    }
                    else {
                        seen[seq].data = malloc (zframe_size (ev));
                        memcpy (seen[seq].data, zframe_data (ev), zframe_size (ev));
                        seen[seq].len = zframe_size (ev);
                        nseen_total++;
                    }
                }
                zframe_destroy (&topic);
                zframe_destroy (&ev);
            }
        }
        if (round < S_KILLS)
            cr_assert_eq (WTERMSIG (harness_stop (&s_h, matcher, SIGKILL)), SIGKILL);
    }
    //  A clean stop logs the state hash of the final books.
    harness_stop (&s_h, matcher, SIGTERM);
    uint64_t final_hash = s_logged_hash (&s_h, matcher);
    cr_assert_neq (final_hash, 0);

    //  The journal: gap-free from seq 1, every acknowledged order accepted in it, every bus
    //  message identical to its record.
    char dir[256];
    snprintf (dir, sizeof dir, "%s/data/matcher", s_h.dir);
    s_check_t check = {.expect = 1,
                       .accepted = calloc (S_MAX_ACK * 4, 1),
                       .seen = seen,
                       .credited = calloc (S_MAX_IDS, 1),
                       .closed = calloc (S_MAX_IDS, 1)};
    cr_assert_geq (harness_journal_events (&s_h, s_check_event, &check), 0);
    uint8_t *accepted = check.accepted;
    for (size_t i = 0; i < nacked; i++)
        cr_assert (acked[i] < S_MAX_ACK * 4 && accepted[acked[i]],
                   "acknowledged order %lu is not in the journal", (unsigned long) acked[i]);
    cr_assert_gt (check.compared, 100, "the bus was watched (%lu messages compared)",
                  (unsigned long) check.compared);
    cr_assert_gt (check.deposits, 100, "deposits were credited");
    cr_assert_gt (check.refunds, 0, "withdrawals were refunded");

    //  A fresh matcher on a copy of the journal rebuilds the same books.
    harness_init (&s_fresh, S_MARKETS);
    char cmd[768];
    //  (without the snapshots: the fresh one replays the whole journal)
    snprintf (cmd, sizeof cmd,
              "mkdir -p %s/data && cp -r %s %s/data/matcher && rm -f %s/data/matcher/snapshot-*",
              s_fresh.dir, dir, s_fresh.dir, s_fresh.dir);
    cr_assert_eq (system (cmd), 0);
    unsetenv ("MCE_MATCHER_SNAPSHOT_EVERY");
    unsetenv ("MCE_MATCHER_SNAPSHOT_KEEP");
    int fresh = harness_start (&s_fresh, "mce-matcher");
    cr_assert (harness_wait_log (&s_fresh, fresh, "commands on", HARNESS_DEADLINE_MS));
    uint64_t fresh_hash = s_logged_hash (&s_fresh, fresh);
    if (fresh_hash != final_hash)
        s_bisect (dir, fresh_hash, final_hash);
    cr_assert_eq (fresh_hash, final_hash,
                  "a fresh replay of the journal gives the same state (%016lx, not %016lx)",
                  (unsigned long) fresh_hash, (unsigned long) final_hash);
    cr_assert_gt (harness_count_log (&s_h, matcher, "restored snapshot seq"), 5,
                  "restarts began from snapshots");
    fprintf (stderr,
             "matcher_crash: %d kills, %zu acknowledged orders, %lu journal records, "
             "%lu bus messages compared, %lu deposits credited, %lu withdrawals refunded\n",
             S_KILLS, nacked, (unsigned long) (check.expect - 1), (unsigned long) check.compared,
             (unsigned long) check.deposits, (unsigned long) check.refunds);

    for (size_t i = 0; i < 4000000; i++)
        free (seen[i].data);
    free (seen);
    free (acked);
    free (accepted);
    free (check.credited);
    free (check.closed);
    for (int c = 0; c < S_CLIENTS; c++)
        zsock_destroy (&clients[c]);
    zsock_destroy (&sub);
}
