/*  transfer_link — the settler's DEALER to the matcher's command port (matcher.commands): the
    commands that carry a deposit's or a withdrawal's outcome on chain into the matcher's
    balances, and the matcher's answers to them.

        deposit_credit   {rid, did, uid, asset, amt, ts}   a deposit is confirmed: credit it
        withdrawal_close {rid, wid, refund, ts}            a withdrawal is paid (refund false),
                                                           or failed for good (refund true)

    The matcher answers each with ack {rid, seq, ref, dup} or reject {rid, reason, msg}. Both
    commands are idempotent at the matcher (per deposit id, per withdrawal id: a second one is
    acknowledged with dup and changes nothing), so the settler sends one again and again until
    it is acknowledged, through restarts of either side; nothing here remembers what was sent.
    The rid says what an answer is for: rid = id × 4 + what (1 credit, 2 close paid, 3 close
    refund), so an answer finds its transfer without a table, even one that comes late.

    ZMQ_IMMEDIATE: while the matcher is unreachable a command is refused at once instead of
    queued (the caller sends it again on its timer anyway), so that a matcher that comes back
    is not handed a pile of stale copies.
*/
#ifndef MCE_TRANSFER_LINK_H
#define MCE_TRANSFER_LINK_H

#include "curve.h"
#include "proto.h"
#include "settle_store.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    TRANSFER_LINK_CREDIT = 1, //  deposit_credit
    TRANSFER_LINK_CLOSE = 2,  //  withdrawal_close, paid
    TRANSFER_LINK_REFUND = 3, //  withdrawal_close, refund
} transfer_link_what_t;

#define TRANSFER_LINK_ID_MAX (UINT64_MAX >> 2) //  ids above cannot be carried in a rid

typedef struct {
    transfer_link_what_t what;
    uint64_t id;                  //  the deposit or withdrawal
    bool ack;                     //  false: a reject
    bool duplicate;               //  ack: it had been applied before
    uint64_t seq;                 //  ack: seq of the matcher event that decided it, 0 when none
    proto_reject_reason_t reason; //  reject
    char message[PROTO_STR128_MAX + 1];
} transfer_link_reply_t;

typedef struct _transfer_link_t transfer_link_t;

//  Connects to endpoint, as a CURVE client with curve (NULL: none). NULL on error (logged).
transfer_link_t *transfer_link_new (const char *endpoint, const curve_t *curve);
void transfer_link_destroy (transfer_link_t **self_p);

//  The command `what` means for t (deposit_credit for a deposit, withdrawal_close for a
//  withdrawal), sent without waiting. 0, or -1 when it could not go now (no matcher connected,
//  or its queue full): the caller tries again later.
int transfer_link_send (transfer_link_t *self, transfer_link_what_t what, const transfer_t *t);
//  The socket, for zmq_poll.
void *transfer_link_socket (transfer_link_t *self);
//  One answer: 1 with *reply, 0 when none is waiting. Answers that do not decode or name no
//  command of ours are dropped and logged.
int transfer_link_recv (transfer_link_t *self, transfer_link_reply_t *reply);

#endif
