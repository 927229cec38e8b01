-- trades.fee was never filled: the matcher's trade events carry no fee (a trade is what the
-- two orders agreed), and the fee is decided by the settler from the market's fee_ppm when it
-- records the settlement. It is settlements.fee; a column that always said 0 misled whoever
-- read it.
ALTER TABLE trades DROP COLUMN fee;
