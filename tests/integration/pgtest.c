/*  pgtest — see pgtest.h.

    The folder holds data/ (the cluster), the server's unix socket, server.log (the server's
    own log) and tools.log (what initdb and pg_ctl said). Nothing but the guardian runs
    through a shell: initdb and pg_ctl are spawned with their arguments as they are.
*/
#include "pgtest.h"
#include "guardian.h"
#include "pg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_PG_USER       "postgres"
#define S_PORT_ATTEMPTS 3    //  a free port can be taken between our bind and the server's
#define S_SOCKET_MAX    100  //  sun_path is 108 bytes, with "/.s.PGSQL.NNNNN" appended
#define S_TAIL_BYTES    3000 //  of a log shown when something fails
#define S_ARGS_MAX      24
#define S_CONNECT_MS    10000

extern char **environ;

//  --------------------------------------------------------------------------------------------
//  Processes

static bool s_root (void)
{
    return geteuid () == 0;
}

//  setpriv, not runuser: runuser opens a PAM session, and where a session manager ends every
//  process of a user when that user's last session closes, one test's runuser finishing killed
//  another test's initdb (seen as "Session terminated" in a parallel ctest). setpriv only
//  changes the ids.
static const char *s_setpriv (void)
{
    static const char *paths[] = {"/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access (paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

//  Waits for pid to end, at most timeout_s; kills it past that. Returns its wait status or -1.
static int s_wait_pid (pid_t pid, int timeout_s)
{
    int fd = (int) syscall (SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc;
        while ((rc = poll (&p, 1, timeout_s * 1000)) < 0 && errno == EINTR)
            ;
        if (rc == 0) {
            fprintf (stderr, "pgtest: pid %d still running after %d s: killed\n", (int) pid,
                     timeout_s);
            kill (pid, SIGKILL);
        }
        close (fd);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

static void s_tail (const char *path)
{
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
    fprintf (stderr, "pgtest: --- end of %s ---\n%s\npgtest: ---\n", path, buf);
}

//  Runs a Postgres tool (bin/<tool> args...) as the postgres user when we are root, with its
//  output appended to tools.log. Returns 0 when it exited 0, else -1 (its log shown).
static int s_tool (pgtest_t *pg, const char *tool, const char *const *args)
{
    char exe[sizeof pg->bin + 32], log[sizeof pg->dir + 16];
    snprintf (exe, sizeof exe, "%s/%s", pg->bin, tool);
    snprintf (log, sizeof log, "%s/tools.log", pg->dir);
    const char *argv[S_ARGS_MAX];
    int n = 0;
    if (s_root ()) {
        argv[n++] = s_setpriv ();
        argv[n++] = "--reuid=" S_PG_USER;
        argv[n++] = "--regid=" S_PG_USER;
        argv[n++] = "--init-groups";
        argv[n++] = "--";
    }
    argv[n++] = exe;
    for (int i = 0; args[i]; i++) {
        if (n >= S_ARGS_MAX - 1) {
            fprintf (stderr, "pgtest: too many arguments for %s\n", tool);
            return -1;
        }
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2 (&fa, 1, 2);
    //  the postgres user may not be allowed into our working directory
    posix_spawn_file_actions_addchdir_np (&fa, pg->dir);
    pid_t pid;
    int rc = posix_spawn (&pid, argv[0], &fa, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy (&fa);
    if (rc != 0) {
        fprintf (stderr, "pgtest: cannot run %s: %s\n", argv[0], strerror (rc));
        return -1;
    }
    int status = s_wait_pid (pid, PGTEST_DEADLINE_S + 10);
    if (status != -1 && WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return 0;
    fprintf (stderr, "pgtest: %s failed (status %d)\n", tool, status);
    s_tail (log);
    return -1;
}

//  --------------------------------------------------------------------------------------------
//  Setup

//  $MCE_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin, else pg_ctl's PATH folder.
static int s_find_bin (char *buf, size_t size)
{
    const char *env = getenv ("MCE_PG_BIN");
    if (env && *env) {
        snprintf (buf, size, "%s", env);
        return 0;
    }
    glob_t g;
    int best = -1;
    if (glob ("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            int version = atoi (g.gl_pathv[i] + strlen ("/usr/lib/postgresql/"));
            if (version > best) {
                best = version;
                snprintf (buf, size, "%.*s", (int) (strlen (g.gl_pathv[i]) - strlen ("/pg_ctl")),
                          g.gl_pathv[i]);
            }
        }
        globfree (&g);
    }
    if (best >= 0)
        return 0;
    const char *path = getenv ("PATH");
    char dirs[4096];
    snprintf (dirs, sizeof dirs, "%s", path ? path : "");
    char *save;
    for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save)) {
        char exe[4200];
        snprintf (exe, sizeof exe, "%s/pg_ctl", d);
        if (access (exe, X_OK) == 0) {
            snprintf (buf, size, "%s", d);
            return 0;
        }
    }
    fprintf (stderr, "pgtest: no PostgreSQL binaries (apt-get install postgresql, or set "
                     "MCE_PG_BIN)\n");
    return -1;
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

//  Makes the folder, handed to the postgres user when we are root.
static int s_make_dir (pgtest_t *pg, const char *dir)
{
    if (dir) {
        snprintf (pg->dir, sizeof pg->dir, "%s/pg", dir);
        if (mkdir (pg->dir, 0700) != 0) {
            fprintf (stderr, "pgtest: cannot create %s: %s\n", pg->dir, strerror (errno));
            return -1;
        }
        struct stat st;
        //  mkdtemp folders are 0700: let the postgres user through to <dir>/pg
        if (s_root () && stat (dir, &st) == 0 && !(st.st_mode & S_IXOTH))
            chmod (dir, (st.st_mode & 07777) | S_IXOTH);
    }
    else {
        snprintf (pg->dir, sizeof pg->dir, "/tmp/mce-pg-XXXXXX");
        if (!mkdtemp (pg->dir)) {
            fprintf (stderr, "pgtest: cannot create a folder in /tmp: %s\n", strerror (errno));
            pg->dir[0] = '\0';
            return -1;
        }
        pg->own_dir = true;
    }
    if (s_root ()) {
        struct passwd *pw = getpwnam (S_PG_USER);
        if (!pw || !s_setpriv ()) {
            fprintf (stderr,
                     "pgtest: running as root needs the '%s' user and setpriv "
                     "(apt-get install postgresql)\n",
                     S_PG_USER);
            return -1;
        }
        if (chown (pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf (stderr, "pgtest: chown %s: %s\n", pg->dir, strerror (errno));
            return -1;
        }
    }
    return 0;
}

//  The guardian: a shell in its own session that waits for its stdin (our pipe) to close,
//  then stops the server and removes the folder. After a normal pgtest_stop both are done
//  already and it just exits.
static int s_start_guardian (pgtest_t *pg)
{
    char as_pg[128] = "";
    if (s_root ())
        snprintf (as_pg, sizeof as_pg, "%s --reuid=%s --regid=%s --init-groups -- ", s_setpriv (),
                  S_PG_USER, S_PG_USER);
    char stop[2048];
    snprintf (stop, sizeof stop,
              "pid=$(head -n1 '%s/data/postmaster.pid' 2>/dev/null); "
              "if [ -n \"$pid\" ]; then "
              "%s'%s/pg_ctl' -D '%s/data' -m immediate -w -t %d stop || kill -9 \"$pid\"; fi",
              pg->dir, as_pg, pg->bin, pg->dir, PGTEST_DEADLINE_S);
    return guardian_start ("pgtest", stop, pg->dir, &pg->guardian, &pg->guard_fd);
}

//  pg_ctl start on pg->port, waiting (with pg_ctl's deadline) until the server accepts.
static int s_start_server (pgtest_t *pg)
{
    char data[sizeof pg->dir + 8], log[sizeof pg->dir + 16], opts[sizeof pg->dir + 256],
        timeout[16];
    snprintf (data, sizeof data, "%s/data", pg->dir);
    snprintf (log, sizeof log, "%s/server.log", pg->dir);
    snprintf (timeout, sizeof timeout, "%d", PGTEST_DEADLINE_S);
    //  the socket lives in the folder unless its path would be too long for sun_path; the
    //  tests connect over TCP anyway. fsync=off costs nothing but durability across a power
    //  loss; synchronous_commit stays on (one write(2) per commit, no fsync) so that a commit
    //  survives pgtest_stop_server's immediate stop, as it survives a real server's crash.
    bool socket_here = strlen (pg->dir) < S_SOCKET_MAX;
    snprintf (opts, sizeof opts,
              "-p %d -k '%s' -c listen_addresses=127.0.0.1 -c fsync=off "
              "-c full_page_writes=off",
              pg->port, socket_here ? pg->dir : "");
    const char *args[] = {"-D",    data, "-l", log,  "-w",    "-t",
                          timeout, "-s", "-o", opts, "start", NULL};
    if (s_tool (pg, "pg_ctl", args) != 0) {
        s_tail (log);
        return -1;
    }
    pg->running = true;
    snprintf (pg->conninfo, sizeof pg->conninfo,
              "host=127.0.0.1 port=%d user=postgres dbname=" PGTEST_DB, pg->port);
    return 0;
}

static int s_remove (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void) st;
    (void) type;
    (void) ftw;
    if (remove (path) != 0)
        fprintf (stderr, "pgtest: cannot remove %s: %s\n", path, strerror (errno));
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  API

int pgtest_start (pgtest_t *pg, const char *dir)
{
    memset (pg, 0, sizeof *pg);
    pg->owner = true;
    pg->guard_fd = -1;
    if (s_find_bin (pg->bin, sizeof pg->bin) != 0 || s_make_dir (pg, dir) != 0 ||
        s_start_guardian (pg) != 0)
        goto failed;

    char data[sizeof pg->dir + 8];
    snprintf (data, sizeof data, "%s/data", pg->dir);
    //  trust on loopback, no fsync, C locale: a test cluster, fast to make and predictable
    const char *initdb[] = {"-D", data, "-A",   "trust",      "-U", "postgres",
                            "-N", "-E", "UTF8", "--locale=C", NULL};
    //  Once more if it fails: a machine busy with parallel tests has been seen to end an
    //  initdb (it removes its half-made folder itself), and a second try costs a second.
    if (s_tool (pg, "initdb", initdb) != 0 && s_tool (pg, "initdb", initdb) != 0)
        goto failed;
    int attempt = 0;
    do {
        pg->port = s_free_port ();
        if (pg->port > 0 && s_start_server (pg) == 0)
            break;
    } while (++attempt < S_PORT_ATTEMPTS);
    if (!pg->running)
        goto failed;
    char conninfo[PGTEST_CONNINFO_MAX];
    if (pgtest_create_db (pg, PGTEST_DB, conninfo, sizeof conninfo) != 0)
        goto failed;
    return 0;

failed:
    fprintf (stderr, "pgtest: could not start PostgreSQL%s%s\n", pg->dir[0] ? " in " : "", pg->dir);
    pgtest_stop (pg);
    return -1;
}

int pgtest_stop_server (pgtest_t *pg)
{
    if (!pg->running)
        return 0;
    char data[sizeof pg->dir + 8], timeout[16];
    snprintf (data, sizeof data, "%s/data", pg->dir);
    snprintf (timeout, sizeof timeout, "%d", PGTEST_DEADLINE_S);
    const char *args[] = {"-D", data, "-m", "immediate", "-w", "-t", timeout, "-s", "stop", NULL};
    if (s_tool (pg, "pg_ctl", args) != 0)
        return -1;
    pg->running = false;
    return 0;
}

int pgtest_restart (pgtest_t *pg)
{
    if (pg->running)
        return 0;
    return s_start_server (pg);
}

void pgtest_stop (pgtest_t *pg)
{
    if (!pg->owner) {
        memset (pg, 0, sizeof *pg);
        pg->guard_fd = -1;
        return;
    }
    if (pg->running && pgtest_stop_server (pg) != 0)
        fprintf (stderr, "pgtest: pg_ctl stop failed: the guardian kills the server\n");
    if (pg->dir[0] && !getenv ("MCE_KEEP_TEST_DIR"))
        nftw (pg->dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    else if (pg->dir[0])
        fprintf (stderr, "pgtest: kept %s\n", pg->dir);
    if (pg->guard_fd >= 0)
        close (pg->guard_fd); //  the guardian wakes up, finds nothing left to do and exits
    if (pg->guardian > 0)
        s_wait_pid (pg->guardian, PGTEST_DEADLINE_S + 10);
    memset (pg, 0, sizeof *pg);
    pg->guard_fd = -1;
}

int pgtest_create_db (pgtest_t *pg, const char *name, char *conninfo, size_t size)
{
    size_t len = strlen (name);
    if (len == 0 || len > 63 || strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len) {
        fprintf (stderr, "pgtest: '%s' is not a database name pgtest makes\n", name);
        return -1;
    }
    char admin[PGTEST_CONNINFO_MAX], err[PG_ERROR_MAX], sql[128];
    snprintf (admin, sizeof admin, "host=127.0.0.1 port=%d user=postgres dbname=postgres",
              pg->port);
    pg_t *db = pg_connect (admin, S_CONNECT_MS, err, sizeof err);
    if (!db) {
        fprintf (stderr, "pgtest: %s\n", err);
        return -1;
    }
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    int rc = pg_run (db, sql);
    if (rc == 0) {
        snprintf (sql, sizeof sql, "CREATE DATABASE %s", name);
        rc = pg_run (db, sql);
    }
    if (rc != 0)
        fprintf (stderr, "pgtest: %s: %s\n", sql, pg_error (db));
    pg_destroy (&db);
    if (rc == 0)
        snprintf (conninfo, size, "host=127.0.0.1 port=%d user=postgres dbname=%s", pg->port, name);
    return rc;
}

int pgtest_export (const pgtest_t *pg)
{
    char value[sizeof pg->dir + 16];
    snprintf (value, sizeof value, "%d %s", pg->port, pg->dir);
    return setenv (PGTEST_ENV, value, 1) == 0 ? 0 : -1;
}

int pgtest_attach (pgtest_t *pg)
{
    memset (pg, 0, sizeof *pg);
    pg->guard_fd = -1;
    const char *value = getenv (PGTEST_ENV);
    int n = 0;
    if (!value || sscanf (value, "%d %n", &pg->port, &n) != 1 || pg->port <= 0 || !value[n])
        return -1;
    snprintf (pg->dir, sizeof pg->dir, "%s", value + n);
    pg->running = true;
    snprintf (pg->conninfo, sizeof pg->conninfo,
              "host=127.0.0.1 port=%d user=postgres dbname=" PGTEST_DB, pg->port);
    return 0;
}
