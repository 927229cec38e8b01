/*  test_settle_store — the settler's state is exactly what its records say: a settlement's
    life (pending → processing → confirmed | failed, and back to pending), transactions that
    hold several settlements and go away with the last of them, epochs that settle when every
    trade is confirmed, and the resume point on the matcher bus. Records the state cannot take
    are refused without harm.
*/
#include "settle_store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define SIG_A                                                                                      \
    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"
#define SIG_B                                                                                      \
    "4pWm4xfCJdJ6p4bsAbbXhQpnvqCvmDdRPPk9GG3iJCmuj95H6cQYhN8cUHZSuYmzcrQCVbUeJf1t7ZCd4rVtt9Vk"
#define HASH "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N"

static uint64_t s_seq;

static proto_msg_t s_intent (uint64_t sid, uint64_t tid, uint64_t mseq, int64_t epoch)
{
    proto_msg_t m = {.kind = PROTO_settlement};
    proto_settlement_t *r = &m.settlement;
    r->seq = ++s_seq;
    r->ts = 1000;
    snprintf (r->market, sizeof r->market, "campus-1");
    r->epoch = epoch;
    r->trade_id = tid;
    r->settlement_id = sid;
    r->state = PROTO_SETTLE_STATE_PENDING;
    snprintf (r->buyer, sizeof r->buyer, "bob");
    snprintf (r->seller, sizeof r->seller, "alice");
    r->qty = 1500;
    r->price = 150000;
    r->value = 225000;
    r->fee = 563;
    r->mseq = mseq;
    return m;
}

static proto_msg_t s_step (uint64_t sid, proto_settle_state_t state, const char *sig,
                           uint32_t attempts)
{
    proto_msg_t m = {.kind = PROTO_settlement};
    proto_settlement_t *r = &m.settlement;
    r->seq = ++s_seq;
    snprintf (r->market, sizeof r->market, "campus-1");
    r->epoch = 7;
    r->trade_id = 100 + sid;
    r->settlement_id = sid;
    r->state = state;
    r->attempts = attempts;
    if (sig) {
        snprintf (r->signature, sizeof r->signature, "%s", sig);
        snprintf (r->blockhash, sizeof r->blockhash, HASH);
        r->last_valid = 500;
    }
    if (state == PROTO_SETTLE_STATE_FAILED)
        snprintf (r->error, sizeof r->error, "insufficient funds");
    return m;
}

static proto_msg_t s_epoch (int64_t epoch, proto_epoch_phase_t phase, uint64_t trades,
                            uint64_t mseq)
{
    proto_msg_t m = {.kind = PROTO_epoch_state};
    m.epoch_state.seq = ++s_seq;
    snprintf (m.epoch_state.market, sizeof m.epoch_state.market, "campus-1");
    m.epoch_state.epoch = epoch;
    m.epoch_state.state = phase;
    m.epoch_state.trades = trades;
    m.epoch_state.mseq = mseq;
    return m;
}

static void s_apply (settle_store_t *st, proto_msg_t m)
{
    cr_assert_eq (settle_store_apply (st, &m), 0, "record seq %llu refused",
                  (unsigned long long) proto_msg_seq (&m));
}

Test (settle_store, a_settlement_from_intent_to_confirmation)
{
    settle_store_t *st = settle_store_new ();
    s_apply (st, s_intent (1, 101, 40, 7));
    s_apply (st, s_intent (2, 102, 41, 7));
    cr_assert_eq (settle_store_next_id (st), 3);
    cr_assert_eq (settle_store_mseq (st), 41, "resume the matcher bus after seq 41");
    cr_assert_eq (settle_store_count (st, PROTO_SETTLE_STATE_PENDING), 2);
    settlement_t *s1 = settle_store_find (st, 1);
    cr_assert_eq (s1->qty, 1500);
    cr_assert_str_eq (s1->buyer, "bob");
    cr_assert_eq (settle_store_pending (st), s1, "FIFO");
    cr_assert_eq (settle_instructions (s1), 3);

    //  both go into one transaction, in this order
    s_apply (st, s_step (1, PROTO_SETTLE_STATE_PROCESSING, SIG_A, 1));
    s_apply (st, s_step (2, PROTO_SETTLE_STATE_PROCESSING, SIG_A, 1));
    cr_assert_eq (settle_store_count (st, PROTO_SETTLE_STATE_PENDING), 0);
    cr_assert_eq (settle_store_count (st, PROTO_SETTLE_STATE_PROCESSING), 2);
    cr_assert_eq (settle_store_tx_count (st), 1);
    settle_tx_t *tx = settle_store_tx (st, SIG_A);
    cr_assert_not_null (tx);
    cr_assert_eq (tx->count, 2);
    cr_assert_eq (tx->items[0], s1);
    cr_assert_eq (tx->last_valid, 500);
    cr_assert_eq (s1->tx, tx);

    //  the epoch clears with two trades; it settles when both are confirmed
    s_apply (st, s_epoch (7, PROTO_EPOCH_PHASE_CLEARED, 2, 45));
    cr_assert_eq (settle_store_mseq (st), 45);
    cr_assert_null (settle_store_epoch_due (st));
    s_apply (st, s_step (1, PROTO_SETTLE_STATE_CONFIRMED, SIG_A, 1));
    cr_assert_null (settle_store_find (st, 1), "confirmed settlements are forgotten");
    cr_assert_not_null (settle_store_tx (st, SIG_A), "one of its settlements is still in it");
    cr_assert_null (settle_store_epoch_due (st));
    s_apply (st, s_step (2, PROTO_SETTLE_STATE_CONFIRMED, SIG_A, 1));
    cr_assert_null (settle_store_tx (st, SIG_A), "a resolved transaction goes away");
    cr_assert_eq (settle_store_tx_count (st), 0);
    settle_epoch_t *e = settle_store_epoch_due (st);
    cr_assert_not_null (e);
    cr_assert_eq (e->epoch, 7);
    cr_assert_eq (e->confirmed, 2);
    s_apply (st, s_epoch (7, PROTO_EPOCH_PHASE_SETTLED, 2, 0));
    cr_assert_null (settle_store_epoch_due (st));
    cr_assert_eq (settle_store_epoch_count (st), 0);
    settle_store_destroy (&st);
    cr_assert_null (st);
}

Test (settle_store, back_to_pending_failed_and_retried)
{
    settle_store_t *st = settle_store_new ();
    s_apply (st, s_intent (1, 101, 10, 7));
    s_apply (st, s_intent (2, 102, 11, 7));
    s_apply (st, s_intent (3, 103, 12, 7));
    s_apply (st, s_step (1, PROTO_SETTLE_STATE_PROCESSING, SIG_A, 1));
    s_apply (st, s_step (2, PROTO_SETTLE_STATE_PROCESSING, SIG_A, 1));
    //  the transaction failed because of settlement 2: it fails, 1 goes back to pending
    s_apply (st, s_step (2, PROTO_SETTLE_STATE_FAILED, NULL, 1));
    s_apply (st, s_step (1, PROTO_SETTLE_STATE_PENDING, NULL, 0));
    cr_assert_null (settle_store_tx (st, SIG_A));
    cr_assert_eq (settle_store_count (st, PROTO_SETTLE_STATE_FAILED), 1);
    cr_assert_str_eq (settle_store_failed (st)->error, "insufficient funds");
    //  pending in the order they came back: 3 was waiting, 1 queues behind it
    cr_assert_eq (settle_store_pending (st)->id, 3);
    cr_assert_eq (settle_store_pending (st)->next->id, 1);
    cr_assert_eq (settle_store_find (st, 1)->attempts, 0);
    //  an admin retry: failed → pending
    s_apply (st, s_step (2, PROTO_SETTLE_STATE_PENDING, NULL, 0));
    cr_assert_eq (settle_store_count (st, PROTO_SETTLE_STATE_FAILED), 0);
    cr_assert_eq (settle_store_count (st, PROTO_SETTLE_STATE_PENDING), 3);
    //  a second attempt in another transaction
    s_apply (st, s_step (1, PROTO_SETTLE_STATE_PROCESSING, SIG_B, 1));
    cr_assert_eq (settle_store_tx (st, SIG_B)->items[0]->id, 1);
    settle_store_destroy (&st);
}

Test (settle_store, refuses_records_it_cannot_take)
{
    settle_store_t *st = settle_store_new ();
    //  not an intent for an unknown settlement
    proto_msg_t m = s_step (9, PROTO_SETTLE_STATE_CONFIRMED, NULL, 1);
    cr_assert_eq (settle_store_apply (st, &m), -1);
    m = s_intent (1, 101, 10, 7);
    m.settlement.buyer[0] = '\0';
    cr_assert_eq (settle_store_apply (st, &m), -1, "an intent names its buyer");
    s_apply (st, s_intent (1, 101, 10, 7));
    //  processing without a usable blockhash
    m = s_step (1, PROTO_SETTLE_STATE_PROCESSING, SIG_A, 1);
    snprintf (m.settlement.blockhash, sizeof m.settlement.blockhash, "not base58!");
    cr_assert_eq (settle_store_apply (st, &m), -1);
    cr_assert_eq (settle_store_count (st, PROTO_SETTLE_STATE_PENDING), 1, "nothing changed");
    m.kind = PROTO_heartbeat;
    cr_assert_eq (settle_store_apply (st, &m), -1);
    settle_store_destroy (&st);
}

Test (settle_store, an_epoch_without_trades_settles_when_cleared)
{
    settle_store_t *st = settle_store_new ();
    s_apply (st, s_epoch (3, PROTO_EPOCH_PHASE_CLEARED, 0, 5));
    settle_epoch_t *e = settle_store_epoch_due (st);
    cr_assert_not_null (e);
    cr_assert_eq (e->epoch, 3);
    //  an epoch whose trades are not all known yet does not settle
    s_apply (st, s_epoch (3, PROTO_EPOCH_PHASE_SETTLED, 0, 0));
    s_apply (st, s_epoch (4, PROTO_EPOCH_PHASE_CLEARED, 1, 6));
    cr_assert_null (settle_store_epoch_due (st));
    settle_store_destroy (&st);
}

//  --------------------------------------------------------------------------------------------
//  Deposits and withdrawals

static proto_msg_t s_transfer (proto_transfer_kind_t kind, uint64_t id,
                               proto_transfer_state_t state, const char *sig, uint32_t attempts)
{
    proto_msg_t m = {.kind = PROTO_transfer};
    proto_transfer_t *r = &m.transfer;
    r->seq = ++s_seq;
    r->ts = 2000;
    r->kind = kind;
    r->id = id;
    r->state = state;
    r->attempts = attempts;
    if (sig) {
        snprintf (r->signature, sizeof r->signature, "%s", sig);
        snprintf (r->blockhash, sizeof r->blockhash, HASH);
        r->last_valid = 600;
    }
    return m;
}

static proto_msg_t s_tintent (proto_transfer_kind_t kind, uint64_t id, uint64_t mseq)
{
    proto_msg_t m = s_transfer (kind, id, PROTO_TRANSFER_STATE_PENDING, NULL, 0);
    snprintf (m.transfer.user, sizeof m.transfer.user, "carol");
    m.transfer.asset = PROTO_ASSET_PAYMENT;
    m.transfer.amount = 2500000;
    if (kind == PROTO_TRANSFER_KIND_DEPOSIT)
        snprintf (m.transfer.wallet, sizeof m.transfer.wallet, "%s", HASH);
    m.transfer.mseq = mseq;
    return m;
}

#define DEP PROTO_TRANSFER_KIND_DEPOSIT
#define WDR PROTO_TRANSFER_KIND_WITHDRAWAL

Test (settle_store, a_deposit_from_intent_to_credit)
{
    settle_store_t *st = settle_store_new ();
    cr_assert_eq (settle_store_next_deposit_id (st), 1);
    s_apply (st, s_tintent (DEP, 1, 0));
    s_apply (st, s_tintent (DEP, 2, 0));
    cr_assert_eq (settle_store_next_deposit_id (st), 3, "ids are recovered from the records");
    cr_assert_eq (settle_store_transfer_count (st, DEP, PROTO_TRANSFER_STATE_PENDING), 2);
    transfer_t *d1 = settle_store_transfer (st, DEP, 1);
    cr_assert_not_null (d1);
    cr_assert_str_eq (d1->user, "carol");
    cr_assert_str_eq (d1->wallet, HASH);
    cr_assert_eq (settle_store_transfers_pending (st), d1, "FIFO");
    cr_assert_null (settle_store_transfer (st, WDR, 1), "withdrawal ids are another space");
    //  both in one transaction
    s_apply (st, s_transfer (DEP, 1, PROTO_TRANSFER_STATE_PROCESSING, SIG_A, 1));
    s_apply (st, s_transfer (DEP, 2, PROTO_TRANSFER_STATE_PROCESSING, SIG_A, 1));
    settle_tx_t *tx = settle_store_tx (st, SIG_A);
    cr_assert_not_null (tx);
    cr_assert_eq (tx->kind, SETTLE_TX_TRANSFERS);
    cr_assert_eq (tx->count, 2);
    cr_assert_eq (tx->transfers[0], d1);
    cr_assert_null (tx->items[0], "no settlement in it");
    cr_assert_eq (settle_store_transfer_count (st, DEP, PROTO_TRANSFER_STATE_PROCESSING), 2);
    //  a settlement cannot join a transaction of transfers
    s_apply (st, s_intent (1, 101, 10, 7));
    proto_msg_t m = s_step (1, PROTO_SETTLE_STATE_PROCESSING, SIG_A, 1);
    cr_assert_eq (settle_store_apply (st, &m), -1);
    //  confirmed: owed to the matcher (a credit), not yet forgotten
    s_apply (st, s_transfer (DEP, 1, PROTO_TRANSFER_STATE_CONFIRMED, NULL, 1));
    s_apply (st, s_transfer (DEP, 2, PROTO_TRANSFER_STATE_CONFIRMED, NULL, 1));
    cr_assert_null (settle_store_tx (st, SIG_A));
    cr_assert_eq (settle_store_owed (st), d1);
    cr_assert_eq (settle_store_transfer_count (st, DEP, PROTO_TRANSFER_STATE_CONFIRMED), 2);
    //  credited, with the matcher seq of the credit: final, and not a resume point
    m = s_transfer (DEP, 1, PROTO_TRANSFER_STATE_CREDITED, NULL, 1);
    m.transfer.mseq = 9999;
    s_apply (st, m);
    cr_assert_null (settle_store_transfer (st, DEP, 1), "a credited deposit is forgotten");
    cr_assert_eq (settle_store_mseq (st), 10, "the credit's seq does not move the resume point");
    //  a second credit of it is refused (the server never writes one)
    m = s_transfer (DEP, 2, PROTO_TRANSFER_STATE_CLOSED, NULL, 1);
    cr_assert_eq (settle_store_apply (st, &m), -1, "a deposit is credited, not closed");
    s_apply (st, s_transfer (DEP, 2, PROTO_TRANSFER_STATE_CREDITED, NULL, 1));
    cr_assert_null (settle_store_owed (st));
    cr_assert_eq (settle_store_transfer_count (st, DEP, PROTO_TRANSFER_STATE_CONFIRMED), 0);
    //  a deposit refused by the chain: failed is final, nothing owed
    s_apply (st, s_tintent (DEP, 3, 0));
    s_apply (st, s_transfer (DEP, 3, PROTO_TRANSFER_STATE_PROCESSING, SIG_B, 1));
    s_apply (st, s_transfer (DEP, 3, PROTO_TRANSFER_STATE_FAILED, NULL, 1));
    cr_assert_null (settle_store_transfer (st, DEP, 3));
    cr_assert_null (settle_store_owed (st));
    cr_assert_eq (settle_store_next_deposit_id (st), 4);
    settle_store_destroy (&st);
}

Test (settle_store, withdrawals_closed_or_refunded_never_both)
{
    settle_store_t *st = settle_store_new ();
    s_apply (st, s_tintent (WDR, 70, 500));
    s_apply (st, s_tintent (WDR, 71, 501));
    cr_assert_eq (settle_store_mseq (st), 501, "a withdrawal's intent is a resume point");
    transfer_t *w70 = settle_store_transfer (st, WDR, 70);
    cr_assert_str_eq (w70->wallet, "", "known once its first transaction is signed");
    //  the processing record names the wallet
    proto_msg_t m = s_transfer (WDR, 70, PROTO_TRANSFER_STATE_PROCESSING, SIG_A, 1);
    snprintf (m.transfer.wallet, sizeof m.transfer.wallet, "%s", HASH);
    s_apply (st, m);
    cr_assert_str_eq (w70->wallet, HASH);
    //  expired: pending again, then paid in another transaction
    s_apply (st, s_transfer (WDR, 70, PROTO_TRANSFER_STATE_PENDING, NULL, 1));
    cr_assert_null (settle_store_tx (st, SIG_A));
    cr_assert_eq (settle_store_transfers_pending (st)->id, 71, "back in the queue behind 71");
    s_apply (st, s_transfer (WDR, 70, PROTO_TRANSFER_STATE_PROCESSING, SIG_B, 2));
    s_apply (st, s_transfer (WDR, 70, PROTO_TRANSFER_STATE_CONFIRMED, NULL, 2));
    cr_assert_eq (settle_store_owed (st), w70);
    m = s_transfer (WDR, 70, PROTO_TRANSFER_STATE_REFUNDED, NULL, 2);
    cr_assert_eq (settle_store_apply (st, &m), -1, "a paid withdrawal is never refunded");
    s_apply (st, s_transfer (WDR, 70, PROTO_TRANSFER_STATE_CLOSED, NULL, 2));
    cr_assert_null (settle_store_transfer (st, WDR, 70));
    //  71 fails for good: owed a refund
    s_apply (st, s_transfer (WDR, 71, PROTO_TRANSFER_STATE_FAILED, NULL, 0));
    transfer_t *w71 = settle_store_transfer (st, WDR, 71);
    cr_assert_eq (settle_store_owed (st), w71);
    cr_assert_eq (settle_store_transfer_count (st, WDR, PROTO_TRANSFER_STATE_FAILED), 1);
    m = s_transfer (WDR, 71, PROTO_TRANSFER_STATE_CLOSED, NULL, 0);
    cr_assert_eq (settle_store_apply (st, &m), -1, "a failed withdrawal is never closed as paid");
    s_apply (st, s_transfer (WDR, 71, PROTO_TRANSFER_STATE_REFUNDED, NULL, 0));
    cr_assert_null (settle_store_owed (st));
    cr_assert_eq (settle_store_transfer_count (st, WDR, PROTO_TRANSFER_STATE_FAILED), 0);
    //  a second refund of a forgotten withdrawal is not an intent: refused
    m = s_transfer (WDR, 71, PROTO_TRANSFER_STATE_REFUNDED, NULL, 0);
    cr_assert_eq (settle_store_apply (st, &m), -1);
    //  intents without what they need
    m = s_tintent (WDR, 72, 502);
    m.transfer.amount = 0;
    cr_assert_eq (settle_store_apply (st, &m), -1);
    m = s_tintent (WDR, 72, 502);
    m.transfer.asset = PROTO_ASSET_NONE;
    cr_assert_eq (settle_store_apply (st, &m), -1);
    cr_assert_eq (settle_store_mseq (st), 501, "refused intents move nothing");
    settle_store_destroy (&st);
}
