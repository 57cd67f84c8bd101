-- The chat server's own tables. {{schema}} is the quoted schema and a dot,
-- or nothing (the search_path). Message text is never stored: body holds
-- its fieldcrypt ciphertext, bound to the row.

CREATE TABLE IF NOT EXISTS {{schema}}chat_users (
    app_id        text        NOT NULL,
    id            text        NOT NULL,
    username      text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('owner', 'admin', 'moderator', 'member')),
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, username)
);

CREATE TABLE IF NOT EXISTS {{schema}}chat_channels (
    app_id     text        NOT NULL,
    id         text        NOT NULL,
    name       bytea       NOT NULL,  -- fieldcrypt ciphertext
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, id)
);

CREATE TABLE IF NOT EXISTS {{schema}}chat_members (
    app_id     text        NOT NULL,
    channel_id text        NOT NULL,
    user_id    text        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, channel_id, user_id),
    FOREIGN KEY (app_id, channel_id) REFERENCES {{schema}}chat_channels (app_id, id),
    FOREIGN KEY (app_id, user_id) REFERENCES {{schema}}chat_users (app_id, id)
);

CREATE TABLE IF NOT EXISTS {{schema}}chat_messages (
    id         text        PRIMARY KEY,
    app_id     text        NOT NULL,
    channel_id text        NOT NULL,
    user_id    text        NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

-- The retention sweep reads (app_id, created_at, id) in order.
CREATE INDEX IF NOT EXISTS chat_messages_sweep ON {{schema}}chat_messages (app_id, created_at, id);
CREATE INDEX IF NOT EXISTS chat_messages_channel ON {{schema}}chat_messages (app_id, channel_id, created_at);
