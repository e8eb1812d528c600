-- Monitoring: security events, alerts, alert rules and webhooks per namespace, dead-lettered
-- webhook deliveries, and the tags of activations (for ?tag= filters). Webhook secrets are
-- stored sealed under the namespace data key; event details never hold secrets.
CREATE TABLE security_events (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    type TEXT NOT NULL,
    severity INTEGER NOT NULL,
    at BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX security_events_by_time ON security_events (namespace, at DESC);
CREATE INDEX security_events_by_type ON security_events (namespace, type, at DESC);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    severity INTEGER NOT NULL,
    at BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX alerts_by_time ON alerts (namespace, at DESC);
CREATE TABLE alert_rules (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    updated BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    url TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    min_severity INTEGER NOT NULL,
    created BIGINT NOT NULL,
    subject TEXT NOT NULL
);
CREATE INDEX webhooks_by_namespace ON webhooks (namespace);
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    at BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX dead_letters_by_time ON dead_letters (namespace, at DESC);
CREATE TABLE activation_tags (
    namespace TEXT NOT NULL,
    tag TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    activation_id TEXT NOT NULL,
    PRIMARY KEY (namespace, tag, activation_id)
);
CREATE INDEX activation_tags_by_start ON activation_tags (namespace, tag, start_ms DESC);
