-- Lockout counters, one row per counter (an account and factor, an
-- account, factor and source address, or a source address). Every time in
-- this table comes from the database clock (now()), never from an
-- application instance, so instances with skewed clocks agree.
CREATE TABLE IF NOT EXISTS lockout_counter (
    app_id       text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('account', 'account_ip', 'ip')),
    factor       text        NOT NULL,
    account      text        NOT NULL,
    ip           text        NOT NULL,
    -- failures of the current run, reservations not yet settled included
    failures     integer     NOT NULL,
    -- consecutive failures since the last success or unlock (hard cap)
    consecutive  integer     NOT NULL,
    -- changes whenever failures is cleared; settlements of an older run
    -- leave the newer one alone
    epoch        bigint      NOT NULL,
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    lock_count   integer     NOT NULL DEFAULT 0,
    hard_locked  boolean     NOT NULL DEFAULT false,
    notified_at  timestamptz,
    -- whether the most recent reservation was granted
    last_granted boolean     NOT NULL,
    -- the limit applied by the most recent reservation
    max_failures integer     NOT NULL,
    window_us    bigint      NOT NULL,
    hard_cap     integer     NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (app_id, kind, factor, account, ip)
) WITH (fillfactor = 70);
-- Every attempt updates its counters twice (reserve, settle). No index
-- covers a column those updates change, and the fill factor leaves room
-- on each page, so the updates can be heap-only (HOT) and leave the
-- primary key alone. Prune finds idle counters by a sequential scan.

-- The attempt history (the reference's login_attempt table). Identifiers
-- only: never a password or a code.
CREATE TABLE IF NOT EXISTS lockout_attempt (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id  text        NOT NULL,
    account text        NOT NULL,
    factor  text        NOT NULL,
    ip      inet,
    outcome text        NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS lockout_attempt_account_idx ON lockout_attempt (app_id, account, id DESC);
CREATE INDEX IF NOT EXISTS lockout_attempt_ip_idx ON lockout_attempt (app_id, ip, id DESC);
-- Prune walks the primary key from the oldest id; records arrive in time
-- order, so no index on at is needed.
