/*  rstore — see rstore.h for the keys and the contract.

    Commands are appended to hiredis's output buffer (redisAppendCommand) and their replies read
    in bulk: after every RSTORE_PIPELINE_MAX commands and at the end. Inside MULTI every reply is
    +QUEUED or an error; the EXEC reply is the array of results, each checked for an error
    (WRONGTYPE on a key someone else wrote, say). The first error is kept for rstore_error.

    A reply that does not come (timeout, connection reset) leaves the context unusable: it is
    freed at once and rstore_ok turns false, so the caller reconnects before anything else.
*/
#include "rstore.h"

#include "clock.h"
#include "redis.h"

#include <assert.h>
#include <czmq.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SCAN_COUNT  1000 //  keys a SCAN step looks at
#define S_UNLINK_ARGS 256  //  keys per UNLINK

//  The key families a rewrite replaces (RSTORE_SEQ_KEY is set, not removed).
static const char *const s_families[] = {
    "mce:book:", "mce:order:", "mce:stats:", "mce:trades:", "mce:balance:"};

struct _rstore_t {
    char host[256];
    int port, db;
    redisContext *c; //  NULL while disconnected
    size_t pending;  //  commands written whose replies are not read yet
    bool failed;     //  an error was seen since s_start
    char error[RSTORE_ERROR_MAX];
};

//  --------------------------------------------------------------------------------------------
//  Keys and values

const char *rstore_book_key (char *buf, size_t size, const char *market, int64_t epoch,
                             proto_side_t side)
{
    snprintf (buf, size, "mce:book:%s:%lld:%s", market, (long long) epoch,
              side == PROTO_SIDE_BUY ? "bids" : "asks");
    return buf;
}

const char *rstore_order_key (char *buf, size_t size, uint64_t order_id)
{
    snprintf (buf, size, "mce:order:%llu", (unsigned long long) order_id);
    return buf;
}

const char *rstore_stats_key (char *buf, size_t size, const char *market)
{
    snprintf (buf, size, "mce:stats:%s", market);
    return buf;
}

const char *rstore_trades_key (char *buf, size_t size, const char *market)
{
    snprintf (buf, size, "mce:trades:%s", market);
    return buf;
}

const char *rstore_balance_key (char *buf, size_t size, const char *user)
{
    snprintf (buf, size, "mce:balance:%s", user);
    return buf;
}

//  ns as RFC 3339 with microseconds; "" when out of range (a corrupt time, not ours to fix).
static const char *s_time (int64_t ns, char *buf, size_t size)
{
    if (clock_format_rfc3339 (ns, buf, size) < 0)
        buf[0] = '\0';
    return buf;
}

int rstore_trade_json (const replica_trade_t *t, char *buf, size_t size)
{
    char at[40], aggr[8] = "null";
    if (t->aggressor == PROTO_SIDE_BUY || t->aggressor == PROTO_SIDE_SELL)
        snprintf (aggr, sizeof aggr, "\"%s\"", proto_side_name (t->aggressor));
    int n = snprintf (buf, size,
                      "{\"tid\":%llu,\"seq\":%llu,\"ep\":%lld,\"px\":%lld,\"qty\":%lld,"
                      "\"val\":%lld,\"aggr\":%s,\"boid\":%llu,\"soid\":%llu,\"at\":\"%s\"}",
                      (unsigned long long) t->trade_id, (unsigned long long) t->seq,
                      (long long) t->epoch, (long long) t->price, (long long) t->qty,
                      (long long) t->value, aggr, (unsigned long long) t->buy_order_id,
                      (unsigned long long) t->sell_order_id, s_time (t->ts, at, sizeof at));
    return n < 0 || (size_t) n >= size ? -1 : n;
}

//  --------------------------------------------------------------------------------------------
//  Errors and the pipeline

static void s_fail (rstore_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void s_fail (rstore_t *self, const char *fmt, ...)
{
    if (self->failed)
        return; //  the first error says the most
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, ap);
    va_end (ap);
    self->failed = true;
}

//  The connection failed: keep hiredis's reason and drop the context.
static void s_lost (rstore_t *self)
{
    s_fail (self, "%s", self->c && self->c->errstr[0] ? self->c->errstr : "connection lost");
    redisFree (self->c);
    self->c = NULL;
    self->pending = 0;
}

static void s_check (rstore_t *self, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR)
        s_fail (self, "%s", r->str);
    else if (r->type == REDIS_REPLY_NIL)
        s_fail (self, "a transaction was aborted");
    else if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_ERROR)
                s_fail (self, "%s", r->element[i]->str);
}

//  Reads the replies of every command written so far.
static void s_drain (rstore_t *self)
{
    while (self->c && self->pending) {
        void *reply = NULL;
        if (redisGetReply (self->c, &reply) != REDIS_OK) {
            s_lost (self);
            break;
        }
        self->pending--;
        s_check (self, reply);
        freeReplyObject (reply);
    }
}

static void s_counted (rstore_t *self, int rc)
{
    if (rc != REDIS_OK) {
        s_lost (self);
        return;
    }
    if (++self->pending >= RSTORE_PIPELINE_MAX)
        s_drain (self);
}

//  Appends one command (hiredis's format: %s and %b are one argument each, whatever they hold).
static void s_cmd (rstore_t *self, const char *fmt, ...)
{
    if (!self->c)
        return;
    va_list ap;
    va_start (ap, fmt);
    int rc = redisvAppendCommand (self->c, fmt, ap);
    va_end (ap);
    s_counted (self, rc);
}

static void s_cmd_argv (rstore_t *self, int argc, const char **argv)
{
    if (self->c)
        s_counted (self, redisAppendCommandArgv (self->c, argc, argv, NULL));
}

//  Starts a call: no error yet, replies awaited at most timeout_ms each.
static void s_start (rstore_t *self, int timeout_ms)
{
    self->failed = false;
    self->error[0] = '\0';
    if (self->c) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        redisSetTimeout (self->c, tv);
    }
}

//  Sends what is left, reads every reply. 0 when all went through.
static int s_finish (rstore_t *self)
{
    s_drain (self);
    if (!self->c && !self->failed)
        s_fail (self, "not connected");
    return self->failed ? -1 : 0;
}

//  --------------------------------------------------------------------------------------------
//  Lifecycle

rstore_t *rstore_new (const char *url, char *err, size_t errlen)
{
    assert (url);
    rstore_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "rstore: out of memory");
        return NULL;
    }
    if (redis_parse_url (url, self->host, sizeof self->host, &self->port, &self->db) != 0) {
        snprintf (err, errlen, "redis.url \"%s\" is not redis://host[:port][/db]", url);
        free (self);
        return NULL;
    }
    return self;
}

void rstore_destroy (rstore_t **self_p)
{
    assert (self_p);
    rstore_t *self = *self_p;
    if (!self)
        return;
    redisFree (self->c);
    free (self);
    *self_p = NULL;
}

int rstore_connect (rstore_t *self)
{
    assert (self);
    redisFree (self->c);
    self->c = NULL;
    self->pending = 0;
    s_start (self, RSTORE_CONNECT_TIMEOUT_MS);
    struct timeval tv = {RSTORE_CONNECT_TIMEOUT_MS / 1000,
                         (RSTORE_CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout (self->host, self->port, tv);
    if (!c || c->err) {
        s_fail (self, "%s:%d: %s", self->host, self->port, c ? c->errstr : "out of memory");
        redisFree (c);
        return -1;
    }
    redisSetTimeout (c, tv);
    self->c = c;
    if (self->db) {
        s_cmd (self, "SELECT %d", self->db);
        if (s_finish (self) != 0) {
            redisFree (self->c);
            self->c = NULL;
            return -1;
        }
    }
    return 0;
}

bool rstore_ok (rstore_t *self)
{
    assert (self);
    return self->c && !self->c->err;
}

const char *rstore_error (rstore_t *self)
{
    assert (self);
    return self->error;
}

int64_t rstore_seq (rstore_t *self)
{
    assert (self);
    s_start (self, RSTORE_CONNECT_TIMEOUT_MS);
    if (!self->c) {
        s_fail (self, "not connected");
        return -1;
    }
    redisReply *r = redisCommand (self->c, "GET %s", RSTORE_SEQ_KEY);
    if (!r) {
        s_lost (self);
        return -1;
    }
    int64_t seq = -1;
    if (r->type == REDIS_REPLY_NIL)
        seq = 0;
    else if (r->type == REDIS_REPLY_STRING) {
        char *end;
        long long v = strtoll (r->str, &end, 10);
        if (end != r->str && !*end && v >= 0)
            seq = v;
        else {
            s_fail (self, "%s holds \"%.40s\", not a seq", RSTORE_SEQ_KEY, r->str);
            seq = -2;
        }
    }
    else if (r->type == REDIS_REPLY_ERROR && strncmp (r->str, "WRONGTYPE", 9) == 0) {
        s_fail (self, "%s: %s", RSTORE_SEQ_KEY, r->str);
        seq = -2;
    }
    else {
        s_check (self, r); //  an error reply says why (NOAUTH, LOADING, ...)
        s_fail (self, "%s: unexpected reply type %d", RSTORE_SEQ_KEY, r->type);
    }
    freeReplyObject (r);
    return seq;
}

//  --------------------------------------------------------------------------------------------
//  Writing

//  The keys of the books written in one transaction, so each gets one EXPIRE.
typedef struct {
    zhash_t *keys;
    bool oom;
} s_books_t;

static void s_book_seen (s_books_t *b, const char *key)
{
    if (!b->keys && !(b->keys = zhash_new ()))
        b->oom = true;
    else if (zhash_lookup (b->keys, key) == NULL && zhash_insert (b->keys, key, (void *) 1) != 0)
        b->oom = true;
}

static void s_books_expire (rstore_t *self, s_books_t *b)
{
    if (b->oom)
        s_fail (self, "out of memory");
    if (!b->keys)
        return;
    for (void *v = zhash_first (b->keys); v; v = zhash_next (b->keys))
        s_cmd (self, "EXPIRE %s %d", zhash_cursor (b->keys), RSTORE_TTL_S);
    zhash_destroy (&b->keys);
}

//  A resting order: into its book, its hash written whole.
static void s_put_order (rstore_t *self, const replica_t *replica, const replica_order_t *o,
                         s_books_t *books)
{
    const char *market = replica_market (replica, o->market)->id;
    char book[RSTORE_KEY_MAX], key[RSTORE_KEY_MAX];
    rstore_book_key (book, sizeof book, market, o->epoch, o->side);
    rstore_order_key (key, sizeof key, o->id);
    s_cmd (self, "ZADD %s %lld %llu", book, (long long) o->price, (unsigned long long) o->id);
    s_cmd (self,
           "HSET %s market %s epoch %lld side %s price %lld qty %lld filled %lld remaining %lld "
           "user %s status %s seq %llu",
           key, market, (long long) o->epoch, proto_side_name (o->side), (long long) o->price,
           (long long) o->qty, (long long) o->filled, (long long) o->remaining, o->user,
           o->filled ? "partially_filled" : "open", (unsigned long long) o->seq);
    s_cmd (self, "EXPIRE %s %d", key, RSTORE_TTL_S);
    s_book_seen (books, book);
}

static void s_put_stats (rstore_t *self, const replica_market_t *m)
{
    char key[RSTORE_KEY_MAX], at[40];
    rstore_stats_key (key, sizeof key, m->id);
    if (m->ring_count == 0) {
        s_cmd (self, "HSET %s trades %llu volume %lld value %lld seq %llu", key,
               (unsigned long long) m->trades, (long long) m->volume, (long long) m->value,
               (unsigned long long) m->seq);
        return;
    }
    const replica_trade_t *t = replica_trade (m, 0);
    s_cmd (self,
           "HSET %s trades %llu volume %lld value %lld last_price %lld last_qty %lld "
           "last_trade_id %llu last_at %s seq %llu",
           key, (unsigned long long) m->trades, (long long) m->volume, (long long) m->value,
           (long long) t->price, (long long) t->qty, (unsigned long long) t->trade_id,
           s_time (t->ts, at, sizeof at), (unsigned long long) m->seq);
}

static void s_push_trade (rstore_t *self, const char *cmd, const char *key,
                          const replica_trade_t *t)
{
    char json[512];
    if (rstore_trade_json (t, json, sizeof json) < 0) {
        s_fail (self, "trade %llu does not fit its JSON buffer", (unsigned long long) t->trade_id);
        return;
    }
    s_cmd (self, "%s %s %s", cmd, key, json);
}

//  A user's balances, the hash written whole.
static void s_put_balance (rstore_t *self, const replica_balance_t *b)
{
    char key[RSTORE_KEY_MAX];
    rstore_balance_key (key, sizeof key, b->user);
    s_cmd (self,
           "HSET %s energy_available %lld energy_reserved %lld payment_available %lld "
           "payment_reserved %lld seq %llu",
           key, (long long) b->asset[REPLICA_ENERGY].available,
           (long long) b->asset[REPLICA_ENERGY].reserved,
           (long long) b->asset[REPLICA_PAYMENT].available,
           (long long) b->asset[REPLICA_PAYMENT].reserved, (unsigned long long) b->seq);
}

static void s_set_seq (rstore_t *self, const replica_t *replica)
{
    s_cmd (self, "SET %s %llu", RSTORE_SEQ_KEY, (unsigned long long) replica_seq (replica));
}

int rstore_apply (rstore_t *self, const replica_t *replica)
{
    assert (self);
    assert (replica);
    s_start (self, RSTORE_WRITE_TIMEOUT_MS);
    s_books_t books = {0};
    s_cmd (self, "MULTI");
    for (size_t i = 0; i < replica_change_count (replica); i++) {
        const replica_change_t *c = replica_change (replica, i);
        const replica_order_t *o = replica_order (replica, c->id);
        if (o) {
            s_put_order (self, replica, o, &books);
            continue;
        }
        char book[RSTORE_KEY_MAX], key[RSTORE_KEY_MAX];
        rstore_book_key (book, sizeof book, replica_market (replica, c->market)->id, c->epoch,
                         c->side);
        s_cmd (self, "ZREM %s %llu", book, (unsigned long long) c->id);
        s_cmd (self, "DEL %s", rstore_order_key (key, sizeof key, c->id));
    }
    size_t kept = replica_trades_kept (replica);
    for (uint32_t i = 0; i < replica_market_count (replica); i++) {
        const replica_market_t *m = replica_market (replica, i);
        if (!m->changed && !m->new_trades)
            continue;
        s_put_stats (self, m);
        size_t n = m->new_trades < m->ring_count ? m->new_trades : m->ring_count;
        if (!n)
            continue;
        char key[RSTORE_KEY_MAX];
        rstore_trades_key (key, sizeof key, m->id);
        for (size_t k = n; k-- > 0;) //  oldest first: the newest ends at the head
            s_push_trade (self, "LPUSH", key, replica_trade (m, k));
        s_cmd (self, "LTRIM %s 0 %lld", key, (long long) kept - 1);
    }
    for (size_t i = 0; i < replica_balance_change_count (replica); i++)
        s_put_balance (self, replica_balance_change (replica, i));
    s_books_expire (self, &books);
    s_set_seq (self, replica);
    s_cmd (self, "EXEC");
    return s_finish (self);
}

//  Every key of the families a rewrite replaces, by SCAN (before the transaction: only the
//  persister writes these keys, so none appears in between). NULL-terminated array the caller
//  frees with s_keys_free, or NULL on failure.
typedef struct {
    char **keys;
    size_t count, cap;
} s_keys_t;

static void s_keys_free (s_keys_t *k)
{
    for (size_t i = 0; i < k->count; i++)
        free (k->keys[i]);
    free (k->keys);
    *k = (s_keys_t){0};
}

static bool s_keys_add (s_keys_t *k, const char *key, size_t len)
{
    if (k->count == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        char **bigger = realloc (k->keys, cap * sizeof *bigger);
        if (!bigger)
            return false;
        k->keys = bigger;
        k->cap = cap;
    }
    char *copy = malloc (len + 1);
    if (!copy)
        return false;
    memcpy (copy, key, len);
    copy[len] = '\0';
    k->keys[k->count++] = copy;
    return true;
}

static bool s_ours (const char *key, size_t len)
{
    for (size_t f = 0; f < sizeof s_families / sizeof s_families[0]; f++) {
        size_t n = strlen (s_families[f]);
        if (len > n && memcmp (key, s_families[f], n) == 0)
            return true;
    }
    return false;
}

static int s_scan (rstore_t *self, s_keys_t *out)
{
    char cursor[32] = "0";
    do {
        redisReply *r =
            redisCommand (self->c, "SCAN %s MATCH mce:* COUNT %d", cursor, S_SCAN_COUNT);
        if (!r) {
            s_lost (self);
            return -1;
        }
        bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->type == REDIS_REPLY_STRING &&
                  r->element[1]->type == REDIS_REPLY_ARRAY && r->element[0]->len < sizeof cursor;
        if (!ok) {
            s_check (self, r);
            s_fail (self, "unexpected answer to SCAN");
            freeReplyObject (r);
            return -1;
        }
        snprintf (cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements && ok; i++)
            if (keys->element[i]->type == REDIS_REPLY_STRING &&
                s_ours (keys->element[i]->str, keys->element[i]->len))
                ok = s_keys_add (out, keys->element[i]->str, keys->element[i]->len);
        freeReplyObject (r);
        if (!ok) {
            s_fail (self, "out of memory listing keys");
            return -1;
        }
    } while (strcmp (cursor, "0") != 0);
    return 0;
}

typedef struct {
    rstore_t *self;
    const replica_t *replica;
    s_books_t *books;
} s_each_t;

static void s_rewrite_order (void *arg, const replica_order_t *o)
{
    s_each_t *e = arg;
    s_put_order (e->self, e->replica, o, e->books);
}

int rstore_rewrite (rstore_t *self, const replica_t *replica)
{
    assert (self);
    assert (replica);
    s_start (self, RSTORE_REWRITE_TIMEOUT_MS);
    if (!self->c) {
        s_fail (self, "not connected");
        return -1;
    }
    s_keys_t old = {0};
    if (s_scan (self, &old) != 0) {
        s_keys_free (&old);
        return -1;
    }
    s_cmd (self, "MULTI");
    for (size_t i = 0; i < old.count; i += S_UNLINK_ARGS) {
        const char *argv[S_UNLINK_ARGS + 1] = {"UNLINK"};
        int argc = 1;
        for (size_t k = i; k < old.count && argc <= S_UNLINK_ARGS; k++)
            argv[argc++] = old.keys[k];
        s_cmd_argv (self, argc, argv);
    }
    s_keys_free (&old);
    s_books_t books = {0};
    replica_each_order (replica, s_rewrite_order, &(s_each_t){self, replica, &books});
    for (uint32_t i = 0; i < replica_market_count (replica); i++) {
        const replica_market_t *m = replica_market (replica, i);
        s_put_stats (self, m);
        char key[RSTORE_KEY_MAX];
        rstore_trades_key (key, sizeof key, m->id);
        for (size_t k = 0; k < m->ring_count; k++) //  newest first, each after the one before
            s_push_trade (self, "RPUSH", key, replica_trade (m, k));
    }
    for (size_t i = 0; i < replica_balance_count (replica); i++)
        s_put_balance (self, replica_balance (replica, i));
    s_books_expire (self, &books);
    s_set_seq (self, replica);
    s_cmd (self, "EXEC");
    return s_finish (self);
}

static void s_refresh_order (void *arg, const replica_order_t *o)
{
    s_each_t *e = arg;
    char book[RSTORE_KEY_MAX], key[RSTORE_KEY_MAX];
    rstore_book_key (book, sizeof book, replica_market (e->replica, o->market)->id, o->epoch,
                     o->side);
    s_cmd (e->self, "EXPIRE %s %d", rstore_order_key (key, sizeof key, o->id), RSTORE_TTL_S);
    s_book_seen (e->books, book);
}

int rstore_refresh (rstore_t *self, const replica_t *replica)
{
    assert (self);
    assert (replica);
    s_start (self, RSTORE_WRITE_TIMEOUT_MS);
    s_books_t books = {0};
    replica_each_order (replica, s_refresh_order, &(s_each_t){self, replica, &books});
    s_books_expire (self, &books);
    return s_finish (self);
}
