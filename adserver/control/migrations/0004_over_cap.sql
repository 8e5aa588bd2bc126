-- Spend delivered over a cap and never charged (the aggregator bills up to the cap).
ALTER TABLE stats_hourly ADD COLUMN over_cap_nanos INTEGER NOT NULL DEFAULT 0;
