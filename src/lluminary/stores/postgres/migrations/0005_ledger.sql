-- The cost ledger: one row per request, written by the Cost operator and read by
-- Budget and `lluminary costs` (lluminary.ledger.PostgresLedger). cost_usd is NULL
-- when the model has no known price, which reports count apart instead of adding 0.
CREATE TABLE IF NOT EXISTS lluminary_ledger (
    request_id text PRIMARY KEY,
    ts timestamptz NOT NULL,
    tenant text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_read_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_write_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    reasoning_tokens bigint NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
    cost_usd double precision CHECK (cost_usd >= 0),
    estimated boolean NOT NULL DEFAULT false,
    status text NOT NULL,
    latency_ms double precision NOT NULL DEFAULT 0
);
-- Budgets ask "what has this tenant spent since T"; reports scan a time range.
CREATE INDEX IF NOT EXISTS lluminary_ledger_tenant_ts ON lluminary_ledger (tenant, ts);
CREATE INDEX IF NOT EXISTS lluminary_ledger_ts ON lluminary_ledger (ts);
