-- Offline (counterfactual) evaluations of candidate learning policies over logged
-- Personalizer events (adserver/control/evaluations.py).
CREATE TABLE pz_evaluations (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    request TEXT NOT NULL,           -- JSON: name, startTime, endTime, policies
    result TEXT NOT NULL             -- JSON: the evaluation as the API shows it
) WITHOUT ROWID;
