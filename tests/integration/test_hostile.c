/*  test_hostile — what an outsider sends that we must not hold, believe or repeat, against the
    real gateway and matcher (and Postgres): each case is an attack that got through once.

    - two Content-Length headers that disagree: refused before any body is read (a proxy that
      read the other one would see a request smuggled inside this one);
    - control characters in a URL path: the access log quotes them escaped, so no forged line;
    - frames far larger than any message, on the native order port and on the matcher's
      command port: dropped from their header, never buffered (each process's peak memory is
      read from /proc), and the port still serves others;
    - control characters in the free text of an order on the native port: refused as HTTP
      refuses them; the native port spends the user's one rate limit, as HTTP does; and a
      native session ends when the token it signed in with expires;
    - a login flood: throttled per username and per address before any password is hashed,
      and hashing has its own bounded queue, so history and health answer all the while;
    - a slowloris (many connections from one address, each sending a header line now and
      then): its address is held to its connection limit, each connection is shut at its
      request deadline, and a client from another address is answered throughout.
*/
#include "auth.h"
#include "clock.h"
#include "harness.h"
#include "pgtest.h"
#include "proto.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <czmq.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pgtest_t s_server; //  the runner's (ReportHook), shared by the tests through the env
static harness_t s_h;
static char s_conninfo[PGTEST_CONNINFO_MAX];

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) || pgtest_export (&s_server))
        fprintf (stderr, "test_hostile: no PostgreSQL: the tests will fail\n");
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
    (void) stats;
    pgtest_stop (&s_server);
}

static void s_fini (void)
{
    harness_cleanup (&s_h);
}

//  A fresh database, a matcher and a gateway (its access log on by default). Returns the
//  gateway's index.
static int s_start (const char *db)
{
    pgtest_t pg;
    cr_assert_eq (pgtest_attach (&pg), 0, "no shared PostgreSQL");
    cr_assert_eq (pgtest_create_db (&pg, db, s_conninfo, sizeof s_conninfo), 0);
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; escrow = false; } );\n"
              "postgres = { url = \"%s\"; };\n",
              s_conninfo);
    harness_init (&s_h, config);
    harness_start (&s_h, "mce-matcher");
    int gateway = harness_start (&s_h, "mce-gateway");
    cr_assert (harness_wait_http (&s_h, "/api/health", HARNESS_DEADLINE_MS));
    return gateway;
}

//  s_start with settings from the environment for this gateway only: pairs of MCE_ variable
//  and value, NULL-terminated.
static int s_start_with (const char *db, const char *const *env)
{
    for (int i = 0; env[i]; i += 2)
        setenv (env[i], env[i + 1], 1);
    int gateway = s_start (db);
    for (int i = 0; env[i]; i += 2)
        unsetenv (env[i]);
    return gateway;
}

//  Sends raw bytes to the HTTP port and returns all the gateway answered before it closed
//  the connection or the deadline passed (to free).
static char *s_raw_http (const char *request)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert_geq (fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) s_h.port_http)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    cr_assert_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = HARNESS_DEADLINE_MS / 1000};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t len = strlen (request);
    cr_assert_eq (send (fd, request, len, MSG_NOSIGNAL), (ssize_t) len);
    size_t cap = 65536, got = 0;
    char *out = calloc (1, cap);
    ssize_t n;
    while (got < cap - 1 && (n = recv (fd, out + got, cap - 1 - got, 0)) > 0)
        got += (size_t) n;
    close (fd);
    return out;
}

Test (hostile, conflicting_content_lengths_are_refused_before_the_body, .fini = s_fini,
      .timeout = 120)
{
    s_start ("hostile_length");
    char *answer = s_raw_http ("POST /api/auth/login HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 2\r\n"
                               "Content-Length: 40\r\n"
                               "\r\n"
                               "{}");
    cr_assert_eq (strncmp (answer, "HTTP/1.1 400", 12), 0, "%s", answer);
    cr_assert_not_null (strstr (answer, "conflicting Content-Length"), "%s", answer);
    free (answer);
    //  the same length twice is one length
    answer = s_raw_http ("GET /api/health HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\n"
                         "Connection: close\r\n"
                         "Content-Length: 0\r\n"
                         "Content-Length: 0\r\n"
                         "\r\n");
    cr_assert_eq (strncmp (answer, "HTTP/1.1 200", 12), 0, "%s", answer);
    free (answer);
}

Test (hostile, control_characters_in_a_path_cannot_forge_a_log_line, .fini = s_fini, .timeout = 120)
{
    int gateway = s_start ("hostile_log");
    //  %0a is a newline once libmicrohttpd has decoded the path, %1b an ESC
    char *answer = s_raw_http ("GET /api/x%0a2026-12-07T00:00:00.000000Z%20ERROR%20mce-gateway%20"
                               "forged%1b[2J HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\n"
                               "Connection: close\r\n"
                               "\r\n");
    cr_assert_eq (strncmp (answer, "HTTP/1.1 404", 12), 0, "%s", answer);
    free (answer);
    //  the access line quotes the path escaped, and there is no line that starts as forged
    cr_assert (harness_wait_log (&s_h, gateway, "/api/x\\x0a2026-12-07T00:00:00.000000Z ERROR",
                                 HARNESS_DEADLINE_MS));
    cr_assert_eq (harness_count_log (&s_h, gateway, "\n2026-12-07T00:00:00.000000Z ERROR"), 0);
    cr_assert_eq (harness_count_log (&s_h, gateway, "\x1b"), 0);
}

//  The process's peak resident memory (VmHWM), in KiB.
static long s_peak_kib (pid_t pid)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen (path, "r");
    cr_assert_not_null (f, "%s", path);
    long kib = -1;
    while (fgets (line, sizeof line, f))
        if (sscanf (line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose (f);
    cr_assert_gt (kib, 0);
    return kib;
}

#define S_BIG_FRAME  (32 * 1024 * 1024)
#define S_BIG_FRAMES 4

//  Sends S_BIG_FRAMES frames of S_BIG_FRAME bytes on s and waits until the peer has dropped
//  the connection (a disconnection seen by a monitor) — what a refusal from the header does.
static void s_send_big_frames_until_dropped (zsock_t *s, const char *endpoint)
{
    zsock_t *monitor = zsock_new (ZMQ_PAIR);
    char inproc[64];
    snprintf (inproc, sizeof inproc, "inproc://hostile-monitor-%p", (void *) s);
    cr_assert_eq (zmq_socket_monitor (zsock_resolve (s), inproc, ZMQ_EVENT_DISCONNECTED), 0);
    cr_assert_eq (zsock_connect (monitor, "%s", inproc), 0);
    cr_assert_eq (zsock_connect (s, "%s", endpoint), 0);
    uint8_t *big = malloc (S_BIG_FRAME);
    memset (big, 0x41, S_BIG_FRAME);
    for (int i = 0; i < S_BIG_FRAMES; i++)
        zmq_send (zsock_resolve (s), big, S_BIG_FRAME, ZMQ_DONTWAIT);
    free (big);
    zsock_set_rcvtimeo (monitor, HARNESS_DEADLINE_MS);
    zframe_t *event = zframe_recv (monitor);
    cr_assert_not_null (event, "the peer never dropped the connection: it took the frames");
    uint16_t code;
    memcpy (&code, zframe_data (event), 2);
    cr_assert_eq (code, ZMQ_EVENT_DISCONNECTED);
    zframe_destroy (&event);
    zmq_socket_monitor (zsock_resolve (s), NULL, 0);
    zsock_destroy (&monitor);
}

//  A DEALER on the native port signed in with token.
static zsock_t *s_native (const char *token)
{
    zsock_t *native = zsock_new (ZMQ_DEALER);
    zsock_set_plain_username (native, "jwt");
    zsock_set_plain_password (native, token);
    zsock_set_linger (native, 0);
    zsock_set_rcvtimeo (native, HARNESS_DEADLINE_MS);
    cr_assert_eq (zsock_connect (native, "tcp://127.0.0.1:%d", s_h.port_native), 0);
    return native;
}

//  Sends cmd on the native port and returns its answer.
static proto_msg_t s_native_ask (zsock_t *native, const proto_msg_t *cmd)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (cmd, &buf), 0);
    cr_assert_eq (zmq_send (zsock_resolve (native), buf.data, buf.len, 0), (int) buf.len);
    proto_buf_free (&buf);
    zframe_t *f = zframe_recv (native);
    cr_assert_not_null (f, "no answer to %s %lu", proto_kind_name (cmd->kind),
                        (unsigned long) cmd->new_order.rid);
    proto_msg_t reply;
    cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
    zframe_destroy (&f);
    return reply;
}

//  Sends a limit buy (with coid and source when not NULL) and returns the answer.
static proto_msg_t s_native_order (zsock_t *native, uint64_t rid, const char *coid,
                                   const char *source)
{
    proto_msg_t cmd = {.kind = PROTO_new_order};
    cmd.new_order = (proto_new_order_t){.rid = rid,
                                        .side = PROTO_SIDE_BUY,
                                        .type = PROTO_ORDER_TYPE_LIMIT,
                                        .tif = PROTO_TIF_GTC,
                                        .qty = 1000,
                                        .price = 100000,
                                        .ts = 1};
    snprintf (cmd.new_order.user, sizeof cmd.new_order.user, "mallory");
    snprintf (cmd.new_order.market, sizeof cmd.new_order.market, "campus-1");
    snprintf (cmd.new_order.client_order_id, sizeof cmd.new_order.client_order_id, "%s",
              coid ? coid : "");
    snprintf (cmd.new_order.source, sizeof cmd.new_order.source, "%s", source ? source : "");
    return s_native_ask (native, &cmd);
}

Test (hostile, oversized_frames_are_dropped_unbuffered, .fini = s_fini, .timeout = 180)
{
    int gateway = s_start ("hostile_frames");
    int matcher = 0;
    harness_user_add (s_conninfo, "mallory", "user");
    char token[1024];
    harness_token ("mallory", "user", token, sizeof token);
    long gateway_before = s_peak_kib (s_h.procs[gateway].pid);
    long matcher_before = s_peak_kib (s_h.procs[matcher].pid);

    //  an ordinary user on the native order port
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_h.port_native);
    zsock_t *native = zsock_new (ZMQ_DEALER);
    zsock_set_plain_username (native, "jwt");
    zsock_set_plain_password (native, token);
    zsock_set_linger (native, 0);
    zsock_set_sndhwm (native, S_BIG_FRAMES + 1);
    s_send_big_frames_until_dropped (native, endpoint);
    zsock_destroy (&native);
    //  a process's key on the matcher's command port (a stranger does not get this far)
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *commands = zsock_new (ZMQ_DEALER);
    cr_assert_eq (harness_client (&s_h, commands, HARNESS_KEY, "matcher"), 0);
    zsock_set_linger (commands, 0);
    zsock_set_sndhwm (commands, S_BIG_FRAMES + 1);
    s_send_big_frames_until_dropped (commands, endpoint);
    zsock_destroy (&commands);

    long gateway_grew = s_peak_kib (s_h.procs[gateway].pid) - gateway_before;
    long matcher_grew = s_peak_kib (s_h.procs[matcher].pid) - matcher_before;
    cr_assert_lt (gateway_grew, S_BIG_FRAME / 2 / 1024, "the gateway's peak grew %ld KiB",
                  gateway_grew);
    cr_assert_lt (matcher_grew, S_BIG_FRAME / 2 / 1024, "the matcher's peak grew %ld KiB",
                  matcher_grew);

    //  and the native port still serves an order of the same user
    native = s_native (token);
    proto_msg_t reply = s_native_order (native, 1, NULL, NULL);
    cr_assert_eq (reply.kind, PROTO_ack, "%s", proto_kind_name (reply.kind));
    zsock_destroy (&native);
}

//  What HTTP refuses in free text, the native port refuses too: it reaches the bus, the
//  answers of other clients' tools and terminals all the same.
Test (hostile, the_native_port_refuses_control_characters_as_http_does, .fini = s_fini,
      .timeout = 120)
{
    s_start ("hostile_text");
    harness_user_add (s_conninfo, "mallory", "user");
    char token[1024];
    harness_token ("mallory", "user", token, sizeof token);
    zsock_t *native = s_native (token);
    proto_msg_t reply = s_native_order (native, 1, "bot\x1b[2J", NULL);
    cr_assert_eq (reply.kind, PROTO_reject, "%s", proto_kind_name (reply.kind));
    cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_MALFORMED);
    cr_assert_not_null (strstr (reply.reject.message, "client_order_id"), "%s",
                        reply.reject.message);
    reply = s_native_order (native, 2, NULL, "solar\nERROR");
    cr_assert_eq (reply.kind, PROTO_reject, "%s", proto_kind_name (reply.kind));
    cr_assert_not_null (strstr (reply.reject.message, "energy_source"), "%s", reply.reject.message);
    reply = s_native_order (native, 3, "bot-1", "solar");
    cr_assert_eq (reply.kind, PROTO_ack, "%s", proto_kind_name (reply.kind));
    zsock_destroy (&native);
}

//  POST /api/auth/login for user with a wrong password; the status.
static long s_login (const char *user)
{
    char body[160];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"wrong password 1\"}", user);
    harness_response_t r;
    long status = harness_request (
        s_h.port_http,
        &(harness_request_t){.method = "POST", .path = "/api/auth/login", .body = body}, &r);
    harness_response_free (&r);
    return status;
}

//  A gateway metric's value (the first sample of that name), or -1.
static long long s_metric (const char *name)
{
    char *body = NULL;
    long status = harness_http (&s_h, "GET", "/metrics", NULL, &body);
    cr_assert_eq (status, 200);
    long long value = -1;
    char needle[128];
    snprintf (needle, sizeof needle, "\n%s ", name);
    const char *at = body ? strstr (body, needle) : NULL;
    if (at)
        value = atoll (at + strlen (needle));
    free (body);
    return value;
}

Test (hostile, logins_are_throttled_per_username_and_address_before_hashing, .fini = s_fini,
      .timeout = 120)
{
    s_start_with ("hostile_logins",
                  (const char *[]){"MCE_GATEWAY_LOGINS_PER_MINUTE", "5",
                                   "MCE_GATEWAY_LOGINS_PER_MINUTE_ADDRESS", "12", NULL});
    //  a guesser at one username: five tries, then 429 with the wait
    for (int i = 0; i < 5; i++)
        cr_assert_eq (s_login ("victim"), 401, "try %d", i);
    harness_response_t r;
    harness_request (
        s_h.port_http,
        &(harness_request_t){.method = "POST",
                             .path = "/api/auth/login",
                             .body = "{\"username\":\"victim\",\"password\":\"x23456789\"}"},
        &r);
    cr_assert_eq (r.status, 429, "%s", r.body);
    char retry[16];
    cr_assert (harness_response_header (&r, "Retry-After", retry, sizeof retry));
    cr_assert_geq (atoi (retry), 1);
    cr_assert_leq (atoi (retry), 12, "a token of five a minute comes within 12 s: %s", retry);
    harness_response_free (&r);
    //  other usernames from the same address go on until the address's own limit
    int ok = 0;
    for (char name[32]; ok < 100; ok++) {
        snprintf (name, sizeof name, "other-%d", ok); //  each name within its own limit
        if (s_login (name) != 401)
            break;
    }
    cr_assert_eq (ok, 12 - 6, "the address had 12 a minute, 6 used on victim: %d more", ok);
    cr_assert_eq (s_login ("a-third-one"), 429, "the address is throttled whatever the name");
    cr_assert_geq (s_metric ("mce_gateway_logins_throttled_total"), 3);
}

static void *s_login_thread (void *arg)
{
    long *status = arg;
    *status = s_login ("nobody-here");
    return NULL;
}

#define S_FLOOD 24

//  Logins at argon2's real cost, more at once than the password queue holds: the excess is
//  refused at once (503 busy, counted), and history and health answer while the queue is
//  still full: they never wait behind password hashing.
Test (hostile, a_login_flood_never_delays_history_or_health, .fini = s_fini, .timeout = 180)
{
    s_start_with ("hostile_flood", (const char *[]){"MCE_GATEWAY_PASSWORD_COST", "interactive",
                                                    "MCE_GATEWAY_PASSWORD_QUEUE", "4", NULL});
    harness_user_add (s_conninfo, "patient", "user");
    char token[1024];
    harness_token ("patient", "user", token, sizeof token);

    pthread_t threads[S_FLOOD];
    long statuses[S_FLOOD];
    for (int i = 0; i < S_FLOOD; i++)
        cr_assert_eq (pthread_create (&threads[i], NULL, s_login_thread, &statuses[i]), 0);
    //  the queue fills (each hash takes tens of milliseconds at interactive cost)
    int64_t deadline = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (s_metric ("mce_gateway_password_busy_total") < 1 && clock_mono_ns () < deadline)
        ;
    cr_assert_geq (s_metric ("mce_gateway_password_busy_total"), 1, "the queue never filled");
    harness_response_t r;
    harness_request (s_h.port_http,
                     &(harness_request_t){
                         .method = "GET", .path = "/api/market/trades/my-history", .token = token},
                     &r);
    cr_assert_eq (r.status, 200, "%s", r.body);
    harness_response_free (&r);
    char *body = NULL;
    cr_assert_eq (harness_http (&s_h, "GET", "/api/health", NULL, &body), 200);
    free (body);
    cr_assert_gt (s_metric ("mce_gateway_password_jobs"), 0,
                  "history and health answered while logins were still being hashed");
    int busy = 0, refused = 0;
    for (int i = 0; i < S_FLOOD; i++) {
        pthread_join (threads[i], NULL);
        busy += statuses[i] == 503;
        refused += statuses[i] == 401;
        cr_assert (statuses[i] == 503 || statuses[i] == 401, "login %d: %ld", i, statuses[i]);
    }
    cr_assert_gt (busy, 0);
    cr_assert_gt (refused, 0);
    cr_assert_eq (s_metric ("mce_gateway_password_busy_total"), busy);
}

//  A TCP connection to the HTTP port from the loopback address `from` (127.0.0.x).
static int s_connect_from (const char *from)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert_geq (fd, 0);
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton (AF_INET, from, &local.sin_addr);
    cr_assert_eq (bind (fd, (struct sockaddr *) &local, sizeof local), 0, "bind %s", from);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) s_h.port_http)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    cr_assert_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = HARNESS_DEADLINE_MS / 1000};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

//  GET /api/health from `from`: the status line's code, 0 when the connection was closed
//  without an answer.
static int s_health_from (const char *from)
{
    int fd = s_connect_from (from);
    const char *request =
        "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    send (fd, request, strlen (request), MSG_NOSIGNAL);
    char answer[64] = "";
    ssize_t n = recv (fd, answer, sizeof answer - 1, 0);
    close (fd);
    int code = 0;
    if (n > 12)
        sscanf (answer, "HTTP/1.1 %d", &code);
    return code;
}

#define S_LORIS       60
#define S_LORIS_LIMIT 20

Test (hostile, a_slowloris_is_bounded_and_others_are_answered, .fini = s_fini, .timeout = 120)
{
    s_start_with ("hostile_loris",
                  (const char *[]){"MCE_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "20",
                                   "MCE_GATEWAY_REQUEST_DEADLINE_MS", "1500", NULL});
    //  the attacker, from 127.0.0.3: a request line and one header each, never the end
    int loris[S_LORIS];
    for (int i = 0; i < S_LORIS; i++) {
        loris[i] = s_connect_from ("127.0.0.3");
        const char *start = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        send (loris[i], start, strlen (start), MSG_NOSIGNAL);
    }
    //  the address gets its 20; the rest are refused as they come (counted)
    int64_t deadline = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (s_metric ("mce_gateway_connections_refused_total") < S_LORIS - S_LORIS_LIMIT &&
           clock_mono_ns () < deadline)
        ;
    cr_assert_eq (s_metric ("mce_gateway_connections_refused_total"), S_LORIS - S_LORIS_LIMIT);
    //  another address is answered meanwhile
    cr_assert_eq (s_health_from ("127.0.0.2"), 200);
    //  the attacker's connections are shut at their deadline: each reads end-of-stream
    for (int i = 0; i < S_LORIS; i++) {
        send (loris[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
        char byte;
        ssize_t n;
        while ((n = recv (loris[i], &byte, 1, 0)) > 0)
            ;
        cr_assert_eq (n, 0, "connection %d: %s", i, n < 0 ? strerror (errno) : "");
        close (loris[i]);
    }
    cr_assert_eq (s_metric ("mce_gateway_request_deadline_total"), S_LORIS_LIMIT);
    //  and the address may connect again
    cr_assert_eq (s_health_from ("127.0.0.3"), 200);
    cr_assert_eq (s_health_from ("127.0.0.2"), 200);
}

//  The native port has no rate of its own: it takes from the user's one bucket, as HTTP does,
//  and answers rate_limited past it; HTTP then finds the same bucket empty.
Test (hostile, the_native_port_spends_the_users_one_rate_limit, .fini = s_fini, .timeout = 120)
{
    s_start_with ("hostile_native_rate", (const char *[]){"MCE_GATEWAY_RATE_PER_S", "1",
                                                          "MCE_GATEWAY_RATE_BURST", "10", NULL});
    harness_user_add (s_conninfo, "mallory", "user");
    char token[1024];
    harness_token ("mallory", "user", token, sizeof token);
    zsock_t *native = s_native (token);
    int acked = 0, limited = 0;
    for (uint64_t rid = 1; rid <= 40; rid++) {
        proto_msg_t reply = s_native_order (native, rid, NULL, NULL);
        if (reply.kind == PROTO_ack)
            acked++;
        else {
            cr_assert_eq (reply.kind, PROTO_reject, "%s", proto_kind_name (reply.kind));
            cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_RATE_LIMITED, "%s",
                          reply.reject.message);
            limited++;
        }
    }
    zsock_destroy (&native);
    //  the burst of 10, and at most the few a second refills meanwhile
    cr_assert_geq (acked, 10);
    cr_assert_lt (acked, 20, "%d orders went through a limit of 10 and 1 a second", acked);
    cr_assert_eq (acked + limited, 40);
    harness_response_t r;
    harness_request (
        s_h.port_http,
        &(harness_request_t){.method = "GET", .path = "/api/trading/orders", .token = token}, &r);
    cr_assert_eq (r.status, 429, "the same bucket over HTTP: %s", r.body);
    harness_response_free (&r);
    cr_assert_geq (s_metric ("mce_gateway_rate_limited_total"), limited + 1);
}

//  A cancel of an order that does not exist: changes nothing, and is answered.
static proto_msg_t s_native_cancel (zsock_t *native, uint64_t rid)
{
    proto_msg_t cmd = {.kind = PROTO_cancel_order};
    cmd.cancel_order.rid = rid;
    cmd.cancel_order.order_id = 999999;
    cmd.cancel_order.ts = 1;
    snprintf (cmd.cancel_order.user, sizeof cmd.cancel_order.user, "mallory");
    snprintf (cmd.cancel_order.market, sizeof cmd.cancel_order.market, "campus-1");
    return s_native_ask (native, &cmd);
}

//  ZeroMQ authenticates a connection once; the session must still end with its token.
Test (hostile, a_native_session_ends_when_its_token_expires, .fini = s_fini, .timeout = 120)
{
    s_start ("hostile_session");
    harness_user_add (s_conninfo, "mallory", "user");
    int64_t now_s = clock_wall_ns () / MCE_NS_PER_SEC;
    auth_claims_t claims = {.role = PROTO_ROLE_USER, .iat = now_s, .exp = now_s + 2};
    snprintf (claims.sub, sizeof claims.sub, "mallory");
    char token[AUTH_JWT_MAX + 1];
    cr_assert_eq (auth_jwt_mint ((const uint8_t *) HARNESS_JWT_SECRET, strlen (HARNESS_JWT_SECRET),
                                 &claims, token, sizeof token),
                  0);
    zsock_t *native = s_native (token);
    cr_assert_eq (s_native_order (native, 1, NULL, NULL).kind, PROTO_ack, "trades while valid");
    //  the session goes on being answered until its token expires, then every command is
    //  refused (polled every 50 ms, for at most the token's life and the deadline)
    int64_t deadline = clock_mono_ns () + (int64_t) (2000 + HARNESS_DEADLINE_MS) * MCE_NS_PER_MSEC;
    proto_msg_t reply;
    uint64_t rid = 2;
    do {
        reply = s_native_cancel (native, rid++);
        if (reply.kind == PROTO_reject &&
            reply.reject.reason == PROTO_REJECT_REASON_SESSION_EXPIRED)
            break;
        cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_UNKNOWN_ORDER, "%s",
                      reply.reject.message);
        poll (NULL, 0, 50);
    } while (clock_mono_ns () < deadline);
    cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_SESSION_EXPIRED,
                  "the session outlived its token");
    cr_assert_geq (clock_wall_ns () / MCE_NS_PER_SEC, claims.exp, "not before its expiry");
    reply = s_native_order (native, rid, NULL, NULL);
    cr_assert_eq (reply.kind, PROTO_reject);
    cr_assert_eq (reply.reject.reason, PROTO_REJECT_REASON_SESSION_EXPIRED, "orders too");
    zsock_destroy (&native);
    //  a fresh token opens a new session
    harness_token ("mallory", "user", token, sizeof token);
    native = s_native (token);
    cr_assert_eq (s_native_order (native, 100, NULL, NULL).kind, PROTO_ack);
    zsock_destroy (&native);
}
