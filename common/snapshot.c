/*  snapshot — see snapshot.h.  */
#include "snapshot.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAGIC  "MCESNAP1"
#define S_HEADER 40 //  magic 8 | seq 8 | clock 8 | length 8 | crc 4 | pad 4

struct _snapshot_writer_t {
    char dir[4096];
    int keep;
    pid_t child; //  0 when none
    int hash_fd; //  the child writes its state hash here, -1 when none
    uint64_t child_seq;
    int64_t child_started;
    uint64_t written;
    uint64_t last_seq, last_hash; //  of the newest snapshot written
};

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

static void s_path (char *out, size_t size, const char *dir, uint64_t seq)
{
    snprintf (out, size, "%s/snapshot-%020" PRIu64 ".snap", dir, seq);
}

int snapshot_write (const char *dir, int keep, uint64_t seq, int64_t clock, const uint8_t *body,
                    size_t size)
{
    char path[4200], tmp[4240];
    s_path (path, sizeof path, dir, seq);
    //  The pid keeps a writer that outlived a killed owner apart from the next owner's.
    snprintf (tmp, sizeof tmp, "%s.%d.tmp", path, (int) getpid ());
    uint8_t header[S_HEADER] = {0};
    uint64_t len = size;
    uint32_t crc = crc32c (0, body, size);
    memcpy (header, S_MAGIC, 8);
    memcpy (header + 8, &seq, 8);
    memcpy (header + 16, &clock, 8);
    memcpy (header + 24, &len, 8);
    memcpy (header + 32, &crc, 4);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && dfd >= 0 && s_write_all (fd, header, sizeof header) == 0 &&
              s_write_all (fd, body, size) == 0 && fsync (fd) == 0 && rename (tmp, path) == 0 &&
              fsync (dfd) == 0;
    int saved = errno;
    if (fd >= 0)
        close (fd);
    if (dfd >= 0)
        close (dfd);
    if (!ok) {
        unlink (tmp);
        errno = saved;
        return -1;
    }
    //  Keep the newest `keep`.
    uint64_t seqs[64];
    int n = s_list (dir, seqs, 64);
    for (int i = keep > 0 ? keep : 1; i < n; i++) {
        s_path (path, sizeof path, dir, seqs[i]);
        unlink (path);
    }
    return 0;
}

//  In the child: nothing but the state, the file and write(2) to stderr; never returns.
static void s_child (snapshot_writer_t *self, int hash_fd, uint64_t seq, int64_t clock,
                     snapshot_serialise_fn *serialise, void *state)
{
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    //  The child shares every descriptor of the parent, its listening sockets among them. Were
    //  the parent killed while the child still writes, the ports would stay bound until the
    //  child is gone too, and a restart at once would find them in use. It needs none of them:
    //  only the pipe for the hash, and stderr for a failure. The parent waits for the byte
    //  that says they are closed (snapshot_writer_start).
    if (hash_fd > STDERR_FILENO + 1)
        close_range (STDERR_FILENO + 1, (unsigned) hash_fd - 1, 0);
    close_range ((unsigned) hash_fd + 1, ~0u, 0);
    if (write (hash_fd, "", 1) != 1)
        _exit (4);
    size_t size = 0;
    uint64_t hash = 0;
    uint8_t *body = serialise (state, &size, &hash);
    int status = 0;
    const char *what = NULL;
    if (!body)
        status = 2, what = "out of memory";
    else if (snapshot_write (self->dir, self->keep, seq, clock, body, size))
        status = 3, what = strerror (errno);
    if (!what && write (hash_fd, &hash, sizeof hash) != sizeof hash)
        status = 4;
    if (what) {
        char line[512];
        int n = snprintf (line, sizeof line,
                          "snapshot: cannot write the snapshot at seq %" PRIu64 " in %s: %s\n", seq,
                          self->dir, what);
        if (n > 0 && write (STDERR_FILENO, line, (size_t) n) < 0)
            status = 4;
    }
    _exit (status);
}

//  Logs how the child ended (r is what waitpid returned for it).
static void s_reaped (snapshot_writer_t *self, pid_t r, int status)
{
    double ms = (double) (clock_mono_ns () - self->child_started) / 1e6;
    char path[4200];
    s_path (path, sizeof path, self->dir, self->child_seq);
    uint64_t hash = 0;
    if (r == self->child && WIFEXITED (status) && WEXITSTATUS (status) == 0) {
        self->written++;
        self->last_seq = self->child_seq;
        self->last_hash = 0;
        if (read (self->hash_fd, &hash, sizeof hash) == sizeof hash) {
            self->last_hash = hash;
            log_info ("snapshot", "wrote %s in %.1f ms; state hash %016" PRIx64, path, ms, hash);
        }
        else
            log_info ("snapshot", "wrote %s in %.1f ms", path, ms);
    }
    else if (r == self->child && WIFSIGNALED (status))
        log_error ("snapshot", "the writer of %s was killed by signal %d after %.1f ms", path,
                   WTERMSIG (status), ms);
    else if (r == self->child)
        log_error ("snapshot", "the writer of %s failed (status %d) after %.1f ms", path,
                   WEXITSTATUS (status), ms);
    else
        log_error ("snapshot", "lost the writer of %s: %s", path, strerror (errno));
    self->child = 0;
    close (self->hash_fd);
    self->hash_fd = -1;
}

snapshot_writer_t *snapshot_writer_new (const char *dir, int keep)
{
    snapshot_writer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    self->keep = keep > 0 ? keep : 1;
    self->hash_fd = -1;
    DIR *d = opendir (dir);
    struct dirent *e;
    while (d && (e = readdir (d))) {
        size_t n = strlen (e->d_name);
        if (strncmp (e->d_name, "snapshot-", 9) == 0 && n > 4 &&
            strcmp (e->d_name + n - 4, ".tmp") == 0) {
            char path[4400];
            snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink (path) == 0)
                log_info ("snapshot", "removed %s, left by a writer that did not finish", path);
        }
    }
    if (d)
        closedir (d);
    return self;
}

void snapshot_writer_wait (snapshot_writer_t *self)
{
    if (!self->child)
        return;
    int status;
    pid_t r;
    while ((r = waitpid (self->child, &status, 0)) < 0 && errno == EINTR)
        ;
    s_reaped (self, r, status);
}

void snapshot_writer_destroy (snapshot_writer_t **self_p)
{
    snapshot_writer_t *self = *self_p;
    if (!self)
        return;
    snapshot_writer_wait (self);
    free (self);
    *self_p = NULL;
}

int snapshot_writer_start (snapshot_writer_t *self, uint64_t seq, int64_t clock,
                           snapshot_serialise_fn *serialise, void *state)
{
    if (snapshot_writer_busy (self))
        return 1;
    fflush (NULL); //  so that the child's copy of stdio buffers is empty
    int64_t t0 = clock_mono_ns ();
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC)) {
        log_error ("snapshot", "cannot make a pipe for the writer of seq %" PRIu64 ": %s", seq,
                   strerror (errno));
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        log_error ("snapshot", "cannot fork the writer of seq %" PRIu64 ": %s", seq,
                   strerror (errno));
        close (fds[0]);
        close (fds[1]);
        return -1;
    }
    if (pid == 0)
        s_child (self, fds[1], seq, clock, serialise, state);
    close (fds[1]);
    //  Until the child has closed the descriptors it inherited, a kill of this process would
    //  leave its ports bound by the child (s_child): wait for that (microseconds; EOF if the
    //  child died first).
    char closed;
    while (read (fds[0], &closed, 1) < 0 && errno == EINTR)
        ;
    self->hash_fd = fds[0];
    self->child = pid;
    self->child_seq = seq;
    self->child_started = t0;
    log_info ("snapshot",
              "writing the snapshot at seq %" PRIu64 " in process %d (fork took %.1f ms)", seq,
              (int) pid, (double) (clock_mono_ns () - t0) / 1e6);
    return 0;
}

bool snapshot_writer_busy (snapshot_writer_t *self)
{
    if (!self->child)
        return false;
    int status;
    pid_t r = waitpid (self->child, &status, WNOHANG);
    if (r == 0)
        return true;
    s_reaped (self, r, status);
    return false;
}

uint64_t snapshot_writer_written (snapshot_writer_t *self)
{
    return self->written;
}

uint64_t snapshot_writer_last (snapshot_writer_t *self, uint64_t *hash)
{
    *hash = self->last_hash;
    return self->last_seq;
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
        s_path (path, sizeof path, dir, seqs[i]);
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
