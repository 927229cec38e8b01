/*  known_users — the users this gateway knows exist, so that a token, an API key or a
    native-port session whose user is not in Postgres `users` is refused (docs/api.md)
    without a database round trip per request.

    A token proves that it was signed with the gateway's key, not that its user registered:
    one minted for a name that never signed up (mcectl token, a test) would otherwise trade.
    So the loop asks known_users before it lets a signed-in request through:
    - a name in the set is answered at once: a czmq zhashx of usernames, positive entries
      only (the API deletes no user; an operator who deletes one in Postgres restarts the
      gateways);
    - a name learnt at registration, sign-in or an API key's lookup on this gateway goes in
      at once (known_users_learn);
    - a miss is looked up once on the worker (SELECT ... FROM users), and requests for a name
      whose lookup is in flight wait for that same lookup;
    - lookups are bounded: KNOWN_USERS_ADDRESS_RATE per second per client address (burst
      KNOWN_USERS_ADDRESS_BURST) and KNOWN_USERS_RATE in all (burst KNOWN_USERS_BURST), so
      tokens for names that do not exist cost the database at most that many queries a
      second; a request over the bound is refused as rate limited and may retry.
    The set holds at most KNOWN_USERS_MAX names; past that an arbitrary one gives way (it is
    looked up again if it comes back).

    Owned by the gateway's loop thread; the lookups run on the worker and come back through
    its done callbacks, on the loop.
*/
#ifndef MCE_KNOWN_USERS_H
#define MCE_KNOWN_USERS_H

#include "gateway_worker.h"

#include <stdbool.h>
#include <stdint.h>

#define KNOWN_USERS_MAX           262144
#define KNOWN_USERS_RATE          200 //  lookups a second, all addresses together
#define KNOWN_USERS_BURST         1000
#define KNOWN_USERS_ADDRESS_RATE  20 //  lookups a second from one client address
#define KNOWN_USERS_ADDRESS_BURST 200

typedef enum {
    KNOWN_USERS_KNOWN,       //  the user exists
    KNOWN_USERS_UNKNOWN,     //  no such user in Postgres
    KNOWN_USERS_PENDING,     //  looked up: the callback will say
    KNOWN_USERS_LIMITED,     //  a lookup would exceed the bound: retry in a second
    KNOWN_USERS_UNAVAILABLE, //  the database (or the worker's queue) cannot answer now
} known_users_answer_t;

//  Called once, on the loop, with KNOWN, UNKNOWN or UNAVAILABLE.
typedef void (known_users_fn) (void *arg, known_users_answer_t answer);

typedef struct _known_users_t known_users_t;

//  Lookups go to worker (borrowed; it must be destroyed before this, so that every lookup in
//  flight has come back). NULL when out of memory.
known_users_t *known_users_new (gateway_worker_t *worker);
void known_users_destroy (known_users_t **self_p);

//  Whether user is known to exist, asking nobody.
bool known_users_has (known_users_t *self, const char *user);
//  Records that user exists (it just registered, signed in, or used its API key).
void known_users_learn (known_users_t *self, const char *user);

//  Whether user exists, for a request from address (text, for the bound per address; may be
//  "" or NULL). KNOWN at once; else PENDING, and fn (arg, answer) is called later exactly
//  once; or, without calling fn, LIMITED or UNAVAILABLE. now_ns is the monotonic clock.
known_users_answer_t known_users_check (known_users_t *self, const char *user, const char *address,
                                        int64_t now_ns, known_users_fn *fn, void *arg);

//  Lookups made and refused by the bound, for metrics.
uint64_t known_users_lookups (known_users_t *self);
uint64_t known_users_limited (known_users_t *self);

#endif
