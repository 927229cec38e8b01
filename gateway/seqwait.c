/*  seqwait — see seqwait.h. A plain array: writes in flight are few hundred at most, and
    answers arrive in seq order, so the scan is short and the order is kept.
*/
#include "seqwait.h"
#include "clock.h"

#include <stdlib.h>

typedef struct {
    uint64_t seq;
    int64_t deadline;
    seqwait_fn *fn;
    void *arg;
} s_item_t;

struct _seqwait_t {
    int64_t wait_ns;
    s_item_t *items;
    size_t count, cap;
};

seqwait_t *seqwait_new (int wait_ms)
{
    seqwait_t *self = calloc (1, sizeof *self);
    if (self)
        self->wait_ns = (int64_t) wait_ms * MCE_NS_PER_MSEC;
    return self;
}

void seqwait_destroy (seqwait_t **self_p)
{
    seqwait_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        self->items[i].fn (self->items[i].arg);
    free (self->items);
    free (self);
    *self_p = NULL;
}

int seqwait_after (seqwait_t *self, uint64_t current, uint64_t seq, seqwait_fn *fn, void *arg)
{
    if (current >= seq) {
        fn (arg);
        return 0;
    }
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        s_item_t *bigger = realloc (self->items, cap * sizeof *bigger);
        if (!bigger) {
            fn (arg);
            return -1;
        }
        self->items = bigger;
        self->cap = cap;
    }
    self->items[self->count++] = (s_item_t){seq, clock_mono_ns () + self->wait_ns, fn, arg};
    return 0;
}

void seqwait_release (seqwait_t *self, uint64_t current)
{
    if (!self->count)
        return;
    int64_t now = clock_mono_ns ();
    size_t kept = 0, n = self->count;
    //  callbacks may add items: take the due ones out first, run them after
    s_item_t *due = malloc (n * sizeof *due);
    if (!due)
        return; //  out of memory: the next call tries again
    size_t ndue = 0;
    for (size_t i = 0; i < n; i++) {
        s_item_t *it = &self->items[i];
        if (it->seq <= current || now >= it->deadline)
            due[ndue++] = *it;
        else
            self->items[kept++] = *it;
    }
    self->count = kept;
    for (size_t i = 0; i < ndue; i++)
        due[i].fn (due[i].arg);
    free (due);
}
