/*  clock — time in int64 nanoseconds, as every message carries it (docs/architecture.md, Units).
    Wall time for timestamps and epoch boundaries; monotonic time for timeouts and latency.
*/
#ifndef MCE_CLOCK_H
#define MCE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define MCE_NS_PER_SEC  1000000000LL
#define MCE_NS_PER_MSEC 1000000LL

//  Nanoseconds since the Unix epoch (CLOCK_REALTIME).
int64_t clock_wall_ns (void);
//  Nanoseconds on a clock that never goes back (CLOCK_MONOTONIC).
int64_t clock_mono_ns (void);
//  Writes ns as RFC 3339 UTC with microseconds ("2026-11-21T21:40:00.123456Z").
//  Returns the length written, or -1 when buf is too small (needs 28 bytes).
int clock_format_rfc3339 (int64_t ns, char *buf, size_t size);
//  Parses RFC 3339 ("2026-11-21T21:40:00Z", "2026-11-21T22:40:00.5+01:00") into ns since the
//  Unix epoch (UTC), from 1970 until int64 nanoseconds run out (2262); a leap second counts as
//  :59. 0, or -1 when malformed or out of that range.
int clock_parse_rfc3339 (const char *text, size_t len, int64_t *ns);

#endif
