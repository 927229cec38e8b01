/*  test_clock — RFC 3339 both ways: what the API prints and what it accepts.  */
#include "clock.h"

#include <criterion/criterion.h>
#include <string.h>

static int64_t s_parse (const char *text)
{
    int64_t ns = -42;
    cr_assert_eq (clock_parse_rfc3339 (text, strlen (text), &ns), 0, "\"%s\" parses", text);
    return ns;
}

Test (clock, parses_utc_fractions_and_offsets)
{
    cr_assert_eq (s_parse ("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq (s_parse ("2026-11-21T21:40:00Z"), 1795297200LL * MCE_NS_PER_SEC);
    cr_assert_eq (s_parse ("2026-11-21T21:40:00.5Z"), 1795297200LL * MCE_NS_PER_SEC + 500000000);
    cr_assert_eq (s_parse ("2026-11-21T21:40:00.123456789z"),
                  1795297200LL * MCE_NS_PER_SEC + 123456789);
    cr_assert_eq (s_parse ("2026-11-21t22:40:00+01:00"), 1795297200LL * MCE_NS_PER_SEC);
    cr_assert_eq (s_parse ("2026-11-21T16:10:00-05:30"), 1795297200LL * MCE_NS_PER_SEC);
    cr_assert_eq (s_parse ("2024-02-29T00:00:00Z"), 1709164800LL * MCE_NS_PER_SEC, "leap day");
    //  more than nine fraction digits: the rest is below a nanosecond and dropped
    cr_assert_eq (s_parse ("1970-01-01T00:00:01.0000000019Z"), MCE_NS_PER_SEC + 1);
}

Test (clock, refuses_what_is_not_rfc3339)
{
    const char *bad[] = {"",
                         "2026-11-21",
                         "2026-11-21T21:40:00",       //  no zone
                         "2026-11-21 21:40:00Z",      //  space
                         "2026-13-01T00:00:00Z",      //  month 13
                         "2026-02-29T00:00:00Z",      //  not a leap year
                         "2026-04-31T00:00:00Z",      //  April has 30 days
                         "2026-11-21T24:00:00Z",      //  hour 24
                         "2026-11-21T21:60:00Z",      //  minute 60
                         "2026-11-21T21:40:00.Z",     //  empty fraction
                         "2026-11-21T21:40:00+0100",  //  offset without colon
                         "2026-11-21T21:40:00+24:00", //  offset hour 24
                         "2026-11-21T21:40:00Zjunk",  //  trailing text
                         "1969-12-31T23:59:59Z",      //  before 1970
                         "+2026-11-21T21:40:00Z",     //  sign
                         "２０２６-11-21T21:40:00Z"}; //  full-width digits
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns;
        cr_assert_eq (clock_parse_rfc3339 (bad[i], strlen (bad[i]), &ns), -1, "\"%s\" refused",
                      bad[i]);
    }
}

Test (clock, format_and_parse_agree)
{
    char text[40];
    //  the format shows microseconds, so the samples are whole microseconds
    int64_t samples[] = {0, 1000, 999999000, 1795297200LL * MCE_NS_PER_SEC + 123456000};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        int n = clock_format_rfc3339 (samples[i], text, sizeof text);
        cr_assert_gt (n, 0);
        cr_assert_eq (s_parse (text), samples[i], "%s", text);
    }
}
