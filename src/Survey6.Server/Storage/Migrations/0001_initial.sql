-- Join tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    labels_json   TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    expires_at    TEXT,              -- NULL: never expires
    max_uses      INTEGER NOT NULL,
    used          INTEGER NOT NULL DEFAULT 0,
    revoked_at    TEXT
);

CREATE TABLE probes (
    id             TEXT PRIMARY KEY,  -- also the CN of its certificates
    state          TEXT NOT NULL,     -- pending, healthy, degraded, suspended, offline, inactive, revoked
    hostname       TEXT NOT NULL,
    facts_json     TEXT NOT NULL,
    labels_json    TEXT NOT NULL,
    token_id       TEXT NOT NULL,
    joined_at      TEXT NOT NULL,
    joined_from    TEXT NOT NULL,
    cert_serial    TEXT NOT NULL,     -- the newest certificate
    cert_not_after TEXT NOT NULL,
    left_at        TEXT,
    leave_reason   TEXT
);

-- Every certificate ever issued to a probe; a client certificate is accepted only if listed here and not revoked.
CREATE TABLE certificates (
    serial     TEXT PRIMARY KEY,      -- uppercase hex, as X509Certificate2.SerialNumber
    probe_id   TEXT NOT NULL REFERENCES probes(id),
    issued_at  TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX certificates_probe ON certificates(probe_id);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    probe_id TEXT,
    remote   TEXT,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_probe ON events(probe_id, at);

-- Small server facts other commands read, e.g. the URL probes should join.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
