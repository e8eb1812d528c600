-- Nothing acknowledged is lost (issue 17).
-- An activation is journalled here (its request sealed) before it is acknowledged, and the row
-- is deleted in the same transaction that inserts its terminal record in ``activations``.
CREATE TABLE activations_pending (
    activation_id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    accepted_ms BIGINT NOT NULL,
    blocking INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    doc TEXT NOT NULL
);
-- Audit entries committed with the change they record; the audit writer moves them into the
-- hash chains (``audit_log``) in order, deleting them in the same transaction.
CREATE TABLE audit_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain TEXT NOT NULL,
    at BIGINT NOT NULL,
    entry TEXT NOT NULL,
    mac TEXT NOT NULL
);
-- Accepted requests per namespace, kind ("invoke", "fire") and second: the sliding-window
-- throttle's state, so that a restart does not reset the limits.
CREATE TABLE rate_windows (
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    second BIGINT NOT NULL,
    accepted INTEGER NOT NULL,
    PRIMARY KEY (namespace, kind, second)
);
