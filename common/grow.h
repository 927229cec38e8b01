/*  grow — the one way an array here grows: doubling, so appends cost amortised O(1).

    grow_to (&items, &cap, count + 1, sizeof *items) makes room for count + 1 items, keeping
    what is there; false (and nothing changed) when memory runs out. Header-only: it is a few
    lines every module that keeps a growing array calls in its inner loop.
*/
#ifndef MCE_GROW_H
#define MCE_GROW_H

#include <stdbool.h>
#include <stdlib.h>

#define GROW_FIRST 16 //  items an empty array starts with

static inline bool grow_to (void **p, size_t *cap, size_t need, size_t unit)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : GROW_FIRST;
    while (n < need)
        n *= 2;
    void *q = realloc (*p, n * unit);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

#endif
