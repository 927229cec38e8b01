/*  fnv — FNV-1a, the hash for the small fixed tables of the gateway (rate buckets, rendered
    answers, verified tokens): fast on short keys, no state, good enough spread for tables
    that tolerate a collision by design. Not for anything an attacker could exploit by
    choosing keys: those tables replace or evict on collision, they never chain.
*/
#ifndef MCE_FNV_H
#define MCE_FNV_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t fnv1a (const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

#endif
