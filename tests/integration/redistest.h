/*  redistest — a throwaway real Redis for tests: redis-server on a free loopback port, no
    persistence (--save '' --appendonly no), in a temporary folder removed again at the end.

    The server is the test process's child, started with its arguments as they are (no
    shell). Its pid is also written to <dir>/redis.pid for the guardian: as in pgtest, a tiny
    shell in its own session holds one end of a pipe only the test process has, and when that
    process dies however it dies (a failed assertion, a crash, a ctest timeout) the pipe closes
    and the guardian kills the server by that pid and removes the folder. No server outlives
    its test.

    Readiness is a PING answered PONG, polled with a deadline; stopping is a kill by pid and a
    wait for the exit. A restart uses the same port and starts empty, as a Redis without
    persistence does after a crash.
*/
#ifndef MCE_REDISTEST_H
#define MCE_REDISTEST_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

#define REDISTEST_DEADLINE_MS 10000 //  for the server to answer PING after it is started

typedef struct {
    char dir[64]; //  the folder: redis.log, redis.pid
    char url[64]; //  "redis://127.0.0.1:N", for redis.url
    int port;
    pid_t pid;      //  the server, 0 when stopped
    pid_t guardian; //  see above
    int guard_fd;   //  the test's end of the guardian's pipe
} redistest_t;

//  Makes the folder, starts the guardian and the server on a free port, waits until it answers.
//  0, or -1 with the reason (and the end of its log) on stderr.
int redistest_start (redistest_t *rt);
//  Stops the server if running and removes the folder. Idempotent.
void redistest_stop (redistest_t *rt);

//  Kills the server with SIGKILL (an outage: its data is gone) and waits for it to exit. 0 or -1.
int redistest_stop_server (redistest_t *rt);
//  Starts it again, empty, on the same port, and waits until it answers. 0 or -1.
int redistest_restart (redistest_t *rt);

//  A connection to the server for looking at it (within the deadline). The caller frees it
//  with redisFree. NULL when it cannot connect (reason on stderr).
redisContext *redistest_connect (const redistest_t *rt);

#endif
