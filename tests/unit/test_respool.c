/*  test_respool — pooled libmicrohttpd responses: reused per body length, bounded, and every
    answer a real daemon sends from one carries its own body and the pool's headers, also when
    requests are pipelined on one connection. */
#include "respool.h"

#include <criterion/criterion.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void s_dress (struct MHD_Response *r)
{
    MHD_add_response_header (r, "Content-Type", "application/json");
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
}

Test (respool, reuses_a_response_per_length_and_bounds_the_idle_ones)
{
    respool_t *pool = respool_new (64, 2, s_dress);
    cr_assert_null (respool_take (pool, "", 0), "nothing to pool in an empty body");
    char big[65] = {0};
    memset (big, 'x', 64);
    respool_entry_t *whole = respool_take (pool, big, 64);
    cr_assert_not_null (whole);
    cr_assert_null (respool_take (pool, big, 65), "over max_len: the caller makes its own");
    cr_assert_eq (respool_in_use (pool), 1);

    respool_entry_t *a = respool_take (pool, "abc", 3);
    struct MHD_Response *first = respool_response (a);
    cr_assert_str_eq (MHD_get_response_header (first, "X-Content-Type-Options"), "nosniff");
    respool_give (pool, a);
    respool_entry_t *b = respool_take (pool, "xyz", 3);
    cr_assert_eq (respool_response (b), first, "the same length takes the idle response");
    respool_entry_t *c = respool_take (pool, "xyz", 3);
    cr_assert_neq (respool_response (c), first, "one in use is never handed out twice");
    respool_entry_t *d = respool_take (pool, "wxyz", 4);
    cr_assert_eq (respool_made (pool), 4);
    cr_assert_eq (respool_in_use (pool), 4);

    //  Four given back, two kept idle: the others are destroyed.
    respool_give (pool, b);
    respool_give (pool, c);
    respool_give (pool, d);
    cr_assert_eq (respool_in_use (pool), 1);
    cr_assert_eq (respool_made (pool), 3, "at most 2 idle, plus the one still in use");
    respool_give (pool, whole);
    respool_destroy (&pool);
    cr_assert_null (pool);
}

//  A daemon whose every answer is {"n":<the number in the URL, 6 digits>}, from the pool.
static respool_t *s_pool;
static int s_headers_in; //  *con_cls between the two calls: no entry yet

static enum MHD_Result s_answer (void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    (void) cls, (void) method, (void) version, (void) upload, (void) upload_size;
    if (!*con_cls) { //  the headers are in; answer on the next call, as the gateway does
        *con_cls = &s_headers_in;
        return MHD_YES;
    }
    char body[32];
    int len = snprintf (body, sizeof body, "{\"n\":%06ld}", strtol (url + 1, NULL, 10));
    respool_entry_t *entry = respool_take (s_pool, body, (size_t) len);
    if (!entry)
        return MHD_NO;
    *con_cls = entry;
    return MHD_queue_response (connection, MHD_HTTP_OK, respool_response (entry));
}

static void s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void) cls, (void) connection, (void) toe;
    if (*con_cls && *con_cls != &s_headers_in)
        respool_give (s_pool, *con_cls);
    *con_cls = NULL;
}

//  Reads one response; returns its body (static) after checking the headers.
static const char *s_read_response (int fd, char *buf, size_t size, size_t *have)
{
    static char body[64];
    for (;;) {
        buf[*have] = '\0';
        char *end = strstr (buf, "\r\n\r\n");
        if (end) {
            char *cl = strcasestr (buf, "Content-Length: ");
            cr_assert (cl && cl < end);
            size_t len = (size_t) strtoul (cl + 16, NULL, 10);
            size_t head = (size_t) (end + 4 - buf);
            if (*have >= head + len) {
                cr_assert (strncmp (buf, "HTTP/1.1 200", 12) == 0);
                char *nosniff = strstr (buf, "X-Content-Type-Options: nosniff");
                cr_assert (nosniff && nosniff < end, "the pooled headers go out every time");
                cr_assert_lt (len, sizeof body);
                memcpy (body, buf + head, len);
                body[len] = '\0';
                memmove (buf, buf + head + len, *have - head - len);
                *have -= head + len;
                return body;
            }
        }
        ssize_t got = recv (fd, buf + *have, size - 1 - *have, 0);
        cr_assert_gt (got, 0, "the daemon answers");
        *have += (size_t) got;
    }
}

Test (respool, a_daemon_sends_each_request_its_own_body)
{
    s_pool = respool_new (64, 16, s_dress);
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_answer,
        NULL, MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL, MHD_OPTION_END);
    cr_assert_not_null (daemon);
    uint16_t port = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT)->port;

    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons (port)};
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    cr_assert_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char buf[8192];
    size_t have = 0;
    //  One at a time, then in bursts of five pipelined requests on the same connection.
    int n = 0;
    for (int round = 0; round < 40; round++) {
        int burst = round < 20 ? 1 : 5;
        char req[1024];
        size_t len = 0;
        for (int i = 0; i < burst; i++)
            len += (size_t) snprintf (req + len, sizeof req - len,
                                      "GET /%d HTTP/1.1\r\nHost: test\r\n\r\n", n + i);
        cr_assert_eq (send (fd, req, len, 0), (ssize_t) len);
        for (int i = 0; i < burst; i++, n++) {
            char want[32];
            snprintf (want, sizeof want, "{\"n\":%06d}", n);
            cr_assert_str_eq (s_read_response (fd, buf, sizeof buf, &have), want);
        }
    }
    close (fd);
    MHD_stop_daemon (daemon);
    cr_assert_eq (respool_in_use (s_pool), 0, "every request completed gave its entry back");
    cr_assert_leq (respool_made (s_pool), 6, "120 answers from a handful of responses");
    respool_destroy (&s_pool);
}
