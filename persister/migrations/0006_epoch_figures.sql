-- What an epoch's cleared event says beyond its volume and trades: the value of its trades
-- (µ), from which its volume-weighted average price follows (in continuous mode the epoch's
-- price: it has no clearing price), and in auction mode the participants' demand and supply
-- (Wh) at the gate closure's clearing price. NULL where the event did not say.
ALTER TABLE epochs ADD COLUMN value bigint;
ALTER TABLE epochs ADD COLUMN demand bigint;
ALTER TABLE epochs ADD COLUMN supply bigint;
ALTER TABLE epochs ADD COLUMN average_price bigint
    GENERATED ALWAYS AS (CASE WHEN volume > 0 AND value IS NOT NULL
                              THEN floor (value::numeric * 1000 / volume)::bigint END) STORED;
