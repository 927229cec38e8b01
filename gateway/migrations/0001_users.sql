-- Users of the gateway and their API keys. Passwords and keys are stored only as hashes.
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    username text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    wallet text NOT NULL,
    role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_hash text PRIMARY KEY,
    username text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    label text,
    created_at timestamptz DEFAULT now(),
    last_used_at timestamptz
);

CREATE INDEX api_keys_username_idx ON api_keys (username);
