/*  settler_admin — the settler's admin port (settler.commands, a ROUTER): settler_command in,
    one multipart answer out (proto/messages.def).

      list      the settlements not confirmed in one state, by id, paged
      retry     a failed settlement goes back to pending with a new retry budget
      deposit   a user's tokens are to move into the vault: validated, the owner's wallet
                looked up, a deposit id assigned and its intent journaled (a transfer record,
                pending) — and only once that is durable is the answer sent: the transfer
                frame, then settler_reply {ok, id}. The settler then moves the tokens and has
                the matcher credit them (settler_server.c).

    Deposits that arrive together are journaled together: their answers wait for the one
    commit at the end of the turn, then all go out. DEALER clients send [body], REQ clients
    [empty][body]; the envelope is kept to answer either.
*/
#include "settler_internal.h"
#include "base58.h"
#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_HELD_MAX 256 //  deposit answers waiting for the turn's commit, at most

//  A settlement as the admin sees it (and as the bus shows it).
static void s_view (const settlement_t *s, proto_msg_t *msg)
{
    settler_settlement_msg (s, s->state, msg);
    proto_settlement_t *r = &msg->settlement;
    r->seq = s->seq;
    r->ts = s->ts;
    snprintf (r->buyer, sizeof r->buyer, "%s", s->buyer);
    snprintf (r->seller, sizeof r->seller, "%s", s->seller);
    r->qty = s->qty;
    r->price = s->price;
    r->mseq = s->mseq;
    snprintf (r->error, sizeof r->error, "%s", s->error);
    if (s->tx) {
        snprintf (r->signature, sizeof r->signature, "%s", s->tx->signature);
        base58_encode (s->tx->blockhash, SOL_HASH_BYTES, r->blockhash, sizeof r->blockhash);
        r->last_valid = s->tx->last_valid;
    }
}

static int s_cmp_id (const void *a, const void *b)
{
    uint64_t x = (*(settlement_t *const *) a)->id, y = (*(settlement_t *const *) b)->id;
    return x < y ? -1 : x > y;
}

static void s_add_frame (settler_server_t *self, zmsg_t *answer, const proto_msg_t *msg)
{
    proto_buf_reset (&self->buf);
    if (proto_encode (msg, &self->buf) == 0)
        zmsg_addmem (answer, self->buf.data, self->buf.len);
    else
        zmsg_addmem (answer, "", 0);
}

//  Appends the settler_reply that ends every answer.
static void s_end (settler_server_t *self, zmsg_t *answer, proto_settler_status_t status,
                   uint32_t count, bool more, const char *message, uint64_t rid, uint64_t id)
{
    proto_msg_t reply = {.kind = PROTO_settler_reply};
    reply.settler_reply.rid = rid;
    reply.settler_reply.status = status;
    reply.settler_reply.count = count;
    reply.settler_reply.more = more;
    reply.settler_reply.id = id;
    snprintf (reply.settler_reply.message, sizeof reply.settler_reply.message, "%.*s",
              PROTO_STR128_MAX, message ? message : "");
    s_add_frame (self, answer, &reply);
}

static void s_settlements (settler_server_t *self, zmsg_t *answer, proto_settler_status_t status,
                           settlement_t **list, size_t count, bool more, const char *message,
                           uint64_t rid)
{
    for (size_t i = 0; i < count; i++) {
        proto_msg_t view;
        s_view (list[i], &view);
        s_add_frame (self, answer, &view);
    }
    s_end (self, answer, status, (uint32_t) count, more, message, rid, 0);
}

static int s_list (settler_server_t *self, zmsg_t *answer, const proto_settler_command_t *c)
{
    proto_settle_state_t state = c->state ? c->state : PROTO_SETTLE_STATE_FAILED;
    size_t total = settle_store_count (self->store, state);
    settlement_t **all = malloc ((total ? total : 1) * sizeof *all);
    if (!all) {
        s_end (self, answer, PROTO_SETTLER_STATUS_MALFORMED, 0, false, "out of memory", c->rid, 0);
        return 0;
    }
    size_t n = 0;
    if (state == PROTO_SETTLE_STATE_PROCESSING) {
        for (settle_tx_t *tx = settle_store_in_flight (self->store); tx; tx = tx->next)
            for (size_t i = 0; i < tx->count && n < total; i++)
                if (tx->items[i] && tx->items[i]->id > c->after)
                    all[n++] = tx->items[i];
    }
    else {
        settlement_t *s = state == PROTO_SETTLE_STATE_PENDING  ? settle_store_pending (self->store)
                          : state == PROTO_SETTLE_STATE_FAILED ? settle_store_failed (self->store)
                                                               : NULL;
        for (; s && n < total; s = s->next)
            if (s->id > c->after)
                all[n++] = s;
    }
    qsort (all, n, sizeof *all, s_cmp_id);
    size_t limit = c->limit ? c->limit : SETTLER_LIST_DEFAULT;
    if (limit > SETTLER_LIST_MAX)
        limit = SETTLER_LIST_MAX;
    const char *note = state == PROTO_SETTLE_STATE_CONFIRMED
                           ? "confirmed settlements are not kept by the settler (see Postgres)"
                           : NULL;
    s_settlements (self, answer, PROTO_SETTLER_STATUS_OK, all, n < limit ? n : limit, n > limit,
                   note, c->rid);
    free (all);
    return 0;
}

//  The vaults' balances as the settler last read them (every few seconds, for its metrics),
//  with when: a reconciliation holds them against what the tables owe. Read only, like a
//  list, so a monitor's key may ask.
static void s_vaults (settler_server_t *self, zmsg_t *answer, const proto_settler_command_t *c)
{
    proto_msg_t reply = {.kind = PROTO_settler_reply};
    proto_settler_reply_t *r = &reply.settler_reply;
    r->rid = c->rid;
    r->status = PROTO_SETTLER_STATUS_OK;
    r->vault_energy = atomic_load (&self->m.vault[0]);
    r->vault_payment = atomic_load (&self->m.vault[1]);
    r->vaults_at = atomic_load (&self->m.vaults_at);
    s_add_frame (self, answer, &reply);
}

static int s_retry (settler_server_t *self, zmsg_t *answer, const proto_settler_command_t *c)
{
    settlement_t *s = settle_store_find (self->store, c->settlement_id);
    if (!s) {
        s_settlements (self, answer, PROTO_SETTLER_STATUS_NOT_FOUND, NULL, 0, false,
                       "no such settlement pending, processing or failed", c->rid);
        return 0;
    }
    if (s->state != PROTO_SETTLE_STATE_FAILED) {
        s_settlements (self, answer, PROTO_SETTLER_STATUS_NOT_FAILED, &s, 1, false,
                       "only a failed settlement can be retried", c->rid);
        return 0;
    }
    char why[PROTO_STR128_MAX + 1];
    snprintf (why, sizeof why, "retry by %.40s after: %.70s", c->user[0] ? c->user : "admin",
              s->error);
    log_info ("settler", "settlement %" PRIu64 " (trade %" PRIu64 "): retry requested by %s", s->id,
              s->trade_id, c->user[0] ? c->user : "admin");
    if (settler_repend (self, s, 0, why, 0) || settler_commit (self))
        return -1;
    s_settlements (self, answer, PROTO_SETTLER_STATUS_OK, &s, 1, false, NULL, c->rid);
    return 0;
}

//  A deposit's intent. 1 when it was journaled (the answer waits for the commit), 0 when the
//  answer is complete (refused), -1 on a fatal error.
static int s_deposit (settler_server_t *self, zmsg_t *answer, const proto_settler_command_t *c)
{
    const char *refusal = !c->owner[0] ? "deposit: owner missing"
                          : c->asset != PROTO_ASSET_ENERGY && c->asset != PROTO_ASSET_PAYMENT
                              ? "deposit: asset missing (energy or payment)"
                          : c->amount <= 0 ? "deposit: amount missing, zero or negative"
                                           : NULL;
    if (refusal) {
        s_end (self, answer, PROTO_SETTLER_STATUS_MALFORMED, 0, false, refusal, c->rid, 0);
        return 0;
    }
    if (!self->have_keys) {
        s_end (self, answer, PROTO_SETTLER_STATUS_UNAVAILABLE, 0, false,
               "the settler has no keys (settler.keys_file)", c->rid, 0);
        return 0;
    }
    //  Each deposit costs a transaction whether or not the wallet can pay: a user (with no
    //  tokens, or with no approval) holds at most this many in flight.
    if (settle_store_open_deposits (self->store, c->owner) >=
        (size_t) self->cfg->settler.max_open_deposits_per_user) {
        char why[PROTO_STR128_MAX + 1];
        snprintf (why, sizeof why, "%lld deposits are open already: wait for one to finish",
                  (long long) self->cfg->settler.max_open_deposits_per_user);
        s_end (self, answer, PROTO_SETTLER_STATUS_TOO_MANY, 0, false, why, c->rid, 0);
        return 0;
    }
    const wallet_t *w;
    char why[160];
    //  the wallet the user has now: a deposit never draws on one they moved away from
    int rc = settler_wallet (self, c->owner, true, &w, why, sizeof why);
    if (rc != 1) {
        log_info ("settler", "deposit for %s refused: %s", c->owner, why);
        s_end (self, answer,
               rc == 0 ? PROTO_SETTLER_STATUS_NO_WALLET : PROTO_SETTLER_STATUS_UNAVAILABLE, 0,
               false, why, c->rid, 0);
        return 0;
    }
    uint64_t id = settle_store_next_deposit_id (self->store);
    proto_msg_t msg = {.kind = PROTO_transfer};
    proto_transfer_t *r = &msg.transfer;
    r->kind = PROTO_TRANSFER_KIND_DEPOSIT;
    r->id = id;
    r->state = PROTO_TRANSFER_STATE_PENDING;
    snprintf (r->user, sizeof r->user, "%s", c->owner);
    r->asset = c->asset;
    r->amount = c->amount;
    snprintf (r->wallet, sizeof r->wallet, "%s", w->wallet.text);
    if (settler_record (self, &msg))
        return -1;
    transfer_t *t = settle_store_transfer (self->store, PROTO_TRANSFER_KIND_DEPOSIT, id);
    if (t) //  the account, while the wallet is at hand
        t->account = c->asset == PROTO_ASSET_ENERGY ? w->energy : w->payment;
    atomic_fetch_add (&self->m.transfer_events[0][SETTLER_TEVENT_CREATED], 1);
    log_debug ("settler", "deposit %" PRIu64 ": %" PRId64 " %s from %s (wallet %s), asked by %s",
               id, c->amount, c->asset == PROTO_ASSET_ENERGY ? "Wh" : "µ", c->owner, w->wallet.text,
               c->user[0] ? c->user : "?");
    s_add_frame (self, answer, &msg); //  the record as journaled, seq and all
    s_end (self, answer, PROTO_SETTLER_STATUS_OK, 1, false, NULL, c->rid, id);
    return 1;
}

//  Reads one command: its envelope goes into a new answer. NULL when none is waiting.
static zmsg_t *s_read (void *sock, zmq_msg_t *body)
{
    zmq_msg_t id, frame;
    zmq_msg_init (&id);
    if (zmq_msg_recv (&id, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&id);
        return NULL;
    }
    bool delimiter = false;
    int frames = 0;
    while (zmq_msg_more (frames ? body : &id)) {
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, 0) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        if (frames == 0 && zmq_msg_size (&frame) == 0 && zmq_msg_more (&frame))
            delimiter = true;
        zmq_msg_close (body);
        zmq_msg_init (body);
        zmq_msg_move (body, &frame);
        zmq_msg_close (&frame);
        frames++;
    }
    zmsg_t *answer = zmsg_new ();
    zmsg_addmem (answer, zmq_msg_data (&id), zmq_msg_size (&id));
    if (delimiter)
        zmsg_addmem (answer, "", 0);
    zmq_msg_close (&id);
    return answer;
}

//  Commits the turn's deposits, then sends their answers. 0 or -1 (the journal).
static int s_release (settler_server_t *self, zmsg_t **held, size_t *count)
{
    int rc = settler_commit (self);
    for (size_t i = 0; i < *count; i++) {
        if (rc == 0)
            zmsg_send (&held[i], self->admin);
        zmsg_destroy (&held[i]);
    }
    *count = 0;
    return rc;
}

int settler_admin_serve (settler_server_t *self)
{
    void *sock = zsock_resolve (self->admin);
    zmsg_t *held[S_HELD_MAX];
    size_t nheld = 0;
    for (;;) {
        zmq_msg_t body;
        zmq_msg_init (&body);
        zmsg_t *answer = s_read (sock, &body);
        if (!answer) {
            zmq_msg_close (&body);
            break;
        }
        proto_msg_t msg;
        char err[160];
        int rc = 0;
        if (proto_decode_kind (PROTO_settler_command, zmq_msg_data (&body), zmq_msg_size (&body),
                               &msg, err, sizeof err)) {
            log_warn ("settler", "admin: malformed command dropped: %s", err);
            s_end (self, answer, PROTO_SETTLER_STATUS_MALFORMED, 0, false, err, 0, 0);
        }
        else if (msg.settler_command.action == PROTO_SETTLER_ACTION_LIST)
            rc = s_list (self, answer, &msg.settler_command);
        else if (msg.settler_command.action == PROTO_SETTLER_ACTION_VAULTS)
            s_vaults (self, answer, &msg.settler_command);
        else if (!curve_from_process (self->curve, &body)) {
            log_warn ("settler", "admin: %s refused: sent with a monitor's key",
                      proto_settler_action_name (msg.settler_command.action));
            s_end (self, answer, PROTO_SETTLER_STATUS_FORBIDDEN, 0, false,
                   "a monitor's key may list settlements, not change them", 0, 0);
        }
        else if (msg.settler_command.action == PROTO_SETTLER_ACTION_DEPOSIT)
            rc = s_deposit (self, answer, &msg.settler_command);
        else
            rc = s_retry (self, answer, &msg.settler_command);
        zmq_msg_close (&body);
        if (rc < 0) {
            zmsg_destroy (&answer);
            s_release (self, held, &nheld); //  nothing is answered that is not durable
            return -1;
        }
        if (rc == 1)
            held[nheld++] = answer;
        else
            zmsg_send (&answer, self->admin);
        if (nheld == S_HELD_MAX && s_release (self, held, &nheld))
            return -1;
    }
    return nheld ? s_release (self, held, &nheld) : 0;
}
