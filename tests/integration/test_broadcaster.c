/*  test_broadcaster — the real mce-broadcaster, fed by the real matcher, read by WebSocket
    clients (wsclient) and a ZeroMQ monitor.

    The truth is the matcher's own word: this test follows the matcher's bus itself and folds
    its book_level events into the book; a client's snapshot plus the updates after it must
    come to exactly that book, level by level.
*/
#include "bus_sub.h"
#include "decimal.h"
#include "clock.h"
#include "harness.h"
#include "wsclient.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define S_CONFIG                                                                                   \
    "markets = ( { id = \"campus-1\"; tick = \"0.001\"; epoch_seconds = 2592000; escrow = false; " \
    "} );\n"
#define S_PRICE_LOW   100000 //  µ/kWh: the test's prices lie in [low, low + S_PRICES * 1000)
#define S_PRICES      101
#define S_SLOW_RCVBUF 4096

static harness_t s_h;

static void s_fini (void)
{
    harness_cleanup (&s_h);
}

static uint64_t s_rng = 0x2545F4914F6CDD1DULL;
static uint64_t s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

//  A book by (side, price slot): what the matcher said, or what a client rebuilt.
typedef struct {
    int64_t qty[2][S_PRICES];
    int64_t count[2][S_PRICES];
    uint64_t seq; //  a client: the seq of the last snapshot or update applied
    int snapshots, updates;
    int other_snapshots[2]; //  of the trades and ticker channels (a slow client follows them too)
    int64_t epoch;
} s_book_t;

static int s_slot (int64_t price)
{
    int64_t slot = (price - S_PRICE_LOW) / 1000;
    cr_assert (slot >= 0 && slot < S_PRICES && (price - S_PRICE_LOW) % 1000 == 0,
               "a level at %lld, not a price this test uses", (long long) price);
    return (int) slot;
}

static void s_book_eq (const s_book_t *a, const s_book_t *b, const char *who)
{
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < S_PRICES; i++) {
            cr_assert_eq (a->qty[side][i], b->qty[side][i],
                          "%s: %s at %d: %lld Wh, the matcher says %lld", who,
                          side ? "asks" : "bids", S_PRICE_LOW + i * 1000,
                          (long long) a->qty[side][i], (long long) b->qty[side][i]);
            cr_assert_eq (a->count[side][i], b->count[side][i], "%s: orders at %d", who,
                          S_PRICE_LOW + i * 1000);
        }
}

//  ---------------------------------------------------------------------------------------
//  The truth: the matcher's bus, folded

typedef struct {
    bus_sub_t *sub;
    s_book_t book;
    uint64_t last_level_seq; //  the last book_level event
    uint64_t last_trade_id;
    int64_t trades;
} s_truth_t;

static void s_truth_start (s_truth_t *t)
{
    memset (t, 0, sizeof *t);
    t->sub = harness_bus_sub (&s_h, "m", 0);
    cr_assert_not_null (t->sub);
}

//  Folds the bus through seq.
static void s_truth_follow (s_truth_t *t, uint64_t seq)
{
    while (bus_sub_last_seq (t->sub) < seq) {
        bus_event_t ev;
        int rc = bus_sub_recv (t->sub, &ev, HARNESS_DEADLINE_MS);
        cr_assert_eq (rc, 1, "the bus stopped at seq %llu of %llu",
                      (unsigned long long) bus_sub_last_seq (t->sub), (unsigned long long) seq);
        if (ev.msg.kind == PROTO_book_level) {
            const proto_book_level_t *l = &ev.msg.book_level;
            int side = l->side == PROTO_SIDE_BUY ? 0 : 1;
            t->book.qty[side][s_slot (l->price)] = l->qty;
            t->book.count[side][s_slot (l->price)] = l->count;
            t->book.epoch = l->epoch;
            t->last_level_seq = ev.seq;
        }
        else if (ev.msg.kind == PROTO_trade) {
            t->last_trade_id = ev.msg.trade.trade_id;
            t->trades++;
        }
    }
}

//  ---------------------------------------------------------------------------------------
//  Load

static zsock_t *s_dealer (void)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_h.port_commands);
    zsock_t *dealer = harness_dealer (&s_h, "matcher", endpoint);
    zsock_set_rcvtimeo (dealer, HARNESS_DEADLINE_MS);
    return dealer;
}

//  Sends count orders (buyer and seller alternating at random prices around 0.15, so some
//  cross) and returns the seq of the last event of the last one acknowledged.
static uint64_t s_orders (zsock_t *dealer, int count, uint64_t *rid)
{
    for (int i = 0; i < count; i++) {
        bool buy = s_rand () & 1;
        int64_t price = 140000 + (int64_t) (s_rand () % 21) * 1000;
        harness_order (dealer, (*rid)++, buy ? "buyer" : "seller", buy,
                       (int64_t) (1 + s_rand () % 10) * 1000, price);
    }
    uint64_t last = 0;
    for (int i = 0; i < count; i++) {
        zframe_t *f = zframe_recv (dealer);
        cr_assert_not_null (f, "the matcher stopped answering");
        proto_msg_t reply;
        cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &reply, NULL, 0), 0);
        if (reply.kind == PROTO_ack && reply.ack.last_seq > last)
            last = reply.ack.last_seq;
        zframe_destroy (&f);
    }
    return last;
}

//  Credits a deposit as the settler does (the matcher answers it; the answer is read).
static void s_deposit (zsock_t *dealer, uint64_t rid, const char *user, int64_t amount)
{
    proto_msg_t cmd = {.kind = PROTO_deposit_credit};
    cmd.deposit_credit.rid = rid;
    cmd.deposit_credit.deposit_id = rid;
    snprintf (cmd.deposit_credit.user, sizeof cmd.deposit_credit.user, "%s", user);
    cmd.deposit_credit.asset = PROTO_ASSET_PAYMENT;
    cmd.deposit_credit.amount = amount;
    cmd.deposit_credit.ts = 1;
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&cmd, &buf), 0);
    cr_assert_eq (zmq_send (zsock_resolve (dealer), buf.data, buf.len, 0), (int) buf.len);
    proto_buf_free (&buf);
    zframe_t *f = zframe_recv (dealer);
    cr_assert_not_null (f, "the matcher answered the deposit");
    zframe_destroy (&f);
}

//  ---------------------------------------------------------------------------------------
//  Clients

static int64_t s_decimal (json_t *value, int scale)
{
    const char *text = json_string_value (value);
    cr_assert_not_null (text, "a decimal string");
    int64_t out;
    cr_assert_eq (decimal_parse (text, strlen (text), scale, &out), DECIMAL_OK, "%s", text);
    return out;
}

static void s_level (s_book_t *b, json_t *row, int side)
{
    int64_t price = s_decimal (json_object_get (row, "price"), DECIMAL_PRICE_SCALE);
    int slot = s_slot (price);
    b->qty[side][slot] = s_decimal (json_object_get (row, "energy_amount"), DECIMAL_KWH_SCALE);
    b->count[side][slot] = json_integer_value (json_object_get (row, "orders"));
}

//  Applies one depth message; returns its type ("snapshot", "update", ...).
static const char *s_apply (s_book_t *b, const char *text, char *type, size_t type_size)
{
    json_error_t jerr;
    json_t *m = json_loads (text, 0, &jerr);
    cr_assert_not_null (m, "%s: %s", jerr.text, text);
    snprintf (type, type_size, "%s", json_string_value (json_object_get (m, "type")));
    const char *channel = json_string_value (json_object_get (m, "channel"));
    if (!channel || strcmp (channel, "depth") != 0) { //  only the depth book is followed here
        if (channel && strcmp (type, "snapshot") == 0)
            b->other_snapshots[strcmp (channel, "trades") == 0 ? 0 : 1]++;
        json_decref (m);
        return type;
    }
    json_t *data = json_object_get (m, "data");
    uint64_t seq = (uint64_t) json_integer_value (json_object_get (m, "seq"));
    if (strcmp (type, "snapshot") == 0) {
        cr_assert_str_eq (json_string_value (json_object_get (m, "channel")), "depth", "%s", text);
        memset (b->qty, 0, sizeof b->qty);
        memset (b->count, 0, sizeof b->count);
        size_t i;
        json_t *row;
        json_array_foreach (json_object_get (data, "bids"), i, row) s_level (b, row, 0);
        json_array_foreach (json_object_get (data, "asks"), i, row) s_level (b, row, 1);
        b->epoch = json_integer_value (json_object_get (m, "epoch"));
        b->seq = seq;
        b->snapshots++;
    }
    else if (strcmp (type, "update") == 0) {
        uint64_t prev = (uint64_t) json_integer_value (json_object_get (m, "prev"));
        cr_assert_leq (prev, b->seq, "a gap: update %llu follows %llu, the client holds %llu",
                       (unsigned long long) seq, (unsigned long long) prev,
                       (unsigned long long) b->seq);
        cr_assert_gt (seq, b->seq, "updates move forward");
        size_t i;
        json_t *row;
        json_array_foreach (json_object_get (data, "bids"), i, row) s_level (b, row, 0);
        json_array_foreach (json_object_get (data, "asks"), i, row) s_level (b, row, 1);
        b->seq = seq;
        b->updates++;
    }
    json_decref (m);
    return type;
}

static wsclient_t *s_connect (int rcvbuf)
{
    wsclient_t *ws = wsclient_connect (s_h.port_ws, NULL, rcvbuf, HARNESS_DEADLINE_MS);
    cr_assert_not_null (ws, "the broadcaster accepts WebSocket clients");
    return ws;
}

//  Subscribes to the current epoch's depth and applies the snapshot.
static void s_subscribe_depth (wsclient_t *ws, s_book_t *b)
{
    cr_assert_eq (wsclient_send (ws, "{\"op\":\"subscribe\",\"channel\":\"depth\","
                                     "\"market\":\"campus-1\"}"),
                  0);
    const char *text = wsclient_recv (ws, HARNESS_DEADLINE_MS);
    cr_assert_not_null (text, "a snapshot answers the subscription");
    char type[32];
    cr_assert_str_eq (s_apply (b, text, type, sizeof type), "snapshot", "%s", text);
}

//  Reads until the client holds seq (or later).
static void s_read_through (wsclient_t *ws, s_book_t *b, uint64_t seq, const char *who)
{
    while (b->seq < seq) {
        const char *text = wsclient_recv (ws, HARNESS_DEADLINE_MS);
        cr_assert_not_null (text, "%s: no message after seq %llu (want %llu)", who,
                            (unsigned long long) b->seq, (unsigned long long) seq);
        char type[32];
        s_apply (b, text, type, sizeof type);
    }
}

static int s_start_broadcaster (bool debug)
{
    if (debug)
        setenv ("MCE_LOG_LEVEL", "debug", 1); //  a line per event applied
    int b = harness_start (&s_h, "mce-broadcaster");
    unsetenv ("MCE_LOG_LEVEL");
    cr_assert (harness_wait_log (&s_h, b, "WebSocket on", HARNESS_DEADLINE_MS));
    return b;
}

//  ---------------------------------------------------------------------------------------

Test (broadcaster, snapshot_and_updates_rebuild_the_matchers_book, .fini = s_fini, .timeout = 180)
{
    harness_init (&s_h, S_CONFIG);
    harness_start (&s_h, "mce-matcher");
    s_start_broadcaster (true);
    s_truth_t truth;
    s_truth_start (&truth);
    zsock_t *dealer = s_dealer ();
    uint64_t rid = 1;

    //  One client from the start, one from the middle: each book must come out whole.
    s_book_t early = {0}, late = {0};
    wsclient_t *a = s_connect (0);
    s_subscribe_depth (a, &early);
    //  In batches, each read through on the early client: updates gather what happened
    //  since the previous one, and small batches make many of them.
    for (int batch = 0; batch < 40; batch++) {
        s_truth_follow (&truth, s_orders (dealer, 10, &rid));
        s_read_through (a, &early, truth.last_level_seq, "early client");
    }
    wsclient_t *b = s_connect (0);
    s_subscribe_depth (b, &late);
    cr_assert_geq (late.seq, truth.last_level_seq, "the late snapshot is at the bus's seq");
    uint64_t last = 0;
    for (int batch = 0; batch < 40; batch++) {
        last = s_orders (dealer, 10, &rid);
        s_truth_follow (&truth, last);
        s_read_through (a, &early, truth.last_level_seq, "early client");
    }

    s_truth_follow (&truth, last);
    cr_assert_gt (truth.trades, 20, "the load crossed (%lld trades)", (long long) truth.trades);
    s_read_through (a, &early, truth.last_level_seq, "early client");
    s_read_through (b, &late, truth.last_level_seq, "late client");
    s_book_eq (&early, &truth.book, "early client");
    s_book_eq (&late, &truth.book, "late client");
    cr_assert_eq (early.snapshots, 1);
    cr_assert_eq (late.snapshots, 1);
    cr_assert_gt (early.updates, late.updates, "the early client saw more updates");
    cr_assert_eq (early.epoch, truth.book.epoch, "the current epoch's book");
    fprintf (stderr, "broadcaster: %lld trades; early client %d updates, late client %d\n",
             (long long) truth.trades, early.updates, late.updates);

    //  Subscribing again answers a fresh snapshot: the same book.
    s_book_t again = {0};
    s_subscribe_depth (b, &again);
    s_book_eq (&again, &truth.book, "a second subscription");

    //  Other channels: trades (snapshot newest first, then each trade), ticker, errors.
    cr_assert_eq (wsclient_send (a, "{\"op\":\"subscribe\",\"channel\":\"trades\","
                                    "\"market\":\"campus-1\"}"),
                  0);
    json_t *m = NULL;
    do { //  depth updates may still be queued before the answer
        json_decref (m);
        const char *text = wsclient_recv (a, HARNESS_DEADLINE_MS);
        cr_assert_not_null (text);
        m = json_loads (text, 0, NULL);
    } while (strcmp (json_string_value (json_object_get (m, "channel")), "trades") != 0);
    cr_assert_str_eq (json_string_value (json_object_get (m, "type")), "snapshot");
    json_t *newest = json_array_get (json_object_get (json_object_get (m, "data"), "trades"), 0);
    char id[24];
    snprintf (id, sizeof id, "%llu", (unsigned long long) truth.last_trade_id);
    cr_assert_str_eq (json_string_value (json_object_get (newest, "trade_id")), id);
    json_decref (m);

    static const struct {
        const char *request, *code;
    } bad[] = {
        {"not json", "bad_json"},
        {"{\"op\":\"subscribe\",\"channel\":\"depht\",\"market\":\"campus-1\"}", "bad_request"},
        {"{\"op\":\"watch\",\"channel\":\"depth\",\"market\":\"campus-1\"}", "bad_request"},
        {"{\"op\":\"subscribe\",\"channel\":\"depth\",\"market\":\"mars-1\"}", "unknown_market"},
        {"{\"op\":\"subscribe\",\"channel\":\"trades\"}", "bad_request"},
        {"{\"op\":\"subscribe\",\"channel\":\"depth\",\"market\":\"campus-1\",\"epoch\":-3}",
         "bad_request"},
        {"{\"op\":\"subscribe\",\"channel\":\"ticker\",\"market\":\"campus-1\",\"x\":1}",
         "bad_request"},
        {"{\"op\":\"subscribe\",\"channel\":\"orders\",\"token\":\"a.b.c\"}", "bad_token"},
        {"{\"op\":\"unsubscribe\",\"channel\":\"ticker\",\"market\":\"campus-1\"}", "bad_request"},
    };
    wsclient_t *c = s_connect (0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq (wsclient_send (c, bad[i].request), 0);
        const char *text = wsclient_recv (c, HARNESS_DEADLINE_MS);
        cr_assert_not_null (text, "%s: an answer", bad[i].request);
        json_t *e = json_loads (text, 0, NULL);
        cr_assert_str_eq (json_string_value (json_object_get (e, "type")), "error", "%s", text);
        cr_assert_str_eq (json_string_value (json_object_get (e, "code")), bad[i].code, "%s -> %s",
                          bad[i].request, text);
        json_decref (e);
    }

    //  The private orders channel: the owner's orders, each change as it happens.
    char token[1024], sub[1200];
    harness_token ("buyer", "user", token, sizeof token);
    snprintf (sub, sizeof sub, "{\"op\":\"subscribe\",\"channel\":\"orders\",\"token\":\"%s\"}",
              token);
    cr_assert_eq (wsclient_send (c, sub), 0);
    const char *text = wsclient_recv (c, HARNESS_DEADLINE_MS);
    cr_assert_not_null (strstr (text, "\"subscribed\""), "%s", text);
    cr_assert_not_null (strstr (text, "\"user\":\"buyer\""), "%s", text);
    text = wsclient_recv (c, HARNESS_DEADLINE_MS);
    cr_assert_not_null (strstr (text, "\"snapshot\""), "%s", text);
    s_orders (dealer, 10, &rid); //  about half of them the buyer's
    bool own = false, others = false;
    while (!own) {
        text = wsclient_recv (c, HARNESS_DEADLINE_MS);
        cr_assert_not_null (text, "the buyer hears of its new orders");
        json_t *u = json_loads (text, 0, NULL);
        cr_assert_str_eq (json_string_value (json_object_get (u, "channel")), "orders");
        const char *owner = json_string_value (json_object_get (u, "user"));
        own = strcmp (owner, "buyer") == 0;
        others = others || !own;
        json_decref (u);
    }
    cr_assert_not (others, "never someone else's orders");

    //  The private account channel: the owner's balances, whole, each time they change.
    wsclient_t *d = s_connect (0);
    snprintf (sub, sizeof sub, "{\"op\":\"subscribe\",\"channel\":\"account\",\"token\":\"%s\"}",
              token);
    cr_assert_eq (wsclient_send (d, sub), 0);
    text = wsclient_recv (d, HARNESS_DEADLINE_MS);
    cr_assert_not_null (strstr (text, "\"subscribed\""), "%s", text);
    text = wsclient_recv (d, HARNESS_DEADLINE_MS);
    cr_assert_not_null (strstr (text, "\"snapshot\""), "%s", text);
    s_deposit (dealer, 1, "seller", 1000000);
    s_deposit (dealer, 2, "buyer", 2500000);
    text = wsclient_recv (d, HARNESS_DEADLINE_MS);
    cr_assert_not_null (text, "the buyer hears of its deposit");
    json_t *u = json_loads (text, 0, NULL);
    cr_assert_str_eq (json_string_value (json_object_get (u, "type")), "update", "%s", text);
    cr_assert_str_eq (json_string_value (json_object_get (u, "user")), "buyer",
                      "never someone else's balances: %s", text);
    json_t *pay =
        json_object_get (json_object_get (json_object_get (u, "data"), "balances"), "payment");
    cr_assert_str_eq (json_string_value (json_object_get (pay, "available")), "2.5", "%s", text);
    json_decref (u);
    wsclient_destroy (&d);

    wsclient_destroy (&a);
    wsclient_destroy (&b);
    wsclient_destroy (&c);
    zsock_destroy (&dealer);
    bus_sub_destroy (&truth.sub);
}

Test (broadcaster, a_restarted_broadcaster_resumes_by_replay, .fini = s_fini, .timeout = 180)
{
    harness_init (&s_h, S_CONFIG);
    harness_start (&s_h, "mce-matcher");
    int broadcaster = s_start_broadcaster (true);
    s_truth_t truth;
    s_truth_start (&truth);
    zsock_t *dealer = s_dealer ();
    uint64_t rid = 1;
    s_orders (dealer, 300, &rid);
    cr_assert_eq (WTERMSIG (harness_stop (&s_h, broadcaster, SIGKILL)), SIGKILL);
    uint64_t last = s_orders (dealer, 300, &rid); //  while it is down
    broadcaster = s_start_broadcaster (true);
    char line[64];
    snprintf (line, sizeof line, "stream m event seq %llu:", (unsigned long long) last);
    cr_assert (harness_wait_log (&s_h, broadcaster, line, HARNESS_DEADLINE_MS),
               "the new broadcaster replayed the bus through seq %llu", (unsigned long long) last);
    s_truth_follow (&truth, last);
    s_book_t book = {0};
    wsclient_t *ws = s_connect (0);
    s_subscribe_depth (ws, &book);
    cr_assert_geq (book.seq, last);
    s_book_eq (&book, &truth.book, "after a restart");
    //  and it goes on live
    last = s_orders (dealer, 100, &rid);
    s_truth_follow (&truth, last);
    s_read_through (ws, &book, truth.last_level_seq, "after a restart, live");
    s_book_eq (&book, &truth.book, "after a restart, live");
    wsclient_destroy (&ws);
    zsock_destroy (&dealer);
    bus_sub_destroy (&truth.sub);
}

//  Reads whatever the client has now, without waiting.
static void s_read_available (wsclient_t *ws, s_book_t *b)
{
    const char *text;
    char type[32];
    while ((text = wsclient_recv (ws, 0)))
        s_apply (b, text, type, sizeof type);
}

//  A client that asks and never reads the answers (errors for bad JSON, snapshots for
//  re-subscribing) held them all, without bound, and was never closed: those messages belong
//  to no subscription, so conflation never touched them. Now they may take its queue to
//  twice its bound, and the next one closes it, long before the grace for slow clients.
Test (broadcaster, a_client_that_never_reads_its_answers_is_closed, .fini = s_fini, .timeout = 120)
{
    harness_init (&s_h, S_CONFIG);
    harness_start (&s_h, "mce-matcher");
    setenv ("MCE_BROADCASTER_QUEUE_BYTES", "4096", 1);
    setenv ("MCE_BROADCASTER_SLOW_GRACE_MS", "600000", 1); //  not what closes it
    s_start_broadcaster (false);
    unsetenv ("MCE_BROADCASTER_QUEUE_BYTES");
    unsetenv ("MCE_BROADCASTER_SLOW_GRACE_MS");
    wsclient_t *k = s_connect (S_SLOW_RCVBUF);
    int sent = 0;
    for (; sent < 20000; sent++) {
        const char *request =
            sent % 2 ? "{" : "{\"op\":\"subscribe\",\"channel\":\"depth\",\"market\":\"campus-1\"}";
        if (wsclient_send (k, request))
            break; //  closed under it: what the test waits for
    }
    //  read what got through, up to the end of the connection
    int read = 0;
    while (wsclient_recv (k, HARNESS_DEADLINE_MS))
        read++;
    const char *reason;
    int code = wsclient_closed (k, &reason);
    cr_assert_geq (code, 0, "the connection is still open after %d requests and %d answers", sent,
                   read);
    cr_assert_lt (read, sent, "closed before it had every answer");
    wsclient_destroy (&k);
    //  and the broadcaster serves the next client
    wsclient_t *f = s_connect (0);
    s_book_t book = {0};
    s_subscribe_depth (f, &book);
    wsclient_destroy (&f);
}

//  Many clients from one address, each within its own bound, together held as much as their
//  bounds added up to (100 clients by default, 2 MiB of answers each). Now the address's answers
//  have a bound of their own (queue_bytes_per_address): past it, the client that asks is closed,
//  and once they are gone the address is served again.
Test (broadcaster, an_address_holds_a_bounded_amount_of_answers, .fini = s_fini, .timeout = 120)
{
    harness_init (&s_h, S_CONFIG);
    harness_start (&s_h, "mce-matcher");
    setenv ("MCE_BROADCASTER_QUEUE_BYTES_PER_ADDRESS", "65536", 1);
    //  neither a client's own bound nor the grace for slow clients is what closes them
    setenv ("MCE_BROADCASTER_QUEUE_BYTES", "268435456", 1);
    setenv ("MCE_BROADCASTER_SLOW_GRACE_MS", "600000", 1);
    s_start_broadcaster (false);
    unsetenv ("MCE_BROADCASTER_QUEUE_BYTES_PER_ADDRESS");
    unsetenv ("MCE_BROADCASTER_QUEUE_BYTES");
    unsetenv ("MCE_BROADCASTER_SLOW_GRACE_MS");
    enum { S_CLIENTS = 4 };
    wsclient_t *k[S_CLIENTS];
    bool open[S_CLIENTS];
    for (int i = 0; i < S_CLIENTS; i++) {
        k[i] = s_connect (S_SLOW_RCVBUF);
        open[i] = true;
    }
    //  each asks in turn, never reading, until the broadcaster has closed every one
    int open_count = S_CLIENTS;
    for (int round = 0; round < 20000 && open_count; round++)
        for (int i = 0; i < S_CLIENTS; i++)
            if (open[i] && wsclient_send (k[i], round % 2 ? "{"
                                                          : "{\"op\":\"subscribe\","
                                                            "\"channel\":\"depth\","
                                                            "\"market\":\"campus-1\"}")) {
                open[i] = false;
                open_count--;
            }
    for (int i = 0; i < S_CLIENTS; i++) {
        while (wsclient_recv (k[i], HARNESS_DEADLINE_MS))
            ;
        const char *reason;
        cr_assert_geq (wsclient_closed (k[i], &reason), 0, "client %d is still open", i);
        wsclient_destroy (&k[i]);
    }
    //  their answers went with them: the address is served again
    wsclient_t *f = s_connect (0);
    s_book_t book = {0};
    s_subscribe_depth (f, &book);
    wsclient_destroy (&f);
}

//  One address holds at most max_sessions_per_address WebSocket clients: the next is refused
//  before the upgrade, and a place comes free when one of them goes.
Test (broadcaster, an_address_holds_a_bounded_number_of_clients, .fini = s_fini, .timeout = 120)
{
    harness_init (&s_h, S_CONFIG);
    harness_start (&s_h, "mce-matcher");
    setenv ("MCE_BROADCASTER_MAX_SESSIONS_PER_ADDRESS", "3", 1);
    s_start_broadcaster (false);
    unsetenv ("MCE_BROADCASTER_MAX_SESSIONS_PER_ADDRESS");
    wsclient_t *c[3];
    s_book_t book[3];
    memset (book, 0, sizeof book);
    for (int i = 0; i < 3; i++) {
        c[i] = s_connect (0);
        s_subscribe_depth (c[i], &book[i]); //  each is a working client
    }
    wsclient_t *fourth = wsclient_connect (s_h.port_ws, NULL, 0, HARNESS_DEADLINE_MS);
    cr_assert_null (fourth, "a fourth client from the same address was let in");
    //  one goes; its place is free once the broadcaster has seen it go
    wsclient_destroy (&c[0]);
    int64_t deadline = clock_mono_ns () + (int64_t) HARNESS_DEADLINE_MS * MCE_NS_PER_MSEC;
    while (!(fourth = wsclient_connect (s_h.port_ws, NULL, 0, HARNESS_DEADLINE_MS)) &&
           clock_mono_ns () < deadline)
        ;
    cr_assert_not_null (fourth, "the place of a client that left never came free");
    s_book_t again = {0};
    s_subscribe_depth (fourth, &again);
    wsclient_destroy (&fourth);
    wsclient_destroy (&c[1]);
    wsclient_destroy (&c[2]);
}

Test (broadcaster, a_slow_client_is_conflated_and_a_stuck_one_dropped, .fini = s_fini,
      .timeout = 240)
{
    harness_init (&s_h, S_CONFIG);
    harness_start (&s_h, "mce-matcher");
    //  small, but room for a trades snapshot (50 trades, each with its delivery period):
    //  a client whose snapshot alone passed twice the bound would be closed at once
    setenv ("MCE_BROADCASTER_QUEUE_BYTES", "8192", 1);
    setenv ("MCE_BROADCASTER_SLOW_GRACE_MS", "3000", 1);
    int broadcaster = s_start_broadcaster (false);
    unsetenv ("MCE_BROADCASTER_QUEUE_BYTES");
    unsetenv ("MCE_BROADCASTER_SLOW_GRACE_MS");
    s_truth_t truth;
    s_truth_start (&truth);
    zsock_t *dealer = s_dealer ();
    uint64_t rid = 1;

    //  fast reads all along; slow stops reading until the broadcaster says it is behind;
    //  stuck never reads again. slow and stuck have small receive buffers and follow three
    //  channels, so that they fill up.
    s_book_t fast = {0}, slow = {0}, stuck = {0};
    wsclient_t *f = s_connect (0), *s = s_connect (S_SLOW_RCVBUF), *k = s_connect (S_SLOW_RCVBUF);
    s_subscribe_depth (f, &fast);
    s_subscribe_depth (s, &slow);
    s_subscribe_depth (k, &stuck);
    for (int i = 0; i < 2; i++) {
        wsclient_t *ws = i ? k : s;
        wsclient_send (ws, "{\"op\":\"subscribe\",\"channel\":\"trades\",\"market\":\"campus-1\"}");
        wsclient_send (ws, "{\"op\":\"subscribe\",\"channel\":\"ticker\",\"market\":\"campus-1\"}");
    }
    char slow_behind[96], stuck_closed[96];
    snprintf (slow_behind, sizeof slow_behind, "client 127.0.0.1:%d is behind",
              wsclient_local_port (s));
    snprintf (stuck_closed, sizeof stuck_closed, "closing client 127.0.0.1:%d,",
              wsclient_local_port (k));
    //  Small batches, each waited for on the fast client: every one is an update of each
    //  channel for the others, which do not read.
    bool slow_reads = false;
    uint64_t last = 0;
    for (int batch = 0; batch < 400; batch++) {
        last = s_orders (dealer, 5, &rid);
        s_truth_follow (&truth, last);
        s_read_through (f, &fast, truth.last_level_seq, "fast client");
        slow_reads = slow_reads || harness_count_log (&s_h, broadcaster, slow_behind) > 0;
        if (slow_reads)
            s_read_available (s, &slow);
    }
    cr_assert (slow_reads, "the slow client was never behind (the log line: %s)", slow_behind);
    s_read_through (s, &slow, truth.last_level_seq, "slow client");
    s_book_eq (&fast, &truth.book, "fast client");
    s_book_eq (&slow, &truth.book, "slow client");
    cr_assert_eq (fast.snapshots, 1, "the fast client never lost an update");
    //  Which channel was conflated depends on which update found the queue full, and whether
    //  the owed snapshots went out before depth moved again: one of the three was, at least,
    //  and its snapshot may still be on its way (read with a deadline).
    int64_t owed_by = zclock_mono () + HARNESS_DEADLINE_MS;
    while (slow.snapshots < 2 && slow.other_snapshots[0] < 2 && slow.other_snapshots[1] < 2 &&
           zclock_mono () < owed_by) {
        const char *text = wsclient_recv (s, 100);
        char type[32];
        if (text)
            s_apply (&slow, text, type, sizeof type);
    }
    cr_assert (slow.snapshots >= 2 || slow.other_snapshots[0] >= 2 || slow.other_snapshots[1] >= 2,
               "the slow client got snapshots instead of what it missed (depth %d, trades %d, "
               "ticker %d)",
               slow.snapshots, slow.other_snapshots[0], slow.other_snapshots[1]);
    if (slow.snapshots >= 2)
        cr_assert_lt (slow.updates, fast.updates, "and fewer depth updates");

    //  The stuck client is closed once the grace is over: 1008 "too slow" if the close frame
    //  got through, else just the end of the connection.
    cr_assert (harness_wait_log (&s_h, broadcaster, stuck_closed, HARNESS_DEADLINE_MS));
    while (wsclient_recv (k, HARNESS_DEADLINE_MS))
        ;
    const char *reason;
    int code = wsclient_closed (k, &reason);
    cr_assert_geq (code, 0, "the stuck client's connection ended");
    if (code > 0) {
        cr_assert_eq (code, 1008);
        cr_assert_str_eq (reason, "too slow");
    }
    //  and the others go on
    last = s_orders (dealer, 50, &rid);
    s_truth_follow (&truth, last);
    s_read_through (f, &fast, truth.last_level_seq, "fast client, after");
    s_book_eq (&fast, &truth.book, "fast client, after");
    fprintf (stderr, "broadcaster: fast client %d updates, slow client %d updates + %d snapshots\n",
             fast.updates, slow.updates, slow.snapshots);
    wsclient_destroy (&f);
    wsclient_destroy (&s);
    wsclient_destroy (&k);
    zsock_destroy (&dealer);
    bus_sub_destroy (&truth.sub);
}

//  A monitor on the XPUB following topic, its snapshot read and checked.
static zsock_t *s_monitor (const char *topic)
{
    char xpub[64];
    snprintf (xpub, sizeof xpub, "tcp://127.0.0.1:%d", s_h.port_xpub);
    zsock_t *monitor = zsock_new (ZMQ_SUB);
    cr_assert_eq (harness_client (&s_h, monitor, HARNESS_MONITOR, "broadcaster"), 0);
    zsock_set_subscribe (monitor, topic);
    cr_assert_eq (zsock_connect (monitor, "%s", xpub), 0);
    zsock_set_rcvtimeo (monitor, HARNESS_DEADLINE_MS);
    char *got = NULL, *body = NULL;
    cr_assert_eq (zstr_recvx (monitor, &got, &body, NULL), 2, "the monitor gets a snapshot");
    cr_assert_str_eq (got, topic);
    cr_assert_not_null (strstr (body, "\"type\":\"snapshot\""), "%s", body);
    zstr_free (&got);
    zstr_free (&body);
    return monitor;
}

Test (broadcaster, monitors_on_the_xpub_and_the_origin_check, .fini = s_fini, .timeout = 120)
{
    harness_init (&s_h, S_CONFIG);
    harness_start (&s_h, "mce-matcher");
    setenv ("MCE_BROADCASTER_ORIGINS", "https://ok.example, https://ops.example", 1);
    s_start_broadcaster (true);
    unsetenv ("MCE_BROADCASTER_ORIGINS");

    wsclient_t *ws = wsclient_connect (s_h.port_ws, "https://evil.example", 0, 5000);
    cr_assert_null (ws, "an origin not listed is refused");
    ws = wsclient_connect (s_h.port_ws, "https://ops.example", 0, HARNESS_DEADLINE_MS);
    cr_assert_not_null (ws, "a listed origin is accepted");
    wsclient_destroy (&ws);
    ws = wsclient_connect (s_h.port_ws, NULL, 0, HARNESS_DEADLINE_MS);
    cr_assert_not_null (ws, "no origin (not a browser) is accepted");
    wsclient_destroy (&ws);

    //  Subscribing gets the channel's snapshot, then each trade as an update.
    zsock_t *monitor = s_monitor ("trades.campus-1");
    char *topic = NULL, *body = NULL;
    zsock_t *dealer = s_dealer ();
    uint64_t rid = 1;
    s_orders (dealer, 200, &rid);
    cr_assert_eq (zstr_recvx (monitor, &topic, &body, NULL), 2, "a trade reaches the monitor");
    cr_assert_str_eq (topic, "trades.campus-1");
    cr_assert_not_null (strstr (body, "\"type\":\"update\""), "%s", body);
    cr_assert_not_null (strstr (body, "\"trade_id\""), "%s", body);
    zstr_free (&topic);
    zstr_free (&body);
    zsock_destroy (&monitor);
    zsock_destroy (&dealer);

    //  mcectl tail reads the same: the snapshot first.
    char *out = NULL;
    int status = harness_run (
        "mcectl",
        (const char *[]){"-c", s_h.config, "tail", "ticker.campus-1", "--count", "1", NULL}, &out);
    cr_assert_eq (status, 0, "%s", out);
    cr_assert (strncmp (out, "ticker.campus-1 {", 17) == 0, "%s", out);
    cr_assert_not_null (strstr (out, "\"type\":\"snapshot\""), "%s", out);
    free (out);
}

//  Reads ws until a message of channel arrives whose text holds needle; returns it parsed.
static json_t *s_until (wsclient_t *ws, const char *channel, const char *needle)
{
    while (true) {
        const char *text = wsclient_recv (ws, HARNESS_DEADLINE_MS);
        cr_assert_not_null (text, "no %s message with %s", channel, needle);
        json_t *m = json_loads (text, 0, NULL);
        cr_assert_not_null (m, "%s", text);
        const char *got = json_string_value (json_object_get (m, "channel"));
        if (got && strcmp (got, channel) == 0 && strstr (text, needle))
            return m;
        json_decref (m);
    }
}

#define S_AUCTION_CONFIG                                                                           \
    "markets = ( { id = \"campus-1\"; mode = \"auction\"; tick = \"0.001\"; "                      \
    "epoch_seconds = 2592000; escrow = false; indicative_ms = 50; } );\n"

Test (broadcaster, the_indicative_channel_follows_an_auction_book, .fini = s_fini, .timeout = 120)
{
    harness_init (&s_h, S_AUCTION_CONFIG);
    harness_start (&s_h, "mce-matcher");
    s_start_broadcaster (false);
    wsclient_t *ws = s_connect (0);
    cr_assert_eq (wsclient_send (ws, "{\"op\":\"subscribe\",\"channel\":\"indicative\","
                                     "\"market\":\"campus-1\"}"),
                  0);
    json_t *m = s_until (ws, "indicative", "\"snapshot\"");
    cr_assert_eq (json_array_size (json_object_get (json_object_get (m, "data"), "indicatives")), 0,
                  "an empty market has none");
    json_decref (m);
    zsock_t *monitor = s_monitor ("indicative.campus-1");
    char *topic = NULL, *body = NULL;

    //  a bid of 10 kWh at 0.20 and an ask of 4 at 0.10: 4 would clear at 0.15, 6 of the bid
    //  left unmatched
    zsock_t *dealer = s_dealer ();
    harness_order (dealer, 1, "buyer", true, 10000, 200000);
    harness_order (dealer, 2, "seller", false, 4000, 100000);
    for (int i = 0; i < 2; i++) {
        zframe_t *f = zframe_recv (dealer);
        cr_assert_not_null (f, "the matcher answers");
        zframe_destroy (&f);
    }
    m = s_until (ws, "indicative", "\"crossed\":true");
    cr_assert_str_eq (json_string_value (json_object_get (m, "type")), "update");
    json_t *row = json_array_get (json_object_get (json_object_get (m, "data"), "indicatives"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (row, "price")), "0.15");
    cr_assert_str_eq (json_string_value (json_object_get (row, "volume")), "4");
    cr_assert_str_eq (json_string_value (json_object_get (row, "imbalance_side")), "Buy");
    cr_assert_str_eq (json_string_value (json_object_get (row, "imbalance")), "6");
    json_decref (m);
    bool crossed = false;
    while (!crossed) {
        cr_assert_eq (zstr_recvx (monitor, &topic, &body, NULL), 2, "no crossed update");
        crossed = strstr (body, "\"crossed\":true") != NULL;
        zstr_free (&topic);
        zstr_free (&body);
    }
    zsock_destroy (&monitor);
    zsock_destroy (&dealer);
    wsclient_destroy (&ws);
}
