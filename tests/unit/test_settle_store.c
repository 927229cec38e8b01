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
