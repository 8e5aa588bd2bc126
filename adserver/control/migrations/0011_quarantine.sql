-- Records the aggregator could not count and flights the pacer could not pace: kept whole,
-- skipped, and shown (GET /v1/quarantine, adserver_quarantined_total) so that one bad input
-- never stops the ledger or pacing of anyone else.
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,          -- 'events/w0/events-...seg@1234' or 'flight:7'
    at TEXT NOT NULL,                  -- when it was quarantined (UTC)
    source TEXT NOT NULL,              -- events | decisions | pacing
    network_id INTEGER,                -- whose it is, when that could be read
    reason TEXT NOT NULL,
    record TEXT NOT NULL               -- the record as JSON (or its bytes in hex)
);
CREATE INDEX quarantine_network ON quarantine(network_id, id);

-- A total past int64 would silently become a float in SQLite: refuse the write instead (the
-- aggregator then quarantines the record that pushed it over).
CREATE TRIGGER stats_hourly_int_insert BEFORE INSERT ON stats_hourly
WHEN typeof(NEW.requests) != 'integer' OR typeof(NEW.filled) != 'integer'
  OR typeof(NEW.impressions) != 'integer' OR typeof(NEW.viewable) != 'integer'
  OR typeof(NEW.clicks) != 'integer' OR typeof(NEW.conversions) != 'integer'
  OR typeof(NEW.other_events) != 'integer' OR typeof(NEW.invalid_impressions) != 'integer'
  OR typeof(NEW.invalid_clicks) != 'integer' OR typeof(NEW.spend_nanos) != 'integer'
  OR typeof(NEW.gmv_micros) != 'integer' OR typeof(NEW.over_cap_nanos) != 'integer'
BEGIN SELECT RAISE(ABORT, 'stats_hourly: a total past 2^63'); END;

CREATE TRIGGER stats_hourly_int_update BEFORE UPDATE ON stats_hourly
WHEN typeof(NEW.requests) != 'integer' OR typeof(NEW.filled) != 'integer'
  OR typeof(NEW.impressions) != 'integer' OR typeof(NEW.viewable) != 'integer'
  OR typeof(NEW.clicks) != 'integer' OR typeof(NEW.conversions) != 'integer'
  OR typeof(NEW.other_events) != 'integer' OR typeof(NEW.invalid_impressions) != 'integer'
  OR typeof(NEW.invalid_clicks) != 'integer' OR typeof(NEW.spend_nanos) != 'integer'
  OR typeof(NEW.gmv_micros) != 'integer' OR typeof(NEW.over_cap_nanos) != 'integer'
BEGIN SELECT RAISE(ABORT, 'stats_hourly: a total past 2^63'); END;
