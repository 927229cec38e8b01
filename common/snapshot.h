/*  snapshot — atomic snapshot files of a service's state, next to its journal.

    A snapshot is one file, snapshot-<seq 20 digits>.snap: a header (magic "MCESNAP1", the
    seq of the last journal record it includes, the service's clock then, the body's length
    and CRC32C) and the body, which is the service's business. It is written to a temporary
    name, fsynced, renamed into place and the folder fsynced, so a crash leaves either the
    whole new file or none of it. Writing happens on a thread of its own: the owner hands over
    a buffer and goes on deciding commands.
*/
#ifndef MCE_SNAPSHOT_H
#define MCE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct _snapshot_writer_t snapshot_writer_t;

//  A writer into dir that keeps the newest `keep` snapshots. NULL on error.
snapshot_writer_t *snapshot_writer_new (const char *dir, int keep);
//  Waits for a write in progress, then stops.
void snapshot_writer_destroy (snapshot_writer_t **self_p);
//  Queues a snapshot; takes ownership of *body_p (malloc'd) and nulls it. 0 or -1.
int snapshot_writer_write (snapshot_writer_t *self, uint64_t seq, int64_t clock, uint8_t **body_p,
                           size_t size);

//  The newest whole snapshot in dir whose seq is <= max_seq: its body (caller frees) with
//  *seq, *clock and *size filled in. NULL when there is none. Damaged files are skipped,
//  with a log line.
uint8_t *snapshot_load (const char *dir, uint64_t max_seq, uint64_t *seq, int64_t *clock,
                        size_t *size);

#endif
