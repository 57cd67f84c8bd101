-- session/mfa tables. Every table carries the tenant (app_id) first, so
-- it can be sharded by tenant.

-- One TOTP enrolment per account: pending until its first code is
-- confirmed, then active. sealed_secret is the secret as the
-- application's Sealer returned it; the plaintext is never stored.
-- last_step is the highest RFC 6238 time step accepted; it only grows.
CREATE TABLE IF NOT EXISTS mfa_totp (
    app_id         text        NOT NULL,
    account_id     text        NOT NULL,
    enrolment_id   text        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('pending', 'active')),
    sealed_secret  bytea       NOT NULL,
    algorithm      text        NOT NULL,
    digits         integer     NOT NULL,
    period_seconds integer     NOT NULL CHECK (period_seconds > 0),
    created_at     timestamptz NOT NULL,
    activated_at   timestamptz,
    last_step      bigint      NOT NULL DEFAULT -1,
    last_used_at   timestamptz,
    PRIMARY KEY (app_id, account_id)
);

-- Recovery codes, stored as SHA-256 hashes bound to the account. A code
-- is used once: used_at goes from NULL to a time and never back.
CREATE TABLE IF NOT EXISTS mfa_recovery_codes (
    app_id     text        NOT NULL,
    account_id text        NOT NULL,
    code_hash  bytea       NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (app_id, account_id, code_hash)
);

-- Per-tenant enforcement policy. The grace period is in microseconds.
CREATE TABLE IF NOT EXISTS mfa_policies (
    app_id          text        PRIMARY KEY,
    required        boolean     NOT NULL,
    grace_period_us bigint      NOT NULL CHECK (grace_period_us >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
