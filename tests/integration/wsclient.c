/*  wsclient — see wsclient.h.  */
#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct _wsclient_t {
    int fd;
    unsigned char *buf; //  bytes received and not yet parsed
    size_t len, cap;
    char *msg; //  the last message returned
    int close_code;
    char close_reason[128];
};

static int64_t s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Reads more bytes within the deadline. 1 read, 0 timeout, -1 closed or error.
static int s_fill (wsclient_t *self, int64_t deadline)
{
    int64_t left = deadline - s_now_ms ();
    if (left < 0)
        return 0;
    struct pollfd p = {.fd = self->fd, .events = POLLIN};
    int rc = poll (&p, 1, (int) left);
    if (rc <= 0)
        return rc < 0 && errno != EINTR ? -1 : 0;
    if (self->cap - self->len < 65536) {
        size_t cap = self->cap ? self->cap * 2 : 131072;
        unsigned char *bigger = realloc (self->buf, cap);
        if (!bigger)
            return -1;
        self->buf = bigger;
        self->cap = cap;
    }
    ssize_t got = recv (self->fd, self->buf + self->len, self->cap - self->len, 0);
    if (got <= 0)
        return -1;
    self->len += (size_t) got;
    return 1;
}

static int s_send_frame (wsclient_t *self, int opcode, const void *data, size_t len)
{
    unsigned char head[14];
    size_t n = 0;
    head[n++] = (unsigned char) (0x80 | opcode);
    if (len < 126)
        head[n++] = (unsigned char) (0x80 | len);
    else if (len < 65536) {
        head[n++] = 0x80 | 126;
        head[n++] = (unsigned char) (len >> 8);
        head[n++] = (unsigned char) len;
    }
    else {
        head[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            head[n++] = (unsigned char) ((uint64_t) len >> (8 * i));
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy (head + n, mask, 4);
    n += 4;
    unsigned char *frame = malloc (n + len);
    if (!frame)
        return -1;
    memcpy (frame, head, n);
    for (size_t i = 0; i < len; i++)
        frame[n + i] = ((const unsigned char *) data)[i] ^ mask[i % 4];
    size_t sent = 0;
    while (sent < n + len) {
        ssize_t w = send (self->fd, frame + sent, n + len - sent, MSG_NOSIGNAL);
        if (w <= 0) {
            free (frame);
            return -1;
        }
        sent += (size_t) w;
    }
    free (frame);
    return 0;
}

wsclient_t *wsclient_connect (int port, const char *origin, int rcvbuf, int timeout_ms)
{
    wsclient_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->close_code = -1;
    self->fd = socket (AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0)
        setsockopt (self->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect (self->fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
        wsclient_destroy (&self);
        return NULL;
    }
    char request[512];
    int n = snprintf (request, sizeof request,
                      "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                      port, origin ? "Origin: " : "", origin ? origin : "", origin ? "\r\n" : "");
    if (send (self->fd, request, (size_t) n, MSG_NOSIGNAL) != n) {
        wsclient_destroy (&self);
        return NULL;
    }
    int64_t deadline = s_now_ms () + timeout_ms;
    unsigned char *end = NULL;
    while (!end) {
        if (s_fill (self, deadline) <= 0) {
            wsclient_destroy (&self);
            return NULL;
        }
        end = memmem (self->buf, self->len, "\r\n\r\n", 4);
    }
    if (self->len < 12 || memcmp (self->buf, "HTTP/1.1 101", 12) != 0) {
        wsclient_destroy (&self);
        return NULL;
    }
    size_t head = (size_t) (end + 4 - self->buf);
    memmove (self->buf, self->buf + head, self->len - head);
    self->len -= head;
    return self;
}

void wsclient_destroy (wsclient_t **self_p)
{
    wsclient_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    free (self->buf);
    free (self->msg);
    free (self);
    *self_p = NULL;
}

int wsclient_local_port (wsclient_t *self)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname (self->fd, (struct sockaddr *) &addr, &len) < 0)
        return -1;
    return ntohs (addr.sin_port);
}

int wsclient_send (wsclient_t *self, const char *text)
{
    return s_send_frame (self, 1, text, strlen (text));
}

const char *wsclient_recv (wsclient_t *self, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    while (self->close_code < 0) {
        //  A whole frame in the buffer?
        if (self->len >= 2) {
            unsigned char *b = self->buf;
            int opcode = b[0] & 0x0f;
            size_t need = 2;
            uint64_t plen = b[1] & 0x7f;
            if (plen == 126) {
                need = 4;
                plen = self->len >= 4 ? ((uint64_t) b[2] << 8) | b[3] : 0;
            }
            else if (plen == 127) {
                need = 10;
                plen = 0;
                for (int i = 0; i < 8 && self->len >= 10; i++)
                    plen = (plen << 8) | b[2 + i];
            }
            if (self->len >= need && self->len >= need + plen) {
                unsigned char *payload = b + need;
                size_t total = need + (size_t) plen;
                if (!(b[0] & 0x80) || opcode == 0) { //  fragments: not from our server
                    self->close_code = 0;
                    return NULL;
                }
                if (opcode == 8) {
                    self->close_code = plen >= 2 ? (payload[0] << 8) | payload[1] : 0;
                    snprintf (self->close_reason, sizeof self->close_reason, "%.*s",
                              plen > 2 ? (int) plen - 2 : 0, (const char *) payload + 2);
                    return NULL;
                }
                if (opcode == 9)
                    s_send_frame (self, 10, payload, (size_t) plen);
                char *msg = NULL;
                if (opcode == 1) {
                    msg = malloc ((size_t) plen + 1);
                    memcpy (msg, payload, (size_t) plen);
                    msg[plen] = '\0';
                }
                memmove (self->buf, self->buf + total, self->len - total);
                self->len -= total;
                if (msg) {
                    free (self->msg);
                    self->msg = msg;
                    return msg;
                }
                continue;
            }
        }
        int rc = s_fill (self, deadline);
        if (rc == 0)
            return NULL;
        if (rc < 0) {
            self->close_code = 0;
            return NULL;
        }
    }
    return NULL;
}

int wsclient_closed (wsclient_t *self, const char **reason)
{
    if (reason)
        *reason = self->close_reason;
    return self->close_code;
}
