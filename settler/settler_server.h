/*  settler_server — turns every trade on the matcher bus into SPL-token transfers on Solana,
    moves users' deposits into the platform's vaults and pays their withdrawals out of them,
    journaling its intent first, and publishes each step on its own bus (docs/architecture.md,
    The settler).

    One thread, one loop (zmq_poll on the matcher bus, the admin ROUTER, the DEALER to the
    matcher's command port and a deadline):

      1. Matcher events: a trade becomes a settlement (fee = value × fee_ppm / 10^6, half-even),
         recorded `pending` with the trade and its matcher seq; an epoch's `cleared` is
         recorded too (with its trade count); a `withdrawal` requested (the matcher debited the
         user) becomes a transfer record (kind withdrawal, id = the matcher's wid, pending, with
         the event's seq as mseq). These records are the resume point: after a restart the
         matcher bus is followed from the highest matcher seq they hold.
      2. Admin commands (settler_admin.c): list and retry settlements; `deposit` {owner, asset,
         amount}: the owner's wallet is looked up (no_wallet, or unavailable while Postgres
         cannot answer), a deposit id assigned (the next after the journal's highest) and its
         transfer record (pending, with the user, asset, amount and wallet) committed before
         the answer — the record, then settler_reply {ok, id}.
      3. Status round (every SETTLER_STATUS_MS while transactions are in flight): getBlockHeight
         (finalized) first, then getSignatureStatuses of every transaction in flight. Landed and
         confirmed → `confirmed`; landed with an error → that transaction failed; unknown and
         the height already past its lastValidBlockHeight → it can never land: what it held
         goes back to `pending` (or `failed` once retry_attempts transactions were signed for
         it). The height is read before the statuses, so a transaction that lands between the
         two reads is seen landed, never taken for expired.
      4. Send round: a fresh blockhash, then the ready pending items are packed into up to
         SETTLER_ROUND_TXS transactions (settle_batch.h, first fit; deposits, withdrawals and
         settlements each in transactions of their own, transfers taking up to half a round),
         each signed; one `processing` record per item (signature, blockhash,
         lastValidBlockHeight; a transfer's also names the wallet) is committed to the journal
         — fdatasync — and only then are the transactions sent, one JSON-RPC batch per
         SETTLER_SEND_CHUNK.
      5. Rebroadcast: sendTransaction is called with maxRetries 0, so the settler resends the
         same bytes (always safe: same signature) every SETTLER_RESEND_MS until the transaction
         is seen, for at most confirmation_timeout_ms; a send that never got an answer is
         resent after the backoff.
      6. The matcher's side of a transfer (transfer_link.h), once its outcome is committed: a
         confirmed deposit → deposit_credit; a confirmed withdrawal → withdrawal_close (paid);
         a withdrawal failed for good → withdrawal_close (refund). Each is sent again every
         command_resend_ms (longer after a refusal) until the matcher acknowledges it, through
         restarts of either side — the matcher applies each once per id and answers a repeat
         with dup — and the acknowledgement is journaled: `credited` (with the matcher seq of
         the credit), `closed`, `refunded`. A failed deposit is final: nothing is credited.
      7. Every few seconds the vaults' balances, for the metrics.

    Settlement out of escrow. For a market with `escrow = true` the matcher reserved and
    debited what the trade moves, and the tokens are in the vaults (the platform's associated
    token accounts): energy vault → buyer, payment vault → seller (value − fee), payment vault
    → treasury (fee), the platform signing as the vaults' owner. Such a settlement can wait on
    the chain but never fails for lack of funds: a vault that is short (the books and the chain
    disagree) is logged as an error and the settlement waits (backoff_cap_ms, retries counted
    as vault_short) instead. Other markets keep the wallet-to-wallet transfers. Which way a
    settlement goes is read from the configuration when it is packed: change a market's escrow
    only with none of its trades unsettled.

    Failures. A node that does not answer usably (refused, timeout, 429, 5xx, garbage, -32005)
    puts every ledger call on hold for an exponential backoff with jitter (backoff_ms doubling
    to backoff_cap_ms, at least the Retry-After): the loop then only waits on its sockets, and
    ledger_up/backoff_seconds say so in the metrics. A transaction a node refuses in preflight
    is resolved at once when no copy of it can have been sent before; otherwise only the chain
    can resolve it (status, then expiry). Whom a failure concerns: an instruction error names
    its instruction, hence its settlement or transfer, which fails for good with the chain's
    reason (no funds, no approval of the platform as delegate, no such token account…); the
    others of that transaction go back to pending at once without using an attempt. Any other
    failure (expired, BlockhashNotFound, fee payer out of SOL…) uses an attempt: pending again
    after a backoff, or failed with the reason after the last one. A trade whose user has no
    wallet fails at once; so does a withdrawal (and it is refunded). Wallets are looked up
    again after settler.wallet_ttl_ms, so a payout goes to the wallet the user has now.

    Never paying twice (docs/architecture.md, The settler), for settlements, deposits and
    withdrawals alike: an item goes back to pending (or fails) only once its last transaction
    provably cannot land. After a crash the journal gives every transaction that was in flight
    (maybe sent, maybe not); nothing new is signed until one status round has answered for all
    of them, and each is rebuilt from its records and resent only when the rebuilt signature
    equals the journaled one (same bytes). A withdrawal is closed only after it was confirmed
    and refunded only after it failed for good, and those two states exclude each other in the
    journal: never paid twice, never refunded twice, never both.

    Epochs: when every trade of a cleared epoch is confirmed, an epoch_state `settled` is
    recorded on stream s. Admin commands: see settler_command in proto/messages.def.

    Test hooks (environment): MCE_SETTLER_CRASH_BEFORE_SEND=N exits at once after the Nth
    processing commit, before sending; MCE_SETTLER_CRASH_AFTER_SEND=N exits right after the
    Nth sendTransaction request returned, before its answer is looked at;
    MCE_SETTLER_CRASH_AFTER_ACK=N exits when the matcher's Nth acknowledgement of a credit or
    a close arrives, before it is journaled (the next settler asks again).
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
