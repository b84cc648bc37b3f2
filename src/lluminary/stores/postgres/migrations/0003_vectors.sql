-- Vector indexes. Each index name gets its own table, created on first use with a
-- fixed dimension (an HNSW index needs one): lluminary_vectors_<name>(namespace,
-- key, embedding vector(dim), payload, expires_at). This registry records each
-- name's dimension so a mismatched client is refused instead of failing per row.
CREATE TABLE IF NOT EXISTS lluminary_vector_indexes (
    name text PRIMARY KEY,
    dim integer NOT NULL CHECK (dim > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
