-- A user may register the public half of a CURVE key pair as an API key: the encrypted
-- native order port admits its holder. The key_hash column holds the hash of
-- 'curve:' || the key (so one lookup serves both kinds); the key itself is public and shown
-- in the list, so its owner can tell which pair it is.
ALTER TABLE api_keys ADD COLUMN curve_public_key text;
