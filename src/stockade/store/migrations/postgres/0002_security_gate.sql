-- Deploy gate: OSV advisories indexed by (ecosystem, normalised package name), scan reports per
-- action version, and per-namespace scan policies. Same tables as the SQLite migration; sorted
-- columns compare bytewise (COLLATE "C") as in 0001.
CREATE TABLE advisories (
    id TEXT COLLATE "C" PRIMARY KEY,
    modified TEXT NOT NULL,
    digest TEXT NOT NULL,
    imported BIGINT NOT NULL,
    doc TEXT NOT NULL
);
-- One row per package an advisory affects; names are normalised by the caller (PEP 503 for PyPI).
CREATE TABLE advisory_packages (
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    advisory_id TEXT COLLATE "C" NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
    PRIMARY KEY (ecosystem, name, advisory_id)
);
CREATE INDEX advisory_packages_by_advisory ON advisory_packages (advisory_id);
CREATE TABLE scan_reports (
    namespace TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    version TEXT NOT NULL,
    created BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (namespace, name, version)
);
CREATE TABLE scan_policies (
    namespace TEXT COLLATE "C" PRIMARY KEY,
    updated BIGINT NOT NULL,
    doc TEXT NOT NULL
);
