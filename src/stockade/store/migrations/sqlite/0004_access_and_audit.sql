-- Identity and access: role bindings per namespace, namespace policies, an HMAC key per API
-- key (sealed), a revocation epoch every process watches, and per-namespace audit chains.
CREATE TABLE role_bindings (
    namespace TEXT NOT NULL,
    subject TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'developer', 'deployer', 'invoker', 'viewer', 'auditor')),
    granted_by TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (namespace, subject)
);
-- Keys issued before roles existed belong to their namespace's owners.
INSERT INTO role_bindings (namespace, subject, role, granted_by, created)
    SELECT DISTINCT namespace, subject, 'owner', 'migration', 0 FROM api_keys;
CREATE TABLE namespace_policies (
    namespace TEXT PRIMARY KEY,
    protected INTEGER NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL
);
ALTER TABLE api_keys ADD COLUMN hmac_sealed TEXT;
CREATE TABLE security_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO security_epoch (id, epoch) VALUES (1, 0);
-- One hash chain per namespace ("" for platform-wide events): each entry's mac covers the
-- previous mac, so altered, removed or reordered entries are detected by verification.
CREATE TABLE audit_log (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    entry TEXT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
