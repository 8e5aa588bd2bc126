-- Personalizer events, as the aggregator reads them from the workers' logs; the learner
-- (adserver/control/personalizer.py) joins ranks with their rewards once the reward wait
-- time has passed.
CREATE TABLE pz_ranks (
    id TEXT PRIMARY KEY,             -- the event id
    at REAL NOT NULL,
    multi INTEGER NOT NULL,          -- 1: a multi-slot rank
    defer INTEGER NOT NULL,          -- rewards count only after an activation
    payload TEXT NOT NULL,           -- JSON: context, actions, probabilities, chosen, slots
    learned INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX pz_ranks_pending ON pz_ranks(learned, at);

CREATE TABLE pz_rewards (
    event_id TEXT NOT NULL,
    slot TEXT NOT NULL,              -- '' for a single-slot event
    at REAL NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX pz_rewards_event ON pz_rewards(event_id);

CREATE TABLE pz_activations (
    event_id TEXT PRIMARY KEY,
    at REAL NOT NULL
) WITHOUT ROWID;
