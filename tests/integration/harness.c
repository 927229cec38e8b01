/*  harness — see harness.h.  */
#include "harness.h"
#include "auth.h"
#include "bus_pub.h"
#include "bus_sub.h"
#include "clock.h"
#include "config.h"
#include "curve.h"
#include "journal.h"
#include "migrate.h"
#include "pg.h"
#include "proto.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A free loopback port, held by *fd until the caller closes it: every port of one harness is
//  held until all are chosen, or the same one could be handed out twice. Chosen below the
//  kernel's ephemeral range (32768 and up on Linux), never by binding port 0: a process's
//  ports are bound again at each restart, and a client reconnecting to a stopped process
//  could meanwhile take an ephemeral port as its own source port, and the restart then finds
//  its port in use.
#define S_PORT_LOW  20000
#define S_PORT_HIGH 32000

static int s_free_port (int *fd)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    unsigned seed = (unsigned) getpid () * 2654435761u ^ (unsigned) now.tv_nsec;
    for (int tries = 0; tries < 10000; tries++) {
        int port = S_PORT_LOW + (int) (rand_r (&seed) % (S_PORT_HIGH - S_PORT_LOW));
        *fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                                .sin_port = htons ((uint16_t) port)};
        if (*fd >= 0 && bind (*fd, (struct sockaddr *) &a, sizeof a) == 0)
            return port;
        if (*fd >= 0)
            close (*fd);
    }
    perror ("harness: free port");
    abort ();
}

const char *harness_bin (const char *exe, char *buf, size_t size)
{
    snprintf (buf, size, "%s/%s", MCE_BIN_DIR, exe);
    return buf;
}

void harness_init (harness_t *h, const char *extra_config)
{
    memset (h, 0, sizeof *h);
    snprintf (h->dir, sizeof h->dir, "/tmp/mce-it-XXXXXX");
    if (!mkdtemp (h->dir))
        abort ();
    int *ports[] = {&h->port_commands,
                    &h->port_bus,
                    &h->port_replay,
                    &h->port_settler_bus,
                    &h->port_settler_replay,
                    &h->port_http,
                    &h->port_ws,
                    &h->port_xpub,
                    &h->port_native,
                    &h->port_native_curve,
                    &h->port_settler_commands};
    int held[sizeof ports / sizeof ports[0]];
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++)
        *ports[i] = s_free_port (&held[i]);
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++)
        close (held[i]);
    snprintf (h->config, sizeof h->config, "%s/mce.cfg", h->dir);
    //  Every process's key, and two for the tests' own sockets: one that may command, one that
    //  may only watch.
    char keys[160], err[256];
    snprintf (keys, sizeof keys, "%s/keys", h->dir);
    for (int i = 0; curve_processes[i]; i++)
        if (curve_keys_make (keys, curve_processes[i], CURVE_ROLE_PROCESS, err, sizeof err) < 0)
            abort ();
    if (curve_keys_make (keys, HARNESS_KEY, CURVE_ROLE_PROCESS, err, sizeof err) < 0 ||
        curve_keys_make (keys, HARNESS_MONITOR, CURVE_ROLE_MONITOR, err, sizeof err) < 0)
        abort ();
    //  No Redis unless the test configures its own: the default URL is the usual local port,
    //  and a developer's Redis there must never receive a test's keys.
    const char *redis =
        extra_config && strstr (extra_config, "redis") ? "" : "redis = { url = \"\"; };\n";
    FILE *f = fopen (h->config, "w");
    fprintf (f,
             "data_dir = \"%s/data\";\n"
             "matcher = { commands = \"tcp://127.0.0.1:%d\"; bus = \"tcp://127.0.0.1:%d\";\n"
             "            replay = \"tcp://127.0.0.1:%d\"; metrics_port = 0; };\n"
             "settler = { bus = \"tcp://127.0.0.1:%d\"; replay = \"tcp://127.0.0.1:%d\"; "
             "commands = \"tcp://127.0.0.1:%d\"; metrics_port = 0; };\n"
             "gateway = { http_port = %d; native = \"tcp://127.0.0.1:%d\";\n"
             "            native_curve = \"tcp://127.0.0.1:%d\"; jwt_secret = \"%s\";\n"
             "            password_cost = \"test\"; rate_per_s = 1000000; rate_burst = 1000000;\n"
             "            logins_per_minute = 1000000; logins_per_minute_address = 1000000; };\n"
             "persister = { metrics_port = 0; };\n"
             "security = { keys_dir = \"%s/keys\"; };\n"
             "broadcaster = { ws_port = %d; xpub = \"tcp://127.0.0.1:%d\"; metrics_port = 0;\n"
             "                max_sessions_per_address = 1000000;\n"
             "                queue_bytes_per_address = 1073741824; };\n"
             "%s%s\n",
             h->dir, h->port_commands, h->port_bus, h->port_replay, h->port_settler_bus,
             h->port_settler_replay, h->port_settler_commands, h->port_http, h->port_native,
             h->port_native_curve, HARNESS_JWT_SECRET, h->dir, h->port_ws, h->port_xpub, redis,
             extra_config ? extra_config : "");
    fclose (f);
}

curve_t *harness_curve (harness_t *h, const char *key)
{
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    if (config_load (&cfg, h->config, err, sizeof err)) {
        fprintf (stderr, "harness: %s\n", err);
        return NULL;
    }
    return curve_new (&cfg, key, false);
}

int harness_client (harness_t *h, void *sock, const char *key, const char *server)
{
    curve_t *curve = harness_curve (h, key);
    int rc = curve ? curve_client (curve, sock, server) : -1;
    curve_destroy (&curve);
    return rc;
}

bus_sub_t *harness_bus_sub (harness_t *h, const char *stream, int replay_timeout_ms)
{
    bool settler = strcmp (stream, "s") == 0;
    char pub[64], replay[64];
    snprintf (pub, sizeof pub, "tcp://127.0.0.1:%d", settler ? h->port_settler_bus : h->port_bus);
    snprintf (replay, sizeof replay, "tcp://127.0.0.1:%d",
              settler ? h->port_settler_replay : h->port_replay);
    curve_t *monitor = harness_curve (h, HARNESS_MONITOR);
    bus_sub_t *sub =
        monitor ? bus_sub_new (&(bus_sub_opts_t){.name = "test",
                                                 .stream = stream,
                                                 .pub_endpoint = pub,
                                                 .replay_endpoint = replay,
                                                 .rcvhwm = BUS_SUB_HWM,
                                                 .replay_timeout_ms = replay_timeout_ms,
                                                 .curve = monitor,
                                                 .server = settler ? "settler" : "matcher"})
                : NULL;
    curve_destroy (&monitor);
    return sub;
}

zsock_t *harness_dealer (harness_t *h, const char *server, const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer || harness_client (h, dealer, HARNESS_KEY, server) ||
        zsock_connect (dealer, "%s", endpoint) < 0)
        zsock_destroy (&dealer);
    return dealer;
}

int harness_start (harness_t *h, const char *exe)
{
    if (h->proc_count >= HARNESS_MAX_PROCS) {
        fprintf (stderr, "harness: more than %d processes started; raise HARNESS_MAX_PROCS\n",
                 HARNESS_MAX_PROCS);
        abort ();
    }
    int i = h->proc_count++;
    snprintf (h->procs[i].name, sizeof h->procs[i].name, "%s", exe);
    char log[sizeof h->procs[i].log];
    snprintf (log, sizeof log, "%s/%s.log", h->dir, exe); //  h->dir and the log share *h
    memcpy (h->procs[i].log, log, sizeof log);
    char path[512];
    harness_bin (exe, path, sizeof path);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_addopen (&fa, 1, h->procs[i].log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2 (&fa, 1, 2);
    char *argv[] = {path, (char *) "-c", h->config, NULL};
    if (posix_spawn (&h->procs[i].pid, path, &fa, NULL, argv, environ) != 0) {
        perror ("harness: spawn");
        abort ();
    }
    posix_spawn_file_actions_destroy (&fa);
    return i;
}

int harness_stop (harness_t *h, int i, int sig)
{
    int status = 0;
    if (h->procs[i].pid <= 0)
        return 0;
    //  A pidfd becomes readable when the process exits: wait on that, with a deadline.
    int fd = (int) syscall (SYS_pidfd_open, h->procs[i].pid, 0);
    kill (h->procs[i].pid, sig);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (fd < 0 || poll (&p, 1, HARNESS_DEADLINE_MS) <= 0)
        kill (h->procs[i].pid, SIGKILL);
    if (fd >= 0)
        close (fd);
    waitpid (h->procs[i].pid, &status, 0);
    h->procs[i].pid = 0;
    return status;
}

void harness_cleanup (harness_t *h)
{
    for (int i = 0; i < h->proc_count; i++)
        harness_stop (h, i, SIGTERM);
    if (getenv ("MCE_KEEP_TEST_DIR")) {
        fprintf (stderr, "harness: kept %s\n", h->dir);
        return;
    }
    char cmd[256];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", h->dir);
    if (system (cmd) != 0)
        fprintf (stderr, "harness: could not remove %s\n", h->dir);
}

static char *s_read_file (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc (cap);
    size_t n;
    while ((n = fread (buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc (buf, cap);
        }
    }
    buf[len] = '\0';
    fclose (f);
    return buf;
}

int harness_count_log (harness_t *h, int i, const char *needle)
{
    char *text = s_read_file (h->procs[i].log);
    int count = 0;
    for (char *p = text; p && (p = strstr (p, needle)); p += strlen (needle))
        count++;
    free (text);
    return count;
}

bool harness_wait_log (harness_t *h, int i, const char *needle, int timeout_ms)
{
    return harness_wait_log_count (h, i, needle, 1, timeout_ms);
}

bool harness_wait_log_count (harness_t *h, int i, const char *needle, int count, int timeout_ms)
{
    int fd = inotify_init1 (IN_CLOEXEC);
    inotify_add_watch (fd, h->procs[i].log, IN_MODIFY);
    int64_t deadline = s_now_ms () + timeout_ms;
    bool found = false;
    while (!(found = harness_count_log (h, i, needle) >= count)) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll (&p, 1, (int) left) > 0) {
            char buf[4096];
            if (read (fd, buf, sizeof buf) < 0 && errno != EAGAIN)
                break;
        }
    }
    close (fd);
    if (!found) {
        fprintf (stderr, "harness: \"%s\" never appeared in %s; its last lines:\n", needle,
                 h->procs[i].log);
        //  the log is gone with the test's folder: what the process said last goes with the
        //  failure, so that CI shows why
        char cmd[600];
        snprintf (cmd, sizeof cmd, "tail -n 15 '%s' >&2", h->procs[i].log);
        if (system (cmd) != 0)
            fprintf (stderr, "harness: (no log)\n");
    }
    return found;
}

typedef struct {
    char *data;
    size_t len;
} s_sink_t;

static size_t s_collect (char *ptr, size_t size, size_t n, void *arg)
{
    s_sink_t *s = arg;
    s->data = realloc (s->data, s->len + size * n + 1);
    memcpy (s->data + s->len, ptr, size * n);
    s->len += size * n;
    s->data[s->len] = '\0';
    return size * n;
}

long harness_http (harness_t *h, const char *method, const char *path, const char *json,
                   char **body)
{
    return harness_http_port (h->port_http, method, path, json, body);
}

long harness_http_port (int port, const char *method, const char *path, const char *json,
                        char **body)
{
    CURL *c = curl_easy_init ();
    char url[256];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    s_sink_t sink = {calloc (1, 1), 0};
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, (long) HARNESS_DEADLINE_MS);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, &sink);
    if (json)
        curl_easy_setopt (c, CURLOPT_POSTFIELDS, json);
    long status = 0;
    if (curl_easy_perform (c) == CURLE_OK)
        curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (headers);
    curl_easy_cleanup (c);
    if (body)
        *body = sink.data;
    else
        free (sink.data);
    return status;
}

const char *harness_token (const char *user, const char *role, char *out, size_t size)
{
    int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
    auth_claims_t claims = {.role =
                                strcmp (role, "admin") == 0 ? PROTO_ROLE_ADMIN : PROTO_ROLE_USER,
                            .iat = now,
                            .exp = now + 3600};
    snprintf (claims.sub, sizeof claims.sub, "%s", user);
    if (auth_init () || auth_jwt_mint ((const uint8_t *) HARNESS_JWT_SECRET,
                                       strlen (HARNESS_JWT_SECRET), &claims, out, size))
        abort ();
    return out;
}

void harness_wallet (harness_wallet_t *w, const char *seed_hex)
{
    if (auth_init ())
        abort ();
    if (!seed_hex)
        auth_random (w->seed, sizeof w->seed);
    else if (auth_seed_parse_hex (seed_hex, w->seed)) {
        fprintf (stderr, "harness: %s is not a 32-byte seed in hex\n", seed_hex);
        abort ();
    }
    if (auth_wallet_of_seed (w->seed, w->address, sizeof w->address))
        abort ();
}

long harness_sign_up (int port, const char *user, const char *password, const harness_wallet_t *w,
                      char **body)
{
    json_t *ask = json_pack ("{s:s,s:s}", "wallet", w->address, "username", user);
    char *text = json_dumps (ask, JSON_COMPACT), *answer = NULL;
    json_decref (ask);
    long status = harness_http_port (port, "POST", "/api/auth/challenge", text, &answer);
    free (text);
    json_t *challenge = status == 200 ? json_loads (answer, 0, NULL) : NULL;
    const char *message = json_string_value (json_object_get (challenge, "message"));
    if (!message) {
        fprintf (stderr, "harness: no challenge for %s: %ld %s\n", user, status, answer);
        json_decref (challenge);
        if (body)
            *body = answer;
        else
            free (answer);
        return status == 200 ? 0 : status;
    }
    free (answer);
    char signature[AUTH_SIGNATURE_TEXT_MAX];
    if (auth_wallet_sign (w->seed, message, strlen (message), signature, sizeof signature))
        abort ();
    json_decref (challenge);
    json_t *reg = json_pack ("{s:s,s:s,s:s,s:s}", "username", user, "password", password, "wallet",
                             w->address, "signature", signature);
    text = json_dumps (reg, JSON_COMPACT);
    json_decref (reg);
    status = harness_http_port (port, "POST", "/api/auth/register", text, body);
    free (text);
    return status;
}

MIGRATE_DECLARE (gateway);

void harness_user_add (const char *conninfo, const char *user, const char *role)
{
    char err[512];
    pg_t *pg = pg_connect (conninfo, PG_CONNECT_TIMEOUT_MS, err, sizeof err);
    if (!pg || migrate_apply (pg, "gateway", gateway_migrations, gateway_migration_count, err,
                              sizeof err)) {
        fprintf (stderr, "harness: user %s: %s\n", user, err);
        abort ();
    }
    harness_wallet_t w;
    harness_wallet (&w, NULL);
    const char *params[] = {user, w.address, role};
    pg_result_t *r = pg_exec (pg,
                              "INSERT INTO users (username, password_hash, wallet, role) "
                              "VALUES ($1, 'no login: made by the test', $2, $3)",
                              3, params);
    if (!r) {
        fprintf (stderr, "harness: user %s: %s\n", user, pg_error (pg));
        abort ();
    }
    pg_result_free (&r);
    pg_destroy (&pg);
}

int harness_deposit (int port, const char *token, const char *asset, const char *amount,
                     int timeout_ms)
{
    char body[160];
    snprintf (body, sizeof body, "{\"asset\":\"%s\",\"amount\":\"%s\"}", asset, amount);
    harness_response_t r;
    harness_request (
        port,
        &(harness_request_t){
            .method = "POST", .path = "/api/account/deposits", .body = body, .token = token},
        &r);
    json_t *j = r.status == 202 ? json_loads (r.body, 0, NULL) : NULL;
    char id[32] = "";
    snprintf (id, sizeof id, "%s", j ? json_string_value (json_object_get (j, "deposit_id")) : "");
    json_decref (j);
    if (!*id) {
        fprintf (stderr, "harness: deposit %s %s refused: %ld %s\n", amount, asset, r.status,
                 r.body ? r.body : "");
        harness_response_free (&r);
        return -1;
    }
    harness_response_free (&r);
    char status[32] = "(none)";
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        harness_request (
            port,
            &(harness_request_t){.method = "GET", .path = "/api/account/deposits", .token = token},
            &r);
        j = r.status == 200 ? json_loads (r.body, 0, NULL) : NULL; //  503: not persisted yet
        harness_response_free (&r);
        size_t i;
        json_t *row;
        json_array_foreach (json_object_get (j, "deposits"), i, row)
        {
            const char *rid = json_string_value (json_object_get (row, "deposit_id"));
            const char *st = json_string_value (json_object_get (row, "status"));
            if (rid && st && strcmp (rid, id) == 0)
                snprintf (status, sizeof status, "%s", st);
        }
        json_decref (j);
        if (strcmp (status, "credited") == 0)
            return 0;
        if (strcmp (status, "failed") == 0)
            break;
        zclock_sleep (50); //  a poll with a deadline: the chain, the settler and the persister
    }
    fprintf (stderr, "harness: deposit %s of %s %s: %s, not credited\n", id, amount, asset, status);
    return -1;
}

long harness_request (int port, const harness_request_t *r, harness_response_t *out)
{
    CURL *c = curl_easy_init ();
    char url[4096];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", port, r->path);
    s_sink_t sink = {calloc (1, 1), 0}, head = {calloc (1, 1), 0};
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    char auth[8192];
    if (r->token) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", r->token);
        headers = curl_slist_append (headers, auth);
    }
    for (int i = 0; i < 8 && r->headers[i]; i++)
        headers = curl_slist_append (headers, r->headers[i]);
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, r->method);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, (long) HARNESS_DEADLINE_MS);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, s_collect);
    curl_easy_setopt (c, CURLOPT_HEADERDATA, &head);
    if (r->body) {
        curl_easy_setopt (c, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE,
                          (long) (r->body_len ? r->body_len : strlen (r->body)));
    }
    out->status = 0;
    if (curl_easy_perform (c) == CURLE_OK)
        curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all (headers);
    curl_easy_cleanup (c);
    out->body = sink.data;
    out->headers = head.data;
    return out->status;
}

void harness_response_free (harness_response_t *out)
{
    free (out->body);
    free (out->headers);
    out->body = out->headers = NULL;
}

bool harness_response_header (const harness_response_t *resp, const char *name, char *value,
                              size_t size)
{
    size_t n = strlen (name);
    for (const char *line = resp->headers; line && *line;) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t) (end - line) : strlen (line);
        if (len > n && line[n] == ':' && strncasecmp (line, name, n) == 0) {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t vlen = (size_t) (line + len - v);
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            snprintf (value, size, "%.*s", (int) vlen, v);
            return true;
        }
        line = end ? end + 1 : line + len;
    }
    return false;
}

bool harness_wait_http (harness_t *h, const char *path, int timeout_ms)
{
    //  The gateway logs when it listens; after that the request answers or never will.
    int gateway = -1;
    for (int i = 0; i < h->proc_count; i++)
        if (strcmp (h->procs[i].name, "mce-gateway") == 0)
            gateway = i;
    if (gateway < 0 || !harness_wait_log (h, gateway, "HTTP API on", timeout_ms))
        return false;
    return harness_http (h, "GET", path, NULL, NULL) == 200;
}

int harness_run (const char *exe, const char *const *args, char **out)
{
    char path[512], log[] = "/tmp/mce-run-XXXXXX";
    harness_bin (exe, path, sizeof path);
    int fd = mkstemp (log);
    char *argv[16] = {path};
    int n = 1;
    for (; args && args[n - 1] && n < 15; n++)
        argv[n] = (char *) args[n - 1];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_adddup2 (&fa, fd, 1);
    posix_spawn_file_actions_adddup2 (&fa, fd, 2);
    pid_t pid;
    int status = -1;
    if (posix_spawn (&pid, path, &fa, NULL, argv, environ) == 0)
        waitpid (pid, &status, 0);
    posix_spawn_file_actions_destroy (&fa);
    close (fd);
    if (out)
        *out = s_read_file (log);
    unlink (log);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

proto_msg_t harness_order_msg (uint64_t rid, const char *user, bool buy, int64_t qty, int64_t price)
{
    proto_msg_t cmd = {.kind = PROTO_new_order};
    proto_new_order_t *o = &cmd.new_order;
    o->rid = rid;
    snprintf (o->user, sizeof o->user, "%s", user);
    snprintf (o->market, sizeof o->market, "campus-1");
    o->side = buy ? PROTO_SIDE_BUY : PROTO_SIDE_SELL;
    o->type = PROTO_ORDER_TYPE_LIMIT;
    o->tif = PROTO_TIF_GTC;
    o->qty = qty;
    o->price = price;
    o->ts = 1;
    return cmd;
}

void harness_order (void *dealer, uint64_t rid, const char *user, bool buy, int64_t qty,
                    int64_t price)
{
    proto_msg_t cmd = harness_order_msg (rid, user, buy, qty, price);
    proto_buf_t buf;
    proto_buf_init (&buf);
    if (proto_encode (&cmd, &buf) == 0)
        zmq_send (zsock_resolve (dealer), buf.data, buf.len, 0);
    proto_buf_free (&buf);
}

long harness_journal_events (harness_t *h, harness_event_fn fn, void *arg)
{
    char dir[256];
    snprintf (dir, sizeof dir, "%s/data/matcher", h->dir);
    journal_reader_t *r = journal_reader_new (dir, 1);
    if (!r)
        return -1;
    long count = 0;
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    while (journal_reader_next (r, UINT64_MAX, &seq, &data, &len) == 1) {
        const char *topic;
        const uint8_t *ev;
        size_t topic_len, ev_len;
        proto_msg_t msg;
        if (bus_record_split (data, len, &topic, &topic_len, &ev, &ev_len) ||
            proto_decode (ev, ev_len, &msg, NULL, 0)) {
            count = -1;
            break;
        }
        fn (seq, &msg, ev, ev_len, arg);
        count++;
    }
    journal_reader_destroy (&r);
    return count;
}
