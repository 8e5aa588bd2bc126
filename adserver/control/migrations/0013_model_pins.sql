-- A model version ops pinned is never pruned (control/registry.Registry.prune).
ALTER TABLE models ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
