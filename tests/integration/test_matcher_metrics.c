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

Test (matcher_metrics, counts_commands_trades_and_batches, .fini = s_fini, .timeout = 60)
{
    harness_init (&s_h, "markets = ( { id = \"campus-1\"; tick = \"0.001\"; "
                        "epoch_seconds = 2592000; } );\n");
    int port = s_h.port_xpub; //  free, and unused here (no broadcaster)
    char value[16];
    snprintf (value, sizeof value, "%d", port);
    setenv ("MCE_MATCHER_METRICS_PORT", value, 1);
    int m = harness_start (&s_h, "mce-matcher");
    unsetenv ("MCE_MATCHER_METRICS_PORT");
    cr_assert (harness_wait_log (&s_h, m, "metrics on", HARNESS_DEADLINE_MS));
    char commands[64];
    snprintf (commands, sizeof commands, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *client = zsock_new_dealer (commands);
    zsock_set_rcvtimeo (client, HARNESS_DEADLINE_MS);
    //  A buy, then a sell that trades with it; and one malformed frame.
    for (int i = 0; i < 2; i++) {
        harness_order (client, (uint64_t) i + 1, i ? "u1" : "u0", i == 0, 1000, 150000);
        zframe_t *reply = zframe_recv (client);
        cr_assert_not_null (reply);
        zframe_destroy (&reply);
    }
    zstr_send (client, "garbage");
    cr_assert (harness_wait_log (&s_h, m, "dropped malformed command #1", HARNESS_DEADLINE_MS));
    char *body = NULL;
    cr_assert_eq (harness_http_port (port, "GET", "/metrics", NULL, &body), 200);
    s_expect_line (body, "mce_matcher_commands_total 3");
    s_expect_line (body, "mce_matcher_malformed_total 1");
    s_expect_line (body, "mce_matcher_trades_total 1");
    s_expect_line (body, "mce_matcher_resting_orders 0");
    s_expect_line (body, "# TYPE mce_matcher_batch_commands histogram");
    s_expect_line (body, "mce_matcher_batch_commands_bucket{le=\"+Inf\"}");
    s_expect_line (body, "# TYPE mce_matcher_commit_seconds histogram");
    cr_assert_not_null (strstr (body, "mce_matcher_last_seq "));
    free (body);
    cr_assert_eq (harness_http_port (port, "GET", "/nowhere", NULL, &body), 404);
    free (body);
    zsock_destroy (&client);
}
