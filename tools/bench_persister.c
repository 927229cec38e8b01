/*  mce-bench-persister — how fast the persister writes matcher events into Postgres.

    It reads the first N events of a matcher journal (make one with mce-matcher and
    mce-loadgen --target matcher), then, for each run, creates an empty database on the given
    server, lets pgstore apply its migrations, and applies the events in batches exactly as
    mce-persister does (pgstore_apply: one transaction per batch with the offset). It reports
    events/s per run and their median. The events are decoded before the clock starts: what is
    measured is the write path (folding a batch, COPY and statements, commit), which is where
    the persister spends its time; the bus delivers events far faster.

    Prints a table, or with --json one JSON object on the last line. A benchmark, not a test:
    it exits 0 unless it cannot run at all.
*/
#include "bus_pub.h"
#include "clock.h"
#include "journal.h"
#include "log.h"
#include "persister_server.h"
#include "pg.h"
#include "pgstore.h"
#include "proto.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DB "mce_bench_persister"

static void s_usage (FILE *f)
{
    fprintf (f,
             "Usage: mce-bench-persister --journal DIR --postgres CONNINFO [options]\n"
             "\n"
             "Applies the events of a matcher journal to an empty database, batch by batch as\n"
             "mce-persister does, and reports events per second.\n"
             "\n"
             "  --journal DIR       a matcher journal folder (<data_dir>/matcher)\n"
             "  --postgres CONNINFO a key=value conninfo of a server; the database " S_DB "\n"
             "                      is dropped and created on it for each run\n"
             "  --events N          events to apply (default 1000000, or all the journal has)\n"
             "  --batch N           events per transaction (default %d, as mce-persister)\n"
             "  --runs N            runs (default 3); the median is reported\n"
             "  --json              one JSON object on the last line\n"
             "  -h, --help          this text\n"
             "\n"
             "Example:\n"
             "  mce-matcher & mce-loadgen --target matcher --orders 300000\n"
             "  mce-bench-persister --journal data/matcher \\\n"
             "      --postgres 'host=127.0.0.1 port=5432 user=postgres'\n",
             PERSISTER_BATCH_MAX);
}

//  Reads up to max events from the journal into a new array. The count, or -1.
static long s_load (const char *dir, long max, proto_msg_t **out)
{
    journal_reader_t *reader = journal_reader_new (dir, 1);
    if (!reader)
        return -1;
    proto_msg_t *events = calloc ((size_t) max, sizeof *events);
    long n = 0;
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    while (events && n < max && journal_reader_next (reader, UINT64_MAX, &seq, &data, &len) == 1) {
        const char *topic;
        size_t topic_len;
        const uint8_t *event;
        size_t event_len;
        char err[160];
        if (bus_record_split (data, len, &topic, &topic_len, &event, &event_len) ||
            proto_decode (event, event_len, &events[n], err, sizeof err)) {
            fprintf (stderr, "mce-bench-persister: record %llu does not decode\n",
                     (unsigned long long) seq);
            n = -1;
            break;
        }
        n++;
    }
    journal_reader_destroy (&reader);
    if (n <= 0)
        free (events);
    else
        *out = events;
    return events ? n : -1;
}

//  A fresh database on the server. 0 or -1.
static int s_fresh_db (const char *server)
{
    char err[PG_ERROR_MAX];
    char conninfo[1200];
    snprintf (conninfo, sizeof conninfo, "%s dbname=postgres", server);
    pg_t *pg = pg_connect (conninfo, 0, err, sizeof err);
    if (!pg) {
        fprintf (stderr, "mce-bench-persister: %s\n", err);
        return -1;
    }
    int rc = pg_run (pg, "DROP DATABASE IF EXISTS " S_DB) || pg_run (pg, "CREATE DATABASE " S_DB);
    if (rc)
        fprintf (stderr, "mce-bench-persister: %s\n", pg_error (pg));
    pg_destroy (&pg);
    return rc ? -1 : 0;
}

//  One run: events/s, or -1.
static double s_run (const char *server, const proto_msg_t *events, long count, long batch)
{
    if (s_fresh_db (server))
        return -1;
    char conninfo[1200], err[512];
    snprintf (conninfo, sizeof conninfo, "%s dbname=" S_DB, server);
    pgstore_t *store = pgstore_new (conninfo, err, sizeof err);
    if (!store) {
        fprintf (stderr, "mce-bench-persister: %s\n", err);
        return -1;
    }
    int64_t start = clock_mono_ns ();
    for (long first = 0; first < count; first += batch) {
        long n = count - first < batch ? count - first : batch;
        if (pgstore_apply (store, "m", events + first, (size_t) n)) {
            fprintf (stderr, "mce-bench-persister: %s\n", pgstore_error (store));
            pgstore_destroy (&store);
            return -1;
        }
    }
    double seconds = (double) (clock_mono_ns () - start) / 1e9;
    pgstore_destroy (&store);
    return (double) count / seconds;
}

static int s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int main (int argc, char *argv[])
{
    const char *journal = NULL, *server = NULL;
    long max = 1000000, batch = PERSISTER_BATCH_MAX, runs = 3;
    bool json = false;
    static const struct option opts[] = {
        {"journal", required_argument, NULL, 'j'}, {"postgres", required_argument, NULL, 'p'},
        {"events", required_argument, NULL, 'e'},  {"batch", required_argument, NULL, 'b'},
        {"runs", required_argument, NULL, 'r'},    {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
            case 'j':
                journal = optarg;
                break;
            case 'p':
                server = optarg;
                break;
            case 'e':
                max = atol (optarg);
                break;
            case 'b':
                batch = atol (optarg);
                break;
            case 'r':
                runs = atol (optarg);
                break;
            case 'J':
                json = true;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            default:
                s_usage (stderr);
                return 2;
        }
    }
    if (!journal || !server || max < 1 || batch < 1 || runs < 1 || runs > 99) {
        s_usage (stderr);
        return 2;
    }
    log_set_level (MCE_LOG_WARN);
    proto_msg_t *events = NULL;
    long count = s_load (journal, max, &events);
    if (count <= 0) {
        fprintf (stderr, "mce-bench-persister: no events in %s\n", journal);
        return 1;
    }
    double rates[99];
    for (long r = 0; r < runs; r++) {
        rates[r] = s_run (server, events, count, batch);
        if (rates[r] < 0) {
            free (events);
            return 1;
        }
        if (!json)
            printf ("run %ld: %ld events in batches of %ld: %.0f events/s\n", r + 1, count, batch,
                    rates[r]);
    }
    double sorted[99];
    memcpy (sorted, rates, sizeof (double) * (size_t) runs);
    qsort (sorted, (size_t) runs, sizeof (double), s_cmp);
    double median = sorted[runs / 2];
    if (json) {
        printf ("{\"target\":\"persister\",\"events\":%ld,\"batch\":%ld,\"runs\":%ld,"
                "\"events_per_sec_median\":%.0f,\"events_per_sec\":[",
                count, batch, runs, median);
        for (long r = 0; r < runs; r++)
            printf ("%s%.0f", r ? "," : "", rates[r]);
        printf ("]}\n");
    }
    else {
        printf ("\n| events | batch | runs | events/s (median) |\n|---:|---:|---:|---:|\n"
                "| %ld | %ld | %ld | %.0f |\n",
                count, batch, runs, median);
    }
    free (events);
    return 0;
}
