/*  snapshot — atomic snapshot files of a service's state, next to its journal.

    A snapshot is one file, snapshot-<seq 20 digits>.snap: a header (magic "MCESNAP1", the
    seq of the last journal record it includes, the service's clock then, the body's length
    and CRC32C) and the body, which is the service's business. It is written to a temporary
    name, fsynced, renamed into place and the folder fsynced, so a crash leaves either the
    whole new file or none of it.

    The writer serialises and writes in a child process (fork), as Redis does: the child sees
    the state exactly as it was at the fork, through copy-on-write pages, and the owner's
    thread goes on deciding commands after a pause of the fork alone, not of the serialising.
    The child touches nothing but the state and the file, logs with write(2) only, and dies
    with its parent.
*/
#ifndef MCE_SNAPSHOT_H
#define MCE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _snapshot_writer_t snapshot_writer_t;

//  Serialises the owner's state: a malloc'd body and its size, NULL when memory runs out;
//  *hash may be set to a digest of the state, logged with the file (the owner's state hash).
typedef uint8_t *(snapshot_serialise_fn) (void *state, size_t *size, uint64_t *hash);

//  A writer into dir that keeps the newest `keep` snapshots; removes temporary files that a
//  killed writer left. NULL on error.
snapshot_writer_t *snapshot_writer_new (const char *dir, int keep);
//  Waits for a snapshot being written, then frees the writer. Idempotent.
void snapshot_writer_destroy (snapshot_writer_t **self_p);
//  Starts writing a snapshot of state, which includes the journal through seq, in a child.
//  0 when started, 1 when the previous one is still being written (try again later), -1 when
//  fork failed (logged).
int snapshot_writer_start (snapshot_writer_t *self, uint64_t seq, int64_t clock,
                           snapshot_serialise_fn *serialise, void *state);
//  Waits for a snapshot being written, if any, and logs how it went.
void snapshot_writer_wait (snapshot_writer_t *self);
//  Whether a snapshot is being written. Reaps a finished child and logs how it went.
bool snapshot_writer_busy (snapshot_writer_t *self);
//  Snapshots written successfully since the writer was made.
uint64_t snapshot_writer_written (snapshot_writer_t *self);
//  The seq of the newest snapshot written (0 if none yet) and, in *hash, the state hash the
//  child reported for it.
uint64_t snapshot_writer_last (snapshot_writer_t *self, uint64_t *hash);
//  Writes one snapshot file here and now, then keeps the newest `keep`. 0, or -1 (errno set).
int snapshot_write (const char *dir, int keep, uint64_t seq, int64_t clock, const uint8_t *body,
                    size_t size);

//  The newest whole snapshot in dir whose seq is <= max_seq: its body (caller frees) with
//  *seq, *clock and *size filled in. NULL when there is none. Damaged files are skipped,
//  with a log line.
uint8_t *snapshot_load (const char *dir, uint64_t max_seq, uint64_t *seq, int64_t *clock,
                        size_t *size);

#endif
