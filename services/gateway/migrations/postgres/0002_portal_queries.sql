-- The SQL console's history: every query a user ran, with its outcome.
-- SQLite twin in migrations/sqlite: keep the two in step.

CREATE TABLE portal_queries (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL REFERENCES portal_users (username),
    at BIGINT NOT NULL,
    sql TEXT NOT NULL,
    -- Rows returned; NULL when the query failed.
    row_count BIGINT,
    elapsed_ms BIGINT NOT NULL,
    -- Why it failed; '' when it succeeded.
    error TEXT NOT NULL
);
CREATE INDEX portal_queries_user ON portal_queries (username, id);
