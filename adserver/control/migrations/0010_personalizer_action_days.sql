-- How often each Personalizer action was chosen per UTC day (ranks not deferred, and
-- deferred ones once activated), for per-action daily caps (projected into live.lmdb).
CREATE TABLE pz_action_days (
    day TEXT NOT NULL,               -- 'YYYY-MM-DD' (UTC)
    action TEXT NOT NULL,
    shown INTEGER NOT NULL,
    PRIMARY KEY (day, action)
) WITHOUT ROWID;
