"""Tools built on both planes, part of neither: `adserver simulate` (a synthetic day through
the real decision path, pacing and ledger: simworld, simday, simulate, simreport, simtruth),
`adserver demo`'s shopper traffic and admin key (demo), and the catalog file importer
(catalog_import). The planes never import them (pyproject.toml's import contracts)."""
