-- The model registry: every CTR/CVR model version the control process has seen, and what
-- became of it. Files live in indexes/models/<name>/<version>/; models/<name>/CURRENT and
-- SHADOW name the active and shadow versions (written only by the control process).
CREATE TABLE models (
    name TEXT NOT NULL,              -- ctr | cvr
    version TEXT NOT NULL,           -- the directory under models/<name>/
    status TEXT NOT NULL,            -- registered | active | shadow | retired | refused
    source TEXT NOT NULL,            -- trainer | inbox | api
    label TEXT NOT NULL DEFAULT '',  -- the uploader's or trainer's name for it
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    metrics TEXT,                    -- JSON: the manifest's held-out metrics
    reason TEXT,                     -- why it was refused, or the gate's verdict
    activated_at TEXT,               -- the last time it became active
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
