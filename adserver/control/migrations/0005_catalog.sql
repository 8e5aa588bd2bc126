-- The product catalog as the management API keeps it: a product page URL, free-form
-- attributes (JSON), an optional embedding (float32 little-endian) and the change number of
-- the write that last touched the row (catalog_seq), so the compiler can tell what changed.
ALTER TABLE products ADD COLUMN url TEXT NOT NULL DEFAULT '';
ALTER TABLE products ADD COLUMN data TEXT NOT NULL DEFAULT '{}';
ALTER TABLE products ADD COLUMN vector BLOB;
ALTER TABLE products ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE catalog_seq (n INTEGER NOT NULL);
INSERT INTO catalog_seq VALUES (0);
