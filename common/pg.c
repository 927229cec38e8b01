/*  pg — see pg.h.

    Why it is shaped this way:
    - libpq's synchronous calls (PQconnectdb, PQexecParams) can block without limit on a
      network that drops packets. Instead the connection is non-blocking and every wait is a
      poll(2) with a deadline: the connect timeout, or the statement timeout plus a grace
      period for the answer to travel.
    - The server enforces the statement timeout itself (statement_timeout, set for the
      session): it cancels the statement cleanly with SQLSTATE 57014 and the connection stays
      usable. Only when no answer comes at all is the connection dropped, since a half-read
      answer leaves libpq in a state that only a new connection clears.
    - Errors are kept in the pg_t rather than logged, so an expected one (a unique violation
      that becomes an HTTP 409) costs the caller nothing and does not alarm the log.
*/
#include "pg.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_GRACE_MS   5000      //  beyond the statement timeout, for the answer to arrive
#define S_COPY_CHUNK (1 << 20) //  bytes handed to PQputCopyData at a time
#define S_LINE_MAX   512       //  a notice is logged up to this length
#define S_NO_STATE   ""
#define S_STATE_LEN  5

struct _pg_t {
    PGconn *conn; //  NULL after a hard timeout or a failed pg_reset
    char *conninfo;
    int connect_timeout_ms;
    int query_timeout_ms;
    char error[PG_ERROR_MAX];
    char sqlstate[S_STATE_LEN + 1];
};

struct _pg_result_t {
    PGresult *res;
};

static int64_t s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  libpq's messages span lines ("...failed: Connection refused\n\tIs the server running...");
//  the log and HTTP answers want one line.
static void s_one_line (char *text)
{
    char *out = text;
    bool space = false;
    for (const char *in = text; *in; in++) {
        bool blank = *in == '\n' || *in == '\r' || *in == '\t' || *in == ' ';
        if (blank) {
            space = out != text;
            continue;
        }
        if (space)
            *out++ = ' ';
        space = false;
        *out++ = *in;
    }
    *out = '\0';
}

static void s_set_error (pg_t *self, const char *sqlstate, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void s_set_error (pg_t *self, const char *sqlstate, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, ap);
    va_end (ap);
    s_one_line (self->error);
    snprintf (self->sqlstate, sizeof self->sqlstate, "%s", sqlstate);
}

static void s_clear_error (pg_t *self)
{
    self->error[0] = '\0';
    self->sqlstate[0] = '\0';
}

//  The error a failed statement returned: its primary message, detail and position.
static void s_result_error (pg_t *self, const PGresult *res)
{
    const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField (res, PG_DIAG_MESSAGE_DETAIL);
    const char *position = PQresultErrorField (res, PG_DIAG_STATEMENT_POSITION);
    bool lost = PQstatus (self->conn) == CONNECTION_BAD;
    if (!state || strlen (state) != S_STATE_LEN)
        state = lost ? PG_CONNECTION_FAILURE : "XX000"; //  XX000: internal_error
    if (!primary) {
        primary = PQresultErrorMessage (res);
        if (!*primary)
            primary = PQerrorMessage (self->conn);
    }
    s_set_error (self, state, "%s%s%s%s", primary, detail ? " (" : "", detail ? detail : "",
                 detail ? ")" : "");
    if (position) {
        size_t len = strlen (self->error);
        snprintf (self->error + len, sizeof self->error - len, " at character %s", position);
    }
}

static void s_notice (void *arg, const char *message)
{
    (void) arg;
    if (!log_enabled (MCE_LOG_DEBUG))
        return;
    char line[S_LINE_MAX];
    snprintf (line, sizeof line, "%s", message);
    s_one_line (line);
    log_debug ("pg", "server notice: %s", line);
}

//  Waits until the connection's socket is ready for events, or until deadline (monotonic
//  ms). 1 ready, 0 timed out, -1 no socket.
static int s_wait (PGconn *conn, short events, int64_t deadline)
{
    int fd = PQsocket (conn);
    if (fd < 0)
        return -1;
    for (;;) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll (&p, 1, left > INT32_MAX ? INT32_MAX : (int) left);
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

//  Connects within timeout_ms, following libpq's PQconnectPoll protocol.
static PGconn *s_connect (const char *conninfo, int timeout_ms, char *err, size_t errlen)
{
    PGconn *conn = PQconnectStart (conninfo);
    if (!conn) {
        snprintf (err, errlen, "out of memory connecting to the database");
        return NULL;
    }
    int64_t deadline = s_now_ms () + timeout_ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    if (PQstatus (conn) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED; //  a malformed conninfo fails here already
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        int ready = s_wait (conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (ready == 0) {
            snprintf (err, errlen, "could not connect to the database within %d ms%s%s", timeout_ms,
                      *PQerrorMessage (conn) ? ": " : "", PQerrorMessage (conn));
            s_one_line (err);
            PQfinish (conn);
            return NULL;
        }
        st = PQconnectPoll (conn); //  a socket error (ready < 0) shows up here as FAILED
    }
    if (st == PGRES_POLLING_FAILED) {
        snprintf (err, errlen, "%s", PQerrorMessage (conn));
        s_one_line (err);
        if (!*err)
            snprintf (err, errlen, "could not connect to the database");
        PQfinish (conn);
        return NULL;
    }
    PQsetNoticeProcessor (conn, s_notice, NULL);
    if (PQsetnonblocking (conn, 1) != 0) {
        snprintf (err, errlen, "%s", PQerrorMessage (conn));
        s_one_line (err);
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

static void s_drop (pg_t *self)
{
    if (self->conn)
        PQfinish (self->conn);
    self->conn = NULL;
}

//  The connection was lost mid-call: -1 with the error set, the connection dropped.
static int s_lost (pg_t *self)
{
    s_set_error (self, PG_CONNECTION_FAILURE, "%s", PQerrorMessage (self->conn));
    s_drop (self);
    return -1;
}

//  No answer within the deadline: -1 with the error set, the connection dropped.
static int s_timed_out (pg_t *self)
{
    s_set_error (self, PG_CONNECTION_FAILURE,
                 "no answer from the database within %d ms: connection closed",
                 self->query_timeout_ms + S_GRACE_MS);
    s_drop (self);
    return -1;
}

//  Clears the last error and checks the connection. 0, or -1 with the error set.
static int s_ready (pg_t *self)
{
    s_clear_error (self);
    if (!self->conn || PQstatus (self->conn) != CONNECTION_OK) {
        s_set_error (self, PG_CONNECTION_FAILURE, "not connected to the database%s%s",
                     self->conn ? ": " : "", self->conn ? PQerrorMessage (self->conn) : "");
        return -1;
    }
    return 0;
}

//  libpq refused to send: -1 with its reason.
static int s_send_failed (pg_t *self)
{
    s_set_error (self, PQstatus (self->conn) == CONNECTION_BAD ? PG_CONNECTION_FAILURE : "XX000",
                 "%s", PQerrorMessage (self->conn));
    return -1;
}

//  Flushes what libpq has queued to send, within the deadline. 0, or -1 with the error set
//  and the connection dropped.
static int s_flush (pg_t *self, int64_t deadline)
{
    int rc;
    while ((rc = PQflush (self->conn)) == 1) {
        int ready = s_wait (self->conn, POLLIN | POLLOUT, deadline);
        if (ready == 0)
            return s_timed_out (self);
        if (ready < 0 || !PQconsumeInput (self->conn))
            return s_lost (self);
    }
    return rc < 0 ? s_lost (self) : 0;
}

//  Collects the results of what was sent, within the deadline. Keeps the last successful
//  result in *keep when keep is not NULL. 0, or -1 with the error set. A COPY FROM STDIN result
//  stops the collection with 1 when copy_in, and is refused otherwise.
static int s_results (pg_t *self, int64_t deadline, PGresult **keep, bool copy_in)
{
    bool failed = false;
    for (;;) {
        while (PQisBusy (self->conn)) {
            int ready = s_wait (self->conn, POLLIN, deadline);
            if (ready == 0) {
                if (keep && *keep)
                    PQclear (*keep);
                if (keep)
                    *keep = NULL;
                return s_timed_out (self);
            }
            if (ready < 0 || !PQconsumeInput (self->conn))
                break; //  lost: PQgetResult reports it, or the check after the loop does
        }
        PGresult *res = PQgetResult (self->conn);
        if (!res)
            break;
        ExecStatusType status = PQresultStatus (res);
        if (status == PGRES_COPY_IN && copy_in && !failed) {
            PQclear (res);
            return 1;
        }
        if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
            //  COPY outside pg_copy_in would need its own protocol; a fresh connection is the
            //  simple way out
            PQclear (res);
            if (keep && *keep)
                PQclear (*keep);
            if (keep)
                *keep = NULL;
            s_set_error (self, "0A000", "COPY is only supported by pg_copy_in; connection closed");
            s_drop (self);
            return -1;
        }
        bool good = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK ||
                    status == PGRES_EMPTY_QUERY || status == PGRES_SINGLE_TUPLE;
        if (!good && !failed) {
            s_result_error (self, res);
            failed = true;
        }
        if (good && !failed && keep) {
            if (*keep)
                PQclear (*keep);
            *keep = res;
        }
        else
            PQclear (res);
    }
    if (failed && keep && *keep) {
        PQclear (*keep);
        *keep = NULL;
    }
    if (!failed && PQstatus (self->conn) == CONNECTION_BAD) {
        s_set_error (self, PG_CONNECTION_FAILURE, "%s", PQerrorMessage (self->conn));
        failed = true;
    }
    return failed ? -1 : 0;
}

//  Sends sql (several statements when multi) and collects its results within the deadline.
//  Keeps the last successful result in *keep when keep is not NULL. 0, or -1 with the error
//  set.
static int s_query (pg_t *self, const char *sql, int nparams, const char *const *params, bool multi,
                    PGresult **keep)
{
    assert (sql);
    assert (nparams >= 0 && (nparams == 0 || params));
    if (s_ready (self))
        return -1;
    int sent = multi ? PQsendQuery (self->conn, sql)
                     : PQsendQueryParams (self->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (!sent)
        return s_send_failed (self);
    int64_t deadline = s_now_ms () + self->query_timeout_ms + S_GRACE_MS;
    if (s_flush (self, deadline))
        return -1;
    return s_results (self, deadline, keep, false);
}

//  What every new connection gets before it is handed out: the server-side statement bound.
static int s_session_setup (pg_t *self)
{
    char sql[64];
    snprintf (sql, sizeof sql, "SET statement_timeout = %d", self->query_timeout_ms);
    return s_query (self, sql, 0, NULL, false, NULL);
}

pg_t *pg_connect (const char *conninfo, int timeout_ms, char *err, size_t errlen)
{
    assert (conninfo);
    assert (err && errlen > 0);
    if (timeout_ms <= 0)
        timeout_ms = PG_CONNECT_TIMEOUT_MS;
    pg_t *self = calloc (1, sizeof *self);
    if (!self || !(self->conninfo = strdup (conninfo))) {
        free (self);
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->connect_timeout_ms = timeout_ms;
    self->query_timeout_ms = PG_QUERY_TIMEOUT_MS;
    self->conn = s_connect (conninfo, timeout_ms, err, errlen);
    if (!self->conn || s_session_setup (self) != 0) {
        if (self->conn)
            snprintf (err, errlen, "%s", self->error);
        pg_destroy (&self);
        return NULL;
    }
    return self;
}

void pg_destroy (pg_t **self_p)
{
    assert (self_p);
    pg_t *self = *self_p;
    if (!self)
        return;
    s_drop (self);
    free (self->conninfo);
    free (self);
    *self_p = NULL;
}

bool pg_ok (pg_t *self)
{
    assert (self);
    return self->conn && PQstatus (self->conn) == CONNECTION_OK;
}

int pg_reset (pg_t *self)
{
    assert (self);
    s_drop (self);
    s_clear_error (self);
    char err[PG_ERROR_MAX];
    self->conn = s_connect (self->conninfo, self->connect_timeout_ms, err, sizeof err);
    if (!self->conn) {
        s_set_error (self, PG_CONNECTION_FAILURE, "%s", err);
        return -1;
    }
    if (s_session_setup (self) != 0) {
        s_drop (self);
        return -1;
    }
    return 0;
}

void pg_set_timeout (pg_t *self, int timeout_ms)
{
    assert (self);
    self->query_timeout_ms = timeout_ms > 0 ? timeout_ms : PG_QUERY_TIMEOUT_MS;
    if (pg_ok (self) && s_session_setup (self) != 0)
        log_warn ("pg", "could not set statement_timeout: %s", self->error);
}

int pg_timeout (pg_t *self)
{
    assert (self);
    return self->query_timeout_ms;
}

pg_result_t *pg_exec (pg_t *self, const char *sql, int nparams, const char *const *params)
{
    assert (self);
    PGresult *res = NULL;
    if (s_query (self, sql, nparams, params, false, &res) != 0)
        return NULL;
    pg_result_t *result = malloc (sizeof *result);
    if (!result) {
        PQclear (res);
        s_set_error (self, "53200", "out of memory"); //  53200: out_of_memory
        return NULL;
    }
    result->res = res; //  NULL only for an empty statement: no rows
    return result;
}

int pg_run (pg_t *self, const char *sql)
{
    assert (self);
    return s_query (self, sql, 0, NULL, true, NULL);
}

int pg_copy_in (pg_t *self, const char *sql, const char *data, size_t len, int64_t *rows)
{
    assert (self && sql && (data || len == 0));
    if (s_ready (self))
        return -1;
    if (!PQsendQuery (self->conn, sql))
        return s_send_failed (self);
    int64_t deadline = s_now_ms () + self->query_timeout_ms + S_GRACE_MS;
    if (s_flush (self, deadline))
        return -1;
    int rc = s_results (self, deadline, NULL, true);
    if (rc <= 0) {
        if (rc == 0)
            s_set_error (self, "0A000", "COPY FROM STDIN expected: %s", sql);
        return -1;
    }
    //  The rows, in pieces libpq takes without blocking; then the end, then the result.
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < S_COPY_CHUNK ? len - off : S_COPY_CHUNK;
        int put = PQputCopyData (self->conn, data + off, (int) n);
        if (put < 0)
            return s_lost (self);
        if (put == 0) {
            int ready = s_wait (self->conn, POLLOUT, deadline);
            if (ready == 0)
                return s_timed_out (self);
            if (ready < 0 || !PQconsumeInput (self->conn))
                return s_lost (self);
            continue;
        }
        off += n;
    }
    int end;
    while ((end = PQputCopyEnd (self->conn, NULL)) == 0) {
        int ready = s_wait (self->conn, POLLOUT, deadline);
        if (ready == 0)
            return s_timed_out (self);
        if (ready < 0)
            return s_lost (self);
    }
    if (end < 0 || s_flush (self, deadline))
        return end < 0 ? s_lost (self) : -1;
    PGresult *res = NULL;
    if (s_results (self, deadline, &res, false))
        return -1;
    if (rows)
        *rows = res ? strtoll (PQcmdTuples (res), NULL, 10) : 0;
    PQclear (res);
    return 0;
}

int pg_begin (pg_t *self)
{
    return pg_run (self, "BEGIN");
}

int pg_commit (pg_t *self)
{
    return pg_run (self, "COMMIT");
}

int pg_rollback (pg_t *self)
{
    assert (self);
    char error[PG_ERROR_MAX], sqlstate[S_STATE_LEN + 1];
    memcpy (error, self->error, sizeof error);
    memcpy (sqlstate, self->sqlstate, sizeof sqlstate);
    if (pg_run (self, "ROLLBACK") != 0)
        return -1;
    memcpy (self->error, error, sizeof error);
    memcpy (self->sqlstate, sqlstate, sizeof sqlstate);
    return 0;
}

const char *pg_error (pg_t *self)
{
    assert (self);
    return self->error;
}

const char *pg_sqlstate (pg_t *self)
{
    assert (self);
    return self->sqlstate;
}

int pg_rows (pg_result_t *self)
{
    assert (self);
    return self->res ? PQntuples (self->res) : 0;
}

int pg_cols (pg_result_t *self)
{
    assert (self);
    return self->res ? PQnfields (self->res) : 0;
}

const char *pg_value (pg_result_t *self, int row, int col)
{
    assert (self);
    if (!self->res || row < 0 || col < 0 || row >= PQntuples (self->res) ||
        col >= PQnfields (self->res) || PQgetisnull (self->res, row, col))
        return NULL;
    return PQgetvalue (self->res, row, col);
}

int64_t pg_int (pg_result_t *self, int row, int col)
{
    const char *text = pg_value (self, row, col);
    if (!text || !*text)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    return errno || *end ? 0 : (int64_t) v;
}

int64_t pg_affected (pg_result_t *self)
{
    assert (self);
    const char *n = self->res ? PQcmdTuples (self->res) : "";
    return *n ? (int64_t) strtoll (n, NULL, 10) : 0;
}

void pg_result_free (pg_result_t **self_p)
{
    assert (self_p);
    pg_result_t *self = *self_p;
    if (!self)
        return;
    if (self->res)
        PQclear (self->res);
    free (self);
    *self_p = NULL;
}
