/*  guardian — see guardian.h.  */
#include "guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int guardian_start (const char *who, const char *stop, const char *dir, pid_t *pid, int *fd)
{
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC) != 0) {
        fprintf (stderr, "%s: pipe: %s\n", who, strerror (errno));
        return -1;
    }
    bool keep = getenv ("MCE_KEEP_TEST_DIR") != NULL;
    char script[4096];
    int n =
        snprintf (script, sizeof script, "trap '' INT TERM HUP; cat >/dev/null; %s%s%s%s%s", stop,
                  stop[0] ? "; " : "", keep ? "" : "rm -rf '", keep ? "" : dir, keep ? "" : "'");
    if (n < 0 || (size_t) n >= sizeof script) {
        fprintf (stderr, "%s: the guardian's script is too long\n", who);
        close (fds[0]);
        close (fds[1]);
        return -1;
    }
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_adddup2 (&fa, fds[0], 0);
    posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2 (&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t none;
    sigemptyset (&none);
    posix_spawnattr_setsigmask (&attr, &none);
    //  its own session: a Ctrl-C or a kill of the test's process group must not take it too
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn (pid, argv[0], &fa, &attr, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy (&fa);
    posix_spawnattr_destroy (&attr);
    close (fds[0]);
    if (rc != 0) {
        fprintf (stderr, "%s: cannot start the guardian: %s\n", who, strerror (rc));
        close (fds[1]);
        *pid = 0;
        return -1;
    }
    *fd = fds[1];
    return 0;
}
