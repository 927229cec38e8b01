-- Accounts (docs/clearing.md): each user's balances and their history from the matcher's balance
-- events, and deposits and withdrawals from the matcher's withdrawal events (stream m) and the
-- settler's transfer records (stream s). Amounts are in the asset's unit, as bigint: Wh for
-- energy, µ for payment. No CHECK on amounts or on the cause: the matcher decides them, and a
-- row of the journal's projection must never be refused (a refused batch stops the persister).

-- The latest balance of each user and asset: a batch upserts each (user, asset) it changed once,
-- from the last of its balance events in the batch.
CREATE TABLE balances (
    username text NOT NULL,
    asset text NOT NULL CHECK (asset IN ('energy', 'payment')),
    available bigint NOT NULL,          -- free to order or withdraw
    reserved bigint NOT NULL,           -- held by open orders
    updated_seq bigint NOT NULL,        -- matcher seq of the balance event it comes from
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (username, asset)
);

-- Every change of a balance: one row per balance event.
CREATE TABLE balance_movements (
    seq bigint PRIMARY KEY,             -- the balance event's matcher seq
    username text NOT NULL,
    asset text NOT NULL CHECK (asset IN ('energy', 'payment')),
    cause text NOT NULL,                -- order, trade, release, deposit, withdrawal, refund
    ref bigint,                         -- the order, trade, deposit or withdrawal behind it
    market text,                        -- of the order or trade; NULL for deposits, withdrawals
    d_available bigint NOT NULL,        -- the change
    d_reserved bigint NOT NULL,
    available bigint NOT NULL,          -- the balance after it
    reserved bigint NOT NULL,
    ts timestamptz NOT NULL
);

CREATE INDEX balance_movements_username_idx ON balance_movements (username, seq DESC);

-- Deposits (wallet → vault), from the settler's transfer records of kind deposit: the latest
-- state, the user, asset, amount and wallet from the record that creates it, the newest
-- signature. pending → processing → confirmed → credited (final: the matcher credited it), or
-- failed (final: nothing credited); a retry goes back to pending with the error that caused it.
CREATE TABLE deposits (
    deposit_id bigint PRIMARY KEY,      -- assigned by the settler
    username text NOT NULL,
    asset text NOT NULL CHECK (asset IN ('energy', 'payment')),
    amount bigint NOT NULL,
    wallet text,
    state text NOT NULL CHECK (state IN ('pending', 'processing', 'confirmed', 'credited',
                                         'failed')),
    signature text,                     -- of the newest transaction sent
    attempts bigint NOT NULL DEFAULT 0, -- transactions sent so far
    error text,                         -- why it failed, or why the last attempt did
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    seq bigint NOT NULL                 -- settler seq of its latest record
);

CREATE INDEX deposits_username_idx ON deposits (username, deposit_id DESC);
CREATE INDEX deposits_open_idx ON deposits (state, deposit_id)
    WHERE state NOT IN ('credited', 'failed');

-- Withdrawals (vault → wallet). Two streams write a row, each in its own order, and either may
-- create it: the matcher's withdrawal events (requested: the debit; paid or refunded: final)
-- and the settler's transfer records of kind withdrawal. state, for the user:
--   requested   debited; the settler has not taken it up yet
--   pending     the settler will send it (again after a failed attempt: error says why)
--   processing  a transaction is on its way (signature)
--   confirmed   on chain; the matcher has yet to record it paid
--   failed      refused for good; the matcher has yet to credit it back (error says why)
--   paid        final: the matcher recorded it paid (or the settler says so: closed)
--   refunded    final: the matcher credited it back (or the settler says so)
-- A final state never changes, and the matcher's requested never overwrites the settler's
-- state, so both streams applied in any interleaving end in the same row. mseq and sseq make
-- each stream's writes apply once and in order.
CREATE TABLE withdrawals (
    withdrawal_id bigint PRIMARY KEY,   -- assigned by the matcher
    username text NOT NULL,
    asset text NOT NULL CHECK (asset IN ('energy', 'payment')),
    amount bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('requested', 'pending', 'processing', 'confirmed',
                                         'failed', 'paid', 'refunded')),
    signature text,                     -- of the newest transaction sent
    attempts bigint NOT NULL DEFAULT 0, -- transactions sent so far
    error text,                         -- why it failed, or why the last attempt did
    created_at timestamptz NOT NULL,    -- the earliest record of it (normally the debit)
    updated_at timestamptz NOT NULL,    -- the latest record of it, from either stream
    mseq bigint,                        -- matcher seq of its latest event; NULL: none yet
    sseq bigint                         -- settler seq of its latest record; NULL: none yet
);

CREATE INDEX withdrawals_username_idx ON withdrawals (username, withdrawal_id DESC);
CREATE INDEX withdrawals_open_idx ON withdrawals (state, withdrawal_id)
    WHERE state NOT IN ('paid', 'refunded');
