/*  guardian — what makes a test's servers die with the test: a tiny shell in its own session
    that holds one end of a pipe whose other end only the test process has. When the test
    process ends however it ends (a failed assertion, a crash, a ctest timeout), the pipe
    closes and the shell runs its cleanup: stop the server, remove its folder. Ending it early
    is closing the pipe. pgtest and redistest use it.
*/
#ifndef MCE_GUARDIAN_H
#define MCE_GUARDIAN_H

#include <sys/types.h>

//  Starts a guardian that, once the pipe closes, runs the shell commands stop (which may be
//  "") and then removes dir (unless MCE_KEEP_TEST_DIR is set, for looking at it afterwards).
//  Sets *pid and *fd (the test's end of the pipe). 0, or -1 with the reason on stderr,
//  prefixed with who.
int guardian_start (const char *who, const char *stop, const char *dir, pid_t *pid, int *fd);

#endif
