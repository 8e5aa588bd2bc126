-- Why an admin rejected (or what it noted approving) a creative, shown to its advertiser.
ALTER TABLE creatives ADD COLUMN review_reason TEXT NOT NULL DEFAULT '';
