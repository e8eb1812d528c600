-- Issue 13. Action integrity stamps live in the entity documents (no table). Advisory sync state
-- per ecosystem: when it was last synced, from where, how many advisories the export held, and
-- the HTTP validators (ETag / Last-Modified) that make the next download incremental.
CREATE TABLE advisory_sync (
    ecosystem TEXT PRIMARY KEY,
    synced BIGINT NOT NULL,
    source TEXT NOT NULL,
    etag TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    advisories INTEGER NOT NULL
);
