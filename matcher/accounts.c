/*  accounts — see accounts.h.  */
#include "accounts.h"
#include "grow.h"

#include <stdlib.h>
#include <string.h>

void accounts_init (accounts_t *self)
{
    memset (self, 0, sizeof *self);
    self->generation = 1; //  entries start at 0: never "touched by this command"
}

void accounts_free (accounts_t *self)
{
    free (self->entries);
    free (self->touches);
    memset (self, 0, sizeof *self);
}

int accounts_reserve_users (accounts_t *self, size_t users)
{
    if (users <= self->count)
        return 0;
    if (!grow_to ((void **) &self->entries, &self->cap, users, sizeof *self->entries))
        return -1;
    memset (self->entries + self->count, 0, (users - self->count) * sizeof *self->entries);
    self->count = users;
    return 0;
}

void accounts_forget_marks (accounts_t *self)
{
    //  wrapped after 4 billion commands: forget every mark so none looks current
    for (size_t u = 0; u < self->count; u++)
        memset (self->entries[u].touched, 0, sizeof self->entries[u].touched);
    self->generation = 1;
}

void accounts_touch_grow (accounts_t *self)
{
    bool grown = grow_to ((void **) &self->touches, &self->touch_cap, self->touch_count + 1,
                          sizeof *self->touches);
    assert (grown); //  a few KB, as the engine's event array: nothing sensible is left to do
    (void) grown;
}
