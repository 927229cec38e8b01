/*  test_transfer_link — the settler's commands to the matcher and the answers it reads back,
    against a ROUTER standing where the matcher's command port would be: what goes out is a
    deposit_credit or a withdrawal_close whose rid names the transfer and what is asked, and
    every answer finds its transfer by that rid alone; answers that are not answers to us are
    dropped. (The real matcher answering them: tests/integration/test_settler_escrow*.c.)
*/
#include "transfer_link.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <string.h>
#include <unistd.h>

//  The ROUTER standing for the matcher, bound at endpoint once the link watches its own
//  handshake, and the wait for that handshake (ZMQ_IMMEDIATE refuses every send until it).
static zsock_t *s_router (transfer_link_t *link, const char *endpoint)
{
    void *sock = transfer_link_socket (link);
    cr_assert_eq (
        zmq_socket_monitor (sock, "inproc://test-transfer-link", ZMQ_EVENT_HANDSHAKE_SUCCEEDED), 0);
    zsock_t *events = zsock_new_pair (">inproc://test-transfer-link");
    cr_assert_not_null (events);
    zsock_set_rcvtimeo (events, 5000);
    zsock_t *r = zsock_new (ZMQ_ROUTER);
    cr_assert_geq (zsock_bind (r, "%s", endpoint), 0);
    zsock_set_rcvtimeo (r, 5000);
    zmsg_t *event = zmsg_recv (events);
    cr_assert_not_null (event, "the link connected");
    zmsg_destroy (&event);
    zmq_socket_monitor (sock, NULL, 0);
    zsock_destroy (&events);
    return r;
}

//  The next command at the ROUTER: its routing id (kept in *id) and the message.
static proto_msg_t s_command (zsock_t *router, zframe_t **id)
{
    zmsg_t *m = zmsg_recv (router);
    cr_assert_not_null (m, "a command came");
    cr_assert_eq (zmsg_size (m), 2);
    *id = zmsg_pop (m);
    zframe_t *body = zmsg_pop (m);
    proto_msg_t cmd;
    char err[160];
    cr_assert_eq (proto_decode (zframe_data (body), zframe_size (body), &cmd, err, sizeof err), 0,
                  "%s", err);
    zframe_destroy (&body);
    zmsg_destroy (&m);
    return cmd;
}

static void s_answer (zsock_t *router, zframe_t *id, const proto_msg_t *msg)
{
    zframe_send (&id, router, ZFRAME_MORE | ZFRAME_REUSE);
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (msg, &buf), 0);
    zframe_t *body = zframe_new (buf.data, buf.len);
    zframe_send (&body, router, 0);
    proto_buf_free (&buf);
}

//  The next answer of ours, waiting up to 5 s: what is dropped (not ours) can arrive ahead of
//  it, and then the socket is readable while the answer is still on its way.
static int s_recv (transfer_link_t *link, transfer_link_reply_t *r)
{
    int64_t deadline = zclock_mono () + 5000;
    for (;;) {
        zmq_pollitem_t item = {transfer_link_socket (link), 0, ZMQ_POLLIN, 0};
        int64_t left = deadline - zclock_mono ();
        zmq_poll (&item, 1, left > 0 ? (long) left : 0);
        int rc = transfer_link_recv (link, r);
        if (rc != 0 || zclock_mono () >= deadline)
            return rc;
    }
}

Test (transfer_link, commands_and_answers_by_rid)
{
    char endpoint[64];
    //  an endpoint nobody listens on yet: the link connects before the "matcher" binds
    snprintf (endpoint, sizeof endpoint, "ipc:///tmp/mce-test-transfer-link-%d", (int) getpid ());
    transfer_link_t *link = transfer_link_new (endpoint, NULL);
    cr_assert_not_null (link);
    zsock_t *router = s_router (link, endpoint);
    transfer_t dep = {
        .kind = PROTO_TRANSFER_KIND_DEPOSIT, .id = 42, .asset = PROTO_ASSET_ENERGY, .amount = 1500};
    snprintf (dep.user, sizeof dep.user, "carol");
    transfer_t wdr = {.kind = PROTO_TRANSFER_KIND_WITHDRAWAL,
                      .id = 7,
                      .asset = PROTO_ASSET_PAYMENT,
                      .amount = 250000};
    cr_assert_eq (transfer_link_send (link, TRANSFER_LINK_CREDIT, &dep), 0);
    zframe_t *id;
    proto_msg_t c = s_command (router, &id);
    cr_assert_eq (c.kind, PROTO_deposit_credit);
    cr_assert_eq (c.deposit_credit.deposit_id, 42);
    cr_assert_str_eq (c.deposit_credit.user, "carol");
    cr_assert_eq (c.deposit_credit.asset, PROTO_ASSET_ENERGY);
    cr_assert_eq (c.deposit_credit.amount, 1500);
    cr_assert_eq (c.deposit_credit.rid, 42 * 4 + TRANSFER_LINK_CREDIT);
    cr_assert_gt (c.deposit_credit.ts, 0);
    cr_assert_eq (transfer_link_send (link, TRANSFER_LINK_CLOSE, &wdr), 0);
    zframe_t *id2;
    proto_msg_t w = s_command (router, &id2);
    cr_assert_eq (w.kind, PROTO_withdrawal_close);
    cr_assert_eq (w.withdrawal_close.withdrawal_id, 7);
    cr_assert_not (w.withdrawal_close.refund);
    cr_assert_eq (transfer_link_send (link, TRANSFER_LINK_REFUND, &wdr), 0);
    zframe_t *id3;
    w = s_command (router, &id3);
    cr_assert (w.withdrawal_close.refund);
    cr_assert_eq (w.withdrawal_close.rid, 7 * 4 + TRANSFER_LINK_REFUND);

    //  answers, in any order, each found by its rid
    proto_msg_t a = {.kind = PROTO_ack};
    a.ack.rid = w.withdrawal_close.rid;
    a.ack.duplicate = true;
    s_answer (router, id, &a);
    proto_msg_t junk = {.kind = PROTO_heartbeat}; //  not an answer: dropped
    snprintf (junk.heartbeat.stream, sizeof junk.heartbeat.stream, "m");
    junk.heartbeat.ts = 1;
    s_answer (router, id, &junk);
    a.ack.rid = 100; //  no "what" in it: not one of ours, dropped
    a.ack.duplicate = false;
    s_answer (router, id, &a);
    proto_msg_t r = {.kind = PROTO_reject};
    r.reject.rid = c.deposit_credit.rid;
    r.reject.reason = PROTO_REJECT_REASON_OVERLOADED;
    snprintf (r.reject.message, sizeof r.reject.message, "busy");
    s_answer (router, id, &r);
    a.ack.rid = c.deposit_credit.rid;
    a.ack.seq = 991;
    s_answer (router, id, &a);
    transfer_link_reply_t got;
    cr_assert_eq (s_recv (link, &got), 1);
    cr_assert_eq (got.what, TRANSFER_LINK_REFUND);
    cr_assert_eq (got.id, 7);
    cr_assert (got.ack);
    cr_assert (got.duplicate);
    cr_assert_eq (s_recv (link, &got), 1, "the two that are not ours were skipped");
    cr_assert_eq (got.what, TRANSFER_LINK_CREDIT);
    cr_assert_eq (got.id, 42);
    cr_assert_not (got.ack);
    cr_assert_eq (got.reason, PROTO_REJECT_REASON_OVERLOADED);
    cr_assert_str_eq (got.message, "busy");
    cr_assert_eq (s_recv (link, &got), 1);
    cr_assert (got.ack);
    cr_assert_not (got.duplicate);
    cr_assert_eq (got.seq, 991);
    cr_assert_eq (transfer_link_recv (link, &got), 0, "nothing more");
    //  an id a rid cannot carry is not sent
    transfer_t huge = dep;
    huge.id = TRANSFER_LINK_ID_MAX + 1;
    cr_assert_eq (transfer_link_send (link, TRANSFER_LINK_CREDIT, &huge), -1);
    zframe_destroy (&id);
    zframe_destroy (&id2);
    zframe_destroy (&id3);
    transfer_link_destroy (&link);
    cr_assert_null (link);
    zsock_destroy (&router);
    unlink (endpoint + strlen ("ipc://"));
}

Test (transfer_link, no_matcher_no_queue)
{
    //  nothing listens: the command is refused at once rather than queued for later
    transfer_link_t *link = transfer_link_new ("tcp://127.0.0.1:1", NULL);
    cr_assert_not_null (link);
    transfer_t dep = {
        .kind = PROTO_TRANSFER_KIND_DEPOSIT, .id = 1, .asset = PROTO_ASSET_ENERGY, .amount = 1};
    cr_assert_eq (transfer_link_send (link, TRANSFER_LINK_CREDIT, &dep), -1);
    transfer_link_destroy (&link);
}
