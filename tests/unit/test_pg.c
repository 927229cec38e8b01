/*  test_pg — pg and migrate against a real PostgreSQL.

    One server serves the whole binary: Criterion runs every test in a process of its own, so
    the runner starts the server in ReportHook (PRE_ALL), exports it to the environment its
    test processes inherit, and stops it in ReportHook (POST_ALL); pgtest's guardian stops it
    even if the runner dies. Each test attaches and works in a database of its own, so no
    test sees another's tables. Only the outage test starts a server of its own, which it
    stops and starts again.
*/
#include "migrate.h"
#include "pg.h"
#include "pgtest.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

MIGRATE_DECLARE (test_gateway); //  gateway/migrations, embedded by tests/CMakeLists.txt

//  The runner's server. Only the runner process touches it (in the two hooks).
static pgtest_t s_server;

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    if (pgtest_start (&s_server, NULL) != 0 || pgtest_export (&s_server) != 0) {
        fprintf (stderr, "test_pg: no PostgreSQL: every test will fail\n");
        return;
    }
    clock_gettime (CLOCK_MONOTONIC, &t1);
    fprintf (stderr, "test_pg: PostgreSQL %s up on port %d in %ld ms\n", s_server.bin,
             s_server.port,
             (long) ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
    (void) stats;
    pgtest_stop (&s_server);
}

static int64_t s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A fresh database of the shared server, connected.
static pg_t *s_fresh (const char *name)
{
    pgtest_t server;
    cr_assert_eq (pgtest_attach (&server), 0, "no shared PostgreSQL: see the runner's output");
    char conninfo[PGTEST_CONNINFO_MAX], err[PG_ERROR_MAX];
    cr_assert_eq (pgtest_create_db (&server, name, conninfo, sizeof conninfo), 0);
    pg_t *pg = pg_connect (conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "connect: %s", err);
    return pg;
}

//  Runs a query that must succeed and returns its first value as an integer.
static int64_t s_int (pg_t *pg, const char *sql)
{
    pg_result_t *r = pg_exec (pg, sql, 0, NULL);
    cr_assert_not_null (r, "%s: %s", sql, pg_error (pg));
    cr_assert_eq (pg_rows (r), 1, "%s", sql);
    int64_t v = pg_int (r, 0, 0);
    pg_result_free (&r);
    return v;
}

static bool s_table_exists (pg_t *pg, const char *table)
{
    const char *params[] = {table};
    pg_result_t *r = pg_exec (pg, "SELECT to_regclass ($1) IS NOT NULL", 1, params);
    cr_assert_not_null (r, "%s", pg_error (pg));
    bool exists = strcmp (pg_value (r, 0, 0), "t") == 0;
    pg_result_free (&r);
    return exists;
}

//  The process's log (stderr) goes to a file while a capture is open.
typedef struct {
    int saved;
    char path[64];
} capture_t;

static void s_capture_start (capture_t *c)
{
    snprintf (c->path, sizeof c->path, "/tmp/mce-test-pg-log-XXXXXX");
    int fd = mkstemp (c->path);
    cr_assert_geq (fd, 0);
    c->saved = dup (STDERR_FILENO);
    dup2 (fd, STDERR_FILENO);
    close (fd);
}

//  Ends the capture and returns what was logged (caller frees).
static char *s_capture_end (capture_t *c)
{
    dup2 (c->saved, STDERR_FILENO);
    close (c->saved);
    FILE *f = fopen (c->path, "r");
    cr_assert_not_null (f);
    char *text = calloc (1, 65536);
    size_t n = fread (text, 1, 65535, f);
    text[n] = '\0';
    fclose (f);
    unlink (c->path);
    return text;
}

//  --------------------------------------------------------------------------------------------
//  pg

Test (pg, exec_passes_parameters_and_returns_values_and_nulls)
{
    pg_t *pg = s_fresh ("t_exec");
    cr_assert (pg_ok (pg));
    cr_assert_eq (pg_run (pg, "CREATE TABLE t (id int PRIMARY KEY, name text, n bigint);"
                              "CREATE INDEX t_name ON t (name)"),
                  0, "%s", pg_error (pg));

    //  parameters travel apart from the SQL: quotes and semicolons are just text
    const char *row1[] = {"1", "O'Brien; DROP TABLE t; --", "9007199254740993"};
    const char *row2[] = {"2", NULL, NULL};
    pg_result_t *r = pg_exec (pg, "INSERT INTO t VALUES ($1, $2, $3)", 3, row1);
    cr_assert_not_null (r, "%s", pg_error (pg));
    cr_assert_eq (pg_affected (r), 1);
    cr_assert_eq (pg_rows (r), 0);
    pg_result_free (&r);
    cr_assert_null (r);
    pg_result_free (&r); //  idempotent
    r = pg_exec (pg, "INSERT INTO t VALUES ($1, $2, $3)", 3, row2);
    cr_assert_not_null (r);
    pg_result_free (&r);
    cr_assert_str_empty (pg_error (pg));
    cr_assert_str_empty (pg_sqlstate (pg));

    r = pg_exec (pg, "SELECT id, name, n FROM t ORDER BY id", 0, NULL);
    cr_assert_not_null (r, "%s", pg_error (pg));
    cr_assert_eq (pg_rows (r), 2);
    cr_assert_eq (pg_cols (r), 3);
    cr_assert_eq (pg_int (r, 0, 0), 1);
    cr_assert_str_eq (pg_value (r, 0, 1), "O'Brien; DROP TABLE t; --");
    cr_assert_eq (pg_int (r, 0, 2), INT64_C (9007199254740993));
    cr_assert_null (pg_value (r, 1, 1), "SQL NULL is NULL, not \"\"");
    cr_assert_eq (pg_int (r, 1, 2), 0);
    cr_assert_null (pg_value (r, 2, 0), "out of range");
    cr_assert_null (pg_value (r, 0, 3), "out of range");
    cr_assert_null (pg_value (r, -1, 0), "out of range");
    cr_assert_eq (pg_int (r, 0, 1), 0, "text that is not a number");
    pg_result_free (&r);

    const char *ids[] = {"1"};
    r = pg_exec (pg, "UPDATE t SET n = n + 1 WHERE id >= $1::int", 1, ids);
    cr_assert_not_null (r);
    cr_assert_eq (pg_affected (r), 2);
    pg_result_free (&r);
    pg_destroy (&pg);
    cr_assert_null (pg);
    pg_destroy (&pg); //  idempotent
}

Test (pg, unique_violation_reports_23505_and_the_connection_goes_on)
{
    pg_t *pg = s_fresh ("t_unique");
    cr_assert_eq (pg_run (pg, "CREATE TABLE u (name text UNIQUE)"), 0);
    const char *alice[] = {"alice"};
    pg_result_t *r = pg_exec (pg, "INSERT INTO u VALUES ($1)", 1, alice);
    cr_assert_not_null (r);
    pg_result_free (&r);

    r = pg_exec (pg, "INSERT INTO u VALUES ($1)", 1, alice);
    cr_assert_null (r);
    cr_assert_str_eq (pg_sqlstate (pg), PG_UNIQUE_VIOLATION);
    cr_assert_str_eq (pg_sqlstate (pg), "23505");
    cr_assert (strstr (pg_error (pg), "duplicate key value violates unique constraint"), "%s",
               pg_error (pg));
    cr_assert (strstr (pg_error (pg), "(name)=(alice)"), "the detail is kept: %s", pg_error (pg));
    cr_assert_null (strchr (pg_error (pg), '\n'), "one line: %s", pg_error (pg));
    cr_assert (pg_ok (pg));

    //  inside a transaction: roll back first, then look at the error
    cr_assert_eq (pg_begin (pg), 0);
    cr_assert_null (pg_exec (pg, "INSERT INTO u VALUES ($1)", 1, alice));
    cr_assert_eq (pg_rollback (pg), 0);
    cr_assert_str_eq (pg_sqlstate (pg), "23505", "pg_rollback keeps the error it follows");

    //  a success clears it
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM u"), 1);
    cr_assert_str_empty (pg_sqlstate (pg));
    cr_assert_str_empty (pg_error (pg));
    pg_destroy (&pg);
}

Test (pg, copy_in_loads_rows_nulls_and_escaped_text_and_reports_failures)
{
    pg_t *pg = s_fresh ("t_copy");
    cr_assert_eq (pg_run (pg, "CREATE TABLE c (id int PRIMARY KEY, name text, at timestamptz)"), 0);
    //  a tab, a newline, a carriage return and a backslash inside values, escaped; \N is NULL
    const char rows[] = "1\ta\\tb\\nc\\rd\\\\e\t2026-11-22T03:00:00.000001Z\n"
                        "2\t\\N\t\\N\n"
                        "3\tO'Brien\t2026-11-22T03:00:00Z\n";
    int64_t n = -1;
    cr_assert_eq (pg_copy_in (pg, "COPY c (id, name, at) FROM STDIN", rows, sizeof rows - 1, &n), 0,
                  "%s", pg_error (pg));
    cr_assert_eq (n, 3);
    pg_result_t *r = pg_exec (pg,
                              "SELECT name, extract (microseconds FROM at)::bigint FROM c "
                              "ORDER BY id",
                              0, NULL);
    cr_assert_not_null (r, "%s", pg_error (pg));
    cr_assert_str_eq (pg_value (r, 0, 0), "a\tb\nc\rd\\e");
    cr_assert_eq (pg_int (r, 0, 1), 1);
    cr_assert_null (pg_value (r, 1, 0));
    cr_assert_str_eq (pg_value (r, 2, 0), "O'Brien");
    pg_result_free (&r);

    //  a duplicate key fails the COPY with its SQLSTATE, inside a transaction that then rolls
    //  back whole, and the connection goes on
    cr_assert_eq (pg_begin (pg), 0);
    const char more[] = "4\tnew\t\\N\n1\tdup\t\\N\n";
    cr_assert_eq (pg_copy_in (pg, "COPY c (id, name, at) FROM STDIN", more, sizeof more - 1, NULL),
                  -1);
    cr_assert_str_eq (pg_sqlstate (pg), PG_UNIQUE_VIOLATION, "%s", pg_error (pg));
    cr_assert_eq (pg_rollback (pg), 0);
    cr_assert (pg_ok (pg));
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM c"), 3);

    //  not a COPY: refused, and the connection goes on
    cr_assert_eq (pg_copy_in (pg, "SELECT 1", "", 0, NULL), -1);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM c"), 3);
    pg_destroy (&pg);
}

Test (pg, transactions_commit_and_roll_back)
{
    pg_t *pg = s_fresh ("t_txn");
    cr_assert_eq (pg_run (pg, "CREATE TABLE x (v int)"), 0);
    cr_assert_eq (pg_begin (pg), 0);
    cr_assert_eq (pg_run (pg, "INSERT INTO x VALUES (1)"), 0);
    cr_assert_eq (pg_rollback (pg), 0);
    cr_assert_eq (pg_begin (pg), 0);
    cr_assert_eq (pg_run (pg, "INSERT INTO x VALUES (2); INSERT INTO x VALUES (3)"), 0);
    cr_assert_eq (pg_commit (pg), 0);
    cr_assert_eq (s_int (pg, "SELECT coalesce (sum (v), 0) FROM x"), 5);
    pg_destroy (&pg);
}

Test (pg, a_syntax_error_names_the_position)
{
    pg_t *pg = s_fresh ("t_syntax");
    cr_assert_eq (pg_run (pg, "SELECT 1; SELEC 2; CREATE TABLE never (x int)"), -1);
    cr_assert_str_eq (pg_sqlstate (pg), "42601");
    cr_assert (strstr (pg_error (pg), "syntax error at or near \"SELEC\" at character"), "%s",
               pg_error (pg));
    cr_assert_not (s_table_exists (pg, "never"), "statements after the error do not run");
    cr_assert_null (pg_exec (pg, "SELECT * FROM missing", 0, NULL));
    cr_assert_str_eq (pg_sqlstate (pg), "42P01");
    pg_destroy (&pg);
}

Test (pg, a_statement_past_the_timeout_is_cancelled_and_the_connection_survives)
{
    pg_t *pg = s_fresh ("t_timeout");
    pg_set_timeout (pg, 300);
    cr_assert_eq (pg_timeout (pg), 300);
    int64_t t0 = s_now_ms ();
    cr_assert_null (pg_exec (pg, "SELECT pg_sleep (10)", 0, NULL));
    int64_t took = s_now_ms () - t0;
    cr_assert_str_eq (pg_sqlstate (pg), PG_QUERY_CANCELED, "%s: %s", pg_sqlstate (pg),
                      pg_error (pg));
    cr_assert_lt (took, 3000, "cancelled after %ld ms", (long) took);
    cr_assert (pg_ok (pg));
    cr_assert_eq (s_int (pg, "SELECT 42"), 42);
    pg_set_timeout (pg, 0);
    cr_assert_eq (pg_timeout (pg), PG_QUERY_TIMEOUT_MS);
    pg_destroy (&pg);
}

Test (pg, a_closed_port_fails_at_once_with_the_reason)
{
    //  a port the OS just handed out and nobody listens on
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq (bind (fd, (struct sockaddr *) &a, sizeof a), 0);
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &a, &len), 0);
    close (fd);
    char conninfo[128], err[PG_ERROR_MAX];
    snprintf (conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=postgres dbname=x",
              ntohs (a.sin_port));
    int64_t t0 = s_now_ms ();
    cr_assert_null (pg_connect (conninfo, 2000, err, sizeof err));
    cr_assert_lt (s_now_ms () - t0, 2000);
    cr_assert (strstr (err, "Connection refused"), "%s", err);
    cr_assert_null (strchr (err, '\n'), "one line: %s", err);

    cr_assert_null (pg_connect ("port=notanumber", 2000, err, sizeof err));
    cr_assert (strstr (err, "port"), "a malformed conninfo says why: %s", err);
}

Test (pg, a_server_that_never_answers_fails_within_the_timeout)
{
    //  a socket that listens but never accepts: TCP connects, the startup reply never comes
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq (bind (fd, (struct sockaddr *) &a, sizeof a), 0);
    cr_assert_eq (listen (fd, 4), 0);
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &a, &len), 0);
    char conninfo[128], err[PG_ERROR_MAX];
    snprintf (conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=postgres dbname=x",
              ntohs (a.sin_port));
    int64_t t0 = s_now_ms ();
    cr_assert_null (pg_connect (conninfo, 400, err, sizeof err));
    int64_t took = s_now_ms () - t0;
    cr_assert (took >= 400 && took < 1500, "gave up after %ld ms", (long) took);
    cr_assert (strstr (err, "could not connect to the database within 400 ms"), "%s", err);
    close (fd);
}

Test (pg, a_killed_connection_is_reported_and_pg_reset_reconnects)
{
    pg_t *pg = s_fresh ("t_reset");
    pg_t *admin = s_fresh ("t_reset_admin");
    int64_t pid = s_int (pg, "SELECT pg_backend_pid ()");
    char sql[96];
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (%ld)", (long) pid);
    cr_assert_eq (pg_run (admin, sql), 0, "%s", pg_error (admin));

    cr_assert_null (pg_exec (pg, "SELECT 1", 0, NULL));
    cr_assert_str_not_empty (pg_sqlstate (pg));
    cr_assert_str_not_empty (pg_error (pg));
    cr_assert_not (pg_ok (pg));
    cr_assert_null (pg_exec (pg, "SELECT 1", 0, NULL), "stays down until pg_reset");
    cr_assert_str_eq (pg_sqlstate (pg), PG_CONNECTION_FAILURE);

    cr_assert_eq (pg_reset (pg), 0, "%s", pg_error (pg));
    cr_assert (pg_ok (pg));
    cr_assert_neq (s_int (pg, "SELECT pg_backend_pid ()"), pid);
    pg_destroy (&pg);
    pg_destroy (&admin);
}

Test (pg, an_outage_fails_calls_fast_and_pg_reset_recovers_afterwards, .timeout = 120)
{
    char dir[] = "/tmp/mce-test-pg-XXXXXX";
    cr_assert_not_null (mkdtemp (dir));
    pgtest_t server;
    cr_assert_eq (pgtest_start (&server, dir), 0);
    char err[PG_ERROR_MAX];
    pg_t *pg = pg_connect (server.conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "%s", err);
    cr_assert_eq (pg_run (pg, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"), 0);

    cr_assert_eq (pgtest_stop_server (&server), 0);
    int64_t t0 = s_now_ms ();
    cr_assert_null (pg_exec (pg, "SELECT 1", 0, NULL));
    cr_assert_not (pg_ok (pg));
    cr_assert_eq (pg_reset (pg), -1, "nothing to connect to");
    cr_assert_str_eq (pg_sqlstate (pg), PG_CONNECTION_FAILURE);
    cr_assert (strstr (pg_error (pg), "Connection refused"), "%s", pg_error (pg));
    cr_assert_lt (s_now_ms () - t0, 2000, "an outage costs no waiting");

    cr_assert_eq (pgtest_restart (&server), 0);
    cr_assert_eq (pg_reset (pg), 0, "%s", pg_error (pg));
    cr_assert_eq (s_int (pg, "SELECT v FROM kept"), 7, "data survives an immediate stop");
    pg_destroy (&pg);
    pgtest_stop (&server);
    pgtest_stop (&server); //  idempotent
    cr_assert_eq (access (dir, F_OK), 0, "the caller's folder stays");
    char pgdir[64];
    snprintf (pgdir, sizeof pgdir, "%s/pg", dir);
    cr_assert_neq (access (pgdir, F_OK), 0, "the cluster is gone");
    rmdir (dir);
}

//  --------------------------------------------------------------------------------------------
//  migrate

static const migrate_file_t s_two[] = {
    {1, "alpha", "CREATE TABLE alpha (id int PRIMARY KEY);\n"},
    {2, "beta",
     "CREATE TABLE beta (id int REFERENCES alpha (id));\n"
     "INSERT INTO alpha VALUES (1);\nINSERT INTO beta VALUES (1);\n"},
};

static int64_t s_migration_rows (pg_t *pg, const char *component)
{
    const char *params[] = {component};
    pg_result_t *r =
        pg_exec (pg, "SELECT count(*) FROM schema_migrations WHERE component = $1", 1, params);
    cr_assert_not_null (r, "%s", pg_error (pg));
    int64_t n = pg_int (r, 0, 0);
    pg_result_free (&r);
    return n;
}

Test (migrate, applies_missing_versions_in_order_and_a_second_run_changes_nothing)
{
    pg_t *pg = s_fresh ("t_migrate");
    char err[512];
    cr_assert_eq (migrate_version (pg, "test"), 0, "no schema_migrations yet");
    capture_t cap;
    s_capture_start (&cap);
    int rc = migrate_apply (pg, "test", s_two, 2, err, sizeof err);
    char *log = s_capture_end (&cap);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert (strstr (log, "migrate: test: applied migration 0001_alpha"), "%s", log);
    cr_assert (strstr (log, "migrate: test: applied migration 0002_beta"), "%s", log);
    free (log);

    cr_assert_eq (migrate_version (pg, "test"), 2);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM beta"), 1);
    pg_result_t *r = pg_exec (pg,
                              "SELECT version, name FROM schema_migrations "
                              "WHERE component = 'test' ORDER BY version",
                              0, NULL);
    cr_assert_not_null (r);
    cr_assert_eq (pg_rows (r), 2);
    cr_assert_eq (pg_int (r, 0, 0), 1);
    cr_assert_str_eq (pg_value (r, 0, 1), "alpha");
    cr_assert_eq (pg_int (r, 1, 0), 2);
    cr_assert_str_eq (pg_value (r, 1, 1), "beta");
    pg_result_free (&r);
    int64_t stamp = s_int (pg, "SELECT (extract (epoch FROM max (applied_at)) * 1e6)::bigint "
                               "FROM schema_migrations");

    //  the SQL is not idempotent (CREATE TABLE): running it again would fail
    s_capture_start (&cap);
    rc = migrate_apply (pg, "test", s_two, 2, err, sizeof err);
    log = s_capture_end (&cap);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_null (strstr (log, "applied migration"), "%s", log);
    cr_assert (strstr (log, "test: schema is current at version 2"), "%s", log);
    free (log);
    cr_assert_eq (s_migration_rows (pg, "test"), 2);
    cr_assert_eq (s_int (pg, "SELECT (extract (epoch FROM max (applied_at)) * 1e6)::bigint "
                             "FROM schema_migrations"),
                  stamp);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM beta"), 1);

    //  a binary one migration newer applies just that one
    const migrate_file_t three[] = {
        s_two[0], s_two[1], {3, "gamma", "ALTER TABLE beta ADD c text"}};
    cr_assert_eq (migrate_apply (pg, "test", three, 3, err, sizeof err), 0, "%s", err);
    cr_assert_eq (migrate_version (pg, "test"), 3);
    cr_assert_eq (pg_timeout (pg), PG_QUERY_TIMEOUT_MS, "the caller's timeout is restored");
    pg_destroy (&pg);
}

Test (migrate, a_failing_migration_is_rolled_back_whole)
{
    pg_t *pg = s_fresh ("t_migrate_broken");
    const migrate_file_t broken[] = {
        s_two[0],
        {2, "broken", "CREATE TABLE half (x int);\nINSERT INTO nowhere VALUES (1);\n"},
        {3, "after", "CREATE TABLE after_broken (x int);"},
    };
    char err[512];
    cr_assert_eq (migrate_apply (pg, "test", broken, 3, err, sizeof err), -1);
    cr_assert (strstr (err, "migration 0002_broken of test failed and was rolled back"), "%s", err);
    cr_assert (strstr (err, "relation \"nowhere\" does not exist"), "%s", err);
    cr_assert (s_table_exists (pg, "alpha"), "migration 1 stays applied");
    cr_assert_not (s_table_exists (pg, "half"), "no part of migration 2 stays");
    cr_assert_not (s_table_exists (pg, "after_broken"), "nothing after it runs");
    cr_assert_eq (s_migration_rows (pg, "test"), 1);
    cr_assert_eq (migrate_version (pg, "test"), 1);
    cr_assert (pg_ok (pg));

    //  the fixed binary goes on from there
    cr_assert_eq (migrate_apply (pg, "test", s_two, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq (migrate_version (pg, "test"), 2);
    pg_destroy (&pg);
}

Test (migrate, a_database_newer_than_the_binary_is_refused)
{
    pg_t *pg = s_fresh ("t_migrate_newer");
    const migrate_file_t three[] = {s_two[0], s_two[1], {3, "gamma", "CREATE TABLE gamma (x int)"}};
    char err[512];
    cr_assert_eq (migrate_apply (pg, "gateway", three, 3, err, sizeof err), 0, "%s", err);
    cr_assert_eq (migrate_apply (pg, "gateway", s_two, 2, err, sizeof err), -1);
    cr_assert_str_eq (err, "database schema of gateway is at version 3, this binary knows up to "
                           "2: refusing to start; upgrade the binary");
    cr_assert_eq (migrate_apply (pg, "gateway", NULL, 0, err, sizeof err), -1);
    cr_assert (strstr (err, "this binary knows up to 0"), "%s", err);
    cr_assert_eq (s_migration_rows (pg, "gateway"), 3);
    pg_destroy (&pg);
}

Test (migrate, components_share_schema_migrations_without_touching_each_other)
{
    pg_t *pg = s_fresh ("t_migrate_components");
    const migrate_file_t persister[] = {{1, "events", "CREATE TABLE events (seq bigint)"},
                                        {2, "fills", "CREATE TABLE fills (seq bigint)"},
                                        {3, "more", "CREATE TABLE more (seq bigint)"}};
    char err[512];
    cr_assert_eq (migrate_apply (pg, "gateway", s_two, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq (migrate_apply (pg, "persister", persister, 3, err, sizeof err), 0, "%s", err);
    cr_assert_eq (migrate_version (pg, "gateway"), 2);
    cr_assert_eq (migrate_version (pg, "persister"), 3);
    cr_assert_eq (s_migration_rows (pg, "gateway"), 2);
    cr_assert_eq (s_migration_rows (pg, "persister"), 3);
    //  the persister being at 3 does not make the gateway "newer than its binary"
    cr_assert_eq (migrate_apply (pg, "gateway", s_two, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq (migrate_version (pg, "nobody"), 0);
    pg_destroy (&pg);
}

Test (migrate, files_out_of_order_are_an_error)
{
    pg_t *pg = s_fresh ("t_migrate_order");
    const migrate_file_t swapped[] = {s_two[1], s_two[0]};
    char err[512];
    cr_assert_eq (migrate_apply (pg, "test", swapped, 2, err, sizeof err), -1);
    cr_assert (strstr (err, "out of order: version 1 after 2"), "%s", err);
    cr_assert_eq (migrate_version (pg, "test"), 0, "nothing ran");
    pg_destroy (&pg);
}

Test (migrate, processes_starting_together_apply_each_migration_once, .timeout = 60)
{
    pg_t *pg = s_fresh ("t_migrate_race");
    pgtest_t server;
    cr_assert_eq (pgtest_attach (&server), 0);
    char conninfo[PGTEST_CONNINFO_MAX];
    snprintf (conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=postgres dbname=%s",
              server.port, "t_migrate_race");
    //  slow migrations widen the window in which both would run them without the lock
    const migrate_file_t slow[] = {
        {1, "one", "SELECT pg_sleep (0.3); CREATE TABLE one (x int);"},
        {2, "two", "SELECT pg_sleep (0.3); CREATE TABLE two (x int);"},
    };
    enum { RACERS = 3 };
    int go[2];
    cr_assert_eq (pipe (go), 0);
    pid_t pids[RACERS];
    for (int i = 0; i < RACERS; i++) {
        pids[i] = fork ();
        cr_assert_geq (pids[i], 0);
        if (pids[i] == 0) {
            close (go[1]);
            char byte, err[512];
            ssize_t n = read (go[0], &byte, 1); //  released together: the pipe closes
            (void) n;
            pg_t *mine = pg_connect (conninfo, 5000, err, sizeof err);
            int rc = mine ? migrate_apply (mine, "race", slow, 2, err, sizeof err) : -1;
            if (rc != 0)
                fprintf (stderr, "racer %d: %s\n", i, err);
            pg_destroy (&mine);
            _exit (rc == 0 ? 0 : 1);
        }
    }
    close (go[0]);
    close (go[1]);
    for (int i = 0; i < RACERS; i++) {
        int status;
        cr_assert_eq (waitpid (pids[i], &status, 0), pids[i]);
        cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "racer %d failed", i);
    }
    cr_assert_eq (s_migration_rows (pg, "race"), 2);
    cr_assert (s_table_exists (pg, "one") && s_table_exists (pg, "two"));
    pg_destroy (&pg);
}

Test (migrate, the_gateway_migrations_build_users_and_api_keys)
{
    pg_t *pg = s_fresh ("t_migrate_gateway");
    char err[512];
    cr_assert_gt (test_gateway_migration_count, 0);
    cr_assert_eq (test_gateway_migrations[0].version, 1);
    cr_assert_str_eq (test_gateway_migrations[0].name, "users");
    cr_assert_eq (migrate_apply (pg, "gateway", test_gateway_migrations,
                                 test_gateway_migration_count, err, sizeof err),
                  0, "%s", err);

    const char *alice[] = {"alice", "hash", "Wallet111"};
    pg_result_t *r = pg_exec (pg,
                              "INSERT INTO users (username, password_hash, wallet) "
                              "VALUES ($1, $2, $3) RETURNING id, role",
                              3, alice);
    cr_assert_not_null (r, "%s", pg_error (pg));
    cr_assert_gt (pg_int (r, 0, 0), 0);
    cr_assert_str_eq (pg_value (r, 0, 1), "user", "role defaults to user");
    pg_result_free (&r);
    cr_assert_null (pg_exec (pg,
                             "INSERT INTO users (username, password_hash, wallet) "
                             "VALUES ($1, $2, $3)",
                             3, alice));
    cr_assert_str_eq (pg_sqlstate (pg), PG_UNIQUE_VIOLATION);
    const char *god[] = {"bob", "hash", "W", "god"};
    cr_assert_null (pg_exec (pg,
                             "INSERT INTO users (username, password_hash, wallet, role) "
                             "VALUES ($1, $2, $3, $4)",
                             4, god));
    cr_assert_str_eq (pg_sqlstate (pg), PG_CHECK_VIOLATION);

    const char *key[] = {"keyhash1", "alice"};
    r = pg_exec (pg, "INSERT INTO api_keys (key_hash, username) VALUES ($1, $2)", 2, key);
    cr_assert_not_null (r, "%s", pg_error (pg));
    pg_result_free (&r);
    const char *orphan[] = {"keyhash2", "nobody"};
    cr_assert_null (
        pg_exec (pg, "INSERT INTO api_keys (key_hash, username) VALUES ($1, $2)", 2, orphan));
    cr_assert_str_eq (pg_sqlstate (pg), PG_FOREIGN_KEY_VIOLATION);
    cr_assert (s_table_exists (pg, "api_keys_username_idx"));

    cr_assert_eq (pg_run (pg, "DELETE FROM users WHERE username = 'alice'"), 0);
    cr_assert_eq (s_int (pg, "SELECT count(*) FROM api_keys"), 0, "keys go with their user");

    //  0002: a wallet belongs to one user, and wallet challenges have their table
    cr_assert_geq (test_gateway_migration_count, 2);
    cr_assert_str_eq (test_gateway_migrations[1].name, "wallet_challenges");
    const char *carol[] = {"carol", "hash", "WalletC"}, *dave[] = {"dave", "hash", "WalletC"};
    r = pg_exec (pg, "INSERT INTO users (username, password_hash, wallet) VALUES ($1, $2, $3)", 3,
                 carol);
    cr_assert_not_null (r, "%s", pg_error (pg));
    pg_result_free (&r);
    cr_assert_null (pg_exec (
        pg, "INSERT INTO users (username, password_hash, wallet) VALUES ($1, $2, $3)", 3, dave));
    cr_assert_str_eq (pg_sqlstate (pg), PG_UNIQUE_VIOLATION, "%s", pg_error (pg));
    cr_assert_eq (pg_run (pg, "INSERT INTO wallet_challenges (nonce, wallet, username, message, "
                              "issued_at, expires_at) VALUES ('n1', 'WalletC', 'carol', 'sign me', "
                              "now (), now () + interval '5 minutes')"),
                  0, "%s", pg_error (pg));
    cr_assert_neq (pg_run (pg,
                           "INSERT INTO wallet_challenges (nonce, wallet, username, message, "
                           "issued_at, expires_at) VALUES ('n1', 'W', 'x', 'm', now (), now ())"),
                   0, "a nonce is issued once");
    cr_assert (s_table_exists (pg, "wallet_challenges_pair_idx"));
    cr_assert (s_table_exists (pg, "wallet_challenges_expires_idx"));
    pg_destroy (&pg);
}
