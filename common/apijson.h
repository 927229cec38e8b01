/*  apijson — the values of the public JSON (the HTTP API, the broadcaster's channels), made
    one way everywhere: energy as kWh decimal strings, prices and money as decimal strings of
    their 6-decimal units, times RFC 3339 UTC, ids as decimal strings (a uint64 does not fit a
    JavaScript number), absent texts as null. Each returns a new reference.
*/
#ifndef MCE_APIJSON_H
#define MCE_APIJSON_H

#include "clock.h"
#include "decimal.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

static inline json_t *apijson_decimal (int64_t value, int scale)
{
    char text[DECIMAL_FORMAT_MAX];
    return decimal_format (value, scale, text, sizeof text) < 0 ? json_null () : json_string (text);
}

static inline json_t *apijson_kwh (int64_t wh)
{
    return apijson_decimal (wh, DECIMAL_KWH_SCALE);
}

static inline json_t *apijson_price (int64_t price)
{
    return apijson_decimal (price, DECIMAL_PRICE_SCALE);
}

//  Money is in micro-units, the same scale as a price.
static inline json_t *apijson_money (int64_t micro)
{
    return apijson_decimal (micro, DECIMAL_PRICE_SCALE);
}

//  0 means "not known" for times in events.
static inline json_t *apijson_time (int64_t ns)
{
    char text[40];
    return ns && clock_format_rfc3339 (ns, text, sizeof text) >= 0 ? json_string (text)
                                                                   : json_null ();
}

static inline json_t *apijson_id (uint64_t id)
{
    char text[24];
    snprintf (text, sizeof text, "%llu", (unsigned long long) id);
    return json_string (text);
}

static inline json_t *apijson_text_or_null (const char *text)
{
    return text && *text ? json_string (text) : json_null ();
}

#endif
