-- Envelope encryption: per-namespace data keys, wrapped by a master key (by id), and the
-- secrets store with versions and an access log. No plaintext key or value is stored.
CREATE TABLE data_keys (
    namespace TEXT NOT NULL,
    key_id TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
    created BIGINT NOT NULL,
    PRIMARY KEY (namespace, key_id)
);
CREATE INDEX data_keys_by_master ON data_keys (master_key_id);
CREATE TABLE secrets (
    namespace TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    sealed TEXT NOT NULL,
    created BIGINT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (namespace, name, version)
);
CREATE TABLE secret_access (
    id BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    accessor TEXT NOT NULL,
    activation_id TEXT NOT NULL,
    accessed BIGINT NOT NULL
);
CREATE INDEX secret_access_by_secret ON secret_access (namespace, name, accessed DESC);
