-- Bearer tokens for the operator API (/api/v1) and, optionally, /metrics. Only the SHA-256 of the
-- secret is kept. IF NOT EXISTS: the step stays harmless should it ever have to be renumbered.
CREATE TABLE IF NOT EXISTS api_tokens (
    id            TEXT PRIMARY KEY,   -- public part of the token, [a-z2-7]{8}
    name          TEXT NOT NULL DEFAULT '',
    secret_sha256 TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,               -- NULL: never expires
    revoked_at    TEXT,
    last_used_at  TEXT                -- refreshed at most once a minute
);
