/*  mce-bench-journal — how fast the journal group-commits 128-byte records.

    For each batch size (records per commit) it appends and commits for a fixed time with
    fsync=batch on a real file system, and reports records/s and fdatasyncs/s. Prints a table,
    or with --json one JSON object on the last line. A benchmark, not a test: it always exits 0
    unless it cannot run at all.
*/
#include "clock.h"
#include "journal.h"
#include "log.h"

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_RECORD_BYTES 128

typedef struct {
    int batch;
    uint64_t records, fsyncs;
    double seconds;
} s_result_t;

static int s_run (const char *parent, int batch, double seconds, int fsync, s_result_t *out)
{
    char dir[4200];
    snprintf (dir, sizeof dir, "%s/mce-bench-journal-XXXXXX", parent);
    if (!mkdtemp (dir)) {
        fprintf (stderr, "mce-bench-journal: cannot create a folder in %s\n", parent);
        return -1;
    }
    journal_opts_t opts = {.fsync = fsync};
    journal_t *j = journal_open (dir, &opts);
    if (!j)
        return -1;
    uint8_t record[S_RECORD_BYTES];
    memset (record, 0xab, sizeof record);
    uint64_t seq = 0;
    int64_t start = clock_mono_ns ();
    int64_t end = start + (int64_t) (seconds * 1e9);
    int64_t now = start;
    while (now < end) {
        for (int i = 0; i < batch; i++)
            journal_append (j, ++seq, record, sizeof record);
        if (journal_commit (j))
            return -1;
        now = clock_mono_ns ();
    }
    out->batch = batch;
    out->records = seq;
    out->fsyncs = journal_fsyncs (j);
    out->seconds = (double) (now - start) / 1e9;
    journal_destroy (&j);
    zdir_t *d = zdir_new (dir, NULL);
    if (d) {
        zdir_remove (d, true);
        zdir_destroy (&d);
    }
    return 0;
}

int main (int argc, char **argv)
{
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},      {"seconds", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'}, {"fsync", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    bool json = false;
    double seconds = 2.0;
    const char *dir = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/var/tmp";
    int fsync = JOURNAL_FSYNC_BATCH;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
            case 'j':
                json = true;
                break;
            case 's':
                seconds = atof (optarg);
                if (seconds <= 0) {
                    fprintf (stderr, "mce-bench-journal: --seconds must be positive\n");
                    return 2;
                }
                break;
            case 'd':
                dir = optarg;
                break;
            case 'f':
                fsync = strcmp (optarg, "batch") == 0   ? JOURNAL_FSYNC_BATCH
                        : strcmp (optarg, "never") == 0 ? JOURNAL_FSYNC_NEVER
                                                        : -1;
                if (fsync < 0) {
                    fprintf (stderr, "mce-bench-journal: --fsync must be batch or never\n");
                    return 2;
                }
                break;
            case 'h':
                printf ("Usage: mce-bench-journal [--json] [--seconds S] [--dir DIR] "
                        "[--fsync batch|never]\n\n"
                        "Appends 128-byte records with 1, 16 and 256 records per commit for S\n"
                        "seconds each (default 2) in a temporary folder under DIR (default\n"
                        "$TMPDIR or /var/tmp: put it on the disk the journal will use), and\n"
                        "prints records/s and fdatasyncs/s.\n");
                return 0;
            default:
                fprintf (stderr, "mce-bench-journal: try --help\n");
                return 2;
        }
    }
    log_init ("mce-bench-journal");
    log_set_level (MCE_LOG_WARN);
    static const int batches[] = {1, 16, 256};
    s_result_t results[3];
    for (int i = 0; i < 3; i++)
        if (s_run (dir, batches[i], seconds, fsync, &results[i])) {
            fprintf (stderr, "mce-bench-journal: cannot write a journal in %s\n", dir);
            return 1;
        }
    printf ("%-8s %14s %14s %12s\n", "batch", "records/s", "fsyncs/s", "MB/s");
    for (int i = 0; i < 3; i++)
        printf ("%-8d %14.0f %14.0f %12.1f\n", results[i].batch,
                (double) results[i].records / results[i].seconds,
                (double) results[i].fsyncs / results[i].seconds,
                (double) results[i].records * (S_RECORD_BYTES + 16) / results[i].seconds / 1e6);
    if (json) {
        printf ("{\"record_bytes\":%d,\"fsync\":\"%s\",\"results\":[", S_RECORD_BYTES,
                fsync == JOURNAL_FSYNC_BATCH ? "batch" : "never");
        for (int i = 0; i < 3; i++)
            printf ("%s{\"batch\":%d,\"records_per_sec\":%.0f,\"fsyncs_per_sec\":%.0f}",
                    i ? "," : "", results[i].batch,
                    (double) results[i].records / results[i].seconds,
                    (double) results[i].fsyncs / results[i].seconds);
        printf ("]}\n");
    }
    return 0;
}
