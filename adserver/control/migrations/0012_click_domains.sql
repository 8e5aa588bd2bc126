-- Hosts a network's clicks may be sent on to (and their subdomains); empty: any http(s) host.
ALTER TABLE networks ADD COLUMN click_domains TEXT NOT NULL DEFAULT '[]';
