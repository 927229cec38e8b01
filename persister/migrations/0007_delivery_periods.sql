-- Delivery periods beside epoch numbers: an epoch is the interval [start_at, end_at) it
-- delivers in, and people think in those times. These views add each order's and trade's
-- delivery_start and delivery_end from its epoch (NULL where the epoch was never recorded).
CREATE VIEW orders_delivery AS
    SELECT o.*, e.start_at AS delivery_start, e.end_at AS delivery_end
    FROM orders o LEFT JOIN epochs e USING (market, epoch);

CREATE VIEW trades_delivery AS
    SELECT t.*, e.start_at AS delivery_start, e.end_at AS delivery_end
    FROM trades t LEFT JOIN epochs e USING (market, epoch);
