/*  pg — the one wrapper of libpq for every process: a small synchronous client.

    PGconn and PGresult never leave pg.c, and libpq's errors are translated here: a failed call
    returns NULL or -1 and keeps the reason for pg_error (libpq's own message on one line) and
    pg_sqlstate (the five-character SQLSTATE, e.g. "23505" for a unique violation, which callers
    map to their own answers such as HTTP 409). Nothing is logged on a failed statement: the
    caller knows whether the error was expected. libpq's notices go to log_debug.

    Every call is bounded: connecting waits at most the timeout given to pg_connect, and the
    server cancels a statement that runs past pg_timeout () ms (PG_QUERY_TIMEOUT_MS unless
    set): the call fails with SQLSTATE 57014 and the connection stays usable. If no answer
    comes at all (a network that drops packets) the call gives up a few seconds later and
    closes the connection. A lost connection fails the call with SQLSTATE 08006 (or the
    server's own reason, e.g. 57P01 when an administrator ended it) and pg_ok () turns false
    until pg_reset () reconnects.

    One thread uses a pg_t at a time.
*/
#ifndef MCE_PG_H
#define MCE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_CONNECT_TIMEOUT_MS 10000 //  when pg_connect is given timeout_ms <= 0
#define PG_QUERY_TIMEOUT_MS   30000 //  default bound on one statement
#define PG_ERROR_MAX          1024  //  pg_error is cut to this many bytes

//  SQLSTATEs callers commonly react to
#define PG_UNIQUE_VIOLATION      "23505"
#define PG_FOREIGN_KEY_VIOLATION "23503"
#define PG_CHECK_VIOLATION       "23514"
#define PG_QUERY_CANCELED        "57014" //  also a statement that ran past pg_timeout ()
#define PG_CONNECTION_FAILURE    "08006" //  the connection was lost (or never made)

typedef struct _pg_t pg_t;
typedef struct _pg_result_t pg_result_t;

//  Connects with a libpq conninfo ("host=127.0.0.1 port=5432 user=... dbname=...", or a
//  postgresql:// URI) within timeout_ms. Returns a connection the caller owns, or NULL with
//  the reason in err.
pg_t *pg_connect (const char *conninfo, int timeout_ms, char *err, size_t errlen);
//  Closes the connection. Idempotent; nulls *self_p.
void pg_destroy (pg_t **self_p);
//  true while the connection is up, as far as the last call could tell.
bool pg_ok (pg_t *self);
//  Drops the connection and connects again with the same conninfo and timeout. 0, or -1 with
//  the reason in pg_error.
int pg_reset (pg_t *self);

//  Bounds each statement from now on (<= 0 restores PG_QUERY_TIMEOUT_MS). Call it outside a
//  transaction: the server-side setting it makes would be undone by a rollback.
void pg_set_timeout (pg_t *self, int timeout_ms);
int pg_timeout (pg_t *self);

//  Runs one statement with text parameters $1..$nparams (a NULL entry is SQL NULL). Returns a
//  result the caller owns (free with pg_result_free), or NULL on error (pg_error, pg_sqlstate).
pg_result_t *pg_exec (pg_t *self, const char *sql, int nparams, const char *const *params);
//  Runs sql, which may hold several statements separated by ';' (a migration file), and drops
//  their results. 0, or -1 on the first error (the statements after it are not run).
int pg_run (pg_t *self, const char *sql);

//  Runs sql, a COPY ... FROM STDIN, feeding it len bytes of data in COPY's text format (rows
//  end with a newline, columns are separated by tabs, \\N is NULL, and a backslash, tab, newline or
//  carriage return inside a value is escaped). Sets *rows (when not NULL) to the rows copied. 0, or
//  -1 with the error set; a failed COPY inside a transaction aborts it, as any failed statement
//  does.
int pg_copy_in (pg_t *self, const char *sql, const char *data, size_t len, int64_t *rows);
int pg_begin (pg_t *self);
int pg_commit (pg_t *self);
//  Rolls back. When it succeeds it keeps the error of the call that failed before it, so a
//  caller can roll back first and then look at pg_error and pg_sqlstate.
int pg_rollback (pg_t *self);

//  Why the last call failed, on one line; "" after a call that succeeded. Borrowed, valid
//  until the next call on self.
const char *pg_error (pg_t *self);
//  SQLSTATE of the last failure ("23505", ...), "" after a success. Borrowed as pg_error.
const char *pg_sqlstate (pg_t *self);

int pg_rows (pg_result_t *self);
int pg_cols (pg_result_t *self);
//  Value at (row, col) as text; NULL for SQL NULL or a row/col out of range. Borrowed, valid
//  until pg_result_free.
const char *pg_value (pg_result_t *self, int row, int col);
//  Value at (row, col) as an integer; 0 for NULL or text that is not one.
int64_t pg_int (pg_result_t *self, int row, int col);
//  Rows changed by an INSERT, UPDATE or DELETE (0 for other statements).
int64_t pg_affected (pg_result_t *self);
//  Frees the result. Idempotent; nulls *self_p.
void pg_result_free (pg_result_t **self_p);

#endif
