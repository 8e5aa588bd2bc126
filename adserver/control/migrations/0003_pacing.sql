-- Custom pacing curves: 24 hourly weights (JSON) for flights paced "custom".
ALTER TABLE flights ADD COLUMN pacing_curve TEXT NOT NULL DEFAULT '[]';
