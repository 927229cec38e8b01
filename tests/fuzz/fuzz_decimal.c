/*  fuzz_decimal — decimal_parse on arbitrary bytes, at the kWh and the price scale.

    Whatever the parser accepts must survive format-then-parse with the same value: the text
    we write into logs, events and API responses must read back as the number we stored.
    When the input is at least 8 bytes, its first 8 are also tried as a JSON double: an
    accepted double must be exactly the decimal we stored (strtod of our text gives it back).
    Any mismatch aborts so libFuzzer records the input.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"

static void s_check_round_trip (int64_t value, int scale)
{
    char text[DECIMAL_FORMAT_MAX];
    int len = decimal_format (value, scale, text, sizeof text);
    if (len <= 0)
        abort ();
    int64_t again = -1;
    if (decimal_parse (text, (size_t) len, scale, &again) != DECIMAL_OK || again != value) {
        fprintf (stderr, "round trip: %lld at scale %d formats as \"%s\"\n", (long long) value,
                 scale, text);
        abort ();
    }
}

static void s_check_text (const uint8_t *data, size_t size, int scale)
{
    int64_t value = -1;
    decimal_status_t status = decimal_parse ((const char *) data, size, scale, &value);
    if (!decimal_status_text (status))
        abort ();
    if (status != DECIMAL_OK)
        return;
    if (value < 0)
        abort ();
    s_check_round_trip (value, scale);
}

static void s_check_double (const uint8_t *data, int scale)
{
    double number;
    memcpy (&number, data, sizeof number);
    int64_t value = -1;
    if (decimal_from_double (number, scale, &value) != DECIMAL_OK)
        return;
    char text[DECIMAL_FORMAT_MAX];
    if (value < 0 || decimal_format (value, scale, text, sizeof text) <= 0)
        abort ();
    if (strtod (text, NULL) != number) {
        fprintf (stderr, "double %.17g accepted as \"%s\" at scale %d\n", number, text, scale);
        abort ();
    }
    s_check_round_trip (value, scale);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_check_text (data, size, DECIMAL_KWH_SCALE);
    s_check_text (data, size, DECIMAL_PRICE_SCALE);
    if (size >= sizeof (double)) {
        s_check_double (data, DECIMAL_KWH_SCALE);
        s_check_double (data, DECIMAL_PRICE_SCALE);
    }
    return 0;
}
