-- What the control stream knows about each probe: the last heartbeat (server clock), rates derived
-- from it, and what the operator asked for. One row per probe that reported or was given a command.
CREATE TABLE probe_status (
    probe_id                TEXT PRIMARY KEY REFERENCES probes(id),
    first_heartbeat_at      TEXT,              -- NULL: never reported (pending)
    last_heartbeat_at       TEXT,              -- server clock, never the probe's
    heartbeat_interval_ms   INTEGER,           -- as the probe reported it
    reported_state          TEXT,              -- capturing, suspended, uploading, degraded
    reported_reason         TEXT NOT NULL DEFAULT '',
    clock_skew_ms           INTEGER,           -- probe clock minus server clock; NULL if not reported
    round_trip_ms           INTEGER,
    packets_per_second      REAL NOT NULL DEFAULT 0,
    drop_ratio              REAL NOT NULL DEFAULT 0,   -- dropped / (received + dropped) since the previous heartbeat
    upload_bytes_per_second REAL NOT NULL DEFAULT 0,
    heartbeat_json          TEXT,              -- the last heartbeat, protobuf JSON
    operator_suspended      INTEGER NOT NULL DEFAULT 0,
    policy_json             TEXT,              -- the last policy sent with update-policy; NULL: the initial one
    state_since             TEXT               -- when probes.state last changed
);

-- Per-minute rollups of heartbeats (server clock), kept Server:Health:HistoryRetention.
CREATE TABLE probe_minutes (
    probe_id                TEXT NOT NULL REFERENCES probes(id),
    minute                  TEXT NOT NULL,     -- start of the minute
    heartbeats              INTEGER NOT NULL,
    received                INTEGER NOT NULL,  -- counter increases within the minute
    kernel_dropped          INTEGER NOT NULL,
    interface_dropped       INTEGER NOT NULL,
    queue_dropped           INTEGER NOT NULL,
    uploaded_files          INTEGER NOT NULL,
    uploaded_bytes          INTEGER NOT NULL,
    upload_failures         INTEGER NOT NULL,
    spool_files_max         INTEGER NOT NULL,
    spool_bytes_max         INTEGER NOT NULL,
    spool_oldest_ms_max     INTEGER NOT NULL,
    free_disk_min           INTEGER NOT NULL,
    cpu_percent_sum         REAL NOT NULL,     -- divide by heartbeats for the mean
    rss_max                 INTEGER NOT NULL,
    rx_bytes_per_second_max INTEGER NOT NULL,  -- all interfaces together
    tx_bytes_per_second_max INTEGER NOT NULL,
    utilisation_max         REAL,              -- busiest interface, 0..1; NULL: link speed unknown
    clock_skew_ms_max_abs   INTEGER,
    reported_state          TEXT NOT NULL,     -- the last one in the minute
    PRIMARY KEY (probe_id, minute)
);
CREATE INDEX probe_minutes_minute ON probe_minutes(minute);

-- Operator commands. A command without a result is sent again whenever the probe connects; the
-- probe recognises an id it has executed and answers again without executing it twice.
CREATE TABLE commands (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,      -- c- and 12 base32 characters; echoed in CommandResult
    probe_id       TEXT NOT NULL REFERENCES probes(id),
    kind           TEXT NOT NULL,             -- suspend, resume, upload-now, update-policy
    payload_json   TEXT NOT NULL DEFAULT '',  -- update-policy: the whole Policy, protobuf JSON
    issued_at      TEXT NOT NULL,
    issued_by      TEXT NOT NULL DEFAULT '',
    delivered_at   TEXT,                      -- first written to the probe's stream
    result_at      TEXT,
    result_ok      INTEGER,                   -- NULL until the probe answers
    result_message TEXT
);
CREATE INDEX commands_probe ON commands(probe_id, seq);
CREATE INDEX commands_unanswered ON commands(probe_id, seq) WHERE result_at IS NULL;
