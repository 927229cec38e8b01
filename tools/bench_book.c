/*  mce-bench-book — the matching engine alone, single thread, on the flows of its anchors.

    Flows (prices in µ/kWh with tick 1, quantities in Wh, fixed seeds):
      liquibook         alternating buys at 1880..1889 and sells at 1884..1893, qty 100..1000
      liquibook-cancel  the same, cancelling the oldest resting order while more than 10 000 rest
      exchange-core     one book of about 1 000 orders over about 750 levels; 9 % GTC, 3 % IOC,
                        6 % cancel, 82 % move (price amend); new orders go in as IOC while 1 000
                        or more rest and as GTC while fewer do, as exchange-core's generator steers
      auction           100 000 random bids and offers in one epoch, then gate closure; then
                        the same again in the next epoch (clear_warm_ms: buffers already grown)

    How it measures: the operations are generated up front. Throughput is one timed pass over
    all of them (clock_gettime before and after). Latency is a second pass on a fresh engine
    with the same operations, reading the TSC (rdtsc, no system call) around each one; the TSC
    rate is calibrated against CLOCK_MONOTONIC over that pass. bytes_per_order is the growth of
    the engine's heap (pool, index, levels) divided by the orders resting at the end.

    --escrow turns the market's accounts on (docs/clearing.md, Accounts and escrow): every user
    starts with a deposit larger than any run spends, and every order reserves, every fill and
    cancel releases, as in production; without it the engine runs bare, for the comparison.

    --grid puts the grid in the market as backstop, selling at 1400 and buying at 1000: below
    where the auction flow would clear by itself (about 1500), so its clearing is pinned at the
    import price and the grid sells the difference, the most work the grid can add.

    --auction-book runs any flow into an auction market (orders rest until gate closure, which
    the run never reaches), and the clock then moves 1 ms every 1 000 operations with an
    engine_advance, as the matcher's does between batches. --indicative-ms N sets how often
    the indicative clearing may be published (default 0: never), so an A/B of N against 0
    isolates what keeping it current costs.
*/
#include "clock.h"
#include "engine.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

typedef enum { OP_NEW, OP_CANCEL, OP_MOVE } s_op_kind_t;

typedef struct {
    uint8_t kind;
    uint8_t side; //  proto_side_t
    uint8_t tif;
    uint32_t pick; //  random pick among resting orders (cancel, move)
    int64_t price, qty;
} s_op_t;

typedef struct {
    const char *flow;
    s_op_t *ops;
    size_t count;
    bool auction;
    bool escrow;           //  orders reserve balances
    bool grid;             //  the grid as backstop (S_GRID_IMPORT, S_GRID_FEED_IN)
    bool ticking;          //  --auction-book: the clock moves 1 ms per S_TICK_OPS operations
    int64_t indicative_ms; //  the market's indicative_ms
} s_workload_t;

#define S_TICK_OPS 1000

#define S_GRID_IMPORT  1400 //  µ/kWh
#define S_GRID_FEED_IN 1000

//  xorshift64*: fast, fixed-seed, identical on every run.
static uint64_t s_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ull;
}

static int64_t s_uniform (uint64_t *state, int64_t lo, int64_t hi)
{
    return lo + (int64_t) (s_rand (state) % (uint64_t) (hi - lo + 1));
}

static int s_build (s_workload_t *w, const char *flow, size_t n)
{
    uint64_t rng = 0x5eed5eed5eedull;
    w->flow = flow;
    w->ops = calloc (n + 2000, sizeof *w->ops);
    if (!w->ops)
        return -1;
    size_t k = 0;
    if (strcmp (flow, "liquibook") == 0 || strcmp (flow, "liquibook-cancel") == 0) {
        for (size_t i = 0; i < n; i++) {
            bool buy = i % 2 == 0;
            w->ops[k++] =
                (s_op_t){.kind = OP_NEW,
                         .side = buy ? PROTO_SIDE_BUY : PROTO_SIDE_SELL,
                         .tif = PROTO_TIF_GTC,
                         .price = buy ? s_uniform (&rng, 1880, 1889) : s_uniform (&rng, 1884, 1893),
                         .qty = s_uniform (&rng, 100, 1000)};
        }
    }
    else if (strcmp (flow, "exchange-core") == 0) {
        //  A resting book first: 1 000 orders over about 750 levels around 100 000.
        for (size_t i = 0; i < 1000; i++) {
            bool buy = i % 2 == 0;
            int64_t off = s_uniform (&rng, 1, 375);
            w->ops[k++] = (s_op_t){.kind = OP_NEW,
                                   .side = buy ? PROTO_SIDE_BUY : PROTO_SIDE_SELL,
                                   .tif = PROTO_TIF_GTC,
                                   .price = buy ? 100000 - off : 100000 + off,
                                   .qty = s_uniform (&rng, 1, 100) * 10};
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t r = s_rand (&rng) % 100;
            bool buy = s_rand (&rng) & 1;
            int64_t off = s_uniform (&rng, 1, 375);
            s_op_t op = {.side = buy ? PROTO_SIDE_BUY : PROTO_SIDE_SELL,
                         .qty = s_uniform (&rng, 1, 100) * 10,
                         .pick = (uint32_t) s_rand (&rng)};
            if (r < 9) //  GTC, passive: bids below the middle, asks above
                op.kind = OP_NEW, op.tif = PROTO_TIF_GTC,
                op.price = buy ? 100000 - off : 100000 + off;
            else if (r < 12) //  IOC at a crossing price
                op.kind = OP_NEW, op.tif = PROTO_TIF_IOC,
                op.price = buy ? 100000 + 50 : 100000 - 50;
            else if (r < 18)
                op.kind = OP_CANCEL;
            else //  move: a new price on the same side, keeping clear of the other side
                op.kind = OP_MOVE, op.price = off;
            w->ops[k++] = op;
        }
    }
    else if (strcmp (flow, "auction") == 0) {
        w->auction = true;
        for (size_t i = 0; i < n; i++) {
            bool buy = s_rand (&rng) & 1;
            w->ops[k++] =
                (s_op_t){.kind = OP_NEW,
                         .side = buy ? PROTO_SIDE_BUY : PROTO_SIDE_SELL,
                         .tif = PROTO_TIF_GTC,
                         .price = buy ? s_uniform (&rng, 900, 1900) : s_uniform (&rng, 1100, 2100),
                         .qty = s_uniform (&rng, 1, 100) * 10};
        }
    }
    else
        return -1;
    w->count = k;
    return 0;
}

typedef struct {
    uint64_t id;
    uint8_t side;
} s_resting_t;

typedef struct {
    engine_t *engine;
    uint32_t user[16];
    s_resting_t *resting; //  orders believed resting, oldest first (a ring)
    size_t resting_count, resting_head, resting_cap;
    uint64_t fills;
    int64_t now;
} s_run_t;

static void s_track (s_run_t *run, const engine_result_t *r, uint8_t side)
{
    for (uint32_t i = 0; i < r->event_count; i++)
        run->fills += r->events[i].kind == ENGINE_EV_TRADE;
    if (!r->rejected && r->remaining > 0 && run->resting_count < run->resting_cap) {
        size_t at = (run->resting_head + run->resting_count++) % run->resting_cap;
        run->resting[at] = (s_resting_t){r->order_id, side};
    }
}

static s_run_t s_run_new (const s_workload_t *w)
{
    mce_config_t cfg;
    char err[256];
    config_load (&cfg, NULL, err, sizeof err);
    config_market_t *m = &cfg.markets[0];
    m->tick = 1, m->lot = 1, m->min_qty = 1, m->max_qty = 1000000000;
    m->min_price = 1, m->max_price = 1000000000;
    m->epoch_seconds = 86400, m->future_epochs = 1;
    m->mode = w->auction ? CONFIG_MODE_AUCTION : CONFIG_MODE_CONTINUOUS;
    m->indicative_ms = w->indicative_ms;
    m->escrow = w->escrow;
    if (w->grid) {
        m->grid_import_price = S_GRID_IMPORT;
        m->grid_feed_in_price = S_GRID_FEED_IN;
    }
    s_run_t run = {.engine = engine_new (&cfg), .now = 1000 * MCE_NS_PER_SEC};
    for (int i = 0; i < 16; i++) {
        char name[16];
        snprintf (name, sizeof name, "user-%d", i);
        run.user[i] = engine_user_intern (run.engine, name);
        if (w->escrow) {
            //  far more than any flow spends: 10^16 µ and 10^15 Wh
            engine_deposit (run.engine, run.user[i], PROTO_ASSET_PAYMENT, 10000000000000000LL,
                            2 * (uint64_t) i + 1, run.now);
            engine_deposit (run.engine, run.user[i], PROTO_ASSET_ENERGY, 1000000000000000LL,
                            2 * (uint64_t) i + 2, run.now);
        }
    }
    run.resting_cap = w->count + 16;
    run.resting = malloc (run.resting_cap * sizeof *run.resting);
    engine_advance (run.engine, run.now);
    return run;
}

static void s_run_free (s_run_t *run)
{
    engine_destroy (&run->engine);
    free (run->resting);
}

//  Removes entry at ring position `at` by moving the newest entry there.
static void s_forget (s_run_t *run, size_t at)
{
    size_t last = (run->resting_head + run->resting_count - 1) % run->resting_cap;
    run->resting[at] = run->resting[last];
    run->resting_count--;
}

static inline void s_do (s_run_t *run, const s_op_t *op, size_t i, bool keep_10k, bool keep_1k)
{
    const engine_result_t *r;
    if (op->kind == OP_NEW) {
        engine_order_t o = {.market = 0,
                            .user = run->user[i & 15],
                            .side = op->side,
                            .type = PROTO_ORDER_TYPE_LIMIT,
                            .tif = op->tif,
                            .qty = op->qty,
                            .price = op->price};
        //  exchange-core keeps its book near 1 000 orders the way its own generator steers it:
        //  a new order goes in as an IOC while 1 000 or more rest, as a GTC while fewer do
        if (keep_1k && engine_resting (run->engine) >= 1000)
            o.tif = PROTO_TIF_IOC;
        else if (keep_1k && o.tif == PROTO_TIF_IOC) {
            //  a crossing IOC turned GTC would sweep the book: it rests on its own side instead
            o.tif = PROTO_TIF_GTC;
            o.price = 200000 - o.price;
        }
        r = engine_new_order (run->engine, &o, run->now);
        s_track (run, r, op->side);
        //  liquibook-cancel: while more than 10 000 rest, cancel the oldest (some of the
        //  oldest tracked have filled meanwhile: their cancel is refused and skipped)
        while (keep_10k && engine_resting (run->engine) > 10000 && run->resting_count) {
            uint64_t id = run->resting[run->resting_head].id;
            run->resting_head = (run->resting_head + 1) % run->resting_cap;
            run->resting_count--;
            engine_cancel (run->engine, 0, 0, true, id, run->now);
        }
        return;
    }
    if (!run->resting_count)
        return;
    size_t at = (run->resting_head + op->pick % run->resting_count) % run->resting_cap;
    s_resting_t t = run->resting[at];
    if (op->kind == OP_CANCEL) {
        engine_cancel (run->engine, 0, 0, true, t.id, run->now);
        s_forget (run, at);
        return;
    }
    //  move: a new price on the order's own side of the middle
    int64_t price = t.side == PROTO_SIDE_BUY ? 100000 - op->price : 100000 + op->price;
    r = engine_amend (run->engine, 0, 0, true, t.id, 0, price, run->now);
    for (uint32_t e = 0; e < r->event_count; e++)
        run->fills += r->events[e].kind == ENGINE_EV_TRADE;
    if (r->rejected || r->remaining == 0)
        s_forget (run, at);
}

//  --auction-book: after every S_TICK_OPS operations the clock moves 1 ms and the engine
//  advances to it, which is where the indicative clearing is computed when it is due.
static inline void s_tick (s_run_t *run, const s_workload_t *w, size_t i)
{
    if (w->ticking && i % S_TICK_OPS == S_TICK_OPS - 1) {
        run->now += 1000000;
        engine_advance (run->engine, run->now);
    }
}

static int s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

int main (int argc, char **argv)
{
    static const struct option options[] = {
        {"flow", required_argument, NULL, 'f'},
        {"orders", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"escrow", no_argument, NULL, 'e'},
        {"grid", no_argument, NULL, 'g'},
        {"auction-book", no_argument, NULL, 'a'},
        {"indicative-ms", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *flow = "liquibook";
    size_t n = 1000000;
    bool json = false, escrow = false, grid = false, auction_book = false;
    long long indicative_ms = 0;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
            case 'f':
                flow = optarg;
                break;
            case 'n': {
                char *end;
                n = strtoull (optarg, &end, 10);
                if (*end || n == 0 || n > 100000000) {
                    fprintf (stderr, "mce-bench-book: --orders must be 1..100000000\n");
                    return 2;
                }
                break;
            }
            case 'j':
                json = true;
                break;
            case 'e':
                escrow = true;
                break;
            case 'g':
                grid = true;
                break;
            case 'a':
                auction_book = true;
                break;
            case 'i': {
                char *end;
                indicative_ms = strtoll (optarg, &end, 10);
                if (*end || indicative_ms < 0 || indicative_ms > 3600000) {
                    fprintf (stderr, "mce-bench-book: --indicative-ms must be 0..3600000\n");
                    return 2;
                }
                break;
            }
            case 'h':
                printf ("Usage: mce-bench-book [--flow NAME] [--orders N] [--escrow] [--grid] "
                        "[--auction-book [--indicative-ms MS]] [--json]\n\n"
                        "Flows: liquibook (default), liquibook-cancel, exchange-core, auction.\n"
                        "N: operations after any set-up (default 1000000). --escrow: every order\n"
                        "reserves and releases balances, as markets do by default. --grid: the\n"
                        "grid sells at 1400 and buys at 1000 µ/kWh (meant for the auction flow,\n"
                        "whose clearing it then pins at 1400). --auction-book: the flow goes into\n"
                        "an auction market and the clock moves 1 ms every 1000 operations;\n"
                        "--indicative-ms MS: the indicative clearing is kept current that often\n"
                        "(default 0: never). Prints a table, or with --json one JSON object on\n"
                        "the last line.\n");
                return 0;
            default:
                fprintf (stderr, "mce-bench-book: try --help\n");
                return 2;
        }
    }
    log_init ("mce-bench-book");
    log_set_level (MCE_LOG_WARN);
    s_workload_t w = {0};
    if (s_build (&w, flow, n)) {
        fprintf (stderr, "mce-bench-book: unknown flow '%s' (try --help)\n", flow);
        return 2;
    }
    w.escrow = escrow;
    w.grid = grid;
    if (auction_book) {
        w.auction = w.ticking = true;
        w.indicative_ms = indicative_ms;
    }
    bool keep_10k = strcmp (flow, "liquibook-cancel") == 0;
    bool keep_1k = strcmp (flow, "exchange-core") == 0;

    //  Pass 1: throughput.
    s_run_t run = s_run_new (&w);
    size_t mem0 = engine_memory (run.engine);
    int64_t t0 = clock_mono_ns ();
    for (size_t i = 0; i < w.count; i++) {
        s_do (&run, &w.ops[i], i, keep_10k, keep_1k && i >= 1000);
        s_tick (&run, &w, i);
    }
    int64_t t1 = clock_mono_ns ();
    double clear_ms = 0;
    if (w.auction && !w.ticking) { //  gate closure (an --auction-book run never gets there)
        int64_t c0 = clock_mono_ns ();
        const engine_result_t *r = engine_advance (run.engine, run.now + 86400 * MCE_NS_PER_SEC);
        clear_ms = (double) (clock_mono_ns () - c0) / 1e6;
        for (uint32_t e = 0; e < r->event_count; e++)
            run.fills += r->events[e].kind == ENGINE_EV_TRADE;
    }
    uint64_t resting_end = engine_resting (run.engine);
    size_t mem1 = engine_memory (run.engine);
    uint64_t fills = run.fills;
    uint64_t hash = engine_state_hash (run.engine);
    double warm_ms = 0;
    if (w.auction && !w.ticking) {
        //  The same orders into the next epoch, cleared again: the matcher's steady state,
        //  where the buffers gate closure needs were sized and touched by the epochs before.
        run.now += 86400 * MCE_NS_PER_SEC;
        for (size_t i = 0; i < w.count; i++)
            s_do (&run, &w.ops[i], i, false, false);
        int64_t c0 = clock_mono_ns ();
        engine_advance (run.engine, run.now + 86400 * MCE_NS_PER_SEC);
        warm_ms = (double) (clock_mono_ns () - c0) / 1e6;
    }
    s_run_free (&run);
    double ops_per_sec = (double) w.count / ((double) (t1 - t0) / 1e9);

    //  Pass 2: latency, TSC around each operation.
    uint32_t *cycles = malloc (w.count * sizeof *cycles);
    run = s_run_new (&w);
    int64_t c0 = clock_mono_ns ();
    uint64_t tsc0 = __rdtsc ();
    for (size_t i = 0; i < w.count; i++) {
        uint64_t a = __rdtsc ();
        s_do (&run, &w.ops[i], i, keep_10k, keep_1k && i >= 1000);
        s_tick (&run, &w, i);
        uint64_t d = __rdtsc () - a;
        cycles[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t) d;
    }
    double ns_per_cycle = (double) (clock_mono_ns () - c0) / (double) (__rdtsc () - tsc0);
    s_run_free (&run);
    qsort (cycles, w.count, sizeof *cycles, s_cmp_u32);
    double p50 = cycles[w.count / 2] * ns_per_cycle;
    double p99 = cycles[(size_t) (w.count * 0.99)] * ns_per_cycle;
    double p999 = cycles[(size_t) (w.count * 0.999)] * ns_per_cycle;
    free (cycles);
    double bytes_per_order = resting_end ? (double) (mem1 - mem0) / (double) resting_end : 0;

    printf ("%-18s %12s %8s %8s %9s %10s %11s %9s\n", "flow", "ops/s", "p50 ns", "p99 ns",
            "p99.9 ns", "fills", "resting end", "B/order");
    printf ("%-18s %12.0f %8.0f %8.0f %9.0f %10llu %11llu %9.1f\n", flow, ops_per_sec, p50, p99,
            p999, (unsigned long long) fills, (unsigned long long) resting_end, bytes_per_order);
    if (w.auction && !w.ticking)
        printf ("auction clearing of %zu orders: %.2f ms (the next epoch's, warm: %.2f ms)\n",
                w.count, clear_ms, warm_ms);
    if (json) {
        printf ("{\"flow\":\"%s\",\"orders\":%zu,\"ops_per_sec\":%.0f,\"p50_ns\":%.0f,"
                "\"p99_ns\":%.0f,\"p999_ns\":%.0f,\"fills\":%llu,\"resting_end\":%llu,"
                "\"bytes_per_order\":%.1f,\"state_hash\":\"%016llx\",\"escrow\":%s,"
                "\"grid\":%s",
                flow, w.count, ops_per_sec, p50, p99, p999, (unsigned long long) fills,
                (unsigned long long) resting_end, bytes_per_order, (unsigned long long) hash,
                escrow ? "true" : "false", grid ? "true" : "false");
        if (w.auction && !w.ticking)
            printf (",\"clear_ms\":%.3f,\"clear_warm_ms\":%.3f", clear_ms, warm_ms);
        if (w.ticking)
            printf (",\"auction_book\":true,\"indicative_ms\":%lld", (long long) w.indicative_ms);
        printf ("}\n");
    }
    free (w.ops);
    return 0;
}
