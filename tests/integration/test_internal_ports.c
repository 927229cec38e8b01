/*  test_internal_ports — who may talk to whom, against the real matcher, settler and
    broadcaster with CURVE on (as every deployment runs them):

    - on every internal port (the matcher's commands, bus and replay; the settler's bus, replay
      and admin; the broadcaster's XPUB), an anonymous socket, a key pair no server lists, and a
      listed key that trusts the wrong server key all fail the handshake and get nothing;
    - after all of them, the matcher's bus holds no event of theirs: the first command on it
      is the one a process's key sent afterwards;
    - a monitor's key reads the bus and the XPUB, but a command it sends to the matcher is
      counted as refused and changes nothing, and the settler's admin port answers "forbidden"
      to anything but a list.

    Before CURVE (the issue that asked for it), an anonymous DEALER placed an order as another
    user, paused the market and read every event.
*/
#include "bus_sub.h"
#include "clock.h"
#include "harness.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

static harness_t s_h;
static int s_metrics_port;

static void s_fini (void)
{
    harness_cleanup (&s_h);
}

static void s_start (void)
{
    harness_init (&s_h, "markets = ( { id = \"campus-1\"; escrow = false; } );\n");
    s_metrics_port = s_h.port_native; //  free: no gateway here
    char port[16];
    snprintf (port, sizeof port, "%d", s_metrics_port);
    setenv ("MCE_MATCHER_METRICS_PORT", port, 1);
    setenv ("MCE_SETTLER_WALLETS", "keys_file", 1); //  no database: nothing is settled here
    int matcher = harness_start (&s_h, "mce-matcher");
    int settler = harness_start (&s_h, "mce-settler");
    int broadcaster = harness_start (&s_h, "mce-broadcaster");
    unsetenv ("MCE_MATCHER_METRICS_PORT");
    unsetenv ("MCE_SETTLER_WALLETS");
    cr_assert (harness_wait_log (&s_h, matcher, "commands on", HARNESS_DEADLINE_MS));
    cr_assert (harness_wait_log (&s_h, settler, "ready:", HARNESS_DEADLINE_MS));
    cr_assert (harness_wait_log (&s_h, broadcaster, "WebSocket on", HARNESS_DEADLINE_MS));
}

//  A port and the process that serves it.
typedef struct {
    const char *what;
    int type; //  our socket's type
    const char *server;
    int port;
} s_port_t;

//  How a client may present itself.
typedef enum { S_ANONYMOUS, S_STRANGER, S_WRONG_SERVER } s_client_t;

static const char *const s_client_names[] = {"anonymous", "unlisted key", "wrong server key"};

//  Makes a key pair the servers do not list: its own folder, then moved beside ours (so
//  harness_client finds it) without its public key.
static void s_make_stranger (void)
{
    char elsewhere[256], err[256], from[320], to[320];
    snprintf (elsewhere, sizeof elsewhere, "%s/elsewhere", s_h.dir);
    cr_assert_eq (curve_keys_make (elsewhere, "stranger", CURVE_ROLE_PROCESS, err, sizeof err), 1,
                  "%s", err);
    snprintf (from, sizeof from, "%s/stranger.secret", elsewhere);
    snprintf (to, sizeof to, "%s/keys/stranger.secret", s_h.dir);
    cr_assert_eq (rename (from, to), 0);
}

//  Connects as `client` to port p, sends what a client of it would (a command, a replay
//  request, a subscription) and waits for the handshake's end. True if it failed and nothing
//  came back.
static bool s_refused (const s_port_t *p, s_client_t client, int attempt)
{
    zsock_t *s = zsock_new (p->type);
    zsock_set_linger (s, 0);
    if (client == S_STRANGER)
        cr_assert_eq (harness_client (&s_h, s, "stranger", p->server), 0);
    else if (client == S_WRONG_SERVER) //  a listed key, trusting the key of another process
        cr_assert_eq (harness_client (&s_h, s, HARNESS_KEY,
                                      strcmp (p->server, "persister") ? "persister" : "gateway"),
                      0);
    char inproc[64];
    snprintf (inproc, sizeof inproc, "inproc://internal-%d", attempt);
    cr_assert_eq (zmq_socket_monitor (zsock_resolve (s), inproc,
                                      ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                          ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                          ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                          ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
                  0, "%s", zmq_strerror (zmq_errno ()));
    zsock_t *events = zsock_new_pair (inproc);
    zsock_set_rcvtimeo (events, HARNESS_DEADLINE_MS);
    cr_assert_eq (zsock_connect (s, "tcp://127.0.0.1:%d", p->port), 0);
    if (p->type == ZMQ_SUB)
        zsock_set_subscribe (s, "");
    else {
        //  a pause of the market (matcher), a retry (settler), a replay from 1 (replay)
        proto_msg_t m = {.kind = PROTO_market_control};
        m.market_control = (proto_market_control_t){.rid = 1,
                                                    .role = PROTO_ROLE_ADMIN,
                                                    .action = PROTO_CONTROL_ACTION_PAUSE_TRADING,
                                                    .ts = 1};
        snprintf (m.market_control.user, sizeof m.market_control.user, "mallory");
        snprintf (m.market_control.market, sizeof m.market_control.market, "campus-1");
        if (strstr (p->what, "replay")) {
            m = (proto_msg_t){.kind = PROTO_replay_req};
            m.replay_req.from = 1;
            m.replay_req.max = 100;
        }
        else if (strstr (p->what, "admin")) {
            m = (proto_msg_t){.kind = PROTO_settler_command};
            m.settler_command.rid = 1;
            m.settler_command.action = PROTO_SETTLER_ACTION_RETRY;
            m.settler_command.settlement_id = 1;
        }
        proto_buf_t buf;
        proto_buf_init (&buf);
        cr_assert_eq (proto_encode (&m, &buf), 0);
        zmq_send (zsock_resolve (s), buf.data, buf.len, ZMQ_DONTWAIT);
        proto_buf_free (&buf);
    }
    zframe_t *event = zframe_recv (events);
    cr_assert_not_null (event, "%s: no handshake outcome for %s", p->what, s_client_names[client]);
    uint16_t code;
    memcpy (&code, zframe_data (event), 2);
    zframe_destroy (&event);
    //  the socket holds nothing: no event, no answer (a refused peer is never read from)
    bool empty = !(zsock_events (s) & ZMQ_POLLIN);
    zmq_socket_monitor (zsock_resolve (s), NULL, 0);
    zsock_destroy (&events);
    zsock_destroy (&s);
    return code != ZMQ_EVENT_HANDSHAKE_SUCCEEDED && empty;
}

static long long s_matcher_metric (const char *name)
{
    char *body = NULL;
    long status = harness_http_port (s_metrics_port, "GET", "/metrics", NULL, &body);
    cr_assert_eq (status, 200);
    char needle[128];
    snprintf (needle, sizeof needle, "\n%s ", name);
    const char *at = body ? strstr (body, needle) : NULL;
    long long value = at ? atoll (at + strlen (needle)) : -1;
    free (body);
    return value;
}

//  A bus_sub on the matcher's bus with the monitor's key, and the first event of `kind`.
static proto_msg_t s_first_on_bus (proto_kind_t kind, uint64_t *seq)
{
    bus_sub_t *sub = harness_bus_sub (&s_h, "m", 0);
    cr_assert_not_null (sub);
    bus_event_t ev;
    do
        cr_assert_eq (bus_sub_recv (sub, &ev, HARNESS_DEADLINE_MS), 1, "the bus has no %s",
                      proto_kind_name (kind));
    while (ev.msg.kind != kind);
    proto_msg_t msg = ev.msg;
    *seq = ev.seq;
    bus_sub_destroy (&sub);
    return msg;
}

Test (internal_ports, strangers_get_nothing_and_change_nothing, .fini = s_fini, .timeout = 180)
{
    s_start ();
    s_make_stranger ();
    const s_port_t ports[] = {
        {"matcher commands", ZMQ_DEALER, "matcher", s_h.port_commands},
        {"matcher bus", ZMQ_SUB, "matcher", s_h.port_bus},
        {"matcher replay", ZMQ_DEALER, "matcher", s_h.port_replay},
        {"settler bus", ZMQ_SUB, "settler", s_h.port_settler_bus},
        {"settler replay", ZMQ_DEALER, "settler", s_h.port_settler_replay},
        {"settler admin", ZMQ_DEALER, "settler", s_h.port_settler_commands},
        {"broadcaster xpub", ZMQ_SUB, "broadcaster", s_h.port_xpub},
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++)
        for (s_client_t c = S_ANONYMOUS; c <= S_WRONG_SERVER; c++)
            cr_assert (s_refused (&ports[i], c, (int) (i * 3 + c)), "%s let %s in", ports[i].what,
                       s_client_names[c]);
    cr_assert_eq (s_matcher_metric ("mce_matcher_commands_total"), 0,
                  "the matcher read a command from a stranger");

    //  A process's key is served; its order is the first command on the bus.
    char commands[64];
    snprintf (commands, sizeof commands, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *gateway = harness_dealer (&s_h, "matcher", commands);
    zsock_set_rcvtimeo (gateway, HARNESS_DEADLINE_MS);
    harness_order (gateway, 7, "legit", true, 1000, 100000);
    zframe_t *reply = zframe_recv (gateway);
    cr_assert_not_null (reply, "a process's key gets an answer");
    zframe_destroy (&reply);
    zsock_destroy (&gateway);
    uint64_t seq;
    proto_msg_t first = s_first_on_bus (PROTO_new_order, &seq);
    cr_assert_str_eq (first.new_order.user, "legit");
    cr_assert_eq (first.new_order.rid, 7);
    proto_msg_t accepted = s_first_on_bus (PROTO_order_accepted, &seq);
    cr_assert_str_eq (accepted.order_accepted.market, "campus-1", "the market trades: not paused");
}

Test (internal_ports, a_monitor_watches_and_commands_nothing, .fini = s_fini, .timeout = 120)
{
    s_start ();
    char commands[64];
    snprintf (commands, sizeof commands, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *monitor = zsock_new (ZMQ_DEALER);
    cr_assert_eq (harness_client (&s_h, monitor, HARNESS_MONITOR, "matcher"), 0);
    cr_assert_eq (zsock_connect (monitor, "%s", commands), 0);
    long long events = s_matcher_metric ("mce_matcher_events_total");
    harness_order (monitor, 1, "victim", true, 1000, 100000);
    int64_t deadline = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (s_matcher_metric ("mce_matcher_refused_total") < 1 && clock_mono_ns () < deadline)
        ; //  each turn is an HTTP request: the poll paces itself
    cr_assert_eq (s_matcher_metric ("mce_matcher_refused_total"), 1);
    cr_assert_eq (s_matcher_metric ("mce_matcher_commands_total"), 1);
    cr_assert_eq (s_matcher_metric ("mce_matcher_events_total"), events, "nothing was journaled");
    cr_assert (!(zsock_events (monitor) & ZMQ_POLLIN), "no answer either");
    zsock_destroy (&monitor);

    //  the settler's admin port: a retry is forbidden, a list is answered
    char admin[64];
    snprintf (admin, sizeof admin, "tcp://127.0.0.1:%d", s_h.port_settler_commands);
    zsock_t *d = zsock_new (ZMQ_DEALER);
    cr_assert_eq (harness_client (&s_h, d, HARNESS_MONITOR, "settler"), 0);
    cr_assert_eq (zsock_connect (d, "%s", admin), 0);
    zsock_set_rcvtimeo (d, HARNESS_DEADLINE_MS);
    proto_settler_action_t actions[] = {PROTO_SETTLER_ACTION_RETRY, PROTO_SETTLER_ACTION_LIST};
    proto_settler_status_t expected[] = {PROTO_SETTLER_STATUS_FORBIDDEN, PROTO_SETTLER_STATUS_OK};
    for (int i = 0; i < 2; i++) {
        proto_msg_t m = {.kind = PROTO_settler_command};
        m.settler_command.rid = (uint64_t) i + 1;
        m.settler_command.action = actions[i];
        m.settler_command.settlement_id = 1;
        proto_buf_t buf;
        proto_buf_init (&buf);
        cr_assert_eq (proto_encode (&m, &buf), 0);
        cr_assert_eq (zmq_send (zsock_resolve (d), buf.data, buf.len, 0), (int) buf.len);
        proto_buf_free (&buf);
        proto_settler_reply_t last = {0};
        bool ended = false;
        while (!ended) { //  a list may come as several views, then the reply
            zframe_t *f = zframe_recv (d);
            cr_assert_not_null (f, "the admin port answers a monitor");
            proto_msg_t r;
            cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &r, NULL, 0), 0);
            zframe_destroy (&f);
            if (r.kind == PROTO_settler_reply) {
                last = r.settler_reply;
                ended = true;
            }
        }
        cr_assert_eq (last.status, expected[i], "%s answered %s",
                      proto_settler_action_name (actions[i]),
                      proto_settler_status_name (last.status));
    }
    zsock_destroy (&d);

    //  and the monitor's key reads the broadcaster's XPUB
    zsock_t *sub = zsock_new (ZMQ_SUB);
    cr_assert_eq (harness_client (&s_h, sub, HARNESS_MONITOR, "broadcaster"), 0);
    zsock_set_subscribe (sub, "ticker");
    zsock_set_rcvtimeo (sub, HARNESS_DEADLINE_MS);
    cr_assert_eq (zsock_connect (sub, "tcp://127.0.0.1:%d", s_h.port_xpub), 0);
    char *topic = NULL, *body = NULL;
    cr_assert_eq (zstr_recvx (sub, &topic, &body, NULL), 2, "a snapshot of the ticker");
    zstr_free (&topic);
    zstr_free (&body);
    zsock_destroy (&sub);
}
