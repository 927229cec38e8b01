/*  known_users — see known_users.h.  */
#include "known_users.h"
#include "log.h"
#include "ratelimit.h"

#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define S_ADDRESS_BUCKETS 4096
#define S_USER_MAX        65 //  a token's sub (64) and its NUL

//  A request waiting for a lookup.
typedef struct _s_waiter_t {
    known_users_fn *fn;
    void *arg;
    struct _s_waiter_t *next;
} s_waiter_t;

//  One lookup in flight: the worker's job, and everyone waiting for its answer.
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    known_users_t *owner;
    char user[S_USER_MAX];
    s_waiter_t *waiters; //  in arrival order
    s_waiter_t **tail;
    known_users_answer_t answer; //  set on the worker
} s_lookup_t;

struct _known_users_t {
    gateway_worker_t *worker;
    zhashx_t *known;   //  username -> self: the key's presence is the answer
    zhashx_t *pending; //  username -> s_lookup_t (the worker's until done)
    ratelimit_t *per_address;
    ratelimit_t *overall; //  one bucket, "*"
    uint64_t lookups, limited;
};

known_users_t *known_users_new (gateway_worker_t *worker)
{
    assert (worker);
    known_users_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->worker = worker;
    self->known = zhashx_new ();
    self->pending = zhashx_new ();
    self->per_address =
        ratelimit_new (KNOWN_USERS_ADDRESS_RATE, KNOWN_USERS_ADDRESS_BURST, S_ADDRESS_BUCKETS);
    self->overall = ratelimit_new (KNOWN_USERS_RATE, KNOWN_USERS_BURST, 1);
    if (!self->known || !self->pending || !self->per_address || !self->overall)
        known_users_destroy (&self);
    return self;
}

void known_users_destroy (known_users_t **self_p)
{
    assert (self_p);
    known_users_t *self = *self_p;
    if (!self)
        return;
    //  The worker is gone first (known_users.h), so no lookup is pending any more.
    if (self->pending && zhashx_size (self->pending))
        log_warn ("gateway", "known users: %zu lookups never came back",
                  zhashx_size (self->pending));
    zhashx_destroy (&self->known);
    zhashx_destroy (&self->pending);
    ratelimit_destroy (&self->per_address);
    ratelimit_destroy (&self->overall);
    free (self);
    *self_p = NULL;
}

bool known_users_has (known_users_t *self, const char *user)
{
    return zhashx_lookup (self->known, user) != NULL;
}

void known_users_learn (known_users_t *self, const char *user)
{
    if (zhashx_lookup (self->known, user))
        return;
    if (zhashx_size (self->known) >= KNOWN_USERS_MAX) {
        //  Full: the first name of the hash's own order gives way, an arbitrary one.
        char victim[S_USER_MAX];
        zhashx_first (self->known);
        snprintf (victim, sizeof victim, "%s", (const char *) zhashx_cursor (self->known));
        zhashx_delete (self->known, victim);
    }
    zhashx_insert (self->known, user, self);
}

//  Worker: does the user exist?
static void s_lookup_run (gateway_job_t *base, pg_t *pg)
{
    s_lookup_t *l = (s_lookup_t *) base;
    const char *params[] = {l->user};
    pg_result_t *r = pg ? pg_exec (pg, "SELECT 1 FROM users WHERE username = $1", 1, params) : NULL;
    if (!r) {
        if (pg)
            log_warn ("gateway", "known users: looking up %s: %s", l->user, pg_error (pg));
        l->answer = KNOWN_USERS_UNAVAILABLE;
    }
    else
        l->answer = pg_rows (r) == 1 ? KNOWN_USERS_KNOWN : KNOWN_USERS_UNKNOWN;
    pg_result_free (&r);
}

//  Loop: the answer, to everyone who waited for it.
static void s_lookup_done (gateway_job_t *base)
{
    s_lookup_t *l = (s_lookup_t *) base;
    known_users_t *self = l->owner;
    zhashx_delete (self->pending, l->user);
    if (l->answer == KNOWN_USERS_KNOWN)
        known_users_learn (self, l->user);
    else if (l->answer == KNOWN_USERS_UNKNOWN)
        log_debug ("gateway", "known users: %s has a valid token but is not a registered user",
                   l->user);
    s_waiter_t *w = l->waiters;
    while (w) {
        s_waiter_t *next = w->next;
        w->fn (w->arg, l->answer);
        free (w);
        w = next;
    }
    free (l);
}

known_users_answer_t known_users_check (known_users_t *self, const char *user, const char *address,
                                        int64_t now_ns, known_users_fn *fn, void *arg)
{
    assert (self && user && fn);
    if (zhashx_lookup (self->known, user))
        return KNOWN_USERS_KNOWN;
    if (strlen (user) >= S_USER_MAX)
        return KNOWN_USERS_UNAVAILABLE; //  a token's sub is shorter: cannot happen
    s_waiter_t *w = calloc (1, sizeof *w);
    if (!w)
        return KNOWN_USERS_UNAVAILABLE;
    w->fn = fn;
    w->arg = arg;
    s_lookup_t *l = zhashx_lookup (self->pending, user);
    if (!l) {
        //  A new lookup spends from both bounds; joining one in flight spends nothing.
        char key[80];
        snprintf (key, sizeof key, "a:%.64s", address ? address : "");
        if (ratelimit_take (self->per_address, key, now_ns) ||
            ratelimit_take (self->overall, "*", now_ns)) {
            self->limited++;
            free (w);
            return KNOWN_USERS_LIMITED;
        }
        l = calloc (1, sizeof *l);
        if (!l) {
            free (w);
            return KNOWN_USERS_UNAVAILABLE;
        }
        l->job.run = s_lookup_run;
        l->job.done = s_lookup_done;
        l->owner = self;
        snprintf (l->user, sizeof l->user, "%s", user);
        l->tail = &l->waiters;
        if (gateway_worker_submit (self->worker, &l->job)) {
            free (l);
            free (w);
            return KNOWN_USERS_UNAVAILABLE;
        }
        zhashx_insert (self->pending, user, l);
        self->lookups++;
    }
    *l->tail = w;
    l->tail = &w->next;
    return KNOWN_USERS_PENDING;
}

uint64_t known_users_lookups (known_users_t *self)
{
    return self->lookups;
}

uint64_t known_users_limited (known_users_t *self)
{
    return self->limited;
}
