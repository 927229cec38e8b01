/*  native_port — order entry in msgpack (proto/) over ZeroMQ, for clients that find HTTP too
    slow: a ROUTER on gateway.native (PLAIN) and one on gateway.native_curve (CURVE), one
    request → one reply, as the matcher's own protocol.

    Authentication is per connection, in ZeroMQ's own handshake: the PLAIN mechanism carries a
    user name and a password, checked by this module's ZAP handler (RFC 27) before a single
    command is read. The user name says what the password is:
        "jwt"     the password is a token from POST /api/auth/login (checked here, at once),
                  whose user must exist (known_users: at once when known, else the
                  handshake waits for one lookup on the worker);
        "apikey"  the password is an API key from POST /api/auth/api-keys (looked up in
                  Postgres on the worker, so the handshake waits for it, the loop does not).
    ZeroMQ then stamps every message of that connection with the identity the handler gave
    ("<role>/<user>/<expiry>/<key id>"), so the sender of a command is never taken from the
    command itself, and a session ends with its credentials: at the token's or key's expiry,
    and within gateway.api_key_check_ms of its key's revocation (keywatch.h).
    PLAIN sends the secret in clear: run that port on loopback or a private network, or put
    a TLS tunnel in front of it, as for HTTP. The CURVE port is encrypted, and its credential
    is the client's own key pair: the client registers the public half as an API key
    ("curve_public_key"), the same ZAP handler looks it up as AUTH_CURVE_KEY_PREFIX + its Z85
    (one lookup for both kinds), and the secret half never leaves the client. CurveZMQ's
    handshake carries the client's key and nothing else, so a token cannot ride it; a
    registered key is listed, revoked and expires like any API key.

    Commands are new_order, cancel_order and amend_order (market_control for admins), with
    the same checks as the HTTP API; the reply is the matcher's ack or reject, with the
    client's own rid. Anything else gets a reject (malformed) and is counted, never trusted.
*/
#ifndef MCE_NATIVE_PORT_H
#define MCE_NATIVE_PORT_H

#include "config.h"
#include "curve.h"
#include "gateway_worker.h"
#include "known_users.h"
#include "matcher_link.h"
#include "ratelimit.h"
#include "readmodel.h"
#include "seqwait.h"

#include <zmq.h>

typedef struct _native_port_t native_port_t;

//  Binds gateway.native (and the ZAP handler). Acks wait in waits until model has their last
//  event, as HTTP answers do. users says who exists (shared with HTTP). key/len: the HS256
//  token key. NULL on error.
native_port_t *native_port_new (const mce_config_t *cfg, matcher_link_t *link,
                                gateway_worker_t *worker, known_users_t *users, readmodel_t *model,
                                seqwait_t *waits, ratelimit_t *rates, const curve_t *curve,
                                const uint8_t *key, size_t len);
void native_port_destroy (native_port_t **self_p);
//  The ZMQ_FDs of the three sockets (commands with PLAIN, commands with CURVE or -1 when that
//  port is not open, ZAP requests), for a loop on epoll: readable when something may be
//  waiting. Call native_port_process when either is, or when
//  native_port_pending says so: a send (a reply, a ZAP answer) can consume a socket's signal
//  while a message is already queued, and a turn reads at most a bounded number of commands.
void native_port_fds (native_port_t *self, int fds[3]);
bool native_port_pending (native_port_t *self);
//  Answers the ZAP requests waiting (when zap_ready: its fd was readable) and reads the
//  commands waiting (up to a bound per call).
void native_port_process (native_port_t *self, bool zap_ready);
//  Commands refused by the rate limit, for metrics.
uint64_t native_port_rate_limited (native_port_t *self);
//  API keys found revoked under open sessions (keywatch.h).
uint64_t native_port_keys_revoked (native_port_t *self);

#endif
