/*  test_journal — the journal keeps every synced record, never returns a partial one, and
    keeps seqs gap-free, whatever happens to the process or the file's tail.
*/
#include "journal.h"
#include "snapshot.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  Every record's payload is a function of its seq, so any record can be checked alone.
static size_t s_payload (uint64_t seq, uint8_t *buf)
{
    size_t len = 1 + (size_t) (seq * 7919 % 300);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t) (seq * 31 + i);
    return len;
}

static void s_tmpdir (char *buf, size_t size)
{
    snprintf (buf, size, "/tmp/mce-test-journal-XXXXXX");
    cr_assert_not_null (mkdtemp (buf));
}

static void s_rmdir (const char *dir)
{
    zdir_t *d = zdir_new (dir, NULL);
    if (d) {
        zdir_remove (d, true);
        zdir_destroy (&d);
    }
}

static void s_append_range (journal_t *j, uint64_t from, uint64_t to)
{
    uint8_t buf[512];
    for (uint64_t seq = from; seq <= to; seq++)
        cr_assert_eq (journal_append (j, seq, buf, s_payload (seq, buf)), 0);
    cr_assert_eq (journal_commit (j), 0);
}

//  Reads everything from seq 1 and checks every payload; returns the last seq read.
static uint64_t s_verify_all (const char *dir, uint64_t limit)
{
    journal_reader_t *r = journal_reader_new (dir, 1);
    cr_assert_not_null (r);
    uint64_t seq, expect = 1;
    const uint8_t *data;
    size_t len;
    uint8_t want[512];
    while (journal_reader_next (r, limit, &seq, &data, &len) == 1) {
        cr_assert_eq (seq, expect, "seq %lu where %lu was due", (unsigned long) seq,
                      (unsigned long) expect);
        size_t wlen = s_payload (seq, want);
        cr_assert_eq (len, wlen);
        cr_assert_eq (memcmp (data, want, len), 0, "payload of seq %lu differs",
                      (unsigned long) seq);
        expect++;
    }
    journal_reader_destroy (&r);
    return expect - 1;
}

Test (journal, appends_commits_and_reads_back)
{
    char dir[64];
    s_tmpdir (dir, sizeof dir);
    journal_t *j = journal_open (dir, NULL);
    cr_assert_not_null (j);
    cr_assert_eq (journal_last_seq (j), 0);
    s_append_range (j, 1, 1000);
    cr_assert_eq (journal_synced_seq (j), 1000);
    cr_assert_eq (journal_fsyncs (j), 1, "one commit, one fdatasync");
    journal_destroy (&j);
    cr_assert_null (j);

    j = journal_open (dir, NULL);
    cr_assert_eq (journal_last_seq (j), 1000);
    cr_assert_eq (journal_torn_bytes (j), 0);
    s_append_range (j, 1001, 1500);
    journal_destroy (&j);
    cr_assert_eq (s_verify_all (dir, UINT64_MAX), 1500);

    //  A reader can start anywhere.
    journal_reader_t *r = journal_reader_new (dir, 777);
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    cr_assert_eq (journal_reader_next (r, UINT64_MAX, &seq, &data, &len), 1);
    cr_assert_eq (seq, 777);
    //  ...and never goes past the limit it is given.
    cr_assert_eq (journal_reader_next (r, 777, &seq, &data, &len), 0);
    journal_reader_destroy (&r);
    s_rmdir (dir);
}

Test (journal, rotates_segments_and_applies_retention)
{
    char dir[64];
    s_tmpdir (dir, sizeof dir);
    journal_opts_t opts = {.fsync = JOURNAL_FSYNC_NEVER, .segment_bytes = 16 * 1024};
    journal_t *j = journal_open (dir, &opts);
    for (uint64_t seq = 1; seq <= 3000; seq += 100)
        s_append_range (j, seq, seq + 99);
    journal_destroy (&j);
    cr_assert_eq (s_verify_all (dir, UINT64_MAX), 3000, "the reader crosses segments");

    j = journal_open (dir, &opts);
    cr_assert_eq (journal_last_seq (j), 3000);
    journal_destroy (&j);

    opts.retain_segments = 3;
    j = journal_open (dir, &opts);
    s_append_range (j, 3001, 3100); //  rotation applies retention
    uint64_t first = journal_first_seq (j);
    cr_assert_gt (first, 1);
    cr_assert_eq (journal_dir_first_seq (dir), first);
    journal_destroy (&j);
    journal_reader_t *r = journal_reader_new (dir, 1);
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    cr_assert_eq (journal_reader_next (r, UINT64_MAX, &seq, &data, &len), 1);
    cr_assert_eq (seq, first, "a reader asked for a removed seq starts at the oldest kept");
    journal_reader_destroy (&r);
    s_rmdir (dir);
}

static void s_copy_truncated (const char *src, const char *dst, off_t size)
{
    char cmd[512];
    snprintf (cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", dst, src, dst);
    cr_assert_eq (system (cmd), 0);
    char seg[256];
    snprintf (seg, sizeof seg, "%s/%020d.mjl", dst, 1);
    cr_assert_eq (truncate (seg, size), 0);
}

Test (journal, recovery_cuts_a_torn_tail_at_any_offset)
{
    char dir[64], copy[80];
    s_tmpdir (dir, sizeof dir);
    snprintf (copy, sizeof copy, "%s-copy", dir);
    journal_t *j = journal_open (dir, NULL);
    s_append_range (j, 1, 400);
    journal_destroy (&j);
    char seg[256];
    snprintf (seg, sizeof seg, "%s/%020d.mjl", dir, 1);
    struct stat st;
    cr_assert_eq (stat (seg, &st), 0);

    //  Where each record ends, to know how many whole ones a cut leaves.
    uint64_t ends[401];
    ends[0] = JOURNAL_HEADER_BYTES;
    uint8_t buf[512];
    for (uint64_t seq = 1; seq <= 400; seq++)
        ends[seq] = ends[seq - 1] + 16 + s_payload (seq, buf);
    cr_assert_eq ((uint64_t) st.st_size, ends[400]);

    srand (42);
    for (int round = 0; round < 200; round++) {
        off_t cut = round == 0 ? 0 : rand () % st.st_size;
        s_copy_truncated (dir, copy, cut);
        uint64_t whole = 0;
        while (whole < 400 && ends[whole + 1] <= (uint64_t) cut)
            whole++;
        j = journal_open (copy, NULL);
        cr_assert_not_null (j, "cut at %ld", (long) cut);
        cr_assert_eq (journal_last_seq (j), whole, "cut at %ld: %lu whole records", (long) cut,
                      (unsigned long) whole);
        if ((uint64_t) cut > ends[whole] && cut >= JOURNAL_HEADER_BYTES)
            cr_assert_gt (journal_torn_bytes (j), 0, "the cut is reported");
        //  Appending goes on from the last whole record.
        s_append_range (j, whole + 1, whole + 3);
        journal_destroy (&j);
        cr_assert_eq (s_verify_all (copy, UINT64_MAX), whole + 3);
    }

    //  Garbage after the last record is a torn write too.
    s_copy_truncated (dir, copy, st.st_size);
    snprintf (seg, sizeof seg, "%s/%020d.mjl", copy, 1);
    FILE *f = fopen (seg, "ab");
    for (int i = 0; i < 100; i++)
        fputc (rand () & 0xff, f);
    fclose (f);
    j = journal_open (copy, NULL);
    cr_assert_eq (journal_last_seq (j), 400);
    cr_assert_eq (journal_torn_bytes (j), 100);
    journal_destroy (&j);
    s_rmdir (dir);
    s_rmdir (copy);
}

//  The child appends batches forever and reports each synced seq on the pipe.
static void s_writer_child (const char *dir, int report_fd, unsigned seed)
{
    journal_t *j = journal_open (dir, NULL);
    if (!j)
        _exit (3);
    srand (seed);
    uint8_t buf[512];
    uint64_t seq = journal_last_seq (j);
    for (;;) {
        int batch = 1 + rand () % 64;
        for (int i = 0; i < batch; i++) {
            seq++;
            if (journal_append (j, seq, buf, s_payload (seq, buf)))
                _exit (4);
        }
        if (journal_commit (j))
            _exit (5);
        uint64_t synced = journal_synced_seq (j);
        if (write (report_fd, &synced, sizeof synced) != sizeof synced)
            _exit (6);
    }
}

Test (journal, sigkill_mid_batch_loses_nothing_synced, .timeout = 300)
{
    char dir[64];
    s_tmpdir (dir, sizeof dir);
    srand (7);
    uint64_t max_synced = 0;
    for (int round = 0; round < 50; round++) {
        int fds[2];
        cr_assert_eq (pipe (fds), 0);
        pid_t pid = fork ();
        cr_assert_geq (pid, 0);
        if (pid == 0) {
            close (fds[0]);
            s_writer_child (dir, fds[1], (unsigned) round);
        }
        close (fds[1]);
        //  Let it commit a random number of batches, then kill it wherever it is.
        int commits = 1 + rand () % 40;
        uint64_t synced = 0;
        for (int i = 0; i < commits; i++)
            cr_assert_eq (read (fds[0], &synced, sizeof synced), (ssize_t) sizeof synced,
                          "round %d: the writer died by itself", round);
        kill (pid, SIGKILL);
        int status;
        waitpid (pid, &status, 0);
        //  Drain reports made between our last read and the kill: those were synced too.
        uint64_t later;
        while (read (fds[0], &later, sizeof later) == (ssize_t) sizeof later)
            synced = later;
        close (fds[0]);
        cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
        if (synced > max_synced)
            max_synced = synced;

        journal_t *j = journal_open (dir, NULL);
        cr_assert_not_null (j);
        uint64_t last = journal_last_seq (j);
        journal_destroy (&j);
        cr_assert_geq (last, max_synced, "round %d: synced seq %lu lost (journal ends at %lu)",
                       round, (unsigned long) max_synced, (unsigned long) last);
        cr_assert_eq (s_verify_all (dir, UINT64_MAX), last, "round %d: gap or partial record",
                      round);
    }
    s_rmdir (dir);
}

static int s_segment_count (const char *dir)
{
    zdir_t *d = zdir_new (dir, NULL);
    int n = d ? (int) zdir_count (d) : 0;
    zdir_destroy (&d);
    return n;
}

Test (journal, a_crash_while_creating_a_segment_loses_nothing)
{
    char dir[64], path[128];
    s_tmpdir (dir, sizeof dir);
    journal_t *j = journal_open (dir, NULL);
    s_append_range (j, 1, 50);
    journal_destroy (&j);
    //  Rotation created the next segment's file and died before writing its header.
    snprintf (path, sizeof path, "%s/%020d.mjl", dir, 51);
    fclose (fopen (path, "w"));
    j = journal_open (dir, NULL);
    cr_assert_not_null (j);
    cr_assert_eq (journal_last_seq (j), 50, "the seqs of the older segment still count");
    s_append_range (j, 51, 55);
    journal_destroy (&j);
    j = journal_open (dir, NULL);
    cr_assert_eq (journal_last_seq (j), 55);
    journal_destroy (&j);
    cr_assert_eq (s_verify_all (dir, UINT64_MAX), 55);
    s_rmdir (dir);
}

Test (journal, corruption_deep_in_a_large_segment_cuts_there, .timeout = 120)
{
    char dir[64], path[128];
    s_tmpdir (dir, sizeof dir);
    journal_opts_t opts = {.fsync = JOURNAL_FSYNC_NEVER, .segment_bytes = 1u << 30};
    journal_t *j = journal_open (dir, &opts);
    for (uint64_t seq = 1; seq <= 150000; seq += 10000)
        s_append_range (j, seq, seq + 9999); //  about 24 MB: more than one read chunk
    journal_destroy (&j);
    //  Flip one byte in the payload of record 101.
    uint8_t buf[512];
    long off = JOURNAL_HEADER_BYTES;
    for (uint64_t seq = 1; seq < 101; seq++)
        off += 16 + (long) s_payload (seq, buf);
    snprintf (path, sizeof path, "%s/%020d.mjl", dir, 1);
    FILE *f = fopen (path, "r+b");
    fseek (f, off + 16, SEEK_SET);
    int c = fgetc (f);
    fseek (f, off + 16, SEEK_SET);
    fputc (c ^ 0x5a, f);
    fclose (f);
    j = journal_open (dir, &opts);
    cr_assert_not_null (j, "a bad byte must not keep the journal from opening");
    cr_assert_eq (journal_last_seq (j), 100);
    cr_assert_gt (journal_torn_bytes (j), 20u << 20);
    journal_destroy (&j);
    s_rmdir (dir);
}

Test (journal, fsync_always_rotates_and_retains_like_batch)
{
    char dir[64];
    s_tmpdir (dir, sizeof dir);
    journal_opts_t opts = {.fsync = JOURNAL_FSYNC_ALWAYS, .segment_bytes = 4096};
    journal_t *j = journal_open (dir, &opts);
    for (uint64_t seq = 1; seq <= 200; seq += 10)
        s_append_range (j, seq, seq + 9);
    cr_assert_eq (journal_fsyncs (j) >= 200, true, "one fdatasync per record");
    journal_destroy (&j);
    cr_assert_gt (s_segment_count (dir), 3, "fsync=always rotates too");
    cr_assert_eq (s_verify_all (dir, UINT64_MAX), 200);
    s_rmdir (dir);
}

Test (journal, retention_never_removes_the_newest_records)
{
    char dir[64];
    s_tmpdir (dir, sizeof dir);
    journal_opts_t opts = {
        .fsync = JOURNAL_FSYNC_NEVER, .segment_bytes = 4096, .retain_segments = 1};
    journal_t *j = journal_open (dir, &opts);
    for (uint64_t seq = 1; seq <= 300; seq += 30)
        s_append_range (j, seq, seq + 29);
    uint64_t first = journal_first_seq (j);
    journal_destroy (&j);
    cr_assert_eq (s_segment_count (dir), 2, "one closed segment kept besides the active one");
    cr_assert_gt (first, 1);
    journal_reader_t *r = journal_reader_new (dir, first);
    uint64_t seq, count = 0, last = 0;
    const uint8_t *data;
    size_t len;
    while (journal_reader_next (r, UINT64_MAX, &seq, &data, &len) == 1) {
        count++;
        last = seq;
    }
    journal_reader_destroy (&r);
    cr_assert_eq (last, 300, "the newest record is readable");
    cr_assert_eq (count, 300 - first + 1, "and everything since the oldest kept seq");
    s_rmdir (dir);
}

//  A journal holds every user's orders and wallets: its folders (parents created with it
//  too) and its segments and snapshots are the owner's only, whatever the umask allows.
Test (journal, folders_segments_and_snapshots_are_the_owners_only)
{
    char dir[64], nested[128], path[512];
    s_tmpdir (dir, sizeof dir);
    snprintf (nested, sizeof nested, "%s/data/matcher", dir);
    mode_t umask_was = umask (022);
    journal_t *j = journal_open (nested, NULL);
    cr_assert_not_null (j);
    s_append_range (j, 1, 10);
    journal_destroy (&j);
    cr_assert_eq (snapshot_write (nested, 2, 10, 0, (const uint8_t *) "state", 5), 0);
    umask (umask_was);

    struct stat st;
    snprintf (path, sizeof path, "%s/data", dir);
    cr_assert_eq (stat (path, &st), 0);
    cr_assert_eq (st.st_mode & 0777, 0700, "%s: %o", path, st.st_mode & 0777);
    cr_assert_eq (stat (nested, &st), 0);
    cr_assert_eq (st.st_mode & 0777, 0700, "%s: %o", nested, st.st_mode & 0777);
    DIR *d = opendir (nested);
    cr_assert_not_null (d);
    int files = 0;
    for (struct dirent *e; (e = readdir (d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf (path, sizeof path, "%s/%s", nested, e->d_name);
        cr_assert_eq (stat (path, &st), 0);
        cr_assert_eq (st.st_mode & 0777, 0600, "%s: %o", path, st.st_mode & 0777);
        files++;
    }
    closedir (d);
    cr_assert_geq (files, 2, "a segment and a snapshot");
    s_rmdir (dir);
}
