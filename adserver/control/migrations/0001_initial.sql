-- The control store: inventory, demand, catalog, first-party users, API keys, audit.
-- Conventions: money in INTEGER micro-units (<field>_micros); lists and nested objects as JSON
-- text; times as RFC 3339 text in UTC; every entity row carries the tenancy columns it is
-- scoped by (network_id, and advertiser_id for demand), derived from its parent on insert.

CREATE TABLE networks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE sites (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    platform TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX sites_network ON sites(network_id);

CREATE TABLE zones (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    site_id INTEGER NOT NULL REFERENCES sites(id),
    name TEXT NOT NULL,
    page_type TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX zones_site ON zones(site_id);

CREATE TABLE ad_types (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE channels (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    name TEXT NOT NULL,
    site_ids TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE priorities (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    name TEXT NOT NULL,
    tier INTEGER NOT NULL,
    selection TEXT NOT NULL,
    second_price INTEGER NOT NULL,
    floor_cpm_micros INTEGER,
    floor_cpc_micros INTEGER,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE advertisers (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    name TEXT NOT NULL,
    domain TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX advertisers_network ON advertisers(network_id);

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    advertiser_id INTEGER NOT NULL REFERENCES advertisers(id),
    name TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX campaigns_advertiser ON campaigns(advertiser_id);

CREATE TABLE flights (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    advertiser_id INTEGER NOT NULL REFERENCES advertisers(id),
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    priority_id INTEGER NOT NULL REFERENCES priorities(id),
    name TEXT NOT NULL,
    "start" TEXT NOT NULL,
    "end" TEXT,
    is_active INTEGER NOT NULL,
    rate_type TEXT NOT NULL,
    price_micros INTEGER NOT NULL,
    daily_cap TEXT,
    lifetime_cap TEXT,
    pacing TEXT NOT NULL,
    frequency_caps TEXT NOT NULL,
    keywords TEXT NOT NULL,
    custom_targeting TEXT,
    geo TEXT NOT NULL,
    dayparts TEXT NOT NULL,
    site_ids TEXT NOT NULL,
    zone_ids TEXT NOT NULL,
    segments TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    click_window_days INTEGER NOT NULL,
    view_window_days INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX flights_campaign ON flights(campaign_id);
CREATE INDEX flights_advertiser ON flights(advertiser_id);

CREATE TABLE creatives (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    advertiser_id INTEGER NOT NULL REFERENCES advertisers(id),
    ad_type_id INTEGER NOT NULL REFERENCES ad_types(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    click_url TEXT NOT NULL,
    image_url TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    template TEXT,
    data TEXT NOT NULL,
    product_id TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX creatives_advertiser ON creatives(advertiser_id);

CREATE TABLE ads (
    id INTEGER PRIMARY KEY,
    network_id INTEGER NOT NULL REFERENCES networks(id),
    advertiser_id INTEGER NOT NULL REFERENCES advertisers(id),
    flight_id INTEGER NOT NULL REFERENCES flights(id),
    creative_id INTEGER NOT NULL REFERENCES creatives(id),
    product_id TEXT,
    weight INTEGER NOT NULL,
    relevancy_score INTEGER,
    is_active INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ads_flight ON ads(flight_id);
CREATE INDEX ads_advertiser ON ads(advertiser_id);

-- The retailer's catalog (string ids are the retailer's SKUs).
CREATE TABLE products (
    network_id INTEGER NOT NULL REFERENCES networks(id),
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    brand TEXT NOT NULL,
    category TEXT NOT NULL,          -- path, ' > ' separated
    price_micros INTEGER NOT NULL,
    available INTEGER NOT NULL,
    image_url TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (network_id, id)
) WITHOUT ROWID;

-- First-party user profiles (the UserDB).
CREATE TABLE users (
    network_id INTEGER NOT NULL REFERENCES networks(id),
    user_key TEXT NOT NULL,
    segments TEXT NOT NULL,          -- JSON list of segment names
    interests TEXT NOT NULL,         -- JSON list
    custom TEXT NOT NULL,            -- JSON object
    recent_products TEXT NOT NULL,   -- JSON list of product ids, newest first
    consent TEXT NOT NULL,           -- JSON object
    updated_at TEXT NOT NULL,
    PRIMARY KEY (network_id, user_key)
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,     -- the public part of the key
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,              -- sha256(salt || secret)
    role TEXT NOT NULL,              -- admin | advertiser | readonly
    network_id INTEGER REFERENCES networks(id),
    advertiser_id INTEGER REFERENCES advertisers(id),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action TEXT NOT NULL,            -- create | update | archive | revoke | seed
    network_id INTEGER,
    advertiser_id INTEGER,
    before TEXT,                     -- JSON of the entity before, NULL on create
    after TEXT                       -- JSON of the entity after
);
CREATE INDEX audit_entity ON audit(entity, entity_id);
