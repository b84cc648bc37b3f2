-- The event log: every event of a request, in order, as the events codec wrote it
-- (JSON bytes kept exactly, so a replay re-emits the same bytes).
CREATE TABLE IF NOT EXISTS lluminary_events (
    request_id text NOT NULL,
    seq integer NOT NULL CHECK (seq >= 0),
    ts timestamptz NOT NULL,
    event bytea NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX IF NOT EXISTS lluminary_events_ts ON lluminary_events (ts);
