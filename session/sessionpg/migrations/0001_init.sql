-- session: server-side sessions, refresh-token hashes, emergency grants.
-- Applied by sessionpg.Migrate with search_path set to the configured
-- schema; teams with their own migration tool can apply it as it is.

-- One row per session (refresh-token family). Session ids are random and
-- unique across tenants; app_id is carried for sharding and queries.
-- TODO: a distributed Postgres sharded by app_id needs app_id in these
-- primary keys and the foreign key; lookups by session id or token hash
-- alone would then need the tenant from the caller.
CREATE TABLE session_sessions (
    id                 text        PRIMARY KEY,
    app_id             text        NOT NULL,
    user_id            text        NOT NULL,
    amr                text[]      NOT NULL,
    created_at         timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz,
    revoke_reason      text        NOT NULL DEFAULT '',
    emergency_grant_id text        NOT NULL DEFAULT ''
);

-- RevokeUser: a user's live sessions.
CREATE INDEX session_sessions_user ON session_sessions (app_id, user_id) WHERE revoked_at IS NULL;
-- Purge.
CREATE INDEX session_sessions_expires ON session_sessions (expires_at);

-- Refresh tokens, only as SHA-256 hashes. A used token is kept (used_at
-- set) until its session is purged, so a replay is recognised.
CREATE TABLE session_refresh_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    app_id     text        NOT NULL,
    session_id text        NOT NULL REFERENCES session_sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX session_refresh_tokens_session ON session_refresh_tokens (session_id);

-- Break-glass grants, kept after their session is purged, for review.
CREATE TABLE session_emergency_grants (
    app_id     text        NOT NULL,
    id         text        NOT NULL,
    user_id    text        NOT NULL,
    granted_by text        NOT NULL DEFAULT '',
    reason     text        NOT NULL CHECK (reason <> ''),
    session_id text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, id)
);

CREATE INDEX session_emergency_grants_created ON session_emergency_grants (app_id, created_at);
