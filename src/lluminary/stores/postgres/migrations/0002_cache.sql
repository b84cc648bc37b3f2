-- The cache: opaque bytes by key. Expired rows are misses at once and are deleted
-- lazily (on read) and in periodic sweeps, which the partial index keeps cheap.
CREATE TABLE IF NOT EXISTS lluminary_cache (
    key text PRIMARY KEY,
    value bytea NOT NULL,
    expires_at timestamptz
);
CREATE INDEX IF NOT EXISTS lluminary_cache_expires_at
    ON lluminary_cache (expires_at) WHERE expires_at IS NOT NULL;
