-- The grid as backstop: a trade where the utility's grid took one side (its user is the
-- market's grid_user, and that side has no order: its order id is 0). NULL between two
-- participants.
ALTER TABLE trades ADD COLUMN grid text CHECK (grid IN ('buy', 'sell'));
