/*  pgtest — a throwaway real PostgreSQL for tests: initdb into a temporary folder, a server on
    a free loopback port, a database, and everything removed again at the end.

    Postgres refuses to run as root, so when the test runs as root (CI does) initdb and pg_ctl
    run as the `postgres` user through `setpriv` (no PAM session), and the folder is handed to
    that user; otherwise they run as the current user. The binaries are found in
    $MCE_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin, else the PATH.

    A guardian process (a tiny shell, in its own session) holds one end of a pipe whose other
    end only the test process has: when the test process dies however it dies — a failed
    assertion, a crash, a ctest timeout — the pipe closes and the guardian stops the server
    (pg_ctl -m immediate, by the pid in postmaster.pid) and removes the folder. No server
    outlives its test.

    Waits are pg_ctl -w with a deadline, never sleeps. Startup takes about a second, mostly
    initdb.
*/
#ifndef MCE_PGTEST_H
#define MCE_PGTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PGTEST_DB           "mce_test"   //  the database pgtest_start creates
#define PGTEST_DEADLINE_S   30           //  for initdb, and for pg_ctl to start or stop the server
#define PGTEST_ENV          "MCE_PGTEST" //  where pgtest_export puts a shared server
#define PGTEST_CONNINFO_MAX 256

typedef struct {
    char dir[256];                      //  the cluster's folder: data/, logs, the socket
    char bin[256];                      //  Postgres binaries
    char conninfo[PGTEST_CONNINFO_MAX]; //  "host=127.0.0.1 port=N user=postgres dbname=mce_test"
    int port;
    bool running;
    bool owner;     //  false for a server attached with pgtest_attach: stop leaves it alone
    bool own_dir;   //  dir is pgtest's mkdtemp folder (removed whole) rather than <dir>/pg
    pid_t guardian; //  see above
    int guard_fd;   //  the test's end of the guardian's pipe
} pgtest_t;

//  Initialises a cluster in <dir>/pg (dir exists; pgtest lets the postgres user traverse it)
//  or, when dir is NULL, in a new /tmp/mce-pg-XXXXXX; starts it on a free loopback port and
//  creates PGTEST_DB. 0, or -1 with the reason (and the end of the server's log) on stderr.
int pgtest_start (pgtest_t *pg, const char *dir);
//  Stops the server if running and removes the folder. Idempotent; does nothing to a server
//  that was only attached.
void pgtest_stop (pgtest_t *pg);

//  Stops the server abruptly (as a crash or an outage would), keeping its data. 0 or -1.
int pgtest_stop_server (pgtest_t *pg);
//  Starts it again on the same port, with the same data. 0 or -1.
int pgtest_restart (pgtest_t *pg);

//  Creates (dropping any earlier one) database name — [a-z0-9_], at most 63 characters — on
//  the server and writes its conninfo. 0 or -1 (reason on stderr).
int pgtest_create_db (pgtest_t *pg, const char *name, char *conninfo, size_t size);

//  Sharing one server between the tests of a Criterion binary, each of which runs in a process
//  of its own: the runner starts it in ReportHook (PRE_ALL) and exports it to the environment
//  its test processes inherit; a test attaches to it. 0, or -1 (attach: none exported).
int pgtest_export (const pgtest_t *pg);
int pgtest_attach (pgtest_t *pg);

#endif
