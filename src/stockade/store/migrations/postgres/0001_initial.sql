-- Initial schema. Entities of all four collections share one key space per namespace.
-- Same tables as the SQLite migration. Columns that lists sort by compare bytewise (COLLATE "C"),
-- as SQLite does, so both engines order pages alike whatever the database's locale.
CREATE TABLE namespaces (
    name TEXT COLLATE "C" PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL
);
CREATE TABLE subjects (
    name TEXT PRIMARY KEY,
    created BIGINT NOT NULL
);
-- Only the SHA-256 of a key's secret part is stored.
CREATE TABLE api_keys (
    uuid TEXT PRIMARY KEY,
    key_hash BYTEA NOT NULL,
    subject TEXT NOT NULL REFERENCES subjects(name),
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    created BIGINT NOT NULL,
    revoked BIGINT
);
CREATE TABLE entities (
    namespace TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    package TEXT NOT NULL,
    collection TEXT NOT NULL CHECK (collection IN ('actions', 'packages', 'triggers', 'rules')),
    revision INTEGER NOT NULL,
    updated BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX entities_by_collection ON entities (namespace, collection, package, updated DESC);
CREATE TABLE code_blobs (
    digest TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
CREATE TABLE action_versions (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    created BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (namespace, name, version)
);
CREATE TABLE activations (
    activation_id TEXT COLLATE "C" PRIMARY KEY,
    namespace TEXT NOT NULL,
    entity_path TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX activations_by_start ON activations (namespace, start_ms DESC);
CREATE INDEX activations_by_entity ON activations (namespace, entity_path, start_ms DESC);
