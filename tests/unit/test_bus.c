/*  test_bus — whatever the PUB socket drops and whenever a consumer starts, bus_sub delivers
    exactly the published sequence: no gap, no duplicate.
*/
#include "bus_pub.h"
#include "bus_sub.h"
#include "clock.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#define S_DEADLINE_NS (60 * MCE_NS_PER_SEC)

typedef struct {
    char dir[64];
    char pub[128], replay[128], journal[128];
} s_bus_t;

static void s_bus_paths (s_bus_t *b)
{
    snprintf (b->dir, sizeof b->dir, "/tmp/mce-test-bus-XXXXXX");
    cr_assert_not_null (mkdtemp (b->dir));
    snprintf (b->pub, sizeof b->pub, "ipc://%s/pub", b->dir);
    snprintf (b->replay, sizeof b->replay, "ipc://%s/replay", b->dir);
    snprintf (b->journal, sizeof b->journal, "%s/journal", b->dir);
}

static void s_bus_cleanup (s_bus_t *b)
{
    zdir_t *d = zdir_new (b->dir, NULL);
    if (d) {
        zdir_remove (d, true);
        zdir_destroy (&d);
    }
}

static bus_pub_t *s_pub_new (s_bus_t *b, int sndhwm)
{
    bus_pub_opts_t opts = {.stream = "m",
                           .pub_endpoint = b->pub,
                           .replay_endpoint = b->replay,
                           .journal_dir = b->journal,
                           .journal = {.fsync = JOURNAL_FSYNC_NEVER},
                           .sndhwm = sndhwm};
    bus_pub_t *pub = bus_pub_new (&opts);
    cr_assert_not_null (pub);
    return pub;
}

static bus_sub_t *s_sub_new (s_bus_t *b, int rcvhwm)
{
    bus_sub_opts_t opts = {.name = "test",
                           .stream = "m",
                           .pub_endpoint = b->pub,
                           .replay_endpoint = b->replay,
                           .rcvhwm = rcvhwm,
                           .replay_timeout_ms = 500};
    bus_sub_t *sub = bus_sub_new (&opts);
    cr_assert_not_null (sub);
    return sub;
}

//  Publishes events up to seq `to`, `batch` per commit. The market names the seq, so the
//  consumer can check that each payload belongs to its seq.
static void s_publish (bus_pub_t *pub, uint64_t to, int batch)
{
    for (uint64_t seq = bus_pub_last_seq (pub) + 1; seq <= to;) {
        for (int i = 0; i < batch && seq <= to; i++, seq++) {
            proto_msg_t ev = {.kind = PROTO_market_state};
            ev.market_state.seq = seq;
            ev.market_state.ts = (int64_t) seq;
            snprintf (ev.market_state.market, sizeof ev.market_state.market, "m-%llu",
                      (unsigned long long) seq);
            ev.market_state.state = PROTO_MARKET_STATUS_OPEN;
            cr_assert_eq (bus_pub_append (pub, &ev), 0);
        }
        cr_assert_eq (bus_pub_commit (pub), 0);
    }
}

//  Receives until `to`, asserting the exact sequence from the consumer's position on. The
//  producer heartbeats meanwhile, as every producer does: that is how a consumer learns of
//  events it missed at the tail, when nothing newer arrives to reveal the gap.
static void s_expect_sequence (bus_pub_t *pub, bus_sub_t *sub, uint64_t to)
{
    int64_t deadline = clock_mono_ns () + S_DEADLINE_NS;
    uint64_t expect = bus_sub_last_seq (sub) + 1;
    while (expect <= to) {
        cr_assert_lt (clock_mono_ns (), deadline, "stuck before seq %lu", (unsigned long) expect);
        bus_event_t ev;
        if (bus_sub_recv (sub, &ev, 100) != 1) {
            bus_pub_heartbeat (pub);
            continue;
        }
        cr_assert_eq (ev.seq, expect, "got seq %lu, expected %lu", (unsigned long) ev.seq,
                      (unsigned long) expect);
        char market[40];
        snprintf (market, sizeof market, "m-%llu", (unsigned long long) expect);
        cr_assert_str_eq (ev.msg.market_state.market, market);
        char topic[80];
        snprintf (topic, sizeof topic, "m.market_state.%s", market);
        cr_assert_eq (ev.topic_len, strlen (topic));
        cr_assert_eq (memcmp (ev.topic, topic, ev.topic_len), 0);
        expect++;
    }
}

//  Waits until the subscriber has seen a heartbeat, i.e. its SUB is connected.
static void s_wait_connected (bus_pub_t *pub, bus_sub_t *sub)
{
    int64_t deadline = clock_mono_ns () + S_DEADLINE_NS;
    while (bus_sub_stats (sub).heartbeats == 0) {
        cr_assert_lt (clock_mono_ns (), deadline, "the subscriber never connected");
        bus_pub_heartbeat (pub);
        bus_event_t ev;
        bus_sub_recv (sub, &ev, 20);
    }
}

Test (bus, late_subscriber_catches_up_by_replay, .timeout = 120)
{
    s_bus_t b;
    s_bus_paths (&b);
    bus_pub_t *pub = s_pub_new (&b, 0);
    s_publish (pub, 25000, 100); //  more than one replay batch, before anyone listens
    bus_sub_t *sub = s_sub_new (&b, 0);
    s_expect_sequence (pub, sub, 25000);
    cr_assert_gt (bus_sub_stats (sub).replays, 1, "caught up over several bounded replays");
    //  ...then follows live.
    s_publish (pub, 26000, 10);
    s_expect_sequence (pub, sub, 26000);
    cr_assert_eq (bus_sub_stats (sub).delivered, 26000);
    bus_sub_destroy (&sub);
    bus_pub_destroy (&pub);
    s_bus_cleanup (&b);
}

Test (bus, subscriber_past_its_high_water_mark_loses_nothing, .timeout = 120)
{
    s_bus_t b;
    s_bus_paths (&b);
    bus_pub_t *pub = s_pub_new (&b, 10);
    bus_sub_t *sub = s_sub_new (&b, 10);
    s_wait_connected (pub, sub);
    //  Published while the consumer does not read: about 14 MB, far more than the two
    //  queues of 10 and the kernel's socket buffers hold, so ZeroMQ must drop.
    s_publish (pub, 200000, 500);
    s_expect_sequence (pub, sub, 200000);
    bus_sub_stats_t st = bus_sub_stats (sub);
    cr_assert_gt (st.gaps, 0, "the high-water mark did drop messages");
    cr_assert_eq (st.delivered, 200000);
    bus_sub_destroy (&sub);
    bus_pub_destroy (&pub);
    s_bus_cleanup (&b);
}

Test (bus, producer_restart_neither_repeats_nor_skips, .timeout = 120)
{
    s_bus_t b;
    s_bus_paths (&b);
    bus_pub_t *pub = s_pub_new (&b, 0);
    bus_sub_t *sub = s_sub_new (&b, 0);
    s_publish (pub, 500, 50);
    s_expect_sequence (pub, sub, 500);
    bus_pub_destroy (&pub);
    //  A new producer on the same journal resumes the sequence; events published before the
    //  subscriber reconnects come back by replay.
    pub = s_pub_new (&b, 0);
    cr_assert_eq (bus_pub_last_seq (pub), 500);
    s_publish (pub, 1500, 50);
    s_expect_sequence (pub, sub, 1500);
    cr_assert_eq (bus_sub_stats (sub).delivered, 1500);
    bus_sub_destroy (&sub);
    bus_pub_destroy (&pub);
    s_bus_cleanup (&b);
}

Test (bus, malformed_replay_requests_are_dropped_and_the_server_goes_on, .timeout = 60)
{
    s_bus_t b;
    s_bus_paths (&b);
    bus_pub_t *pub = s_pub_new (&b, 0);
    s_publish (pub, 10, 10);
    zsock_t *raw = zsock_new_dealer (b.replay);
    zsock_set_rcvtimeo (raw, 200);
    zstr_send (raw, "not msgpack at all");
    zstr_sendm (raw, "two");
    zstr_send (raw, "frames");
    proto_msg_t wrong = {.kind = PROTO_heartbeat};
    snprintf (wrong.heartbeat.stream, sizeof wrong.heartbeat.stream, "m");
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&wrong, &buf), 0);
    zmq_send (zsock_resolve (raw), buf.data, buf.len, 0);
    proto_buf_free (&buf);
    cr_assert_null (zstr_recv (raw), "nothing is answered to garbage");
    zsock_destroy (&raw);
    //  A proper consumer is still served.
    bus_sub_t *sub = s_sub_new (&b, 0);
    s_expect_sequence (pub, sub, 10);
    bus_sub_destroy (&sub);
    bus_pub_destroy (&pub);
    s_bus_cleanup (&b);
}

Test (bus, a_consumer_waiting_for_an_absent_producer_does_not_pile_up_requests, .timeout = 60)
{
    s_bus_t b;
    s_bus_paths (&b);
    bus_sub_opts_t opts = {.name = "test",
                           .stream = "m",
                           .pub_endpoint = b.pub,
                           .replay_endpoint = b.replay,
                           .replay_timeout_ms = 20};
    bus_sub_t *sub = bus_sub_new (&opts);
    //  No producer for a second: about 50 replay timeouts go by.
    bus_event_t ev;
    cr_assert_eq (bus_sub_recv (sub, &ev, 1000), 0);
    bus_pub_t *pub = s_pub_new (&b, 0);
    s_publish (pub, 2000, 100);
    s_expect_sequence (pub, sub, 2000);
    bus_sub_stats_t st = bus_sub_stats (sub);
    cr_assert_lt (st.duplicates, 2000,
                  "requests made while the producer was away were not queued and answered "
                  "all at once (%lu duplicates)",
                  (unsigned long) st.duplicates);
    bus_sub_destroy (&sub);
    bus_pub_destroy (&pub);
    s_bus_cleanup (&b);
}
