-- API gateway: routes per namespace (the document holds the per-route options), per-client
-- quota counters that survive restarts, and per-namespace overrides of the throttles.
CREATE TABLE api_routes (
    namespace TEXT NOT NULL,
    base_path TEXT NOT NULL,
    rel_path TEXT NOT NULL,
    verb TEXT NOT NULL,
    doc TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (namespace, base_path, rel_path, verb)
);
-- One row per (route, client, period); rows whose period ended are pruned.
CREATE TABLE api_quota_usage (
    namespace TEXT NOT NULL,
    route_id TEXT NOT NULL,
    client TEXT NOT NULL,
    period TEXT NOT NULL,
    used BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (namespace, route_id, client, period)
);
CREATE INDEX api_quota_usage_expires ON api_quota_usage (expires);
-- NULL keeps the platform default for that throttle.
CREATE TABLE namespace_limits (
    namespace TEXT PRIMARY KEY,
    invocations_per_minute BIGINT,
    concurrent_invocations BIGINT,
    fires_per_minute BIGINT,
    updated BIGINT NOT NULL
);
