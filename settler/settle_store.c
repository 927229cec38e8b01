/*  settle_store — see settle_store.h. Settlements are found by id through a zhashx keyed on
    the id itself (a u64 inside the settlement: no key copies), transfers likewise (one table
    per kind), transactions by signature, epochs by "market/epoch". The pending and failed
    lists, the transfers' pending and owed lists and the in-flight list are intrusive
    doubly-linked lists, so every move is O(1).
*/
#include "settle_store.h"
#include "base58.h"
#include "log.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    settlement_t *head, *tail;
    size_t count;
} s_list_t;

typedef struct {
    transfer_t *head, *tail;
} s_tlist_t;

#define S_KINDS  3 //  proto_transfer_kind_t, 0 unused
#define S_STATES 8 //  proto_transfer_state_t, 0 unused

struct _settle_store_t {
    zhashx_t *by_id;              //  &settlement->id -> settlement (owned)
    zhashx_t *by_sig;             //  signature -> settle_tx_t (owned)
    zhashx_t *epochs;             //  "market/epoch" -> settle_epoch_t (owned)
    zhashx_t *transfers[S_KINDS]; //  &transfer->id -> transfer (owned), per kind
    s_list_t pending, failed;
    s_tlist_t tpending, owed;
    size_t tcount[S_KINDS][S_STATES];
    settle_tx_t *tx_head, *tx_tail;
    size_t tx_count, processing;
    uint64_t next_id;
    uint64_t next_deposit_id;
    uint64_t mseq;
};

static size_t s_hash_u64 (const void *key)
{
    uint64_t k = *(const uint64_t *) key;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t) k;
}

static int s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void s_free (void **item)
{
    free (*item);
    *item = NULL;
}

settle_store_t *settle_store_new (void)
{
    settle_store_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->by_id = zhashx_new ();
    self->by_sig = zhashx_new ();
    self->epochs = zhashx_new ();
    self->transfers[PROTO_TRANSFER_KIND_DEPOSIT] = zhashx_new ();
    self->transfers[PROTO_TRANSFER_KIND_WITHDRAWAL] = zhashx_new ();
    if (!self->by_id || !self->by_sig || !self->epochs ||
        !self->transfers[PROTO_TRANSFER_KIND_DEPOSIT] ||
        !self->transfers[PROTO_TRANSFER_KIND_WITHDRAWAL]) {
        settle_store_destroy (&self);
        return NULL;
    }
    zhashx_t *by_u64[3] = {self->by_id, self->transfers[PROTO_TRANSFER_KIND_DEPOSIT],
                           self->transfers[PROTO_TRANSFER_KIND_WITHDRAWAL]};
    for (int i = 0; i < 3; i++) {
        zhashx_set_key_hasher (by_u64[i], s_hash_u64);
        zhashx_set_key_comparator (by_u64[i], s_cmp_u64);
        zhashx_set_key_duplicator (by_u64[i], NULL);
        zhashx_set_key_destructor (by_u64[i], NULL);
        zhashx_set_destructor (by_u64[i], s_free);
    }
    zhashx_set_destructor (self->by_sig, s_free);
    zhashx_set_destructor (self->epochs, s_free);
    self->next_id = 1;
    self->next_deposit_id = 1;
    return self;
}

void settle_store_destroy (settle_store_t **self_p)
{
    settle_store_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->by_id);
    zhashx_destroy (&self->by_sig);
    zhashx_destroy (&self->epochs);
    for (int k = 0; k < S_KINDS; k++)
        zhashx_destroy (&self->transfers[k]);
    free (self);
    *self_p = NULL;
}

static void s_list_append (s_list_t *l, settlement_t *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->count++;
}

static void s_list_remove (s_list_t *l, settlement_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->count--;
}

static void s_tx_free (settle_store_t *self, settle_tx_t *tx)
{
    if (tx->prev)
        tx->prev->next = tx->next;
    else
        self->tx_head = tx->next;
    if (tx->next)
        tx->next->prev = tx->prev;
    else
        self->tx_tail = tx->prev;
    self->tx_count--;
    zhashx_delete (self->by_sig, tx->signature); //  frees tx
}

//  Takes s out of whatever holds it now (a list or a transaction).
static void s_detach (settle_store_t *self, settlement_t *s)
{
    if (s->state == PROTO_SETTLE_STATE_PENDING)
        s_list_remove (&self->pending, s);
    else if (s->state == PROTO_SETTLE_STATE_FAILED)
        s_list_remove (&self->failed, s);
    else if (s->state == PROTO_SETTLE_STATE_PROCESSING && s->tx) {
        settle_tx_t *tx = s->tx;
        for (size_t i = 0; i < tx->count; i++)
            if (tx->items[i] == s)
                tx->items[i] = NULL;
        s->tx = NULL;
        self->processing--;
        if (--tx->live == 0)
            s_tx_free (self, tx);
    }
    s->state = PROTO_SETTLE_STATE_NONE;
}

static void s_epoch_key (char *key, size_t size, const char *market, int64_t epoch)
{
    snprintf (key, size, "%s/%" PRId64, market, epoch);
}

settle_epoch_t *settle_store_epoch (settle_store_t *self, const char *market, int64_t epoch)
{
    char key[64];
    s_epoch_key (key, sizeof key, market, epoch);
    return zhashx_lookup (self->epochs, key);
}

static settle_epoch_t *s_epoch (settle_store_t *self, const char *market, int64_t epoch)
{
    settle_epoch_t *e = settle_store_epoch (self, market, epoch);
    if (e)
        return e;
    e = calloc (1, sizeof *e);
    if (!e)
        return NULL;
    snprintf (e->market, sizeof e->market, "%s", market);
    e->epoch = epoch;
    char key[64];
    s_epoch_key (key, sizeof key, market, epoch);
    zhashx_insert (self->epochs, key, e);
    return e;
}

//  The transaction a processing record names (made when new), NULL when the record is bad or
//  names a transaction of the other kind.
static settle_tx_t *s_tx (settle_store_t *self, const char *signature, const char *blockhash,
                          uint64_t last_valid, settle_tx_kind_t kind)
{
    settle_tx_t *tx = zhashx_lookup (self->by_sig, signature);
    if (tx)
        return tx->kind == kind ? tx : NULL;
    uint8_t hash[BASE58_TEXT_MAX];
    if (base58_decode (blockhash, strlen (blockhash), hash, sizeof hash) != SOL_HASH_BYTES)
        return NULL;
    size_t len = strlen (signature);
    if (len == 0 || len >= sizeof tx->signature)
        return NULL;
    tx = calloc (1, sizeof *tx);
    if (!tx)
        return NULL;
    memcpy (tx->signature, signature, len + 1);
    memcpy (tx->blockhash, hash, SOL_HASH_BYTES);
    tx->last_valid = last_valid;
    tx->kind = kind;
    tx->prev = self->tx_tail;
    if (self->tx_tail)
        self->tx_tail->next = tx;
    else
        self->tx_head = tx;
    self->tx_tail = tx;
    self->tx_count++;
    zhashx_insert (self->by_sig, tx->signature, tx);
    return tx;
}

static int s_create (settle_store_t *self, const proto_settlement_t *r)
{
    if (r->state != PROTO_SETTLE_STATE_PENDING || !r->buyer[0] || !r->seller[0] || r->qty <= 0) {
        log_error ("settler",
                   "journal: settlement %" PRIu64 " (seq %" PRIu64
                   ") is not known and the record is not its intent: ignored",
                   r->settlement_id, r->seq);
        return -1;
    }
    settlement_t *s = calloc (1, sizeof *s);
    settle_epoch_t *e = s_epoch (self, r->market, r->epoch);
    if (!s || !e) {
        free (s);
        return -1;
    }
    s->id = r->settlement_id;
    s->trade_id = r->trade_id;
    s->mseq = r->mseq;
    s->seq = r->seq;
    s->ts = s->created = r->ts;
    snprintf (s->market, sizeof s->market, "%s", r->market);
    s->epoch = r->epoch;
    snprintf (s->buyer, sizeof s->buyer, "%s", r->buyer);
    snprintf (s->seller, sizeof s->seller, "%s", r->seller);
    s->qty = r->qty;
    s->price = r->price;
    s->value = r->value;
    s->fee = r->fee;
    s->escrow = r->escrow;
    s->grid = (uint8_t) r->grid;
    s->attempts = r->attempts;
    snprintf (s->error, sizeof s->error, "%s", r->error);
    s->state = PROTO_SETTLE_STATE_PENDING;
    zhashx_insert (self->by_id, &s->id, s);
    s_list_append (&self->pending, s);
    e->trades++;
    if (s->id >= self->next_id)
        self->next_id = s->id + 1;
    if (s->mseq > self->mseq)
        self->mseq = s->mseq;
    return 0;
}

static int s_apply_settlement (settle_store_t *self, const proto_settlement_t *r)
{
    settlement_t *s = zhashx_lookup (self->by_id, &r->settlement_id);
    if (!s)
        return s_create (self, r);
    if (r->mseq > self->mseq)
        self->mseq = r->mseq;
    settle_tx_t *tx = NULL;
    if (r->state == PROTO_SETTLE_STATE_PROCESSING) {
        //  find its transaction first: a record that names none changes nothing
        tx = s_tx (self, r->signature, r->blockhash, r->last_valid, SETTLE_TX_SETTLEMENTS);
        if (!tx || tx->count >= SETTLE_TX_ITEMS_MAX) {
            log_error ("settler", "journal: settlement %" PRIu64 " processing in %s: bad record",
                       r->settlement_id, r->signature);
            return -1;
        }
    }
    s_detach (self, s);
    s->seq = r->seq;
    s->ts = r->ts;
    s->attempts = r->attempts;
    switch (r->state) {
        case PROTO_SETTLE_STATE_PENDING:
            s->state = PROTO_SETTLE_STATE_PENDING;
            snprintf (s->error, sizeof s->error, "%s", r->error);
            s->retry_at = 0;
            s_list_append (&self->pending, s);
            break;
        case PROTO_SETTLE_STATE_PROCESSING:
            s->state = PROTO_SETTLE_STATE_PROCESSING;
            s->tx = tx;
            tx->items[tx->count++] = s;
            tx->live++;
            self->processing++;
            break;
        case PROTO_SETTLE_STATE_CONFIRMED: {
            settle_epoch_t *e = s_epoch (self, s->market, s->epoch);
            if (e)
                e->confirmed++;
            zhashx_delete (self->by_id, &s->id); //  frees s
            break;
        }
        case PROTO_SETTLE_STATE_FAILED:
            s->state = PROTO_SETTLE_STATE_FAILED;
            snprintf (s->error, sizeof s->error, "%s", r->error);
            s_list_append (&self->failed, s);
            break;
        default:
            //  a state this build does not know: keep it pending rather than lose it
            s->state = PROTO_SETTLE_STATE_PENDING;
            s_list_append (&self->pending, s);
            return -1;
    }
    return 0;
}

static int s_apply_epoch (settle_store_t *self, const proto_epoch_state_t *r)
{
    if (r->mseq > self->mseq)
        self->mseq = r->mseq;
    if (r->state == PROTO_EPOCH_PHASE_SETTLED) {
        char key[64];
        s_epoch_key (key, sizeof key, r->market, r->epoch);
        zhashx_delete (self->epochs, key);
        return 0;
    }
    if (r->state != PROTO_EPOCH_PHASE_CLEARED)
        return -1;
    settle_epoch_t *e = s_epoch (self, r->market, r->epoch);
    if (!e)
        return -1;
    e->cleared = true;
    e->expected = r->trades;
    e->start = r->start;
    e->end = r->end;
    e->volume = r->volume;
    e->clearing_price = r->clearing_price;
    e->mseq = r->mseq;
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Transfers

static void s_tlist_append (s_tlist_t *l, transfer_t *t)
{
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
}

static void s_tlist_remove (s_tlist_t *l, transfer_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->prev = t->next = NULL;
}

//  Whether a withdrawal's or a deposit's state keeps it in the owed list.
static bool s_owed (const transfer_t *t)
{
    return t->state == PROTO_TRANSFER_STATE_CONFIRMED ||
           (t->state == PROTO_TRANSFER_STATE_FAILED && t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL);
}

//  Takes t out of whatever holds it now (a list or a transaction).
static void s_tdetach (settle_store_t *self, transfer_t *t)
{
    if (t->state == PROTO_TRANSFER_STATE_PENDING)
        s_tlist_remove (&self->tpending, t);
    else if (s_owed (t))
        s_tlist_remove (&self->owed, t);
    else if (t->state == PROTO_TRANSFER_STATE_PROCESSING && t->tx) {
        settle_tx_t *tx = t->tx;
        for (size_t i = 0; i < tx->count; i++)
            if (tx->transfers[i] == t)
                tx->transfers[i] = NULL;
        t->tx = NULL;
        if (--tx->live == 0)
            s_tx_free (self, tx);
    }
    if (t->state < S_STATES)
        self->tcount[t->kind][t->state]--;
    t->state = PROTO_TRANSFER_STATE_NONE;
}

static void s_tstate (settle_store_t *self, transfer_t *t, proto_transfer_state_t state)
{
    t->state = state;
    self->tcount[t->kind][state]++;
}

static int s_tcreate (settle_store_t *self, const proto_transfer_t *r)
{
    if (r->state != PROTO_TRANSFER_STATE_PENDING || !r->user[0] || r->amount <= 0 ||
        (r->asset != PROTO_ASSET_ENERGY && r->asset != PROTO_ASSET_PAYMENT)) {
        log_error ("settler",
                   "journal: %s %" PRIu64 " (seq %" PRIu64
                   ") is not known and the record is not its intent: ignored",
                   proto_transfer_kind_name (r->kind), r->id, r->seq);
        return -1;
    }
    transfer_t *t = calloc (1, sizeof *t);
    if (!t)
        return -1;
    t->kind = r->kind;
    t->id = r->id;
    t->mseq = r->mseq;
    t->seq = r->seq;
    t->ts = t->created = r->ts;
    snprintf (t->user, sizeof t->user, "%s", r->user);
    t->asset = r->asset;
    t->amount = r->amount;
    snprintf (t->wallet, sizeof t->wallet, "%s", r->wallet);
    t->attempts = r->attempts;
    snprintf (t->error, sizeof t->error, "%s", r->error);
    zhashx_insert (self->transfers[t->kind], &t->id, t);
    s_tstate (self, t, PROTO_TRANSFER_STATE_PENDING);
    s_tlist_append (&self->tpending, t);
    if (t->kind == PROTO_TRANSFER_KIND_DEPOSIT && t->id >= self->next_deposit_id)
        self->next_deposit_id = t->id + 1;
    if (t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL && t->mseq > self->mseq)
        self->mseq = t->mseq;
    return 0;
}

//  What a final record needs: credited a confirmed deposit, closed a confirmed withdrawal,
//  refunded a failed withdrawal.
static bool s_final_fits (const transfer_t *t, proto_transfer_state_t state)
{
    switch (state) {
        case PROTO_TRANSFER_STATE_CREDITED:
            return t->kind == PROTO_TRANSFER_KIND_DEPOSIT &&
                   t->state == PROTO_TRANSFER_STATE_CONFIRMED;
        case PROTO_TRANSFER_STATE_CLOSED:
            return t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL &&
                   t->state == PROTO_TRANSFER_STATE_CONFIRMED;
        case PROTO_TRANSFER_STATE_REFUNDED:
            return t->kind == PROTO_TRANSFER_KIND_WITHDRAWAL &&
                   t->state == PROTO_TRANSFER_STATE_FAILED;
        default:
            return false;
    }
}

static int s_apply_transfer (settle_store_t *self, const proto_transfer_t *r)
{
    if (r->kind != PROTO_TRANSFER_KIND_DEPOSIT && r->kind != PROTO_TRANSFER_KIND_WITHDRAWAL)
        return -1;
    transfer_t *t = zhashx_lookup (self->transfers[r->kind], &r->id);
    if (!t)
        return s_tcreate (self, r);
    settle_tx_t *tx = NULL;
    proto_transfer_state_t state = r->state;
    if (state == PROTO_TRANSFER_STATE_PROCESSING) {
        tx = s_tx (self, r->signature, r->blockhash, r->last_valid, SETTLE_TX_TRANSFERS);
        if (!tx || tx->count >= SETTLE_TX_ITEMS_MAX) {
            log_error ("settler", "journal: %s %" PRIu64 " processing in %s: bad record",
                       proto_transfer_kind_name (r->kind), r->id, r->signature);
            return -1;
        }
    }
    else if ((state == PROTO_TRANSFER_STATE_CREDITED || state == PROTO_TRANSFER_STATE_CLOSED ||
              state == PROTO_TRANSFER_STATE_REFUNDED) &&
             !s_final_fits (t, state)) {
        log_error ("settler", "journal: %s %" PRIu64 " %s while %s: ignored",
                   proto_transfer_kind_name (r->kind), r->id, proto_transfer_state_name (state),
                   proto_transfer_state_name (t->state));
        return -1;
    }
    else if (state == PROTO_TRANSFER_STATE_NONE || state >= S_STATES)
        return -1;
    s_tdetach (self, t);
    t->seq = r->seq;
    t->ts = r->ts;
    t->attempts = r->attempts;
    if (r->wallet[0])
        snprintf (t->wallet, sizeof t->wallet, "%s", r->wallet);
    switch (state) {
        case PROTO_TRANSFER_STATE_PENDING:
            snprintf (t->error, sizeof t->error, "%s", r->error);
            t->retry_at = 0;
            s_tstate (self, t, state);
            s_tlist_append (&self->tpending, t);
            break;
        case PROTO_TRANSFER_STATE_PROCESSING:
            s_tstate (self, t, state);
            t->tx = tx;
            tx->transfers[tx->count++] = t;
            tx->live++;
            break;
        case PROTO_TRANSFER_STATE_CONFIRMED:
        case PROTO_TRANSFER_STATE_FAILED:
            if (state == PROTO_TRANSFER_STATE_CONFIRMED)
                snprintf (t->signature, sizeof t->signature, "%.88s", r->signature);
            else
                snprintf (t->error, sizeof t->error, "%s", r->error);
            s_tstate (self, t, state);
            if (s_owed (t)) {
                t->notify_at = 0;
                t->notices = t->refusals = 0;
                s_tlist_append (&self->owed, t);
            }
            else {
                self->tcount[t->kind][state]--;
                zhashx_delete (self->transfers[t->kind], &t->id); //  a failed deposit: final
            }
            break;
        default:                                              //  credited, closed, refunded: final
            zhashx_delete (self->transfers[t->kind], &t->id); //  frees t
            break;
    }
    return 0;
}

int settle_store_apply (settle_store_t *self, const proto_msg_t *record)
{
    if (record->kind == PROTO_settlement)
        return s_apply_settlement (self, &record->settlement);
    if (record->kind == PROTO_epoch_state)
        return s_apply_epoch (self, &record->epoch_state);
    if (record->kind == PROTO_transfer)
        return s_apply_transfer (self, &record->transfer);
    return -1;
}

transfer_t *settle_store_transfer (settle_store_t *self, proto_transfer_kind_t kind, uint64_t id)
{
    if (kind != PROTO_TRANSFER_KIND_DEPOSIT && kind != PROTO_TRANSFER_KIND_WITHDRAWAL)
        return NULL;
    return zhashx_lookup (self->transfers[kind], &id);
}

transfer_t *settle_store_transfers_pending (settle_store_t *self)
{
    return self->tpending.head;
}

transfer_t *settle_store_owed (settle_store_t *self)
{
    return self->owed.head;
}

size_t settle_store_transfer_count (settle_store_t *self, proto_transfer_kind_t kind,
                                    proto_transfer_state_t state)
{
    if (kind <= 0 || kind >= S_KINDS || state <= 0 || state >= S_STATES)
        return 0;
    return self->tcount[kind][state];
}

uint64_t settle_store_next_deposit_id (settle_store_t *self)
{
    return self->next_deposit_id;
}

settlement_t *settle_store_find (settle_store_t *self, uint64_t id)
{
    return zhashx_lookup (self->by_id, &id);
}

settle_tx_t *settle_store_tx (settle_store_t *self, const char *signature)
{
    return zhashx_lookup (self->by_sig, signature);
}

settlement_t *settle_store_pending (settle_store_t *self)
{
    return self->pending.head;
}

settlement_t *settle_store_failed (settle_store_t *self)
{
    return self->failed.head;
}

settle_tx_t *settle_store_in_flight (settle_store_t *self)
{
    return self->tx_head;
}

size_t settle_store_count (settle_store_t *self, proto_settle_state_t state)
{
    switch (state) {
        case PROTO_SETTLE_STATE_PENDING:
            return self->pending.count;
        case PROTO_SETTLE_STATE_PROCESSING:
            return self->processing;
        case PROTO_SETTLE_STATE_FAILED:
            return self->failed.count;
        default:
            return 0;
    }
}

size_t settle_store_tx_count (settle_store_t *self)
{
    return self->tx_count;
}

uint64_t settle_store_next_id (settle_store_t *self)
{
    return self->next_id;
}

uint64_t settle_store_mseq (settle_store_t *self)
{
    return self->mseq;
}

settle_epoch_t *settle_store_epoch_due (settle_store_t *self)
{
    for (settle_epoch_t *e = zhashx_first (self->epochs); e; e = zhashx_next (self->epochs))
        if (e->cleared && e->confirmed >= e->expected && e->confirmed >= e->trades)
            return e;
    return NULL;
}

size_t settle_store_epoch_count (settle_store_t *self)
{
    return zhashx_size (self->epochs);
}

size_t settle_instructions (const settlement_t *s)
{
    return 1 + (s->value - s->fee > 0) + (s->fee > 0);
}

size_t settle_store_open_deposits (settle_store_t *self, const char *user)
{
    //  a scan: deposits are few beside settlements, and this runs once per deposit request
    size_t n = 0;
    zhashx_t *deposits = self->transfers[PROTO_TRANSFER_KIND_DEPOSIT];
    for (transfer_t *t = zhashx_first (deposits); t; t = zhashx_next (deposits))
        n += t->state != PROTO_TRANSFER_STATE_FAILED && strcmp (t->user, user) == 0;
    return n;
}
