/*  bus_replay — the replay endpoint of a bus (docs/architecture.md, The bus): a ROUTER served by
    its own thread, reading the journal files, never touching the owner's state.

    Request  [peer][replay_req {from, max}]
    Answer   [peer][topic][event] for each event from `from` on, at most `max` of them, then
             [peer]["<stream>.replay_end"][replay_end {from, last, head, first, status}]
    A consumer asks again from last + 1 while last < head. Answers are bounded, so a slow
    consumer cannot make the server buffer without limit. Malformed requests are counted and
    dropped with a log line naming the peer.

    The owner publishes its committed seq through an atomic watermark: a lock-free read of one
    integer is all the two threads share, so replay never returns an event that is not yet
    durable and published.
*/
#ifndef MCE_BUS_REPLAY_H
#define MCE_BUS_REPLAY_H

#include "curve.h"

#include <stdatomic.h>
#include <stdint.h>

typedef struct _bus_replay_t bus_replay_t;

//  Starts the thread; binds endpoint before returning. NULL on error (logged).
//  committed and curve (NULL: no CURVE) must outlive the server.
bus_replay_t *bus_replay_new (const char *stream, const char *endpoint, const char *journal_dir,
                              const _Atomic uint64_t *committed, const curve_t *curve);
void bus_replay_destroy (bus_replay_t **self_p);

#endif
