-- fieldcrypt keyset store. {{schema}} is replaced by the configured schema
-- followed by a dot, or by nothing to use the search_path.

-- One row per scope that ever had a keyset or was shredded. Its row lock
-- orders keyset creation against shredding.
CREATE TABLE IF NOT EXISTS {{schema}}fieldcrypt_scopes (
    app_id      text        NOT NULL,
    scope       text        NOT NULL,
    shredded_at timestamptz,
    PRIMARY KEY (app_id, scope)
);

-- Keysets, wrapped under the KEK; never key material in the clear.
CREATE TABLE IF NOT EXISTS {{schema}}fieldcrypt_keysets (
    app_id        text        NOT NULL,
    scope         text        NOT NULL,
    purpose       text        NOT NULL,
    version       bigint      NOT NULL CHECK (version >= 1),
    wrapped       bytea       NOT NULL,
    primary_since timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (app_id, scope, purpose),
    FOREIGN KEY (app_id, scope) REFERENCES {{schema}}fieldcrypt_scopes (app_id, scope)
);
