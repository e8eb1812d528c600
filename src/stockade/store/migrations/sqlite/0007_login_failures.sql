-- Failed logins per scope ("source:<address>" or "pair:<subject> <address>") in a fixed window,
-- and until when the scope is locked out: shared by every process, kept across restarts.
CREATE TABLE login_failures (
    scope TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
CREATE INDEX login_failures_locked ON login_failures (locked_until);
