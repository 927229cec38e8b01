-- Wallets are proven (DESIGN §9): registering or changing a wallet needs the wallet's
-- signature of a message the gateway issued. The challenges live here rather than in one
-- gateway's memory, so a nonce issued by any gateway behind a load balancer is good on every
-- other one, and good once: consuming it is one UPDATE ... WHERE used_at IS NULL.
-- gateway/wallet_proof.c issues, finds and consumes them, and bounds how many there are.
CREATE TABLE wallet_challenges (
    nonce text PRIMARY KEY,
    wallet text NOT NULL,
    username text NOT NULL,
    message text NOT NULL, -- exactly the text the wallet signs (UTF-8, here ASCII)
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz -- NULL until a registration or a change of wallet consumed it
);

CREATE INDEX wallet_challenges_pair_idx ON wallet_challenges (wallet, username, issued_at);
CREATE INDEX wallet_challenges_expires_idx ON wallet_challenges (expires_at);

-- A wallet belongs to one user: the platform is the approved delegate of its token accounts,
-- so a second user naming it would spend the first one's tokens. (On a database where two
-- users already share a wallet this fails, naming the wallet; one of them must change it
-- first.)
ALTER TABLE users ADD CONSTRAINT users_wallet_key UNIQUE (wallet);
