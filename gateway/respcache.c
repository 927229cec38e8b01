/*  respcache — see respcache.h.  */
#include "respcache.h"
#include "fnv.h"

#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 160

typedef struct {
    char key[S_KEY_MAX];
    uint64_t seq;
    char *text;
    size_t len;
} s_slot_t;

struct _respcache_t {
    s_slot_t *slots;
    size_t mask;
};

respcache_t *respcache_new (size_t slots)
{
    respcache_t *self = calloc (1, sizeof *self);
    size_t n = 16;
    while (n < slots)
        n *= 2;
    if (self)
        self->slots = calloc (n, sizeof *self->slots);
    if (!self || !self->slots) {
        respcache_destroy (&self);
        return NULL;
    }
    self->mask = n - 1;
    return self;
}

void respcache_destroy (respcache_t **self_p)
{
    respcache_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; self->slots && i <= self->mask; i++)
        free (self->slots[i].text);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

static s_slot_t *s_slot (respcache_t *self, const char *key)
{
    return &self->slots[fnv1a (key, strlen (key)) & self->mask];
}

const char *respcache_get (respcache_t *self, const char *key, uint64_t seq, size_t *len)
{
    s_slot_t *s = s_slot (self, key);
    if (!s->text || s->seq != seq || strcmp (s->key, key) != 0)
        return NULL;
    *len = s->len;
    return s->text;
}

void respcache_put (respcache_t *self, const char *key, uint64_t seq, char *text, size_t len)
{
    if (strlen (key) >= S_KEY_MAX) {
        free (text);
        return;
    }
    s_slot_t *s = s_slot (self, key);
    free (s->text);
    strcpy (s->key, key);
    s->seq = seq;
    s->text = text;
    s->len = len;
}
