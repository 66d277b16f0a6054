-- Acknowledged uploads: one row when a capture is first stored (duplicate = 0), one more for every
-- later upload of it that was acknowledged as a duplicate (duplicate = 1).
CREATE TABLE uploads (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256       TEXT NOT NULL,
    probe_id     TEXT NOT NULL,   -- from the probe's certificate
    size_bytes   INTEGER NOT NULL,
    window_start TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    duplicate    INTEGER NOT NULL DEFAULT 0,
    stored_path  TEXT NOT NULL
);
-- Recovery offers a stored capture to the sink again after a crash; this keeps its row single.
CREATE UNIQUE INDEX uploads_stored ON uploads(probe_id, sha256) WHERE duplicate = 0;
CREATE INDEX uploads_received ON uploads(received_at);
CREATE INDEX uploads_sha ON uploads(sha256);
