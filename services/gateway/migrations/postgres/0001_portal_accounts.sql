-- Portal accounts, sessions and their audit trail. Forward-only: a change
-- is a new numbered file. Times are milliseconds since the Unix epoch (UTC),
-- so the same queries run unchanged on Postgres and SQLite.
-- Postgres twin of migrations/sqlite: keep the two in step.

CREATE TABLE portal_users (
    username TEXT PRIMARY KEY,
    -- Argon2id, PHC string format.
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- NULL while the account may log in.
    disabled_at BIGINT
);

CREATE TABLE portal_sessions (
    -- sha256 of the cookie's value: a copy of this table opens no session.
    id_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES portal_users (username),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_user ON portal_sessions (username);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);

CREATE TABLE portal_audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    -- Who acted ('' before a login succeeds).
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    -- The account concerned.
    target TEXT NOT NULL,
    -- The client's address.
    address TEXT NOT NULL,
    detail TEXT NOT NULL
);
-- Failed logins are counted per account and per address over a window.
CREATE INDEX portal_audit_target ON portal_audit (action, target, at);
CREATE INDEX portal_audit_address ON portal_audit (action, address, at);
