-- Personalizer's service configuration and learning policy, as set through its API
-- (adserver/control/personalizer_api.py): name -> JSON.
CREATE TABLE pz_settings (
    name TEXT PRIMARY KEY,           -- service | policy
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
