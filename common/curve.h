/*  curve — CurveZMQ on every link between processes (who may talk to whom).

    Each process has a long-term key pair in security.keys_dir, and every public key a server
    accepts is a certificate in keys_dir/public:

        keys_dir/<name>.secret        a process's or a monitor's key pair (0600)
        keys_dir/public/<name>.key    its public key, with metadata role = process | monitor

    A server socket (the matcher's commands, bus and replay; the settler's bus, replay and
    admin; the broadcaster's XPUB) is a CURVE server with its process's key; czmq's zauth, one
    per process, admits a client only if its public key is one of keys_dir/public, and hands
    the certificate's role to every message from that connection. Buses admit processes and
    monitors; the ports that take commands (matcher commands, settler admin) act only on
    messages whose role is "process", so a monitor's key reads the market and changes nothing.
    zauth reloads the folder when it changes: adding a monitor needs no restart.

    `security.curve = false` turns all of it off, for benchmarks that compare against it; the
    process says so in a warning at start. A curve_t is never changed after curve_new, so a
    socket made on another thread (the replay server's) may use it.
*/
#ifndef MCE_CURVE_H
#define MCE_CURVE_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#define CURVE_ROLE_PROCESS "process"
#define CURVE_ROLE_MONITOR "monitor"
#define CURVE_NAME_MAX     32
#define CURVE_MONITOR      "monitor" //  the monitor key `mcectl keys init` makes (tail's default)

typedef struct _curve_t curve_t;

//  The identity `name` ("matcher", "monitor") from cfg's security section. With serves, also
//  starts the process's authenticator (zauth), which every server socket relies on: call it
//  before binding any. NULL when a key is missing or unreadable (logged, saying how to make
//  one). With CURVE off, a curve_t that leaves sockets as they are (and the warning logged).
curve_t *curve_new (const mce_config_t *cfg, const char *name, bool serves);
void curve_destroy (curve_t **self_p);
bool curve_on (const curve_t *self);
//  Our public key in Z85 (40 characters), "" with CURVE off.
const char *curve_public_key (const curve_t *self);

//  Makes sock (a zsock_t *) a CURVE server with our key. Before bind. NULL self: no CURVE.
//  0 or -1.
int curve_server (const curve_t *self, void *sock);
//  Makes sock a CURVE client with our key, trusting the key of process `server`. Before
//  connect. NULL self: no CURVE. 0, or -1 (logged) when the server's key cannot be read.
int curve_client (const curve_t *self, void *sock, const char *server);
//  Whether a message received on a command port comes from a process (not a monitor).
//  Always true with CURVE off.
bool curve_from_process (const curve_t *self, zmq_msg_t *msg);

//  Writes keys_dir/<name>.secret and keys_dir/public/<name>.key for a new key pair with the
//  given role, making both folders (0700) as needed. Returns 1 if made, 0 if the key exists
//  already (left as it is), -1 with err filled.
int curve_keys_make (const char *keys_dir, const char *name, const char *role, char *err,
                     size_t errlen);
//  The names of the processes that need keys, NULL-terminated.
extern const char *const curve_processes[];

#endif
