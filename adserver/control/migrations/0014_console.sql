-- The console's users and their sessions (control/console/users.py). A user has the scope
-- an API key would have: a role, and a network and advertiser when it is scoped to them.
CREATE TABLE console_users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'advertiser', 'readonly')),
    network_id INTEGER REFERENCES networks(id),
    advertiser_id INTEGER REFERENCES advertisers(id),
    created_at TEXT NOT NULL,
    disabled_at TEXT
);

-- A session: the digest of its cookie's token (never the token), its CSRF token and when
-- it ends (unix seconds of the project's clock).
CREATE TABLE console_sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES console_users(id),
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
