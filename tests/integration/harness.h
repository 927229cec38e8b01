/*  harness — starts the real executables for integration tests, on free loopback ports, in a
    temporary folder, and stops every one of them by pid when the test ends, passed or not.

    Waiting is always on something: an HTTP answer, a line appearing in a process's log
    (watched with inotify, so no polling interval), a bus event. Every wait has a deadline.
*/
#ifndef MCE_HARNESS_H
#define MCE_HARNESS_H

#include "auth.h"
#include "curve.h"
#include "proto.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HARNESS_DEADLINE_MS 30000
//  The gateway's token key in every test config, so tests can sign their own tokens.
#define HARNESS_JWT_SECRET "integration-test-secret-0123456789abcdef"
#define HARNESS_MAX_PROCS  64
//  The tests' own keys (besides every process's): one that may send commands, one that only
//  watches, as an operator's monitoring tool would.
#define HARNESS_KEY     "test"
#define HARNESS_MONITOR "monitor"

typedef struct {
    char dir[128];    //  temporary folder: config, logs, data
    char config[192]; //  the config file every process is started with
    int port_commands, port_bus, port_replay, port_settler_bus, port_settler_replay,
        port_settler_commands;
    int port_http, port_ws, port_xpub, port_native, port_native_curve;
    struct {
        char name[32];
        pid_t pid;
        char log[192];
    } procs[HARNESS_MAX_PROCS];
    int proc_count;
} harness_t;

//  Makes the folder, picks free ports, makes every key and writes the config (extra is appended
//  to it).
void harness_init (harness_t *h, const char *extra_config);
//  The identity `key` for sockets and buses of the test's own (bus_sub_opts_t.curve); the
//  caller destroys it. NULL on error.
curve_t *harness_curve (harness_t *h, const char *key);
//  Makes sock a CURVE client of process `server` ("matcher", "settler", "broadcaster") with the
//  key `key` (HARNESS_KEY, HARNESS_MONITOR), as the config (and MCE_ variables) say. 0 or -1.
int harness_client (harness_t *h, void *sock, const char *key, const char *server);
//  A follower of the matcher's ("m") or the settler's ("s") bus from its start, with the
//  monitor's key, as any monitoring tool would be (replay_timeout_ms 0: the default).
typedef struct _bus_sub_t bus_sub_t;
bus_sub_t *harness_bus_sub (harness_t *h, const char *stream, int replay_timeout_ms);
//  A DEALER with HARNESS_KEY connected to server's endpoint (zsock_new_dealer, with CURVE).
zsock_t *harness_dealer (harness_t *h, const char *server, const char *endpoint);
//  Stops every process still running (SIGTERM, then SIGKILL after a deadline) and removes
//  the folder.
void harness_cleanup (harness_t *h);
//  Starts build/bin/<exe> -c <config>, stderr and stdout into <dir>/<exe>.log. Returns index.
int harness_start (harness_t *h, const char *exe);
//  Sends sig to process i and waits for it to exit; returns its wait status.
int harness_stop (harness_t *h, int i, int sig);
//  Waits until needle appears in process i's log. true if it did before the deadline.
bool harness_wait_log (harness_t *h, int i, const char *needle, int timeout_ms);
//  Waits until needle appears at least count times in process i's log.
bool harness_wait_log_count (harness_t *h, int i, const char *needle, int count, int timeout_ms);
//  Counts the occurrences of needle in process i's log.
int harness_count_log (harness_t *h, int i, const char *needle);

//  HTTP against the gateway: returns the status (0 if no connection) and the body in *body
//  (caller frees).
long harness_http (harness_t *h, const char *method, const char *path, const char *json,
                   char **body);
//  The same against another port on 127.0.0.1 (a metrics endpoint, say).
long harness_http_port (int port, const char *method, const char *path, const char *json,
                        char **body);
//  A token for user with role "user" or "admin", signed with HARNESS_JWT_SECRET, valid for an
//  hour. Returns out.
const char *harness_token (const char *user, const char *role, char *out, size_t size);

//  A wallet a test signs with: an ed25519 seed and its address (base58 public key).
typedef struct {
    uint8_t seed[AUTH_SEED_BYTES];
    char address[AUTH_WALLET_MAX];
} harness_wallet_t;

//  A new random wallet (libsodium's randombytes), or, with seed_hex (64 hex digits, as the
//  ledger's setup file has walletSecretSeedHex), that seed's. Aborts on bad hex.
void harness_wallet (harness_wallet_t *w, const char *seed_hex);
//  Signs up user through the gateway on port, as a client does: POST /api/auth/challenge,
//  the wallet signs its message, POST /api/auth/register. Returns the register's status (201
//  when it worked) and its body in *body (caller frees; body may be NULL).
long harness_sign_up (int port, const char *user, const char *password, const harness_wallet_t *w,
                      char **body);
//  Puts user straight into the gateway's users table in the database at conninfo (applying
//  the gateway's migrations first), with a wallet of its own, for a test whose token
//  (harness_token) names a user it did not register through the API: the gateway refuses
//  tokens of users who do not exist. role is "user" or "admin". Aborts on failure.
void harness_user_add (const char *conninfo, const char *user, const char *role);

//  One HTTP exchange in full, for tests of the API itself.
typedef struct {
    const char *method;
    const char *path;
    const char *body;       //  NULL = none
    size_t body_len;        //  0 = strlen (body)
    const char *token;      //  sent as Authorization: Bearer <token> when not NULL
    const char *headers[8]; //  extra "Name: value" lines, NULL-terminated
} harness_request_t;

typedef struct {
    long status;   //  0 when there was no answer
    char *body;    //  the response body (NUL-terminated; freed by harness_response_free)
    char *headers; //  the response headers as received, one per line
} harness_response_t;

//  Sends r to 127.0.0.1:port. Returns the status (also in out->status).
long harness_request (int port, const harness_request_t *r, harness_response_t *out);
void harness_response_free (harness_response_t *out);
//  The value of a response header (case-insensitive name) copied into value; false if absent.
bool harness_response_header (const harness_response_t *resp, const char *name, char *value,
                              size_t size);

//  Waits until GET path answers 200.
bool harness_wait_http (harness_t *h, const char *path, int timeout_ms);

//  Deposits amount (a decimal string) of asset ("energy", "payment") for the user of token
//  through the gateway on port, as a client does (POST /api/account/deposits), and polls GET
//  /api/account/deposits until that deposit is credited. 0 when it was; -1 when it was
//  refused, failed (the chain's reason) or was not credited within timeout_ms (said on
//  stderr).
int harness_deposit (int port, const char *token, const char *asset, const char *amount,
                     int timeout_ms);

//  Sends a GTC limit order for market campus-1 straight to a matcher (a DEALER connected to
//  its commands endpoint), as a gateway would: qty in Wh, price in µ/kWh, buy if `buy`.
void harness_order (void *dealer, uint64_t rid, const char *user, bool buy, int64_t qty,
                    int64_t price);
//  That order as a message, to send otherwise (in a batch frame).
proto_msg_t harness_order_msg (uint64_t rid, const char *user, bool buy, int64_t qty,
                               int64_t price);

//  Every event of the matcher's journal (its data folder under h->dir), in order: fn gets the
//  record's seq, the event decoded, and its encoded bytes (as the bus carries them). Returns
//  how many, or -1 when the journal cannot be opened or a record does not decode.
typedef void (*harness_event_fn) (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev,
                                  size_t ev_len, void *arg);
long harness_journal_events (harness_t *h, harness_event_fn fn, void *arg);

//  Runs exe with args (NULL-terminated), returns its exit status and its output in *out.
int harness_run (const char *exe, const char *const *args, char **out);
//  Full path of an executable in the build.
const char *harness_bin (const char *exe, char *buf, size_t size);

#endif
