/*  rstore — the persister's Redis: a read-optimised view of the current books, each market's
    totals and its newest trades, and every user's balances, for readers that want them without
    SQL (docs/architecture.md, The persister).
    Postgres is the record; Redis only ever shows what the persister's replica (replica.h)
    holds, which is Postgres's state at its offset.

    Keys (every number a decimal integer: Wh, µ/kWh, µ; times RFC 3339 UTC with microseconds):

      mce:book:<market>:<epoch>:bids   ZSET  member = order id, score = price (µ/kWh); the
      mce:book:<market>:<epoch>:asks         resting GTC limit orders of one book. The best bid
                                             is ZREVRANGE 0 0 of bids, the best ask ZRANGE 0 0
                                             of asks. TTL RSTORE_TTL_S.
      mce:order:<id>                   HASH  one resting order: market, epoch, side (buy|sell),
                                             price, qty, filled, remaining, user, status
                                             (open|partially_filled), seq (of its last change).
                                             Deleted when the order leaves its book (filled,
                                             cancelled, expired). TTL RSTORE_TTL_S.
      mce:stats:<market>               HASH  trades (count), volume (Wh), value (µ) since the
                                             market began; last_price, last_qty, last_trade_id,
                                             last_at of its newest trade; seq of that trade.
      mce:trades:<market>              LIST  its newest trades, newest first, at most
                                             replica_trades_kept; each a JSON object
                                             {"tid","seq","ep","px","qty","val","aggr","boid",
                                             "soid","at"} with the bus's short keys ("aggr" is
                                             "buy", "sell" or null in an auction).
      mce:balance:<user>               HASH  one user's balances: energy_available,
                                             energy_reserved (Wh), payment_available,
                                             payment_reserved (µ), seq (of its last balance
                                             event). Written whole whenever one changes. No TTL:
                                             a balance stays true however long nobody trades.
      mce:persister:seq                STRING the last seq of the matcher stream these keys
                                             reflect.

    The TTL is a safety net for keys nobody removes any more (a market taken out of service),
    not a lifetime for live orders: every write of a key sets it again, and rstore_refresh sets
    it on every live key; the persister calls that well within the TTL.

    Every write is one MULTI/EXEC sent as a pipeline (commands are not waited for one by one;
    replies are read every RSTORE_PIPELINE_MAX commands so memory stays bounded), and
    mce:persister:seq is set inside the same transaction: Redis is always at the end of some
    whole batch, and its seq says which. The book, order and balance writes are idempotent
    (ZADD, ZREM, HSET, DEL, absolute totals and balances); only the trades list's LPUSH is not, and
   the persister only applies a batch incrementally when Redis's seq is exactly the replica's before
   it, so a batch never lands twice. Anything else (Redis came back empty, or behind, or ahead, or
    unsure after a failure) calls for rstore_rewrite, which replaces all of these keys with
    the replica's state, again in one transaction.

    The redisContext never leaves rstore.c. One thread uses an rstore_t at a time.
*/
#ifndef MCE_RSTORE_H
#define MCE_RSTORE_H

#include "replica.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RSTORE_TTL_S 86400 //  24 h
//  How long a reply may take. Short where Redis must not hold the persister up (a Redis that
//  accepts connections but does not answer costs the persister little): connecting and reading
//  the seq, then a batch's transaction; long only for a rewrite, which follows a seq that did
//  come back and may move a whole book.
#define RSTORE_CONNECT_TIMEOUT_MS 1000
#define RSTORE_WRITE_TIMEOUT_MS   2000
#define RSTORE_REWRITE_TIMEOUT_MS 30000
#define RSTORE_PIPELINE_MAX       1000 //  commands written before their replies are read
#define RSTORE_KEY_MAX            128
#define RSTORE_SEQ_KEY            "mce:persister:seq"
#define RSTORE_ERROR_MAX          512

typedef struct _rstore_t rstore_t;

//  A store for url (redis://host[:port][/db]); it does not connect yet. NULL with the reason in
//  err when the url is malformed or memory runs out.
rstore_t *rstore_new (const char *url, char *err, size_t errlen);
//  Closes the connection. Idempotent; nulls *self_p.
void rstore_destroy (rstore_t **self_p);

//  (Re)connects and selects the database, within RSTORE_CONNECT_TIMEOUT_MS. 0, or -1 with the
//  reason in rstore_error.
int rstore_connect (rstore_t *self);
//  true while connected, as far as the last call could tell. A failed call that lost the
//  connection turns it false until rstore_connect.
bool rstore_ok (rstore_t *self);

//  The seq stored in RSTORE_SEQ_KEY (within RSTORE_CONNECT_TIMEOUT_MS): 0 when absent, -1 on
//  error, -2 when the key holds something that is not a seq (a rewrite sets it again).
int64_t rstore_seq (rstore_t *self);
//  Writes the replica's changes (replica_change, the markets changed or with new trades, and
//  replica_balance_change) and sets the seq to replica_seq, in one transaction. The caller makes
//  sure Redis was at the replica's state before those changes. 0, or -1 with the reason in
//  rstore_error (the transaction then applied wholly or not at all, and a failed connection may
//  leave it unknown which: rewrite).
int rstore_apply (rstore_t *self, const replica_t *replica);
//  Replaces every book, order, stats, trades and balance key with the replica's state and sets
//  the seq, in one transaction. 0, or -1 with the reason in rstore_error.
int rstore_rewrite (rstore_t *self, const replica_t *replica);
//  Sets the TTL of every live book and order key again. 0 or -1.
int rstore_refresh (rstore_t *self, const replica_t *replica);

//  Why the last call failed, on one line. Borrowed, valid until the next call on self.
const char *rstore_error (rstore_t *self);

//  The key names above, into buf (RSTORE_KEY_MAX is enough for any market id). Return buf.
const char *rstore_book_key (char *buf, size_t size, const char *market, int64_t epoch,
                             proto_side_t side);
const char *rstore_order_key (char *buf, size_t size, uint64_t order_id);
const char *rstore_stats_key (char *buf, size_t size, const char *market);
const char *rstore_trades_key (char *buf, size_t size, const char *market);
const char *rstore_balance_key (char *buf, size_t size, const char *user);
//  One trade of the trades list, as JSON, into buf (256 bytes is enough). Returns the length,
//  or -1 when buf is too small.
int rstore_trade_json (const replica_trade_t *trade, char *buf, size_t size);

#endif
