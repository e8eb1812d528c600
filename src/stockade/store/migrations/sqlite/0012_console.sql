-- The web console: sessions (keyed by the SHA-256 of the cookie's token; the token itself is
-- never stored) and alert acknowledgments (the first acknowledgment of an alert stands).
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    subject TEXT NOT NULL,
    key_uuid TEXT NOT NULL,
    kind TEXT NOT NULL,
    doc TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires);
CREATE INDEX console_sessions_by_key ON console_sessions (key_uuid);
CREATE TABLE alert_acks (
    namespace TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    at BIGINT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (namespace, alert_id)
);
