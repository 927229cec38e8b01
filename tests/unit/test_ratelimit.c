/*  test_ratelimit — token buckets: the burst, the refill rate, Retry-After, isolation between
    clients, and a fixed table that forgets idle clients first.  */
#include "ratelimit.h"

#include <criterion/criterion.h>
#include <stdio.h>

#define SEC 1000000000LL

Test (ratelimit, burst_then_refill_at_the_rate)
{
    ratelimit_t *rl = ratelimit_new (10, 5, 64);
    int64_t t = 1000 * SEC;
    for (int i = 0; i < 5; i++)
        cr_assert_eq (ratelimit_take (rl, "u:alice", t), 0, "request %d is within the burst", i);
    cr_assert_eq (ratelimit_take (rl, "u:alice", t), 1, "the sixth waits (Retry-After 1 s)");
    //  10 per second: after 100 ms exactly one more token
    cr_assert_eq (ratelimit_take (rl, "u:alice", t + SEC / 10), 0);
    cr_assert_neq (ratelimit_take (rl, "u:alice", t + SEC / 10), 0);
    //  after a long idle time the bucket is full again, not fuller
    t += 3600 * SEC;
    for (int i = 0; i < 5; i++)
        cr_assert_eq (ratelimit_take (rl, "u:alice", t), 0);
    cr_assert_neq (ratelimit_take (rl, "u:alice", t), 0);
    ratelimit_destroy (&rl);
    cr_assert_null (rl);
}

Test (ratelimit, clients_do_not_share_a_bucket)
{
    ratelimit_t *rl = ratelimit_new (1, 2, 64);
    int64_t t = SEC;
    cr_assert_eq (ratelimit_take (rl, "u:alice", t), 0);
    cr_assert_eq (ratelimit_take (rl, "u:alice", t), 0);
    cr_assert_neq (ratelimit_take (rl, "u:alice", t), 0);
    cr_assert_eq (ratelimit_take (rl, "u:bob", t), 0, "bob has his own bucket");
    cr_assert_eq (ratelimit_take (rl, "a:127.0.0.1", t), 0);
    ratelimit_destroy (&rl);
}

Test (ratelimit, slow_rate_retry_after_counts_whole_seconds)
{
    //  one token per second, burst 1: empty right after the first request
    ratelimit_t *rl = ratelimit_new (1, 1, 16);
    cr_assert_eq (ratelimit_take (rl, "k", 0), 0);
    cr_assert_eq (ratelimit_take (rl, "k", SEC / 2), 1, "half a token missing: 1 s");
    cr_assert_eq (ratelimit_take (rl, "k", SEC), 0, "a second later it may go");
    ratelimit_destroy (&rl);
}

Test (ratelimit, a_crowded_table_forgets_idle_clients_before_busy_ones)
{
    ratelimit_t *rl = ratelimit_new (1, 3, 16);
    char key[32];
    //  twelve clients take a token each at t = 1 s; a second later their buckets are full
    //  again, so forgetting them loses nothing
    for (int i = 0; i < 12; i++) {
        snprintf (key, sizeof key, "a:10.0.0.%d", i);
        cr_assert_eq (ratelimit_take (rl, key, SEC), 0);
    }
    //  alice empties her bucket at t = 1 s: at t = 2.5 s she has 1.5 tokens
    for (int i = 0; i < 3; i++)
        cr_assert_eq (ratelimit_take (rl, "u:alice", SEC), 0);
    //  six newcomers at t = 2.5 s need room: the idle full buckets must give way, not alice's.
    //  (Every 8-slot probe window then holds at most 7 busy buckets, alice and the newcomers,
    //  so it always has a free or idle one to take, wherever the hash lands.)
    int64_t t = SEC * 5 / 2;
    for (int i = 0; i < 6; i++) {
        snprintf (key, sizeof key, "a:10.0.1.%d", i);
        cr_assert_eq (ratelimit_take (rl, key, t), 0);
    }
    cr_assert_eq (ratelimit_take (rl, "u:alice", t), 0, "she has 1.5 tokens");
    cr_assert_eq (ratelimit_take (rl, "u:alice", t), 1,
                  "0.5 left: limited, so her bucket was kept (a fresh one would hold 3)");
    ratelimit_destroy (&rl);
}

Test (ratelimit, a_rate_per_minute)
{
    //  10 a minute, all 10 at once: the eleventh waits 6 s for the next token
    ratelimit_t *rl = ratelimit_new_per (10, 60, 10, 16);
    int64_t t = 1000 * SEC;
    for (int i = 0; i < 10; i++)
        cr_assert_eq (ratelimit_take (rl, "u:alice", t), 0, "attempt %d is within the burst", i);
    cr_assert_eq (ratelimit_take (rl, "u:alice", t), 6);
    cr_assert_eq (ratelimit_take (rl, "u:alice", t + 5 * SEC + SEC / 2), 1, "half a second short");
    cr_assert_eq (ratelimit_take (rl, "u:alice", t + 6 * SEC), 0, "one token in 6 s");
    cr_assert_neq (ratelimit_take (rl, "u:alice", t + 6 * SEC), 0);
    cr_assert_eq (ratelimit_take (rl, "u:alice", t + 3600 * SEC), 0, "full again after an hour");
    ratelimit_destroy (&rl);
}
