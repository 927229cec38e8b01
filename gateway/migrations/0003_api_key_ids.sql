-- API keys can be listed, revoked and made to expire: each gets an id to name it by (the
-- hash is never shown), and an optional expiry after which it signs nothing in.
ALTER TABLE api_keys ADD COLUMN id bigserial;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_id_key UNIQUE (id);
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
