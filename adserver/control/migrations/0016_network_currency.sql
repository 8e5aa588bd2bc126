-- The currency of every amount in a network (ISO 4217), shown beside money in the console.
ALTER TABLE networks ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
