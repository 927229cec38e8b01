/*  test_matcher_metrics — the matcher's /metrics counts what it did, in Prometheus text.  */
#include "harness.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static harness_t s_h;

static void s_fini (void)
{
    harness_cleanup (&s_h);
}

static void s_expect_line (const char *text, const char *line)
{
    cr_assert_not_null (strstr (text, line), "no \"%s\" in:\n%s", line, text);
}

//  The number after `prefix` at the start of a line.
static long long s_value (const char *text, const char *prefix)
{
    const char *at = strstr (text, prefix);
    cr_assert_not_null (at, "no \"%s\" in:\n%s", prefix, text);
    return strtoll (at + strlen (prefix), NULL, 10);
}

//  A matcher (fsync = the given mode, NULL: the default) with its metrics on a free port
//  (*port) and a client of its command port with a process's key. Returns the client;
//  *matcher is the matcher's harness index.
static zsock_t *s_start (const char *fsync, int *port, int *matcher)
{
    harness_init (&s_h, "markets = ( { id = \"campus-1\"; tick = \"0.001\"; "
                        "epoch_seconds = 2592000; escrow = false; } );\n");
    *port = s_h.port_xpub; //  free, and unused here (no broadcaster)
    char value[16];
    snprintf (value, sizeof value, "%d", *port);
    setenv ("MCE_MATCHER_METRICS_PORT", value, 1);
    if (fsync)
        setenv ("MCE_MATCHER_FSYNC", fsync, 1);
    *matcher = harness_start (&s_h, "mce-matcher");
    unsetenv ("MCE_MATCHER_METRICS_PORT");
    unsetenv ("MCE_MATCHER_FSYNC");
    cr_assert (harness_wait_log (&s_h, *matcher, "metrics on", HARNESS_DEADLINE_MS));
    char commands[64];
    snprintf (commands, sizeof commands, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *client = harness_dealer (&s_h, "matcher", commands);
    zsock_set_rcvtimeo (client, HARNESS_DEADLINE_MS);
    return client;
}

Test (matcher_metrics, counts_commands_trades_and_batches, .fini = s_fini, .timeout = 60)
{
    int port, m;
    zsock_t *client = s_start (NULL, &port, &m);
    //  A buy, a sell that trades with it, a buy that rests; and one malformed frame.
    for (int i = 0; i < 3; i++) {
        harness_order (client, (uint64_t) i + 1, i == 1 ? "u1" : "u0", i != 1, 1000,
                       i == 2 ? 140000 : 150000);
        zframe_t *reply = zframe_recv (client);
        cr_assert_not_null (reply);
        zframe_destroy (&reply);
    }
    zstr_send (client, "garbage");
    cr_assert (harness_wait_log (&s_h, m, "dropped malformed command #1", HARNESS_DEADLINE_MS));
    char *body = NULL;
    cr_assert_eq (harness_http_port (port, "GET", "/metrics", NULL, &body), 200);
    s_expect_line (body, "mce_matcher_commands_total 4");
    s_expect_line (body, "mce_matcher_malformed_total 1");
    s_expect_line (body, "mce_matcher_trades_total 1");
    s_expect_line (body, "mce_matcher_resting_orders 1");
    s_expect_line (body, "mce_matcher_book_resting_orders{market=\"campus-1\"} 1");
    s_expect_line (body, "mce_matcher_state_hash_info{seq=\"");
    s_expect_line (body, "# TYPE mce_matcher_batch_commands histogram");
    s_expect_line (body, "mce_matcher_batch_commands_bucket{le=\"+Inf\"}");
    s_expect_line (body, "# TYPE mce_matcher_commit_seconds histogram");
    cr_assert_not_null (strstr (body, "mce_matcher_last_seq "));
    free (body);
    cr_assert_eq (harness_http_port (port, "GET", "/nowhere", NULL, &body), 404);
    free (body);
    zsock_destroy (&client);
}

//  With fsync = always every command is a group commit of its own, even when many arrive
//  at once: the batch histogram shows one command per commit.
Test (matcher_metrics, fsync_always_commits_each_command_alone, .fini = s_fini, .timeout = 60)
{
    int port, m;
    zsock_t *client = s_start ("always", &port, &m);
    //  All 50 are sent before any reply is read, so they queue up at the matcher together.
    enum { N = 50 };
    for (int i = 0; i < N; i++)
        harness_order (client, (uint64_t) i + 1, "u0", true, 1000, 100000 + i * 1000);
    for (int i = 0; i < N; i++) {
        zframe_t *reply = zframe_recv (client);
        cr_assert_not_null (reply);
        zframe_destroy (&reply);
    }
    char *body = NULL;
    cr_assert_eq (harness_http_port (port, "GET", "/metrics", NULL, &body), 200);
    //  Every commit held at most one command (a commit of none carries the clock's events).
    s_expect_line (body, "mce_matcher_batch_commands_sum 50\n");
    long long ones = s_value (body, "mce_matcher_batch_commands_bucket{le=\"1\"} ");
    long long commits = s_value (body, "mce_matcher_batch_commands_count ");
    cr_assert_geq (commits, 50);
    cr_assert_eq (ones, commits, "%lld of %lld commits held one command or none", ones, commits);
    free (body);
    zsock_destroy (&client);
}

//  A batch frame (proto.h), as a gateway sends a loop turn's commands: each command decided,
//  a malformed one among them dropped and counted alone, the answers back in one batch frame;
//  a frame cut inside a message is malformed from there; a command in a frame of its own
//  still gets a frame of its own back.
Test (matcher_metrics, a_batch_frame_is_answered_in_one, .fini = s_fini, .timeout = 60)
{
    int port, m;
    zsock_t *client = s_start (NULL, &port, &m);

    proto_buf_t frame;
    proto_buf_init (&frame);
    proto_batch_start (&frame);
    for (uint64_t rid = 1; rid <= 3; rid++) {
        char user[8];
        snprintf (user, sizeof user, "u%d", (int) rid);
        proto_msg_t cmd = harness_order_msg (rid, user, true, 1000, 100000);
        if (rid == 2)
            proto_batch_add (&frame,
                             "\x81\xa1t\xa3"
                             "bad",
                             7); //  a map, of no known kind
        else
            cr_assert_eq (proto_batch_encode (&frame, &cmd), 0);
    }
    cr_assert_eq (zmq_send (zsock_resolve (client), frame.data, frame.len, 0), (int) frame.len);
    zframe_t *answer = zframe_recv (client);
    cr_assert_not_null (answer, "the batch is answered");
    cr_assert (proto_batch_is (zframe_data (answer), zframe_size (answer)), "in a batch frame");
    size_t offset = 0, count = 0, len;
    const uint8_t *reply;
    uint64_t rids[4] = {0};
    int n = 0;
    while (proto_batch_next (zframe_data (answer), zframe_size (answer), &offset, &count, &reply,
                             &len) == 1 &&
           n < 4) {
        proto_msg_t r;
        cr_assert_eq (proto_decode (reply, len, &r, NULL, 0), 0);
        cr_assert_eq (r.kind, PROTO_ack, "%s", proto_kind_name (r.kind));
        rids[n++] = r.ack.rid;
    }
    zframe_destroy (&answer);
    cr_assert_eq (n, 2, "the two good commands");
    cr_assert_eq (rids[0], 1);
    cr_assert_eq (rids[1], 3);

    //  cut inside its first message's length: malformed (the commands before a fault in a
    //  frame are decided; here there are none)
    zmq_send (zsock_resolve (client), frame.data, 3, 0);
    //  and a command in a frame of its own still gets a frame of its own
    harness_order (client, 9, "u9", true, 1000, 100000);
    answer = zframe_recv (client);
    cr_assert_not_null (answer);
    cr_assert_not (proto_batch_is (zframe_data (answer), zframe_size (answer)));
    proto_msg_t r;
    cr_assert_eq (proto_decode (zframe_data (answer), zframe_size (answer), &r, NULL, 0), 0);
    cr_assert_eq (r.ack.rid, 9);
    zframe_destroy (&answer);
    char *body = NULL;
    cr_assert_eq (harness_http_port (port, "GET", "/metrics", NULL, &body), 200);
    s_expect_line (body, "mce_matcher_malformed_total 2");
    s_expect_line (body, "mce_matcher_commands_total 5");
    free (body);
    proto_buf_free (&frame);
    zsock_destroy (&client);
}

static proto_msg_t s_reply (zsock_t *client)
{
    zframe_t *frame = zframe_recv (client);
    cr_assert_not_null (frame, "answered");
    proto_msg_t r;
    cr_assert_eq (proto_decode (zframe_data (frame), zframe_size (frame), &r, NULL, 0), 0);
    zframe_destroy (&frame);
    return r;
}

//  A refusal names the last event the matcher had when it refused, as an ack names its own:
//  a gateway answers only once its read model has it, so "no such order" for an order a trade
//  just filled is never followed by a read that shows the order open.
Test (matcher_metrics, a_refusal_names_the_last_event_it_saw, .fini = s_fini, .timeout = 60)
{
    int port, m;
    zsock_t *client = s_start (NULL, &port, &m);
    harness_order (client, 1, "u1", true, 1000, 100000);
    proto_msg_t buy = s_reply (client);
    cr_assert_eq (buy.kind, PROTO_ack);
    harness_order (client, 2, "u2", false, 1000, 100000); //  fills the buy
    proto_msg_t sell = s_reply (client);
    cr_assert_eq (sell.kind, PROTO_ack);
    cr_assert_gt (sell.ack.last_seq, buy.ack.last_seq);

    proto_msg_t cancel = {.kind = PROTO_cancel_order};
    cancel.cancel_order.rid = 3;
    snprintf (cancel.cancel_order.user, sizeof cancel.cancel_order.user, "u1");
    snprintf (cancel.cancel_order.market, sizeof cancel.cancel_order.market, "campus-1");
    cancel.cancel_order.order_id = buy.ack.order_id;
    cancel.cancel_order.ts = 1;
    proto_buf_t out;
    proto_buf_init (&out);
    cr_assert_eq (proto_encode (&cancel, &out), 0);
    cr_assert_eq (zmq_send (zsock_resolve (client), out.data, out.len, 0), (int) out.len);
    proto_buf_free (&out);
    proto_msg_t refused = s_reply (client);
    cr_assert_eq (refused.kind, PROTO_reject, "%s", proto_kind_name (refused.kind));
    cr_assert_eq (refused.reject.reason, PROTO_REJECT_REASON_UNKNOWN_ORDER);
    cr_assert_geq (refused.reject.last_seq, sell.ack.last_seq, "the refusal saw the trade");
    zsock_destroy (&client);
}
