/*  test_matcher_flood — hostile clients never stall the matcher for the others: one sends
    10 000 commands and never reads a reply, another sends garbage of every shape (not
    msgpack, wrong types, an unknown message, too many frames) and a third a frame longer than
    any command, which ZeroMQ refuses from its header (ZMQ_MAXMSGSIZE) and so never reaches
    the matcher; a well-behaved client is answered all the while.
*/
#include "harness.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <signal.h>
#include <string.h>

static harness_t s_h;

static void s_fini (void)
{
    harness_cleanup (&s_h);
}

//  Never crossing (bids at 0.14, asks at 0.16): every order rests.
static void s_order (zsock_t *sock, uint64_t rid, const char *user)
{
    harness_order (sock, rid, user, rid % 2, 1000, rid % 2 ? 140000 : 160000);
}

Test (matcher_flood, hostile_clients_do_not_stall_the_others, .fini = s_fini, .timeout = 120)
{
    harness_init (&s_h, "markets = ( { id = \"campus-1\"; tick = \"0.001\"; "
                        "epoch_seconds = 2592000; escrow = false; } );\n");
    int m = harness_start (&s_h, "mce-matcher");
    cr_assert (harness_wait_log (&s_h, m, "commands on", HARNESS_DEADLINE_MS));
    char commands[64];
    snprintf (commands, sizeof commands, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *flood = zsock_new (ZMQ_DEALER);
    zsock_set_sndhwm (flood, 0);
    zsock_set_rcvhwm (flood, 10); //  it never reads: replies pile up until dropped
    cr_assert_eq (harness_client (&s_h, flood, HARNESS_KEY, "matcher"), 0);
    zsock_connect (flood, "%s", commands);
    zsock_t *junk = harness_dealer (&s_h, "matcher", commands);
    zsock_t *big = harness_dealer (&s_h, "matcher", commands);
    zsock_t *good = harness_dealer (&s_h, "matcher", commands);
    zsock_set_rcvtimeo (good, HARNESS_DEADLINE_MS);

    for (uint64_t i = 1; i <= 10000; i++)
        s_order (flood, i, "flooder");
    //  Garbage of every shape.
    zstr_send (junk, "not msgpack");
    zstr_sendm (junk, "two");
    zstr_send (junk, "frames");
    char huge[70000];
    memset (huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    zstr_send (big, huge); //  its connection is dropped; it is never a command
    proto_msg_t wrong = {.kind = PROTO_heartbeat}; //  a message the matcher does not take
    snprintf (wrong.heartbeat.stream, sizeof wrong.heartbeat.stream, "m");
    proto_buf_t buf;
    proto_buf_init (&buf);
    proto_encode (&wrong, &buf);
    zmq_send (zsock_resolve (junk), buf.data, buf.len, 0);
    proto_buf_free (&buf);

    //  The well-behaved client is answered, order after order, while all that goes on.
    for (uint64_t i = 1; i <= 100; i++) {
        s_order (good, 1000000 + i, "good");
        zframe_t *reply = zframe_recv (good);
        cr_assert_not_null (reply, "the good client's order %lu got no answer", (unsigned long) i);
        proto_msg_t msg;
        cr_assert_eq (proto_decode (zframe_data (reply), zframe_size (reply), &msg, NULL, 0), 0);
        cr_assert_eq (msg.kind, PROTO_ack);
        cr_assert_eq (msg.ack.rid, 1000000 + i);
        zframe_destroy (&reply);
    }
    cr_assert (harness_wait_log (&s_h, m, "dropped malformed command #3", HARNESS_DEADLINE_MS),
               "each piece of garbage is counted and logged");
    //  And every command was taken in: 10 000 + 100 orders and 3 malformed ones.
    zsock_destroy (&flood);
    zsock_destroy (&junk);
    zsock_destroy (&big);
    zsock_destroy (&good);
    harness_stop (&s_h, m, SIGTERM);
    cr_assert (harness_wait_log (&s_h, m, "after 10103 commands", HARNESS_DEADLINE_MS));
}
