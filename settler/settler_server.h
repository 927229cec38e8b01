/*  settler_server — turns every trade on the matcher bus into SPL-token transfers on Solana,
    journaling its intent first, and publishes each step on its own bus (DESIGN.md §6–7).

    One thread, one loop (zmq_poll on the matcher bus, the admin ROUTER and a deadline):

      1. Matcher events: a trade becomes a settlement (fee = value × fee_ppm / 10^6, half-even),
         recorded `pending` with the trade and its matcher seq; an epoch's `cleared` is
         recorded too (with its trade count). These records are the resume point: after a
         restart the matcher bus is followed from the highest matcher seq journaled.
      2. Status round (every SETTLER_STATUS_MS while transactions are in flight): getBlockHeight
         (finalized) first, then getSignatureStatuses of every transaction in flight. Landed and
         confirmed → `confirmed`; landed with an error → that transaction failed; unknown and
         the height already past its lastValidBlockHeight → it can never land: its settlements
         go back to `pending` (or `failed` once retry_attempts transactions were signed for
         them). The height is read before the statuses, so a transaction that lands between
         the two reads is seen landed, never taken for expired.
      3. Send round: a fresh blockhash, then the ready pending settlements are packed into up to
         SETTLER_ROUND_TXS transactions (settle_batch.h, first fit), each signed; one
         `processing` record per settlement (signature, blockhash, lastValidBlockHeight) is
         committed to the journal — fdatasync — and only then are the transactions sent, one
         JSON-RPC batch per SETTLER_SEND_CHUNK.
      4. Rebroadcast: sendTransaction is called with maxRetries 0, so the settler resends the
         same bytes (always safe: same signature) every SETTLER_RESEND_MS until the transaction
         is seen, for at most confirmation_timeout_ms; a send that never got an answer is
         resent after the backoff.

    Failures. A node that does not answer usably (refused, timeout, 429, 5xx, garbage, -32005)
    puts every ledger call on hold for an exponential backoff with jitter (backoff_ms doubling
    to backoff_cap_ms, at least the Retry-After): the loop then only waits on its sockets, and
    ledger_up/backoff_seconds say so in the metrics. A transaction a node refuses in preflight
    is resolved at once when no copy of it can have been sent before; otherwise only the chain
    can resolve it (status, then expiry). Whom a failure concerns: an instruction error names
    its instruction, hence its settlement, which fails for good with the chain's reason (no
    funds, no such token account…); the other settlements of that transaction go back to
    pending at once without using an attempt. Any other failure (expired, BlockhashNotFound,
    fee payer out of SOL…) uses an attempt: pending again after a per-settlement backoff, or
    failed with the reason after the last one. A trade whose user has no wallet fails at once.

    Never paying twice (SOLANA.md): a settlement goes back to pending only once its last
    transaction provably cannot land. After a crash the journal gives every transaction that
    was in flight (maybe sent, maybe not); nothing new is signed until one status round has
    answered for all of them, and each is rebuilt from its records and resent only when the
    rebuilt signature equals the journaled one (same bytes).

    Epochs: when every trade of a cleared epoch is confirmed, an epoch_state `settled` is
    recorded on stream s. Admin commands: see settler_command in proto/messages.def.

    Test hooks (environment): MCE_SETTLER_CRASH_BEFORE_SEND=N exits at once after the Nth
    processing commit, before sending; MCE_SETTLER_CRASH_AFTER_SEND=N exits right after the
    Nth sendTransaction request returned, before its answer is looked at.
*/
#ifndef MCE_SETTLER_SERVER_H
#define MCE_SETTLER_SERVER_H

#include "config.h"

#define SETTLER_STATUS_MS    50    //  status round period while transactions are in flight
#define SETTLER_RESEND_MS    2000  //  rebroadcast period of an unconfirmed transaction
#define SETTLER_ROUND_TXS    64    //  transactions signed per send round, at most
#define SETTLER_SEND_CHUNK   32    //  sendTransaction calls per HTTP request
#define SETTLER_EVENTS_MAX   20000 //  matcher events taken per loop turn
#define SETTLER_LIST_DEFAULT 100   //  admin list: settlements per answer unless asked
#define SETTLER_LIST_MAX     1000
#define SETTLER_CRASH_EXIT   86 //  exit status of the crash hooks

typedef struct _settler_server_t settler_server_t;

//  Loads the keys (when settler.keys_file is set), recovers the journal, binds the bus and
//  the admin socket, subscribes to the matcher bus after the last trade journaled. NULL on a
//  fatal error (logged).
settler_server_t *settler_server_new (const mce_config_t *cfg);
void settler_server_destroy (settler_server_t **self_p);
//  Runs until interrupted. 0, or -1 on a fatal error (the journal failed).
int settler_server_run (settler_server_t *self);

#endif
