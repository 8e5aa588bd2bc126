-- When a key last authenticated a management API call (written at most once a minute).
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
