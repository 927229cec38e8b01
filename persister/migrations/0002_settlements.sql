-- The settler's bus (stream s) fills settlements: one row per trade with its settlement's
-- latest state, and the amounts and parties from the record that created it.
ALTER TABLE settlements
    ADD COLUMN settlement_id bigint,
    ADD COLUMN market text,
    ADD COLUMN epoch bigint,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN value bigint,
    ADD COLUMN fee bigint,
    ADD COLUMN buyer text,
    ADD COLUMN seller text;

-- What an administrator looks for: settlements not confirmed yet, by state.
CREATE INDEX settlements_open_idx ON settlements (state, trade_id) WHERE state <> 'confirmed';
CREATE INDEX settlements_epoch_idx ON settlements (market, epoch);
