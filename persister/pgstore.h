/*  pgstore — the persister's Postgres: bus events in, history tables out (see
    persister/migrations), each event exactly once.

    pgstore_apply writes a batch of consecutive events of one stream in one transaction that
    also moves that stream's row in consumer_offsets to the batch's last seq: the effects and
    the offset commit together or not at all. A batch that does not start right after the
    stored offset is refused, so a batch delivered twice (a replay after a crash, a retry
    after a lost COMMIT answer) never takes effect twice.

    Rows are written with multi-row statements (INSERT ... VALUES (...), (...) and
    UPDATE ... FROM (VALUES ...)), a few per batch rather than one per event; the changes a
    batch makes to one order, one (user, asset) balance, one deposit or one withdrawal are
    folded into one row first.

    Accounts (docs/clearing.md, Accounts and escrow; migrations/0003_accounts.sql): balances (the
    latest per user and asset) and balance_movements (one row per balance event) from the matcher;
    deposits from the settler; withdrawals from both, each stream applied in its own order and
    either one creating the row, with upserts that never move a final state (paid, refunded) back.

    One thread uses a pgstore_t at a time. pg_t (and so libpq) stays inside pgstore.c.
*/
#ifndef MCE_PGSTORE_H
#define MCE_PGSTORE_H

#include "proto.h"
#include "replica.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGSTORE_COMPONENT  "persister" //  its name in schema_migrations
#define PGSTORE_MAX_PARAMS 65535       //  Postgres's limit on the parameters of one statement

typedef struct _pgstore_t pgstore_t;

//  Connects (within PG_CONNECT_TIMEOUT_MS) and brings the schema up to date. Returns a store
//  the caller owns, or NULL with the reason in err (unreachable, a migration failed, or the
//  database's schema is newer than this binary knows).
pgstore_t *pgstore_new (const char *conninfo, char *err, size_t errlen);
//  Closes the connection. Idempotent; nulls *self_p.
void pgstore_destroy (pgstore_t **self_p);

//  true while the connection is up, as far as the last call could tell.
bool pgstore_ok (pgstore_t *self);
//  Connects again with the same conninfo. 0, or -1 with the reason in pgstore_error.
int pgstore_reconnect (pgstore_t *self);

//  The last seq of stream ("m", "s") whose effects are stored; 0 if none. -1 on error.
int64_t pgstore_offset (pgstore_t *self, const char *stream);

//  Loads into replica (new, empty) what Redis should show as of the stream's offset, and that
//  offset into *offset, all read in one snapshot: every resting GTC limit order, each market's
//  trade totals and its newest replica_trades_kept trades, every user's balances. 0, or -1
//  with the reason in pgstore_error (the replica is then partly loaded: throw it away).
int pgstore_load_replica (pgstore_t *self, const char *stream, replica_t *replica, int64_t *offset);

//  Applies count events of stream, whose seqs are consecutive and start at offset + 1, in
//  one transaction that also sets the stream's offset to the last of them. Returns 0, or -1
//  with the transaction rolled back (nothing of the batch stored, the offset unchanged) and
//  the reason in pgstore_error: the batch does not start at offset + 1 (already applied, or
//  a gap), its seqs are not consecutive, or the database failed. count 0 does nothing.
//
//  Stream "m" (the matcher): order_accepted, trade, order_cancelled, order_expired,
//  order_amended, epoch_state, market_state and market_control write rows; balance writes a
//  row of balance_movements and upserts its (user, asset) in balances; withdrawal upserts its
//  row in withdrawals (requested creates it or leaves the settler's state; paid and refunded
//  are final); every other kind only advances the offset. Stream "s" (the settler): each
//  settlement upserts its trade's row in settlements (the latest state; amounts, parties and
//  signature kept from the records that carry them); each transfer upserts its row in deposits
//  or withdrawals (the record that carries user, asset and amount creates it; later ones set
//  state, signature, attempts and error, except that a withdrawal's final state stays; a
//  record in a state its kind does not have, or of a transfer whose creating record never
//  came, is logged and otherwise ignored); an epoch_state saying settled marks the
//  epoch settled (an epoch never goes back from settled, whichever stream is applied first);
//  the rest only advances the offset.
int pgstore_apply (pgstore_t *self, const char *stream, const proto_msg_t *events, size_t count);

//  Why the last call failed, on one line. Borrowed, valid until the next call on self.
const char *pgstore_error (pgstore_t *self);
//  SQLSTATE of the last database failure, "" when the last failure was not the database's.
const char *pgstore_sqlstate (pgstore_t *self);

#endif
