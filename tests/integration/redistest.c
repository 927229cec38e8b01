/*  redistest — see redistest.h.  */
#include "redistest.h"
#include "guardian.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_PORT_ATTEMPTS 3    //  a free port can be taken between our bind and the server's
#define S_POLL_MS       10   //  between two PINGs while the server starts
#define S_STOP_MS       5000 //  for a killed server to be gone
#define S_TAIL_BYTES    2000

extern char **environ;

static int64_t s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &a, sizeof a) == 0 &&
        getsockname (fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs (a.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

static void s_tail (const redistest_t *rt)
{
    char path[sizeof rt->dir + 16];
    snprintf (path, sizeof path, "%s/redis.log", rt->dir);
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    char buf[S_TAIL_BYTES + 1];
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, size > S_TAIL_BYTES ? size - S_TAIL_BYTES : 0, SEEK_SET);
    size_t n = fread (buf, 1, S_TAIL_BYTES, f);
    buf[n] = '\0';
    fclose (f);
    fprintf (stderr, "redistest: --- end of %s ---\n%s\nredistest: ---\n", path, buf);
}

//  Writes the server's pid (or nothing, once it is gone) where the guardian looks for it.
static void s_write_pid (const redistest_t *rt)
{
    char path[sizeof rt->dir + 16], tmp[sizeof rt->dir + 16];
    snprintf (path, sizeof path, "%s/redis.pid", rt->dir);
    snprintf (tmp, sizeof tmp, "%s/redis.pid.new", rt->dir);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return;
    if (rt->pid > 0)
        fprintf (f, "%d\n", (int) rt->pid);
    fclose (f);
    rename (tmp, path);
}

//  Waits for the server to exit, at most timeout_ms; SIGKILL past that. Returns its wait status
//  or -1.
static int s_reap (pid_t pid, int timeout_ms)
{
    int fd = (int) syscall (SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc;
        while ((rc = poll (&p, 1, timeout_ms)) < 0 && errno == EINTR)
            ;
        if (rc == 0)
            kill (pid, SIGKILL);
        close (fd);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

//  The guardian: waits for its stdin (our pipe) to close, then kills the server it finds in
//  redis.pid (if that pid is still a redis-server) and removes the folder.
static int s_start_guardian (redistest_t *rt)
{
    char stop[1024];
    snprintf (stop, sizeof stop,
              "pid=$(head -n1 '%s/redis.pid' 2>/dev/null); "
              "if [ -n \"$pid\" ] && grep -q redis-server \"/proc/$pid/comm\" 2>/dev/null; then "
              "kill -9 \"$pid\"; fi",
              rt->dir);
    return guardian_start ("redistest", stop, rt->dir, &rt->guardian, &rt->guard_fd);
}

//  One PING on a fresh connection: true when it answers PONG.
static bool s_pong (int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", port, tv);
    bool pong = false;
    if (c && !c->err) {
        redisSetTimeout (c, tv);
        redisReply *r = redisCommand (c, "PING");
        pong = r && r->type == REDIS_REPLY_STATUS && strcmp (r->str, "PONG") == 0;
        freeReplyObject (r);
    }
    redisFree (c);
    return pong;
}

//  Starts redis-server on rt->port and waits (polling PING, with a deadline) until it answers.
//  0, or -1 when it exited (the port was taken, say) or never answered.
static int s_start_server (redistest_t *rt)
{
    char port[16], log[sizeof rt->dir + 16];
    snprintf (port, sizeof port, "%d", rt->port);
    snprintf (log, sizeof log, "%s/redis.log", rt->dir);
    const char *argv[] = {"redis-server", "--port",      port, "--bind",
                          "127.0.0.1",    "--save",      "",   "--appendonly",
                          "no",           "--daemonize", "no", "--dir",
                          rt->dir,        "--logfile",   log,  NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2 (&fa, 1, 2);
    int rc = posix_spawnp (&rt->pid, argv[0], &fa, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy (&fa);
    if (rc != 0) {
        fprintf (stderr, "redistest: cannot run redis-server: %s (apt-get install redis-server)\n",
                 strerror (rc));
        rt->pid = 0;
        return -1;
    }
    s_write_pid (rt);
    int64_t deadline = s_now_ms () + REDISTEST_DEADLINE_MS;
    while (s_now_ms () < deadline) {
        int status;
        if (waitpid (rt->pid, &status, WNOHANG) == rt->pid) {
            fprintf (stderr, "redistest: redis-server on port %d exited (status %d)\n", rt->port,
                     status);
            rt->pid = 0;
            s_write_pid (rt);
            s_tail (rt);
            return -1;
        }
        if (s_pong (rt->port))
            return 0;
        poll (NULL, 0, S_POLL_MS);
    }
    fprintf (stderr, "redistest: redis-server on port %d never answered PING\n", rt->port);
    redistest_stop_server (rt);
    s_tail (rt);
    return -1;
}

static int s_remove (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void) st;
    (void) type;
    (void) ftw;
    remove (path);
    return 0;
}

int redistest_start (redistest_t *rt)
{
    memset (rt, 0, sizeof *rt);
    rt->guard_fd = -1;
    snprintf (rt->dir, sizeof rt->dir, "/tmp/mce-redis-XXXXXX");
    if (!mkdtemp (rt->dir)) {
        fprintf (stderr, "redistest: cannot create a folder in /tmp: %s\n", strerror (errno));
        rt->dir[0] = '\0';
        return -1;
    }
    if (s_start_guardian (rt) != 0) {
        redistest_stop (rt);
        return -1;
    }
    for (int attempt = 0; attempt < S_PORT_ATTEMPTS; attempt++) {
        rt->port = s_free_port ();
        if (rt->port > 0 && s_start_server (rt) == 0) {
            snprintf (rt->url, sizeof rt->url, "redis://127.0.0.1:%d", rt->port);
            return 0;
        }
    }
    fprintf (stderr, "redistest: could not start Redis in %s\n", rt->dir);
    redistest_stop (rt);
    return -1;
}

int redistest_stop_server (redistest_t *rt)
{
    if (rt->pid <= 0)
        return 0;
    kill (rt->pid, SIGKILL);
    int status = s_reap (rt->pid, S_STOP_MS);
    rt->pid = 0;
    s_write_pid (rt);
    return status == -1 ? -1 : 0;
}

int redistest_restart (redistest_t *rt)
{
    if (rt->pid > 0)
        return 0;
    return s_start_server (rt);
}

void redistest_stop (redistest_t *rt)
{
    if (rt->pid > 0)
        redistest_stop_server (rt);
    if (rt->dir[0] && !getenv ("MCE_KEEP_TEST_DIR"))
        nftw (rt->dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    else if (rt->dir[0])
        fprintf (stderr, "redistest: kept %s\n", rt->dir);
    if (rt->guardian > 0) {
        close (rt->guard_fd); //  the guardian wakes up, finds nothing left to do and exits
        s_reap (rt->guardian, S_STOP_MS);
    }
    memset (rt, 0, sizeof *rt);
    rt->guard_fd = -1;
}

redisContext *redistest_connect (const redistest_t *rt)
{
    struct timeval tv = {REDISTEST_DEADLINE_MS / 1000, 0};
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", rt->port, tv);
    if (!c || c->err) {
        fprintf (stderr, "redistest: connect to port %d: %s\n", rt->port,
                 c ? c->errstr : "out of memory");
        redisFree (c);
        return NULL;
    }
    redisSetTimeout (c, tv);
    return c;
}
