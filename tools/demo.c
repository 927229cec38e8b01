/*  mce-demo — a simulated campus day against a running system (tools/run.sh --demo runs one).

    Prosumers (rooftop solar, their own load) and consumers (homes with morning and evening
    peaks, campus buildings busy by day) sign up with wallets the local ledger funded, deposit
    what their orders may need into the platform's vaults when the market has escrow (the
    default: prosumers their energy, consumers their money, through the chain), then trade one
    delivery epoch per simulated hour: each prosumer offers its surplus for that
    epoch at a price that reflects how scarce solar is at that hour, each consumer bids its
    load at its willingness to pay. After each epoch clears it prints a line; at the end it
    waits until every trade is confirmed on chain, prints a table per epoch (supply offered,
    demand bid, clearing price, volume, trades, settled) with totals, and writes an SVG chart.

    It goes through the gateway's HTTP API as any client would (a challenge signed with each
    wallet's key from the ledger's setup file, register, login, orders with an explicit epoch,
    the market's epochs). Confirmed settlements are history the API does
    not list (/api/admin/settlements shows only those not confirmed yet), so settlement is
    read where it happens: the settler's bus (stream s, settler.bus and settler.replay of the
    configuration), followed from its first event like any consumer (common/bus_sub.c).

    Orders for an epoch are placed while the epoch before it runs (one epoch ahead, within
    the market's future_epochs), so every epoch gets its orders in whole before it closes.

    Every amount and price is an integer (Wh, µ/kWh), drawn from a seeded PRNG and integer
    profiles: the same seed and options place the same orders. Doubles appear only as SVG
    coordinates.
*/
#include "auth.h"
#include "bus_sub.h"
#include "clock.h"
#include "config.h"
#include "decimal.h"
#include "grow.h"
#include "log.h"
#include "proto.h"

#include <curl/curl.h>
#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PASSWORD           "demo-password" //  every demo user's (sign in as one on the dashboard)
#define S_USERS_MAX          500
#define S_HOURS_MAX          168   //  a week
#define S_HEALTH_DEADLINE_S  30    //  for the gateway to see its matcher and Postgres
#define S_POLL_MS            100   //  between two questions to the gateway
#define S_CLEAR_GRACE_S      15    //  after an epoch's end, until its result must show
#define S_PROGRESS_MS        2000  //  between two progress lines while settling
#define S_HTTP_TIMEOUT_MS    15000 //  one exchange with the gateway
#define S_HTTP_TRIES         3     //  an order answered 429 or 503 is sent again
#define S_EPOCHS_PAGE        50    //  epochs asked for at once (newest first)
#define S_DEPOSIT_DEADLINE_S 120   //  for every deposit to be confirmed on chain and credited
#define S_PRICE_STEP         100   //  µ/kWh: prices are drawn in 0.0001 steps
#define S_LABEL_PX           44    //  the chart: room one hour's label needs
//  Prices of the model, µ/kWh: a prosumer asks the floor under a full midday sun and up to
//  the floor + scarcity as the sun fades (plus its own margin); a consumer bids its
//  willingness to pay, and a premium per mille of load above S_PEAK_PM at its busy hours.
#define S_ASK_FLOOR    60000
#define S_ASK_SCARCITY 120000
#define S_PEAK_PM      700
#define S_PEAK_PREMIUM 50

//  Solar output per hour of the day, per mille of the day's peak: a bell between 6:00 and
//  19:00 (sin of the hour's middle over that span, rounded).
static const int s_solar_pm[24] = {0,    0,   0,   0,   0,   0,   120, 355, 568, 749, 885, 971,
                                   1000, 971, 885, 749, 568, 355, 120, 0,   0,   0,   0,   0};
//  Load per hour, per mille of a consumer's peak hour: homes (morning and evening peaks) and
//  campus buildings (busy from 8:00 to 18:00).
static const int s_home_pm[24] = {420, 380, 360, 350, 360, 420, 620,  900,  950,  700, 560, 540,
                                  580, 560, 540, 580, 700, 880, 1000, 1050, 1000, 880, 700, 520};
static const int s_campus_pm[24] = {300, 280, 280,  280,  300, 350, 500, 750, 950, 1000, 1000, 980,
                                    950, 980, 1000, 1000, 950, 800, 600, 480, 420, 380,  350,  320};

typedef struct {
    char name[65];
    char wallet[64];
    uint8_t seed[AUTH_SEED_BYTES]; //  the wallet's key: signing up proves the wallet is theirs
    char token[1024];
    bool prosumer;
    bool campus;         //  consumers: a campus building (else a home)
    int64_t pv_peak_wh;  //  prosumers: output in the sunniest hour under a clear sky
    int64_t base_wh;     //  load in the profile's peak hour (prosumers: their own)
    int64_t price;       //  consumers: willingness to pay; prosumers: margin over the floor
    char deposit_id[32]; //  the deposit that covers their orders, in an escrow market
} s_user_t;

typedef struct {
    int hour; //  of the simulated day, 0..23
    int64_t epoch;
    int64_t supply_wh, demand_wh; //  offered and bid, as the market accepted them
    int sells, buys, refused;
    bool cleared;
    int64_t price; //  clearing price, µ/kWh; 0 = none
    int64_t volume_wh;
    int64_t trades;
    int64_t grid_in_wh, grid_out_wh; //  what the grid sold to the campus, and bought from it
} s_row_t;

typedef struct {
    uint64_t trade_id;
    int64_t epoch;
    int state; //  proto_settle_state_t
} s_settle_t;

typedef struct {
    //  options
    const char *config_path, *url, *market, *wallets_path, *svg_path;
    int prosumers, consumers, hours, start_hour, settle_timeout_s;
    uint64_t seed;
    bool json;
    //  the system
    mce_config_t cfg;
    CURL *curl;
    bool quiet;     //  no line for an exchange that got no answer (waiting for the gateway)
    char base[256]; //  the gateway's URL, without a trailing slash
    char market_id[33];
    char mode[16];
    int64_t epoch_seconds, future_epochs, tick, lot, min_qty, max_qty;
    bool escrow;                       //  orders must be covered by deposits
    int64_t grid_import, grid_feed_in; //  the grid's tariffs, µ/kWh (0: it offers none)
    char grid_name[65];                //  its user, "" without a grid
    s_user_t grid;                     //  signed up with a wallet of its own, never trades
    bus_sub_t *settler;                //  the settler's bus; NULL once it failed
    //  the day
    uint64_t rng;
    int sky_pm; //  the campus's sky, per mille of a clear one (clouds drift over every roof)
    s_user_t *users;
    int user_count;
    s_row_t *rows;
    int64_t first_epoch;
    s_settle_t *settles;
    size_t settle_count, settle_cap;
    char first_failure[PROTO_STR128_MAX + 80];
} s_demo_t;

//  ---------------------------------------------------------------------------------------
//  Numbers

//  splitmix64: small, fast, and the same sequence on every machine for a seed.
static uint64_t s_rand (s_demo_t *self)
{
    uint64_t z = (self->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

//  A uniform integer in [lo, hi].
static int64_t s_between (s_demo_t *self, int64_t lo, int64_t hi)
{
    return lo + (int64_t) (s_rand (self) % (uint64_t) (hi - lo + 1));
}

static int64_t s_round_down (int64_t value, int64_t step)
{
    return value / step * step;
}

//  kWh with 3 decimals.
static const char *s_kwh (int64_t wh, char *buf, size_t size)
{
    snprintf (buf, size, "%" PRId64 ".%03" PRId64, wh / 1000, wh % 1000);
    return buf;
}

//  A price with 4 decimals (rounded half up to 0.0001); "-" for none.
static const char *s_price4 (int64_t micro, char *buf, size_t size)
{
    if (micro <= 0)
        snprintf (buf, size, "-");
    else {
        int64_t p = (micro + S_PRICE_STEP / 2) / S_PRICE_STEP;
        snprintf (buf, size, "%" PRId64 ".%04" PRId64, p / 10000, p % 10000);
    }
    return buf;
}

//  A decimal string of the API (or null) as an integer; 0 when absent or not a decimal.
static int64_t s_decimal (json_t *value, int scale)
{
    const char *text = json_string_value (value);
    int64_t v = 0;
    if (!text || decimal_parse (text, strlen (text), scale, &v) != DECIMAL_OK)
        return 0;
    return v;
}

//  ---------------------------------------------------------------------------------------
//  HTTP: libcurl appears only here

typedef struct {
    char *data;
    size_t len, cap;
} s_body_t;

static size_t s_take (char *ptr, size_t size, size_t n, void *arg)
{
    s_body_t *b = arg;
    if (!grow_to ((void **) &b->data, &b->cap, b->len + size * n + 1, 1))
        return 0;
    memcpy (b->data + b->len, ptr, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

//  One exchange with the gateway: method path, body (JSON, may be NULL), bearer token (may be
//  NULL). Returns the HTTP status, or 0 when there was no answer (reason on stderr); the
//  answer parsed as JSON goes to *out (NULL when it is not JSON), which the caller owns.
static long s_http (s_demo_t *self, const char *method, const char *path, json_t *body,
                    const char *token, json_t **out)
{
    *out = NULL;
    char url[512], auth[1100];
    snprintf (url, sizeof url, "%s%s", self->base, path);
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    if (token) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append (headers, auth);
    }
    s_body_t answer = {0};
    CURL *c = self->curl;
    curl_easy_reset (c); //  keeps the connection for the next exchange
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, method);
    if (text) {
        curl_easy_setopt (c, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE, (long) strlen (text));
    }
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_take);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, (long) S_HTTP_TIMEOUT_MS);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    CURLcode rc = curl_easy_perform (c);
    if (rc == CURLE_OK)
        curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
    else if (!self->quiet)
        fprintf (stderr, "mce-demo: %s %s: %s\n", method, url, curl_easy_strerror (rc));
    if (answer.data)
        *out = json_loads (answer.data, 0, NULL);
    free (answer.data);
    free (text);
    curl_slist_free_all (headers);
    return status;
}

//  "code: message" of an error answer, for a line on stderr.
static const char *s_why (json_t *answer, char *buf, size_t size)
{
    json_t *e = json_object_get (answer, "error");
    const char *code = json_string_value (json_object_get (e, "code"));
    const char *msg = json_string_value (json_object_get (e, "message"));
    snprintf (buf, size, "%s: %s", code ? code : "no error code", msg ? msg : "(no message)");
    return buf;
}

//  ---------------------------------------------------------------------------------------
//  Settlement, from the settler's bus

static s_settle_t *s_settle_find (s_demo_t *self, uint64_t trade_id)
{
    for (size_t i = 0; i < self->settle_count; i++)
        if (self->settles[i].trade_id == trade_id)
            return &self->settles[i];
    return NULL;
}

static void s_on_settlement (s_demo_t *self, const proto_settlement_t *s)
{
    if (strcmp (s->market, self->market_id) != 0 || s->epoch < self->first_epoch ||
        s->epoch >= self->first_epoch + self->hours)
        return; //  not one of the demo's epochs
    s_settle_t *x = s_settle_find (self, s->trade_id);
    if (!x) {
        if (!grow_to ((void **) &self->settles, &self->settle_cap, self->settle_count + 1,
                      sizeof *self->settles))
            return;
        x = &self->settles[self->settle_count++];
        *x = (s_settle_t){.trade_id = s->trade_id, .epoch = s->epoch};
    }
    x->state = s->state;
    if (s->state == PROTO_SETTLE_STATE_FAILED && !self->first_failure[0])
        snprintf (self->first_failure, sizeof self->first_failure, "trade %" PRIu64 ": %s",
                  s->trade_id, s->error);
}

//  The demo's one pause: waits up to ms for the settler's bus, taking what it says. Between
//  two questions to the gateway, so waiting makes progress too.
static void s_idle (s_demo_t *self, int ms)
{
    int64_t until = clock_mono_ns () + ms * MCE_NS_PER_MSEC;
    while (!zsys_interrupted) {
        int64_t left = (until - clock_mono_ns ()) / MCE_NS_PER_MSEC;
        if (left <= 0)
            break;
        if (!self->settler) {
            zmq_poll (NULL, 0, (long) left); //  no bus to wait on: a plain poll interval
            break;
        }
        bus_event_t ev;
        int rc = bus_sub_recv (self->settler, &ev, (int) left);
        if (rc < 0) {
            fprintf (stderr,
                     "mce-demo: the settler's bus (%s) failed: settlement is not followed\n",
                     self->cfg.settler.bus.pub);
            bus_sub_destroy (&self->settler);
        }
        else if (rc == 1 && ev.msg.kind == PROTO_settlement)
            s_on_settlement (self, &ev.msg.settlement);
    }
}

//  Trades of an epoch (of all epochs when epoch is 0) confirmed and failed on chain.
static void s_settled (s_demo_t *self, int64_t epoch, int64_t *confirmed, int64_t *failed)
{
    *confirmed = *failed = 0;
    for (size_t i = 0; i < self->settle_count; i++) {
        if (epoch && self->settles[i].epoch != epoch)
            continue;
        *confirmed += self->settles[i].state == PROTO_SETTLE_STATE_CONFIRMED;
        *failed += self->settles[i].state == PROTO_SETTLE_STATE_FAILED;
    }
}

//  ---------------------------------------------------------------------------------------
//  The system: gateway up, the market, the users

static int s_wait_gateway (s_demo_t *self)
{
    int64_t deadline = clock_mono_ns () + S_HEALTH_DEADLINE_S * MCE_NS_PER_SEC;
    json_t *h = NULL;
    self->quiet = true; //  a gateway that is starting refuses connections for a while
    while (!zsys_interrupted && clock_mono_ns () < deadline) {
        json_decref (h);
        if (s_http (self, "GET", "/api/health", NULL, NULL, &h) == 200 &&
            json_is_true (json_object_get (json_object_get (h, "matcher"), "up")) &&
            json_is_true (json_object_get (json_object_get (h, "postgres"), "up"))) {
            json_decref (h);
            self->quiet = false;
            return 0;
        }
        s_idle (self, S_POLL_MS * 5);
    }
    self->quiet = false;
    char *said = h ? json_dumps (h, JSON_COMPACT) : NULL;
    fprintf (stderr,
             "mce-demo: the gateway at %s did not report its matcher and Postgres up within %d "
             "s (GET /api/health: %s)\n",
             self->base, S_HEALTH_DEADLINE_S, said ? said : "no answer");
    free (said);
    json_decref (h);
    return -1;
}

//  The market's rules, from the gateway (GET /api/dashboard/config), so the demo fits the
//  system it talks to rather than its own configuration file.
static int s_market (s_demo_t *self)
{
    json_t *answer;
    long status = s_http (self, "GET", "/api/dashboard/config", NULL, NULL, &answer);
    json_t *markets = json_object_get (answer, "markets"), *m = NULL, *each;
    size_t i;
    json_array_foreach (markets, i, each)
    {
        const char *id = json_string_value (json_object_get (each, "id"));
        if (id && (self->market ? strcmp (id, self->market) == 0 : i == 0))
            m = each;
    }
    if (status != 200 || !m) {
        fprintf (stderr, "mce-demo: %s (GET /api/dashboard/config: %ld)\n",
                 status == 200 ? "no such market" : "the gateway does not list its markets",
                 status);
        json_decref (answer);
        return -1;
    }
    snprintf (self->market_id, sizeof self->market_id, "%s",
              json_string_value (json_object_get (m, "id")));
    const char *mode = json_string_value (json_object_get (m, "mode"));
    snprintf (self->mode, sizeof self->mode, "%s", mode ? mode : "?");
    self->epoch_seconds = json_integer_value (json_object_get (m, "epoch_seconds"));
    self->future_epochs = json_integer_value (json_object_get (m, "future_epochs"));
    self->tick = s_decimal (json_object_get (m, "tick"), DECIMAL_PRICE_SCALE);
    self->lot = s_decimal (json_object_get (m, "lot"), DECIMAL_KWH_SCALE);
    self->min_qty = s_decimal (json_object_get (m, "min_qty"), DECIMAL_KWH_SCALE);
    self->max_qty = s_decimal (json_object_get (m, "max_qty"), DECIMAL_KWH_SCALE);
    self->escrow = json_is_true (json_object_get (m, "escrow"));
    self->grid_import = s_decimal (json_object_get (m, "grid_import_price"), DECIMAL_PRICE_SCALE);
    self->grid_feed_in = s_decimal (json_object_get (m, "grid_feed_in_price"), DECIMAL_PRICE_SCALE);
    const char *grid = json_string_value (json_object_get (m, "grid_user"));
    snprintf (self->grid_name, sizeof self->grid_name, "%s", grid ? grid : "");
    json_decref (answer);
    if (self->epoch_seconds < 1 || self->tick < 1 || self->lot < 1 || self->max_qty < 1) {
        fprintf (stderr, "mce-demo: market %s: the gateway's description is incomplete\n",
                 self->market_id);
        return -1;
    }
    if (strcmp (self->mode, "continuous") == 0)
        fprintf (stderr,
                 "mce-demo: note: %s is a continuous market: orders trade as they arrive and "
                 "no epoch has a clearing price (tools/run.sh --demo runs an auction market)\n",
                 self->market_id);
    return 0;
}

//  The funded wallets (the ledger's setup file) and a user for each: prosumers first.
static int s_make_users (s_demo_t *self)
{
    json_error_t err;
    json_t *setup = json_load_file (self->wallets_path, 0, &err);
    json_t *list = json_object_get (setup, "users");
    int need = self->prosumers + self->consumers + (self->grid_name[0] ? 1 : 0); //  wallets
    if (!json_is_array (list)) {
        fprintf (stderr, "mce-demo: %s: %s\n", self->wallets_path,
                 setup ? "no users list (is it the ledger's setup file?)" : err.text);
        json_decref (setup);
        return -1;
    }
    if ((int) json_array_size (list) < need) {
        fprintf (stderr,
                 "mce-demo: %s has %zu funded wallets, and the %d users of this demo (the grid "
                 "too, when the market has one) need one each (a trade between two users of one "
                 "wallet would move tokens to itself): start the ledger with --users %d "
                 "(tools/run.sh --demo does), or ask for fewer --prosumers / --consumers\n",
                 self->wallets_path, json_array_size (list), need, need);
        json_decref (setup);
        return -1;
    }
    self->user_count = self->prosumers + self->consumers;
    self->users = calloc ((size_t) need, sizeof *self->users);
    if (!self->users) {
        json_decref (setup);
        return -1;
    }
    //  With settler.wallets = keys_file the settler finds a wallet by the user's name in that
    //  file, so the users take the ledger's names; otherwise (Postgres) names that say what
    //  they are, with the wallet they register.
    bool by_name = self->cfg.settler.wallets == CONFIG_WALLETS_KEYS_FILE;
    for (int i = 0; i < need; i++) {
        s_user_t *u = &self->users[i];
        json_t *entry = json_array_get (list, (size_t) i);
        const char *name = json_string_value (json_object_get (entry, "name"));
        const char *wallet = json_string_value (json_object_get (entry, "wallet"));
        const char *seed = json_string_value (json_object_get (entry, "walletSecretSeedHex"));
        if (!name || !wallet) {
            fprintf (stderr, "mce-demo: %s: users[%d] has no name or wallet\n", self->wallets_path,
                     i);
            json_decref (setup);
            return -1;
        }
        //  Signing up proves the wallet with its signature: the demo needs each one's key.
        char derived[AUTH_WALLET_MAX];
        if (auth_seed_parse_hex (seed, self->users[i].seed) ||
            auth_wallet_of_seed (self->users[i].seed, derived, sizeof derived) ||
            strcmp (derived, wallet) != 0) {
            fprintf (stderr,
                     "mce-demo: %s: users[%d] (%s) has no walletSecretSeedHex of its wallet: "
                     "the demo signs up with wallets whose keys it holds\n",
                     self->wallets_path, i, name);
            json_decref (setup);
            return -1;
        }
        u->prosumer = i < self->prosumers;
        if (i == self->user_count) {
            //  the grid: its own wallet (the utility's), from which it sells and into which it
            //  is paid; it places no orders
            snprintf (self->grid.name, sizeof self->grid.name, "%s", self->grid_name);
            snprintf (self->grid.wallet, sizeof self->grid.wallet, "%s", wallet);
            memcpy (self->grid.seed, u->seed, sizeof self->grid.seed);
            continue;
        }
        if (by_name)
            snprintf (u->name, sizeof u->name, "%s", name);
        else if (u->prosumer)
            snprintf (u->name, sizeof u->name, "demo-prosumer-%d", i + 1);
        else
            snprintf (u->name, sizeof u->name, "demo-consumer-%d", i - self->prosumers + 1);
        snprintf (u->wallet, sizeof u->wallet, "%s", wallet);
        //  Who they are, drawn once: roofs of 3 to 8 kW peak and a household's own load;
        //  consumers of 0.8 to 2.5 kWh at their peak hour (homes) or 2 to 5 (every third is
        //  a campus building), willing to pay 0.14 to 0.28 per kWh.
        if (u->prosumer) {
            u->pv_peak_wh = s_round_down (s_between (self, 3000, 8000), 100);
            u->base_wh = s_round_down (s_between (self, 300, 800), 10);
            u->price = s_round_down (s_between (self, 0, 20000), S_PRICE_STEP);
        }
        else {
            u->campus = (i - self->prosumers) % 3 == 2;
            u->base_wh = s_round_down (
                u->campus ? s_between (self, 2000, 5000) : s_between (self, 800, 2500), 10);
            u->price = s_round_down (s_between (self, 140000, 280000), S_PRICE_STEP);
        }
    }
    json_decref (setup);
    return 0;
}

//  Registers every user (one that exists already keeps its wallet) and signs each in.
static int s_sign_in (s_demo_t *self, s_user_t *u)
{
    json_t *answer;
    json_t *body = json_pack ("{s:s,s:s}", "username", u->name, "password", S_PASSWORD);
    long status = s_http (self, "POST", "/api/auth/login", body, NULL, &answer);
    json_decref (body);
    const char *token = json_string_value (json_object_get (answer, "token"));
    char why[256];
    if (status != 200 || !token) {
        fprintf (stderr, "mce-demo: cannot sign in as %s: %ld %s\n", u->name, status,
                 s_why (answer, why, sizeof why));
        json_decref (answer);
        return -1;
    }
    snprintf (u->token, sizeof u->token, "%s", token);
    json_decref (answer);
    return 0;
}

//  Registers u as any client does: the gateway's challenge, signed with u's wallet, then the
//  registration with that signature. The registration's status, its answer in *answer.
static long s_register (s_demo_t *self, s_user_t *u, json_t **answer)
{
    json_t *body = json_pack ("{s:s,s:s}", "wallet", u->wallet, "username", u->name);
    long status = s_http (self, "POST", "/api/auth/challenge", body, NULL, answer);
    json_decref (body);
    const char *message = json_string_value (json_object_get (*answer, "message"));
    char signature[AUTH_SIGNATURE_TEXT_MAX];
    if (status != 200 || !message)
        return status ? status : 0;
    auth_wallet_sign (u->seed, message, strlen (message), signature, sizeof signature);
    json_decref (*answer);
    body = json_pack ("{s:s,s:s,s:s,s:s}", "username", u->name, "password", S_PASSWORD, "wallet",
                      u->wallet, "signature", signature);
    status = s_http (self, "POST", "/api/auth/register", body, NULL, answer);
    json_decref (body);
    return status;
}

static int s_sign_up (s_demo_t *self)
{
    int existing = 0;
    int count = self->user_count + (self->grid_name[0] ? 1 : 0); //  the grid last
    for (int i = 0; i < count && !zsys_interrupted; i++) {
        s_user_t *u = i < self->user_count ? &self->users[i] : &self->grid;
        json_t *answer;
        long status = s_register (self, u, &answer);
        const char *code =
            json_string_value (json_object_get (json_object_get (answer, "error"), "code"));
        char why[256];
        if (status == 409 && code && strcmp (code, "username_taken") == 0)
            existing++;
        else if (status != 201) {
            fprintf (stderr, "mce-demo: cannot register %s: %ld %s\n", u->name, status,
                     s_why (answer, why, sizeof why));
            json_decref (answer);
            return -1;
        }
        json_decref (answer);
        if (s_sign_in (self, u))
            return -1;
    }
    if (existing)
        fprintf (stderr,
                 "mce-demo: %d of the %d users were registered already; they keep the wallets "
                 "they registered then\n",
                 existing, self->user_count);
    if (!zsys_interrupted)
        fprintf (stderr, "demo: %d prosumers and %d consumers signed in at %s\n", self->prosumers,
                 self->consumers, self->base);
    if (!zsys_interrupted && self->grid_name[0]) {
        char in[DECIMAL_FORMAT_MAX], out[DECIMAL_FORMAT_MAX];
        decimal_format (self->grid_import, DECIMAL_PRICE_SCALE, in, sizeof in);
        decimal_format (self->grid_feed_in, DECIMAL_PRICE_SCALE, out, sizeof out);
        fprintf (stderr,
                 "demo: the grid (%s, wallet %s) sells at %s and buys at %s per kWh; what no "
                 "prosumer covers, it does\n",
                 self->grid.name, self->grid.wallet, self->grid_import ? in : "-",
                 self->grid_feed_in ? out : "-");
    }
    return zsys_interrupted ? -1 : 0;
}

//  What consumer u bids at load_pm of its peak: its willingness to pay, and a premium at its
//  busy hours. With the grid in the market, at least the import tariff: a consumer is on the
//  grid anyway, and what the market does not give it the utility sells it at that price.
static int64_t s_bid_price (const s_demo_t *self, const s_user_t *u, int load_pm)
{
    int64_t price = u->price + (load_pm > S_PEAK_PM ? (load_pm - S_PEAK_PM) * S_PEAK_PREMIUM : 0);
    return price < self->grid_import ? self->grid_import : price;
}

//  ---------------------------------------------------------------------------------------
//  Deposits: in an escrow market an order must be covered by what its user deposited

//  What the user's orders of the whole simulation could need at most, in base units (Wh of
//  energy for a prosumer, µ of money for a consumer): every hour's largest offer or bid at its
//  highest price, as s_trade_hour draws them. Holds are released as epochs clear, so this is
//  generous; it stays well inside what the ledger funds each wallet for a week's demo.
static int64_t s_deposit_need (const s_demo_t *self, const s_user_t *u)
{
    int64_t need = 0;
    for (int i = 0; i < self->hours; i++) {
        int h = (self->start_hour + i) % 24;
        if (u->prosumer)
            need += u->pv_peak_wh * s_solar_pm[h] / 1000;
        else {
            int load_pm = u->campus ? s_campus_pm[h] : s_home_pm[h];
            int64_t wh = u->base_wh * load_pm / 1000 * 1050 / 1000;      //  the noise at its top
            int64_t price = s_bid_price (self, u, load_pm) + self->tick; //  the tick's rounding
            need += (wh * price + 999) / 1000 + 1; //  a bid's hold, rounded up, per lot
        }
    }
    return need;
}

//  The user's available balance of the asset it deposits, in base units (-1: no answer). The
//  gateway's view of the matcher's bus: a deposit shows here once the matcher credited it.
static int64_t s_available (s_demo_t *self, s_user_t *u)
{
    json_t *answer;
    int64_t available = -1;
    if (s_http (self, "GET", "/api/account/balances", NULL, u->token, &answer) == 200)
        available =
            s_decimal (json_object_get (json_object_get (json_object_get (answer, "balances"),
                                                         u->prosumer ? "energy" : "payment"),
                                        "available"),
                       u->prosumer ? DECIMAL_KWH_SCALE : DECIMAL_PRICE_SCALE);
    json_decref (answer);
    return available;
}

//  Every prosumer deposits the energy it may offer, every consumer the money it may bid, as
//  any client does (POST /api/account/deposits: the settler moves the tokens from the wallet
//  into the platform's vault, and the matcher credits them once the chain confirms); then
//  waits until every one is credited. 0, or -1 after saying why.
static int s_deposit (s_demo_t *self)
{
    if (!self->escrow)
        return 0;
    int64_t energy = 0, money = 0;
    int asked = 0;
    for (int i = 0; i < self->user_count && !zsys_interrupted; i++) {
        s_user_t *u = &self->users[i];
        int64_t need = s_deposit_need (self, u);
        if (need <= 0)
            continue; //  nothing to offer in these hours (a prosumer at night)
        char amount[DECIMAL_FORMAT_MAX];
        decimal_format (need, u->prosumer ? DECIMAL_KWH_SCALE : DECIMAL_PRICE_SCALE, amount,
                        sizeof amount);
        json_t *body =
            json_pack ("{s:s,s:s}", "asset", u->prosumer ? "energy" : "payment", "amount", amount);
        json_t *answer;
        long status = s_http (self, "POST", "/api/account/deposits", body, u->token, &answer);
        json_decref (body);
        const char *id = json_string_value (json_object_get (answer, "deposit_id"));
        char why[256];
        if (status != 202 || !id) {
            fprintf (stderr, "mce-demo: %s cannot deposit %s %s: %ld %s\n", u->name, amount,
                     u->prosumer ? "kWh" : "of money", status, s_why (answer, why, sizeof why));
            json_decref (answer);
            return -1;
        }
        snprintf (u->deposit_id, sizeof u->deposit_id, "%s", id);
        json_decref (answer);
        *(u->prosumer ? &energy : &money) += need;
        asked++;
    }
    char e[32], m[DECIMAL_FORMAT_MAX];
    decimal_format (money, DECIMAL_PRICE_SCALE, m, sizeof m);
    fprintf (stderr,
             "demo: %d deposits asked (%s kWh of energy, %s of money); waiting for the chain\n",
             asked, s_kwh (energy, e, sizeof e), m);
    int64_t deadline = clock_mono_ns () + S_DEPOSIT_DEADLINE_S * MCE_NS_PER_SEC;
    for (int i = 0; i < self->user_count && !zsys_interrupted; i++) {
        s_user_t *u = &self->users[i];
        int64_t need = s_deposit_need (self, u), available;
        if (need <= 0)
            continue;
        while ((available = s_available (self, u)) < need && clock_mono_ns () < deadline &&
               !zsys_interrupted)
            s_idle (self, S_POLL_MS);
        if (available < need && !zsys_interrupted) {
            fprintf (stderr,
                     "mce-demo: %s's deposit %s was not credited within %d s (mcectl --as %s "
                     "deposits, or the settler's log, says why)\n",
                     u->name, u->deposit_id, S_DEPOSIT_DEADLINE_S, u->name);
            return -1;
        }
    }
    if (!zsys_interrupted)
        fprintf (stderr, "demo: every deposit is credited: the orders are covered\n");
    return zsys_interrupted ? -1 : 0;
}

//  ---------------------------------------------------------------------------------------
//  The market's clock and results

//  The current epoch, as the gateway says; -1 when it does not answer.
static int64_t s_current_epoch (s_demo_t *self)
{
    char path[128];
    snprintf (path, sizeof path, "/api/market/epoch/status?market=%s", self->market_id);
    json_t *answer;
    int64_t epoch = -1;
    if (s_http (self, "GET", path, NULL, NULL, &answer) == 200 &&
        json_is_integer (json_object_get (answer, "epoch")))
        epoch = json_integer_value (json_object_get (answer, "epoch"));
    json_decref (answer);
    return epoch;
}

//  How long until epoch's end, plus the grace its results may take, as a monotonic deadline.
static int64_t s_deadline_after (s_demo_t *self, int64_t epoch)
{
    int64_t end_ns = (epoch + 1) * self->epoch_seconds * MCE_NS_PER_SEC;
    int64_t wait = end_ns - clock_wall_ns ();
    return clock_mono_ns () + (wait > 0 ? wait : 0) + S_CLEAR_GRACE_S * MCE_NS_PER_SEC;
}

//  Waits until the market's current epoch is at least epoch (it opened). 0, or -1.
static int s_wait_open (s_demo_t *self, int64_t epoch)
{
    int64_t deadline = s_deadline_after (self, epoch - 1);
    int64_t now = -1;
    while (!zsys_interrupted && clock_mono_ns () < deadline) {
        if ((now = s_current_epoch (self)) >= epoch)
            return 0;
        s_idle (self, S_POLL_MS);
    }
    if (!zsys_interrupted)
        fprintf (stderr,
                 "mce-demo: epoch %" PRId64 " did not open in time (the gateway says %" PRId64
                 ")\n",
                 epoch, now);
    return -1;
}

//  Waits until the row's epoch has cleared and takes its result. 0, or -1.
static int s_wait_cleared (s_demo_t *self, s_row_t *row)
{
    int64_t deadline = s_deadline_after (self, row->epoch);
    char path[128];
    snprintf (path, sizeof path, "/api/market/epochs?market=%s&limit=%d", self->market_id,
              S_EPOCHS_PAGE);
    while (!zsys_interrupted && clock_mono_ns () < deadline) {
        json_t *answer, *e;
        size_t i;
        if (s_http (self, "GET", path, NULL, NULL, &answer) == 200)
            json_array_foreach (json_object_get (answer, "epochs"), i, e)
            {
                const char *state = json_string_value (json_object_get (e, "state"));
                if (json_integer_value (json_object_get (e, "epoch")) != row->epoch || !state ||
                    (strcmp (state, "cleared") && strcmp (state, "settled")))
                    continue;
                row->cleared = true;
                row->price = s_decimal (json_object_get (e, "clearing_price"), DECIMAL_PRICE_SCALE);
                row->volume_wh = s_decimal (json_object_get (e, "volume"), DECIMAL_KWH_SCALE);
                row->trades = json_integer_value (json_object_get (e, "trades"));
                //  the gate closure's auction: what the grid sold and bought in it
                json_t *a = json_object_get (e, "last_auction");
                row->grid_in_wh = s_decimal (json_object_get (a, "grid_sold"), DECIMAL_KWH_SCALE);
                row->grid_out_wh =
                    s_decimal (json_object_get (a, "grid_bought"), DECIMAL_KWH_SCALE);
            }
        json_decref (answer);
        if (row->cleared)
            return 0;
        s_idle (self, S_POLL_MS);
    }
    if (!zsys_interrupted)
        fprintf (stderr, "mce-demo: epoch %" PRId64 " did not clear in time (GET %s)\n", row->epoch,
                 path);
    return -1;
}

//  ---------------------------------------------------------------------------------------
//  One simulated hour

//  One limit order for the row's epoch; true when the market took it. A 429 or 503 is asked
//  again, after a short back-off; an expired token is renewed.
static bool s_place (s_demo_t *self, s_user_t *u, s_row_t *row, bool buy, int64_t wh, int64_t price)
{
    char qty[DECIMAL_FORMAT_MAX], px[DECIMAL_FORMAT_MAX], coid[80];
    decimal_format (wh, DECIMAL_KWH_SCALE, qty, sizeof qty);
    decimal_format (price, DECIMAL_PRICE_SCALE, px, sizeof px);
    //  the same order sent twice (a retry) is placed once
    snprintf (coid, sizeof coid, "demo-%" PRId64 "-%s", row->epoch, buy ? "buy" : "sell");
    json_t *body = json_pack ("{s:s,s:s,s:s,s:s,s:I,s:s}", "market", self->market_id, "side",
                              buy ? "Buy" : "Sell", "energy_amount", qty, "price", px, "epoch",
                              (json_int_t) row->epoch, "client_order_id", coid);
    if (!buy)
        json_object_set_new (body, "energy_source", json_string ("solar"));
    long status = 0;
    json_t *answer = NULL;
    for (int attempt = 1; attempt <= S_HTTP_TRIES && !zsys_interrupted; attempt++) {
        json_decref (answer);
        status = s_http (self, "POST", "/api/trading/orders", body, u->token, &answer);
        if (status == 401 && s_sign_in (self, u) == 0)
            continue;
        if (status != 429 && status != 503)
            break;
        s_idle (self, 200 * attempt);
    }
    json_decref (body);
    char why[256];
    if (status != 201)
        fprintf (stderr,
                 "mce-demo: %s's %s of %s kWh at %s for epoch %" PRId64 " refused: %ld %s\n",
                 u->name, buy ? "bid" : "offer", qty, px, row->epoch, status,
                 s_why (answer, why, sizeof why));
    json_decref (answer);
    return status == 201;
}

//  The price on the market's tick, at least one tick.
static int64_t s_on_tick (s_demo_t *self, int64_t price)
{
    price = s_round_down (price, self->tick);
    return price > self->tick ? price : self->tick;
}

//  A quantity on the market's lot, within its limits; 0 when too small to offer.
static int64_t s_on_lot (s_demo_t *self, int64_t wh)
{
    wh = s_round_down (wh > self->max_qty ? self->max_qty : wh, self->lot);
    return wh >= self->min_qty ? wh : 0;
}

//  Everyone's order for the row's hour.
static void s_trade_hour (s_demo_t *self, s_row_t *row)
{
    int h = row->hour;
    //  The sky drifts a little each hour; each roof sees it with its own shade and haze.
    self->sky_pm += (int) s_between (self, -150, 150);
    self->sky_pm = self->sky_pm < 450 ? 450 : self->sky_pm > 1000 ? 1000 : self->sky_pm;
    int64_t sun_pm = (int64_t) s_solar_pm[h] * self->sky_pm / 1000; //  solar on campus now
    for (int i = 0; i < self->user_count; i++) {
        s_user_t *u = &self->users[i];
        if (u->prosumer) {
            int64_t roof_pm = s_between (self, 850, 1000);
            int64_t pv = u->pv_peak_wh * sun_pm / 1000 * roof_pm / 1000;
            int64_t own = u->base_wh * s_home_pm[h] / 1000;
            int64_t surplus = s_on_lot (self, pv - own);
            //  the scarcer the sun, the dearer: 0.06 under a full midday sun, up to 0.18
            //  at dawn and dusk, plus the prosumer's own margin
            int64_t price = S_ASK_FLOOR + S_ASK_SCARCITY * (1000 - sun_pm) / 1000 + u->price;
            price = s_on_tick (self, s_round_down (price, S_PRICE_STEP));
            if (surplus > 0 && s_place (self, u, row, false, surplus, price)) {
                row->supply_wh += surplus;
                row->sells++;
            }
            else if (surplus > 0)
                row->refused++;
        }
        else {
            int load_pm = u->campus ? s_campus_pm[h] : s_home_pm[h];
            int64_t noise_pm = s_between (self, 950, 1050);
            int64_t want = s_on_lot (self, u->base_wh * load_pm / 1000 * noise_pm / 1000);
            //  at their own busy hours consumers pay up to 0.0175 more
            int64_t price = s_bid_price (self, u, load_pm);
            price = s_on_tick (self, s_round_down (price, S_PRICE_STEP));
            if (want > 0 && s_place (self, u, row, true, want, price)) {
                row->demand_wh += want;
                row->buys++;
            }
            else if (want > 0)
                row->refused++;
        }
    }
}

static void s_progress_cleared (s_demo_t *self, const s_row_t *row)
{
    char s[32], d[32], v[32], p[32];
    fprintf (stderr, "demo: %02d:00  epoch %" PRId64 "  offered %s kWh, bid %s kWh  ->  ",
             row->hour, row->epoch, s_kwh (row->supply_wh, s, sizeof s),
             s_kwh (row->demand_wh, d, sizeof d));
    char g[32];
    if (row->trades && (row->grid_in_wh || row->grid_out_wh))
        fprintf (stderr, "%s kWh in %" PRId64 " trade%s at %s (the grid %s %s kWh)\n",
                 s_kwh (row->volume_wh, v, sizeof v), row->trades, row->trades == 1 ? "" : "s",
                 s_price4 (row->price, p, sizeof p), row->grid_in_wh ? "sold" : "bought",
                 s_kwh (row->grid_in_wh ? row->grid_in_wh : row->grid_out_wh, g, sizeof g));
    else if (row->trades)
        fprintf (stderr, "%s kWh in %" PRId64 " trade%s at %s\n",
                 s_kwh (row->volume_wh, v, sizeof v), row->trades, row->trades == 1 ? "" : "s",
                 s_price4 (row->price, p, sizeof p));
    else
        fprintf (stderr, "no trade (%s)\n",
                 !row->supply_wh   ? "no supply"
                 : !row->demand_wh ? "no demand"
                                   : "nothing crossed");
}

//  Until every trade of the day is confirmed (or failed) on chain, or the deadline.
static void s_wait_settled (s_demo_t *self)
{
    int64_t trades = 0, confirmed, failed;
    for (int i = 0; i < self->hours; i++)
        trades += self->rows[i].trades;
    int64_t start = clock_mono_ns ();
    int64_t deadline = start + self->settle_timeout_s * MCE_NS_PER_SEC, next_line = start;
    while (!zsys_interrupted) {
        s_settled (self, 0, &confirmed, &failed);
        int64_t now = clock_mono_ns ();
        bool done = confirmed + failed >= trades;
        if (done || now >= deadline || now >= next_line) {
            fprintf (stderr,
                     "demo: settling on chain: %" PRId64 " of %" PRId64
                     " trades confirmed, %" PRId64 " failed (%" PRId64 " s)%s\n",
                     confirmed, trades, failed, (int64_t) ((now - start) / MCE_NS_PER_SEC),
                     done              ? ""
                     : now >= deadline ? " - giving up (--settle-timeout)"
                                       : "");
            next_line = now + S_PROGRESS_MS * MCE_NS_PER_MSEC;
        }
        if (done || now >= deadline)
            break;
        s_idle (self, S_POLL_MS);
    }
    if (self->first_failure[0])
        fprintf (stderr, "demo: a settlement failed: %s\n", self->first_failure);
}

//  ---------------------------------------------------------------------------------------
//  The results: table, JSON, chart

typedef struct {
    int64_t supply, demand, volume, trades, settled, failed, refused, grid_in, grid_out;
    int64_t average_price; //  volume-weighted, µ/kWh; 0 = no trade
} s_totals_t;

static s_totals_t s_totals (s_demo_t *self)
{
    s_totals_t t = {0};
    __int128 value = 0;
    for (int i = 0; i < self->hours; i++) {
        const s_row_t *r = &self->rows[i];
        int64_t ok, bad;
        s_settled (self, r->epoch, &ok, &bad);
        t.supply += r->supply_wh;
        t.demand += r->demand_wh;
        t.volume += r->volume_wh;
        t.trades += r->trades;
        t.settled += ok;
        t.failed += bad;
        t.refused += r->refused;
        t.grid_in += r->grid_in_wh;
        t.grid_out += r->grid_out_wh;
        value += (__int128) r->price * r->volume_wh;
    }
    t.average_price = t.volume ? (int64_t) ((value + t.volume / 2) / t.volume) : 0;
    return t;
}

static void s_print_table (s_demo_t *self)
{
    char a[32], b[32], c[32], d[32], e[32], f[32];
    printf ("\nmce-demo: a campus day on %s (%s, %" PRId64 "-second epochs): %d prosumers, %d "
            "consumers, seed %" PRIu64 "\n\n",
            self->market_id, self->mode, self->epoch_seconds, self->prosumers, self->consumers,
            self->seed);
    printf ("%-5s %12s %12s %12s %10s %12s %10s %10s %7s %8s\n", "hour", "epoch", "supply kWh",
            "demand kWh", "price/kWh", "volume kWh", "grid in", "grid out", "trades", "settled");
    for (int i = 0; i < self->hours; i++) {
        const s_row_t *r = &self->rows[i];
        int64_t ok, bad;
        s_settled (self, r->epoch, &ok, &bad);
        printf ("%02d:00 %12" PRId64 " %12s %12s %10s %12s %10s %10s %7" PRId64 " %8" PRId64 "%s\n",
                r->hour, r->epoch, s_kwh (r->supply_wh, a, sizeof a),
                s_kwh (r->demand_wh, b, sizeof b), s_price4 (r->price, c, sizeof c),
                s_kwh (r->volume_wh, d, sizeof d), s_kwh (r->grid_in_wh, e, sizeof e),
                s_kwh (r->grid_out_wh, f, sizeof f), r->trades, ok,
                !r->cleared ? "  (not cleared)"
                : bad       ? "  (some failed)"
                            : "");
    }
    s_totals_t t = s_totals (self);
    printf ("%-5s %12s %12s %12s %10s %12s %10s %10s %7" PRId64 " %8" PRId64 "\n", "total", "",
            s_kwh (t.supply, a, sizeof a), s_kwh (t.demand, b, sizeof b),
            s_price4 (t.average_price, c, sizeof c), s_kwh (t.volume, d, sizeof d),
            s_kwh (t.grid_in, e, sizeof e), s_kwh (t.grid_out, f, sizeof f), t.trades, t.settled);
    printf ("(total price: the clearing prices weighted by volume; grid in / out: what the "
            "utility's grid sold to the campus at its import tariff / bought at its feed-in "
            "tariff, part of the volume; settled: confirmed on chain)\n");
}

static json_t *s_json_kwh (int64_t wh)
{
    char buf[DECIMAL_FORMAT_MAX];
    decimal_format (wh, DECIMAL_KWH_SCALE, buf, sizeof buf);
    return json_string (buf);
}

static json_t *s_json_price (int64_t micro)
{
    char buf[DECIMAL_FORMAT_MAX];
    decimal_format (micro, DECIMAL_PRICE_SCALE, buf, sizeof buf);
    return micro > 0 ? json_string (buf) : json_null ();
}

static void s_print_json (s_demo_t *self, bool svg_written)
{
    json_t *rows = json_array ();
    for (int i = 0; i < self->hours; i++) {
        const s_row_t *r = &self->rows[i];
        int64_t ok, bad;
        s_settled (self, r->epoch, &ok, &bad);
        json_array_append_new (
            rows,
            json_pack ("{s:i,s:I,s:o,s:o,s:i,s:i,s:i,s:b,s:o,s:o,s:o,s:o,s:I,s:I,s:I}", "hour",
                       r->hour, "epoch", (json_int_t) r->epoch, "supply", s_json_kwh (r->supply_wh),
                       "demand", s_json_kwh (r->demand_wh), "sells", r->sells, "buys", r->buys,
                       "refused", r->refused, "cleared", r->cleared, "clearing_price",
                       s_json_price (r->price), "volume", s_json_kwh (r->volume_wh), "grid_in",
                       s_json_kwh (r->grid_in_wh), "grid_out", s_json_kwh (r->grid_out_wh),
                       "trades", (json_int_t) r->trades, "settled", (json_int_t) ok, "failed",
                       (json_int_t) bad));
    }
    s_totals_t t = s_totals (self);
    json_t *root = json_pack (
        "{s:s,s:s,s:I,s:i,s:i,s:I,s:o,s:{s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I},s:o}", "market",
        self->market_id, "mode", self->mode, "epoch_seconds", (json_int_t) self->epoch_seconds,
        "prosumers", self->prosumers, "consumers", self->consumers, "seed", (json_int_t) self->seed,
        "hours", rows, "totals", "supply", s_json_kwh (t.supply), "demand", s_json_kwh (t.demand),
        "volume", s_json_kwh (t.volume), "grid_in", s_json_kwh (t.grid_in), "grid_out",
        s_json_kwh (t.grid_out), "average_price", s_json_price (t.average_price), "trades",
        (json_int_t) t.trades, "settled", (json_int_t) t.settled, "failed", (json_int_t) t.failed,
        "refused", (json_int_t) t.refused, "svg",
        svg_written ? json_string (self->svg_path) : json_null ());
    char *text = json_dumps (root, JSON_COMPACT);
    printf ("%s\n", text);
    free (text);
    json_decref (root);
}

//  A round step for an axis over 0..max (units as given): 1, 2 or 5 times a power of ten,
//  so that about five steps cover it.
static int64_t s_axis_step (int64_t max, int64_t smallest)
{
    int64_t step = smallest;
    while (true) {
        for (int k = 0; k < 3; k++) {
            int64_t s = step * (k == 0 ? 1 : k == 1 ? 2 : 5);
            if (max / s <= 5)
                return s;
        }
        step *= 10;
    }
}

//  Text for SVG: the market id is the only text that does not come from here.
static void s_svg_text (FILE *f, const char *text)
{
    for (; *text; text++)
        switch (*text) {
            case '<':
                fputs ("&lt;", f);
                break;
            case '>':
                fputs ("&gt;", f);
                break;
            case '&':
                fputs ("&amp;", f);
                break;
            case '"':
                fputs ("&quot;", f);
                break;
            default:
                fputc (*text, f);
        }
}

//  The chart: supply offered and demand bid as bars per hour, the traded volume as a line
//  (left axis, kWh), and the clearing price as a line (right axis, per kWh). 0, or -1.
static int s_write_svg (s_demo_t *self)
{
    FILE *f = fopen (self->svg_path, "w");
    if (!f) {
        fprintf (stderr, "mce-demo: cannot write %s: %m\n", self->svg_path);
        return -1;
    }
    const double W = 960, H = 580, left = 80, right = 90, top = 110, bottom = 70;
    const double pw = W - left - right, ph = H - top - bottom;
    int64_t max_wh = 1000, max_px = 10000;
    for (int i = 0; i < self->hours; i++) {
        const s_row_t *r = &self->rows[i];
        //  the grid's part stands on top of the bar it completes
        max_wh = r->supply_wh + r->grid_in_wh > max_wh ? r->supply_wh + r->grid_in_wh : max_wh;
        max_wh = r->demand_wh + r->grid_out_wh > max_wh ? r->demand_wh + r->grid_out_wh : max_wh;
        max_px = r->price > max_px ? r->price : max_px;
    }
    int64_t wh_step = s_axis_step (max_wh, 100), px_step = s_axis_step (max_px, 1000);
    int64_t wh_top = (max_wh + wh_step - 1) / wh_step * wh_step;
    int64_t px_top = (max_px + px_step - 1) / px_step * px_step;
    double slot = pw / self->hours;
#define S_X(i)   (left + slot * (i))
#define S_YE(wh) (top + ph - ph * (double) (wh) / (double) wh_top)
#define S_YP(px) (top + ph - ph * (double) (px) / (double) px_top)
    fprintf (f,
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
             "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
             W, H, W, H);
    fprintf (f,
             "<text x=\"%.0f\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" "
             "font-weight=\"bold\">A simulated campus day on ",
             W / 2);
    s_svg_text (f, self->market_id);
    fprintf (f,
             " (%s): %d prosumers, %d consumers</text>\n"
             "<text x=\"%.0f\" y=\"48\" text-anchor=\"middle\" fill=\"#555\">one %" PRId64
             "-second delivery epoch per simulated hour, every trade settled on chain</text>\n",
             self->mode, self->prosumers, self->consumers, W / 2, self->epoch_seconds);
    //  grid and the energy axis (left)
    char label[32];
    for (int64_t v = 0; v <= wh_top; v += wh_step) {
        decimal_format (v, DECIMAL_KWH_SCALE, label, sizeof label);
        fprintf (f,
                 "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n"
                 "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                 left, S_YE (v), left + pw, S_YE (v), left - 6, S_YE (v) + 4, label);
    }
    for (int64_t v = 0; v <= px_top; v += px_step) {
        decimal_format (v, DECIMAL_PRICE_SCALE, label, sizeof label);
        fprintf (f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c0392b\">%s</text>\n", left + pw + 6,
                 S_YP (v) + 4, label);
    }
    fprintf (f,
             "<text transform=\"translate(24 %.1f) rotate(-90)\" text-anchor=\"middle\">energy "
             "(kWh)</text>\n"
             "<text transform=\"translate(%.1f %.1f) rotate(90)\" text-anchor=\"middle\" "
             "fill=\"#c0392b\">clearing price (per kWh)</text>\n"
             "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">hour of the simulated day (one "
             "epoch each)</text>\n",
             top + ph / 2, W - 24, top + ph / 2, left + pw / 2, H - 22);
    //  bars: supply and demand side by side in each hour's slot, with the hour below
    int label_every = (int) (S_LABEL_PX / slot) + 1; //  hour labels that do not overlap
    for (int i = 0; i < self->hours; i++) {
        const s_row_t *r = &self->rows[i];
        double bw = slot * 0.36, x = S_X (i) + slot * 0.12;
        fprintf (f,
                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f5b700\"/>\n"
                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4a7fd4\"/>\n",
                 x, S_YE (r->supply_wh), bw, top + ph - S_YE (r->supply_wh), x + bw,
                 S_YE (r->demand_wh), bw, top + ph - S_YE (r->demand_wh));
        //  the grid: what it sold on top of the supply, what it bought on top of the demand
        if (r->grid_in_wh)
            fprintf (f,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                     "fill=\"#7f8c8d\"/>\n",
                     x, S_YE (r->supply_wh + r->grid_in_wh), bw,
                     S_YE (r->supply_wh) - S_YE (r->supply_wh + r->grid_in_wh));
        if (r->grid_out_wh)
            fprintf (f,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                     "fill=\"#bdc3c7\"/>\n",
                     x + bw, S_YE (r->demand_wh + r->grid_out_wh), bw,
                     S_YE (r->demand_wh) - S_YE (r->demand_wh + r->grid_out_wh));
        fprintf (f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                 S_X (i) + slot / 2, top + ph, S_X (i) + slot / 2, top + ph + 4);
        if (i % label_every == 0)
            fprintf (f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%02d:00</text>\n",
                     S_X (i) + slot / 2, top + ph + 18, r->hour);
    }
    //  traded volume: a line through every hour
    fprintf (f, "<polyline fill=\"none\" stroke=\"#2e8b57\" stroke-width=\"2.5\" points=\"");
    for (int i = 0; i < self->hours; i++)
        fprintf (f, "%s%.1f,%.1f", i ? " " : "", S_X (i) + slot / 2,
                 S_YE (self->rows[i].volume_wh));
    fprintf (f, "\"/>\n");
    //  clearing price: a line through the hours that had one, broken where none did
    bool open = false;
    for (int i = 0; i < self->hours; i++) {
        const s_row_t *r = &self->rows[i];
        if (r->price <= 0) {
            if (open)
                fprintf (f, "\"/>\n");
            open = false;
            continue;
        }
        fprintf (f, "%s%.1f,%.1f",
                 open ? " "
                      : "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2.5\" "
                        "points=\"",
                 S_X (i) + slot / 2, S_YP (r->price));
        open = true;
    }
    if (open)
        fprintf (f, "\"/>\n");
    for (int i = 0; i < self->hours; i++)
        if (self->rows[i].price > 0)
            fprintf (f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#c0392b\"/>\n",
                     S_X (i) + slot / 2, S_YP (self->rows[i].price));
    //  axes and legend
    fprintf (f,
             "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
             "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
             "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c0392b\"/>\n",
             left, top, left, top + ph, left, top + ph, left + pw, top + ph, left + pw, top,
             left + pw, top + ph);
    static const struct {
        const char *color, *text;
        bool line;
    } legend[] = {{"#f5b700", "supply offered (kWh)", false},
                  {"#4a7fd4", "demand bid (kWh)", false},
                  {"#2e8b57", "traded volume (kWh)", true},
                  {"#c0392b", "clearing price (per kWh)", true},
                  {"#7f8c8d", "bought from the grid (kWh)", false},
                  {"#bdc3c7", "sold to the grid (kWh)", false}};
    int legends = self->grid_name[0] ? 6 : 4;
    for (int k = 0; k < legends; k++) {
        double x = left + 10 + (k % 4) * 200, y = top - 40 + (k / 4) * 18;
        if (legend[k].line)
            fprintf (f,
                     "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                     "stroke-width=\"2.5\"/>\n",
                     x, y, x + 16, y, legend[k].color);
        else
            fprintf (f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"10\" fill=\"%s\"/>\n", x,
                     y - 5, legend[k].color);
        fprintf (f, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 22, y + 4, legend[k].text);
    }
    fprintf (f, "</svg>\n");
#undef S_X
#undef S_YE
#undef S_YP
    if (fclose (f)) {
        fprintf (stderr, "mce-demo: cannot write %s: %m\n", self->svg_path);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  The day

static int s_run_day (s_demo_t *self)
{
    int64_t now = s_current_epoch (self);
    if (now < 0) {
        fprintf (stderr, "mce-demo: the gateway does not say which epoch %s is in\n",
                 self->market_id);
        return -1;
    }
    //  One epoch ahead when the market takes orders for the next epoch; else into the epoch
    //  that is running, from its start.
    int lead = self->future_epochs >= 1 ? 1 : 0;
    self->first_epoch = now + 1;
    for (int i = 0; i < self->hours; i++) {
        self->rows[i].hour = (self->start_hour + i) % 24;
        self->rows[i].epoch = self->first_epoch + i;
    }
    int64_t seconds = (self->hours + 1) * self->epoch_seconds;
    char took[32];
    if (seconds < 120)
        snprintf (took, sizeof took, "%" PRId64 " s", seconds);
    else
        snprintf (took, sizeof took, "%" PRId64 " min", (seconds + 30) / 60);
    fprintf (stderr,
             "demo: %d simulated hours from %02d:00 = epochs %" PRId64 "..%" PRId64
             " of %s (%" PRId64 " s each): about %s\n",
             self->hours, self->start_hour, self->first_epoch, self->first_epoch + self->hours - 1,
             self->market_id, self->epoch_seconds, took);
    for (int i = 0; i < self->hours; i++) {
        s_row_t *row = &self->rows[i];
        if (s_wait_open (self, row->epoch - lead))
            return -1;
        s_trade_hour (self, row);
        s_row_t *done = lead ? (i > 0 ? &self->rows[i - 1] : NULL) : row;
        if (done && s_wait_cleared (self, done))
            return -1;
        if (done)
            s_progress_cleared (self, done);
    }
    if (lead) {
        s_row_t *last = &self->rows[self->hours - 1];
        if (s_wait_cleared (self, last))
            return -1;
        s_progress_cleared (self, last);
    }
    return zsys_interrupted ? -1 : 0;
}

static int s_usage (FILE *out, int status)
{
    fprintf (out,
             "Usage: mce-demo [-c FILE] [--url URL] [--market ID] [--prosumers N] [--consumers N]\n"
             "                [--hours H] [--start-hour H0] [--wallets FILE] [--svg FILE]\n"
             "                [--json] [--seed N] [--settle-timeout S]\n\n"
             "A simulated campus day against a running mce (tools/run.sh --demo runs one).\n"
             "Each simulated hour is one delivery epoch of the market, so the market's\n"
             "epoch_seconds sets the pace (run.sh --demo: an auction market of 6-second\n"
             "epochs, a day in under 3 minutes). Prosumers offer their solar surplus (a bell\n"
             "from 6:00 to 19:00, passing clouds, minus their own load) at a price that rises\n"
             "as the sun gets scarce; consumers (homes with morning and evening peaks, campus\n"
             "buildings busy by day) bid their load at their willingness to pay. A line is\n"
             "printed as each epoch clears; at the end, once every trade is confirmed on chain,\n"
             "a table per epoch (supply offered, demand bid, clearing price, volume, trades,\n"
             "settled; with the grid as backstop also what it sold and bought) with totals,\n"
             "and an SVG chart.\n\n"
             "  -c FILE            the system's configuration (default: built-in), with the\n"
             "                     MCE_<KEY> environment overrides, as for every mce program\n"
             "  --url URL          the gateway (default http://<gateway.http_address>:<port>)\n"
             "  --market ID        the market (default: the gateway's first)\n"
             "  --prosumers N      households with rooftop solar (default 6)\n"
             "  --consumers N      homes and campus buildings (default 10)\n"
             "  --hours H          simulated hours, one epoch each (default 24, at most %d)\n"
             "  --start-hour H0    hour of the day the simulation starts at (default 0)\n"
             "  --wallets FILE     the local ledger's setup file, whose users[].wallet are\n"
             "                     funded and whose keys (walletSecretSeedHex) prove them:\n"
             "                     one per demo user, and one more for the grid when the\n"
             "                     market has one (default .run/ledger.json)\n"
             "  --svg FILE         where the chart goes (default .run/demo.svg)\n"
             "  --json             also one JSON object with every row on the last line\n"
             "  --seed N           the PRNG's seed: the same seed places the same orders\n"
             "                     (default 1)\n"
             "  --settle-timeout S how long to wait for the chain at the end (default 60)\n\n"
             "Users sign up through the API with those wallets, each signing the gateway's\n"
             "challenge with its wallet's key (POST /api/auth/challenge, then /register),\n"
             "named demo-prosumer-<n> and demo-consumer-<n>, password \"%s\" (sign in as one\n"
             "on the dashboard to see its orders); with settler.wallets = keys_file they take\n"
             "the ledger's user names instead, since that is how the settler finds them.\n"
             "Settlement is followed on the settler's bus (settler.bus, settler.replay).\n"
             "Exit status: 0 when every epoch cleared, every order was taken and every trade\n"
             "was confirmed on chain; 1 otherwise; 2 for bad options.\n",
             S_HOURS_MAX, S_PASSWORD);
    return status;
}

//  A whole number option: its value, or -1 (out of every range) when it is not one.
static int s_int (const char *text)
{
    char *end;
    errno = 0;
    long v = strtol (text, &end, 10);
    return errno || end == text || *end || v < 0 || v > 1000000 ? -1 : (int) v;
}

static int s_options (s_demo_t *self, int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"url", required_argument, NULL, 'u'},
        {"market", required_argument, NULL, 'm'},
        {"prosumers", required_argument, NULL, 'p'},
        {"consumers", required_argument, NULL, 'n'},
        {"hours", required_argument, NULL, 'H'},
        {"start-hour", required_argument, NULL, 's'},
        {"wallets", required_argument, NULL, 'w'},
        {"svg", required_argument, NULL, 'g'},
        {"json", no_argument, NULL, 'j'},
        {"seed", required_argument, NULL, 'S'},
        {"settle-timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
            case 'c':
                self->config_path = optarg;
                break;
            case 'u':
                self->url = optarg;
                break;
            case 'm':
                self->market = optarg;
                break;
            case 'p':
                self->prosumers = s_int (optarg);
                break;
            case 'n':
                self->consumers = s_int (optarg);
                break;
            case 'H':
                self->hours = s_int (optarg);
                break;
            case 's':
                self->start_hour = s_int (optarg);
                break;
            case 'w':
                self->wallets_path = optarg;
                break;
            case 'g':
                self->svg_path = optarg;
                break;
            case 'j':
                self->json = true;
                break;
            case 'S':
                self->seed = strtoull (optarg, NULL, 10);
                break;
            case 't':
                self->settle_timeout_s = s_int (optarg);
                break;
            case 'h':
                exit (s_usage (stdout, 0));
            default:
                return s_usage (stderr, 2);
        }
    }
    if (optind < argc || self->prosumers < 1 || self->consumers < 1 ||
        self->prosumers + self->consumers > S_USERS_MAX || self->hours < 1 ||
        self->hours > S_HOURS_MAX || self->start_hour < 0 || self->start_hour > 23 ||
        self->settle_timeout_s < 1) {
        fprintf (stderr,
                 "mce-demo: --prosumers and --consumers at least 1 (%d users at most), --hours "
                 "1..%d, --start-hour 0..23, --settle-timeout at least 1 (try --help)\n",
                 S_USERS_MAX, S_HOURS_MAX);
        return 2;
    }
    return 0;
}

int main (int argc, char **argv)
{
    s_demo_t *self = calloc (1, sizeof *self);
    if (!self)
        return 1;
    *self = (s_demo_t){.wallets_path = ".run/ledger.json",
                       .svg_path = ".run/demo.svg",
                       .prosumers = 6,
                       .consumers = 10,
                       .hours = 24,
                       .settle_timeout_s = 60,
                       .seed = 1};
    int rc = s_options (self, argc, argv);
    if (rc) {
        free (self);
        return rc;
    }
    log_init ("mce-demo");
    log_set_level (MCE_LOG_WARN); //  a command line tool: only what went wrong on stderr
    char err[CONFIG_ERR_MAX];
    if (config_load (&self->cfg, self->config_path, err, sizeof err)) {
        fprintf (stderr, "mce-demo: configuration error: %s\n", err);
        free (self);
        return 2;
    }
    if (self->url)
        snprintf (self->base, sizeof self->base, "%s", self->url);
    else
        snprintf (self->base, sizeof self->base, "http://%s:%" PRId64,
                  strcmp (self->cfg.gateway.http_address, "0.0.0.0") == 0
                      ? "127.0.0.1"
                      : self->cfg.gateway.http_address,
                  self->cfg.gateway.http_port);
    size_t len = strlen (self->base);
    while (len && self->base[len - 1] == '/')
        self->base[--len] = '\0';
    self->rng = self->seed;
    self->sky_pm = (int) s_between (self, 700, 1000);
    self->rows = calloc ((size_t) self->hours, sizeof *self->rows);
    if (!self->rows) {
        free (self);
        return 1;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    self->curl = curl_easy_init ();
    //  From the settler's first event: a follower resumes after a seq it knows, and the
    //  demo knows none (the journal of a demo's system is short; others' epochs are skipped).
    //  A watcher, with the monitor key.
    curve_t *monitor = curve_new (&self->cfg, CURVE_MONITOR, false);
    self->settler = monitor ? bus_sub_new_for (&self->cfg, monitor, "s", "mce-demo", 0) : NULL;
    curve_destroy (&monitor);
    rc = 1;
    if (!self->curl || !self->settler)
        fprintf (stderr, "mce-demo: cannot start libcurl or follow the settler's bus\n");
    //  the market first: whether it has a grid decides how many wallets are needed
    else if (s_wait_gateway (self) == 0 && s_market (self) == 0 && s_make_users (self) == 0 &&
             s_sign_up (self) == 0 && s_deposit (self) == 0) {
        int day = s_run_day (self);
        if (!zsys_interrupted) {
            s_wait_settled (self);
            s_print_table (self);
            bool svg = s_write_svg (self) == 0;
            if (svg)
                printf ("chart: %s\n", self->svg_path);
            if (self->json)
                s_print_json (self, svg);
            s_totals_t t = s_totals (self);
            rc =
                day == 0 && svg && t.refused == 0 && t.failed == 0 && t.settled == t.trades ? 0 : 1;
            if (t.refused)
                fprintf (stderr, "mce-demo: %" PRId64 " orders were refused (see above)\n",
                         t.refused);
        }
    }
    if (zsys_interrupted)
        fprintf (stderr, "mce-demo: interrupted\n");
    bus_sub_destroy (&self->settler);
    if (self->curl)
        curl_easy_cleanup (self->curl);
    curl_global_cleanup ();
    free (self->users);
    free (self->rows);
    free (self->settles);
    free (self);
    return rc;
}
