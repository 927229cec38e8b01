/*  test_skeleton — the walking skeleton, end to end with the real executables: an order
    posted over HTTP reaches the matcher, is journaled and acknowledged, and its event reaches
    the settler and the broadcaster, each logging its seq (the persister writes Postgres: it
    has its own test). Bad input on every door is refused with a clear answer and changes
    nothing. The gateway alone has a Postgres, where its user "demo" is registered: a gateway
    takes tokens of registered users only.
*/
#include "bus_sub.h"
#include "harness.h"
#include "pgtest.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <signal.h>
#include <string.h>

static harness_t s_h;
static bus_sub_t *s_sub;
static pgtest_t s_pg;

//  The "seq" of a JSON reply body.
static uint64_t s_json_seq (const char *body)
{
    const char *p = strstr (body, "\"seq\":");
    cr_assert_not_null (p, "no seq in %s", body);
    return strtoull (p + 6, NULL, 10);
}

//  The next bus event of a kind (bus_sub hands them over gap-free and in order).
static void s_next_of (bus_sub_t *sub, proto_kind_t kind, bus_event_t *ev)
{
    for (;;) {
        cr_assert_eq (bus_sub_recv (sub, ev, HARNESS_DEADLINE_MS), 1, "no %s on the bus",
                      proto_kind_name (kind));
        if (ev->msg.kind == kind)
            return;
    }
}

static void s_fini (void)
{
    bus_sub_destroy (&s_sub);
    harness_cleanup (&s_h);
    pgtest_stop (&s_pg);
}

//  POST /api/trading/orders as the user "demo"; returns the status, the body in *body.
static long s_post_order (const char *json, char **body)
{
    char token[1024];
    harness_response_t resp;
    long status = harness_request (
        s_h.port_http,
        &(harness_request_t){.method = "POST",
                             .path = "/api/trading/orders",
                             .token = harness_token ("demo", "user", token, sizeof token),
                             .body = json},
        &resp);
    free (resp.headers);
    *body = resp.body;
    return status;
}

Test (skeleton, one_order_travels_the_whole_pipeline, .fini = s_fini, .timeout = 120)
{
    //  A 30-day epoch: no gate closure can fall inside the test and expire its orders.
    harness_init (&s_h, "markets = ( { id = \"campus-1\"; tick = \"0.01\"; "
                        "epoch_seconds = 2592000; escrow = false; } );");
    int matcher = harness_start (&s_h, "mce-matcher");
    //  the settler names each matcher event it takes at debug level
    setenv ("MCE_LOG_LEVEL", "debug", 1);
    int settler = harness_start (&s_h, "mce-settler");
    unsetenv ("MCE_LOG_LEVEL");
    setenv ("MCE_LOG_LEVEL", "debug", 1); //  the broadcaster logs each event at debug
    int broadcaster = harness_start (&s_h, "mce-broadcaster");
    unsetenv ("MCE_LOG_LEVEL");
    cr_assert_eq (pgtest_start (&s_pg, NULL), 0);
    harness_user_add (s_pg.conninfo, "demo", "user");
    setenv ("MCE_POSTGRES_URL", s_pg.conninfo, 1);
    int gateway = harness_start (&s_h, "mce-gateway");
    unsetenv ("MCE_POSTGRES_URL");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS),
               "gateway never came up");
    (void) gateway;

    //  Our own consumer of the matcher bus, as any monitoring tool would be.
    bus_sub_t *sub = s_sub = harness_bus_sub (&s_h, "m", 0);

    char token[1024];
    harness_response_t resp;
    long status = harness_request (
        s_h.port_http,
        &(harness_request_t){.method = "POST",
                             .path = "/api/trading/orders",
                             .token = harness_token ("demo", "user", token, sizeof token),
                             .body = "{\"market\":\"campus-1\",\"side\":\"Buy\",\"order_type\":"
                                     "\"Limit\",\"energy_amount\":\"12.5\",\"price\":\"0.15\"}"},
        &resp);
    char *body = resp.body;
    free (resp.headers);
    cr_assert_eq (status, 201, "POST answered %ld: %s", status, body);
    cr_assert_not_null (strstr (body, "\"order_id\":\"1\""), "%s", body);
    cr_assert_not_null (strstr (body, "\"status\":\"open\""), "%s", body);
    cr_assert_not_null (strstr (body, "\"remaining_amount\":\"12.5\""), "%s", body);
    uint64_t acked_seq = s_json_seq (body);
    free (body);

    //  On the bus: the command, then its event, at the seq the reply named.
    bus_event_t ev;
    s_next_of (sub, PROTO_new_order, &ev);
    cr_assert_str_eq (ev.msg.new_order.user, "demo");
    s_next_of (sub, PROTO_order_accepted, &ev);
    cr_assert_eq (ev.seq, acked_seq, "the ack names the event's seq");
    cr_assert_eq (ev.msg.order_accepted.order_id, 1);
    cr_assert_eq (ev.msg.order_accepted.qty, 12500, "12.5 kWh = 12500 Wh");
    cr_assert_eq (ev.msg.order_accepted.price, 150000, "0.15 = 150000 µ/kWh");
    cr_assert_eq (ev.msg.order_accepted.side, PROTO_SIDE_BUY);
    cr_assert_str_eq (ev.msg.order_accepted.market, "campus-1");

    char line[96];
    snprintf (line, sizeof line, "stream m event seq %llu: order_accepted market campus-1",
              (unsigned long long) acked_seq);
    cr_assert (harness_wait_log (&s_h, settler, line, HARNESS_DEADLINE_MS));
    cr_assert (harness_wait_log (&s_h, broadcaster, line, HARNESS_DEADLINE_MS));

    //  The matcher's own rules (the gateway checks the market's limits, the matcher the
    //  epoch window): an epoch far ahead is refused, and the refusal is an event.
    status = s_post_order ("{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":1,"
                           "\"price\":\"0.15\",\"epoch\":99999999}",
                           &body);
    cr_assert_eq (status, 422, "%ld: %s", status, body);
    cr_assert_not_null (strstr (body, "\"code\":\"epoch_too_far\""), "%s", body);
    free (body);
    s_next_of (sub, PROTO_order_rejected, &ev);
    cr_assert_eq (ev.msg.order_rejected.reason, PROTO_REJECT_REASON_EPOCH_TOO_FAR);

    //  Garbage on the matcher's command port is counted, logged with its peer, and dropped.
    char commands[64];
    snprintf (commands, sizeof commands, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *raw = harness_dealer (&s_h, "matcher", commands);
    zstr_send (raw, "\xc1\xff not msgpack");
    cr_assert (harness_wait_log (&s_h, matcher, "dropped malformed command #1 from 127.0.0.1",
                                 HARNESS_DEADLINE_MS));
    zsock_destroy (&raw);

    //  ...and the matcher goes on.
    status = s_post_order ("{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":\"2.25\","
                           "\"price\":\"0.2\"}",
                           &body);
    cr_assert_eq (status, 201, "%ld: %s", status, body);
    cr_assert_not_null (strstr (body, "\"order_id\":\"2\""), "%s", body);
    uint64_t second_seq = s_json_seq (body);
    free (body);
    s_next_of (sub, PROTO_order_accepted, &ev);
    cr_assert_eq (ev.seq, second_seq);
    cr_assert_eq (ev.msg.order_accepted.qty, 2250);

    //  A killed consumer that comes back catches up by replay: it sees every seq again
    //  (the broadcaster stores no offset) and nothing twice.
    snprintf (line, sizeof line, "stream m event seq %llu:", (unsigned long long) second_seq);
    cr_assert (harness_wait_log (&s_h, broadcaster, line, HARNESS_DEADLINE_MS));
    harness_stop (&s_h, broadcaster, SIGKILL);
    setenv ("MCE_LOG_LEVEL", "debug", 1);
    int broadcaster2 = harness_start (&s_h, "mce-broadcaster");
    unsetenv ("MCE_LOG_LEVEL");
    cr_assert (harness_wait_log_count (&s_h, broadcaster2, line, 2, HARNESS_DEADLINE_MS),
               "once before the kill, once after it (same log file)");
    cr_assert_eq (harness_count_log (&s_h, broadcaster2, "stream m event seq 1:"), 2,
                  "and each seq once per run, never twice");

    //  A matcher killed with -9 rebuilds its books by replaying its journal, and the same
    //  books answer: order 3 is next, and seqs go on without a gap (bus_sub would stall).
    cr_assert_eq (WTERMSIG (harness_stop (&s_h, matcher, SIGKILL)), SIGKILL);
    matcher = harness_start (&s_h, "mce-matcher");
    cr_assert (harness_wait_log (&s_h, matcher, "2 orders resting", HARNESS_DEADLINE_MS));
    status = s_post_order ("{\"market\":\"campus-1\",\"side\":\"Sell\",\"energy_amount\":\"1\","
                           "\"price\":\"0.15\"}",
                           &body);
    cr_assert_eq (status, 201, "%ld: %s", status, body);
    cr_assert_not_null (strstr (body, "\"order_id\":\"3\""), "%s", body);
    free (body);
    //  Every HTTP order is the skeleton user's, so it meets its own order 1 at 0.15: the rebuilt
    //  book shows by self-trade prevention cancelling that order.
    s_next_of (sub, PROTO_order_cancelled, &ev);
    cr_assert_eq (ev.msg.order_cancelled.order_id, 1);
    cr_assert_eq (ev.msg.order_cancelled.reason, PROTO_CANCEL_REASON_SELF_TRADE);
    cr_assert_eq (ev.msg.order_cancelled.remaining, 12500);
}

Test (cli, every_executable_helps_and_checks_its_config, .timeout = 60)
{
    static const char *exes[] = {"mce-gateway", "mce-matcher", "mce-settler", "mce-persister",
                                 "mce-broadcaster"};
    char bad[] = "/tmp/mce-bad-cfg-XXXXXX";
    int fd = mkstemp (bad);
    const char *text = "matcher = { fsync = \"sometimes\"; };\n";
    cr_assert_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    for (size_t i = 0; i < 5; i++) {
        char *out;
        cr_assert_eq (harness_run (exes[i], (const char *[]){"--help", NULL}, &out), 0);
        cr_assert_not_null (strstr (out, "--check-config"), "%s --help: %s", exes[i], out);
        free (out);
        cr_assert_eq (harness_run (exes[i], (const char *[]){"--version", NULL}, &out), 0);
        cr_assert_not_null (strstr (out, MCE_VERSION), "%s", out);
        free (out);
        cr_assert_eq (harness_run (exes[i], (const char *[]){"--check-config", NULL}, &out), 0,
                      "%s", out);
        free (out);
        cr_assert_eq (harness_run (exes[i], (const char *[]){"-c", bad, NULL}, &out), 2);
        cr_assert_not_null (strstr (out, "matcher.fsync"), "%s names the key: %s", exes[i], out);
        free (out);
        cr_assert_eq (harness_run (exes[i], (const char *[]){"-c", "/nonexistent.cfg", NULL}, &out),
                      2);
        cr_assert_not_null (strstr (out, "/nonexistent.cfg"), "%s", out);
        free (out);
        cr_assert_eq (harness_run (exes[i], (const char *[]){"--bogus", NULL}, &out), 2);
        free (out);
    }
    unlink (bad);
}
