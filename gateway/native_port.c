/*  native_port — see native_port.h.  */
#include "native_port.h"
#include "auth.h"
#include "clock.h"
#include "keywatch.h"
#include "log.h"
#include "order_parse.h"
#include "proto.h"
#include "router.h"

#include <czmq.h>
#include <inttypes.h>
#include <string.h>

#define S_ZAP_ENDPOINT      "inproc://zeromq.zap.01" //  fixed by RFC 27
#define S_COMMANDS_PER_TURN 1024
#define S_ID_MAX            256
#define S_FRAME_MAX         16 //  frames of one ZAP request we look at

struct _native_port_t {
    const mce_config_t *cfg;
    matcher_link_t *link;
    gateway_worker_t *worker;
    known_users_t *users;
    readmodel_t *model;
    seqwait_t *waits;
    uint8_t key[CONFIG_STR_MAX];
    size_t key_len;
    zsock_t *router; //  gateway.native: PLAIN (a token or an API key)
    zsock_t *curve;  //  gateway.native_curve: CURVE (a registered key pair), or NULL
    zsock_t *zap;
    bool pending;  //  see native_port_pending: a reply went out, or commands were left
    bool zap_sent; //  a ZAP answer went out (the same, for the ZAP socket)
    proto_buf_t out;
    ratelimit_t *rates; //  the gateway's: a user has one bucket over HTTP and here
    keywatch_t *watch;  //  whether the API keys of open sessions still exist
    uint64_t rate_limited;
};

//  Whom an answer goes to: the socket its command came in on (PLAIN or CURVE) and the
//  connection's routing id there.
typedef struct {
    zsock_t *sock;
    uint8_t id[S_ID_MAX];
    size_t id_len;
} s_peer_t;

//  A command in flight: where the answer goes, and the client's own rid.
typedef struct {
    native_port_t *port;
    s_peer_t to;
    uint64_t rid;
    proto_msg_t reply; //  once the matcher answered, while the read model catches up
} s_pending_t;

//  A ZAP request waiting for the worker (API keys).
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    native_port_t *port;
    zmsg_t *envelope; //  routing id and empty delimiter, to address the reply
    char request_id[64];
    char key[AUTH_API_KEY_MAX];
    char user_id[128]; //  "<role>/<user>/<exp>/<key id>" when the key is good (exp 0: never)
    bool down;         //  the database could not be asked
} s_key_job_t;

//  A ZAP request with a good token, waiting for its user to be looked up.
typedef struct {
    native_port_t *port;
    zmsg_t *envelope;
    char request_id[64];
    char user_id[128]; //  "<role>/<user>/<exp>/0"
} s_user_wait_t;

//  ---------------------------------------------------------------------------------------
//  Replies

static void s_send (native_port_t *self, const s_peer_t *to, proto_msg_t *reply)
{
    proto_buf_reset (&self->out);
    if (proto_encode (reply, &self->out))
        return;
    void *sock = zsock_resolve (to->sock);
    zmq_send (sock, to->id, to->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (sock, self->out.data, self->out.len, ZMQ_DONTWAIT);
    self->pending = true;
}

static void s_reject (native_port_t *self, const s_peer_t *to, uint64_t rid,
                      proto_reject_reason_t reason, const char *message)
{
    proto_msg_t reply = {.kind = PROTO_reject};
    reply.reject.rid = rid;
    reply.reject.reason = reason;
    snprintf (reply.reject.message, sizeof reply.reject.message, "%s", message);
    s_send (self, to, &reply);
}

//  The answer goes out once the read model has its events.
static void s_send_pending (void *arg)
{
    s_pending_t *p = arg;
    s_send (p->port, &p->to, &p->reply);
    free (p);
}

//  The matcher answered: pass it on with the client's rid.
static void s_answered (void *arg, const proto_msg_t *matcher_reply)
{
    s_pending_t *p = arg;
    proto_msg_t reply;
    if (!matcher_reply) {
        reply = (proto_msg_t){.kind = PROTO_reject};
        reply.reject.reason = PROTO_REJECT_REASON_INTERNAL;
        snprintf (reply.reject.message, sizeof reply.reject.message,
                  "the matcher did not answer in time; the command may still take effect");
    }
    else
        reply = *matcher_reply;
    if (reply.kind == PROTO_ack)
        reply.ack.rid = p->rid;
    else
        reply.reject.rid = p->rid;
    p->reply = reply;
    //  a refusal too: "no such order" for one just filled must not meet a read that still
    //  shows it open
    uint64_t last = reply.kind == PROTO_ack ? reply.ack.last_seq : reply.reject.last_seq;
    seqwait_after (p->port->waits, readmodel_seq (p->port->model), last, s_send_pending, p);
}

//  ---------------------------------------------------------------------------------------
//  Commands

//  Who sent body: its connection's ZAP identity, "<role>/<user>/<exp>/<key>", with exp the
//  Unix second its token or API key expires (0: a key without expiry) and key the API key's
//  id (0: a token). A session ends with its credentials: ZeroMQ authenticates a connection
//  once, so every command checks the expiry it was given, and keywatch the key. Usernames
//  hold no '/'. false if none.
static bool s_sender (zmq_msg_t *body, char *user, size_t size, int *role, int64_t *exp,
                      uint64_t *key)
{
    const char *id = zmq_msg_gets (body, "User-Id");
    const char *slash = id ? strchr (id, '/') : NULL;
    const char *last = id ? strrchr (id, '/') : NULL;
    const char *exp_at = last;
    while (exp_at && exp_at > slash && exp_at[-1] != '/')
        exp_at--;
    if (!slash || !exp_at || exp_at - 1 <= slash + 1)
        return false;
    *role = strncmp (id, "admin/", 6) == 0 ? PROTO_ROLE_ADMIN : PROTO_ROLE_USER;
    snprintf (user, size, "%.*s", (int) (exp_at - 1 - slash - 1), slash + 1);
    *exp = strtoll (exp_at, NULL, 10);
    *key = strtoull (last + 1, NULL, 10);
    return true;
}

static void s_command (native_port_t *self, const s_peer_t *to, zmq_msg_t *body)
{
    proto_msg_t cmd;
    char err[160];
    if (proto_decode (zmq_msg_data (body), zmq_msg_size (body), &cmd, err, sizeof err)) {
        s_reject (self, to, 0, PROTO_REJECT_REASON_MALFORMED, err);
        return;
    }
    uint64_t rid = cmd.new_order.rid; //  the first field of every command
    char user[PROTO_STR64_MAX + 1];
    int role;
    int64_t exp;
    uint64_t key_id;
    if (!s_sender (body, user, sizeof user, &role, &exp, &key_id)) {
        s_reject (self, to, rid, PROTO_REJECT_REASON_MALFORMED,
                  "this connection did not authenticate (ZMQ PLAIN: jwt or apikey)");
        return;
    }
    if (exp && clock_wall_ns () / MCE_NS_PER_SEC >= exp) {
        s_reject (self, to, rid, PROTO_REJECT_REASON_SESSION_EXPIRED,
                  "the token this connection signed in with has expired: connect again");
        return;
    }
    if (key_id && !keywatch_use (self->watch, key_id, clock_mono_ns ())) {
        s_reject (self, to, rid, PROTO_REJECT_REASON_SESSION_EXPIRED,
                  "the API key this connection signed in with was revoked");
        return;
    }
    char key[PROTO_STR64_MAX + 3];
    snprintf (key, sizeof key, "u:%s", user);
    unsigned wait = ratelimit_take (self->rates, key, clock_mono_ns ());
    if (wait) {
        self->rate_limited++;
        char message[64];
        snprintf (message, sizeof message, "too many requests; retry in %u s", wait);
        s_reject (self, to, rid, PROTO_REJECT_REASON_RATE_LIMITED, message);
        return;
    }
    int64_t now = clock_wall_ns ();
    order_error_t oerr;
    switch (cmd.kind) {
        case PROTO_new_order:
            if (order_check_new (self->cfg, &cmd.new_order, now, &oerr)) {
                s_reject (self, to, rid, order_error_reason (&oerr), oerr.message);
                return;
            }
            snprintf (cmd.new_order.user, sizeof cmd.new_order.user, "%s", user);
            cmd.new_order.role = role;
            cmd.new_order.ts = now;
            cmd.new_order.seq = 0;
            break;
        case PROTO_cancel_order:
            snprintf (cmd.cancel_order.user, sizeof cmd.cancel_order.user, "%s", user);
            cmd.cancel_order.role = role;
            cmd.cancel_order.ts = now;
            cmd.cancel_order.seq = 0;
            break;
        case PROTO_amend_order:
            snprintf (cmd.amend_order.user, sizeof cmd.amend_order.user, "%s", user);
            cmd.amend_order.role = role;
            cmd.amend_order.ts = now;
            cmd.amend_order.seq = 0;
            break;
        case PROTO_market_control:
            if (role != PROTO_ROLE_ADMIN) {
                s_reject (self, to, rid, PROTO_REJECT_REASON_NOT_ADMIN,
                          "market_control needs the admin role");
                return;
            }
            snprintf (cmd.market_control.user, sizeof cmd.market_control.user, "%s", user);
            cmd.market_control.ts = now;
            cmd.market_control.seq = 0;
            break;
        default:
            s_reject (self, to, rid, PROTO_REJECT_REASON_MALFORMED,
                      "not a command: new_order, cancel_order, amend_order or market_control");
            return;
    }
    s_pending_t *p = malloc (sizeof *p);
    if (!p)
        return;
    *p = (s_pending_t){.port = self, .to = *to, .rid = rid};
    if (matcher_link_send (self->link, &cmd, s_answered, p)) {
        free (p);
        s_reject (self, to, rid, PROTO_REJECT_REASON_OVERLOADED,
                  "too many commands in flight; retry shortly");
    }
}

//  One message from a client on sock: [routing id][command]. false when none was waiting.
static bool s_receive (native_port_t *self, zsock_t *sock)
{
    zmq_msg_t id, body;
    zmq_msg_init (&id);
    zmq_msg_init (&body);
    int frames = router_recv (zsock_resolve (sock), &id, &body, ZMQ_DONTWAIT);
    if (frames < 0) {
        zmq_msg_close (&id);
        zmq_msg_close (&body);
        return false;
    }
    s_peer_t to = {.sock = sock, .id_len = zmq_msg_size (&id)};
    if (to.id_len <= S_ID_MAX)
        memcpy (to.id, zmq_msg_data (&id), to.id_len);
    if (frames == 1 && to.id_len <= S_ID_MAX)
        s_command (self, &to, &body);
    else if (to.id_len <= S_ID_MAX)
        s_reject (self, &to, 0, PROTO_REJECT_REASON_MALFORMED, "one frame per command");
    zmq_msg_close (&id);
    zmq_msg_close (&body);
    return true;
}

//  ---------------------------------------------------------------------------------------
//  ZAP (RFC 27): [id][""][version][request id][domain][address][identity][mechanism][creds..]

static void s_zap_reply (native_port_t *self, zmsg_t **envelope_p, const char *request_id,
                         const char *status, const char *text, const char *user_id)
{
    zmsg_t *reply = *envelope_p;
    *envelope_p = NULL;
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, request_id);
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user_id);
    zmsg_addmem (reply, "", 0); //  no metadata
    zmsg_send (&reply, self->zap);
    self->zap_sent = true;
}

//  Worker: the user and role an API key belongs to.
static void s_key_run (gateway_job_t *base, pg_t *pg)
{
    s_key_job_t *job = (s_key_job_t *) base;
    if (!pg) {
        job->down = true;
        return;
    }
    char hash[AUTH_API_KEY_HASH_MAX];
    auth_api_key_hash (job->key, hash);
    const char *params[] = {hash};
    pg_result_t *r = pg_exec (pg,
                              "UPDATE api_keys k SET last_used_at = now () FROM users u "
                              "WHERE k.key_hash = $1 AND u.username = k.username "
                              "AND (k.expires_at IS NULL OR k.expires_at > now ()) "
                              "RETURNING u.role, u.username, "
                              "coalesce (ceil (extract (epoch FROM k.expires_at))::bigint, 0), "
                              "k.id",
                              1, params);
    if (!r)
        job->down = true;
    else if (pg_rows (r) == 1)
        snprintf (job->user_id, sizeof job->user_id, "%s/%s/%s/%s", pg_value (r, 0, 0),
                  pg_value (r, 0, 1), pg_value (r, 0, 2), pg_value (r, 0, 3));
    pg_result_free (&r);
}

static void s_key_done (gateway_job_t *base)
{
    s_key_job_t *job = (s_key_job_t *) base;
    native_port_t *self = job->port;
    if (job->user_id[0]) {
        //  the key's user exists (the key row goes with it): remember that
        known_users_learn (self->users, strchr (job->user_id, '/') + 1);
        s_zap_reply (self, &job->envelope, job->request_id, "200", "OK", job->user_id);
    }
    else if (job->down)
        s_zap_reply (self, &job->envelope, job->request_id, "300", "database unavailable", "");
    else
        s_zap_reply (self, &job->envelope, job->request_id, "400", "unknown API key", "");
    free (job);
}

//  A token's user was looked up: the handshake's answer.
static void s_user_checked (void *arg, known_users_answer_t answer)
{
    s_user_wait_t *w = arg;
    native_port_t *self = w->port;
    if (answer == KNOWN_USERS_KNOWN)
        s_zap_reply (self, &w->envelope, w->request_id, "200", "OK", w->user_id);
    else if (answer == KNOWN_USERS_UNKNOWN)
        s_zap_reply (self, &w->envelope, w->request_id, "400", "unknown user", "");
    else
        s_zap_reply (self, &w->envelope, w->request_id, "300", "database unavailable", "");
    free (w);
}

//  A good token: its user must exist too (known_users.h). Answers, or leaves the answer to
//  s_user_checked (taking the envelope).
static void s_zap_token (native_port_t *self, zmsg_t **envelope_p, const char *request_id,
                         const char *address, const auth_claims_t *claims)
{
    s_user_wait_t *w = calloc (1, sizeof *w);
    if (!w) {
        s_zap_reply (self, envelope_p, request_id, "500", "out of memory", "");
        return;
    }
    w->port = self;
    snprintf (w->request_id, sizeof w->request_id, "%s", request_id);
    snprintf (w->user_id, sizeof w->user_id, "%s/%s/%lld/0",
              claims->role == PROTO_ROLE_ADMIN ? "admin" : "user", claims->sub,
              (long long) claims->exp);
    known_users_answer_t known =
        known_users_check (self->users, claims->sub, address, clock_mono_ns (), s_user_checked, w);
    if (known == KNOWN_USERS_PENDING) {
        w->envelope = *envelope_p;
        *envelope_p = NULL;
        return;
    }
    if (known == KNOWN_USERS_KNOWN)
        s_zap_reply (self, envelope_p, request_id, "200", "OK", w->user_id);
    else if (known == KNOWN_USERS_LIMITED)
        s_zap_reply (self, envelope_p, request_id, "300", "too many sign-in checks; retry", "");
    else
        s_zap_reply (self, envelope_p, request_id, "300", "database unavailable", "");
    free (w);
}

//  An API key (or a CURVE key, as AUTH_CURVE_KEY_PREFIX + Z85) to look up on the worker:
//  answers at once when it cannot be asked, else leaves the answer to s_key_done (taking the
//  envelope).
static void s_key_lookup (native_port_t *self, zmsg_t **envelope_p, const char *request_id,
                          const char *key)
{
    s_key_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        s_zap_reply (self, envelope_p, request_id, "500", "out of memory", "");
        return;
    }
    job->job.run = s_key_run;
    job->job.done = s_key_done;
    job->port = self;
    snprintf (job->request_id, sizeof job->request_id, "%s", request_id);
    snprintf (job->key, sizeof job->key, "%s", key);
    job->envelope = *envelope_p;
    *envelope_p = NULL;
    if (gateway_worker_submit (self->worker, &job->job)) {
        *envelope_p = job->envelope;
        free (job);
        s_zap_reply (self, envelope_p, request_id, "300", "busy", "");
    }
}

static void s_zap (native_port_t *self)
{
    zmsg_t *msg = zmsg_recv (self->zap);
    if (!msg)
        return;
    zmsg_t *envelope = zmsg_new ();
    zframe_t *frames[S_FRAME_MAX] = {0};
    size_t n = 0;
    //  the envelope: routing id, then the empty delimiter
    for (int i = 0; i < 2 && zmsg_size (msg); i++)
        zmsg_append (envelope, &(zframe_t *){zmsg_pop (msg)});
    while (zmsg_size (msg) && n < S_FRAME_MAX)
        frames[n++] = zmsg_pop (msg);
    char request_id[64] = "", mechanism[16] = "", kind[16] = "", address[64] = "";
    if (n >= 2)
        snprintf (request_id, sizeof request_id, "%.*s", (int) zframe_size (frames[1]),
                  (const char *) zframe_data (frames[1]));
    if (n >= 4)
        snprintf (address, sizeof address, "%.*s", (int) zframe_size (frames[3]),
                  (const char *) zframe_data (frames[3]));
    if (n >= 6)
        snprintf (mechanism, sizeof mechanism, "%.*s", (int) zframe_size (frames[5]),
                  (const char *) zframe_data (frames[5]));
    if (n >= 8)
        snprintf (kind, sizeof kind, "%.*s", (int) zframe_size (frames[6]),
                  (const char *) zframe_data (frames[6]));
    const char *secret = n >= 8 ? (const char *) zframe_data (frames[7]) : "";
    size_t secret_len = n >= 8 ? zframe_size (frames[7]) : 0;
    if (strcmp (mechanism, "CURVE") == 0 && n == 7 && zframe_size (frames[6]) == 32) {
        //  the CURVE port: the client's public key is its credential, registered as an API key
        char key[AUTH_API_KEY_MAX], z85[AUTH_CURVE_KEY_Z85 + 1];
        zmq_z85_encode (z85, zframe_data (frames[6]), 32);
        snprintf (key, sizeof key, "%s%s", AUTH_CURVE_KEY_PREFIX, z85);
        s_key_lookup (self, &envelope, request_id, key);
    }
    else if (strcmp (mechanism, "PLAIN") != 0 || n != 8)
        s_zap_reply (self, &envelope, request_id, "400", "PLAIN or CURVE credentials required", "");
    else if (strcmp (kind, "jwt") == 0) {
        auth_claims_t claims;
        const char *reason = "bad token";
        if (auth_jwt_verify (self->key, self->key_len, secret, secret_len,
                             clock_wall_ns () / MCE_NS_PER_SEC, &claims, &reason) == 0)
            s_zap_token (self, &envelope, request_id, address, &claims);
        else
            s_zap_reply (self, &envelope, request_id, "400", reason, "");
    }
    else if (strcmp (kind, "apikey") == 0 && !auth_check_api_key (secret, secret_len)) {
        char key[AUTH_API_KEY_MAX];
        snprintf (key, sizeof key, "%.*s", (int) secret_len, secret);
        s_key_lookup (self, &envelope, request_id, key);
    }
    else
        s_zap_reply (self, &envelope, request_id, "400",
                     "user name must be jwt or apikey, with a valid password", "");
    for (size_t i = 0; i < n; i++)
        zframe_destroy (&frames[i]);
    zmsg_destroy (&envelope);
    zmsg_destroy (&msg);
}

//  ---------------------------------------------------------------------------------------

//  The settings both order ports share.
static void s_order_socket (zsock_t *sock)
{
    zsock_set_zap_domain (sock, "mce");
    zsock_set_router_mandatory (sock, 0);
    zsock_set_sndhwm (sock, 100000);
    //  A frame longer than any message is refused by ZeroMQ from its header, before it is
    //  buffered: a check after receiving would come after the memory was taken.
    zsock_set_maxmsgsize (sock, PROTO_MAX_SIZE);
}

//  The PLAIN order port, when configured. 0, or -1 when it cannot be bound.
static int s_plain_port (native_port_t *self, const mce_config_t *cfg)
{
    if (!cfg->gateway.native[0])
        return 0;
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router)
        return -1;
    s_order_socket (self->router);
    zsock_set_plain_server (self->router, 1);
    if (zsock_bind (self->router, "%s", cfg->gateway.native) < 0) {
        log_error ("gateway", "native port: cannot bind %s: %s", cfg->gateway.native,
                   zmq_strerror (zmq_errno ()));
        return -1;
    }
    log_info ("gateway", "native msgpack port on %s (ZMQ PLAIN: jwt or apikey)",
              cfg->gateway.native);
    return 0;
}

//  The CURVE order port, when configured and CURVE is on (without it, it would be a port
//  with no authentication at all). 0, or -1 when it cannot be bound.
static int s_curve_port (native_port_t *self, const mce_config_t *cfg, const curve_t *curve)
{
    if (!cfg->gateway.native_curve[0])
        return 0;
    if (!curve_on (curve)) {
        log_warn ("gateway", "native CURVE port %s not opened: security.curve is off",
                  cfg->gateway.native_curve);
        return 0;
    }
    self->curve = zsock_new (ZMQ_ROUTER);
    if (!self->curve)
        return -1;
    curve_server (curve, self->curve);
    s_order_socket (self->curve); //  after curve_server, whose domain is the same
    if (zsock_bind (self->curve, "%s", cfg->gateway.native_curve) < 0) {
        log_error ("gateway", "native port: cannot bind %s: %s", cfg->gateway.native_curve,
                   zmq_strerror (zmq_errno ()));
        return -1;
    }
    log_info ("gateway",
              "native msgpack port on %s (ZMQ CURVE: a registered key pair; "
              "server key %s)",
              cfg->gateway.native_curve, curve_public_key (curve));
    return 0;
}

native_port_t *native_port_new (const mce_config_t *cfg, matcher_link_t *link,
                                gateway_worker_t *worker, known_users_t *users, readmodel_t *model,
                                seqwait_t *waits, ratelimit_t *rates, const curve_t *curve,
                                const uint8_t *key, size_t len)
{
    native_port_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->rates = rates;
    self->link = link;
    self->worker = worker;
    self->users = users;
    self->model = model;
    self->waits = waits;
    memcpy (self->key, key, len);
    self->key_len = len;
    proto_buf_init (&self->out);
    self->watch = keywatch_new (worker, cfg->gateway.api_key_check_ms);
    if (!self->watch) {
        native_port_destroy (&self);
        return NULL;
    }
    //  The ZAP handler first: ZeroMQ asks it about every connection from then on.
    self->zap = zsock_new (ZMQ_ROUTER);
    if (!self->zap || zsock_bind (self->zap, S_ZAP_ENDPOINT) < 0) {
        log_error ("gateway", "native port: cannot bind the ZAP handler: %s",
                   zmq_strerror (zmq_errno ()));
        native_port_destroy (&self);
        return NULL;
    }
    if (s_plain_port (self, cfg) || s_curve_port (self, cfg, curve)) {
        native_port_destroy (&self);
        return NULL;
    }
    return self;
}

void native_port_destroy (native_port_t **self_p)
{
    native_port_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->router);
    zsock_destroy (&self->curve);
    zsock_destroy (&self->zap);
    keywatch_destroy (&self->watch);
    proto_buf_free (&self->out);
    free (self);
    *self_p = NULL;
}

void native_port_fds (native_port_t *self, int fds[3])
{
    fds[0] = self->router ? zsock_fd (self->router) : -1;
    fds[1] = self->curve ? zsock_fd (self->curve) : -1;
    fds[2] = zsock_fd (self->zap);
}

bool native_port_pending (native_port_t *self)
{
    return self->pending || self->zap_sent;
}

void native_port_process (native_port_t *self, bool zap_ready)
{
    //  ZAP requests come with new connections only: looked at when signalled
    if (zap_ready || self->zap_sent) {
        self->zap_sent = false;
        while (zsock_events (self->zap) & ZMQ_POLLIN)
            s_zap (self);
    }
    keywatch_tick (self->watch, clock_mono_ns ());
    self->pending = false;
    //  commands: straight reads until none is left (bounded, so HTTP gets its turn)
    int n = 0;
    bool more = true;
    while (n < S_COMMANDS_PER_TURN && more) {
        more = self->router && s_receive (self, self->router);
        more = (self->curve && s_receive (self, self->curve)) || more;
        n += 2;
    }
    if (n >= S_COMMANDS_PER_TURN)
        self->pending = true;
}

uint64_t native_port_rate_limited (native_port_t *self)
{
    return self->rate_limited;
}

uint64_t native_port_keys_revoked (native_port_t *self)
{
    return keywatch_revoked (self->watch);
}
