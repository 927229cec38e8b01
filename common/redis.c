/*  redis — see redis.h.  */
#include "redis.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int redis_parse_url (const char *url, char *host, size_t size, int *port, int *db)
{
    const char *p = url;
    if (strncmp (p, "redis://", 8) != 0)
        return -1;
    p += 8;
    size_t n = strcspn (p, ":/");
    if (n == 0 || n >= size)
        return -1;
    memcpy (host, p, n);
    host[n] = '\0';
    p += n;
    *port = 6379;
    *db = 0;
    char *end;
    if (*p == ':') {
        long v = strtol (p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535)
            return -1;
        *port = (int) v;
        p = end;
    }
    if (*p == '/') {
        long v = strtol (p + 1, &end, 10);
        if (end == p + 1 || v < 0 || v > 1000000)
            return -1;
        *db = (int) v;
        p = end;
    }
    return *p ? -1 : 0;
}

int redis_ping (const char *url, int timeout_ms, char *err, size_t errlen)
{
    char host[256];
    int port, db;
    if (redis_parse_url (url, host, sizeof host, &port, &db)) {
        snprintf (err, errlen, "redis.url \"%s\" is not redis://host[:port][/db]", url);
        return -1;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout (host, port, tv);
    if (!c || c->err) {
        snprintf (err, errlen, "%s", c ? c->errstr : "out of memory");
        redisFree (c);
        return -1;
    }
    redisSetTimeout (c, tv);
    redisReply *r = redisCommand (c, "PING");
    int rc = -1;
    if (!r)
        snprintf (err, errlen, "%s", c->errstr);
    else if (r->type == REDIS_REPLY_STATUS && strcmp (r->str, "PONG") == 0)
        rc = 0;
    else
        snprintf (err, errlen, "unexpected answer to PING: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject (r);
    redisFree (c);
    return rc;
}
