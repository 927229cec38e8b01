/*  seqwait — answers held back until the read model has caught up with a write.

    The matcher acknowledges a command once its events are durable; this gateway's read model
    applies them a moment later, from the bus. An answer that waits here until the model's
    seq reaches the command's last event means a client who writes and then reads, over HTTP
    or the native port, always sees its write. A deadline bounds the wait when the bus lags.
*/
#ifndef MCE_SEQWAIT_H
#define MCE_SEQWAIT_H

#include <stdbool.h>
#include <stdint.h>

typedef void (seqwait_fn) (void *arg);
typedef struct _seqwait_t seqwait_t;

//  Waits last at most wait_ms.
seqwait_t *seqwait_new (int wait_ms);
//  Runs every callback still waiting, then frees.
void seqwait_destroy (seqwait_t **self_p);
//  Runs fn (arg) now if current >= seq, else once release sees seq reached (or the deadline).
//  0, or -1 when out of memory (fn has then been run at once).
int seqwait_after (seqwait_t *self, uint64_t current, uint64_t seq, seqwait_fn *fn, void *arg);
//  Runs the callbacks whose seq current has reached or whose deadline passed.
void seqwait_release (seqwait_t *self, uint64_t current);

#endif
