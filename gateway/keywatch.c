/*  keywatch — see keywatch.h. A czmq zhashx of key id → state: not on a hot path (one lookup
    per native command of a key session), and the gateway already links it.
*/
#include "keywatch.h"
#include "clock.h"
#include "log.h"
#include "pg.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool revoked;
    int64_t used; //  clock_mono_ns of the last command
} s_key_t;

struct _keywatch_t {
    gateway_worker_t *worker;
    int64_t check_ns;
    int64_t due;
    bool busy;      //  a check is on the worker
    zhashx_t *keys; //  "<id>" → s_key_t
    uint64_t revoked;
};

//  One check: the ids asked about, and which of them Postgres still has.
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    keywatch_t *watch;
    size_t count;
    uint64_t *ids;
    bool *alive;
    bool down; //  no answer: nothing is concluded
} s_check_t;

static void s_free_key (void **item)
{
    free (*item);
    *item = NULL;
}

keywatch_t *keywatch_new (gateway_worker_t *worker, int64_t check_ms)
{
    keywatch_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->worker = worker;
    self->check_ns = check_ms * MCE_NS_PER_MSEC;
    self->keys = zhashx_new ();
    if (!self->keys) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->keys, s_free_key);
    return self;
}

void keywatch_destroy (keywatch_t **self_p)
{
    keywatch_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->keys);
    free (self);
    *self_p = NULL;
}

bool keywatch_use (keywatch_t *self, uint64_t id, int64_t now)
{
    char name[24];
    snprintf (name, sizeof name, "%" PRIu64, id);
    s_key_t *key = zhashx_lookup (self->keys, name);
    if (!key) {
        key = calloc (1, sizeof *key);
        if (!key)
            return true; //  not remembered: checked when it comes again
        zhashx_insert (self->keys, name, key);
    }
    key->used = now;
    return !key->revoked;
}

static void s_check_run (gateway_job_t *base, pg_t *pg)
{
    s_check_t *c = (s_check_t *) base;
    if (!pg) {
        c->down = true;
        return;
    }
    //  one array parameter: {1,2,3}
    size_t cap = c->count * 21 + 3, len = 0;
    char *array = malloc (cap);
    if (!array) {
        c->down = true;
        return;
    }
    array[len++] = '{';
    for (size_t i = 0; i < c->count; i++)
        len += (size_t) snprintf (array + len, cap - len, "%s%" PRIu64, i ? "," : "", c->ids[i]);
    snprintf (array + len, cap - len, "}");
    const char *params[] = {array};
    pg_result_t *r =
        pg_exec (pg, "SELECT id FROM api_keys WHERE id = ANY ($1::bigint[])", 1, params);
    free (array);
    if (!r) {
        c->down = true;
        return;
    }
    for (int row = 0; row < pg_rows (r); row++) {
        uint64_t id = (uint64_t) pg_int (r, row, 0);
        for (size_t i = 0; i < c->count; i++)
            c->alive[i] |= c->ids[i] == id;
    }
    pg_result_free (&r);
}

static void s_check_done (gateway_job_t *base)
{
    s_check_t *c = (s_check_t *) base;
    keywatch_t *self = c->watch;
    self->busy = false;
    for (size_t i = 0; !c->down && i < c->count; i++) {
        if (c->alive[i])
            continue;
        char name[24];
        snprintf (name, sizeof name, "%" PRIu64, c->ids[i]);
        s_key_t *key = zhashx_lookup (self->keys, name);
        if (key && !key->revoked) {
            key->revoked = true;
            self->revoked++;
            log_info ("gateway", "native port: API key %s was revoked: its sessions end", name);
        }
    }
    free (c->ids);
    free (c->alive);
    free (c);
}

void keywatch_tick (keywatch_t *self, int64_t now)
{
    if (self->busy || now < self->due)
        return;
    self->due = now + self->check_ns;
    //  forget what is idle, and ask about what is left (revoked keys stay revoked)
    zlist_t *idle = zlist_new ();
    size_t count = 0;
    for (s_key_t *key = zhashx_first (self->keys); key; key = zhashx_next (self->keys)) {
        if (now - key->used > (int64_t) KEYWATCH_IDLE_MS * MCE_NS_PER_MSEC)
            zlist_append (idle, (void *) zhashx_cursor (self->keys));
        else if (!key->revoked)
            count++;
    }
    for (const char *name = zlist_first (idle); name; name = zlist_next (idle))
        zhashx_delete (self->keys, name);
    zlist_destroy (&idle);
    if (count == 0)
        return;
    count = count < KEYWATCH_BATCH_MAX ? count : KEYWATCH_BATCH_MAX;
    s_check_t *c = calloc (1, sizeof *c);
    if (c) {
        c->ids = calloc (count, sizeof *c->ids);
        c->alive = calloc (count, sizeof *c->alive);
    }
    if (!c || !c->ids || !c->alive) {
        if (c) {
            free (c->ids);
            free (c->alive);
        }
        free (c);
        return;
    }
    c->job = (gateway_job_t){.run = s_check_run, .done = s_check_done};
    c->watch = self;
    for (s_key_t *key = zhashx_first (self->keys); key && c->count < count;
         key = zhashx_next (self->keys))
        if (!key->revoked)
            c->ids[c->count++] = strtoull (zhashx_cursor (self->keys), NULL, 10);
    if (gateway_worker_submit (self->worker, &c->job) == 0)
        self->busy = true;
    else {
        free (c->ids);
        free (c->alive);
        free (c);
    }
}

uint64_t keywatch_revoked (keywatch_t *self)
{
    return self->revoked;
}
