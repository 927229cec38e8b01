/*  clock — see clock.h.  */
#include "clock.h"

#include <stdio.h>
#include <time.h>

int64_t clock_wall_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * MCE_NS_PER_SEC + ts.tv_nsec;
}

int64_t clock_mono_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * MCE_NS_PER_SEC + ts.tv_nsec;
}

int clock_format_rfc3339 (int64_t ns, char *buf, size_t size)
{
    int64_t sec = ns / MCE_NS_PER_SEC;
    int64_t rem = ns % MCE_NS_PER_SEC;
    if (rem < 0) {
        rem += MCE_NS_PER_SEC;
        sec -= 1;
    }
    time_t t = (time_t) sec;
    struct tm tm;
    if (!gmtime_r (&t, &tm))
        return -1;
    int n =
        snprintf (buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long) (rem / 1000));
    return (n < 0 || (size_t) n >= size) ? -1 : n;
}
