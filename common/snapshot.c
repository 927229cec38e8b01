/*  snapshot — see snapshot.h.  */
#include "snapshot.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC  "MCESNAP1"
#define S_HEADER 40 //  magic 8 | seq 8 | clock 8 | length 8 | crc 4 | pad 4

struct _snapshot_writer_t {
    zactor_t *actor;
    char *dir;
};

typedef struct {
    char dir[4096];
    int keep;
} s_args_t;

static int s_cmp_u64_desc (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x > y ? -1 : x < y;
}

//  The seqs of the snapshot files in dir, newest first. Returns the count (max entries).
static int s_list (const char *dir, uint64_t *seqs, int max)
{
    DIR *d = opendir (dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir (d)) && n < max) {
        uint64_t seq;
        char tail[8];
        if (strlen (e->d_name) == 9 + 20 + 5 &&
            sscanf (e->d_name, "snapshot-%20" SCNu64 "%5s", &seq, tail) == 2 &&
            strcmp (tail, ".snap") == 0)
            seqs[n++] = seq;
    }
    closedir (d);
    qsort (seqs, (size_t) n, sizeof *seqs, s_cmp_u64_desc);
    return n;
}

static int s_write_all (int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len) {
        ssize_t n = write (fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        b += n;
        len -= (size_t) n;
    }
    return 0;
}

static void s_write (s_args_t *args, uint64_t seq, int64_t clock, uint8_t *body, size_t size)
{
    int64_t t0 = clock_mono_ns ();
    char path[4200], tmp[4210];
    snprintf (path, sizeof path, "%s/snapshot-%020" PRIu64 ".snap", args->dir, seq);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    uint8_t header[S_HEADER] = {0};
    uint64_t len = size;
    uint32_t crc = crc32c (0, body, size);
    memcpy (header, S_MAGIC, 8);
    memcpy (header + 8, &seq, 8);
    memcpy (header + 16, &clock, 8);
    memcpy (header + 24, &len, 8);
    memcpy (header + 32, &crc, 4);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int dfd = open (args->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && dfd >= 0 && s_write_all (fd, header, sizeof header) == 0 &&
              s_write_all (fd, body, size) == 0 && fsync (fd) == 0 && rename (tmp, path) == 0 &&
              fsync (dfd) == 0;
    if (fd >= 0)
        close (fd);
    if (dfd >= 0)
        close (dfd);
    if (!ok) {
        log_error ("snapshot", "cannot write %s: %s", path, strerror (errno));
        unlink (tmp);
        return;
    }
    log_info ("snapshot", "wrote %s: %zu bytes in %.1f ms", path, size + S_HEADER,
              (double) (clock_mono_ns () - t0) / 1e6);
    //  Keep the newest `keep`.
    uint64_t seqs[64];
    int n = s_list (args->dir, seqs, 64);
    for (int i = args->keep; i < n; i++) {
        snprintf (path, sizeof path, "%s/snapshot-%020" PRIu64 ".snap", args->dir, seqs[i]);
        unlink (path);
    }
}

static void s_actor (zsock_t *pipe, void *arg)
{
    s_args_t *args = arg;
    zsock_signal (pipe, 0);
    while (true) {
        //  "$TERM", or "WRITE" | seq | clock | body pointer | size (8 bytes each)
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;
        char *command = zmsg_popstr (msg);
        bool term = !command || strcmp (command, "$TERM") == 0;
        if (!term && zmsg_size (msg) == 4) {
            uint64_t fields[4];
            for (int i = 0; i < 4; i++) {
                zframe_t *f = zmsg_pop (msg);
                memcpy (&fields[i], zframe_data (f), sizeof fields[i]);
                zframe_destroy (&f);
            }
            uint8_t *body = (uint8_t *) (uintptr_t) fields[2];
            s_write (args, fields[0], (int64_t) fields[1], body, (size_t) fields[3]);
            free (body);
        }
        zstr_free (&command);
        zmsg_destroy (&msg);
        if (term)
            break;
    }
    free (args);
}

snapshot_writer_t *snapshot_writer_new (const char *dir, int keep)
{
    snapshot_writer_t *self = calloc (1, sizeof *self);
    s_args_t *args = calloc (1, sizeof *args);
    if (!self || !args) {
        free (self);
        free (args);
        return NULL;
    }
    snprintf (args->dir, sizeof args->dir, "%s", dir);
    args->keep = keep > 0 ? keep : 1;
    self->dir = strdup (dir);
    self->actor = zactor_new (s_actor, args);
    if (!self->actor) {
        free (args);
        snapshot_writer_destroy (&self);
    }
    return self;
}

void snapshot_writer_destroy (snapshot_writer_t **self_p)
{
    snapshot_writer_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor); //  the actor finishes the write it has, then reads $TERM
    free (self->dir);
    free (self);
    *self_p = NULL;
}

int snapshot_writer_write (snapshot_writer_t *self, uint64_t seq, int64_t clock, uint8_t **body_p,
                           size_t size)
{
    void *body = *body_p;
    *body_p = NULL;
    uint64_t fields[4] = {seq, (uint64_t) clock, (uint64_t) (uintptr_t) body, size};
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "WRITE");
    for (int i = 0; i < 4; i++)
        zmsg_addmem (msg, &fields[i], sizeof fields[i]);
    if (zmsg_send (&msg, self->actor)) {
        zmsg_destroy (&msg);
        free (body);
        return -1;
    }
    return 0;
}

uint8_t *snapshot_load (const char *dir, uint64_t max_seq, uint64_t *seq, int64_t *clock,
                        size_t *size)
{
    uint64_t seqs[64];
    int n = s_list (dir, seqs, 64);
    for (int i = 0; i < n; i++) {
        if (seqs[i] > max_seq)
            continue; //  newer than the journal: not ours to trust
        char path[4200];
        snprintf (path, sizeof path, "%s/snapshot-%020" PRIu64 ".snap", dir, seqs[i]);
        FILE *f = fopen (path, "rb");
        uint8_t header[S_HEADER];
        uint64_t hseq, len;
        int64_t hclock;
        uint32_t crc;
        uint8_t *body = NULL;
        bool ok =
            f && fread (header, 1, S_HEADER, f) == S_HEADER && memcmp (header, S_MAGIC, 8) == 0;
        if (ok) {
            memcpy (&hseq, header + 8, 8);
            memcpy (&hclock, header + 16, 8);
            memcpy (&len, header + 24, 8);
            memcpy (&crc, header + 32, 4);
            struct stat st;
            ok = hseq == seqs[i] && fstat (fileno (f), &st) == 0 &&
                 (uint64_t) st.st_size == len + S_HEADER && (body = malloc (len ? len : 1)) &&
                 fread (body, 1, len, f) == len && crc32c (0, body, len) == crc;
        }
        if (f)
            fclose (f);
        if (ok) {
            *seq = hseq;
            *clock = hclock;
            *size = len;
            return body;
        }
        free (body);
        log_warn ("snapshot", "%s is damaged or incomplete: skipped", path);
    }
    return NULL;
}
