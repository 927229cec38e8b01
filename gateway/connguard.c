/*  connguard — see connguard.h.  */
#include "connguard.h"

#include <czmq.h>
#include <stdlib.h>
#include <sys/socket.h>

struct _connguard_conn_t {
    char addr[64];
    int fd;
    int64_t deadline;              //  0 while its request is being answered
    connguard_conn_t *prev, *next; //  in the waiting list while deadline != 0
};

struct _connguard_t {
    int per_address;
    int64_t deadline_ns;
    zhashx_t *counts; //  address -> int* (connections open)
    connguard_conn_t *head, *tail;
    int open;
    uint64_t refused, timed_out;
};

static void s_free_count (void **item)
{
    free (*item);
    *item = NULL;
}

connguard_t *connguard_new (int per_address, int64_t deadline_ns)
{
    connguard_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->per_address = per_address;
    self->deadline_ns = deadline_ns;
    self->counts = zhashx_new ();
    if (!self->counts) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->counts, s_free_count);
    return self;
}

void connguard_destroy (connguard_t **self_p)
{
    connguard_t *self = *self_p;
    if (!self)
        return;
    //  libmicrohttpd closed every connection (and called connguard_closed) before this
    zhashx_destroy (&self->counts);
    free (self);
    *self_p = NULL;
}

static void s_unlink (connguard_t *self, connguard_conn_t *c)
{
    if (!c->deadline)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        self->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        self->tail = c->prev;
    c->prev = c->next = NULL;
    c->deadline = 0;
}

static void s_append (connguard_t *self, connguard_conn_t *c, int64_t now)
{
    s_unlink (self, c);
    c->deadline = now + self->deadline_ns;
    c->prev = self->tail;
    if (self->tail)
        self->tail->next = c;
    else
        self->head = c;
    self->tail = c;
}

bool connguard_admit (connguard_t *self, const char *addr)
{
    const int *count = zhashx_lookup (self->counts, addr);
    if (count && *count >= self->per_address) {
        self->refused++;
        return false;
    }
    return true;
}

connguard_conn_t *connguard_opened (connguard_t *self, const char *addr, int fd, int64_t now)
{
    connguard_conn_t *c = calloc (1, sizeof *c);
    int *count = zhashx_lookup (self->counts, addr);
    if (!count && c) {
        count = calloc (1, sizeof *count);
        if (count && zhashx_insert (self->counts, addr, count) != 0) {
            free (count);
            count = NULL;
        }
    }
    if (!c || !count) {
        free (c);
        return NULL;
    }
    (*count)++;
    snprintf (c->addr, sizeof c->addr, "%s", addr);
    c->fd = fd;
    self->open++;
    s_append (self, c, now);
    return c;
}

void connguard_closed (connguard_t *self, connguard_conn_t *c)
{
    if (!c)
        return;
    s_unlink (self, c);
    int *count = zhashx_lookup (self->counts, c->addr);
    if (count && --*count <= 0)
        zhashx_delete (self->counts, c->addr);
    self->open--;
    free (c);
}

void connguard_received (connguard_t *self, connguard_conn_t *c)
{
    if (c)
        s_unlink (self, c);
}

void connguard_answered (connguard_t *self, connguard_conn_t *c, int64_t now)
{
    if (c)
        s_append (self, c, now);
}

int connguard_sweep (connguard_t *self, int64_t now)
{
    int n = 0;
    while (self->head && self->head->deadline <= now) {
        connguard_conn_t *c = self->head;
        s_unlink (self, c);
        //  libmicrohttpd then reads end-of-stream and closes it (connguard_closed)
        shutdown (c->fd, SHUT_RDWR);
        self->timed_out++;
        n++;
    }
    return n;
}

uint64_t connguard_refused (connguard_t *self)
{
    return self->refused;
}

uint64_t connguard_timed_out (connguard_t *self)
{
    return self->timed_out;
}

int connguard_open (connguard_t *self)
{
    return self->open;
}
