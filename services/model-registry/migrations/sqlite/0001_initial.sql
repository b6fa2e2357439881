-- Registry schema. Forward-only: a change is a new numbered file.
-- Times are microseconds since the Unix epoch (UTC); flags are 0/1 BIGINTs,
-- so the same queries run unchanged on Postgres and SQLite.
-- SQLite twin of migrations/postgres: keep the two in step.

CREATE TABLE registered_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    archived BIGINT NOT NULL DEFAULT 0,
    -- Last version number handed out; bumped under the row lock, so
    -- concurrent creates get distinct consecutive numbers.
    last_version BIGINT NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX registered_models_updated ON registered_models (updated_at);

CREATE TABLE model_tags (
    model_id BIGINT NOT NULL REFERENCES registered_models (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE INDEX model_tags_key_value ON model_tags (key, value);

CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    params_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    dataset_json TEXT,
    created_by TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);

CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id BIGINT NOT NULL REFERENCES registered_models (id),
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    format TEXT NOT NULL,
    signature_json TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    -- A referenced run cannot be deleted (RESTRICT is the default).
    run_id TEXT REFERENCES runs (run_id),
    dataset_json TEXT,
    artifact_path TEXT,
    artifact_filename TEXT,
    artifact_size BIGINT,
    artifact_sha256 TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (model_id, version)
);
CREATE INDEX model_versions_status ON model_versions (status, model_id);
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE INDEX model_versions_created ON model_versions (created_at);

CREATE TABLE version_metrics (
    version_id BIGINT NOT NULL REFERENCES model_versions (id),
    key TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (version_id, key)
);
CREATE INDEX version_metrics_key_value ON version_metrics (key, value, version_id);

CREATE TABLE version_params (
    version_id BIGINT NOT NULL REFERENCES model_versions (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
);
CREATE INDEX version_params_key_value ON version_params (key, value, version_id);

CREATE TABLE version_tags (
    version_id BIGINT NOT NULL REFERENCES model_versions (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
);
CREATE INDEX version_tags_key_value ON version_tags (key, value, version_id);

CREATE TABLE aliases (
    model_id BIGINT NOT NULL REFERENCES registered_models (id),
    alias TEXT NOT NULL,
    version_id BIGINT NOT NULL REFERENCES model_versions (id),
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    PRIMARY KEY (model_id, alias)
);
CREATE INDEX aliases_version ON aliases (version_id);
CREATE INDEX aliases_alias ON aliases (alias, version_id);

-- Every alias change; version 0 records a deletion.
CREATE TABLE alias_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id BIGINT NOT NULL REFERENCES registered_models (id),
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
CREATE INDEX alias_history_lookup ON alias_history (model_id, alias, set_at, id);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    model_name TEXT NOT NULL,
    target TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL
);
CREATE INDEX audit_events_model ON audit_events (model_name, id);

-- Transactional outbox: rows are written in the same transaction as the
-- change they announce and published to Kafka afterwards.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
