/*  journal — the append-only, sequenced record log behind every event-sourced service
    (docs/architecture.md, Durability). The matcher and the settler each own one; their replay
    servers read it.

    On disk: a folder of segments named <first seq, 20 digits>.mjl. A segment is a 16-byte
    header (magic "MCEJRNL1", u64 first seq) followed by records:

        u32 len | u32 crc32c (seq ‖ payload) | u64 seq | payload (len bytes)      little-endian

    Seqs are gap-free across segments. Appends go to a user-space buffer; journal_commit writes
    the batch with one write(2) and, with fsync=batch, one fdatasync(2): group commit. Segments
    rotate only at a commit boundary, so every closed segment is whole and durable, and only the
    newest can end in a torn record. Opening the journal scans the newest segment, truncates a
    torn tail at the last whole record and says so in the log.

    One thread owns a journal_t. Readers (journal_reader_t) open the files on their own and may
    run in other threads: they never go past the seq their owner tells them is committed.
*/
#ifndef MCE_JOURNAL_H
#define MCE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    JOURNAL_FSYNC_BATCH = 0, //  one fdatasync per journal_commit (group commit)
    JOURNAL_FSYNC_ALWAYS,    //  one fdatasync per appended record
    JOURNAL_FSYNC_NEVER,     //  write(2) only: survives a process crash, not a power loss
} journal_fsync_t;

#define JOURNAL_RECORD_MAX    (16u << 20) //  larger lengths are corruption, not records
#define JOURNAL_HEADER_BYTES  16u         //  segment header
#define JOURNAL_RECORD_HDR    16u         //  before each payload: u32 len | u32 crc32c | u64 seq
#define JOURNAL_SEGMENT_BYTES (64u << 20)

typedef struct {
    journal_fsync_t fsync;
    uint64_t segment_bytes;   //  rotate once a segment holds this much (0 = default)
    uint32_t retain_segments; //  keep at most this many segments, 0 = keep all
} journal_opts_t;

typedef struct _journal_t journal_t;
typedef struct _journal_reader_t journal_reader_t;

//  Opens (creating if needed) the journal in dir and recovers it. NULL on error, logged.
journal_t *journal_open (const char *dir, const journal_opts_t *opts);
//  Commits whatever is buffered, closes the files. Idempotent.
void journal_destroy (journal_t **self_p);

//  Appends one record; seq must be journal_last_seq () + 1. Returns 0, or -1 on I/O error
//  (with fsync=always the write happens here).
int journal_append (journal_t *self, uint64_t seq, const void *data, size_t len);
//  Writes the buffered records and syncs them per the fsync policy; rotates the segment when
//  full. Returns 0, or -1 on an I/O error: the owner must stop, as nothing after it is durable.
int journal_commit (journal_t *self);

//  Fills in the header of a record its owner framed itself (JOURNAL_RECORD_HDR bytes, then
//  len bytes of payload): all but the CRC, which journal_write computes on the thread that
//  writes. This lets a producer encode straight into the buffer that goes to disk.
void journal_frame (uint8_t *hdr, uint64_t seq, size_t len);
//  Writes records framed with journal_frame, with consecutive seqs from journal_last_seq ()
//  + 1, by one write(2); syncs them once unless fsync=never (fsync=always included: the caller
//  makes each batch one unit, e.g. one command), and rotates when the segment is full.
//  Nothing may be waiting from journal_append. 0, or -1 on an I/O error as journal_commit.
int journal_write (journal_t *self, uint8_t *records, size_t len);

//  Cuts the journal back so that keep_seq is its last record (only within the newest
//  segment: what a crash mid-batch leaves is never older). 0, or -1 (logged).
int journal_truncate (journal_t *self, uint64_t keep_seq);

uint64_t journal_last_seq (journal_t *self);   //  last appended seq, 0 when empty
uint64_t journal_synced_seq (journal_t *self); //  last seq written (and synced per policy)
uint64_t journal_first_seq (journal_t *self);  //  oldest retained seq
uint64_t journal_bytes (journal_t *self);      //  bytes on disk over all segments
uint64_t journal_fsyncs (journal_t *self);     //  fdatasync calls made since open
const char *journal_dir (journal_t *self);
//  What recovery found at open: bytes cut off a torn tail (0 when the tail was clean).
uint64_t journal_torn_bytes (journal_t *self);

//  Oldest seq still held in dir (0 if none), for a replay server's "gone" answer.
uint64_t journal_dir_first_seq (const char *dir);

//  A reader positioned at the first record whose seq >= from_seq. NULL on error.
journal_reader_t *journal_reader_new (const char *dir, uint64_t from_seq);
void journal_reader_destroy (journal_reader_t **self_p);
//  Next record with seq <= limit_seq: returns 1 and points data at it (valid until the next
//  call), 0 at the end of what is there, -1 on corruption or an I/O error (logged).
int journal_reader_next (journal_reader_t *self, uint64_t limit_seq, uint64_t *seq,
                         const uint8_t **data, size_t *len);
//  The seq the next record will have.
uint64_t journal_reader_position (journal_reader_t *self);

#endif
