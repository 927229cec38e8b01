/*  clock — see clock.h.  */
#include "clock.h"

#include <stdbool.h>
#include <stdint.h>
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

//  Digits at p, exactly n of them, as a number; -1 when they are not all digits.
static int s_digits (const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

//  Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil):
//  exact integer arithmetic, no time zone and no struct tm normalisation to second-guess.
static int64_t s_days_from_civil (int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int clock_parse_rfc3339 (const char *text, size_t len, int64_t *ns)
{
    //  YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM); 't' and 'z' allowed, as RFC 3339 says
    if (len < 20 || len > 40)
        return -1;
    const char *p = text;
    int year = s_digits (p, 4), mon = s_digits (p + 5, 2), day = s_digits (p + 8, 2);
    int hour = s_digits (p + 11, 2), min = s_digits (p + 14, 2), sec = s_digits (p + 17, 2);
    if (year < 1970 || year > 9999 || p[4] != '-' || p[7] != '-' ||
        (p[10] != 'T' && p[10] != 't') || p[13] != ':' || p[16] != ':' || mon < 1 || mon > 12 ||
        day < 1 || hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 60)
        return -1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > mdays[mon - 1] + (mon == 2 && leap))
        return -1;
    size_t i = 19;
    int64_t frac = 0;
    if (i < len && text[i] == '.') {
        size_t digits = 0;
        for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++, digits++)
            if (digits < 9)
                frac = frac * 10 + (text[i] - '0');
        if (digits == 0)
            return -1;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    int64_t offset = 0;
    if (i + 1 == len && (text[i] == 'Z' || text[i] == 'z'))
        i++;
    else if (i + 6 == len && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
        int oh = s_digits (text + i + 1, 2), om = s_digits (text + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset = (int64_t) (oh * 60 + om) * 60 * (text[i] == '+' ? 1 : -1);
        i += 6;
    }
    if (i != len)
        return -1;
    if (sec == 60)
        sec = 59; //  a leap second: POSIX time has none; take the second before it
    int64_t s = s_days_from_civil (year, mon, day) * 86400 + hour * 3600 + min * 60 + sec - offset;
    if (s < 0 || s > INT64_MAX / MCE_NS_PER_SEC - 1)
        return -1; //  beyond what int64 nanoseconds hold (April 2262)
    *ns = s * MCE_NS_PER_SEC + frac;
    return 0;
}
