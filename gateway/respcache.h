/*  respcache — rendered market-data answers, reused while the read model has not moved.

    A depth or trades answer depends on nothing but its query and the read model's seq, so
    when a hundred dashboards ask for the same depth between two bus events the JSON is built
    and written once. Direct-mapped by a hash of the key (a colliding key just replaces the
    slot), bounded in memory, owned by the gateway's one thread.
*/
#ifndef MCE_RESPCACHE_H
#define MCE_RESPCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct _respcache_t respcache_t;

respcache_t *respcache_new (size_t slots);
void respcache_destroy (respcache_t **self_p);
//  The text cached for key if it was rendered at seq, else NULL. Borrowed until the next put.
const char *respcache_get (respcache_t *self, const char *key, uint64_t seq, size_t *len);
//  Keeps text (malloc'd; taken) as key's answer at seq.
void respcache_put (respcache_t *self, const char *key, uint64_t seq, char *text, size_t len);

#endif
