/*  redis — the one wrapper of hiredis (redisContext never leaves redis.c): parsing the
    configured URL and, for now, the liveness check the gateway's health answer needs. The
    persister's store builds on the same connection helper.
*/
#ifndef MCE_REDIS_H
#define MCE_REDIS_H

#include <stddef.h>

//  Parses "redis://host[:port][/db]" (port 6379, db 0 by default). 0, or -1 if malformed.
int redis_parse_url (const char *url, char *host, size_t size, int *port, int *db);
//  Connects to url within timeout_ms and sends PING. 0 when it answers PONG, else -1 with the
//  reason in err.
int redis_ping (const char *url, int timeout_ms, char *err, size_t errlen);

#endif
