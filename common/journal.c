/*  journal — see journal.h for the format and the rules.

    Why it is shaped this way:
    - Records are buffered in memory and written with one write(2) per commit: the service
      decides a whole batch of commands, then pays for one system call and one fdatasync.
    - The CRC covers the seq as well as the payload, so a record from a stale segment or a
      misplaced write can never pass for the next one.
    - Recovery reads only the newest segment: rotation happens after a sync, so older ones
      are known whole. The first bad frame (short header, impossible length, CRC mismatch,
      seq out of order) ends the valid log; everything after it is a torn write and is cut.
*/
#include "journal.h"
#include "crc32c.h"
#include "log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC        "MCEJRNL1"
#define S_SUFFIX       ".mjl"
#define S_PATH_MAX     4096
#define S_READ_CHUNK   (1u << 20)
#define S_MAX_SEGMENTS 1000000

struct _journal_t {
    char dir[S_PATH_MAX];
    journal_opts_t opts;
    int fd;                //  newest segment, open for append
    uint64_t seg_first;    //  first seq of the newest segment
    uint64_t seg_bytes;    //  its size on disk (after the last write)
    uint64_t closed_bytes; //  bytes in the older segments
    uint64_t first_seq;    //  oldest retained seq
    uint64_t last_seq;     //  last appended
    uint64_t synced_seq;   //  last written and synced per policy
    uint64_t fsyncs;
    uint64_t torn_bytes;
    bool failed;  //  an I/O error happened: nothing may be reported durable again
    uint8_t *buf; //  records appended but not yet written
    size_t buf_len, buf_cap;
};

struct _journal_reader_t {
    char dir[S_PATH_MAX];
    int fd;
    uint64_t seg_first;
    uint64_t offset; //  file offset of buf[0]
    uint8_t *buf;
    size_t buf_len, buf_pos, buf_cap;
    uint64_t next_seq; //  seq the next record must have
};

static void s_put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

static void s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t s_get32 (const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t s_get64 (const uint8_t *p)
{
    return (uint64_t) s_get32 (p) | (uint64_t) s_get32 (p + 4) << 32;
}

static uint32_t s_record_crc (uint64_t seq, const void *data, size_t len)
{
    uint8_t seqb[8];
    s_put64 (seqb, seq);
    return crc32c (crc32c (0, seqb, 8), data, len);
}

//  Checks the record at p (avail bytes there), given the seq it must carry. Returns its
//  total size, or 0 with the reason in *reason and, in *incomplete, whether more bytes could
//  still make it whole (as opposed to it being corrupt).
static size_t s_record_check (const uint8_t *p, size_t avail, uint64_t want_seq,
                              const char **reason, bool *incomplete)
{
    *incomplete = false;
    if (avail < JOURNAL_RECORD_HDR) {
        *reason = "short record header";
        *incomplete = true;
        return 0;
    }
    uint32_t len = s_get32 (p);
    if (len == 0 || len > JOURNAL_RECORD_MAX) {
        *reason = "impossible record length";
        return 0;
    }
    if (avail < JOURNAL_RECORD_HDR + len) {
        *reason = "record cut short";
        *incomplete = true;
        return 0;
    }
    uint64_t seq = s_get64 (p + 8);
    if (seq != want_seq) {
        *reason = "seq out of order";
        return 0;
    }
    if (s_get32 (p + 4) != s_record_crc (seq, p + JOURNAL_RECORD_HDR, len)) {
        *reason = "CRC mismatch";
        return 0;
    }
    return JOURNAL_RECORD_HDR + len;
}

static int s_write_all (int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write (fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

static void s_segment_path (char *out, size_t size, const char *dir, uint64_t first)
{
    snprintf (out, size, "%s/%020" PRIu64 S_SUFFIX, dir, first);
}

static int s_fsync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

static int s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  Lists the first seqs of the segments in dir, sorted. Returns the count or -1.
static int s_list_segments (const char *dir, uint64_t **firsts_p)
{
    DIR *d = opendir (dir);
    if (!d)
        return -1;
    size_t n = 0, cap = 16;
    uint64_t *firsts = malloc (cap * sizeof *firsts);
    struct dirent *e;
    while (firsts && (e = readdir (d))) {
        size_t nl = strlen (e->d_name);
        if (nl != 20 + strlen (S_SUFFIX) || strcmp (e->d_name + 20, S_SUFFIX) != 0)
            continue;
        char *end;
        uint64_t first = strtoull (e->d_name, &end, 10);
        if (end != e->d_name + 20 || first == 0 || n >= S_MAX_SEGMENTS)
            continue;
        if (n == cap) {
            cap *= 2;
            uint64_t *bigger = realloc (firsts, cap * sizeof *firsts);
            if (!bigger) {
                free (firsts);
                firsts = NULL;
                break;
            }
            firsts = bigger;
        }
        firsts[n++] = first;
    }
    closedir (d);
    if (!firsts)
        return -1;
    qsort (firsts, n, sizeof *firsts, s_cmp_u64);
    *firsts_p = firsts;
    return (int) n;
}

static int s_segment_create (journal_t *self, uint64_t first)
{
    char path[S_PATH_MAX + 32];
    s_segment_path (path, sizeof path, self->dir, first);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error ("journal", "cannot create segment %s: %s", path, strerror (errno));
        return -1;
    }
    uint8_t hdr[JOURNAL_HEADER_BYTES];
    memcpy (hdr, S_MAGIC, 8);
    s_put64 (hdr + 8, first);
    if (s_write_all (fd, hdr, sizeof hdr) || fdatasync (fd) || s_fsync_dir (self->dir)) {
        log_error ("journal", "cannot initialise segment %s: %s", path, strerror (errno));
        close (fd);
        return -1;
    }
    if (self->fd >= 0)
        close (self->fd);
    self->fd = fd;
    self->seg_first = first;
    self->seg_bytes = JOURNAL_HEADER_BYTES;
    return 0;
}

//  Deletes the oldest closed segments beyond the retention count; the active segment is
//  never counted, so retain_segments = 1 keeps one full segment of history besides it.
static void s_apply_retention (journal_t *self)
{
    if (self->opts.retain_segments == 0)
        return;
    uint64_t *firsts;
    int n = s_list_segments (self->dir, &firsts);
    if (n < 0)
        return;
    int excess = n - 1 - (int) self->opts.retain_segments;
    for (int i = 0; i < excess; i++) {
        char path[S_PATH_MAX + 32];
        s_segment_path (path, sizeof path, self->dir, firsts[i]);
        struct stat st;
        if (stat (path, &st) == 0)
            self->closed_bytes -= (uint64_t) st.st_size;
        if (unlink (path) == 0)
            log_info ("journal", "retention: removed segment %s", path);
        self->first_seq = firsts[i + 1];
    }
    free (firsts);
}

//  Scans the newest segment, cuts a torn tail, and leaves it open for append.
static int s_recover_newest (journal_t *self, uint64_t first)
{
    char path[S_PATH_MAX + 32];
    s_segment_path (path, sizeof path, self->dir, first);
    int fd = open (path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        log_error ("journal", "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) < 0) {
        close (fd);
        return -1;
    }
    uint64_t size = (uint64_t) st.st_size;
    uint8_t hdr[JOURNAL_HEADER_BYTES];
    if (size < JOURNAL_HEADER_BYTES || pread (fd, hdr, sizeof hdr, 0) != sizeof hdr ||
        memcmp (hdr, S_MAGIC, 8) != 0 || s_get64 (hdr + 8) != first) {
        //  A crash while the segment was being created: it holds no record yet.
        close (fd);
        log_warn ("journal", "segment %s has no valid header (%" PRIu64 " bytes): recreating it",
                  path, size);
        self->torn_bytes += size;
        self->last_seq = self->synced_seq = first - 1;
        return s_segment_create (self, first);
    }
    //  Scan with a chunked buffer; a record never exceeds JOURNAL_RECORD_MAX.
    size_t cap = S_READ_CHUNK + JOURNAL_RECORD_HDR + JOURNAL_RECORD_MAX;
    uint8_t *buf = malloc (cap);
    if (!buf) {
        close (fd);
        return -1;
    }
    uint64_t good = JOURNAL_HEADER_BYTES; //  end of the last whole record
    uint64_t seq = first;                 //  seq the next record must carry
    size_t len = 0, pos = 0;
    uint64_t buf_off = good;
    const char *reason = NULL;
    for (;;) {
        const char *why = NULL;
        bool incomplete;
        size_t rec = s_record_check (buf + pos, len - pos, seq, &why, &incomplete);
        if (rec) {
            pos += rec;
            good = buf_off + pos;
            seq++;
            continue;
        }
        //  Incomplete in the buffer: read more if the file has more. Corrupt: the log ends.
        uint64_t file_left = size - (buf_off + len);
        if (!incomplete || file_left == 0) {
            reason = why;
            break;
        }
        memmove (buf, buf + pos, len - pos);
        buf_off += pos;
        len -= pos;
        pos = 0;
        size_t want = cap - len;
        if (want > file_left)
            want = (size_t) file_left;
        ssize_t n = pread (fd, buf + len, want, (off_t) (buf_off + len));
        if (n <= 0) {
            log_error ("journal", "cannot read %s: %s", path, n < 0 ? strerror (errno) : "EOF");
            free (buf);
            close (fd);
            return -1;
        }
        len += (size_t) n;
    }
    free (buf);
    if (good < size) {
        log_warn ("journal",
                  "segment %s: torn tail at offset %" PRIu64 " (%s): cut %" PRIu64
                  " bytes, recovered through seq %" PRIu64,
                  path, good, reason ? reason : "?", size - good, seq - 1);
        self->torn_bytes += size - good;
        if (ftruncate (fd, (off_t) good) < 0 || fdatasync (fd) < 0) {
            log_error ("journal", "cannot truncate %s: %s", path, strerror (errno));
            close (fd);
            return -1;
        }
    }
    if (lseek (fd, (off_t) good, SEEK_SET) < 0) {
        close (fd);
        return -1;
    }
    self->fd = fd;
    self->seg_first = first;
    self->seg_bytes = good;
    self->last_seq = seq - 1;
    self->synced_seq = seq - 1;
    return 0;
}

//  mkdir -p that tolerates another process creating the same folders at the same moment
//  (the matcher and the settler share data_dir). Folders and segments are the owner's only
//  (0700, 0600): a journal holds every user's orders, names and wallets.
static int s_mkdir_p (const char *dir)
{
    char path[S_PATH_MAX];
    snprintf (path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir (path, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir (path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

journal_t *journal_open (const char *dir, const journal_opts_t *opts)
{
    if (s_mkdir_p (dir)) {
        log_error ("journal", "cannot create folder %s: %s", dir, strerror (errno));
        return NULL;
    }
    journal_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    if (opts)
        self->opts = *opts;
    if (self->opts.segment_bytes == 0)
        self->opts.segment_bytes = JOURNAL_SEGMENT_BYTES;
    self->fd = -1;

    uint64_t *firsts;
    int n = s_list_segments (dir, &firsts);
    if (n < 0) {
        log_error ("journal", "cannot list %s: %s", dir, strerror (errno));
        free (self);
        return NULL;
    }
    int rc;
    if (n == 0) {
        self->first_seq = 1;
        rc = s_segment_create (self, 1);
    }
    else {
        self->first_seq = firsts[0];
        for (int i = 0; i < n - 1; i++) {
            char path[S_PATH_MAX + 32];
            struct stat st;
            s_segment_path (path, sizeof path, dir, firsts[i]);
            if (stat (path, &st) == 0)
                self->closed_bytes += (uint64_t) st.st_size;
        }
        rc = s_recover_newest (self, firsts[n - 1]);
    }
    free (firsts);
    if (rc) {
        journal_destroy (&self);
        return NULL;
    }
    log_info ("journal", "%s: %d segment(s), seqs %" PRIu64 "..%" PRIu64 ", %" PRIu64 " bytes", dir,
              n ? n : 1, self->first_seq, self->last_seq, journal_bytes (self));
    return self;
}

void journal_destroy (journal_t **self_p)
{
    assert (self_p);
    journal_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0) {
        if (self->buf_len)
            journal_commit (self);
        close (self->fd);
    }
    free (self->buf);
    free (self);
    *self_p = NULL;
}

//  After a failed write or fdatasync the kernel may have dropped the dirty pages and a later
//  fdatasync can succeed without them (Linux clears the error once reported), so a journal
//  that failed once fails for good: the owner stops and recovery decides what survived.
static int s_fail (journal_t *self, const char *what)
{
    log_error ("journal",
               "%s of segment %020" PRIu64 " failed: %s; the journal refuses all "
               "further writes",
               what, self->seg_first, strerror (errno));
    self->failed = true;
    return -1;
}

static int s_flush (journal_t *self, bool sync)
{
    if (self->failed)
        return -1;
    if (self->buf_len) {
        if (s_write_all (self->fd, self->buf, self->buf_len))
            return s_fail (self, "write");
        self->seg_bytes += self->buf_len;
        self->buf_len = 0;
    }
    if (sync) {
        if (fdatasync (self->fd))
            return s_fail (self, "fdatasync");
        self->fsyncs++;
    }
    self->synced_seq = self->last_seq;
    return 0;
}

int journal_append (journal_t *self, uint64_t seq, const void *data, size_t len)
{
    assert (self);
    assert (seq == self->last_seq + 1);
    assert (len > 0 && len <= JOURNAL_RECORD_MAX);
    if (self->failed)
        return -1;
    size_t need = self->buf_len + JOURNAL_RECORD_HDR + len;
    if (need > self->buf_cap) {
        size_t cap = self->buf_cap ? self->buf_cap : 64 * 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *bigger = realloc (self->buf, cap);
        if (!bigger)
            return -1;
        self->buf = bigger;
        self->buf_cap = cap;
    }
    uint8_t *p = self->buf + self->buf_len;
    s_put32 (p, (uint32_t) len);
    s_put32 (p + 4, s_record_crc (seq, data, len));
    s_put64 (p + 8, seq);
    memcpy (p + JOURNAL_RECORD_HDR, data, len);
    self->buf_len = need;
    self->last_seq = seq;
    if (self->opts.fsync == JOURNAL_FSYNC_ALWAYS)
        return s_flush (self, true);
    return 0;
}

//  Rotates at a commit boundary once the segment is full; the closed segment must be durable
//  whatever the policy, since recovery only ever scans the newest one.
static int s_rotate_if_full (journal_t *self)
{
    if (self->seg_bytes < self->opts.segment_bytes || self->last_seq < self->seg_first)
        return 0;
    if (self->opts.fsync == JOURNAL_FSYNC_NEVER && fdatasync (self->fd))
        return s_fail (self, "fdatasync before rotation");
    self->closed_bytes += self->seg_bytes;
    if (s_segment_create (self, self->last_seq + 1)) {
        self->failed = true;
        return -1;
    }
    s_apply_retention (self);
    return 0;
}

int journal_commit (journal_t *self)
{
    assert (self);
    if (self->failed)
        return -1;
    bool pending = self->synced_seq != self->last_seq || self->buf_len > 0;
    if (pending && s_flush (self, self->opts.fsync != JOURNAL_FSYNC_NEVER))
        return -1;
    //  With fsync=always the records were flushed by journal_append, so rotation is checked
    //  whether or not this commit wrote anything.
    return s_rotate_if_full (self);
}

void journal_frame (uint8_t *hdr, uint64_t seq, size_t len)
{
    assert (len > 0 && len <= JOURNAL_RECORD_MAX);
    s_put32 (hdr, (uint32_t) len);
    s_put32 (hdr + 4, 0);
    s_put64 (hdr + 8, seq);
}

int journal_write (journal_t *self, uint8_t *records, size_t len)
{
    assert (self);
    assert (self->buf_len == 0);
    if (self->failed)
        return -1;
    uint64_t seq = self->last_seq;
    for (size_t off = 0; off < len;) {
        assert (len - off >= JOURNAL_RECORD_HDR);
        uint8_t *p = records + off;
        uint32_t payload = s_get32 (p);
        assert (s_get64 (p + 8) == seq + 1);
        assert (payload <= len - off - JOURNAL_RECORD_HDR);
        s_put32 (p + 4, s_record_crc (++seq, p + JOURNAL_RECORD_HDR, payload));
        off += JOURNAL_RECORD_HDR + payload;
    }
    if (len) {
        if (s_write_all (self->fd, records, len))
            return s_fail (self, "write");
        self->seg_bytes += len;
        self->last_seq = seq;
        if (self->opts.fsync != JOURNAL_FSYNC_NEVER) {
            if (fdatasync (self->fd))
                return s_fail (self, "fdatasync");
            self->fsyncs++;
        }
        self->synced_seq = seq;
    }
    return s_rotate_if_full (self);
}

int journal_truncate (journal_t *self, uint64_t keep_seq)
{
    assert (self->buf_len == 0);
    if (keep_seq >= self->last_seq)
        return 0;
    if (keep_seq + 1 < self->seg_first) {
        log_error ("journal", "cannot cut back to seq %" PRIu64 ": it is before the newest segment",
                   keep_seq);
        return -1;
    }
    //  Find where record keep_seq + 1 starts in the newest segment.
    journal_reader_t *r = journal_reader_new (self->dir, self->seg_first);
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    uint64_t offset = JOURNAL_HEADER_BYTES;
    while (r && journal_reader_position (r) <= keep_seq &&
           journal_reader_next (r, keep_seq, &seq, &data, &len) == 1)
        offset += 16 + len;
    journal_reader_destroy (&r);
    if (ftruncate (self->fd, (off_t) offset) || fdatasync (self->fd) ||
        lseek (self->fd, (off_t) offset, SEEK_SET) < 0)
        return s_fail (self, "truncate");
    log_warn ("journal",
              "cut back from seq %" PRIu64 " to seq %" PRIu64 " (%" PRIu64 " bytes kept "
              "in segment %020" PRIu64 ")",
              self->last_seq, keep_seq, offset, self->seg_first);
    self->seg_bytes = offset;
    self->last_seq = self->synced_seq = keep_seq;
    return 0;
}

uint64_t journal_last_seq (journal_t *self)
{
    return self->last_seq;
}

uint64_t journal_synced_seq (journal_t *self)
{
    return self->synced_seq;
}

uint64_t journal_first_seq (journal_t *self)
{
    return self->first_seq;
}

uint64_t journal_bytes (journal_t *self)
{
    return self->closed_bytes + self->seg_bytes + self->buf_len;
}

uint64_t journal_fsyncs (journal_t *self)
{
    return self->fsyncs;
}

const char *journal_dir (journal_t *self)
{
    return self->dir;
}

uint64_t journal_torn_bytes (journal_t *self)
{
    return self->torn_bytes;
}

uint64_t journal_dir_first_seq (const char *dir)
{
    uint64_t *firsts;
    int n = s_list_segments (dir, &firsts);
    if (n < 0)
        return 0;
    uint64_t first = n > 0 ? firsts[0] : 0;
    free (firsts);
    return first;
}

//  ---------------------------------------------------------------------------------------
//  Reader

//  Opens the segment that holds seq, or the first one after it. 0, or -1 if there is none.
static int s_reader_open_segment (journal_reader_t *self, uint64_t seq)
{
    uint64_t *firsts;
    int n = s_list_segments (self->dir, &firsts);
    if (n <= 0) {
        if (n == 0)
            free (firsts);
        return -1;
    }
    int pick = 0;
    for (int i = 0; i < n; i++)
        if (firsts[i] <= seq)
            pick = i;
    uint64_t first = firsts[pick];
    free (firsts);
    char path[S_PATH_MAX + 32];
    s_segment_path (path, sizeof path, self->dir, first);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (self->fd >= 0)
        close (self->fd);
    self->fd = fd;
    self->seg_first = first;
    self->offset = JOURNAL_HEADER_BYTES;
    self->buf_len = self->buf_pos = 0;
    if (self->next_seq < first)
        self->next_seq = first; //  older seqs are gone; the caller learns it from the seq
    return 0;
}

journal_reader_t *journal_reader_new (const char *dir, uint64_t from_seq)
{
    journal_reader_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    self->fd = -1;
    self->buf_cap = S_READ_CHUNK;
    self->buf = malloc (self->buf_cap);
    self->next_seq = from_seq ? from_seq : 1;
    uint64_t want = self->next_seq;
    if (!self->buf || s_reader_open_segment (self, want)) {
        journal_reader_destroy (&self);
        return NULL;
    }
    //  Skip to from_seq within the segment.
    self->next_seq = self->seg_first;
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    while (self->next_seq < want) {
        int rc = journal_reader_next (self, want - 1, &seq, &data, &len);
        if (rc <= 0)
            break;
    }
    return self;
}

void journal_reader_destroy (journal_reader_t **self_p)
{
    assert (self_p);
    journal_reader_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    free (self->buf);
    free (self);
    *self_p = NULL;
}

uint64_t journal_reader_position (journal_reader_t *self)
{
    return self->next_seq;
}

//  Reads more of the current segment into the buffer. Returns bytes read (0 at EOF) or -1.
static ssize_t s_reader_fill (journal_reader_t *self, size_t need)
{
    if (self->buf_pos > 0) {
        memmove (self->buf, self->buf + self->buf_pos, self->buf_len - self->buf_pos);
        self->offset += self->buf_pos;
        self->buf_len -= self->buf_pos;
        self->buf_pos = 0;
    }
    if (need > self->buf_cap) {
        uint8_t *bigger = realloc (self->buf, need);
        if (!bigger)
            return -1;
        self->buf = bigger;
        self->buf_cap = need;
    }
    ssize_t n = pread (self->fd, self->buf + self->buf_len, self->buf_cap - self->buf_len,
                       (off_t) (self->offset + self->buf_len));
    if (n > 0)
        self->buf_len += (size_t) n;
    return n;
}

int journal_reader_next (journal_reader_t *self, uint64_t limit_seq, uint64_t *seq,
                         const uint8_t **data, size_t *len)
{
    if (self->next_seq > limit_seq)
        return 0;
    for (;;) {
        const uint8_t *p = self->buf + self->buf_pos;
        size_t avail = self->buf_len - self->buf_pos;
        const char *why = NULL;
        bool incomplete;
        size_t rec = s_record_check (p, avail, self->next_seq, &why, &incomplete);
        if (rec) {
            *seq = self->next_seq++;
            *len = s_get32 (p);
            *data = p + JOURNAL_RECORD_HDR;
            self->buf_pos += rec;
            return 1;
        }
        size_t need =
            avail >= JOURNAL_RECORD_HDR ? JOURNAL_RECORD_HDR + s_get32 (p) : JOURNAL_RECORD_HDR;
        if (incomplete) {
            ssize_t n = s_reader_fill (self, need);
            if (n < 0) {
                log_error ("journal", "reader: cannot read segment %020" PRIu64 ": %s",
                           self->seg_first, strerror (errno));
                return -1;
            }
            if (n > 0)
                continue;
        }
        if (incomplete) {
            //  End of this segment's data: the record may live in the next segment, or not
            //  be written yet (a partial record at the end is a write in progress).
            char path[S_PATH_MAX + 32];
            s_segment_path (path, sizeof path, self->dir, self->next_seq);
            if (avail == 0 && self->seg_first != self->next_seq && access (path, F_OK) == 0) {
                if (s_reader_open_segment (self, self->next_seq))
                    return -1;
                continue;
            }
            return 0;
        }
        log_error ("journal",
                   "reader: corrupt record for seq %" PRIu64 " in segment %020" PRIu64 " (%s)",
                   self->next_seq, self->seg_first, why);
        return -1;
    }
}
