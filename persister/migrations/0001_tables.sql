-- The persister's history of the matcher (and later the settler) buses: what the gateway's
-- history endpoints read. Every row is written from one bus event and carries that event's
-- seq. Quantities are Wh, prices µ/kWh and money µ (micro-units), all as bigint: never a float.
-- No foreign keys between these tables: they are a projection of the journal, and a row must
-- not be refused because an earlier one was written by another batch or is missing.

CREATE TABLE markets (
    id text PRIMARY KEY,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paused')),
    updated_at timestamptz,
    seq bigint
);

CREATE TABLE epochs (
    market text NOT NULL,
    epoch bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'active', 'cleared', 'settled')),
    start_at timestamptz NOT NULL,
    end_at timestamptz NOT NULL,
    clearing_price bigint,          -- µ/kWh; NULL until cleared in auction mode
    volume bigint,                  -- Wh traded; NULL until cleared
    trades int,                     -- number of trades; NULL until cleared
    updated_at timestamptz NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (market, epoch)
);

CREATE INDEX epochs_market_epoch_idx ON epochs (market, epoch DESC);

CREATE TABLE orders (
    order_id bigint PRIMARY KEY,
    market text NOT NULL,
    epoch bigint NOT NULL,
    username text NOT NULL,
    client_order_id text,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type text NOT NULL CHECK (order_type IN ('limit', 'market')),
    tif text NOT NULL CHECK (tif IN ('gtc', 'ioc', 'fok')),
    post_only boolean NOT NULL DEFAULT false,
    qty bigint NOT NULL CHECK (qty > 0),               -- Wh; filled + remaining
    price bigint CHECK (price > 0),                    -- µ/kWh; NULL for market orders
    filled bigint NOT NULL DEFAULT 0 CHECK (filled >= 0),
    remaining bigint NOT NULL CHECK (remaining >= 0),
    status text NOT NULL CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled',
                                           'expired', 'rejected')),
    source text,
    expires_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    seq bigint NOT NULL                                -- of the last event that changed it
);

CREATE INDEX orders_username_idx ON orders (username, order_id DESC);

-- One row per order per event; a trade gives one to each of its two orders, under one seq.
CREATE TABLE order_events (
    seq bigint NOT NULL,
    order_id bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('accepted', 'trade', 'cancelled', 'expired', 'amended')),
    qty bigint,                     -- Wh: ordered, traded, left open, or the new remaining
    price bigint,                   -- µ/kWh
    trade_id bigint,
    reason text,
    at timestamptz NOT NULL,
    PRIMARY KEY (seq, order_id)
);

CREATE INDEX order_events_order_idx ON order_events (order_id, seq);

CREATE TABLE trades (
    trade_id bigint PRIMARY KEY,
    market text NOT NULL,
    epoch bigint NOT NULL,
    buy_order_id bigint NOT NULL,
    sell_order_id bigint NOT NULL,
    buyer text NOT NULL,
    seller text NOT NULL,
    qty bigint NOT NULL CHECK (qty > 0),     -- Wh
    price bigint NOT NULL CHECK (price > 0), -- µ/kWh
    value bigint NOT NULL,                   -- µ: qty × price / 1000, paid by buyer to seller
    fee bigint NOT NULL DEFAULT 0,           -- µ
    aggressor text CHECK (aggressor IN ('buy', 'sell')), -- NULL in auctions
    seq bigint NOT NULL UNIQUE,
    at timestamptz NOT NULL
);

CREATE INDEX trades_buyer_idx ON trades (buyer, seq DESC);
CREATE INDEX trades_seller_idx ON trades (seller, seq DESC);
CREATE INDEX trades_market_epoch_idx ON trades (market, epoch);

-- Written from the settler's bus (stream s); empty until that mapping exists.
CREATE TABLE settlements (
    trade_id bigint PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('pending', 'processing', 'confirmed', 'failed')),
    signature text,
    reason text,
    updated_at timestamptz NOT NULL,
    seq bigint NOT NULL
);

-- Administrators' market_control commands, as journalled by the matcher.
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    username text NOT NULL,
    action text NOT NULL,
    market text NOT NULL,
    at timestamptz NOT NULL
);

-- The last seq of each bus stream whose effects are in these tables; written in the same
-- transaction as those effects, so each event takes effect exactly once.
CREATE TABLE consumer_offsets (
    stream text PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);
