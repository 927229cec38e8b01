/*  keywatch — whether the API keys behind open native-port sessions are still valid.

    ZeroMQ authenticates a connection once, at its handshake; a key deleted afterwards (on any
    gateway: DELETE /api/auth/api-keys/{id}) would go on trading for as long as the connection
    stays up. So the native port tells keywatch the key of every command's session, and
    keywatch asks Postgres, every gateway.api_key_check_ms, which of the keys used lately
    still exist: one query for all of them, on the worker. A key found gone is refused from
    then on. Expiry needs no query: a session carries its key's expiry and checks it itself.

    Bounded by what is in use: a key not used for KEYWATCH_IDLE_MS is forgotten (a session
    that comes back after that is let through once and checked with the next query), so an
    outsider who makes and deletes keys in a loop cannot make the set grow.

    Owned by the gateway's loop thread; the query runs on the worker and comes back through
    its done callback, on the loop.
*/
#ifndef MCE_KEYWATCH_H
#define MCE_KEYWATCH_H

#include "gateway_worker.h"

#include <stdbool.h>
#include <stdint.h>

#define KEYWATCH_IDLE_MS   60000 //  a key unused this long is forgotten
#define KEYWATCH_BATCH_MAX 10000 //  keys checked by one query at most

typedef struct _keywatch_t keywatch_t;

keywatch_t *keywatch_new (gateway_worker_t *worker, int64_t check_ms);
void keywatch_destroy (keywatch_t **self_p);
//  A command from a session signed in with key id (now: clock_mono_ns). false if the key
//  was found revoked.
bool keywatch_use (keywatch_t *self, uint64_t id, int64_t now);
//  Sends the next check when it is due (call at least every few hundred ms).
void keywatch_tick (keywatch_t *self, int64_t now);
//  Keys found revoked, for metrics.
uint64_t keywatch_revoked (keywatch_t *self);

#endif
