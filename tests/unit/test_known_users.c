/*  test_known_users — who the gateway knows exists, with a real worker and PostgreSQL: a user
    looked up once and then known, a name that does not exist refused and not remembered,
    requests for one name sharing one lookup, the bound on lookups per address and in all,
    and a database that cannot be reached.
*/
#include "auth.h"
#include "gateway_worker.h"
#include "known_users.h"
#include "migrate.h"
#include "pg.h"
#include "pgtest.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

MIGRATE_DECLARE (gateway);

static pgtest_t s_server;

ReportHook (PRE_ALL) (struct criterion_test_set *tests)
{
    (void) tests;
    if (pgtest_start (&s_server, NULL) != 0 || pgtest_export (&s_server) != 0)
        fprintf (stderr, "test_known_users: no PostgreSQL: the tests will fail\n");
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
    (void) stats;
    pgtest_stop (&s_server);
}

static int s_migrate (pg_t *pg, char *err, size_t errlen)
{
    return migrate_apply (pg, "gateway", gateway_migrations, gateway_migration_count, err, errlen);
}

//  A fresh database (users alice and bob in it), and its conninfo.
static void s_fresh (const char *name, char *conninfo, size_t size)
{
    pgtest_t server;
    cr_assert_eq (pgtest_attach (&server), 0, "no shared PostgreSQL");
    cr_assert_eq (pgtest_create_db (&server, name, conninfo, size), 0);
    char err[512];
    pg_t *pg = pg_connect (conninfo, 5000, err, sizeof err);
    cr_assert_not_null (pg, "%s", err);
    cr_assert_eq (s_migrate (pg, err, sizeof err), 0, "%s", err);
    cr_assert_eq (pg_run (pg, "INSERT INTO users (username, password_hash, wallet) VALUES "
                              "('alice', 'h', 'Wa'), ('bob', 'h', 'Wb')"),
                  0, "%s", pg_error (pg));
    pg_destroy (&pg);
}

static int64_t s_mono (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  What the callbacks said: one slot per request.
typedef struct {
    int calls;
    known_users_answer_t answer;
} s_heard_t;

static void s_heard (void *arg, known_users_answer_t answer)
{
    s_heard_t *h = arg;
    h->calls++;
    h->answer = answer;
}

//  Runs the worker's finished jobs until heard has been called (a deadline of 10 s).
static void s_wait (gateway_worker_t *worker, s_heard_t *heard)
{
    int64_t deadline = s_mono () + 10000000000LL;
    while (heard->calls == 0) {
        cr_assert_lt (s_mono (), deadline, "the lookup never came back");
        zmq_pollitem_t item = {gateway_worker_socket (worker), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 100) > 0)
            gateway_worker_process (worker);
    }
}

Test (known_users, looked_up_once_then_known)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ku_once", conninfo, sizeof conninfo);
    gateway_worker_t *worker = gateway_worker_new (conninfo, 1, 10000, s_migrate);
    known_users_t *users = known_users_new (worker);
    cr_assert_not_null (users);
    s_heard_t a1 = {0}, a2 = {0}, ghost = {0}, again = {0};
    //  two requests for alice before the answer: one lookup, two answers
    cr_assert_eq (known_users_check (users, "alice", "10.0.0.1", s_mono (), s_heard, &a1),
                  KNOWN_USERS_PENDING);
    cr_assert_eq (known_users_check (users, "alice", "10.0.0.2", s_mono (), s_heard, &a2),
                  KNOWN_USERS_PENDING);
    cr_assert_eq (known_users_lookups (users), 1);
    s_wait (worker, &a1);
    s_wait (worker, &a2);
    cr_assert_eq (a1.answer, KNOWN_USERS_KNOWN);
    cr_assert_eq (a2.answer, KNOWN_USERS_KNOWN);
    cr_assert_eq (a1.calls + a2.calls, 2, "each request hears once");
    //  from now on at once, with no callback and no lookup
    cr_assert (known_users_has (users, "alice"));
    cr_assert_eq (known_users_check (users, "alice", "10.0.0.1", s_mono (), s_heard, &again),
                  KNOWN_USERS_KNOWN);
    cr_assert_eq (again.calls, 0);
    cr_assert_eq (known_users_lookups (users), 1);
    //  a name nobody registered: refused, and asked again next time (only positives are kept)
    cr_assert_eq (known_users_check (users, "ghost", "10.0.0.1", s_mono (), s_heard, &ghost),
                  KNOWN_USERS_PENDING);
    s_wait (worker, &ghost);
    cr_assert_eq (ghost.answer, KNOWN_USERS_UNKNOWN);
    cr_assert_not (known_users_has (users, "ghost"));
    ghost.calls = 0;
    cr_assert_eq (known_users_check (users, "ghost", "10.0.0.1", s_mono (), s_heard, &ghost),
                  KNOWN_USERS_PENDING);
    s_wait (worker, &ghost);
    //  a user learnt at sign-up or sign-in is known without asking
    known_users_learn (users, "carol");
    cr_assert (known_users_has (users, "carol"));
    gateway_worker_destroy (&worker);
    known_users_destroy (&users);
    cr_assert_null (users);
}

Test (known_users, lookups_are_bounded_per_address_and_in_all)
{
    char conninfo[PGTEST_CONNINFO_MAX];
    s_fresh ("ku_bound", conninfo, sizeof conninfo);
    gateway_worker_t *worker = gateway_worker_new (conninfo, 1, 10000, s_migrate);
    known_users_t *users = known_users_new (worker);
    static s_heard_t heard[KNOWN_USERS_BURST + 10];
    int64_t now = s_mono (); //  one instant: no bucket refills meanwhile
    char name[32];
    int i = 0, pending = 0;
    //  one address: its burst, then refused
    for (; i < KNOWN_USERS_ADDRESS_BURST + 5; i++) {
        snprintf (name, sizeof name, "nobody%d", i);
        known_users_answer_t a =
            known_users_check (users, name, "10.0.0.9", now, s_heard, &heard[i]);
        if (i < KNOWN_USERS_ADDRESS_BURST)
            cr_assert_eq (a, KNOWN_USERS_PENDING, "lookup %d", i);
        else
            cr_assert_eq (a, KNOWN_USERS_LIMITED, "lookup %d", i);
        pending += a == KNOWN_USERS_PENDING;
    }
    //  other addresses go on until the bound in all
    int limited = 0;
    for (int k = 0; i < KNOWN_USERS_BURST + 10; i++, k++) {
        char address[32];
        snprintf (name, sizeof name, "nobody%d", i);
        snprintf (address, sizeof address, "10.1.%d.%d", k / 200, k % 200);
        known_users_answer_t a = known_users_check (users, name, address, now, s_heard, &heard[i]);
        limited += a == KNOWN_USERS_LIMITED;
        pending += a == KNOWN_USERS_PENDING;
    }
    cr_assert_eq (pending, KNOWN_USERS_BURST, "the overall burst, and not one lookup more");
    cr_assert_eq (known_users_lookups (users), (uint64_t) KNOWN_USERS_BURST);
    cr_assert_gt (limited, 0);
    //  a known user is never limited
    known_users_learn (users, "alice");
    cr_assert_eq (known_users_check (users, "alice", "10.0.0.9", now, s_heard, &heard[0]),
                  KNOWN_USERS_KNOWN);
    //  every lookup made comes back, once
    for (int k = 0; k < i; k++)
        if (heard[k].calls == 0 && k < KNOWN_USERS_ADDRESS_BURST)
            s_wait (worker, &heard[k]);
    gateway_worker_destroy (&worker); //  finishes the rest
    for (int k = 0; k < i; k++)
        cr_assert_leq (heard[k].calls, 1);
    known_users_destroy (&users);
}

Test (known_users, a_database_out_of_reach_is_unavailable)
{
    cr_assert_eq (auth_init (), 0);
    gateway_worker_t *worker =
        gateway_worker_new ("host=127.0.0.1 port=1 dbname=none connect_timeout=1", 1, 10000, NULL);
    known_users_t *users = known_users_new (worker);
    s_heard_t heard = {0};
    cr_assert_eq (known_users_check (users, "alice", "", s_mono (), s_heard, &heard),
                  KNOWN_USERS_PENDING);
    s_wait (worker, &heard);
    cr_assert_eq (heard.answer, KNOWN_USERS_UNAVAILABLE);
    cr_assert_not (known_users_has (users, "alice"));
    gateway_worker_destroy (&worker);
    known_users_destroy (&users);
}
