/*  respool — libmicrohttpd responses kept and reused. See respool.h. */
#include "respool.h"

#include <microhttpd.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _respool_entry_t {
    respool_entry_t *next; //  in its length's idle list
    size_t len;
    struct MHD_Response *response; //  the pool's reference
    char body[];                   //  len bytes, what the response sends
};

struct _respool_t {
    size_t max_len;
    size_t max_free;
    respool_dress_fn *dress;
    respool_entry_t **idle; //  by body length, 0 ... max_len
    size_t idle_count;
    size_t made;
    size_t in_use;
};

respool_t *respool_new (size_t max_len, size_t max_free, respool_dress_fn *dress)
{
    assert (max_len > 0);
    assert (dress);
    respool_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->idle = calloc (max_len + 1, sizeof *self->idle);
    if (!self->idle) {
        free (self);
        return NULL;
    }
    self->max_len = max_len;
    self->max_free = max_free;
    self->dress = dress;
    return self;
}

static void s_entry_free (respool_t *self, respool_entry_t *entry)
{
    MHD_destroy_response (entry->response);
    free (entry);
    self->made--;
}

void respool_destroy (respool_t **self_p)
{
    assert (self_p);
    respool_t *self = *self_p;
    if (!self)
        return;
    assert (self->in_use == 0);
    for (size_t len = 0; len <= self->max_len; len++)
        while (self->idle[len]) {
            respool_entry_t *entry = self->idle[len];
            self->idle[len] = entry->next;
            s_entry_free (self, entry);
        }
    free (self->idle);
    free (self);
    *self_p = NULL;
}

respool_entry_t *respool_take (respool_t *self, const char *text, size_t len)
{
    assert (self);
    if (len == 0 || len > self->max_len)
        return NULL;
    respool_entry_t *entry = self->idle[len];
    if (entry) {
        self->idle[len] = entry->next;
        self->idle_count--;
    }
    else {
        entry = malloc (sizeof *entry + len);
        if (!entry)
            return NULL;
        entry->len = len;
        entry->response =
            MHD_create_response_from_buffer (len, entry->body, MHD_RESPMEM_PERSISTENT);
        if (!entry->response) {
            free (entry);
            return NULL;
        }
        self->dress (entry->response);
        self->made++;
    }
    entry->next = NULL;
    memcpy (entry->body, text, len);
    self->in_use++;
    return entry;
}

struct MHD_Response *respool_response (respool_entry_t *entry)
{
    assert (entry);
    return entry->response;
}

void respool_give (respool_t *self, respool_entry_t *entry)
{
    assert (self);
    assert (entry);
    assert (self->in_use > 0);
    self->in_use--;
    if (self->idle_count >= self->max_free) {
        s_entry_free (self, entry);
        return;
    }
    entry->next = self->idle[entry->len];
    self->idle[entry->len] = entry;
    self->idle_count++;
}

size_t respool_made (respool_t *self)
{
    assert (self);
    return self->made;
}

size_t respool_in_use (respool_t *self)
{
    assert (self);
    return self->in_use;
}
