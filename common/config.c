/*  config — see config.h. Two tables drive everything: s_keys (scalars, by dotted path) and
    s_market_keys (each entry of the `markets` list). Defaults, the file, the environment,
    validation, unknown-key detection and config_log all walk the same tables, so a key is
    added in exactly one place.
*/
#include "config.h"
#include "decimal.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    K_INT,
    K_STR,
    K_SECRET,
    K_ENUM,
    K_PRICE,
    K_KWH,
    K_BOOL
} s_kind_t; //  SECRET: a STR never logged; BOOL: true/false in a file, 1/0/true/false as text

typedef struct {
    const char *path; //  dotted, from the root (or from a market entry)
    s_kind_t kind;
    const char *def;     //  default, as text
    int64_t min, max;    //  bounds of INT, PRICE (µ/kWh) and KWH (Wh) values
    const char *choices; //  ENUM: "a|b|c", stored as the index
    size_t offset, size;
} s_key_t;

#define F(field) offsetof (mce_config_t, field), sizeof (((mce_config_t *) 0)->field)
#define M(field) offsetof (config_market_t, field), sizeof (((config_market_t *) 0)->field)
#define PORT     0, 65535

static const s_key_t s_keys[] = {
    {"log_level", K_ENUM, "info", 0, 0, "error|warn|info|debug", F (log_level)},
    {"data_dir", K_STR, "./.run/data", 0, 0, NULL, F (data_dir)},
    {"metrics_address", K_STR, "127.0.0.1", 0, 0, NULL, F (metrics_address)},
    {"matcher.commands", K_STR, "tcp://127.0.0.1:5555", 0, 0, NULL, F (matcher.commands)},
    {"matcher.bus", K_STR, "tcp://127.0.0.1:5556", 0, 0, NULL, F (matcher.bus.pub)},
    {"matcher.replay", K_STR, "tcp://127.0.0.1:5557", 0, 0, NULL, F (matcher.bus.replay)},
    {"matcher.journal_dir", K_STR, "", 0, 0, NULL, F (matcher.journal_dir)},
    {"matcher.fsync", K_ENUM, "batch", 0, 0, "batch|always|never", F (matcher.fsync)},
    {"matcher.batch_max", K_INT, "256", 1, 65536, NULL, F (matcher.batch_max)},
    {"matcher.segment_mb", K_INT, "64", 1, 4096, NULL, F (matcher.segment_mb)},
    {"matcher.retain_segments", K_INT, "0", 0, 1000000, NULL, F (matcher.retain_segments)},
    {"matcher.snapshot_every", K_INT, "1000000", 0, 1000000000000LL, NULL,
     F (matcher.snapshot_every)},
    {"matcher.snapshot_keep", K_INT, "2", 1, 64, NULL, F (matcher.snapshot_keep)},
    {"matcher.metrics_port", K_INT, "9101", PORT, NULL, F (matcher.metrics_port)},
    {"gateway.http_address", K_STR, "127.0.0.1", 0, 0, NULL, F (gateway.http_address)},
    {"gateway.http_port", K_INT, "8080", PORT, NULL, F (gateway.http_port)},
    {"gateway.native", K_STR, "tcp://127.0.0.1:5560", 0, 0, NULL, F (gateway.native)},
    {"gateway.native_curve", K_STR, "tcp://127.0.0.1:5561", 0, 0, NULL, F (gateway.native_curve)},
    {"gateway.request_timeout_ms", K_INT, "5000", 10, 600000, NULL, F (gateway.request_timeout_ms)},
    {"gateway.max_body_bytes", K_INT, "65536", 256, 16777216, NULL, F (gateway.max_body_bytes)},
    {"gateway.max_in_flight", K_INT, "10000", 1, 1000000, NULL, F (gateway.max_in_flight)},
    {"gateway.max_connections", K_INT, "4096", 16, 1000000, NULL, F (gateway.max_connections)},
    {"gateway.max_connections_per_address", K_INT, "256", 1, 1000000, NULL,
     F (gateway.max_connections_per_address)},
    {"gateway.request_deadline_ms", K_INT, "10000", 100, 3600000, NULL,
     F (gateway.request_deadline_ms)},
    {"gateway.jwt_secret", K_SECRET, "", 0, 0, NULL, F (gateway.jwt_secret)},
    {"gateway.jwt_ttl_s", K_INT, "3600", 60, 31622400, NULL, F (gateway.jwt_ttl_s)},
    {"gateway.password_cost", K_ENUM, "interactive", 0, 0, "interactive|moderate|test",
     F (gateway.password_cost)},
    {"gateway.password_workers", K_INT, "1", 1, 8, NULL, F (gateway.password_workers)},
    {"gateway.password_queue", K_INT, "32", 1, 10000, NULL, F (gateway.password_queue)},
    {"gateway.api_keys_per_user", K_INT, "10", 1, 1000, NULL, F (gateway.api_keys_per_user)},
    {"gateway.api_key_check_ms", K_INT, "1000", 100, 3600000, NULL, F (gateway.api_key_check_ms)},
    {"gateway.logins_per_minute", K_INT, "10", 1, 1000000, NULL, F (gateway.logins_per_minute)},
    {"gateway.logins_per_minute_address", K_INT, "60", 1, 1000000, NULL,
     F (gateway.logins_per_minute_address)},
    {"gateway.rate_per_s", K_INT, "100", 1, 100000000, NULL, F (gateway.rate_per_s)},
    {"gateway.rate_burst", K_INT, "200", 1, 100000000, NULL, F (gateway.rate_burst)},
    {"gateway.cors_origins", K_STR, "", 0, 0, NULL, F (gateway.cors_origins)},
    {"gateway.domain", K_STR, "", 0, 0, NULL, F (gateway.domain)},
    {"gateway.access_log", K_INT, "1", 0, 1, NULL, F (gateway.access_log)},
    {"gateway.broadcaster_url", K_STR, "ws://127.0.0.1:8081", 0, 0, NULL,
     F (gateway.broadcaster_url)},
    {"gateway.currency", K_STR, "EUR", 0, 0, NULL, F (gateway.currency)},
    {"security.curve", K_BOOL, "true", 0, 0, NULL, F (security.curve)},
    {"security.keys_dir", K_STR, "./.run/curve-keys", 0, 0, NULL, F (security.keys_dir)},
    {"postgres.url", K_SECRET, "host=127.0.0.1 port=5432 dbname=mce user=postgres", 0, 0, NULL,
     F (postgres.url)},
    {"redis.url", K_STR, "redis://127.0.0.1:6379", 0, 0, NULL, F (redis.url)},
    {"settler.bus", K_STR, "tcp://127.0.0.1:5566", 0, 0, NULL, F (settler.bus.pub)},
    {"settler.replay", K_STR, "tcp://127.0.0.1:5567", 0, 0, NULL, F (settler.bus.replay)},
    {"settler.journal_dir", K_STR, "", 0, 0, NULL, F (settler.journal_dir)},
    {"settler.metrics_port", K_INT, "9102", PORT, NULL, F (settler.metrics_port)},
    {"settler.fsync", K_ENUM, "batch", 0, 0, "batch|always|never", F (settler.fsync)},
    {"settler.commands", K_STR, "tcp://127.0.0.1:5568", 0, 0, NULL, F (settler.commands)},
    {"settler.rpc_url", K_STR, "http://127.0.0.1:8899", 0, 0, NULL, F (settler.rpc_url)},
    {"settler.rpc_timeout_ms", K_INT, "5000", 100, 600000, NULL, F (settler.rpc_timeout_ms)},
    {"settler.keys_file", K_STR, "", 0, 0, NULL, F (settler.keys_file)},
    {"settler.wallets", K_ENUM, "postgres", 0, 0, "postgres|keys_file", F (settler.wallets)},
    {"settler.retry_attempts", K_INT, "5", 1, 1000, NULL, F (settler.retry_attempts)},
    {"settler.confirmation_timeout_ms", K_INT, "30000", 100, 3600000, NULL,
     F (settler.confirmation_timeout_ms)},
    {"settler.backoff_ms", K_INT, "200", 1, 600000, NULL, F (settler.backoff_ms)},
    {"settler.backoff_cap_ms", K_INT, "10000", 1, 3600000, NULL, F (settler.backoff_cap_ms)},
    {"settler.max_trades_per_tx", K_INT, "16", 1, 64, NULL, F (settler.max_trades_per_tx)},
    {"settler.max_in_flight", K_INT, "256", 1, 100000, NULL, F (settler.max_in_flight)},
    {"settler.max_transfers_per_tx", K_INT, "16", 1, 64, NULL, F (settler.max_transfers_per_tx)},
    {"settler.command_resend_ms", K_INT, "1000", 10, 600000, NULL, F (settler.command_resend_ms)},
    {"settler.wallet_ttl_ms", K_INT, "60000", 0, 86400000, NULL, F (settler.wallet_ttl_ms)},
    {"settler.max_open_deposits_per_user", K_INT, "8", 1, 100000, NULL,
     F (settler.max_open_deposits_per_user)},
    {"settler.grid_low_energy", K_KWH, "100", 0, 1000000000000, NULL, F (settler.grid_low_energy)},
    {"settler.grid_low_payment", K_PRICE, "100", 0, 1000000000000000, NULL,
     F (settler.grid_low_payment)},
    {"persister.metrics_port", K_INT, "9103", PORT, NULL, F (persister.metrics_port)},
    {"broadcaster.ws_address", K_STR, "127.0.0.1", 0, 0, NULL, F (broadcaster.ws_address)},
    {"broadcaster.ws_port", K_INT, "8081", PORT, NULL, F (broadcaster.ws_port)},
    {"broadcaster.xpub", K_STR, "tcp://127.0.0.1:5570", 0, 0, NULL, F (broadcaster.xpub)},
    {"broadcaster.metrics_port", K_INT, "9104", PORT, NULL, F (broadcaster.metrics_port)},
    {"broadcaster.origins", K_STR, "", 0, 0, NULL, F (broadcaster.origins)},
    {"broadcaster.queue_bytes", K_INT, "1048576", 4096, 1073741824, NULL,
     F (broadcaster.queue_bytes)},
    {"broadcaster.slow_grace_ms", K_INT, "10000", 10, 3600000, NULL, F (broadcaster.slow_grace_ms)},
    {"broadcaster.max_subscriptions", K_INT, "64", 1, 100000, NULL,
     F (broadcaster.max_subscriptions)},
    {"broadcaster.max_sessions_per_address", K_INT, "100", 1, 1000000, NULL,
     F (broadcaster.max_sessions_per_address)},
    {"broadcaster.queue_bytes_per_address", K_INT, "16777216", 65536, 1073741824, NULL,
     F (broadcaster.queue_bytes_per_address)},
    {"broadcaster.flush_ms", K_INT, "10", 0, 1000, NULL, F (broadcaster.flush_ms)},
    {"broadcaster.queue_ms", K_INT, "1000", 0, 600000, NULL, F (broadcaster.queue_ms)},
};

#define S_PRICE_MAX 1000000000000LL //  1 000 000 per kWh: far above any real tariff
#define S_QTY_MAX   1000000000000LL //  1 TWh

static const s_key_t s_market_keys[] = {
    {"id", K_STR, "campus-1", 0, 0, NULL, M (id)},
    {"tick", K_PRICE, "0.0001", 1, S_PRICE_MAX, NULL, M (tick)},
    {"lot", K_KWH, "0.001", 1, S_QTY_MAX, NULL, M (lot)},
    {"min_qty", K_KWH, "0.001", 1, S_QTY_MAX, NULL, M (min_qty)},
    {"max_qty", K_KWH, "1000000", 1, S_QTY_MAX, NULL, M (max_qty)},
    {"min_price", K_PRICE, "0.0001", 1, S_PRICE_MAX, NULL, M (min_price)},
    {"max_price", K_PRICE, "100", 1, S_PRICE_MAX, NULL, M (max_price)},
    {"epoch_seconds", K_INT, "900", 1, 2678400, NULL, M (epoch_seconds)},
    {"future_epochs", K_INT, "4", 0, 1000, NULL, M (future_epochs)},
    {"fee_ppm", K_INT, "0", 0, 1000000, NULL, M (fee_ppm)},
    {"mode", K_ENUM, "continuous", 0, 0, "continuous|auction|pay_as_bid", M (mode)},
    {"price_rule", K_ENUM, "maker", 0, 0, "maker|ask|mid", M (price_rule)},
    {"stp", K_ENUM, "cancel_resting", 0, 0, "cancel_resting|cancel_newest|cancel_both", M (stp)},
    {"marginal", K_ENUM, "time", 0, 0, "time|pro_rata", M (marginal)},
    {"escrow", K_BOOL, "true", 0, 0, NULL, M (escrow)},
    {"grid_import_price", K_PRICE, "0", 0, S_PRICE_MAX, NULL, M (grid_import_price)},
    {"grid_feed_in_price", K_PRICE, "0", 0, S_PRICE_MAX, NULL, M (grid_feed_in_price)},
    {"grid_user", K_STR, "grid", 0, 0, NULL, M (grid_user)},
    {"indicative_ms", K_INT, "1000", 0, 3600000, NULL, M (indicative_ms)},
};

#define N_KEYS        (sizeof s_keys / sizeof s_keys[0])
#define N_MARKET_KEYS (sizeof s_market_keys / sizeof s_market_keys[0])

static const char *s_sections[] = {"matcher",     "gateway",  "settler", "persister",
                                   "broadcaster", "postgres", "redis",   "security"};

//  Index of text in "a|b|c", or -1.
static int s_choice (const char *choices, const char *text)
{
    size_t tl = strlen (text);
    int i = 0;
    for (const char *p = choices; *p; i++) {
        const char *bar = strchr (p, '|');
        size_t n = bar ? (size_t) (bar - p) : strlen (p);
        if (n == tl && strncmp (p, text, n) == 0)
            return i;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static int s_set_int (const s_key_t *k, void *base, int64_t v, const char *path, char *err,
                      size_t errlen)
{
    if (v < k->min || v > k->max) {
        snprintf (err, errlen, "%s: %" PRId64 " is out of range %" PRId64 "..%" PRId64, path, v,
                  k->min, k->max);
        return -1;
    }
    memcpy ((char *) base + k->offset, &v, sizeof v);
    return 0;
}

//  Applies a value given as text (defaults, the environment, strings from the file).
static int s_apply_text (const s_key_t *k, void *base, const char *text, const char *path,
                         char *err, size_t errlen)
{
    char *field = (char *) base + k->offset;
    switch (k->kind) {
        case K_STR:
        case K_SECRET:
            if (strlen (text) >= k->size) {
                snprintf (err, errlen, "%s: longer than %zu characters", path, k->size - 1);
                return -1;
            }
            memcpy (field, text, strlen (text) + 1);
            return 0;
        case K_ENUM: {
            int i = s_choice (k->choices, text);
            if (i < 0) {
                snprintf (err, errlen, "%s: must be one of %s (got \"%s\")", path, k->choices,
                          text);
                return -1;
            }
            if (k->size == sizeof (int)) {
                memcpy (field, &i, sizeof i);
            }
            else {
                //  a string field whose values are restricted (log_level)
                if (strlen (text) >= k->size)
                    return -1;
                memcpy (field, text, strlen (text) + 1);
            }
            return 0;
        }
        case K_INT: {
            char *end;
            errno = 0;
            long long v = strtoll (text, &end, 10);
            if (errno || end == text || *end) {
                snprintf (err, errlen, "%s: expected an integer (got \"%s\")", path, text);
                return -1;
            }
            return s_set_int (k, base, v, path, err, errlen);
        }
        case K_PRICE:
        case K_KWH: {
            int scale = k->kind == K_PRICE ? DECIMAL_PRICE_SCALE : DECIMAL_KWH_SCALE;
            int64_t v;
            decimal_status_t st = decimal_parse (text, strlen (text), scale, &v);
            if (st != DECIMAL_OK) {
                snprintf (err, errlen, "%s: \"%s\" is not a valid %s: %s", path, text,
                          k->kind == K_PRICE ? "price" : "kWh amount", decimal_status_text (st));
                return -1;
            }
            return s_set_int (k, base, v, path, err, errlen);
        }
        case K_BOOL: {
            bool v = strcmp (text, "true") == 0 || strcmp (text, "1") == 0;
            if (!v && strcmp (text, "false") != 0 && strcmp (text, "0") != 0) {
                snprintf (err, errlen, "%s: expected true or false (got \"%s\")", path, text);
                return -1;
            }
            memcpy (field, &v, sizeof v);
            return 0;
        }
    }
    return -1;
}

//  Applies a setting from the file.
static int s_apply_setting (const s_key_t *k, void *base, config_setting_t *s, const char *path,
                            char *err, size_t errlen)
{
    int type = config_setting_type (s);
    if (k->kind == K_BOOL) {
        if (type != CONFIG_TYPE_BOOL) {
            snprintf (err, errlen, "%s (line %d): expected true or false", path,
                      config_setting_source_line (s));
            return -1;
        }
        bool v = config_setting_get_bool (s);
        memcpy ((char *) base + k->offset, &v, sizeof v);
        return 0;
    }
    if (k->kind == K_INT) {
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            snprintf (err, errlen, "%s (line %d): expected an integer", path,
                      config_setting_source_line (s));
            return -1;
        }
        return s_set_int (k, base, config_setting_get_int64 (s), path, err, errlen);
    }
    if (type != CONFIG_TYPE_STRING) {
        snprintf (
            err, errlen, "%s (line %d): expected a string%s", path, config_setting_source_line (s),
            k->kind == K_PRICE || k->kind == K_KWH ? " holding a decimal, like \"0.15\"" : "");
        return -1;
    }
    return s_apply_text (k, base, config_setting_get_string (s), path, err, errlen);
}

static const s_key_t *s_find (const s_key_t *keys, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

//  The grid's tariffs: each on tick and inside the price band, feed-in below import, and a
//  grid user whenever there is a tariff.
static int s_check_grid (const config_market_t *m, int index, char *err, size_t errlen)
{
    const int64_t prices[2] = {m->grid_import_price, m->grid_feed_in_price};
    const char *names[2] = {"grid_import_price", "grid_feed_in_price"};
    for (int i = 0; i < 2; i++) {
        if (prices[i] == 0)
            continue;
        if (prices[i] % m->tick || prices[i] < m->min_price || prices[i] > m->max_price) {
            snprintf (err, errlen,
                      "markets[%d].%s (%s): must be on the tick and within min_price..max_price",
                      index, names[i], m->id);
            return -1;
        }
    }
    if (prices[0] && prices[1] && prices[1] >= prices[0]) {
        snprintf (err, errlen,
                  "markets[%d] (%s): grid_feed_in_price must be below grid_import_price (the "
                  "grid buys for less than it sells)",
                  index, m->id);
        return -1;
    }
    if ((prices[0] || prices[1]) && m->grid_user[0] == '\0') {
        snprintf (err, errlen, "markets[%d].grid_user (%s): must name the grid's user", index,
                  m->id);
        return -1;
    }
    return 0;
}

static int s_load_market (mce_config_t *cfg, config_setting_t *entry, int index, char *err,
                          size_t errlen)
{
    config_market_t *m = &cfg->markets[index];
    for (size_t i = 0; i < N_MARKET_KEYS; i++)
        if (s_apply_text (&s_market_keys[i], m, s_market_keys[i].def, s_market_keys[i].path, err,
                          errlen))
            return -1;
    if (config_setting_type (entry) != CONFIG_TYPE_GROUP) {
        snprintf (err, errlen, "markets[%d] (line %d): expected a group { id = ...; }", index,
                  config_setting_source_line (entry));
        return -1;
    }
    if (!config_setting_get_member (entry, "id")) {
        snprintf (err, errlen, "markets[%d].id: missing", index);
        return -1;
    }
    for (int j = 0; j < config_setting_length (entry); j++) {
        config_setting_t *s = config_setting_get_elem (entry, (unsigned) j);
        char path[128];
        snprintf (path, sizeof path, "markets[%d].%s", index, config_setting_name (s));
        const s_key_t *k = s_find (s_market_keys, N_MARKET_KEYS, config_setting_name (s));
        if (!k) {
            snprintf (err, errlen, "%s (line %d): unknown key", path,
                      config_setting_source_line (s));
            return -1;
        }
        if (s_apply_setting (k, m, s, path, err, errlen))
            return -1;
    }
    if (m->id[0] == '\0' ||
        strspn (m->id, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen (m->id)) {
        snprintf (err, errlen, "markets[%d].id: \"%s\" must be lower-case letters, digits, - or _",
                  index, m->id);
        return -1;
    }
    __int128 largest = (__int128) m->max_qty * m->max_price / 1000;
    if (largest > INT64_MAX / 4) {
        //  a trade's value (and the sums built from it) must stay far inside int64
        snprintf (err, errlen,
                  "markets[%d] (%s): max_qty × max_price is too large for a "
                  "trade's value in micro-units",
                  index, m->id);
        return -1;
    }
    if (m->min_qty > m->max_qty || m->min_price > m->max_price) {
        snprintf (err, errlen, "markets[%d] (%s): min_qty/min_price must not exceed their max",
                  index, m->id);
        return -1;
    }
    if (s_check_grid (m, index, err, errlen))
        return -1;
    for (int j = 0; j < index; j++)
        if (strcmp (cfg->markets[j].id, m->id) == 0) {
            snprintf (err, errlen, "markets[%d].id: \"%s\" is defined twice", index, m->id);
            return -1;
        }
    return 0;
}

//  Reads the file at `file`, or the text in `text` when it is not NULL.
static int s_load_file (mce_config_t *cfg, const char *file, const char *text, char *err,
                        size_t errlen)
{
    config_t lc;
    config_init (&lc);
    int rc = -1;
    int read = text ? config_read_string (&lc, text) : config_read_file (&lc, file);
    if (read != CONFIG_TRUE) {
        if (config_error_type (&lc) == CONFIG_ERR_FILE_IO)
            snprintf (err, errlen, "%s: cannot read: %s", file, strerror (errno));
        else
            snprintf (err, errlen, "%s:%d: %s",
                      config_error_file (&lc) ? config_error_file (&lc) : file,
                      config_error_line (&lc), config_error_text (&lc));
        goto done;
    }
    config_setting_t *root = config_root_setting (&lc);
    for (int i = 0; i < config_setting_length (root); i++) {
        config_setting_t *s = config_setting_get_elem (root, (unsigned) i);
        const char *name = config_setting_name (s);
        if (strcmp (name, "markets") == 0) {
            if (config_setting_type (s) != CONFIG_TYPE_LIST) {
                snprintf (err, errlen, "markets (line %d): expected a list ( {...}, {...} )",
                          config_setting_source_line (s));
                goto done;
            }
            int n = config_setting_length (s);
            if (n < 1 || n > CONFIG_MARKETS_MAX) {
                snprintf (err, errlen, "markets: expected 1..%d markets, got %d",
                          CONFIG_MARKETS_MAX, n);
                goto done;
            }
            for (int j = 0; j < n; j++)
                if (s_load_market (cfg, config_setting_get_elem (s, (unsigned) j), j, err, errlen))
                    goto done;
            cfg->market_count = n;
            continue;
        }
        bool section = false;
        for (size_t j = 0; j < sizeof s_sections / sizeof s_sections[0]; j++)
            section |= strcmp (name, s_sections[j]) == 0;
        if (section) {
            if (config_setting_type (s) != CONFIG_TYPE_GROUP) {
                snprintf (err, errlen, "%s (line %d): expected a group { ... }", name,
                          config_setting_source_line (s));
                goto done;
            }
            for (int j = 0; j < config_setting_length (s); j++) {
                config_setting_t *c = config_setting_get_elem (s, (unsigned) j);
                char path[128];
                snprintf (path, sizeof path, "%s.%s", name, config_setting_name (c));
                const s_key_t *k = s_find (s_keys, N_KEYS, path);
                if (!k) {
                    snprintf (err, errlen, "%s (line %d): unknown key", path,
                              config_setting_source_line (c));
                    goto done;
                }
                if (s_apply_setting (k, cfg, c, path, err, errlen))
                    goto done;
            }
            continue;
        }
        const s_key_t *k = s_find (s_keys, N_KEYS, name);
        if (!k || strchr (k->path, '.')) {
            snprintf (err, errlen, "%s (line %d): unknown key", name,
                      config_setting_source_line (s));
            goto done;
        }
        if (s_apply_setting (k, cfg, s, name, err, errlen))
            goto done;
    }
    rc = 0;
done:
    config_destroy (&lc);
    return rc;
}

//  MCE_MATCHER_FSYNC for "matcher.fsync".
static void s_env_name (const char *path, char *buf, size_t size)
{
    size_t o = (size_t) snprintf (buf, size, "MCE_");
    for (const char *p = path; *p && o + 1 < size; p++)
        buf[o++] = *p == '.' ? '_' : (char) toupper ((unsigned char) *p);
    buf[o] = '\0';
}

//  Variables named like keys that are not keys, and are meant so: compose's own (read by
//  `docker compose` on the host, not by a process), the browser tests' gateway address, and
//  the settler's crash points for its crash tests.
static const char *const s_env_not_keys[] = {
    "MCE_GATEWAY_PORTS",
    "MCE_BROADCASTER_PORTS",
    "MCE_POSTGRES_PASSWORD",
    "MCE_GATEWAY_URL",
    "MCE_SETTLER_CRASH_AFTER_ACK",
    "MCE_SETTLER_CRASH_AFTER_SEND",
    "MCE_SETTLER_CRASH_BEFORE_SEND",
};

//  Edit distance (insertions, deletions, substitutions) of two short names; 99 past 127 bytes.
static size_t s_distance (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b), row[128];
    if (la > 127 || lb > 127)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

//  A misspelt variable would otherwise be ignored without a word (MCE_MATCHR_FSYNC=never):
//  one that starts like a section's keys, or is within two edits of a key, and is not one, is
//  an error naming the closest key. Others (MCE_KEEP_TEST_DIR) are not ours to judge.
static int s_check_environment (char *err, size_t errlen)
{
    extern char **environ;
    for (char **e = environ; *e; e++) {
        size_t n = strcspn (*e, "=");
        char name[128];
        if (strncmp (*e, "MCE_", 4) != 0 || n >= sizeof name)
            continue;
        memcpy (name, *e, n);
        name[n] = '\0';
        bool allowed = false;
        for (size_t i = 0; i < sizeof s_env_not_keys / sizeof s_env_not_keys[0]; i++)
            allowed |= strcmp (name, s_env_not_keys[i]) == 0;
        size_t best = SIZE_MAX, closest = 0;
        for (size_t i = 0; i < N_KEYS && !allowed; i++) {
            char key[128];
            s_env_name (s_keys[i].path, key, sizeof key);
            size_t d = s_distance (name, key);
            if (d < best)
                best = d, closest = i;
        }
        if (allowed || best == 0)
            continue;
        bool sectioned = false;
        for (size_t i = 0; i < sizeof s_sections / sizeof s_sections[0]; i++) {
            char prefix[48];
            s_env_name (s_sections[i], prefix, sizeof prefix);
            size_t len = strlen (prefix);
            sectioned |= strncmp (name, prefix, len) == 0 && name[len] == '_';
        }
        if (sectioned || best <= 2) {
            char key[128];
            s_env_name (s_keys[closest].path, key, sizeof key);
            snprintf (err, errlen, "%s is not a configuration key: did you mean %s (%s)?", name,
                      key, s_keys[closest].path);
            return -1;
        }
    }
    return 0;
}

static int s_load (mce_config_t *cfg, const char *path, const char *text, char *err, size_t errlen)
{
    memset (cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++)
        if (s_apply_text (&s_keys[i], cfg, s_keys[i].def, s_keys[i].path, err, errlen))
            return -1;
    if ((path || text) && s_load_file (cfg, path ? path : "(text)", text, err, errlen))
        return -1;
    if (cfg->market_count == 0) {
        //  No markets configured: one market with every default, so a bare start works.
        for (size_t i = 0; i < N_MARKET_KEYS; i++)
            s_apply_text (&s_market_keys[i], &cfg->markets[0], s_market_keys[i].def,
                          s_market_keys[i].path, err, errlen);
        cfg->market_count = 1;
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        char name[128];
        s_env_name (s_keys[i].path, name, sizeof name);
        const char *value = getenv (name);
        if (value && s_apply_text (&s_keys[i], cfg, value, name, err, errlen))
            return -1;
    }
    if (s_check_environment (err, errlen))
        return -1;
    struct in_addr metrics;
    if (inet_pton (AF_INET, cfg->metrics_address, &metrics) != 1) {
        snprintf (err, errlen,
                  "metrics_address: \"%s\" is not an IPv4 address (127.0.0.1, 0.0.0.0)",
                  cfg->metrics_address);
        return -1;
    }
    return 0;
}

int config_load (mce_config_t *cfg, const char *path, char *err, size_t errlen)
{
    return s_load (cfg, path, NULL, err, errlen);
}

int config_load_text (mce_config_t *cfg, const char *text, char *err, size_t errlen)
{
    return s_load (cfg, NULL, text, err, errlen);
}

static void s_log_key (const s_key_t *k, const void *base, const char *prefix, const char *module,
                       int level)
{
    const char *field = (const char *) base + k->offset;
    int64_t v;
    switch (k->kind) {
        case K_STR:
            log_emit (level, module, "%s%s = \"%s\"", prefix, k->path, field);
            break;
        case K_SECRET:
            log_emit (level, module, "%s%s = %s", prefix, k->path,
                      field[0] ? "(set, not shown)" : "\"\"");
            break;
        case K_ENUM:
            if (k->size == sizeof (int)) {
                int i;
                memcpy (&i, field, sizeof i);
                const char *p = k->choices;
                for (int j = 0; j < i && p; j++)
                    p = strchr (p, '|') ? strchr (p, '|') + 1 : NULL;
                int n = p ? (int) strcspn (p, "|") : 1;
                log_emit (level, module, "%s%s = %.*s", prefix, k->path, n, p ? p : "?");
            }
            else
                log_emit (level, module, "%s%s = %s", prefix, k->path, field);
            break;
        case K_INT:
            memcpy (&v, field, sizeof v);
            log_emit (level, module, "%s%s = %" PRId64, prefix, k->path, v);
            break;
        case K_PRICE:
        case K_KWH: {
            memcpy (&v, field, sizeof v);
            char text[32];
            decimal_format (v, k->kind == K_PRICE ? DECIMAL_PRICE_SCALE : DECIMAL_KWH_SCALE, text,
                            sizeof text);
            log_emit (level, module, "%s%s = \"%s\"", prefix, k->path, text);
            break;
        }
        case K_BOOL: {
            bool b;
            memcpy (&b, field, sizeof b);
            log_emit (level, module, "%s%s = %s", prefix, k->path, b ? "true" : "false");
            break;
        }
    }
}

void config_log (const mce_config_t *cfg, const char *module, int level)
{
    for (size_t i = 0; i < N_KEYS; i++)
        s_log_key (&s_keys[i], cfg, "", module, level);
    for (int m = 0; m < cfg->market_count; m++) {
        char prefix[48];
        snprintf (prefix, sizeof prefix, "markets[%d].", m);
        for (size_t i = 0; i < N_MARKET_KEYS; i++)
            s_log_key (&s_market_keys[i], &cfg->markets[m], prefix, module, level);
    }
}

const config_market_t *config_market (const mce_config_t *cfg, const char *id)
{
    for (int i = 0; i < cfg->market_count; i++)
        if (strcmp (cfg->markets[i].id, id) == 0)
            return &cfg->markets[i];
    return NULL;
}

const char *config_journal_dir (const mce_config_t *cfg, const char *service, char *buf,
                                size_t size)
{
    const char *own =
        strcmp (service, "settler") == 0 ? cfg->settler.journal_dir : cfg->matcher.journal_dir;
    if (own[0])
        snprintf (buf, size, "%s", own);
    else
        snprintf (buf, size, "%s/%s", cfg->data_dir, service);
    return buf;
}
