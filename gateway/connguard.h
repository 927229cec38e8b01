/*  connguard — bounds on what one HTTP client can make the gateway hold: connections per
    address, and a deadline to send each whole request.

    A slowloris opens thousands of connections and sends a header line every 15 s: each line
    resets libmicrohttpd's idle timeout, so the connections stay forever and fill the server.
    libmicrohttpd has no deadline for a request as a whole and does not count what its
    per-address limit refuses, so both are here, fed by its callbacks (the accept policy, the
    connection notifications, the access handler and the completion): an address gets at
    most `per_address` connections, and a connection that has not delivered a whole request
    (headers and body) `deadline_ns` after it opened or after its previous response is shut
    down, which libmicrohttpd sees as the client closing. A request once received (being
    answered, or suspended waiting for the matcher) is never timed out here.

    The connections waiting for a request are kept in one list in deadline order (each
    deadline is the same span after its start, so appending keeps the order), so a sweep
    looks only at the ones due. The per-address counts live in a czmq zhashx; an address has
    an entry only while it has connections, so it is bounded by the total connection limit.
    Everything runs on the gateway's loop thread.
*/
#ifndef MCE_CONNGUARD_H
#define MCE_CONNGUARD_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _connguard_t connguard_t;
typedef struct _connguard_conn_t connguard_conn_t;

//  At most per_address connections from one address; deadline_ns to send a whole request.
//  NULL when out of memory.
connguard_t *connguard_new (int per_address, int64_t deadline_ns);
void connguard_destroy (connguard_t **self_p);

//  The accept policy: whether addr may open one more connection (a refusal is counted).
bool connguard_admit (connguard_t *self, const char *addr);
//  A connection from addr on socket fd opened at now: its record (NULL when out of memory:
//  the connection is then simply not guarded).
connguard_conn_t *connguard_opened (connguard_t *self, const char *addr, int fd, int64_t now);
//  The connection closed (conn may be NULL).
void connguard_closed (connguard_t *self, connguard_conn_t *conn);
//  Its request is all in: no deadline while it is answered.
void connguard_received (connguard_t *self, connguard_conn_t *conn);
//  Its response went out at now: the next request's deadline starts.
void connguard_answered (connguard_t *self, connguard_conn_t *conn, int64_t now);
//  Shuts down every connection past its deadline at now; returns how many.
int connguard_sweep (connguard_t *self, int64_t now);

//  Counters for /metrics.
uint64_t connguard_refused (connguard_t *self);   //  connections over an address's limit
uint64_t connguard_timed_out (connguard_t *self); //  shut down at their deadline
int connguard_open (connguard_t *self);           //  connections open now

#endif
