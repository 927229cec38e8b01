/*  pgstore — the persister's Postgres store (see pgstore.h for the contract).

    A batch is applied in two steps. First, in C and without the database, the events are
    folded into a handful of multi-row statements: one INSERT per table, one upsert for
    epochs and one for markets, and one UPDATE ... FROM (VALUES ...) for the orders whose
    fills, amendments, cancels or expiries the batch carries. An order may appear several
    times in a batch, so its changes are accumulated per order first (a small open-addressing
    map), in seq order, into one row: the quantity traded, and the remaining quantity last set
    by an amend, cancel or expiry less what traded after it. Epochs, markets, settlements,
    balances (per user and asset), deposits and withdrawals are folded the same way, because
    one upsert may not touch a row twice.

    Second, in one transaction: lock the stream's offset row, check the batch starts right
    after it, run the statements (inserts before updates, so an order accepted and traded in
    the same batch ends right), move the offset, commit.

    Every parameter travels as text with an explicit cast in the SQL, so integers stay exact
    (no numeric-from-double anywhere); times travel as RFC 3339 with microseconds, which is
    exactly what timestamptz keeps. A statement holds at most PGSTORE_MAX_PARAMS parameters;
    longer VALUES lists are cut into several statements.
*/
#include "pgstore.h"
#include "grow.h"

#include "clock.h"
#include "fnv.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MIGRATE_DECLARE (persister);

#define S_NULL      SIZE_MAX // a parameter's offset when it is SQL NULL
#define S_ERROR_MAX (PG_ERROR_MAX + 256)

struct _pgstore_t {
    pg_t *pg;
    char error[S_ERROR_MAX];
    char sqlstate[8];
};

//  --------------------------------------------------------------------------------------------
//  A multi-row statement: head, then "($1::type, ...), (...)" for each row, then tail.

typedef struct {
    const char *what;        //  for error messages: "insert orders"
    const char *head;        //  "INSERT INTO t (a, b) VALUES "
    const char *tail;        //  "" or " ON CONFLICT ..." or ") AS v (...) WHERE ..."
    const char *const *cast; //  SQL type of each column
    int ncols;
    size_t nparams; //  so far, over all rows
    size_t *offs;   //  where each parameter's text starts in arena, or S_NULL
    size_t offs_cap;
    char *arena;
    size_t arena_len, arena_cap;
    bool oom;
} stmt_t;

static void s_stmt_init (stmt_t *st, const char *what, const char *head, const char *tail,
                         const char *const *cast, int ncols)
{
    *st = (stmt_t){.what = what, .head = head, .tail = tail, .cast = cast, .ncols = ncols};
}

static void s_stmt_free (stmt_t *st)
{
    free (st->offs);
    free (st->arena);
    st->offs = NULL;
    st->arena = NULL;
}

//  Appends one parameter: text (NULL for SQL NULL).
static void s_text (stmt_t *st, const char *text)
{
    if (st->oom)
        return;
    if (!grow_to ((void **) &st->offs, &st->offs_cap, st->nparams + 1, sizeof (size_t))) {
        st->oom = true;
        return;
    }
    if (!text) {
        st->offs[st->nparams++] = S_NULL;
        return;
    }
    size_t len = strlen (text) + 1;
    if (!grow_to ((void **) &st->arena, &st->arena_cap, st->arena_len + len, 1)) {
        st->oom = true;
        return;
    }
    memcpy (st->arena + st->arena_len, text, len);
    st->offs[st->nparams++] = st->arena_len;
    st->arena_len += len;
}

//  A string field: "" (absent) is NULL.
static void s_opt_text (stmt_t *st, const char *text)
{
    s_text (st, text && *text ? text : NULL);
}

static void s_int (stmt_t *st, int64_t v)
{
    char buf[24];
    snprintf (buf, sizeof buf, "%" PRId64, v);
    s_text (st, buf);
}

static void s_uint (stmt_t *st, uint64_t v)
{
    char buf[24];
    snprintf (buf, sizeof buf, "%" PRIu64, v);
    s_text (st, buf);
}

static void s_bool (stmt_t *st, bool v)
{
    s_text (st, v ? "t" : "f");
}

//  ns since the Unix epoch as RFC 3339 with microseconds: exact for timestamptz.
static void s_time (stmt_t *st, int64_t ns)
{
    char buf[40];
    if (clock_format_rfc3339 (ns, buf, sizeof buf) < 0)
        s_text (st, "-infinity"); //  out of gmtime's range: keep the row, flag the time
    else
        s_text (st, buf);
}

//  An optional value whose absence the wire encodes as 0.
static void s_opt_int (stmt_t *st, int64_t v)
{
    if (v)
        s_int (st, v);
    else
        s_text (st, NULL);
}

static void s_opt_uint (stmt_t *st, uint64_t v)
{
    if (v)
        s_uint (st, v);
    else
        s_text (st, NULL);
}

static void s_opt_time (stmt_t *st, int64_t ns)
{
    if (ns)
        s_time (st, ns);
    else
        s_text (st, NULL);
}

static size_t s_rows (const stmt_t *st)
{
    return st->nparams / (size_t) st->ncols;
}

//  Appends text to a growing NUL-terminated buffer. false when memory runs out.
static bool s_cat (char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start (ap, fmt);
        size_t room = *cap - *len;
        int n = vsnprintf (*buf ? *buf + *len : NULL, *buf ? room : 0, fmt, ap);
        va_end (ap);
        if (n < 0)
            return false;
        if (*buf && (size_t) n < room) {
            *len += (size_t) n;
            return true;
        }
        if (!grow_to ((void **) buf, cap, *len + (size_t) n + 1, 1))
            return false;
    }
}

//  --------------------------------------------------------------------------------------------
//  Errors

static void s_clear_error (pgstore_t *self)
{
    self->error[0] = '\0';
    self->sqlstate[0] = '\0';
}

//  Records a failure of our own (no SQLSTATE).
static void s_fail (pgstore_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void s_fail (pgstore_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, ap);
    va_end (ap);
    self->sqlstate[0] = '\0';
}

//  Records the database's failure of the step named what.
static void s_fail_pg (pgstore_t *self, const char *what)
{
    snprintf (self->error, sizeof self->error, "%s: %s", what, pg_error (self->pg));
    snprintf (self->sqlstate, sizeof self->sqlstate, "%s", pg_sqlstate (self->pg));
}

//  Appends one value in COPY's text format: backslash, tab, newline and carriage return
//  escaped. false when memory runs out.
static bool s_copy_value (char **buf, size_t *len, size_t *cap, const char *v)
{
    size_t n = strlen (v);
    if (!grow_to ((void **) buf, cap, *len + 2 * n + 1, 1))
        return false;
    char *out = *buf + *len;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        const char *esc = c == '\\'   ? "\\\\"
                          : c == '\t' ? "\\t"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                                      : NULL;
        if (esc) {
            *out++ = esc[0];
            *out++ = esc[1];
        }
        else
            *out++ = c;
    }
    *len = (size_t) (out - *buf);
    return true;
}

//  A plain INSERT (no tail) goes in with COPY FROM STDIN: Postgres takes rows that way several
//  times faster than as a VALUES list of typed parameters, which it must parse and plan.
//  "INSERT INTO t (a, b) VALUES " becomes "COPY t (a, b) FROM STDIN"; every value is the same
//  text the parameter would have carried (each column's type reads it the same way).
static int s_copy_run (pgstore_t *self, stmt_t *st, int64_t *affected)
{
    const char *table = st->head + strlen ("INSERT INTO ");
    const char *values = strstr (table, " VALUES");
    assert (values);
    char sql[512];
    snprintf (sql, sizeof sql, "COPY %.*s FROM STDIN", (int) (values - table), table);
    char *data = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    for (size_t i = 0; i < st->nparams && ok; i++) {
        size_t off = st->offs[i];
        ok = off == S_NULL ? s_cat (&data, &len, &cap, "\\N")
                           : s_copy_value (&data, &len, &cap, st->arena + off);
        ok = ok && s_cat (&data, &len, &cap, "%c", (i + 1) % (size_t) st->ncols ? '\t' : '\n');
    }
    int rc = -1;
    int64_t rows = 0;
    if (!ok)
        s_fail (self, "%s: out of memory", st->what);
    else if (pg_copy_in (self->pg, sql, data, len, &rows))
        s_fail_pg (self, st->what);
    else {
        if (affected)
            *affected += rows;
        rc = 0;
    }
    free (data);
    return rc;
}

//  Runs the statement's rows, PGSTORE_MAX_PARAMS parameters at most per statement. Adds the
//  rows changed to *affected when not NULL. 0, or -1 with the error recorded.
static int s_stmt_run (pgstore_t *self, stmt_t *st, int64_t *affected)
{
    if (st->oom) {
        s_fail (self, "%s: out of memory", st->what);
        return -1;
    }
    if (st->tail[0] == '\0' && strncmp (st->head, "INSERT INTO ", 12) == 0)
        return st->nparams ? s_copy_run (self, st, affected) : 0;
    size_t rows = s_rows (st);
    size_t per = PGSTORE_MAX_PARAMS / (size_t) st->ncols;
    const char **params = calloc (per * (size_t) st->ncols, sizeof *params);
    char *sql = NULL;
    size_t sql_len = 0, sql_cap = 0;
    int rc = 0;
    if (!params) {
        s_fail (self, "%s: out of memory", st->what);
        return -1;
    }
    for (size_t first = 0; first < rows && rc == 0; first += per) {
        size_t n = rows - first < per ? rows - first : per;
        sql_len = 0;
        bool ok = s_cat (&sql, &sql_len, &sql_cap, "%s", st->head);
        int k = 1;
        for (size_t r = 0; r < n && ok; r++) {
            ok = s_cat (&sql, &sql_len, &sql_cap, r ? ",(" : "(");
            for (int c = 0; c < st->ncols && ok; c++, k++)
                ok = s_cat (&sql, &sql_len, &sql_cap, "%s$%d::%s", c ? "," : "", k, st->cast[c]);
            ok = ok && s_cat (&sql, &sql_len, &sql_cap, ")");
        }
        ok = ok && s_cat (&sql, &sql_len, &sql_cap, "%s", st->tail);
        if (!ok) {
            s_fail (self, "%s: out of memory", st->what);
            rc = -1;
            break;
        }
        size_t base = first * (size_t) st->ncols;
        for (size_t i = 0; i < n * (size_t) st->ncols; i++) {
            size_t off = st->offs[base + i];
            params[i] = off == S_NULL ? NULL : st->arena + off;
        }
        pg_result_t *res = pg_exec (self->pg, sql, (int) (n * (size_t) st->ncols), params);
        if (!res) {
            s_fail_pg (self, st->what);
            rc = -1;
            break;
        }
        if (affected)
            *affected += pg_affected (res);
        pg_result_free (&res);
    }
    free (sql);
    free (params);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  A map from a 64-bit key to an index into an array of accumulators. Keys that are hashes
//  (strings) may collide: the caller's same () tells a real match from a collision.

typedef struct {
    uint64_t *keys;
    int32_t *vals; //  -1: empty slot
    size_t cap;    //  a power of two, or 0
    size_t count;
} map_t;

typedef bool (same_fn) (const void *ctx, int32_t index);

static void s_map_free (map_t *m)
{
    free (m->keys);
    free (m->vals);
    *m = (map_t){0};
}

static uint64_t s_mix (uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

//  The slot holding key (same () agreeing), or the empty slot where it would go.
static size_t s_map_slot (const map_t *m, uint64_t key, same_fn *same, const void *ctx)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t) s_mix (key) & mask;
    while (m->vals[i] >= 0 && !(m->keys[i] == key && (!same || same (ctx, m->vals[i]))))
        i = (i + 1) & mask;
    return i;
}

//  Makes room for one more key. false when memory runs out.
static bool s_map_reserve (map_t *m)
{
    if ((m->count + 1) * 2 <= m->cap)
        return true;
    size_t cap = m->cap ? m->cap * 2 : 64;
    map_t bigger = {calloc (cap, sizeof (uint64_t)), malloc (cap * sizeof (int32_t)), cap, 0};
    if (!bigger.keys || !bigger.vals) {
        s_map_free (&bigger);
        return false;
    }
    memset (bigger.vals, 0xff, cap * sizeof (int32_t)); //  every slot -1
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i] >= 0) {
            size_t j = s_map_slot (&bigger, m->keys[i], NULL, NULL);
            //  keys already distinct (or told apart by same): place without comparing
            while (bigger.vals[j] >= 0)
                j = (j + 1) & (cap - 1);
            bigger.keys[j] = m->keys[i];
            bigger.vals[j] = m->vals[i];
            bigger.count++;
        }
    s_map_free (m);
    *m = bigger;
    return true;
}

//  --------------------------------------------------------------------------------------------
//  Accumulators: what a batch does to one order, epoch or market.

typedef struct {
    uint64_t order_id;
    int64_t traded;     //  Wh traded in the batch
    bool has_remaining; //  an amend, cancel or expiry set the remaining quantity
    int64_t remaining;  //  ...to this, less what traded after it
    bool amended;       //  qty becomes filled + remaining
    int64_t price;      //  the last amendment's price, when amended
    const char *status; //  cancelled or expired; NULL: from the fills, or unchanged
    int64_t at;         //  ns of its last event
    uint64_t seq;       //  of its last event
} order_acc_t;

typedef struct {
    const proto_epoch_state_t *last; //  its last epoch_state in the batch
    int64_t clearing_price;          //  0: none in the batch
    bool cleared;                    //  volume, trades and value are known
    int64_t volume;
    uint64_t trades;
    int64_t value;
    int64_t demand, supply; //  0: none in the batch
    uint64_t mseq;          //  from the settler's stream: the matcher seq its record copies
} epoch_acc_t;

//  One trade's settlement, folded over the batch: the latest record, with the fields only
//  some records carry (the creating one: value, fee, buyer, seller; processing ones: the
//  signature) taken from the latest record that has them.
typedef struct {
    const proto_settlement_t *last;
    int64_t value, fee;
    bool has_amounts;
    const char *buyer, *seller, *signature;
} settle_acc_t;

typedef struct {
    const char *id;
    const char *status; //  NULL: no market_state in the batch
    int64_t at;
    uint64_t seq;
} market_acc_t;

//  Accumulators found by a 64-bit key (see s_acc): items[map value], each of one type.
typedef struct {
    void *items;
    size_t count, cap;
    map_t map;
} accs_t;

//  One (user, asset)'s balance: its last balance event in the batch says it all.
typedef struct {
    const proto_balance_t *last;
} balance_acc_t;

//  One withdrawal as the matcher's events of the batch leave it: created at the first, in the
//  state of the last (requested, or the final paid or refunded).
typedef struct {
    const proto_withdrawal_t *first, *last;
} mwithdrawal_acc_t;

//  One deposit or withdrawal as the settler's records of the batch leave it: the latest state
//  (as the table names it), the newest signature, and the error the records leave (see
//  s_add_transfer). creating: the record that carries the user, asset and amount, when the
//  batch has it (the row is then upserted, else only updated).
typedef struct {
    const proto_transfer_t *creating, *last;
    const char *state;
    const char *signature; //  NULL: none in the batch (the row keeps its own)
    const char *error;
    bool error_set; //  a record of the batch decided the error (else the row keeps its own)
} transfer_acc_t;

typedef struct {
    //  the statements, in the order they run
    stmt_t markets, epochs, orders, trades, order_updates, order_events, audit, settlements;
    stmt_t balances, movements, mwithdrawals;                            //  stream m: accounts
    stmt_t deposits, deposit_updates, swithdrawals, swithdrawal_updates; //  stream s: transfers
    accs_t bals, mwds, deps, swds;
    settle_acc_t *sets;
    size_t nsets, sets_cap;
    map_t set_map;
    order_acc_t *ords;
    size_t nords, ords_cap;
    map_t ord_map;
    epoch_acc_t *eps;
    size_t neps, eps_cap;
    map_t ep_map;
    market_acc_t *mkts;
    size_t nmkts, mkts_cap;
    map_t mkt_map;
    bool oom;
} batch_t;

static const char *const s_cast_markets[] = {"text", "text", "timestamptz", "bigint"};
static const char *const s_cast_epochs[] = {
    "text",   "bigint",      "text",   "timestamptz", "timestamptz", "bigint", "bigint",
    "bigint", "timestamptz", "bigint", "bigint",      "bigint",      "bigint"};
static const char *const s_cast_orders[] = {
    "bigint", "text", "bigint",      "text",        "text",        "text",
    "text",   "text", "boolean",     "bigint",      "bigint",      "bigint",
    "text",   "text", "timestamptz", "timestamptz", "timestamptz", "bigint"};
static const char *const s_cast_trades[] = {"bigint", "text",   "bigint",      "bigint", "bigint",
                                            "text",   "text",   "bigint",      "bigint", "bigint",
                                            "text",   "bigint", "timestamptz", "text"};
static const char *const s_cast_updates[] = {"bigint", "bigint", "bigint",      "boolean",
                                             "bigint", "text",   "timestamptz", "bigint"};
static const char *const s_cast_events[] = {"bigint", "bigint", "text", "bigint",
                                            "bigint", "bigint", "text", "timestamptz"};
static const char *const s_cast_audit[] = {"bigint", "text", "text", "text", "timestamptz"};
static const char *const s_cast_settlements[] = {
    "bigint", "bigint", "text",   "bigint", "text", "text",        "text",
    "bigint", "bigint", "bigint", "text",   "text", "timestamptz", "bigint"};

static const char *const s_cast_balances[] = {"text",   "text",   "bigint",
                                              "bigint", "bigint", "timestamptz"};
static const char *const s_cast_movements[] = {"bigint", "text",   "text",       "text",
                                               "bigint", "text",   "bigint",     "bigint",
                                               "bigint", "bigint", "timestamptz"};
static const char *const s_cast_mwithdrawals[] = {"bigint", "text",        "text",        "bigint",
                                                  "text",   "timestamptz", "timestamptz", "bigint"};
//  A creating transfer record: id, user, asset, amount, [wallet,] state, signature, attempts,
//  error, created, updated, seq. The deposits' has the wallet, the withdrawals' not.
static const char *const s_cast_deposits[] = {"bigint", "text",        "text",        "bigint",
                                              "text",   "text",        "text",        "bigint",
                                              "text",   "timestamptz", "timestamptz", "bigint"};
static const char *const s_cast_swithdrawals[] = {"bigint",      "text",        "text",   "bigint",
                                                  "text",        "text",        "bigint", "text",
                                                  "timestamptz", "timestamptz", "bigint"};
//  A later record: id, state, signature, attempts, keep_error, error, updated, seq.
static const char *const s_cast_transfer_updates[] = {"bigint",  "text", "text",        "bigint",
                                                      "boolean", "text", "timestamptz", "bigint"};

#define S_COUNT(a) ((int) (sizeof (a) / sizeof ((a)[0])))

static void s_batch_init (batch_t *b)
{
    *b = (batch_t){0};
    //  A market seen for the first time is inserted (open unless the batch paused it); a
    //  market_state changes an existing one.
    s_stmt_init (&b->markets, "upsert markets",
                 "INSERT INTO markets AS m (id, status, updated_at, seq) "
                 "SELECT v.id, COALESCE (v.status, 'open'), v.at, v.seq FROM (VALUES ",
                 ") AS v (id, status, at, seq) ON CONFLICT (id) DO UPDATE SET "
                 "status = EXCLUDED.status, updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq "
                 "WHERE EXCLUDED.seq IS NOT NULL",
                 s_cast_markets, S_COUNT (s_cast_markets));
    s_stmt_init (&b->epochs, "upsert epochs",
                 "INSERT INTO epochs AS e (market, epoch, state, start_at, end_at, clearing_price, "
                 "volume, trades, updated_at, seq, value, demand, supply) VALUES ",
                 " ON CONFLICT (market, epoch) DO UPDATE SET "
                 "state = CASE WHEN e.state = 'settled' THEN e.state ELSE EXCLUDED.state END, "
                 "start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at, "
                 "clearing_price = COALESCE (EXCLUDED.clearing_price, e.clearing_price), "
                 "volume = COALESCE (EXCLUDED.volume, e.volume), "
                 "trades = COALESCE (EXCLUDED.trades, e.trades), "
                 "value = COALESCE (EXCLUDED.value, e.value), "
                 "demand = COALESCE (EXCLUDED.demand, e.demand), "
                 "supply = COALESCE (EXCLUDED.supply, e.supply), "
                 "updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq",
                 s_cast_epochs, S_COUNT (s_cast_epochs));
    s_stmt_init (&b->orders, "insert orders",
                 "INSERT INTO orders (order_id, market, epoch, username, client_order_id, side, "
                 "order_type, tif, post_only, qty, price, remaining, status, source, expires_at, "
                 "created_at, updated_at, seq) VALUES ",
                 "", s_cast_orders, S_COUNT (s_cast_orders));
    s_stmt_init (&b->trades, "insert trades",
                 "INSERT INTO trades (trade_id, market, epoch, buy_order_id, sell_order_id, buyer, "
                 "seller, qty, price, value, aggressor, seq, at, grid) VALUES ",
                 "", s_cast_trades, S_COUNT (s_cast_trades));
    //  COALESCE (v.remaining, o.remaining - v.traded): the remaining quantity after the batch
    s_stmt_init (&b->order_updates, "update orders",
                 "UPDATE orders AS o SET "
                 "filled = o.filled + v.traded, "
                 "remaining = COALESCE (v.remaining, o.remaining - v.traded), "
                 "qty = CASE WHEN v.amended "
                 "THEN o.filled + v.traded + COALESCE (v.remaining, o.remaining - v.traded) "
                 "ELSE o.qty END, "
                 "price = CASE WHEN v.amended THEN v.price ELSE o.price END, "
                 "status = COALESCE (v.status, CASE WHEN v.traded = 0 THEN o.status "
                 "WHEN COALESCE (v.remaining, o.remaining - v.traded) = 0 THEN 'filled' "
                 "ELSE 'partially_filled' END), "
                 "updated_at = v.at, seq = v.seq FROM (VALUES ",
                 ") AS v (order_id, traded, remaining, amended, price, status, at, seq) "
                 "WHERE o.order_id = v.order_id",
                 s_cast_updates, S_COUNT (s_cast_updates));
    s_stmt_init (&b->order_events, "insert order_events",
                 "INSERT INTO order_events (seq, order_id, kind, qty, price, trade_id, reason, at) "
                 "VALUES ",
                 "", s_cast_events, S_COUNT (s_cast_events));
    //  One row per trade: its settlement's latest state (the settler's stream, in seq order)
    s_stmt_init (
        &b->settlements, "upsert settlements",
        "INSERT INTO settlements AS s (trade_id, settlement_id, market, epoch, state, "
        "signature, reason, attempts, value, fee, buyer, seller, updated_at, seq) VALUES ",
        " ON CONFLICT (trade_id) DO UPDATE SET settlement_id = EXCLUDED.settlement_id, "
        "market = EXCLUDED.market, epoch = EXCLUDED.epoch, state = EXCLUDED.state, "
        "signature = COALESCE (EXCLUDED.signature, s.signature), "
        "reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, "
        "value = COALESCE (EXCLUDED.value, s.value), fee = COALESCE (EXCLUDED.fee, s.fee), "
        "buyer = COALESCE (EXCLUDED.buyer, s.buyer), "
        "seller = COALESCE (EXCLUDED.seller, s.seller), "
        "updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq WHERE s.seq < EXCLUDED.seq",
        s_cast_settlements, S_COUNT (s_cast_settlements));
    s_stmt_init (&b->audit, "insert audit_log",
                 "INSERT INTO audit_log (seq, username, action, market, at) VALUES ", "",
                 s_cast_audit, S_COUNT (s_cast_audit));

    //  Accounts. The seq guards make a row take each event once and in order, whatever the
    //  batch boundaries (the offset already refuses a batch applied twice).
    s_stmt_init (&b->balances, "upsert balances",
                 "INSERT INTO balances AS b (username, asset, available, reserved, updated_seq, "
                 "updated_at) VALUES ",
                 " ON CONFLICT (username, asset) DO UPDATE SET available = EXCLUDED.available, "
                 "reserved = EXCLUDED.reserved, updated_seq = EXCLUDED.updated_seq, "
                 "updated_at = EXCLUDED.updated_at WHERE b.updated_seq < EXCLUDED.updated_seq",
                 s_cast_balances, S_COUNT (s_cast_balances));
    s_stmt_init (&b->movements, "insert balance_movements",
                 "INSERT INTO balance_movements (seq, username, asset, cause, ref, market, "
                 "d_available, d_reserved, available, reserved, ts) VALUES ",
                 "", s_cast_movements, S_COUNT (s_cast_movements));
    //  Withdrawals: two streams write them, each in its order, and either may create the row
    //  (the state's meaning: migrations/0003_accounts.sql). The matcher's requested leaves the
    //  state to the settler's records once there is a row; its paid and refunded are final,
    //  and no record of the settler's changes a final state. Times: the earliest and latest
    //  of both streams, so the order in which the two are applied does not show.
    s_stmt_init (&b->mwithdrawals, "upsert withdrawals (matcher)",
                 "INSERT INTO withdrawals AS w (withdrawal_id, username, asset, amount, state, "
                 "created_at, updated_at, mseq) VALUES ",
                 " ON CONFLICT (withdrawal_id) DO UPDATE SET "
                 "state = CASE WHEN EXCLUDED.state = 'requested' THEN w.state "
                 "ELSE EXCLUDED.state END, "
                 "created_at = LEAST (w.created_at, EXCLUDED.created_at), "
                 "updated_at = GREATEST (w.updated_at, EXCLUDED.updated_at), "
                 "mseq = EXCLUDED.mseq WHERE w.mseq IS NULL OR w.mseq < EXCLUDED.mseq",
                 s_cast_mwithdrawals, S_COUNT (s_cast_mwithdrawals));
    s_stmt_init (&b->swithdrawals, "upsert withdrawals (settler)",
                 "INSERT INTO withdrawals AS w (withdrawal_id, username, asset, amount, state, "
                 "signature, attempts, error, created_at, updated_at, sseq) VALUES ",
                 " ON CONFLICT (withdrawal_id) DO UPDATE SET "
                 "state = CASE WHEN w.state IN ('paid', 'refunded') THEN w.state "
                 "ELSE EXCLUDED.state END, "
                 "signature = COALESCE (EXCLUDED.signature, w.signature), "
                 "attempts = EXCLUDED.attempts, error = EXCLUDED.error, "
                 "created_at = LEAST (w.created_at, EXCLUDED.created_at), "
                 "updated_at = GREATEST (w.updated_at, EXCLUDED.updated_at), "
                 "sseq = EXCLUDED.sseq WHERE w.sseq IS NULL OR w.sseq < EXCLUDED.sseq",
                 s_cast_swithdrawals, S_COUNT (s_cast_swithdrawals));
    s_stmt_init (&b->swithdrawal_updates, "update withdrawals (settler)",
                 "UPDATE withdrawals AS w SET "
                 "state = CASE WHEN w.state IN ('paid', 'refunded') THEN w.state "
                 "ELSE v.state END, "
                 "signature = COALESCE (v.signature, w.signature), attempts = v.attempts, "
                 "error = CASE WHEN v.keep_error THEN w.error ELSE v.error END, "
                 "updated_at = GREATEST (w.updated_at, v.at), sseq = v.seq FROM (VALUES ",
                 ") AS v (id, state, signature, attempts, keep_error, error, at, seq) "
                 "WHERE w.withdrawal_id = v.id AND (w.sseq IS NULL OR w.sseq < v.seq)",
                 s_cast_transfer_updates, S_COUNT (s_cast_transfer_updates));
    //  Deposits: the settler's stream alone, in order.
    s_stmt_init (&b->deposits, "upsert deposits",
                 "INSERT INTO deposits AS d (deposit_id, username, asset, amount, wallet, state, "
                 "signature, attempts, error, created_at, updated_at, seq) VALUES ",
                 " ON CONFLICT (deposit_id) DO UPDATE SET state = EXCLUDED.state, "
                 "signature = COALESCE (EXCLUDED.signature, d.signature), "
                 "attempts = EXCLUDED.attempts, error = EXCLUDED.error, "
                 "updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq WHERE d.seq < EXCLUDED.seq",
                 s_cast_deposits, S_COUNT (s_cast_deposits));
    s_stmt_init (&b->deposit_updates, "update deposits",
                 "UPDATE deposits AS d SET state = v.state, "
                 "signature = COALESCE (v.signature, d.signature), attempts = v.attempts, "
                 "error = CASE WHEN v.keep_error THEN d.error ELSE v.error END, "
                 "updated_at = v.at, seq = v.seq FROM (VALUES ",
                 ") AS v (id, state, signature, attempts, keep_error, error, at, seq) "
                 "WHERE d.deposit_id = v.id AND d.seq < v.seq",
                 s_cast_transfer_updates, S_COUNT (s_cast_transfer_updates));
}

static void s_batch_free (batch_t *b)
{
    stmt_t *all[] = {&b->markets,         &b->epochs,        &b->orders,
                     &b->trades,          &b->order_updates, &b->order_events,
                     &b->audit,           &b->settlements,   &b->balances,
                     &b->movements,       &b->mwithdrawals,  &b->deposits,
                     &b->deposit_updates, &b->swithdrawals,  &b->swithdrawal_updates};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        s_stmt_free (all[i]);
    accs_t *accs[] = {&b->bals, &b->mwds, &b->deps, &b->swds};
    for (size_t i = 0; i < sizeof accs / sizeof accs[0]; i++) {
        free (accs[i]->items);
        s_map_free (&accs[i]->map);
    }
    free (b->ords);
    free (b->sets);
    s_map_free (&b->set_map);
    free (b->eps);
    free (b->mkts);
    s_map_free (&b->ord_map);
    s_map_free (&b->ep_map);
    s_map_free (&b->mkt_map);
}

//  The accumulator of order_id, created empty if new. NULL when memory runs out.
static order_acc_t *s_order (batch_t *b, uint64_t order_id)
{
    if (!s_map_reserve (&b->ord_map))
        return NULL;
    size_t slot = s_map_slot (&b->ord_map, order_id, NULL, NULL);
    if (b->ord_map.vals[slot] >= 0)
        return &b->ords[b->ord_map.vals[slot]];
    if (!grow_to ((void **) &b->ords, &b->ords_cap, b->nords + 1, sizeof *b->ords))
        return NULL;
    b->ords[b->nords] = (order_acc_t){.order_id = order_id};
    b->ord_map.keys[slot] = order_id;
    b->ord_map.vals[slot] = (int32_t) b->nords;
    b->ord_map.count++;
    return &b->ords[b->nords++];
}

typedef struct {
    const batch_t *b;
    const char *market;
    int64_t epoch;
} key_ctx_t;

static bool s_same_market (const void *ctx, int32_t index)
{
    const key_ctx_t *k = ctx;
    return strcmp (k->b->mkts[index].id, k->market) == 0;
}

static bool s_same_epoch (const void *ctx, int32_t index)
{
    const key_ctx_t *k = ctx;
    const proto_epoch_state_t *e = k->b->eps[index].last;
    return e->epoch == k->epoch && strcmp (e->market, k->market) == 0;
}

static market_acc_t *s_market (batch_t *b, const char *id)
{
    if (!s_map_reserve (&b->mkt_map))
        return NULL;
    key_ctx_t ctx = {b, id, 0};
    uint64_t key = fnv1a (id, strlen (id));
    size_t slot = s_map_slot (&b->mkt_map, key, s_same_market, &ctx);
    if (b->mkt_map.vals[slot] >= 0)
        return &b->mkts[b->mkt_map.vals[slot]];
    if (!grow_to ((void **) &b->mkts, &b->mkts_cap, b->nmkts + 1, sizeof *b->mkts))
        return NULL;
    b->mkts[b->nmkts] = (market_acc_t){.id = id};
    b->mkt_map.keys[slot] = key;
    b->mkt_map.vals[slot] = (int32_t) b->nmkts;
    b->mkt_map.count++;
    return &b->mkts[b->nmkts++];
}

//  Folds one epoch_state into its epoch's accumulator. mseq: the matcher seq a settler record
//  copies (0 for the matcher's own events).
static int s_epoch (batch_t *b, const proto_epoch_state_t *ev, uint64_t mseq)
{
    if (!s_map_reserve (&b->ep_map))
        return -1;
    key_ctx_t ctx = {b, ev->market, ev->epoch};
    uint64_t key = fnv1a (ev->market, strlen (ev->market)) ^ s_mix ((uint64_t) ev->epoch);
    size_t slot = s_map_slot (&b->ep_map, key, s_same_epoch, &ctx);
    epoch_acc_t *acc;
    if (b->ep_map.vals[slot] >= 0)
        acc = &b->eps[b->ep_map.vals[slot]];
    else {
        if (!grow_to ((void **) &b->eps, &b->eps_cap, b->neps + 1, sizeof *b->eps))
            return -1;
        acc = &b->eps[b->neps];
        *acc = (epoch_acc_t){0};
        b->ep_map.keys[slot] = key;
        b->ep_map.vals[slot] = (int32_t) b->neps++;
        b->ep_map.count++;
    }
    acc->last = ev;
    acc->mseq = mseq;
    if (ev->clearing_price)
        acc->clearing_price = ev->clearing_price;
    if (ev->demand)
        acc->demand = ev->demand;
    if (ev->supply)
        acc->supply = ev->supply;
    //  volume, trades and value are only meaningful (and may be 0) once the epoch has cleared;
    //  the settler's copies say nothing of the value
    if (ev->state == PROTO_EPOCH_PHASE_CLEARED || ev->state == PROTO_EPOCH_PHASE_SETTLED) {
        acc->cleared = true;
        acc->volume = ev->volume;
        acc->trades = ev->trades;
        if (ev->value)
            acc->value = ev->value;
    }
    return 0;
}

static void s_order_event (batch_t *b, uint64_t seq, uint64_t order_id, const char *kind,
                           int64_t qty, int64_t price, uint64_t trade_id, const char *reason,
                           int64_t at)
{
    stmt_t *st = &b->order_events;
    s_uint (st, seq);
    s_uint (st, order_id);
    s_text (st, kind);
    s_int (st, qty);
    s_opt_int (st, price);
    if (trade_id)
        s_uint (st, trade_id);
    else
        s_text (st, NULL);
    s_text (st, reason);
    s_time (st, at);
}

static void s_touch (order_acc_t *acc, uint64_t seq, int64_t at)
{
    acc->seq = seq;
    acc->at = at;
}

//  A terminal event (cancel, expiry) sets the status and what was left open.
static int s_order_end (batch_t *b, uint64_t seq, int64_t ts, uint64_t order_id, int64_t remaining,
                        const char *status)
{
    order_acc_t *acc = s_order (b, order_id);
    if (!acc)
        return -1;
    acc->has_remaining = true;
    acc->remaining = remaining;
    acc->status = status;
    s_touch (acc, seq, ts);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Accounts: balances and withdrawals (stream m), deposits and withdrawals (stream s)

//  The accumulator for key in a (items of size bytes), appended zeroed when new. NULL when
//  memory runs out.
static void *s_acc (accs_t *a, size_t size, uint64_t key, same_fn *same, const void *ctx)
{
    if (!s_map_reserve (&a->map))
        return NULL;
    size_t slot = s_map_slot (&a->map, key, same, ctx);
    if (a->map.vals[slot] >= 0)
        return (char *) a->items + (size_t) a->map.vals[slot] * size;
    if (a->count >= INT32_MAX || !grow_to (&a->items, &a->cap, a->count + 1, size))
        return NULL;
    void *item = (char *) a->items + a->count * size;
    memset (item, 0, size);
    a->map.keys[slot] = key;
    a->map.vals[slot] = (int32_t) a->count++;
    a->map.count++;
    return item;
}

typedef struct {
    const accs_t *a;
    const char *user;
    proto_asset_t asset;
} balance_key_t;

static bool s_same_balance (const void *ctx, int32_t index)
{
    const balance_key_t *k = ctx;
    const proto_balance_t *e = ((const balance_acc_t *) k->a->items)[index].last;
    return e->asset == k->asset && strcmp (e->user, k->user) == 0;
}

//  A balance event: a row of history, and the latest balance of its (user, asset).
static int s_add_balance (batch_t *b, const proto_balance_t *e)
{
    stmt_t *st = &b->movements;
    s_uint (st, e->seq);
    s_text (st, e->user);
    s_text (st, proto_asset_name (e->asset));
    s_text (st, proto_balance_cause_name (e->cause));
    s_opt_uint (st, e->ref);
    s_opt_text (st, e->market);
    s_int (st, e->d_available);
    s_int (st, e->d_reserved);
    s_int (st, e->available);
    s_int (st, e->reserved);
    s_time (st, e->ts);
    balance_key_t key = {&b->bals, e->user, e->asset};
    uint64_t hash = fnv1a (e->user, strlen (e->user)) ^ s_mix ((uint64_t) e->asset);
    balance_acc_t *acc = s_acc (&b->bals, sizeof *acc, hash, s_same_balance, &key);
    if (!acc)
        return -1;
    acc->last = e;
    return 0;
}

static int s_add_mwithdrawal (batch_t *b, const proto_withdrawal_t *e)
{
    mwithdrawal_acc_t *acc = s_acc (&b->mwds, sizeof *acc, e->withdrawal_id, NULL, NULL);
    if (!acc)
        return -1;
    if (!acc->first)
        acc->first = e;
    acc->last = e;
    return 0;
}

//  The state a settler record gives its row, as the tables name it (the settler's closed is the
//  withdrawal's paid); NULL when it is not a state of that kind of transfer.
static const char *s_transfer_state (const proto_transfer_t *e)
{
    bool deposit = e->kind == PROTO_TRANSFER_KIND_DEPOSIT;
    switch (e->state) {
        case PROTO_TRANSFER_STATE_PENDING:
        case PROTO_TRANSFER_STATE_PROCESSING:
        case PROTO_TRANSFER_STATE_CONFIRMED:
        case PROTO_TRANSFER_STATE_FAILED:
            return proto_transfer_state_name (e->state);
        case PROTO_TRANSFER_STATE_CREDITED:
            return deposit ? "credited" : NULL;
        case PROTO_TRANSFER_STATE_CLOSED:
            return deposit ? NULL : "paid";
        case PROTO_TRANSFER_STATE_REFUNDED:
            return deposit ? NULL : "refunded";
        default:
            return NULL;
    }
}

//  A settler record in one of these states closes its transfer. It carries no error of its own
//  and leaves the one before it: why a refunded withdrawal failed stays on its row.
static bool s_closes (const char *state)
{
    return strcmp (state, "credited") == 0 || strcmp (state, "paid") == 0 ||
           strcmp (state, "refunded") == 0;
}

static int s_add_transfer (batch_t *b, const proto_transfer_t *e)
{
    const char *state = s_transfer_state (e);
    if (!state) {
        const char *kind = proto_transfer_kind_name (e->kind);
        const char *was = proto_transfer_state_name (e->state);
        log_warn ("persister",
                  "pgstore: settler seq %" PRIu64 ": a %s cannot be %s (%s %" PRIu64
                  "): record skipped",
                  e->seq, kind ? kind : "?", was ? was : "?", kind ? kind : "?", e->id);
        return 0;
    }
    accs_t *a = e->kind == PROTO_TRANSFER_KIND_DEPOSIT ? &b->deps : &b->swds;
    transfer_acc_t *acc = s_acc (a, sizeof *acc, e->id, NULL, NULL);
    if (!acc)
        return -1;
    if (e->user[0] && proto_asset_name (e->asset))
        acc->creating = e;
    acc->last = e;
    acc->state = state;
    if (e->signature[0])
        acc->signature = e->signature;
    if (e->error[0] || !s_closes (state)) {
        acc->error = e->error;
        acc->error_set = true;
    }
    return 0;
}

//  The rows of the accounts' accumulators, once every event is folded.
static void s_accounts_finish (batch_t *b)
{
    const balance_acc_t *bals = b->bals.items;
    for (size_t i = 0; i < b->bals.count; i++) {
        const proto_balance_t *e = bals[i].last;
        stmt_t *st = &b->balances;
        s_text (st, e->user);
        s_text (st, proto_asset_name (e->asset));
        s_int (st, e->available);
        s_int (st, e->reserved);
        s_uint (st, e->seq);
        s_time (st, e->ts);
    }
    const mwithdrawal_acc_t *mwds = b->mwds.items;
    for (size_t i = 0; i < b->mwds.count; i++) {
        const proto_withdrawal_t *e = mwds[i].last;
        stmt_t *st = &b->mwithdrawals;
        s_uint (st, e->withdrawal_id);
        s_text (st, e->user);
        s_text (st, proto_asset_name (e->asset));
        s_int (st, e->amount);
        //  requested, or the final paid or refunded: the table's names
        s_text (st, proto_withdrawal_phase_name (e->state));
        s_time (st, mwds[i].first->ts);
        s_time (st, e->ts);
        s_uint (st, e->seq);
    }
    for (int k = 0; k < 2; k++) {
        bool deposits = k == 0;
        const accs_t *a = deposits ? &b->deps : &b->swds;
        const transfer_acc_t *accs = a->items;
        for (size_t i = 0; i < a->count; i++) {
            const transfer_acc_t *acc = &accs[i];
            const proto_transfer_t *c = acc->creating, *e = acc->last;
            stmt_t *st;
            if (c) {
                st = deposits ? &b->deposits : &b->swithdrawals;
                s_uint (st, e->id);
                s_text (st, c->user);
                s_text (st, proto_asset_name (c->asset));
                s_int (st, c->amount);
                if (deposits)
                    s_opt_text (st, c->wallet);
                s_text (st, acc->state);
                s_text (st, acc->signature);
                s_uint (st, e->attempts);
                s_opt_text (st, acc->error);
                s_time (st, c->ts);
            }
            else {
                st = deposits ? &b->deposit_updates : &b->swithdrawal_updates;
                s_uint (st, e->id);
                s_text (st, acc->state);
                s_text (st, acc->signature);
                s_uint (st, e->attempts);
                s_bool (st, !acc->error_set);
                s_opt_text (st, acc->error);
            }
            s_time (st, e->ts);
            s_uint (st, e->seq);
        }
    }
}

//  Folds one matcher event into the batch. 0, or -1 when memory runs out.
static int s_add_matcher_event (batch_t *b, const proto_msg_t *msg)
{
    switch (msg->kind) {
        case PROTO_order_accepted: {
            const proto_order_accepted_t *e = &msg->order_accepted;
            stmt_t *st = &b->orders;
            s_uint (st, e->order_id);
            s_text (st, e->market);
            s_int (st, e->epoch);
            s_text (st, e->user);
            s_opt_text (st, e->client_order_id);
            s_text (st, proto_side_name (e->side));
            s_text (st, proto_order_type_name (e->type));
            s_text (st, proto_tif_name (e->tif));
            s_bool (st, e->post_only);
            s_int (st, e->qty);
            s_opt_int (st, e->price);
            s_int (st, e->qty);
            s_text (st, "open");
            s_opt_text (st, e->source);
            s_opt_time (st, e->expires_at);
            s_time (st, e->ts);
            s_time (st, e->ts);
            s_uint (st, e->seq);
            s_order_event (b, e->seq, e->order_id, "accepted", e->qty, e->price, 0, NULL, e->ts);
            return s_market (b, e->market) ? 0 : -1;
        }
        case PROTO_trade: {
            const proto_trade_t *e = &msg->trade;
            stmt_t *st = &b->trades;
            s_uint (st, e->trade_id);
            s_text (st, e->market);
            s_int (st, e->epoch);
            s_uint (st, e->buy_order_id);
            s_uint (st, e->sell_order_id);
            s_text (st, e->buyer);
            s_text (st, e->seller);
            s_int (st, e->qty);
            s_int (st, e->price);
            s_int (st, e->value);
            s_text (st, e->aggressor ? proto_side_name (e->aggressor) : NULL);
            s_uint (st, e->seq);
            s_time (st, e->ts);
            s_text (st, e->grid ? proto_side_name (e->grid) : NULL);
            const uint64_t sides[2] = {e->buy_order_id, e->sell_order_id};
            for (int i = 0; i < 2; i++) {
                if (sides[i] == 0)
                    continue; //  the grid's side: no order
                order_acc_t *acc = s_order (b, sides[i]);
                if (!acc)
                    return -1;
                acc->traded += e->qty;
                if (acc->has_remaining)
                    acc->remaining -= e->qty;
                s_touch (acc, e->seq, e->ts);
                s_order_event (b, e->seq, sides[i], "trade", e->qty, e->price, e->trade_id, NULL,
                               e->ts);
            }
            return s_market (b, e->market) ? 0 : -1;
        }
        case PROTO_order_cancelled: {
            const proto_order_cancelled_t *e = &msg->order_cancelled;
            s_order_event (b, e->seq, e->order_id, "cancelled", e->remaining, 0, 0,
                           proto_cancel_reason_name (e->reason), e->ts);
            return s_order_end (b, e->seq, e->ts, e->order_id, e->remaining, "cancelled");
        }
        case PROTO_order_expired: {
            const proto_order_expired_t *e = &msg->order_expired;
            s_order_event (b, e->seq, e->order_id, "expired", e->remaining, 0, 0,
                           proto_expire_reason_name (e->reason), e->ts);
            return s_order_end (b, e->seq, e->ts, e->order_id, e->remaining, "expired");
        }
        case PROTO_order_amended: {
            const proto_order_amended_t *e = &msg->order_amended;
            order_acc_t *acc = s_order (b, e->order_id);
            if (!acc)
                return -1;
            acc->has_remaining = true;
            acc->remaining = e->qty;
            acc->amended = true;
            acc->price = e->price;
            s_touch (acc, e->seq, e->ts);
            s_order_event (b, e->seq, e->order_id, "amended", e->qty, e->price, 0,
                           e->kept_priority ? "kept_priority" : "lost_priority", e->ts);
            return 0;
        }
        case PROTO_epoch_state:
            if (!s_market (b, msg->epoch_state.market))
                return -1;
            return s_epoch (b, &msg->epoch_state, 0);
        case PROTO_market_state: {
            const proto_market_state_t *e = &msg->market_state;
            market_acc_t *acc = s_market (b, e->market);
            if (!acc)
                return -1;
            acc->status = proto_market_status_name (e->state);
            acc->at = e->ts;
            acc->seq = e->seq;
            return 0;
        }
        case PROTO_market_control: {
            const proto_market_control_t *e = &msg->market_control;
            stmt_t *st = &b->audit;
            s_uint (st, e->seq);
            s_text (st, e->user);
            s_text (st, proto_control_action_name (e->action));
            s_text (st, e->market);
            s_time (st, e->ts);
            return 0;
        }
        case PROTO_balance:
            return s_add_balance (b, &msg->balance);
        case PROTO_withdrawal:
            return s_add_mwithdrawal (b, &msg->withdrawal);
        default: //  book_level, clock, order_rejected, other commands: only the offset
            return 0;
    }
}

static settle_acc_t *s_settle (batch_t *b, uint64_t trade_id)
{
    if (!s_map_reserve (&b->set_map))
        return NULL;
    size_t slot = s_map_slot (&b->set_map, trade_id, NULL, NULL);
    if (b->set_map.vals[slot] >= 0)
        return &b->sets[b->set_map.vals[slot]];
    if (!grow_to ((void **) &b->sets, &b->sets_cap, b->nsets + 1, sizeof *b->sets))
        return NULL;
    b->sets[b->nsets] = (settle_acc_t){0};
    b->set_map.keys[slot] = trade_id;
    b->set_map.vals[slot] = (int32_t) b->nsets;
    b->set_map.count++;
    return &b->sets[b->nsets++];
}

//  Folds one event of the settler's stream: settlements into their trade's row, deposits and
//  withdrawals into theirs, and an epoch the settler declares settled into the epochs upsert
//  (with the matcher seq it copies, so epochs.seq stays a matcher seq). Heartbeats and the rest
//  only advance the offset.
static int s_add_settler_event (batch_t *b, const proto_msg_t *msg)
{
    if (msg->kind == PROTO_epoch_state && msg->epoch_state.state == PROTO_EPOCH_PHASE_SETTLED) {
        return s_epoch (b, &msg->epoch_state, msg->epoch_state.mseq);
    }
    if (msg->kind == PROTO_transfer)
        return s_add_transfer (b, &msg->transfer);
    if (msg->kind != PROTO_settlement)
        return 0;
    const proto_settlement_t *e = &msg->settlement;
    settle_acc_t *acc = s_settle (b, e->trade_id);
    if (!acc)
        return -1;
    acc->last = e;
    if (e->value || e->fee || e->buyer[0]) {
        acc->has_amounts = true;
        acc->value = e->value;
        acc->fee = e->fee;
    }
    if (e->buyer[0])
        acc->buyer = e->buyer;
    if (e->seller[0])
        acc->seller = e->seller;
    if (e->signature[0])
        acc->signature = e->signature;
    return 0;
}

//  Turns the accumulators into rows, once every event is folded.
static void s_batch_finish (batch_t *b)
{
    for (size_t i = 0; i < b->nmkts; i++) {
        const market_acc_t *m = &b->mkts[i];
        s_text (&b->markets, m->id);
        s_text (&b->markets, m->status);
        if (m->status) {
            s_time (&b->markets, m->at);
            s_uint (&b->markets, m->seq);
        }
        else {
            s_text (&b->markets, NULL);
            s_text (&b->markets, NULL);
        }
    }
    for (size_t i = 0; i < b->neps; i++) {
        const epoch_acc_t *acc = &b->eps[i];
        const proto_epoch_state_t *e = acc->last;
        stmt_t *st = &b->epochs;
        s_text (st, e->market);
        s_int (st, e->epoch);
        s_text (st, proto_epoch_phase_name (e->state));
        s_time (st, e->start);
        s_time (st, e->end);
        s_opt_int (st, acc->clearing_price);
        if (acc->cleared) {
            s_int (st, acc->volume);
            s_uint (st, acc->trades);
        }
        else {
            s_text (st, NULL);
            s_text (st, NULL);
        }
        s_time (st, e->ts);
        s_uint (st, acc->mseq ? acc->mseq : e->seq);
        s_opt_int (st, acc->value);
        s_opt_int (st, acc->demand);
        s_opt_int (st, acc->supply);
    }
    for (size_t i = 0; i < b->nsets; i++) {
        const settle_acc_t *acc = &b->sets[i];
        const proto_settlement_t *e = acc->last;
        stmt_t *st = &b->settlements;
        s_uint (st, e->trade_id);
        s_uint (st, e->settlement_id);
        s_text (st, e->market);
        s_int (st, e->epoch);
        s_text (st, proto_settle_state_name (e->state));
        s_text (st, acc->signature);
        s_opt_text (st, e->error);
        s_uint (st, e->attempts);
        if (acc->has_amounts) {
            s_int (st, acc->value);
            s_int (st, acc->fee);
        }
        else {
            s_text (st, NULL);
            s_text (st, NULL);
        }
        s_text (st, acc->buyer);
        s_text (st, acc->seller);
        s_time (st, e->ts);
        s_uint (st, e->seq);
    }
    for (size_t i = 0; i < b->nords; i++) {
        const order_acc_t *acc = &b->ords[i];
        stmt_t *st = &b->order_updates;
        s_uint (st, acc->order_id);
        s_int (st, acc->traded);
        if (acc->has_remaining)
            s_int (st, acc->remaining);
        else
            s_text (st, NULL);
        s_bool (st, acc->amended);
        if (acc->amended)
            s_int (st, acc->price);
        else
            s_text (st, NULL);
        s_text (st, acc->status);
        s_time (st, acc->at);
        s_uint (st, acc->seq);
    }
    s_accounts_finish (b);
}

//  --------------------------------------------------------------------------------------------

pgstore_t *pgstore_new (const char *conninfo, char *err, size_t errlen)
{
    assert (conninfo);
    pgstore_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "pgstore: out of memory");
        return NULL;
    }
    self->pg = pg_connect (conninfo, 0, err, errlen);
    if (!self->pg || migrate_apply (self->pg, PGSTORE_COMPONENT, persister_migrations,
                                    persister_migration_count, err, errlen) != 0) {
        pgstore_destroy (&self);
        return NULL;
    }
    return self;
}

void pgstore_destroy (pgstore_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        pg_destroy (&(*self_p)->pg);
        free (*self_p);
        *self_p = NULL;
    }
}

bool pgstore_ok (pgstore_t *self)
{
    assert (self);
    return pg_ok (self->pg);
}

int pgstore_reconnect (pgstore_t *self)
{
    assert (self);
    s_clear_error (self);
    if (pg_reset (self->pg) != 0) {
        s_fail_pg (self, "reconnect");
        return -1;
    }
    return 0;
}

//  The stored offset of stream; with lock, the row is locked until the transaction ends.
static int64_t s_offset (pgstore_t *self, const char *stream, bool lock)
{
    const char *params[] = {stream};
    pg_result_t *res =
        pg_exec (self->pg,
                 lock ? "SELECT last_seq FROM consumer_offsets WHERE stream = $1 FOR UPDATE"
                      : "SELECT last_seq FROM consumer_offsets WHERE stream = $1",
                 1, params);
    if (!res) {
        s_fail_pg (self, "read offset");
        return -1;
    }
    int64_t offset = pg_rows (res) ? pg_int (res, 0, 0) : 0;
    pg_result_free (&res);
    return offset;
}

int64_t pgstore_offset (pgstore_t *self, const char *stream)
{
    assert (self);
    assert (stream);
    s_clear_error (self);
    return s_offset (self, stream, false);
}

//  The part of pgstore_load_replica inside its transaction. 0, or -1 with the error recorded.
static int s_load_in_tx (pgstore_t *self, const char *stream, replica_t *replica, int64_t *offset)
{
    *offset = s_offset (self, stream, false);
    if (*offset < 0)
        return -1;
    replica_set_seq (replica, (uint64_t) *offset);
    //  Resting: what pgstore_apply leaves open with something left. IOC, FOK and market orders
    //  never rest, whatever a batch cut in the middle of their command shows.
    pg_result_t *r = pg_exec (self->pg,
                              "SELECT order_id, market, epoch, username, side, price, qty, filled, "
                              "remaining, seq FROM orders WHERE status IN ('open', "
                              "'partially_filled') AND remaining > 0 AND order_type = 'limit' "
                              "AND tif = 'gtc' AND price IS NOT NULL",
                              0, NULL);
    if (!r) {
        s_fail_pg (self, "read resting orders");
        return -1;
    }
    for (int i = 0; i < pg_rows (r); i++) {
        replica_order_t o = {.id = (uint64_t) pg_int (r, i, 0),
                             .epoch = pg_int (r, i, 2),
                             .side = proto_side_from_name (pg_value (r, i, 4)),
                             .price = pg_int (r, i, 5),
                             .qty = pg_int (r, i, 6),
                             .filled = pg_int (r, i, 7),
                             .remaining = pg_int (r, i, 8),
                             .seq = (uint64_t) pg_int (r, i, 9)};
        snprintf (o.user, sizeof o.user, "%s", pg_value (r, i, 3));
        if (replica_load_order (replica, pg_value (r, i, 1), &o) != 0) {
            s_fail (self, "order %" PRIu64 " cannot be loaded (out of memory, or not resting)",
                    o.id);
            pg_result_free (&r);
            return -1;
        }
    }
    pg_result_free (&r);
    //  Every market, with its totals (a market without trades has zeros)
    r = pg_exec (self->pg,
                 "SELECT m.id, count(t.trade_id), coalesce (sum (t.qty), 0), "
                 "coalesce (sum (t.value), 0) FROM (SELECT id FROM markets UNION SELECT DISTINCT "
                 "market FROM trades) AS m LEFT JOIN trades t ON t.market = m.id GROUP BY m.id",
                 0, NULL);
    if (!r) {
        s_fail_pg (self, "read market totals");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < pg_rows (r) && rc == 0; i++)
        rc = replica_load_totals (replica, pg_value (r, i, 0), (uint64_t) pg_int (r, i, 1),
                                  pg_int (r, i, 2), pg_int (r, i, 3));
    if (rc != 0)
        s_fail (self, "out of memory loading the markets");
    //  The newest trades of each market, oldest first
    char limit[24];
    snprintf (limit, sizeof limit, "%zu", replica_trades_kept (replica));
    for (int i = 0; i < pg_rows (r) && rc == 0; i++) {
        const char *params[] = {pg_value (r, i, 0), limit};
        pg_result_t *t = pg_exec (
            self->pg,
            "SELECT trade_id, epoch, buy_order_id, sell_order_id, qty, price, value, aggressor, "
            "seq, (extract (epoch FROM at) * 1000000)::bigint FROM (SELECT * FROM trades WHERE "
            "market = $1 ORDER BY seq DESC LIMIT $2::bigint) AS newest ORDER BY seq",
            2, params);
        if (!t) {
            s_fail_pg (self, "read the newest trades");
            rc = -1;
            break;
        }
        for (int k = 0; k < pg_rows (t) && rc == 0; k++) {
            const char *aggressor = pg_value (t, k, 7);
            replica_trade_t trade = {.trade_id = (uint64_t) pg_int (t, k, 0),
                                     .epoch = pg_int (t, k, 1),
                                     .buy_order_id = (uint64_t) pg_int (t, k, 2),
                                     .sell_order_id = (uint64_t) pg_int (t, k, 3),
                                     .qty = pg_int (t, k, 4),
                                     .price = pg_int (t, k, 5),
                                     .value = pg_int (t, k, 6),
                                     .aggressor = aggressor ? proto_side_from_name (aggressor)
                                                            : PROTO_SIDE_NONE,
                                     .seq = (uint64_t) pg_int (t, k, 8),
                                     .ts = pg_int (t, k, 9) * 1000};
            rc = replica_load_trade (replica, pg_value (r, i, 0), &trade);
            if (rc != 0)
                s_fail (self, "out of memory loading the trades");
        }
        pg_result_free (&t);
    }
    pg_result_free (&r);
    if (rc != 0)
        return rc;
    //  Every user's balances
    r = pg_exec (self->pg, "SELECT username, asset, available, reserved, updated_seq FROM balances",
                 0, NULL);
    if (!r) {
        s_fail_pg (self, "read balances");
        return -1;
    }
    for (int i = 0; i < pg_rows (r) && rc == 0; i++) {
        if (replica_load_balance (replica, pg_value (r, i, 0),
                                  proto_asset_from_name (pg_value (r, i, 1)), pg_int (r, i, 2),
                                  pg_int (r, i, 3), (uint64_t) pg_int (r, i, 4)) != 0) {
            s_fail (self, "the balance of %s cannot be loaded (out of memory)", pg_value (r, i, 0));
            rc = -1;
        }
    }
    pg_result_free (&r);
    return rc;
}

int pgstore_load_replica (pgstore_t *self, const char *stream, replica_t *replica, int64_t *offset)
{
    assert (self);
    assert (stream && replica && offset);
    s_clear_error (self);
    *offset = -1;
    if (pg_run (self->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0) {
        s_fail_pg (self, "begin");
        return -1;
    }
    int rc = s_load_in_tx (self, stream, replica, offset);
    if (rc == 0 && pg_commit (self->pg) != 0) {
        s_fail_pg (self, "commit");
        rc = -1;
    }
    if (rc != 0)
        pg_rollback (self->pg);
    return rc;
}

//  The part of pgstore_apply inside the transaction. 0, or -1 with the error recorded.
static int s_apply_in_tx (pgstore_t *self, const char *stream, batch_t *b, uint64_t first,
                          uint64_t last)
{
    int64_t offset = s_offset (self, stream, true);
    if (offset < 0)
        return -1;
    if ((uint64_t) offset + 1 != first) {
        s_fail (self, "stream %s: batch starts at seq %" PRIu64 " but the offset is %" PRId64 "%s",
                stream, first, offset,
                first <= (uint64_t) offset ? " (already applied)" : " (a gap)");
        return -1;
    }
    stmt_t *inserts[] = {&b->markets,      &b->epochs,       &b->orders,      &b->trades,
                         &b->order_events, &b->audit,        &b->settlements, &b->balances,
                         &b->movements,    &b->mwithdrawals, &b->deposits,    &b->swithdrawals};
    for (size_t i = 0; i < sizeof inserts / sizeof inserts[0]; i++)
        if (s_stmt_run (self, inserts[i], NULL) != 0)
            return -1;
    //  Updates of rows an earlier batch created: each should find its row
    struct {
        stmt_t *st;
        const char *what;
    } updates[] = {{&b->order_updates, "orders"},
                   {&b->deposit_updates, "deposits"},
                   {&b->swithdrawal_updates, "withdrawals"}};
    for (size_t i = 0; i < sizeof updates / sizeof updates[0]; i++) {
        int64_t updated = 0;
        if (s_stmt_run (self, updates[i].st, &updated) != 0)
            return -1;
        size_t want = s_rows (updates[i].st);
        if ((size_t) updated != want)
            log_warn ("persister",
                      "pgstore: stream %s seqs %" PRIu64 "-%" PRIu64 ": %zu %s changed but %" PRId64
                      " found (history before the journal?)",
                      stream, first, last, want, updates[i].what, updated);
    }

    char last_text[24], prev_text[24];
    snprintf (last_text, sizeof last_text, "%" PRIu64, last);
    snprintf (prev_text, sizeof prev_text, "%" PRId64, offset);
    const char *params[] = {stream, last_text, prev_text};
    //  The WHERE makes the offset itself refuse a second writer that raced past the check
    pg_result_t *res = pg_exec (self->pg,
                                "INSERT INTO consumer_offsets AS c (stream, last_seq) "
                                "VALUES ($1, $2::bigint) ON CONFLICT (stream) DO UPDATE "
                                "SET last_seq = EXCLUDED.last_seq WHERE c.last_seq = $3::bigint",
                                3, params);
    if (!res) {
        s_fail_pg (self, "write offset");
        return -1;
    }
    int64_t n = pg_affected (res);
    pg_result_free (&res);
    if (n != 1) {
        s_fail (self, "stream %s: the offset moved under this batch", stream);
        return -1;
    }
    return 0;
}

int pgstore_apply (pgstore_t *self, const char *stream, const proto_msg_t *events, size_t count)
{
    assert (self);
    assert (stream);
    assert (events || count == 0);
    s_clear_error (self);
    if (count == 0)
        return 0;
    uint64_t first = proto_msg_seq (&events[0]);
    if (first == 0) {
        s_fail (self, "stream %s: an event without a seq (%s)", stream,
                proto_kind_name (events[0].kind) ? proto_kind_name (events[0].kind) : "?");
        return -1;
    }
    for (size_t i = 1; i < count; i++)
        if (proto_msg_seq (&events[i]) != first + i) {
            s_fail (self, "stream %s: seq %" PRIu64 " follows seq %" PRIu64 " in a batch", stream,
                    proto_msg_seq (&events[i]), first + i - 1);
            return -1;
        }
    uint64_t last = first + count - 1;

    batch_t b;
    s_batch_init (&b);
    int rc = 0;
    if (strcmp (stream, "m") == 0)
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = s_add_matcher_event (&b, &events[i]);
    else if (strcmp (stream, "s") == 0)
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = s_add_settler_event (&b, &events[i]);
    if (rc == 0)
        s_batch_finish (&b);
    if (rc != 0) {
        s_fail (self, "stream %s: out of memory folding the batch", stream);
        s_batch_free (&b);
        return -1;
    }

    if (pg_begin (self->pg) != 0) {
        s_fail_pg (self, "begin");
        s_batch_free (&b);
        return -1;
    }
    rc = s_apply_in_tx (self, stream, &b, first, last);
    if (rc == 0 && pg_commit (self->pg) != 0) {
        //  if the answer to COMMIT was lost, the batch may be stored: a retry is refused
        s_fail_pg (self, "commit");
        rc = -1;
    }
    if (rc != 0)
        pg_rollback (self->pg); //  our error is already recorded
    s_batch_free (&b);
    return rc;
}

const char *pgstore_error (pgstore_t *self)
{
    assert (self);
    return self->error;
}

const char *pgstore_sqlstate (pgstore_t *self)
{
    assert (self);
    return self->sqlstate;
}
