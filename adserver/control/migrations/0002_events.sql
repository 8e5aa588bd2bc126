-- What the aggregator derives from the workers' event logs. Spend is in nano-units
-- (1e-9 of the currency): a CPM clear price of X micro-units per thousand impressions is
-- exactly X nano-units per impression.

-- Where the aggregator has read up to, per worker log; updated in the same transaction as the
-- counts it read, so a crash never loses or doubles a record.
CREATE TABLE event_offsets (
    worker TEXT NOT NULL,
    stream TEXT NOT NULL,
    segment TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    PRIMARY KEY (worker, stream)
) WITHOUT ROWID;

-- Event ids already counted (impression tokens, clicks, custom events, order ids).
CREATE TABLE seen_events (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL
) WITHOUT ROWID;

-- The last counted click per user and ad (clicks count once per user and ad an hour).
CREATE TABLE last_clicks (
    user_key TEXT NOT NULL,
    ad_id INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (user_key, ad_id)
) WITHOUT ROWID;

-- Hourly report rows; ids are 0 where a row does not belong to one (request counts are per
-- site and zone only). Campaign, advertiser and network totals are sums of flight rows.
CREATE TABLE stats_hourly (
    hour TEXT NOT NULL,                 -- UTC, 'YYYY-MM-DDTHH'
    network_id INTEGER NOT NULL,
    site_id INTEGER NOT NULL,
    zone_id INTEGER NOT NULL,
    advertiser_id INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL,
    flight_id INTEGER NOT NULL,
    ad_id INTEGER NOT NULL,
    creative_id INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,   -- placements asked for
    filled INTEGER NOT NULL DEFAULT 0,     -- placements that got at least one ad
    impressions INTEGER NOT NULL DEFAULT 0,
    viewable INTEGER NOT NULL DEFAULT 0,
    clicks INTEGER NOT NULL DEFAULT 0,
    conversions INTEGER NOT NULL DEFAULT 0,
    other_events INTEGER NOT NULL DEFAULT 0,
    invalid_impressions INTEGER NOT NULL DEFAULT 0,
    invalid_clicks INTEGER NOT NULL DEFAULT 0,
    spend_nanos INTEGER NOT NULL DEFAULT 0,
    gmv_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, network_id, site_id, zone_id, advertiser_id, campaign_id, flight_id,
                 ad_id, creative_id)
) WITHOUT ROWID;
CREATE INDEX stats_flight ON stats_hourly(flight_id, hour);
CREATE INDEX stats_advertiser ON stats_hourly(advertiser_id, hour);

-- Counted impressions and clicks per user, for attribution and frequency counting.
CREATE TABLE touches (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    network_id INTEGER NOT NULL,
    user_key TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,                 -- imp | click
    ad_id INTEGER NOT NULL,
    creative_id INTEGER NOT NULL,
    flight_id INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL,
    advertiser_id INTEGER NOT NULL,
    site_id INTEGER NOT NULL,
    zone_id INTEGER NOT NULL,
    price_micros INTEGER NOT NULL,
    rate INTEGER NOT NULL
);
CREATE INDEX touches_user ON touches(network_id, user_key, at);

-- Conversions (one per order), with the touch they are credited to, if any.
CREATE TABLE conversions (
    id TEXT PRIMARY KEY,                -- 'o:<network>:<order id>'
    order_id TEXT NOT NULL,
    network_id INTEGER NOT NULL,
    user_key TEXT NOT NULL,
    at REAL NOT NULL,
    revenue_micros INTEGER NOT NULL,
    items TEXT NOT NULL,                -- JSON [[product id, unit price micros, quantity]]
    touch_kind TEXT,                    -- click | imp | NULL when not attributed
    touch_id INTEGER,
    ad_id INTEGER,
    flight_id INTEGER,
    advertiser_id INTEGER,
    gmv_micros INTEGER NOT NULL,        -- revenue of the items the credited ad promoted
    spend_nanos INTEGER NOT NULL        -- CPA charge, when the flight buys conversions
) WITHOUT ROWID;
