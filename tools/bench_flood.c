/*  mce-bench-flood — what a flood from one address costs everyone else.

    It starts a real mce-matcher, mce-gateway and mce-broadcaster (the integration tests'
    harness, with a throwaway PostgreSQL) with the gateway's default limits and the real
    password cost, then runs these phases, --seconds each:

        idle       nothing but the probe
        slowloris  --connections sockets from 127.0.0.2, each sending a request header line
                   every S_DRIP_MS and never finishing; closed ones are opened again at once
        logins     S_LOGIN_THREADS threads from 127.0.0.2 sending wrong-password logins for a
                   real user as fast as they are answered
        websocket  --ws-clients WebSocket clients that subscribe and send bad JSON in a loop
                   and never read (the broadcaster's flood)

    Meanwhile the probe, from 127.0.0.1, asks GET /api/health and places an order (a signed-in
    user's POST /api/trading/orders) every S_PROBE_MS, each on a keep-alive connection of its
    own, and times every answer. For each phase it prints the probe's p50/p99/max and errors,
    and the growth of the gateway's and the broadcaster's peak resident memory over the phase
    (VmHWM, reset at the phase's start through /proc/<pid>/clear_refs, minus VmRSS then).

    Prints a table, or with --json one JSON object on the last line. A benchmark, not a test:
    it exits 0 when it ran, 1 when it could not (a process did not start, or died).
*/
#include "clock.h"
#include "harness.h"
#include "pgtest.h"
#include "wsclient.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_PROBE_MS      20   //  the probe's pace: one health and one order each turn
#define S_DRIP_MS       2000 //  a slowloris connection sends a header line this often
#define S_LOGIN_THREADS 8    //  concurrent login flooders
#define S_ATTACKER      "127.0.0.2"
#define S_PROBE         "127.0.0.1"
#define S_SAMPLES_MAX   100000 //  probe answers kept per kind and phase

typedef struct {
    int64_t *ns;
    size_t n;
    long errors;
} s_lat_t;

typedef struct {
    harness_t h;
    int gateway, broadcaster;
    char token[1024];
    atomic_bool stop;
    s_lat_t health, order;
    long connections, ws_clients;
    atomic_long attack_sent, attack_refused;
} s_bench_t;

//  ---------------------------------------------------------------------------------------
//  Memory

static long s_status_kib (pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen (path, "r");
    long kib = -1;
    size_t len = strlen (field);
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, field, len) == 0 && line[len] == ':')
            kib = atol (line + len + 1);
    if (f)
        fclose (f);
    return kib;
}

//  Resets the process's peak RSS to its current RSS (Linux: clear_refs, value 5); returns it.
static long s_peak_reset (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/clear_refs", (int) pid);
    FILE *f = fopen (path, "w");
    if (f) {
        fputs ("5", f);
        fclose (f);
    }
    return s_status_kib (pid, "VmRSS");
}

//  ---------------------------------------------------------------------------------------
//  The probe

static size_t s_discard (char *data, size_t size, size_t n, void *arg)
{
    (void) data;
    (void) arg;
    return size * n;
}

static CURL *s_handle (const s_bench_t *b, const char *path, const char *body, const char *token,
                       struct curl_slist **headers)
{
    CURL *c = curl_easy_init ();
    char url[128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", b->h.port_http, path);
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_INTERFACE, "host!" S_PROBE);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, 30000L);
    if (body) {
        curl_easy_setopt (c, CURLOPT_POSTFIELDS, body);
        char auth[1100];
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
        *headers = curl_slist_append (*headers, auth);
        *headers = curl_slist_append (*headers, "Content-Type: application/json");
        curl_easy_setopt (c, CURLOPT_HTTPHEADER, *headers);
    }
    return c;
}

static void s_time (CURL *c, s_lat_t *lat, long ok)
{
    int64_t t0 = clock_mono_ns ();
    long status = 0;
    if (curl_easy_perform (c) == CURLE_OK)
        curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
    if (status != ok)
        lat->errors++;
    else if (lat->n < S_SAMPLES_MAX)
        lat->ns[lat->n++] = clock_mono_ns () - t0;
}

static void *s_probe (void *arg)
{
    s_bench_t *b = arg;
    struct curl_slist *headers = NULL;
    CURL *health = s_handle (b, "/api/health", NULL, NULL, NULL);
    CURL *order = s_handle (b, "/api/trading/orders",
                            "{\"market\":\"campus-1\",\"side\":\"buy\",\"energy_amount\":\"1\","
                            "\"price\":\"0.01\"}",
                            b->token, &headers);
    int64_t next = clock_mono_ns ();
    while (!atomic_load (&b->stop)) {
        s_time (health, &b->health, 200);
        s_time (order, &b->order, 201);
        next += (int64_t) S_PROBE_MS * MCE_NS_PER_MSEC;
        int64_t wait = next - clock_mono_ns ();
        if (wait > 0)
            poll (NULL, 0, (int) (wait / MCE_NS_PER_MSEC)); //  the probe's pace
    }
    curl_easy_cleanup (health);
    curl_easy_cleanup (order);
    curl_slist_free_all (headers);
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Attacks

//  A socket from the attacker's address to the gateway, connecting (non-blocking), or -1.
static int s_attacker_socket (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    inet_pton (AF_INET, S_ATTACKER, &from.sin_addr);
    inet_pton (AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons ((uint16_t) port);
    if (fd < 0 || bind (fd, (struct sockaddr *) &from, sizeof from) ||
        (connect (fd, (struct sockaddr *) &to, sizeof to) && errno != EINPROGRESS)) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    return fd;
}

static void *s_slowloris (void *arg)
{
    s_bench_t *b = arg;
    int *fds = malloc ((size_t) b->connections * sizeof *fds);
    bool *started = calloc ((size_t) b->connections, sizeof *started);
    for (long i = 0; i < b->connections; i++)
        fds[i] = -1;
    static const char first[] = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    static const char drip[] = "X-Drip: 1\r\n";
    while (!atomic_load (&b->stop)) {
        for (long i = 0; i < b->connections && !atomic_load (&b->stop); i++) {
            if (fds[i] < 0) { //  closed or refused: opened again at once
                fds[i] = s_attacker_socket (b->h.port_http);
                started[i] = false;
                atomic_fetch_add (&b->attack_sent, 1);
                continue;
            }
            char peek;
            ssize_t got = recv (fds[i], &peek, 1, MSG_DONTWAIT | MSG_PEEK);
            bool gone = got >= 0 || (errno != EAGAIN && errno != ENOTCONN);
            const char *line = started[i] ? drip : first;
            ssize_t sent =
                gone ? -1 : send (fds[i], line, strlen (line), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent > 0)
                started[i] = true;
            else if (gone || (errno != EAGAIN && errno != ENOTCONN)) {
                //  answered (408, 503 ...) or closed by the gateway
                close (fds[i]);
                fds[i] = -1;
                atomic_fetch_add (&b->attack_refused, 1);
            }
        }
        for (int t = 0; t < S_DRIP_MS && !atomic_load (&b->stop); t += 100)
            poll (NULL, 0, 100); //  the drip's pace
    }
    for (long i = 0; i < b->connections; i++)
        if (fds[i] >= 0)
            close (fds[i]);
    free (started);
    free (fds);
    return NULL;
}

static void *s_logins (void *arg)
{
    s_bench_t *b = arg;
    CURL *c = curl_easy_init ();
    char url[128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/api/auth/login", b->h.port_http);
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_INTERFACE, "host!" S_ATTACKER);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt (c, CURLOPT_POSTFIELDS,
                      "{\"username\":\"alice\",\"password\":\"not her password at all\"}");
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    while (!atomic_load (&b->stop)) {
        long status = 0;
        if (curl_easy_perform (c) == CURLE_OK)
            curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
        atomic_fetch_add (&b->attack_sent, 1);
        if (status == 429 || status == 503)
            atomic_fetch_add (&b->attack_refused, 1);
    }
    curl_slist_free_all (headers);
    curl_easy_cleanup (c);
    return NULL;
}

static void *s_websockets (void *arg)
{
    s_bench_t *b = arg;
    wsclient_t **clients = calloc ((size_t) b->ws_clients, sizeof *clients);
    for (long i = 0; i < b->ws_clients; i++)
        clients[i] = wsclient_connect (b->h.port_ws, NULL, 4096, HARNESS_DEADLINE_MS);
    static const char *const sends[] = {
        "{\"op\":\"subscribe\",\"channel\":\"depth\",\"market\":\"campus-1\"}",
        "{\"op\":\"unsubscribe\",\"channel\":\"depth\",\"market\":\"campus-1\"}",
        "this is not JSON, and the answer is an error"};
    for (long round = 0; !atomic_load (&b->stop); round++)
        for (long i = 0; i < b->ws_clients && !atomic_load (&b->stop); i++) {
            if (!clients[i])
                continue;
            atomic_fetch_add (&b->attack_sent, 1);
            if (wsclient_send (clients[i], sends[round % 3]) < 0) {
                wsclient_destroy (&clients[i]); //  closed by the broadcaster
                atomic_fetch_add (&b->attack_refused, 1);
            }
        }
    for (long i = 0; i < b->ws_clients; i++)
        wsclient_destroy (&clients[i]);
    free (clients);
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Phases

typedef struct {
    const char *name;
    void *(*attack) (void *);
    int threads;
} s_phase_t;

typedef struct {
    double health[3], order[3]; //  p50, p99, max in ms
    long health_errors, order_errors, attack_sent, attack_refused;
    double gateway_mb, broadcaster_mb; //  peak RSS growth over the phase
} s_result_t;

static int s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static void s_percentiles (s_lat_t *lat, double out[3])
{
    qsort (lat->ns, lat->n, sizeof *lat->ns, s_cmp);
    out[0] = lat->n ? (double) lat->ns[lat->n / 2] / 1e6 : 0;
    out[1] = lat->n ? (double) lat->ns[(size_t) ((double) lat->n * 0.99)] / 1e6 : 0;
    out[2] = lat->n ? (double) lat->ns[lat->n - 1] / 1e6 : 0;
}

static void s_run_phase (s_bench_t *b, const s_phase_t *phase, int seconds, s_result_t *r)
{
    pid_t gw = b->h.procs[b->gateway].pid, bc = b->h.procs[b->broadcaster].pid;
    long gw_start = s_peak_reset (gw), bc_start = s_peak_reset (bc);
    b->health.n = b->order.n = 0;
    b->health.errors = b->order.errors = 0;
    atomic_store (&b->attack_sent, 0);
    atomic_store (&b->attack_refused, 0);
    atomic_store (&b->stop, false);
    pthread_t probe, attackers[S_LOGIN_THREADS];
    pthread_create (&probe, NULL, s_probe, b);
    for (int i = 0; i < phase->threads; i++)
        pthread_create (&attackers[i], NULL, phase->attack, b);
    poll (NULL, 0, seconds * 1000); //  the phase's length
    atomic_store (&b->stop, true);
    pthread_join (probe, NULL);
    for (int i = 0; i < phase->threads; i++)
        pthread_join (attackers[i], NULL);
    s_percentiles (&b->health, r->health);
    s_percentiles (&b->order, r->order);
    r->health_errors = b->health.errors;
    r->order_errors = b->order.errors;
    r->attack_sent = atomic_load (&b->attack_sent);
    r->attack_refused = atomic_load (&b->attack_refused);
    r->gateway_mb = (double) (s_status_kib (gw, "VmHWM") - gw_start) / 1024.0;
    r->broadcaster_mb = (double) (s_status_kib (bc, "VmHWM") - bc_start) / 1024.0;
}

//  ---------------------------------------------------------------------------------------

static int s_setup (s_bench_t *b, pgtest_t *pg)
{
    if (pgtest_start (pg, NULL)) {
        fprintf (stderr, "mce-bench-flood: no PostgreSQL (initdb, pg_ctl)\n");
        return -1;
    }
    char config[1024];
    snprintf (config, sizeof config,
              "markets = ( { id = \"campus-1\"; escrow = false; epoch_seconds = 2592000; } );\n"
              "postgres = { url = \"%s\"; };\n",
              pg->conninfo);
    harness_init (&b->h, config);
    //  the defaults an operator runs with, where the harness relaxes them for tests
    const char *env[][2] = {{"MCE_GATEWAY_RATE_PER_S", "100"},
                            {"MCE_GATEWAY_RATE_BURST", "200"},
                            {"MCE_GATEWAY_LOGINS_PER_MINUTE", "10"},
                            {"MCE_GATEWAY_LOGINS_PER_MINUTE_ADDRESS", "60"},
                            {"MCE_GATEWAY_PASSWORD_COST", "interactive"},
                            {"MCE_BROADCASTER_MAX_SESSIONS_PER_ADDRESS", "100"},
                            {"MCE_BROADCASTER_QUEUE_BYTES_PER_ADDRESS", "16777216"}};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        setenv (env[i][0], env[i][1], 1);
    int matcher = harness_start (&b->h, "mce-matcher");
    b->gateway = harness_start (&b->h, "mce-gateway");
    b->broadcaster = harness_start (&b->h, "mce-broadcaster");
    if (!harness_wait_log (&b->h, matcher, "commands on", HARNESS_DEADLINE_MS) ||
        !harness_wait_http (&b->h, "/api/health", HARNESS_DEADLINE_MS) ||
        !harness_wait_log (&b->h, b->broadcaster, "WebSocket on", HARNESS_DEADLINE_MS)) {
        fprintf (stderr, "mce-bench-flood: the processes did not start (logs in %s)\n", b->h.dir);
        return -1;
    }
    harness_user_add (pg->conninfo, "alice", "user");
    harness_token ("alice", "user", b->token, sizeof b->token);
    return 0;
}

int main (int argc, char **argv)
{
    int seconds = 20, json = 0;
    long connections = 4000, ws_clients = 100;
    static const struct option options[] = {{"seconds", required_argument, NULL, 's'},
                                            {"connections", required_argument, NULL, 'n'},
                                            {"ws-clients", required_argument, NULL, 'w'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (opt == 's')
            seconds = atoi (optarg);
        else if (opt == 'n')
            connections = atol (optarg);
        else if (opt == 'w')
            ws_clients = atol (optarg);
        else if (opt == 'j')
            json = 1;
        else {
            printf ("Usage: mce-bench-flood [--seconds S] [--connections N] [--ws-clients K] "
                    "[--json]\n\n"
                    "Runs an idle phase, a slowloris of N connections, a login flood and a "
                    "WebSocket flood of K\nclients (each S seconds, default 20, 4000, 100) "
                    "against a real gateway and broadcaster,\nwhile timing a health check and "
                    "an order from another address every %d ms.\n",
                    S_PROBE_MS);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (seconds < 1 || connections < 1 || connections > 60000 || ws_clients < 1 ||
        ws_clients > 10000) {
        fprintf (stderr, "mce-bench-flood: --seconds >= 1, --connections 1..60000, "
                         "--ws-clients 1..10000\n");
        return 2;
    }
    //  every slowloris socket is a descriptor of ours
    struct rlimit nofile;
    getrlimit (RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit (RLIMIT_NOFILE, &nofile);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_bench_t *b = calloc (1, sizeof *b);
    b->connections = connections;
    b->ws_clients = ws_clients;
    b->health.ns = calloc (S_SAMPLES_MAX, sizeof (int64_t));
    b->order.ns = calloc (S_SAMPLES_MAX, sizeof (int64_t));
    pgtest_t pg;
    int rc = 1;
    if (s_setup (b, &pg) == 0) {
        const s_phase_t phases[] = {{"idle", NULL, 0},
                                    {"slowloris", s_slowloris, 1},
                                    {"logins", s_logins, S_LOGIN_THREADS},
                                    {"websocket", s_websockets, 1}};
        s_result_t results[4];
        for (int i = 0; i < 4; i++)
            s_run_phase (b, &phases[i], seconds, &results[i]);
        printf ("%-10s %10s %10s %10s %10s %10s %10s %8s %12s %10s %10s\n", "phase", "health p50",
                "health p99", "health max", "order p50", "order p99", "order max", "errors",
                "attacks", "gw +MB", "bc +MB");
        for (int i = 0; i < 4; i++) {
            const s_result_t *r = &results[i];
            char attacks[32];
            snprintf (attacks, sizeof attacks, "%ld/%ld", r->attack_refused, r->attack_sent);
            printf ("%-10s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %8ld %12s %10.1f %10.1f\n",
                    phases[i].name, r->health[0], r->health[1], r->health[2], r->order[0],
                    r->order[1], r->order[2], r->health_errors + r->order_errors, attacks,
                    r->gateway_mb, r->broadcaster_mb);
        }
        printf ("(ms; errors: probe answers that were not 200/201; attacks: refused or closed / "
                "sent; +MB: peak RSS growth)\n");
        if (json) {
            printf ("{\"seconds\":%d,\"connections\":%ld,\"ws_clients\":%ld", seconds, connections,
                    ws_clients);
            for (int i = 0; i < 4; i++) {
                const s_result_t *r = &results[i];
                printf (",\"%s\":{\"health_p50_ms\":%.2f,\"health_p99_ms\":%.2f,"
                        "\"order_p50_ms\":%.2f,\"order_p99_ms\":%.2f,\"errors\":%ld,"
                        "\"attacks\":%ld,\"refused\":%ld,\"gateway_mb\":%.1f,"
                        "\"broadcaster_mb\":%.1f}",
                        phases[i].name, r->health[0], r->health[1], r->order[0], r->order[1],
                        r->health_errors + r->order_errors, r->attack_sent, r->attack_refused,
                        r->gateway_mb, r->broadcaster_mb);
            }
            printf ("}\n");
        }
        rc = 0;
        for (int i = 0; i < b->h.proc_count; i++)
            if (waitpid (b->h.procs[i].pid, NULL, WNOHANG) != 0) {
                fprintf (stderr, "mce-bench-flood: %s died (log: %s)\n", b->h.procs[i].name,
                         b->h.procs[i].log);
                rc = 1;
            }
    }
    harness_cleanup (&b->h);
    pgtest_stop (&pg);
    free (b->health.ns);
    free (b->order.ns);
    free (b);
    curl_global_cleanup ();
    return rc;
}
