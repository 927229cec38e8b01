/*  test_rstore — the persister's Redis store against a real redis-server: what a batch of
    changes writes (books, order hashes with their TTL, market totals, the newest trades, the
    users' balances, the seq), what a rewrite replaces, and what happens when Redis goes away
    and comes back.
    Each test starts a Redis of its own (redistest: a few milliseconds).
*/
#include "redistest.h"
#include "replica.h"
#include "rstore.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MKT "campus-1"
#define EP  42

static redistest_t s_redis;
static redisContext *s_look;
static uint64_t s_seq;

static void s_init (void)
{
    cr_assert_eq (redistest_start (&s_redis), 0);
    s_look = redistest_connect (&s_redis);
    cr_assert_not_null (s_look);
}

static void s_fini (void)
{
    redisFree (s_look);
    s_look = NULL;
    redistest_stop (&s_redis);
}

static rstore_t *s_store (void)
{
    char err[256];
    rstore_t *store = rstore_new (s_redis.url, err, sizeof err);
    cr_assert_not_null (store, "%s", err);
    cr_assert_eq (rstore_connect (store), 0, "%s", rstore_error (store));
    return store;
}

//  A command's reply as text: an integer or a string as it is, nil as "(nil)", an array as its
//  elements joined with ','.
static void s_query (char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    redisReply *r = redisvCommand (s_look, fmt, ap);
    va_end (ap);
    cr_assert_not_null (r, "%s", s_look->errstr);
    out[0] = '\0';
    size_t len = 0;
    redisReply *one[] = {r};
    redisReply **items = r->type == REDIS_REPLY_ARRAY ? r->element : one;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 1;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = items[i];
        int w;
        if (e->type == REDIS_REPLY_INTEGER)
            w = snprintf (out + len, size - len, "%s%lld", i ? "," : "", e->integer);
        else if (e->type == REDIS_REPLY_NIL)
            w = snprintf (out + len, size - len, "%s(nil)", i ? "," : "");
        else
            w = snprintf (out + len, size - len, "%s%s", i ? "," : "", e->str);
        cr_assert (w >= 0 && (size_t) w < size - len, "reply too long");
        len += (size_t) w;
    }
    freeReplyObject (r);
}

static long long s_int (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    redisReply *r = redisvCommand (s_look, fmt, ap);
    va_end (ap);
    cr_assert_not_null (r);
    cr_assert_eq (r->type, REDIS_REPLY_INTEGER, "not an integer reply");
    long long v = r->integer;
    freeReplyObject (r);
    return v;
}

static proto_msg_t s_accept (uint64_t id, proto_side_t side, int64_t qty, int64_t price)
{
    proto_msg_t m = {.kind = PROTO_order_accepted};
    proto_order_accepted_t *e = &m.order_accepted;
    e->seq = ++s_seq;
    e->ts = 1763761200123456789LL;
    snprintf (e->market, sizeof e->market, MKT);
    e->epoch = EP;
    e->order_id = id;
    snprintf (e->user, sizeof e->user, "%s", side == PROTO_SIDE_BUY ? "bob" : "sue");
    e->side = side;
    e->type = PROTO_ORDER_TYPE_LIMIT;
    e->tif = PROTO_TIF_GTC;
    e->qty = qty;
    e->price = price;
    return m;
}

static proto_msg_t s_trade (uint64_t tid, uint64_t buy, uint64_t sell, int64_t qty, int64_t price)
{
    proto_msg_t m = {.kind = PROTO_trade};
    proto_trade_t *e = &m.trade;
    e->seq = ++s_seq;
    e->ts = 1763761200123456789LL; //  2025-11-21T21:40:00.123456Z
    snprintf (e->market, sizeof e->market, MKT);
    e->epoch = EP;
    e->trade_id = tid;
    e->buy_order_id = buy;
    e->sell_order_id = sell;
    snprintf (e->buyer, sizeof e->buyer, "bob");
    snprintf (e->seller, sizeof e->seller, "sue");
    e->qty = qty;
    e->price = price;
    e->value = qty * price / 1000;
    e->aggressor = PROTO_SIDE_SELL;
    return m;
}

static void s_apply (replica_t *r, rstore_t *store, const proto_msg_t *events, size_t count)
{
    cr_assert_eq (replica_apply (r, events, count), 0);
    cr_assert_eq (rstore_apply (store, r), 0, "%s", rstore_error (store));
    replica_clear_changes (r);
}

Test (rstore, a_batch_writes_books_orders_totals_trades_and_the_seq, .init = s_init, .fini = s_fini)
{
    replica_t *r = replica_new (10);
    rstore_t *store = s_store ();
    cr_assert_eq (rstore_seq (store), 0, "no seq yet");
    proto_msg_t batch[] = {
        s_accept (1, PROTO_SIDE_SELL, 3000, 150000), s_accept (2, PROTO_SIDE_BUY, 1000, 149000),
        s_accept (3, PROTO_SIDE_BUY, 1000, 150000), s_trade (500, 3, 1, 1000, 150000)};
    s_apply (r, store, batch, 4);
    char got[1024];
    s_query (got, sizeof got, "ZRANGE mce:book:" MKT ":42:asks 0 -1 WITHSCORES");
    cr_assert_str_eq (got, "1,150000");
    s_query (got, sizeof got, "ZRANGE mce:book:" MKT ":42:bids 0 -1 WITHSCORES");
    cr_assert_str_eq (got, "2,149000", "order 3 filled: not in the book");
    s_query (got, sizeof got,
             "HMGET mce:order:1 market epoch side price qty filled remaining user status seq");
    cr_assert_str_eq (got, MKT ",42,sell,150000,3000,1000,2000,sue,partially_filled,4");
    cr_assert_eq (s_int ("EXISTS mce:order:3"), 0);
    long long ttl = s_int ("TTL mce:order:2");
    cr_assert (ttl > RSTORE_TTL_S - 60 && ttl <= RSTORE_TTL_S, "TTL %lld", ttl);
    ttl = s_int ("TTL mce:book:" MKT ":42:bids");
    cr_assert (ttl > RSTORE_TTL_S - 60 && ttl <= RSTORE_TTL_S, "TTL %lld", ttl);
    s_query (got, sizeof got,
             "HMGET mce:stats:" MKT " trades volume value last_price last_qty last_trade_id "
             "last_at seq");
    cr_assert_str_eq (got, "1,1000,150000,150000,1000,500,2025-11-21T21:40:00.123456Z,4");
    s_query (got, sizeof got, "LRANGE mce:trades:" MKT " 0 -1");
    cr_assert_str_eq (got, "{\"tid\":500,\"seq\":4,\"ep\":42,\"px\":150000,\"qty\":1000,"
                           "\"val\":150000,\"aggr\":\"sell\",\"boid\":3,\"soid\":1,"
                           "\"at\":\"2025-11-21T21:40:00.123456Z\"}");
    cr_assert_eq (rstore_seq (store), 4);
    rstore_destroy (&store);
    rstore_destroy (&store);
    replica_destroy (&r);
}

Test (rstore, orders_leaving_their_book_leave_redis, .init = s_init, .fini = s_fini)
{
    replica_t *r = replica_new (10);
    rstore_t *store = s_store ();
    proto_msg_t in[] = {s_accept (1, PROTO_SIDE_SELL, 3000, 150000),
                        s_accept (2, PROTO_SIDE_SELL, 3000, 151000)};
    s_apply (r, store, in, 2);
    proto_msg_t amend = {.kind = PROTO_order_amended};
    amend.order_amended = (proto_order_amended_t){
        .seq = ++s_seq, .epoch = EP, .order_id = 2, .qty = 500, .price = 152000};
    snprintf (amend.order_amended.market, sizeof amend.order_amended.market, MKT);
    proto_msg_t cancel = {.kind = PROTO_order_cancelled};
    cancel.order_cancelled =
        (proto_order_cancelled_t){.seq = ++s_seq, .epoch = EP, .order_id = 1, .remaining = 3000};
    snprintf (cancel.order_cancelled.market, sizeof cancel.order_cancelled.market, MKT);
    proto_msg_t out[] = {amend, cancel};
    s_apply (r, store, out, 2);
    char got[256];
    s_query (got, sizeof got, "ZRANGE mce:book:" MKT ":42:asks 0 -1 WITHSCORES");
    cr_assert_str_eq (got, "2,152000");
    cr_assert_eq (s_int ("EXISTS mce:order:1"), 0);
    s_query (got, sizeof got, "HMGET mce:order:2 price qty remaining");
    cr_assert_str_eq (got, "152000,500,500");
    //  the last one out: the book key is gone with it
    proto_msg_t last = {.kind = PROTO_order_expired};
    last.order_expired =
        (proto_order_expired_t){.seq = ++s_seq, .epoch = EP, .order_id = 2, .remaining = 500};
    snprintf (last.order_expired.market, sizeof last.order_expired.market, MKT);
    s_apply (r, store, &last, 1);
    cr_assert_eq (s_int ("EXISTS mce:book:" MKT ":42:asks"), 0);
    cr_assert_eq (s_int ("EXISTS mce:order:2"), 0);
    cr_assert_eq (rstore_seq (store), (int64_t) s_seq);
    rstore_destroy (&store);
    replica_destroy (&r);
}

Test (rstore, the_trades_list_keeps_the_newest_newest_first, .init = s_init, .fini = s_fini)
{
    replica_t *r = replica_new (3);
    rstore_t *store = s_store ();
    proto_msg_t a[] = {s_trade (1, 10, 20, 1000, 150000), s_trade (2, 10, 20, 1000, 150000)};
    s_apply (r, store, a, 2);
    proto_msg_t b[] = {s_trade (3, 10, 20, 1000, 150000), s_trade (4, 10, 20, 1000, 150000),
                       s_trade (5, 10, 20, 1000, 150000), s_trade (6, 10, 20, 1000, 150000)};
    s_apply (r, store, b, 4);
    cr_assert_eq (s_int ("LLEN mce:trades:" MKT), 3);
    char got[512];
    for (int i = 0; i < 3; i++) {
        s_query (got, sizeof got, "LINDEX mce:trades:" MKT " %d", i);
        char want[16];
        snprintf (want, sizeof want, "{\"tid\":%d,", 6 - i);
        cr_assert (strncmp (got, want, strlen (want)) == 0, "%d: %s", i, got);
    }
    s_query (got, sizeof got, "HMGET mce:stats:" MKT " trades volume");
    cr_assert_str_eq (got, "6,6000");
    rstore_destroy (&store);
    replica_destroy (&r);
}

Test (rstore, a_rewrite_replaces_whatever_was_there, .init = s_init, .fini = s_fini)
{
    replica_t *r = replica_new (10);
    proto_msg_t batch[] = {
        s_accept (1, PROTO_SIDE_SELL, 3000, 150000), s_accept (2, PROTO_SIDE_BUY, 1000, 149000),
        s_accept (3, PROTO_SIDE_BUY, 1000, 150000), s_trade (500, 3, 1, 1000, 150000)};
    cr_assert_eq (replica_apply (r, batch, 4), 0);
    replica_clear_changes (r); //  as when Redis was down: only a rewrite brings these
    //  What a Redis that missed things might hold: stale orders, a stale book, a key of the
    //  wrong type, and someone else's key that must stay.
    freeReplyObject (redisCommand (s_look, "HSET mce:order:99 price 1"));
    freeReplyObject (redisCommand (s_look, "ZADD mce:book:" MKT ":42:asks 1 99"));
    freeReplyObject (redisCommand (s_look, "ZADD mce:book:" MKT ":41:bids 1 98"));
    freeReplyObject (redisCommand (s_look, "SET mce:stats:" MKT " oops"));
    freeReplyObject (redisCommand (s_look, "SET mce:persister:seq 2"));
    freeReplyObject (redisCommand (s_look, "SET other:key kept"));
    rstore_t *store = s_store ();
    cr_assert_eq (rstore_seq (store), 2);
    cr_assert_eq (rstore_rewrite (store, r), 0, "%s", rstore_error (store));
    char got[512];
    s_query (got, sizeof got, "ZRANGE mce:book:" MKT ":42:asks 0 -1 WITHSCORES");
    cr_assert_str_eq (got, "1,150000");
    s_query (got, sizeof got, "ZRANGE mce:book:" MKT ":42:bids 0 -1 WITHSCORES");
    cr_assert_str_eq (got, "2,149000");
    cr_assert_eq (s_int ("EXISTS mce:book:" MKT ":41:bids"), 0);
    cr_assert_eq (s_int ("EXISTS mce:order:99"), 0);
    s_query (got, sizeof got, "HMGET mce:order:1 remaining status");
    cr_assert_str_eq (got, "2000,partially_filled");
    s_query (got, sizeof got, "HMGET mce:stats:" MKT " trades last_price");
    cr_assert_str_eq (got, "1,150000");
    cr_assert_eq (s_int ("LLEN mce:trades:" MKT), 1);
    s_query (got, sizeof got, "GET other:key");
    cr_assert_str_eq (got, "kept");
    cr_assert_eq (rstore_seq (store), 4);
    //  a seq key someone broke is told apart from an outage, and a rewrite mends it
    freeReplyObject (redisCommand (s_look, "SET mce:persister:seq oops"));
    cr_assert_eq (rstore_seq (store), -2);
    freeReplyObject (redisCommand (s_look, "DEL mce:persister:seq"));
    freeReplyObject (redisCommand (s_look, "HSET mce:persister:seq a 1"));
    cr_assert_eq (rstore_seq (store), -2);
    //  and a second rewrite of the same state changes nothing
    cr_assert_eq (rstore_rewrite (store, r), 0, "%s", rstore_error (store));
    s_query (got, sizeof got, "ZRANGE mce:book:" MKT ":42:bids 0 -1 WITHSCORES");
    cr_assert_str_eq (got, "2,149000");
    cr_assert_eq (s_int ("LLEN mce:trades:" MKT), 1);
    cr_assert_eq (rstore_seq (store), 4);
    rstore_destroy (&store);
    replica_destroy (&r);
}

Test (rstore, refresh_sets_the_ttls_again, .init = s_init, .fini = s_fini)
{
    replica_t *r = replica_new (10);
    rstore_t *store = s_store ();
    proto_msg_t in = s_accept (1, PROTO_SIDE_SELL, 3000, 150000);
    s_apply (r, store, &in, 1);
    freeReplyObject (redisCommand (s_look, "EXPIRE mce:order:1 100"));
    freeReplyObject (redisCommand (s_look, "EXPIRE mce:book:" MKT ":42:asks 100"));
    cr_assert_eq (rstore_refresh (store, r), 0, "%s", rstore_error (store));
    cr_assert_gt (s_int ("TTL mce:order:1"), RSTORE_TTL_S - 60);
    cr_assert_gt (s_int ("TTL mce:book:" MKT ":42:asks"), RSTORE_TTL_S - 60);
    rstore_destroy (&store);
    replica_destroy (&r);
}

Test (rstore, an_outage_fails_the_calls_until_it_reconnects, .init = s_init, .fini = s_fini)
{
    replica_t *r = replica_new (10);
    rstore_t *store = s_store ();
    proto_msg_t a = s_accept (1, PROTO_SIDE_SELL, 3000, 150000);
    s_apply (r, store, &a, 1);
    redisFree (s_look);
    s_look = NULL;
    cr_assert_eq (redistest_stop_server (&s_redis), 0);
    proto_msg_t b = s_accept (2, PROTO_SIDE_SELL, 3000, 150000);
    cr_assert_eq (replica_apply (r, &b, 1), 0);
    cr_assert_eq (rstore_apply (store, r), -1);
    cr_assert_neq (rstore_error (store)[0], '\0');
    cr_assert_not (rstore_ok (store));
    cr_assert_eq (rstore_seq (store), -1);
    cr_assert_eq (rstore_connect (store), -1, "nothing listens");
    cr_assert_eq (redistest_restart (&s_redis), 0);
    s_look = redistest_connect (&s_redis);
    cr_assert_eq (rstore_connect (store), 0, "%s", rstore_error (store));
    cr_assert (rstore_ok (store));
    cr_assert_eq (rstore_seq (store), 0, "it came back empty");
    cr_assert_eq (rstore_rewrite (store, r), 0, "%s", rstore_error (store));
    cr_assert_eq (s_int ("ZCARD mce:book:" MKT ":42:asks"), 2);
    cr_assert_eq (rstore_seq (store), 2);
    rstore_destroy (&store);
    replica_destroy (&r);
}

Test (rstore, a_malformed_url_is_refused)
{
    char err[256];
    cr_assert_null (rstore_new ("http://x", err, sizeof err));
    cr_assert_not_null (strstr (err, "redis://"), "%s", err);
}

static proto_msg_t s_balance (const char *user, proto_asset_t asset, int64_t available,
                              int64_t reserved)
{
    proto_msg_t m = {.kind = PROTO_balance};
    proto_balance_t *e = &m.balance;
    e->seq = ++s_seq;
    e->ts = 1763761200123456789LL;
    snprintf (e->user, sizeof e->user, "%s", user);
    e->asset = asset;
    e->available = available;
    e->reserved = reserved;
    e->cause = PROTO_BALANCE_CAUSE_ORDER;
    return m;
}

Test (rstore, balances_are_a_hash_per_user_written_whole, .init = s_init, .fini = s_fini)
{
    replica_t *r = replica_new (10);
    rstore_t *store = s_store ();
    proto_msg_t batch[] = {s_balance ("bob", PROTO_ASSET_PAYMENT, 1000000, 0),
                           s_balance ("sue", PROTO_ASSET_ENERGY, 5000, 0),
                           s_balance ("bob", PROTO_ASSET_PAYMENT, 850000, 150000)};
    s_apply (r, store, batch, 3);
    char got[256];
    s_query (got, sizeof got,
             "HMGET mce:balance:bob energy_available energy_reserved payment_available "
             "payment_reserved seq");
    cr_assert_str_eq (got, "0,0,850000,150000,3");
    s_query (got, sizeof got,
             "HMGET mce:balance:sue energy_available energy_reserved payment_available "
             "payment_reserved seq");
    cr_assert_str_eq (got, "5000,0,0,0,2");
    cr_assert_eq (s_int ("TTL mce:balance:bob"), -1, "a balance does not expire");
    cr_assert_eq (rstore_seq (store), 3);
    //  the next batch writes only the users it changed
    freeReplyObject (redisCommand (s_look, "HSET mce:balance:sue energy_available 1"));
    proto_msg_t next[] = {s_balance ("bob", PROTO_ASSET_ENERGY, 300, 0),
                          s_accept (1, PROTO_SIDE_SELL, 300, 150000)};
    s_apply (r, store, next, 2);
    s_query (got, sizeof got, "HMGET mce:balance:bob energy_available payment_available seq");
    cr_assert_str_eq (got, "300,850000,4");
    s_query (got, sizeof got, "HGET mce:balance:sue energy_available");
    cr_assert_str_eq (got, "1", "sue's key is not rewritten: she did not change");
    //  a rewrite puts every balance back, and takes away the keys of users it does not know
    freeReplyObject (redisCommand (s_look, "HSET mce:balance:mallory payment_available 99"));
    cr_assert_eq (rstore_rewrite (store, r), 0, "%s", rstore_error (store));
    s_query (got, sizeof got, "HGET mce:balance:sue energy_available");
    cr_assert_str_eq (got, "5000");
    cr_assert_eq (s_int ("EXISTS mce:balance:mallory"), 0);
    s_query (got, sizeof got,
             "HMGET mce:balance:bob energy_available energy_reserved payment_available "
             "payment_reserved seq");
    cr_assert_str_eq (got, "300,0,850000,150000,4");
    cr_assert_eq (rstore_seq (store), 5);
    rstore_destroy (&store);
    replica_destroy (&r);
}

//  Redis lost everything: a rewrite from a replica loaded as the persister loads it (no events
//  followed) brings the balances back.
Test (rstore, a_rewrite_restores_loaded_balances_after_redis_lost_them, .init = s_init,
      .fini = s_fini)
{
    replica_t *r = replica_new (10);
    cr_assert_eq (replica_load_balance (r, "bob", PROTO_ASSET_ENERGY, 7000, 1000, 41), 0);
    cr_assert_eq (replica_load_balance (r, "bob", PROTO_ASSET_PAYMENT, 5, 0, 42), 0);
    replica_set_seq (r, 42);
    rstore_t *store = s_store ();
    freeReplyObject (redisCommand (s_look, "FLUSHALL"));
    cr_assert_eq (rstore_seq (store), 0);
    cr_assert_eq (rstore_rewrite (store, r), 0, "%s", rstore_error (store));
    char got[256];
    s_query (got, sizeof got,
             "HMGET mce:balance:bob energy_available energy_reserved payment_available "
             "payment_reserved seq");
    cr_assert_str_eq (got, "7000,1000,5,0,42");
    cr_assert_eq (rstore_seq (store), 42);
    rstore_destroy (&store);
    replica_destroy (&r);
}
